//! Erasure (GDPR Art. 17): [`erase`], the one function that orders an erasure's steps, each of which may
//! run again, and the erased subjects this node knows ([`tombstones::Erasures`], held by the shared state).

pub mod tombstones;

use std::time::Duration;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::OutboxMessage;
use consentry_store::requests::SubjectErasure;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::state::Services;

/// The CloudEvent `subject.erased` (the dispatcher adds the subject id while their key exists). Its id comes
/// from the tombstone, so should an interrupted erasure queue it again, receivers see the same event.
fn erased_event(state: &Services, tombstone: &str, at: Timestamp) -> OutboxMessage {
    let id = format!("erased_{}", tombstone.get(..24).unwrap_or(tombstone));
    let data = serde_json::json!({"erased_at": at.to_string()});
    let source = state.config.event_source();
    crate::events::CloudEvent::new(source, id, "subject.erased", at, data).into_outbox()
}

/// How often an erasure looks whether the subject's messages have left while it waits for them.
const NOTICE_POLL: Duration = Duration::from_millis(50);

/// Erases `subject` (GDPR Art. 17), in this order, the one place that orders an erasure:
///
/// 1. **Tombstone.** Kept in memory at once, so this node refuses new consents, records and requests for
///    the subject, and the engine forgets them, so checks answer `erased` from here on (an erased subject
///    is never in the engine: the check path consults tombstones only for subjects it does not hold);
///    then stored on its own, so other nodes (their follower) and a restart ([`crate::open`]) do the same,
///    before anything is deleted.
/// 2. **Vault and data key**: the records go and the key that encrypted them is destroyed, so a copy of
///    their ciphertext (in a backup) stays unreadable.
/// 3. **Devices**: unpaired, their tokens stop working, their streams close.
/// 4. **`subject.erased`** queued under the subject's pseudonym while it still exists, so it goes out
///    naming them and downstream systems learn whom to erase; the receipts' rows (a receipt is built from
///    the ledger for the person, never stored) and the requests' details go.
/// 5. **The wait**: at most `erasure_notice_wait_secs`, for the destinations to take the subject's
///    pending messages (this one and any queued before) while the key still names them.
/// 6. **Pseudonym key** destroyed: the ledger keeps its events, and its hash chain, without naming anyone,
///    and nothing at rest names the person. A message still pending (a destination down or paused) goes
///    out later without the subject id, marked `erased: true`.
/// 7. **The vault and the key again**: a record that a write already past the check when the erasure
///    began stored afterwards, under a fresh data key, goes too, and so does a pseudonym key such a write
///    made afresh.
/// 8. **The engine forgets them again**, in case a write already past the check when the erasure began
///    applied its events meanwhile (other nodes' followers forget them from the tombstone).
///
/// Steps 2 to 4 are one store call ([`erase_subject`](consentry_store::requests::RequestStore::erase_subject)):
/// one transaction on PostgreSQL; on the embedded store one transaction per file, the data store's
/// (records, devices, `subject.erased`, receipts, details) before the key store's (the data key), with no
/// other write between them. Step 6 is another
/// ([`destroy_subject_key`](consentry_store::requests::RequestStore::destroy_subject_key)).
///
/// Resumable: every step may run again and does nothing twice (a tombstone or a key is stored or
/// destroyed once; a re-queued `subject.erased` has the same id). The request sweep
/// ([`crate::requests::resume`]) runs an erasure that stopped half-way again: from the start while the
/// subject's key exists (stopped before 6 was committed), or, once it is gone and the request no longer
/// names the subject, [`finish_without_subject`] does step 8. Step 7 needs the subject's id: an erasure
/// that stops between 6 and 7 leaves a record that a racing write stored in those moments.
///
/// Returns what was done, in plain words, for the request's history.
pub async fn erase(state: &Services, subject: &SubjectId) -> Result<String> {
    let tombstone = state
        .erasures
        .tombstone(subject.as_str())
        .ok_or_else(|| Error::internal("the erasure secret is not loaded"))?;
    let now = Timestamp::now();
    // The ids linked into the subject are the same person: erased with them, each with a tombstone of its
    // own and its pseudonym key destroyed (their rows moved to the subject at the link).
    let aliases = state.store.aliases_of(subject).await?;
    // 1.
    state.erasures.insert(&tombstone);
    state.engine.forget(subject.as_str());
    state.store.add_erasure_tombstone(&tombstone, now).await?;
    for alias in &aliases {
        let stone = state
            .erasures
            .tombstone(alias.as_str())
            .ok_or_else(|| Error::internal("the erasure secret is not loaded"))?;
        state.erasures.insert(&stone);
        state.engine.forget(alias.as_str());
        state.store.add_erasure_tombstone(&stone, now).await?;
    }
    // 2. to 4. (The households first: the erasure takes the person out of them, and their devices'
    // snapshots must lose the person's consents at once.)
    let households = state.store.subject_households(subject).await?;
    let notices = vec![erased_event(state, &tombstone, now)];
    let erased =
        state.store.erase_subject(SubjectErasure { subject: subject.clone(), at: now, notices }).await?;
    for id in &erased.devices {
        state.devices.unpaired(id);
    }
    for id in &households {
        state.devices.household_changed(id);
    }
    state.dispatch_wake.notify_one();
    // 5.
    let left = wait_for_messages(state, subject).await?;
    // 6. (The aliases' keys first: the subject's takes its links along.)
    for alias in &aliases {
        state.store.destroy_subject_key(alias).await?;
        state.aliases.forget(alias.as_str());
    }
    let had_key = state.store.destroy_subject_key(subject).await?;
    // 7. (With the key a racing write may have made afresh for the same id.)
    let records = erased.records + state.store.delete_subject_vault(subject).await?;
    state.store.destroy_subject_key(subject).await?;
    // 8.
    state.engine.forget(subject.as_str());
    state.aliases.forget(subject.as_str());
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    let records = format!("deleted {records} vault record(s) and destroyed the data key that encrypted them");
    let devices = format!("unpaired {} device(s), revoking their tokens", erased.devices.len());
    let key = if had_key {
        "destroyed the pseudonym key: the ledger keeps its events (proof of past consent) without naming the person"
    } else {
        "the subject had no pseudonym key"
    };
    let sent = if left {
        "queued subject.erased; a destination had not taken the subject's messages in time, so those still \
         pending go out without the subject id"
    } else {
        "sent subject.erased downstream"
    };
    Ok([records.as_str(), devices.as_str(), key, sent].join("; "))
}

/// Waits, at most the configured time, until no message queued for `subject` is pending. Returns whether
/// some still are.
async fn wait_for_messages(state: &Services, subject: &SubjectId) -> Result<bool> {
    let deadline = Instant::now() + state.config.erasure_notice_wait();
    loop {
        if !state.store.subject_messages_pending(subject).await? {
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(true);
        }
        tokio::time::sleep(NOTICE_POLL.min(deadline - now)).await;
    }
}

/// Step 8 of an erasure resumed once the subject's pseudonym key is gone (steps 1 to 6 are done, and the
/// request no longer names the subject): the engine forgets every erased subject it still holds, which
/// costs one keyed hash per subject it holds. Returns what was done, in plain words.
pub fn finish_without_subject(state: &Services) -> String {
    let forgotten = state.engine.forget_where(|subject| state.erasures.is_erased(subject));
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    tracing::info!(forgotten, "an erasure resumed after its key was destroyed");
    "the subject's pseudonym key had already been destroyed".to_owned()
}
