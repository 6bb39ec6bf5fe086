//! The console's deliveries: every destination with its state (active, paused, flagged after a dead
//! letter), the event types it takes and how far it lags (its oldest undelivered message), how far the outbox lags (its oldest undelivered message) and how
//! many dead letters wait; one destination's deliveries a page at a time (all, pending, delivered or dead,
//! with the coarse error of the last failed attempt); and what a `console:write` session does: replay one
//! dead letter alone, replay from a dead letter on, replay everything since a time, pause and resume. Actions are logged with the key's
//! name.

use consentry_core::Timestamp;
use consentry_store::{AttemptBucket, minute_of};

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
    /// Per destination (in the same order), its attempts over the last hour and the last day.
    pub success: Vec<(Attempts, Attempts)>,
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
    let minute = minute_of(now);
    let hour = services.store.delivery_attempt_totals(minute - 59).await?;
    let day = services.store.delivery_attempt_totals(minute - DAY_MINUTES + 1).await?;
    let of = |totals: &[(String, u64, u64)], id: &str| {
        totals.iter().find(|t| t.0 == id).map_or(Attempts::default(), |t| Attempts { ok: t.1, failed: t.2 })
    };
    let success = destinations.iter().map(|d| (of(&hour, &d.id), of(&day, &d.id))).collect();
    let lag_seconds = services.store.outbox_lag(now).await?;
    let dead_letters = services.store.dead_letters().await?;
    Ok(Deliveries { destinations, lags, success, lag_seconds, dead_letters })
}

/// Minutes in a day.
const DAY_MINUTES: i64 = 24 * 60;

/// Delivery attempts: how many succeeded and how many failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub ok: u64,
    pub failed: u64,
}

impl Attempts {
    /// Successes among the attempts, in percent; none without attempts.
    pub fn rate(self) -> Option<f64> {
        let all = self.ok + self.failed;
        (all > 0).then(|| self.ok as f64 * 100.0 / all as f64)
    }
}

/// A destination's attempts over the last hour, a bucket a minute, and over the last day, a bucket an
/// hour; each bucket with its first instant, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub hour: Vec<(Timestamp, Attempts)>,
    pub day: Vec<(Timestamp, Attempts)>,
}

/// The buckets of [`Success`] ending with the minute `now` (since 1970, UTC), from a destination's
/// minute buckets (at least those of the last 24 hours begun).
pub fn success(rows: &[AttemptBucket], now: i64) -> Success {
    let at = |minute: i64| Timestamp::from_micros(minute.saturating_mul(60_000_000));
    let mut hour: Vec<(Timestamp, Attempts)> =
        (now - 59..=now).map(|m| (at(m), Attempts::default())).collect();
    let this_hour = now.div_euclid(60);
    let mut day: Vec<(Timestamp, Attempts)> =
        (this_hour - 23..=this_hour).map(|h| (at(h * 60), Attempts::default())).collect();
    for row in rows {
        let add = |bucket: &mut Attempts| {
            bucket.ok += row.ok;
            bucket.failed += row.failed;
        };
        if let Some(i) = usize::try_from(row.minute - (now - 59)).ok().filter(|i| *i < hour.len()) {
            add(&mut hour[i].1);
        }
        if let Some(i) =
            usize::try_from(row.minute.div_euclid(60) - (this_hour - 23)).ok().filter(|i| *i < day.len())
        {
            add(&mut day[i].1);
        }
    }
    Success { hour, day }
}

/// One destination, seconds since its oldest undelivered message was made, its success over the last hour
/// and day, and a page of its deliveries (`status` one of `pending`, `delivered`, `dead`, or all).
pub async fn destination(
    services: &Services,
    id: &str,
    status: Option<&str>,
    after: Option<i64>,
) -> Result<(DestinationOut, Option<f64>, Success, DeliveryList)> {
    let destination = destinations::get(services, id).await?;
    let now = Timestamp::now();
    let lag = services.store.destination_lag(id, now).await?;
    let minute = minute_of(now);
    let rows = services.store.delivery_attempts(id, (minute.div_euclid(60) - 23) * 60).await?;
    let list = destinations::deliveries(services, id, status, after, Some(PER_PAGE)).await?;
    Ok((destination, lag, success(&rows, minute), list))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_has_sixty_minutes_and_twenty_four_hours() {
        let now = 1_000_000 * 60 + 30; // half past some hour
        let rows = [
            AttemptBucket { minute: now, ok: 3, failed: 1 },
            AttemptBucket { minute: now - 59, ok: 0, failed: 2 },
            AttemptBucket { minute: now - 60, ok: 5, failed: 0 },
            AttemptBucket { minute: now - 30 - 23 * 60, ok: 1, failed: 1 },
            AttemptBucket { minute: now - 31 - 23 * 60, ok: 9, failed: 9 },
        ];
        let s = success(&rows, now);
        assert_eq!((s.hour.len(), s.day.len()), (60, 24));
        assert_eq!(s.hour[59].1, Attempts { ok: 3, failed: 1 });
        assert_eq!(s.hour[0].1, Attempts { ok: 0, failed: 2 });
        assert_eq!(s.day[23].1, Attempts { ok: 3, failed: 1 }, "this hour so far");
        assert_eq!(s.day[22].1, Attempts { ok: 5, failed: 2 }, "the hour before");
        assert_eq!(s.day[0].1, Attempts { ok: 1, failed: 1 }, "the oldest hour; the one before is out");
        assert_eq!(s.day[23].0.micros() % 3_600_000_000, 0, "hours begin on the hour");
        assert_eq!(s.hour[59].1.rate(), Some(75.0));
        assert_eq!(Attempts::default().rate(), None);
    }
}
