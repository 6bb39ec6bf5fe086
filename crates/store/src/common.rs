//! Small steps both backends (and the vault) take alike: the stored text of scope lists, summing check
//! counts, running a sealer, lease and lag arithmetic, and randomness.

use std::collections::BTreeMap;

use consentry_core::{Event, Scope, SubjectId, Timestamp};

use crate::error::{Result, StoreError};
use crate::model::{OutboxFilter, ReplayFrom, Sealed, Sealer};

/// The event types some destination wants, read from the destinations' stored patterns (JSON arrays) in
/// the transaction that inserts outbox messages: a message no destination wants is not stored.
pub(crate) struct Wanted {
    filter: OutboxFilter,
    /// `None` for a destination whose stored patterns do not read back.
    patterns: Vec<Option<Vec<String>>>,
}

impl Wanted {
    /// From the `event_types` column of every destination. A column that does not read back as a list
    /// keeps everything: a message is never dropped for a destination whose patterns cannot be read.
    pub fn new(filter: OutboxFilter, stored: Vec<String>) -> Self {
        let patterns = stored.iter().map(|s| serde_json::from_str::<Vec<String>>(s).ok()).collect();
        Self { filter, patterns }
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.patterns.iter().any(|p| p.as_ref().is_none_or(|p| (self.filter)(p, event_type)))
    }
}

/// What a replay of one destination may reach: messages after its `origin` (the last outbox id before it
/// was created) up to its `cursor`, and none the sweep may have deleted (`pruned_through`).
pub(crate) struct ReplayReach {
    pub cursor: i64,
    pub origin: i64,
    pub created_at: Timestamp,
    pub pruned_through: i64,
}

impl ReplayReach {
    /// Where a replay from `from` starts: after this outbox id, and from this creation time (micros).
    /// `first_at` is when the first message at or after an asked id was created. A start before the
    /// destination's creation, before `not_before` (the retention window) or at a message the sweep may
    /// have deleted is [`StoreError::OutOfReach`].
    pub fn start(
        &self,
        from: ReplayFrom,
        not_before: Timestamp,
        first_at: Option<Timestamp>,
    ) -> Result<(i64, i64)> {
        match from {
            ReplayFrom::OutboxId(first) => {
                if first <= self.origin {
                    return Err(StoreError::OutOfReach(format!(
                        "from_id {first} was written before this destination was created; it may replay from {} on",
                        self.origin + 1
                    )));
                }
                if first <= self.pruned_through || first_at.is_some_and(|at| at < not_before) {
                    return Err(StoreError::OutOfReach(format!(
                        "from_id {first} is older than the outbox keeps (outbox_retention_secs)"
                    )));
                }
                Ok((first - 1, i64::MIN))
            }
            ReplayFrom::Time(t) => {
                if t < self.created_at {
                    return Err(StoreError::OutOfReach(format!(
                        "since is before this destination was created ({}); it may replay from then on",
                        self.created_at
                    )));
                }
                if t < not_before {
                    return Err(StoreError::OutOfReach(format!(
                        "since is older than the outbox keeps (outbox_retention_secs): the earliest is {not_before}"
                    )));
                }
                Ok((self.origin, t.micros()))
            }
        }
    }
}

/// A JSON array of strings, as scope lists are stored.
pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// The canonical text of a scope, the key of the current-state table.
pub(crate) fn scope_key(scope: &Scope) -> String {
    format!(
        "{}|{}|{}",
        json_list(&scope.categories),
        json_list(&scope.channels),
        json_list(&scope.recipients)
    )
}

/// Check counts summed per subject and purpose (the latest `last` wins), in a stable order.
pub(crate) fn merge_counts(
    counts: Vec<(SubjectId, String, u64, Timestamp)>,
) -> BTreeMap<(SubjectId, String), (u64, Timestamp)> {
    let mut merged = BTreeMap::new();
    for (subject, purpose, n, last) in counts {
        let slot = merged.entry((subject, purpose)).or_insert((0u64, last));
        slot.0 = slot.0.saturating_add(n);
        slot.1 = slot.1.max(last);
    }
    merged
}

/// Runs a sealer, turning a panic into an error so the writer survives it.
pub(crate) fn run_sealer(seal: Sealer, events: &[Event], wants: &crate::model::Wants<'_>) -> Result<Sealed> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| seal(events, wants))) {
        Ok(Ok(sealed)) => Ok(sealed),
        Ok(Err(why)) => Err(StoreError::Backend(format!("sealing the receipt failed: {why}"))),
        Err(_) => Err(StoreError::Backend("sealing the receipt panicked".into())),
    }
}

/// `now + lease` in microseconds, saturating.
pub(crate) fn lease_end(now: Timestamp, lease: std::time::Duration) -> i64 {
    now.micros().saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX))
}

/// Seconds from `at` (microseconds) to `now`, never negative.
pub(crate) fn lag_seconds(now: Timestamp, at: i64) -> f64 {
    (now.micros().saturating_sub(at).max(0)) as f64 / 1e6
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// Bytes per stored part of an engine image: well under any row or parameter limit of either backend.
pub(crate) const IMAGE_PART: usize = 8 << 20;

/// A fresh id for one stored engine image (so images written at once by two nodes never mix parts).
pub(crate) fn image_id() -> Result<String> {
    let bytes: [u8; 12] = random_bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
