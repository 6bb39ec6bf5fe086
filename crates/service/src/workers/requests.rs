//! Watches data subject request deadlines: marks each open request past its `due_at` overdue once (its
//! `request.overdue` CloudEvent goes in the outbox in the same transaction), keeps the overdue gauges,
//! does Consentry's own part of requests left half-way (the process stopped between accepting a request
//! and doing it), and forgets the subject ids kept for erased subjects once their last messages have left.
//!
//! One node at a time marks (a lease in the store); every node keeps its own gauges. The clock is passed
//! in ([`sweep`]), so tests decide what "now" is.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_core::request::TaskStatus;
use consentry_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::requests::{request_event, resume};
use crate::state::Services;

const BATCH: u32 = 500;

/// Runs [`sweep`] every `request_sweep_interval_secs` until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.request_sweep_interval_secs);
    loop {
        if let Err(e) = sweep(&state, Timestamp::now(), interval).await {
            tracing::warn!(error = %e, "the request sweep failed; retrying at the next interval");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Updates the gauges as of `now` and, holding the lease, marks requests overdue at `now`. Returns how
/// many it marked.
pub async fn sweep(state: &Services, now: Timestamp, interval: Duration) -> Result<usize, StoreError> {
    let (requests, tasks) = state.store.overdue_counts(now).await?;
    state.metrics.requests_overdue.set(requests as i64);
    state.metrics.request_tasks_overdue.set(tasks as i64);
    if !super::hold_lease(state, "requests", interval).await? {
        return Ok(0);
    }
    // Own parts left undone (a crash or a failure half-way) are done now; a request is given five minutes
    // before it counts as left.
    for r in state.store.unfinished_requests(now.plus_seconds(-300), BATCH).await? {
        if let Err(e) = resume(state, &r).await {
            tracing::warn!(error = %e, "resuming a request failed; retrying at the next sweep");
        }
    }
    let mut marked = 0;
    loop {
        let due = state.store.unmarked_overdue(now, BATCH).await?;
        let found = due.len();
        for r in due {
            let tasks = state.store.request(&r.id).await?.map(|s| s.tasks).unwrap_or_default();
            let pending: Vec<String> = tasks
                .into_iter()
                .filter(|t| t.status == TaskStatus::Pending)
                .map(|t| t.destination_id)
                .collect();
            let message = request_event(state, "request.overdue", &r, &pending, now);
            if state.store.mark_overdue(&r.id, now, message).await? {
                marked += 1;
            }
        }
        if found < BATCH as usize {
            break;
        }
    }
    if marked > 0 {
        state.dispatch_wake.notify_one();
    }
    Ok(marked)
}
