//! Checks per purpose and how many were denied, for the console's overview: counted in memory on the
//! check path (no I/O, and no allocation once a purpose was checked on this node), and written as day
//! counters by a worker every few seconds and at shutdown (`workers::console_checks`).
//!
//! Each purpose has a pair of atomic counters (checks, denied), each pair on a cache line of its own so
//! purposes checked on different cores do not share one. A flush swaps every pair to zero and *adds* the
//! deltas to the day's row in the store, so several nodes add up rather than overwrite; a write that fails
//! puts the deltas back for the next flush. Only the checks the API answers are counted (`POST /v1/check`,
//! `/v1/check/batch`, a paired device asking online); checks a device answers offline from its snapshot
//! are never seen. A delta counts on the day of the flush that writes it, so the checks of the last few
//! seconds before midnight (UTC) may count on the next day. The counts exist nowhere else: lost rows
//! cannot be rebuilt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use consentry_core::Timestamp;
use consentry_store::{PurposeChecks, Store};

use super::rollups::day_of;
use crate::error::Result;

/// One purpose's counters, alone on a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Pair {
    checks: AtomicU64,
    denied: AtomicU64,
}

/// The checks counted on this node since the last flush, per purpose.
#[derive(Debug, Default)]
pub struct CheckCounter {
    purposes: RwLock<HashMap<Box<str>, Pair, foldhash::fast::RandomState>>,
}

impl CheckCounter {
    /// Counts one check of `purpose` (a purpose the engine knows), and whether it was denied.
    pub fn count(&self, purpose: &str, allowed: bool) {
        {
            let purposes = self.purposes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(pair) = purposes.get(purpose) {
                pair.add(1, u64::from(!allowed));
                return;
            }
        }
        // The first check of this purpose on this node: its pair is made once.
        let mut purposes = self.purposes.write().unwrap_or_else(PoisonError::into_inner);
        purposes.entry(purpose.into()).or_default().add(1, u64::from(!allowed));
    }

    /// Takes every non-zero count, leaving zeros: `(purpose, checks, denied)`.
    pub fn take(&self) -> Vec<(String, u64, u64)> {
        let purposes = self.purposes.read().unwrap_or_else(PoisonError::into_inner);
        purposes
            .iter()
            .filter_map(|(purpose, pair)| {
                let checks = pair.checks.swap(0, Ordering::Relaxed);
                let denied = pair.denied.swap(0, Ordering::Relaxed);
                (checks > 0 || denied > 0).then(|| (purpose.to_string(), checks, denied))
            })
            .collect()
    }

    /// Puts counts taken by [`take`](Self::take) back (their write failed).
    fn put_back(&self, taken: &[PurposeChecks]) {
        let mut purposes = self.purposes.write().unwrap_or_else(PoisonError::into_inner);
        for row in taken {
            purposes.entry(row.purpose.as_str().into()).or_default().add(row.checks, row.denied);
        }
    }
}

impl Pair {
    fn add(&self, checks: u64, denied: u64) {
        self.checks.fetch_add(checks, Ordering::Relaxed);
        if denied > 0 {
            self.denied.fetch_add(denied, Ordering::Relaxed);
        }
    }
}

/// Adds the checks counted since the last flush to the store's row of the day of `now`. Returns how many
/// checks it wrote; on an error the counts stay for the next flush.
pub async fn flush(counter: &CheckCounter, store: &dyn Store, now: Timestamp) -> Result<u64> {
    let day = day_of(now);
    let rows: Vec<PurposeChecks> = counter
        .take()
        .into_iter()
        .map(|(purpose, checks, denied)| PurposeChecks { day, purpose, checks, denied })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let written = rows.iter().map(|r| r.checks).sum();
    if let Err(e) = store.add_purpose_checks(rows.clone()).await {
        counter.put_back(&rows);
        return Err(e.into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_and_put_back_after_a_failed_write() {
        let c = CheckCounter::default();
        c.count("analytics", true);
        c.count("analytics", false);
        c.count("marketing", false);
        let mut taken = c.take();
        taken.sort();
        assert_eq!(taken, [("analytics".to_owned(), 2, 1), ("marketing".to_owned(), 1, 1)]);
        assert!(c.take().is_empty(), "taken once");
        c.count("analytics", true);
        c.put_back(&[PurposeChecks { day: 1, purpose: "analytics".into(), checks: 2, denied: 1 }]);
        assert_eq!(c.take(), [("analytics".to_owned(), 3, 1)]);
    }

    #[test]
    fn a_pair_has_a_cache_line_of_its_own() {
        assert_eq!(std::mem::align_of::<Pair>(), 64);
    }
}
