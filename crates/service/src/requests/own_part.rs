//! Consentry's own part of a data subject request, done when the request is accepted (or, when the
//! process stopped half-way, by the request sweep): the export made available, restriction and objection
//! recorded through the consent path, erasure, rectification of a vault record.

use consentry_core::request::{MAX_EXTENSION_MONTHS, Refusal, RequestAction, RequestStatus};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::requests::{ChangeOutcome, RequestRecord, StoredRequest};
use consentry_store::vault::{NewRecord, RecordMeta, RecordSelection, new_record_id};
use serde_json::Value;

use super::{EXPORT_DAYS, RequestKind};
use crate::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};
use crate::error::{Error, Result};
use crate::records::{RecordIn, payload};
use crate::state::Services;

/// Starts a request (when still `received`), does Consentry's own part and records it done.
#[allow(clippy::too_many_arguments)] // each is one fact of the request; a struct would only rename them
pub(super) async fn finish(
    state: &Services,
    id: &str,
    status: RequestStatus,
    subject: &SubjectId,
    kind: RequestKind,
    details: Option<&Value>,
    correction: Option<Correction>,
    actor: &str,
) -> Result<StoredRequest> {
    if status == RequestStatus::Received {
        changed(state.store.change_request(id, RequestAction::Start, Timestamp::now(), "system").await?)?;
    }
    let note = own_part(state, subject, kind, details, correction, actor).await?;
    let done = state
        .store
        .change_request(id, RequestAction::OwnPartDone { note: Some(note) }, Timestamp::now(), "system")
        .await?;
    changed(done)
}

/// Does the own part of a request whose process stopped (or failed) half-way, as `system`. An erasure runs
/// again ([`crate::erasure::erase`]: each of its steps may), or, once the subject's key is gone, finishes
/// with the engine. A rectification that names a vault record is left to the privacy team: its new content
/// was never kept. Returns whether it did.
pub async fn resume(state: &Services, r: &RequestRecord) -> Result<bool> {
    let kind = r.kind;
    let Some(subject) = &r.subject else {
        // The link to the person is gone: an erasure that stopped after destroying the key has only the
        // engine's part left.
        if kind != RequestKind::Erasure {
            return Ok(false);
        }
        let note = crate::erasure::finish_without_subject(state);
        if r.status == RequestStatus::Received {
            changed(
                state.store.change_request(&r.id, RequestAction::Start, Timestamp::now(), "system").await?,
            )?;
        }
        let done = RequestAction::OwnPartDone { note: Some(note) };
        changed(state.store.change_request(&r.id, done, Timestamp::now(), "system").await?)?;
        return Ok(true);
    };
    let details: Option<Value> = r.details.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let names_record = details.as_ref().is_some_and(|d| d.get("record").is_some_and(|v| !v.is_null()));
    if kind == RequestKind::Rectification && names_record {
        return Ok(false);
    }
    finish(state, &r.id, r.status, subject, kind, details.as_ref(), None, "system").await?;
    Ok(true)
}

/// The request a change left, or the problem its refusal is for the caller.
pub(super) fn changed(outcome: ChangeOutcome) -> Result<StoredRequest> {
    let refusal = match outcome {
        ChangeOutcome::Changed(r) => return Ok(*r),
        ChangeOutcome::NotFound => return Err(Error::NotFound("request")),
        ChangeOutcome::Refused(refusal) => refusal,
    };
    Err(match refusal {
        Refusal::UnknownTask => Error::NotFound("task"),
        Refusal::ExtensionMonths(_) => {
            Error::validation("months", format!("must be 1 to {MAX_EXTENSION_MONTHS}"))
        }
        Refusal::ExtensionBeyondLimit => Error::validation(
            "months",
            format!("a deadline may move by at most {MAX_EXTENSION_MONTHS} further months in total"),
        ),
        Refusal::Closed(_) | Refusal::TaskAlreadyCompleted | Refusal::NotDue | Refusal::AlreadyOverdue => {
            Error::Conflict(refusal.to_string())
        }
    })
}

/// Consentry's own part of a request; returns what was done, in plain words, for the history.
async fn own_part(
    state: &Services,
    subject: &SubjectId,
    kind: RequestKind,
    details: Option<&Value>,
    correction: Option<Correction>,
    actor: &str,
) -> Result<String> {
    match kind {
        RequestKind::Access | RequestKind::Portability => {
            Ok(format!("the export is available for {EXPORT_DAYS} days, generated on each download"))
        }
        RequestKind::Restriction | RequestKind::Objection => {
            let purpose = details.and_then(|d| d.get("purpose")).and_then(Value::as_str);
            let recorded = limit_processing(state, subject, kind, purpose, actor).await?;
            Ok(format!("recorded {recorded} ledger event(s)"))
        }
        RequestKind::Erasure => {
            let summary = crate::erasure::erase(state, subject).await?;
            Ok(summary)
        }
        RequestKind::Rectification => match correction {
            Some(c) => rectify(state, subject, c).await,
            None => {
                Ok("the correction asked for was recorded with the request, for the privacy team and the \
                        destinations to make; Consentry changed nothing itself"
                    .to_owned())
            }
        },
    }
}

