//! Records an `expire` ledger event when a grant's `expires_at` passes, so downstream systems receive
//! `consent.expired`. Checks never wait for this job: the engine already answers `expired` for a lapsed
//! grant; the event makes the lapse visible in the ledger and downstream.
//!
//! One node at a time runs it (a lease in the store). The `expire` event takes effect (`occurred_at`) when
//! the grant lapsed, so a renewal or withdrawal that lands between finding a lapsed grant and recording its
//! expiry stays in force: it was made later.

use std::collections::BTreeMap;
use std::time::Duration;

use consentry_core::ledger::ACTOR_SYSTEM;
use consentry_core::{Action, Event, NewEvent, SubjectId, Timestamp};
use consentry_store::{Sealed, Sealer, Wants};
use tokio_util::sync::CancellationToken;

use crate::events;
use crate::state::Services;

const BATCH: u32 = 500;

/// Runs the expiry job every `expiry_interval_secs` until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.expiry_interval_secs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = expire_due(&state, interval).await {
            tracing::warn!(error = %e, "the expiry job failed; retrying at the next interval");
        }
    }
}

/// Records the expiry of every lapsed grant, if this node holds the expiry lease. Returns how many.
pub async fn expire_due(state: &Services, interval: Duration) -> Result<usize, consentry_store::StoreError> {
    let now = Timestamp::now();
    if !super::hold_lease(state, "expiry", interval).await? {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let due = state.store.due_expiries(now, BATCH).await?;
        if due.is_empty() {
            return Ok(total);
        }
        let mut by_subject: BTreeMap<SubjectId, Vec<Event>> = BTreeMap::new();
        for (subject, event) in due {
            by_subject.entry(subject).or_default().push(event);
        }
        for (subject, lapsed) in by_subject {
            let changes: Vec<NewEvent> = lapsed
                .iter()
                .map(|g| NewEvent {
                    evidence: None,
                    // The lapse took effect when the grant expired, not when this job noticed: so a change
                    // made in between (a renewal, a withdrawal) stays the later one. Never before the grant
                    // itself (an imported grant may carry an expiry older than its own time): the expiry
                    // must supersede it, or the grant would stay due forever.
                    occurred_at: Some(g.expires_at.map_or(now, |at| at.max(g.effective_at()))),
                    jurisdiction: None,
                    purpose: g.purpose.clone(),
                    action: Action::Expire,
                    scope: g.scope.clone(),
                    notice: g.notice.clone(),
                    notice_version: g.notice_version,
                    notice_hash: g.notice_hash.clone(),
                    collection_point: None,
                    actor: ACTOR_SYSTEM.to_owned(),
                    expires_at: None,
                })
                .collect();
            total += changes.len();
            let sealing_state = state.clone();
            let sealed_subject = subject.clone();
            let seal: Sealer = Box::new(move |placed: &[Event], wants: &Wants<'_>| {
                Ok(Sealed {
                    receipt: None,
                    outbox: events::consent_messages(&sealing_state, &sealed_subject, placed, wants),
                    in_force: Vec::new(),
                })
            });
            let (placed, _) = state.store.append_sealed(&subject, changes, Some(seal)).await?;
            state.apply_committed(&subject, &placed);
            state.metrics.ledger_appends.inc_by(placed.len() as u64);
            state.devices.subject_changed(&subject);
        }
        state.dispatch_wake.notify_one();
    }
}
