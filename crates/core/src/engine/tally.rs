//! Counts, per consent purpose of the current catalogue, how many subjects a check of the whole purpose
//! answers each reason for: what the per-purpose consent gauges show. It visits every subject, so it is
//! for a background job, never the check path.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::rules::{self, Resolved};
use super::{Engine, Reason};
use crate::catalog::Basis;
use crate::time::Timestamp;

/// How many subjects a check of `purpose` (no category, channel or recipient: every use it declares)
/// answers each reason for, indexed by [`Reason::index`]. Every subject the engine holds is counted
/// once per purpose; one who never decided on the purpose counts as `no_consent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeTally {
    pub purpose: String,
    pub counts: [u64; Reason::ALL.len()],
}

impl Engine {
    /// A counter that changes whenever the engine's state may have: an event applied, a subject
    /// forgotten, a catalogue installed. Equal values mean nothing changed in between.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The [`PurposeTally`] of every consent purpose of the current catalogue (in the order catalogues first named
    /// them) at
    /// `now`. Visits every subject, one shard at a time under its read lock (checks go on; writes to that
    /// shard wait for it).
    pub fn consent_tally(&self, now: Timestamp) -> Vec<PurposeTally> {
        let mut tallies: Vec<PurposeTally> = {
            let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
            shared
                .consent_purposes()
                .map(|purpose| PurposeTally { purpose: purpose.to_owned(), counts: [0; Reason::ALL.len()] })
                .collect()
        };
        let whole = Resolved::whole();
        for shard in &self.shards {
            let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for tally in &mut tallies {
                // A catalogue installed meanwhile may have dropped the purpose or changed its basis.
                let Some(info) = shared.purpose_info(&tally.purpose).filter(|i| i.basis == Basis::Consent)
                else {
                    continue;
                };
                for slot in &shard.slots {
                    let d = rules::decide(&shared, info, &whole, slot.stmts.as_slice(), now.micros());
                    tally.counts[d.reason.index()] += 1;
                }
            }
        }
        tallies
    }
}
