//! Writes the checks counted in memory per purpose into the console's day counters every few seconds,
//! and once more at shutdown ([`crate::console::checks::flush`]). Every node runs it for its own counts:
//! the store adds them up.

use std::time::Duration;

use consentry_core::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::console::checks;
use crate::state::Services;

const INTERVAL: Duration = Duration::from_secs(5);

/// Flushes every [`INTERVAL`] until `shutdown`, then a last time.
pub async fn run(state: Services, shutdown: CancellationToken) {
    loop {
        let stop = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(INTERVAL) => false,
        };
        if let Err(e) = checks::flush(&state.purpose_checks, state.store.as_ref(), Timestamp::now()).await {
            tracing::warn!(error = %e, "writing the console's check counters failed; they are kept for the next try");
        }
        if stop {
            return;
        }
    }
}
