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

/// Checks of one purpose on one day (days since 1970-01-01, UTC), and how many of them were denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeChecks {
    pub day: i64,
    pub purpose: String,
    pub checks: u64,
    pub denied: u64,
}

/// Requests on one day (days since 1970-01-01, UTC): received, completed, and gone overdue (marked past
/// their due date while open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDay {
    pub day: i64,
    pub received: u64,
    pub completed: u64,
    pub overdue: u64,
}

/// Delivery attempts to one destination in one minute (minutes since 1970-01-01, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptBucket {
    pub minute: i64,
    pub ok: u64,
    pub failed: u64,
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

    /// Adds `rows` to the day counters of checks (never overwrites: every node adds its own deltas), in
    /// one transaction.
    async fn add_purpose_checks(&self, rows: Vec<PurposeChecks>) -> Result<()>;

    /// The check counters of the days `from_day..=to_day`, ordered by day and purpose.
    async fn purpose_checks(&self, from_day: i64, to_day: i64) -> Result<Vec<PurposeChecks>>;

    /// Per day of `from_day..=to_day` with any, requests received, completed and gone overdue, ordered by
    /// day: three indexed range reads (by `received_at`, `closed_at`, `overdue_at`).
    async fn request_days(&self, from_day: i64, to_day: i64) -> Result<Vec<RequestDay>>;

    /// The attempt buckets of destination `destination_id` from minute `from_minute` on, ordered by minute
    /// (kept when the delivery worker records attempts, see [`Store::complete_deliveries`](crate::Store)).
    async fn delivery_attempts(&self, destination_id: &str, from_minute: i64) -> Result<Vec<AttemptBucket>>;

    /// Per destination with attempts from minute `from_minute` on: `(destination id, ok, failed)`, ordered
    /// by destination.
    async fn delivery_attempt_totals(&self, from_minute: i64) -> Result<Vec<(String, u64, u64)>>;

    /// Deletes the attempt buckets before minute `before_minute`. Returns how many.
    async fn prune_delivery_attempts(&self, before_minute: i64) -> Result<u64>;

    /// How many people's consents rest on version `version` of notice `key`: subjects whose current state
    /// for some purpose is a grant or renewal given on that version and not expired at `now`. An indexed
    /// count (events by notice version, joined to the current state), never a scan of the ledger.
    async fn notice_consents(&self, key: &str, version: u32, now: Timestamp) -> Result<u64>;

    /// Forgets every counter and sets the cursor to 0, in one transaction: the worker then folds the
    /// whole ledger in again.
    async fn reset_rollups(&self) -> Result<()>;
}

/// The days micro-second times fall on: `micros / DAY` (times are after 1970).
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;

/// Merges per-day counts of received, completed and overdue requests (each ordered by day) into
/// [`RequestDay`]s ordered by day.
pub(crate) fn request_days_of(
    received: &[(i64, u64)],
    completed: &[(i64, u64)],
    overdue: &[(i64, u64)],
) -> Vec<RequestDay> {
    let mut days: std::collections::BTreeMap<i64, RequestDay> = std::collections::BTreeMap::new();
    for (list, pick) in [
        (received, (|d: &mut RequestDay, n| d.received += n) as fn(&mut RequestDay, u64)),
        (completed, |d: &mut RequestDay, n| d.completed += n),
        (overdue, |d: &mut RequestDay, n| d.overdue += n),
    ] {
        for &(day, n) in list {
            pick(days.entry(day).or_insert_with(|| RequestDay { day, ..RequestDay::default() }), n);
        }
    }
    days.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_days_merge_by_day() {
        let days = request_days_of(&[(3, 2), (5, 1)], &[(5, 4)], &[(1, 1), (5, 2)]);
        let day = |day, received, completed, overdue| RequestDay { day, received, completed, overdue };
        assert_eq!(days, [day(1, 0, 0, 1), day(3, 2, 0, 0), day(5, 1, 4, 2)]);
    }
}

/// Microseconds in a minute.
const MINUTE_MICROS: i64 = 60_000_000;

/// The minute (since 1970-01-01, UTC) of `t`.
pub fn minute_of(t: Timestamp) -> i64 {
    t.micros().div_euclid(MINUTE_MICROS)
}

/// Delivery attempts recorded in one transaction, per destination and minute: `(ok, failed)`. A success
/// counts on the minute it was delivered, a failure on `failed_at` (when its outcome is recorded). Sorted,
/// so every node adds to the rows in the same order.
#[derive(Debug, Default)]
pub(crate) struct AttemptTally(pub(crate) std::collections::BTreeMap<(String, i64), (u64, u64)>);

impl AttemptTally {
    pub(crate) fn add(
        &mut self,
        destination_id: &str,
        outcome: &crate::DeliveryOutcome,
        failed_at: Timestamp,
    ) {
        let (minute, ok) = match outcome {
            crate::DeliveryOutcome::Delivered { at } => (minute_of(*at), true),
            _ => (minute_of(failed_at), false),
        };
        let entry = self.0.entry((destination_id.to_owned(), minute)).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
}
