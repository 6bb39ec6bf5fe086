//! Signs the ledger's Merkle tree head as a C2SP checkpoint after commits: woken by the store after each
//! commit group, it signs at most once per 100 ms (commits meanwhile are covered by the next checkpoint)
//! and looks every second for what other nodes appended (PostgreSQL), so a log that changed is signed
//! well within the minute. It runs off the store's writer, which never waits for a signature.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::state::Services;
use crate::tlog;

/// The shortest time between two checkpoints of one node.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// How often the ledger is looked at without a wake-up (other nodes' appends).
const POLL: Duration = Duration::from_secs(1);

/// Signs checkpoints until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let mut last = match state.store.latest_tlog_checkpoint().await {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the latest checkpoint; signing a new one");
            None
        }
    };
    if let Some(c) = &last {
        state.tlog.seen(c);
    }
    let mut signed_at = Instant::now() - MIN_GAP;
    loop {
        let wait = MIN_GAP.saturating_sub(signed_at.elapsed());
        if !wait.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        match tlog::sign_head(&state, last.as_ref()).await {
            Ok(newest) => {
                if newest.as_ref().map(|c| c.size) != last.as_ref().map(|c| c.size) {
                    signed_at = Instant::now();
                }
                last = newest;
            }
            Err(e) => tracing::warn!(error = %e, "signing a checkpoint failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = state.tlog.grown.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}
