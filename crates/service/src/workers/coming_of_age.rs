//! Tells downstream systems when a known child comes of age: a `subject.came_of_age` CloudEvent, once per
//! person, when the age of digital consent of their place (16 where none is set) is reached.
//!
//! A child comes of age without any write (the engine compares each check's time with the birth date), so
//! this job looks: every stated age waits in the store until the subject has come of age
//! ([`GuardianStore::pending_ages`](consentry_store::GuardianStore::pending_ages)). Then the wait ends with
//! the event queued in the same write, and only if the age still is the one looked at and no one ended
//! the wait before ([`settle_coming_of_age`](consentry_store::GuardianStore::settle_coming_of_age)): with
//! the lease, one node at a time runs it, and the store's write makes it once even if two do. Someone who
//! was no child when the age was stated (an adult's birth date, `18+`) was never a known child: the wait
//! ends without an event. A statement that makes a known child an adult announces them itself, in its
//! own write ([`crate::guardians::age`]), and ends the wait: the job never sends a second event for them.
//!
//! It runs every `expiry_interval_secs`, like the expiry job. An age is looked at a minute after it was
//! stated at the earliest, so the engine of the node holding the lease has learnt it (the follower reads
//! other nodes' ages every two seconds); until the engine knows the age, it waits.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::guardians::age::came_of_age_message;
use crate::state::Services;

pub use crate::guardians::age::CAME_OF_AGE_TYPE;

/// How long after an age was stated it is looked at, at the earliest.
const SETTLE_MICROS: i64 = 60_000_000;
const PAGE: u32 = 500;

/// Runs the job every `expiry_interval_secs` until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let interval = Duration::from_secs(state.config.expiry_interval_secs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = announce_due(&state, Timestamp::now(), interval).await {
            tracing::warn!(error = %e, "the coming-of-age job failed; retrying at the next interval");
        }
    }
}

/// Announces every known child who has come of age by `now` and was not announced, if this node holds
/// the lease; ends the wait of ages that make no child. Returns how many were announced.
pub async fn announce_due(state: &Services, now: Timestamp, interval: Duration) -> Result<usize, StoreError> {
    if !super::hold_lease(state, "coming_of_age", interval).await? {
        return Ok(0);
    }
    let stated_by = now.plus_micros(-SETTLE_MICROS);
    let (mut after, mut announced) = (None, 0);
    loop {
        let (page, last) = state.store.pending_ages(stated_by, after, PAGE).await?;
        for pending in &page {
            if state.erasures.is_erased(pending.subject.as_str()) {
                continue;
            }
            // Not known here yet, or still a child: it waits.
            let Some(until) = state.engine.child_until(pending.subject.as_str()) else { continue };
            if until > now {
                continue;
            }
            let announce = if until > pending.stated_at {
                Some((until, came_of_age_message(state, &pending.subject, until)?))
            } else {
                None
            };
            let is_announced = announce.is_some();
            if state.store.settle_coming_of_age(&pending.subject, pending.stated_at, announce).await?
                && is_announced
            {
                announced += 1;
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
        after = last;
    }
    if announced > 0 {
        tracing::info!(announced, "known children came of age");
        state.dispatch_wake.notify_one();
    }
    Ok(announced)
}
