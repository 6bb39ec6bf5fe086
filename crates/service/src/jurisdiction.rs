//! A subject's jurisdiction on its own: `PUT /v1/subjects/{subject}/jurisdiction` records it as a
//! `locate` ledger event (no purpose, no consent), which the engine, other nodes and a restarted node
//! learn like any event; `GET` reads the engine's.

use consentry_core::{Action, NewEvent, Scope, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::Principal;
use crate::consents::EventOut;
use crate::error::{Error, FieldProblem, Result};
use crate::state::Services;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetJurisdiction {
    /// A place of the catalogue's `jurisdictions` (ISO 3166-1 alpha-2 or ISO 3166-2; 422
    /// `unknown_jurisdiction` for one it lacks).
    #[schema(min_length = 2, max_length = 6, pattern = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", example = "US-CA")]
    pub jurisdiction: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectJurisdiction {
    /// The subject's jurisdiction, which checks that name none decide by; `null` when none was set.
    #[schema(example = "US-CA")]
    pub jurisdiction: Option<String>,
    /// The `locate` ledger event that set it now; absent when the subject was already there (nothing
    /// was recorded) and on a read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventOut>,
}

/// Sets `subject`'s jurisdiction as `principal`: one `locate` event, durable before the answer, unless
/// the engine already holds that place for the subject.
pub async fn set(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    body: SetJurisdiction,
    reader: Reader<'_>,
) -> Result<SubjectJurisdiction> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let place = body.jurisdiction;
    if state.catalog().catalog.jurisdiction(&place).is_none() {
        return Err(Error::unknown_jurisdiction("jurisdiction", &place));
    }
    // Their place sets the age that makes them a child: a known child alone cannot move it.
    if matches!(principal, Principal::Subject(_)) && state.engine.is_child(subject.as_str(), Timestamp::now())
    {
        let message = "this subject is a known child; a guardian or the brand sets their jurisdiction";
        return Err(Error::GuardianRequired {
            detail: message.into(),
            errors: vec![FieldProblem { path: "jurisdiction".into(), message: message.into() }],
        });
    }
    if state.engine.subject_jurisdiction(subject.as_str()).as_deref() == Some(place.as_str()) {
        return Ok(SubjectJurisdiction { jurisdiction: Some(place), event: None });
    }
    let event = NewEvent {
        purpose: String::new(),
        action: Action::Locate,
        scope: Scope::default(),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: principal.actor(),
        expires_at: None,
        evidence: None,
        occurred_at: None,
        jurisdiction: Some(place.clone()),
    };
    let placed = state.store.append(subject, vec![event]).await?;
    state.apply_committed(subject, &placed);
    state.metrics.ledger_appends.inc_by(placed.len() as u64);
    // Devices decide offline by the subject's place too.
    state.devices.subject_changed(subject);
    reader.log(&state.access, subject);
    let event = placed.into_iter().next().map(|e| EventOut::new(subject, e));
    Ok(SubjectJurisdiction { jurisdiction: Some(place), event })
}

/// `subject`'s jurisdiction as the engine holds it.
pub fn get(state: &Services, subject: &SubjectId, reader: Reader<'_>) -> SubjectJurisdiction {
    reader.log(&state.access, subject);
    SubjectJurisdiction { jurisdiction: state.engine.subject_jurisdiction(subject.as_str()), event: None }
}
