//! What the operator console keeps: its signed-in sessions and the day-bucketed counters (rollups) its
//! overview reads instead of the ledger.
//!
//! A session is stored only as a keyed hash of its token, with the API key it was opened with: a revoked
//! key ends its sessions at once, and a session idle for longer than the caller's limit is refused and
//! dropped. The rollups are kept by a worker that follows the ledger from a cursor (the last sequence
//! number folded in); the counters and the cursor move in one transaction, and only from the cursor the
//! worker read, so two nodes (or a rebuild running beside a node) never count an event twice.

use async_trait::async_trait;
use consentry_core::Timestamp;

use crate::error::Result;
use crate::model::ApiKey;

/// One counter of the rollups: on `day` (days since 1970-01-01, UTC), for `purpose`, how many `metric`
/// (an action such as `grant`, or `gpc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub day: i64,
    pub purpose: String,
    pub metric: String,
    pub count: u64,
}

/// Storage of the console's sessions and rollups.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Stores a new session under the keyed hash of its token, for the key `key_id`.
    async fn create_console_session(&self, token_hash: &[u8; 32], key_id: &str, now: Timestamp)
    -> Result<()>;

    /// The active API key of the session with `token_hash`, if it was last used at or after `idle_since`;
    /// marks it used at `now`. A session idle since before `idle_since` is dropped in passing, as is one
    /// whose key was revoked.
    async fn console_session(
        &self,
        token_hash: &[u8; 32],
        idle_since: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ApiKey>>;

    /// Ends the session with `token_hash`. Returns whether there was one.
    async fn end_console_session(&self, token_hash: &[u8; 32]) -> Result<bool>;

    /// The last ledger sequence number folded into the rollups (0: none).
    async fn rollup_cursor(&self) -> Result<u64>;

    /// Adds `rows` to the rollups and moves the cursor from `from` to `to`, in one transaction. Returns
    /// false, writing nothing, when the cursor is no longer at `from` (another node or a rebuild moved it).
    async fn add_rollups(&self, from: u64, to: u64, rows: Vec<RollupRow>) -> Result<bool>;

    /// The counters of the days `from_day..=to_day`, ordered by day, purpose and metric.
    async fn rollups(&self, from_day: i64, to_day: i64) -> Result<Vec<RollupRow>>;

    /// How many people's consents rest on version `version` of notice `key`: subjects whose current state
    /// for some purpose is a grant or renewal given on that version and not expired at `now`. An indexed
    /// count (events by notice version, joined to the current state), never a scan of the ledger.
    async fn notice_consents(&self, key: &str, version: u32, now: Timestamp) -> Result<u64>;

    /// Forgets every counter and sets the cursor to 0, in one transaction: the worker then folds the
    /// whole ledger in again.
    async fn reset_rollups(&self) -> Result<()>;
}
