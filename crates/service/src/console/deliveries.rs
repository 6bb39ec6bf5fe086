//! The console's deliveries: every destination with its state (active, paused, flagged after a dead
//! letter), the event types it takes and how far it lags (its oldest undelivered message), how far the outbox lags (its oldest undelivered message) and how
//! many dead letters wait; one destination's deliveries a page at a time (all, pending, delivered or dead,
//! with the coarse error of the last failed attempt); and what a `console:write` session does: replay one
//! dead letter alone, replay from a dead letter on, replay everything since a time, pause and resume. Actions are logged with the key's
//! name.

use consentry_core::Timestamp;

use super::ConsoleCaller;
use crate::destinations::{self, DeliveryList, DestinationOut, ReplayOut, ReplayRequest, UpdateDestination};
use crate::error::{Error, Result};
use crate::state::Services;

/// Deliveries per page.
pub const PER_PAGE: u32 = 25;

/// Every destination, and the outbox's health.
#[derive(Debug)]
pub struct Deliveries {
    pub destinations: Vec<DestinationOut>,
    /// Per destination (in the same order), seconds since its oldest undelivered message was made.
    pub lags: Vec<Option<f64>>,
    /// Seconds since the oldest message still undelivered to some destination was made; none when none is.
    pub lag_seconds: Option<f64>,
    pub dead_letters: u64,
}

/// The deliveries page.
pub async fn overview(services: &Services) -> Result<Deliveries> {
    let now = Timestamp::now();
    let destinations = destinations::list(services).await?.destinations;
    let mut lags = Vec::with_capacity(destinations.len());
    for d in &destinations {
        lags.push(services.store.destination_lag(&d.id, now).await?);
    }
    let lag_seconds = services.store.outbox_lag(now).await?;
    let dead_letters = services.store.dead_letters().await?;
    Ok(Deliveries { destinations, lags, lag_seconds, dead_letters })
}

/// One destination, seconds since its oldest undelivered message was made, and a page of its deliveries
/// (`status` one of `pending`, `delivered`, `dead`, or all).
pub async fn destination(
    services: &Services,
    id: &str,
    status: Option<&str>,
    after: Option<i64>,
) -> Result<(DestinationOut, Option<f64>, DeliveryList)> {
    let destination = destinations::get(services, id).await?;
    let lag = services.store.destination_lag(id, Timestamp::now()).await?;
    let list = destinations::deliveries(services, id, status, after, Some(PER_PAGE)).await?;
    Ok((destination, lag, list))
}

/// Queues again the events of destination `id` from the delivery `from_id` on, or since the time `since`.
/// Needs `console:write`.
pub async fn replay(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    from_id: Option<i64>,
    since: Option<Timestamp>,
) -> Result<ReplayOut> {
    caller.require_write()?;
    tracing::info!(destination = %id, by = %caller.actor(), "console: replay");
    destinations::replay(services, &caller.caller, id, ReplayRequest { from_id, since }).await
}

/// Queues the dead letter of outbox message `outbox_id` to destination `id` again, alone (404 when the
/// destination has no such dead letter). Needs `console:write`.
pub async fn replay_dead_letter(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    outbox_id: i64,
) -> Result<()> {
    caller.require_write()?;
    destinations::get(services, id).await?;
    if !services.store.replay_dead_letter(id, outbox_id, Timestamp::now()).await? {
        return Err(Error::NotFound("dead letter"));
    }
    services.dispatch_wake.notify_one();
    tracing::info!(destination = %id, outbox_id, by = %caller.actor(), "console: one dead letter replayed");
    Ok(())
}

/// Pauses or resumes destination `id`. Needs `console:write`.
pub async fn set_paused(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    paused: bool,
) -> Result<DestinationOut> {
    caller.require_write()?;
    tracing::info!(destination = %id, paused, by = %caller.actor(), "console: destination paused or resumed");
    let patch = UpdateDestination { name: None, url: None, event_types: None, paused: Some(paused) };
    destinations::update(services, id, patch).await
}
