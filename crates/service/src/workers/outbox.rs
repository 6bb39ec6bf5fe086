//! The outbox sweep: deletes the outbox messages no destination can still need (every fan-out passed
//! them, none is pending or dead-lettered, and no destination can replay them: written before every
//! destination was created, or longer ago than `outbox_retention_secs`). See
//! [`consentry_store::Store::prune_outbox`] for what exactly stays.
//!
//! Bounded: one node at a time (a lease in the store), every minute, at most `STEPS` steps of `STEP`
//! messages each (every step its own short transaction), so it never holds the writer long; a backlog is
//! worked off over the next runs.

use std::time::Duration;

use consentry_core::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::state::Services;

const EVERY: Duration = Duration::from_secs(60);
const STEP: u32 = 1000;
const STEPS: usize = 100;

/// Runs the sweep every minute until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        match sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(messages = n, "deleted outbox messages no destination needs any more"),
            Err(e) => tracing::warn!(error = %e, "the outbox sweep failed; retrying in a minute"),
        }
    }
}

/// One bounded run, if this node holds the sweep's lease; returns how many messages it deleted.
pub async fn sweep(state: &Services) -> Result<u64, consentry_store::StoreError> {
    if !super::hold_lease(state, "outbox_sweep", EVERY).await? {
        return Ok(0);
    }
    let retention = i64::try_from(state.config.outbox_retention_secs).unwrap_or(i64::MAX);
    let not_before = Timestamp::now().plus_seconds(-retention);
    let (mut after, mut total) = (0, 0);
    for _ in 0..STEPS {
        let step = state.store.prune_outbox(after, not_before, STEP).await?;
        total += step.deleted;
        if step.done {
            break;
        }
        after = step.last;
    }
    Ok(total)
}
