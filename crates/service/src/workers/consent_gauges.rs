//! Keeps the per-purpose consent gauges (`consentry_consents`) from the in-memory engine: never from the
//! store, never on a scrape or a check. It counts again when the engine changed, and at least once a
//! minute (grants expire as time passes), but waits ten times as long as the last count took (at least a
//! second) between counts, so a large engine costs at most about a tenth of one core.

use std::time::{Duration, Instant};

use consentry_core::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::state::Services;

const MIN_PAUSE: Duration = Duration::from_secs(1);
const REFRESH: Duration = Duration::from_secs(60);

/// Counts until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let mut counted: Option<(u64, Instant)> = None;
    let mut pause = MIN_PAUSE;
    loop {
        let generation = state.engine.generation();
        let due = counted.is_none_or(|(seen, at)| seen != generation || at.elapsed() >= REFRESH);
        if due {
            let started = Instant::now();
            let counting = state.clone();
            match tokio::task::spawn_blocking(move || counting.engine.consent_tally(Timestamp::now())).await {
                Ok(tallies) => state.metrics.set_consents(tallies),
                Err(e) => tracing::warn!(error = %e, "counting consents for the gauges failed"),
            }
            counted = Some((generation, Instant::now()));
            pause = started.elapsed().saturating_mul(10).max(MIN_PAUSE);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
