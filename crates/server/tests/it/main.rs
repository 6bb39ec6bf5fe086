//! Consentry server integration tests: the real app on a real socket, one test binary.

mod catalog;
mod concurrency;
mod errors;
mod flow;
mod keys;
mod ops;
mod restart;
mod utils;
