//! Integration tests of the storage backends: the conformance suite, and what is particular to each.

mod postgres;
mod sqlite;