/// A vault record to replace, and its new content, checked before the request is accepted.
#[derive(Debug)]
pub(super) struct Correction {
    old: RecordMeta,
    data: Vec<u8>,
    content_type: String,
}

/// For a rectification whose details name a vault record (`details.record`) and its new content
/// (`details.json`, or `details.data` in base64 with `details.content_type`): checks that the record is
/// the subject's and the content acceptable.
pub(super) async fn prepare_correction(
    state: &Services,
    subject: &SubjectId,
    details: Option<&Value>,
) -> Result<Option<Correction>> {
    let Some(id) = details.and_then(|d| d.get("record")).and_then(Value::as_str) else { return Ok(None) };
    let found = state.store.record_meta(id).await?;
    let Some((owner, old)) = found.filter(|(owner, _)| owner == subject) else {
        return Err(Error::validation("details.record", "the subject has no vault record with this id"));
    };
    let field = |name: &str| details.and_then(|d| d.get(name)).cloned();
    let mut body = RecordIn {
        subject: Some(owner.into_string()),
        category: old.category.clone(),
        purpose: old.purpose.clone(),
        content_type: field("content_type").and_then(|v| v.as_str().map(str::to_owned)),
        data: field("data").and_then(|v| v.as_str().map(str::to_owned)),
        json: field("json"),
        collected_at: None,
    };
    let (data, content_type) = payload(state, &mut body).map_err(|e| match e {
        Error::Validation { detail, errors } => Error::Validation {
            detail,
            errors: errors
                .into_iter()
                .map(|mut f| {
                    f.path = format!("details.{}", f.path);
                    f
                })
                .collect(),
        },
        other => other,
    })?;
    Ok(Some(Correction { old, data, content_type }))
}

/// Replaces a vault record with its corrected content, keeping its category, purpose, device, collection
/// time and retention; the old record is deleted (a `record.deleted` event goes downstream).
async fn rectify(state: &Services, subject: &SubjectId, c: Correction) -> Result<String> {
    let now = Timestamp::now();
    let record = NewRecord {
        id: new_record_id(now)?,
        subject: subject.clone(),
        device_id: c.old.device_id.clone(),
        category: c.old.category.clone(),
        purpose: c.old.purpose.clone(),
        content_type: c.content_type,
        collected_at: c.old.collected_at,
        stored_at: now,
        delete_after: c.old.delete_after,
        data: c.data,
    };
    let new = state.store.put_record(&state.kek, record).await?;
    let selection = RecordSelection::Ids { subject: subject.clone(), ids: vec![c.old.id.clone()] };
    crate::records::delete_announced(state, selection, crate::events::DeletionReason::Request).await?;
    Ok(format!(
        "replaced vault record {} with {} holding the corrected content (same category, purpose, collection \
         time and retention)",
        c.old.id, new.id
    ))
}

/// Records `restrict` or `object` statements on `purpose` (or on every top-level purpose) through the
/// consent path, so checks deny and the change propagates. Returns how many events were recorded.
async fn limit_processing(
    state: &Services,
    subject: &SubjectId,
    kind: RequestKind,
    purpose: Option<&str>,
    actor: &str,
) -> Result<usize> {
    let action = if kind == RequestKind::Restriction { ChangeAction::Restrict } else { ChangeAction::Object };
    let purposes: Vec<String> = match purpose {
        Some(p) => vec![p.to_owned()],
        None => {
            let view = state.catalog();
            let keys: Vec<&str> = view.catalog.document().purposes.iter().map(|p| p.key.as_str()).collect();
            // A statement on a purpose speaks for those under it: the roots cover everything.
            keys.iter()
                .filter(|k| !keys.iter().any(|other| k.starts_with(&format!("{other}."))))
                .map(|k| (*k).to_owned())
                .collect()
        }
    };
    let changes = purposes
        .into_iter()
        .map(|purpose| ChangeIn {
            purpose,
            action,
            categories: Vec::new(),
            channels: Vec::new(),
            recipients: Vec::new(),
            expires_at: None,
        })
        .collect();
    let body = RecordConsents {
        notice: None,
        notice_version: None,
        collection_point: None,
        changes,
        jurisdiction: None,
        actor: None,
    };
    Ok(record_changes(state, subject, body, actor).await?.events.len())
}
