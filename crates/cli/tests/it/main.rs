//! The `consentry` binary end to end, one test binary: commands (init, keys, catalogue, serve, kill -9,
//! SIGTERM, audit) and deliveries that survive a hard kill.

mod commands;
mod propagation;
