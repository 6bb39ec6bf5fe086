//! Background workers, each in its own module. Every worker stops when the shutdown token fires.

pub mod coming_of_age;
pub mod consent_gauges;
pub mod console_checks;
pub mod console_rollups;
pub mod device_mqtt;
pub mod dispatcher;
pub mod expiry;
pub mod follower;
pub mod images;
pub mod outbox;
pub mod requests;
pub mod retention;
pub mod tlog;

use std::sync::Arc;
use std::time::Duration;

use consentry_core::Timestamp;
use consentry_store::StoreError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::Services;

/// Takes or renews the singleton lease `name` for this node, for three runs of a job that runs every
/// `interval` (so one missed run does not hand the job to another node). Returns whether this node holds it.
pub(crate) async fn hold_lease(state: &Services, name: &str, interval: Duration) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let until = now.plus_micros(i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).saturating_mul(3));
    state.store.try_lease(name, &state.node_id, until, now).await
}

/// The running background jobs of one node.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

/// Starts every background job of a node; they stop when `stop` fires ([`Workers::finish`]).
pub fn start(state: &Services, stop: CancellationToken) -> Workers {
    let from = state.followed.load(std::sync::atomic::Ordering::Relaxed);
    let mut handles = vec![
        tokio::spawn(follower::run(state.clone(), from, stop.clone())),
        tokio::spawn(images::run(state.clone(), stop.clone())),
        tokio::spawn(tlog::run(state.clone(), stop.clone())),
        tokio::spawn(consent_gauges::run(state.clone(), stop.clone())),
        tokio::spawn(console_rollups::run(state.clone(), stop.clone())),
        tokio::spawn(console_checks::run(state.clone(), stop.clone())),
        tokio::spawn(expiry::run(state.clone(), stop.clone())),
        tokio::spawn(coming_of_age::run(state.clone(), stop.clone())),
        tokio::spawn(requests::run(state.clone(), stop.clone())),
        tokio::spawn(retention::run(state.clone(), stop.clone())),
        tokio::spawn(outbox::run(state.clone(), stop.clone())),
        tokio::spawn(dispatcher::run(state.clone(), Arc::clone(&state.dispatch_wake), stop.clone())),
        tokio::spawn(device_mqtt::run(state.clone(), stop.clone())),
    ];
    let (access_state, access_stop) = (state.clone(), stop);
    handles.push(tokio::spawn(async move {
        access_state.access.run(access_state.store.as_ref(), access_stop).await;
    }));
    Workers { handles }
}

impl Workers {
    /// Waits for every job (after the stop token fired), signs a last tree checkpoint so the final head is
    /// signed, writes an image of the engine for the next start, and closes the store.
    pub async fn finish(self, state: Services) {
        for handle in self.handles {
            let _ = handle.await;
        }
        if let Err(e) = crate::tlog::settle(&state).await {
            tracing::warn!(error = %e, "the shutdown tree checkpoint failed");
        }
        if let Err(e) = crate::images::save(&state).await {
            tracing::warn!(error = %e, "the shutdown engine image failed; the next start loads every subject");
        }
        let store = Arc::clone(&state.store);
        drop(state);
        store.close().await;
    }
}
