//! Background workers, each in its own module. Every worker stops when the shutdown token fires.

pub mod checkpoints;
pub mod device_mqtt;
pub mod dispatcher;
pub mod expiry;
pub mod follower;
pub mod requests;
pub mod retention;

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_store::StoreError;

use crate::state::AppState;

/// Takes or renews the singleton lease `name` for this node, for three runs of a job that runs every
/// `interval` (so one missed run does not hand the job to another node). Returns whether this node holds it.
pub(crate) async fn hold_lease(state: &AppState, name: &str, interval: Duration) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let until = now.plus_micros(i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).saturating_mul(3));
    state.store.try_lease(name, &state.node_id, until, now).await
}
