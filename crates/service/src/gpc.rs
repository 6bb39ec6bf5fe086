//! Global Privacy Control: recording a person's "do not sell or share my data" browser signal, once.
//!
//! The preference centre and the subject API (its GPC middleware) both record the signal through
//! [`honour`]: a `withdraw` (an `object` for a purpose not based on consent) of every purpose the catalogue
//! marks `sale_or_sharing`, with actor `signal:gpc`. "Once": a purpose whose current state already holds
//! a negative statement from the signal is skipped, so repeated requests add nothing.

use consentry_core::SubjectId;
use consentry_core::catalog::Basis;
use consentry_core::ledger::ACTOR_GPC;

use crate::access::Reader;
use crate::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};
use crate::error::Result;
use crate::state::Services;

/// Records the signal for `subject` unless its current state already holds it for every sale-or-sharing
/// purpose. Returns the purposes withdrawn now (empty when nothing was left to record). When something was
/// recorded, `reader` logs it: in the person's access log when their own browser sent it (the preference
/// centre, or the API with their subject token); a service relaying it is in the ledger only.
///
/// Concurrent first requests on this node record it once: what is missing is read again under
/// `gpc_lock` before recording (the lock is taken only when something is missing, so repeated requests
/// do not queue). Two nodes may still both record it once each; the second adds a statement equal in
/// effect.
pub async fn honour(services: &Services, subject: &SubjectId, reader: Reader<'_>) -> Result<Vec<String>> {
    if missing(services, subject).await?.is_empty() {
        return Ok(Vec::new());
    }
    let _one_at_a_time = services.gpc_lock.lock().await;
    let changes = missing(services, subject).await?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let body = RecordConsents {
        notice: None,
        notice_version: None,
        collection_point: None,
        changes,
        jurisdiction: None,
        actor: None,
    };
    let recorded = record_changes(services, subject, body, ACTOR_GPC).await?;
    tracing::info!(events = recorded.events.len(), "recorded a Global Privacy Control signal");
    reader.log(&services.access, subject);
    Ok(recorded.events.into_iter().map(|e| e.purpose).collect())
}

/// The changes the signal still needs for `subject`: a negative statement from the signal on every
/// sale-or-sharing purpose that holds none.
async fn missing(services: &Services, subject: &SubjectId) -> Result<Vec<ChangeIn>> {
    let view = services.catalog();
    let purposes: Vec<String> = services
        .engine
        .sale_or_sharing_purposes()
        .into_iter()
        .filter(|p| view.catalog.purpose(p).is_some_and(|p| p.sale_or_sharing))
        .collect();
    if purposes.is_empty() {
        return Ok(Vec::new());
    }
    let current = services.store.current(subject).await?;
    let held = |purpose: &str| {
        current.iter().any(|e| e.purpose == purpose && e.actor == ACTOR_GPC && !e.action.is_positive())
    };
    Ok(purposes
        .iter()
        .filter(|p| !held(p))
        .filter_map(|p| {
            let basis = view.catalog.purpose(p)?.basis;
            let action = if basis == Basis::Consent { ChangeAction::Withdraw } else { ChangeAction::Object };
            Some(ChangeIn {
                purpose: p.clone(),
                action,
                categories: Vec::new(),
                channels: Vec::new(),
                recipients: Vec::new(),
                expires_at: None,
            })
        })
        .collect())
}
