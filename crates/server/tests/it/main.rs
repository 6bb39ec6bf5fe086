//! Consentry server integration tests: the real app on a real socket, one test binary.

mod browser;
mod catalog;
mod cluster;
mod concurrency;
mod delegation;
mod devices;
mod errors;
mod expiry;
mod flow;
mod keys;
mod limits;
mod metrics;
mod not_covered;
mod openapi;
mod ops;
mod preferences;
mod proof;
mod propagation;
mod requests;
mod restart;
mod scopes;
mod ssrf;
mod subject_actions;
mod tokens;
mod utils;
mod vault;
