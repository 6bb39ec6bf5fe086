//! The `consentry` binary end to end, one test binary: commands (init, keys, catalogue, serve, kill -9,
//! SIGTERM, audit), deliveries that survive a hard kill, and reading a data folder a server is writing.

mod commands;
mod propagation;
mod readonly;
mod transfer;
