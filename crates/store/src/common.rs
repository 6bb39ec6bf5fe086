//! Small steps both backends (and the vault) take alike: the stored text of scope lists, summing check
//! counts, running a sealer, lease and lag arithmetic, and randomness.

use std::collections::BTreeMap;

use consentry_core::{Event, Scope, SubjectId, Timestamp};

use crate::error::{Result, StoreError};
use crate::model::{Sealed, Sealer};

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
pub(crate) fn run_sealer(seal: Sealer, events: &[Event]) -> Result<Sealed> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| seal(events))) {
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
