//! The advisory locks that serialise work across nodes, in one place so their ids never collide. All but
//! the migration lock are transaction-scoped: held until the transaction that took them ends.

use sqlx::PgConnection;

use super::error::db;
use crate::error::Result;

/// Serialises ledger appends ("consentry" in ASCII, truncated).
pub(super) const LEDGER_LOCK: i64 = 0x636f_6e73_656e_7472;
/// Serialises catalogue applies.
pub(super) const CATALOG_LOCK: i64 = LEDGER_LOCK + 1;
/// Serialises signing-key rotations.
pub(super) const SIGNING_KEY_LOCK: i64 = LEDGER_LOCK + 2;
/// Held by every transaction that inserts outbox rows, until its commit (see `outbox.rs`).
pub(super) const OUTBOX_LOCK: i64 = LEDGER_LOCK + 3;
/// Serialises starts of verifications, so that their limits are counted and kept atomically.
pub(super) const VERIFICATION_LOCK: i64 = LEDGER_LOCK + 4;
/// Keeps the outbox sweep and replays apart (see `outbox.rs`).
pub(super) const PRUNE_LOCK: i64 = LEDGER_LOCK + 5;
/// Serialises guardian relations being added, so that two added at once cannot form a cycle together.
pub(super) const GUARDIAN_LOCK: i64 = LEDGER_LOCK + 6;
/// Keeps nodes that start together from migrating twice (session-scoped, see `migrate.rs`).
pub(super) const MIGRATION_LOCK: i64 = 0x636f_6e73_6d69_6772;

/// Takes the transaction-scoped lock `id`, waiting for whoever holds it.
pub(super) async fn lock(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(id).execute(conn).await.map_err(db)?;
    Ok(())
}
