//! Deletes vault records whose retention ended (their `delete_after` passed), each announced downstream
//! as a `record.deleted` event committed with the deletion.
//!
//! One node at a time runs it (a lease in the store); on PostgreSQL the rows it deletes are also taken
//! with `SKIP LOCKED`, so even overlapping runs never delete (or announce) a record twice.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_store::vault::RecordSelection;
use tokio_util::sync::CancellationToken;

use crate::events::DeletionReason;
use crate::records::delete_announced;
use crate::state::Services;

const BATCH: u32 = 500;

/// Runs the sweeper every `retention_interval_secs` until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.retention_interval_secs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match sweep(&state, interval).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "deleted vault records past their retention"),
            Err(e) => tracing::warn!(error = %e, "the retention sweep failed; retrying at the next interval"),
        }
    }
}

/// Deletes every record past its retention, if this node holds the retention lease. Returns how many.
pub async fn sweep(state: &Services, interval: Duration) -> Result<usize, consentry_store::StoreError> {
    let now = Timestamp::now();
    if !super::hold_lease(state, "retention", interval).await? {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let selection = RecordSelection::Due { now, limit: BATCH };
        let deleted = delete_announced(state, selection, DeletionReason::Retention).await?;
        total += deleted.len();
        if deleted.len() < BATCH as usize {
            return Ok(total);
        }
    }
}
