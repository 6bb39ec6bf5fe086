//! Keeps the console's rollups up with the ledger: folds new events in a few seconds after they commit
//! ([`crate::console::rollups::catch_up`]). Every node may run it: the cursor's compare-and-set in the
//! store lets one fold win and the others find nothing left to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::console::rollups;
use crate::state::Services;

const INTERVAL: Duration = Duration::from_secs(2);

/// Folds until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    loop {
        if let Err(e) = rollups::catch_up(state.store.as_ref()).await {
            tracing::warn!(error = %e, "folding the ledger into the console's rollups failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
