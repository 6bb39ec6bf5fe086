//! Consentry server integration tests: the real app on a real socket, one test binary.

mod catalog;
mod cluster;
mod concurrency;
mod devices;
mod errors;
mod expiry;
mod flow;
mod keys;
mod openapi;
mod ops;
mod proof;
mod propagation;
mod restart;
mod tokens;
mod utils;
mod vault;
