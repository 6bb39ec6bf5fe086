//! The PostgreSQL backend, for several Consentry nodes on one database.
//!
//! - **One chain across nodes.** Each node group-commits its appends in one transaction that first takes a
//!   transaction-scoped advisory lock, then reads the head and places events after it. The lock serialises
//!   appends across nodes; the primary key on `seq` refuses any duplicate position should the lock ever be
//!   bypassed. Commits of different nodes interleave, never overlap.
//! - **Change feed.** Every append transaction ends with `pg_notify('consentry_ledger', <last seq>)`,
//!   delivered at commit. A listener task turns notifications into
//!   [`Store::change_signals`](crate::Store::change_signals); the server also catches up on a timer, so a
//!   missed notification delays visibility by at most that interval.
//! - **Key store.** Pseudonym and signing keys live in the schema `consentry_keystore`, apart from the
//!   data. Pseudonym keys are created with `ON CONFLICT DO NOTHING` and read back, so appends (under the
//!   ledger lock) and access logging (outside it) on any node agree on one key per subject.
//! - **Receipts** and **outbox messages** are inserted in the append transaction, after their events; see
//!   `outbox.rs` for how outbox ids keep commit order and how nodes share fan-out and deliveries.
//!
//! The files here, from the bottom up: `error`, `locks` (the advisory locks), `migrate`, `rows` (row
//! mapping and multi-row inserts), `pseudonyms`, `listener` (the change feed), the SQL of each part of the
//! trait (`keys`, `meta`, `catalog`, `ledger`, `activity`, `outbox`), `tlog` (the Merkle tree), `writer`
//! (the group commit),
//! `store` (the handle, and the [`Store`](crate::Store) trait on it), and the other traits' impls on that
//! handle (`vault`, `devices`, `requests`). Each imports only files before it; this one imports none of
//! theirs but what it re-exports.

mod activity;
mod catalog;
mod console;
mod devices;
mod error;
mod evidence;
mod guardians;
mod households;
mod identifiers;
mod images;
mod keys;
mod ledger;
mod linking;
mod links;
mod listener;
mod locks;
mod meta;
mod migrate;
mod outbox;
mod pseudonyms;
mod requests;
mod rows;
mod store;
mod tlog;
mod tokens;
mod vault;
mod verifications;
mod writer;

pub use self::listener::LEDGER_CHANNEL;
pub use self::store::PostgresStore;
// Named here for `requests.rs`, which reaches them as `super::…`.
use self::error::db;
use self::pseudonyms::pseudonyms_for;
