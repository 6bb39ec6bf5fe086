//! The console's day-bucketed counters, folded from the ledger by a worker that follows it from a cursor
//! (`workers::console_rollups`), so the overview never scans the ledger. Each event counts once on the
//! day (UTC) it took effect (an imported change's original `occurred_at`, else when it was recorded), under its purpose and its action (`grant`, `withdraw`, ...); an event the
//! Global Privacy Control signal made counts under `gpc` as well.
//!
//! The store moves the counters and the cursor together, and only from the cursor read here: a node that
//! lost a race, or a rebuild ([`rebuild`]) running beside a node, makes the other fold start again from
//! the cursor it finds, so nothing is counted twice and nothing is lost.

use std::collections::BTreeMap;

use consentry_core::ledger::ACTOR_GPC;
use consentry_core::{Action, Event, Timestamp};
use consentry_store::{RollupRow, Store};

use crate::error::Result;

/// The metric that counts events the Global Privacy Control signal made.
pub const GPC: &str = "gpc";

/// Events read from the ledger per fold (one transaction each).
const PAGE: u32 = 5_000;

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// The day (since 1970-01-01, UTC) of `t`.
pub fn day_of(t: Timestamp) -> i64 {
    t.micros().div_euclid(DAY_MICROS)
}

/// The first instant of `day`.
pub fn start_of(day: i64) -> Timestamp {
    Timestamp::from_micros(day.saturating_mul(DAY_MICROS))
}

/// The counters `events` add.
pub fn fold(events: &[Event]) -> Vec<RollupRow> {
    let mut counts: BTreeMap<(i64, &str, &str), u64> = BTreeMap::new();
    // A `locate` event is no consent: nothing to count.
    for e in events.iter().filter(|e| e.action != Action::Locate) {
        let day = day_of(e.effective_at());
        *counts.entry((day, e.purpose.as_str(), e.action.as_str())).or_default() += 1;
        if e.actor == ACTOR_GPC {
            *counts.entry((day, e.purpose.as_str(), GPC)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((day, purpose, metric), count)| RollupRow {
            day,
            purpose: purpose.to_owned(),
            metric: metric.to_owned(),
            count,
        })
        .collect()
}

/// Folds the ledger's events after the cursor into the counters, a page at a time, until the head.
/// Returns how many events this call folded in.
pub async fn catch_up(store: &dyn Store) -> Result<u64> {
    let mut folded = 0;
    loop {
        let from = store.rollup_cursor().await?;
        let events = store.events_page(from, PAGE).await?;
        let Some(last) = events.last().map(|e| e.seq) else { return Ok(folded) };
        if store.add_rollups(from, last, fold(&events)).await? {
            folded += events.len() as u64;
        }
        // Lost to another fold: it moved the cursor, read it again.
    }
}

/// Forgets every counter and folds the whole ledger in again (`consentry console rebuild-rollups`).
/// Returns how many events were folded.
pub async fn rebuild(store: &dyn Store) -> Result<u64> {
    store.reset_rollups().await?;
    catch_up(store).await
}

#[cfg(test)]
mod tests {
    use consentry_core::{Action, Scope};

    use super::*;

    fn event(seq: u64, purpose: &str, action: Action, actor: &str, day: i64) -> Event {
        Event {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            seq,
            pseudonym: "p".into(),
            purpose: purpose.into(),
            action,
            scope: Scope::default(),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: actor.into(),
            recorded_at: start_of(day).plus_seconds(3600),
            expires_at: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn events_count_on_their_day_under_purpose_and_action() {
        let events = [
            event(1, "analytics", Action::Grant, "subject", 20_000),
            event(2, "analytics", Action::Grant, "subject", 20_000),
            event(3, "analytics", Action::Withdraw, "subject", 20_001),
            event(4, "marketing", Action::Deny, ACTOR_GPC, 20_001),
        ];
        let rows = fold(&events);
        let rows: Vec<(i64, &str, &str, u64)> =
            rows.iter().map(|r| (r.day, r.purpose.as_str(), r.metric.as_str(), r.count)).collect();
        assert_eq!(
            rows,
            [
                (20_000, "analytics", "grant", 2),
                (20_001, "analytics", "withdraw", 1),
                (20_001, "marketing", "deny", 1),
                (20_001, "marketing", "gpc", 1),
            ]
        );
        assert_eq!(day_of(start_of(20_001)), 20_001);
        assert_eq!(day_of(Timestamp::from_micros(-1)), -1, "before 1970 rounds down");
    }
}
