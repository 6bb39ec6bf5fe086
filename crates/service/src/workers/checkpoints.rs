//! Signs the ledger head at intervals, when it changed, and once more at shutdown. A verifier holding a
//! checkpoint for N events detects any of those N events cut off the end of the ledger.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_core::proof::Checkpoint;
use tokio_util::sync::CancellationToken;

use crate::state::Services;

/// Takes a checkpoint every `checkpoint_interval_secs` while the ledger grows, until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.checkpoint_interval_secs);
    let mut last = match state.store.checkpoints().await {
        Ok(list) => list.last().map(|c| c.events),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read checkpoints; taking a new one");
            None
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match take(&state, last).await {
            Ok(taken) => last = taken,
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; retrying at the next interval"),
        }
    }
}

/// Signs and stores the current head unless `last` already covers it; returns the newest checkpointed length.
pub async fn take(state: &Services, last: Option<u64>) -> Result<Option<u64>, consentry_store::StoreError> {
    let head = state.store.ledger_head().await?;
    if last.is_some_and(|l| l >= head.events) {
        return Ok(last);
    }
    let checkpoint = Checkpoint::new(head.events, head.head.clone(), Timestamp::now());
    let jws = state.signing.current().sign_jws(&checkpoint);
    state.store.insert_checkpoint(head.events, &head.head, &jws).await?;
    Ok(Some(head.events))
}
