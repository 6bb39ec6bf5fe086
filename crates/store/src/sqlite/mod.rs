//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, in a data folder.
//!
//! Files: `consentry.db` (catalogue, API keys, ledger, current state, receipts, checkpoints, access log,
//! check counts, outbox, destinations, deliveries, the vault's encrypted records; pseudonyms only) and
//! `keys.db`, the key store (pseudonym keys, signing keys, destination secrets, wrapped vault data keys),
//! kept apart so that a copy of the data alone cannot link the ledger's pseudonyms to people. One writer
//! thread owns the only writing connection and group-commits ledger appends with their receipts and
//! outbox messages, access-log entries, check counts and vault records (many requests, one transaction,
//! one fsync); reads run on a small pool of read-only connections in the blocking thread pool. A lock
//! file keeps a second process from writing the same folder; `readonly` opens one to read only, beside
//! the process that writes it.
//!
//! The files here, from the bottom up: `db` (files, connections, errors), `migrate`, `backup`, `rows` (row
//! mapping), `pseudonyms`, `jobs` (the writer's queue), `tlog` (the Merkle tree), `writer`, the SQL of each part of the trait
//! (`keys`, `meta`, `catalog`, `ledger`, `activity`, `outbox`), `readonly`, `store` (the handle, and the
//! [`Store`](crate::Store) trait on it), and the other traits' impls on that handle (`vault`, `devices`,
//! `requests`). Each imports only files before it; this one imports none of theirs but what it
//! re-exports.

mod activity;
mod backup;
mod catalog;
mod console;
mod db;
mod devices;
mod evidence;
mod guardians;
mod households;
mod identifiers;
mod images;
mod jobs;
mod keys;
mod ledger;
mod linking;
mod links;
mod meta;
mod migrate;
mod outbox;
mod pseudonyms;
mod readonly;
mod requests;
mod rows;
mod store;
mod tlog;
mod tokens;
mod vault;
mod verifications;
mod writer;

pub use self::backup::{backup, restore};
pub use self::store::SqliteStore;
// Named here for `requests.rs`, which reaches them as `super::…`.
use self::db::backend;
use self::pseudonyms::pseudonym_for;
