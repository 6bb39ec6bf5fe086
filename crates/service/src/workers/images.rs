//! Writes an image of the decision engine's state to the store every `engine_image_interval_secs` while
//! the ledger grows (and once more at shutdown, from [`super::Workers::finish`]), so the next start reads
//! the image and the ledger after it instead of every subject's current state ([`crate::images`]).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::Services;

/// Writes images until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.engine_image_interval_secs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match crate::images::save(&state).await {
            Ok(Some(covers)) => tracing::debug!(covers, "engine image written"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "writing the engine image failed; retrying at the next interval")
            }
        }
    }
}
