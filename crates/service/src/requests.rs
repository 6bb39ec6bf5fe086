//! `/v1/requests`: data subject requests (GDPR Art. 15–21) as tracked objects with a deadline, fanned out
//! to every destination subscribed to `request.*`, each of which confirms its part.
//!
//! Consentry does its own part when the request is accepted: access and portability make the export
//! available (for [`EXPORT_DAYS`] days, generated on each download, never stored); erasure deletes the
//! subject's vault and devices and destroys their keys, keeping a tombstone ([`crate::erasure`]);
//! restriction and objection record `restrict` / `object` ledger events through the consent path;
//! rectification replaces the vault record it names, or records what was asked. The request completes
//! once that is done and every task is confirmed. The plain functions here ([`submit`], [`view`],
//! [`subject_requests`], [`export_archive`]) serve the preference centre too.

use consentry_core::{SubjectId, Timestamp};

use consentry_store::requests::{
    ChangeOutcome, NewRequest, REQUEST_IN_PROGRESS, REQUEST_RECEIVED, REQUEST_REJECTED, RequestChange,
    RequestFilter, RequestRecord, StoredRequest, TASK_PENDING,
};

use consentry_store::vault::{NewRecord, RecordMeta, RecordSelection, new_record_id};

use consentry_store::{OutboxMessage, random_bytes};

use serde::{Deserialize, Serialize};

use serde_json::{Value, json};

use utoipa::ToSchema;

use crate::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};

use crate::records::{RecordIn, payload};

use crate::auth::{Principal, Scope};

use crate::error::{Error, Result};

use crate::state::Services;

use crate::workers::dispatcher::type_matches;

/// How long an export stays available once it is ready.
pub const EXPORT_DAYS: i64 = 7;

/// The most a deadline may be extended, in months beyond the first (Art. 12(3)).
pub const MAX_EXTENSION_MONTHS: u32 = 2;

/// Longest reason or note accepted.
pub const MAX_TEXT: usize = 2000;

/// The kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    Access,
    Portability,
    Erasure,
    Rectification,
    Restriction,
    Objection,
}

impl RequestType {
    pub const ALL: [RequestType; 6] = [
        RequestType::Access,
        RequestType::Portability,
        RequestType::Erasure,
        RequestType::Rectification,
        RequestType::Restriction,
        RequestType::Objection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Access => "access",
            RequestType::Portability => "portability",
            RequestType::Erasure => "erasure",
            RequestType::Rectification => "rectification",
            RequestType::Restriction => "restriction",
            RequestType::Objection => "objection",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether the subject gets an export.
    pub fn exports(self) -> bool {
        matches!(self, RequestType::Access | RequestType::Portability)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The brand's own id of the person.
    #[serde(default)]
    pub subject: Option<String>,
    /// `access`, `portability`, `erasure`, `rectification`, `restriction` or `objection`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Restriction and objection: `{"purpose": "..."}` (default every purpose). Rectification:
    /// `{"record": "rec_...", "json": {...}}` (or `"data"` in base64 with `"content_type"`) to replace a
    /// vault record's content, and/or `{"note": "what is wrong and what is right"}`.
    #[serde(default)]
    pub details: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskOut {
    pub destination_id: String,
    /// `pending` or `completed`.
    pub status: String,
    pub note: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Pending while the request is past its deadline.
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryOut {
    pub at: String,
    /// `received`, `started`, `own_part_done`, `task_completed`, `extended`, `rejected`, `completed`,
    /// `overdue`.
    pub change: String,
    /// The request's status after the change.
    pub status: String,
    pub actor: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportOut {
    /// Where to download the ZIP.
    pub url: String,
    pub available_until: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `received`, `in_progress`, `completed` or `rejected`.
    pub status: String,
    /// `null` once the subject was erased.
    pub subject: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    pub received_at: String,
    pub due_at: String,
    /// Open and past `due_at`.
    pub overdue: bool,
    /// When Consentry's own part was done.
    pub own_part_done_at: Option<String>,
    pub closed_at: Option<String>,
    /// The reason of the latest extension or of the rejection.
    pub reason: Option<String>,
    /// Access and portability, once ready.
    pub export: Option<ExportOut>,
    /// Downstream tasks not yet confirmed (overdue with the request).
    pub pending_tasks: u32,
    /// Only in a single request's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryOut>>,
}

pub fn is_open(status: &str) -> bool {
    status == REQUEST_RECEIVED || status == REQUEST_IN_PROGRESS
}

/// When an export made ready at `ready` stops being available.
pub fn export_until(ready: Timestamp) -> Timestamp {
    ready.plus_seconds(EXPORT_DAYS * 86_400)
}

pub fn record_out(r: RequestRecord, now: Timestamp) -> RequestOut {
    let kind = RequestType::parse(&r.kind);
    let export = match (kind, r.own_done_at) {
        (Some(k), Some(ready)) if k.exports() && r.status != REQUEST_REJECTED && r.subject.is_some() => {
            Some(ExportOut {
                url: format!("/v1/requests/{}/export", r.id),
                available_until: export_until(ready).to_string(),
            })
        }
        _ => None,
    };
    RequestOut {
        overdue: is_open(&r.status) && r.due_at <= now,
        id: r.id,
        kind: r.kind,
        status: r.status,
        subject: r.subject.map(SubjectId::into_string),
        details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        received_at: r.received_at.to_string(),
        due_at: r.due_at.to_string(),
        own_part_done_at: r.own_done_at.map(|t| t.to_string()),
        closed_at: r.closed_at.map(|t| t.to_string()),
        reason: r.reason,
        export,
        pending_tasks: r.pending_tasks,
        tasks: None,
        history: None,
    }
}

/// The API view of a request with its tasks and history.
pub fn view(stored: StoredRequest, now: Timestamp) -> RequestOut {
    let mut out = record_out(stored.record, now);
    let overdue = out.overdue;
    out.tasks = Some(
        stored
            .tasks
            .into_iter()
            .map(|t| TaskOut {
                overdue: overdue && t.status == TASK_PENDING,
                destination_id: t.destination_id,
                status: t.status,
                note: t.note,
                created_at: t.created_at.to_string(),
                completed_at: t.completed_at.map(|t| t.to_string()),
            })
            .collect(),
    );
    out.history = Some(
        stored
            .history
            .into_iter()
            .map(|h| HistoryOut {
                at: h.at.to_string(),
                change: h.change,
                status: h.status,
                actor: h.actor,
                note: h.note,
            })
            .collect(),
    );
    out
}

/// `t` plus `months` calendar months, the day clamped to the end of a shorter month (31 January plus one
/// month is 28 or 29 February), the time of day kept.
pub fn add_months(t: Timestamp, months: u32) -> Timestamp {
    let at = t.to_offset();
    let total = at.year() * 12 + i32::from(u8::from(at.month())) - 1 + months as i32;
    let (year, month) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let Ok(month) = time::Month::try_from(month as u8) else { return t };
    let day = at.day().min(time::util::days_in_month(month, year));
    match time::Date::from_calendar_date(year, month, day) {
        Ok(date) => Timestamp::from_offset(at.replace_date(date)),
        Err(_) => t,
    }
}

pub fn new_request_id(now: Timestamp) -> Result<String> {
    let random: [u8; 5] = random_bytes()?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    // Time first, so ids sort by receipt and pages by id follow it.
    Ok(format!("req_{:015x}{hex}", now.micros().max(0)))
}

pub fn text_field(value: Option<&Value>, path: &str, required: bool) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_TEXT => Ok(Some(s.clone())),
        _ => Err(Error::validation(path, format!("give a text of 1 to {MAX_TEXT} characters"))),
    }
}

/// Checks `details` for `kind` and returns what is stored: only the fields the request needs.
pub fn checked_details(state: &Services, kind: RequestType, details: Option<Value>) -> Result<Option<Value>> {
    let details = match details {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(Error::validation("details", "must be an object")),
    };
    let field = |name: &str| details.as_ref().and_then(|d| d.get(name));
    match kind {
        RequestType::Restriction | RequestType::Objection => {
            let Some(purpose) = text_field(field("purpose"), "details.purpose", false)? else {
                return Ok(None);
            };
            if state.catalog().catalog.purpose(&purpose).is_none() {
                return Err(Error::UnknownPurpose(purpose));
            }
            Ok(Some(json!({ "purpose": purpose })))
        }
        RequestType::Rectification => {
            // The new content is never kept with the request: it goes into the vault, encrypted.
            let record = text_field(field("record"), "details.record", false)?;
            let note = text_field(field("note"), "details.note", record.is_none())?;
            Ok(Some(json!({ "record": record, "note": note })))
        }
        RequestType::Access | RequestType::Portability | RequestType::Erasure => {
            let note = text_field(field("note"), "details.note", false)?;
            Ok(note.map(|n| json!({ "note": n })))
        }
    }
}

/// The CloudEvent for a request's life (`request.created`, `request.overdue`); the dispatcher adds the
/// subject when it sends. Details go out only for restriction and objection (a purpose).
pub fn request_event(
    state: &Services,
    event_type: &str,
    r: &RequestRecord,
    tasks: &[String],
    at: Timestamp,
) -> OutboxMessage {
    let details = match RequestType::parse(&r.kind) {
        Some(RequestType::Restriction | RequestType::Objection) => {
            r.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok())
        }
        _ => None,
    };
    let data = json!({
        "request": {
            "id": r.id,
            "type": r.kind,
            "status": r.status,
            "received_at": r.received_at.to_string(),
            "due_at": r.due_at.to_string(),
            "details": details,
        },
        "tasks": tasks,
        "confirm": format!("/v1/requests/{}/tasks/{{destination_id}}/complete", r.id),
    });
    let id = format!("{}.{}", r.id, event_type);
    crate::events::CloudEvent::new(state.config.event_source(), id, event_type, at, data).into_outbox()
}

/// Accepts a request for `subject` made by `actor`, announces it downstream (one task per destination
/// subscribed to `request.*`), does Consentry's own part, and returns the request as it then stands.
pub async fn submit(
    state: &Services,
    subject: &SubjectId,
    kind: RequestType,
    details: Option<Value>,
    actor: &str,
) -> Result<RequestOut> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let correction = match kind {
        RequestType::Rectification => prepare_correction(state, subject, details.as_ref()).await?,
        _ => None,
    };
    let details = checked_details(state, kind, details)?;
    let now = Timestamp::now();
    let destinations: Vec<String> = state
        .store
        .destinations()
        .await?
        .into_iter()
        .filter(|d| takes_part(&d.event_types))
        .map(|d| d.id)
        .collect();
    let record = RequestRecord {
        id: new_request_id(now)?,
        subject: Some(subject.clone()),
        kind: kind.as_str().to_owned(),
        status: REQUEST_RECEIVED.to_owned(),
        details: details.as_ref().map(Value::to_string),
        received_at: now,
        due_at: add_months(now, 1),
        own_done_at: None,
        closed_at: None,
        reason: None,
        overdue_at: None,
        updated_at: now,
        pending_tasks: 0,
    };
    let message = request_event(state, "request.created", &record, &destinations, now);
    state
        .store
        .create_request(NewRequest {
            id: record.id.clone(),
            subject: subject.clone(),
            kind: record.kind.clone(),
            details: record.details.clone(),
            received_at: now,
            due_at: record.due_at,
            destinations,
            actor: actor.to_owned(),
            messages: vec![message],
        })
        .await?;
    state.dispatch_wake.notify_one();
    let done =
        finish(state, &record.id, REQUEST_RECEIVED, subject, kind, details.as_ref(), correction, actor)
            .await?;
    Ok(view(done, Timestamp::now()))
}

/// Starts a request (when still `received`), does Consentry's own part and records it done.
#[allow(clippy::too_many_arguments)] // each is one fact of the request; a struct would only rename them
pub async fn finish(
    state: &Services,
    id: &str,
    status: &str,
    subject: &SubjectId,
    kind: RequestType,
    details: Option<&Value>,
    correction: Option<Correction>,
    actor: &str,
) -> Result<StoredRequest> {
    if status == REQUEST_RECEIVED {
        changed(state.store.change_request(id, RequestChange::Start, Timestamp::now(), "system").await?)?;
    }
    let note = own_part(state, subject, kind, details, correction, actor).await?;
    let done = state
        .store
        .change_request(id, RequestChange::OwnPartDone { note: Some(note) }, Timestamp::now(), "system")
        .await?;
    changed(done)
}

/// Does the own part of a request whose process stopped (or failed) half-way, as `system`. A
/// rectification that names a vault record is left to the privacy team: its new content was never kept.
/// Returns whether it did.
pub async fn resume(state: &Services, r: &RequestRecord) -> Result<bool> {
    let Some(kind) = RequestType::parse(&r.kind) else { return Ok(false) };
    let Some(subject) = &r.subject else {
        // The link to the person is gone: an erasure that stopped after destroying the key is done.
        if kind != RequestType::Erasure {
            return Ok(false);
        }
        if r.status == REQUEST_RECEIVED {
            changed(
                state.store.change_request(&r.id, RequestChange::Start, Timestamp::now(), "system").await?,
            )?;
        }
        let note = Some("the subject's pseudonym key had already been destroyed".to_owned());
        let done = RequestChange::OwnPartDone { note };
        changed(state.store.change_request(&r.id, done, Timestamp::now(), "system").await?)?;
        return Ok(true);
    };
    let details: Option<Value> = r.details.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let names_record = details.as_ref().is_some_and(|d| d.get("record").is_some_and(|v| !v.is_null()));
    if kind == RequestType::Rectification && names_record {
        return Ok(false);
    }
    finish(state, &r.id, &r.status, subject, kind, details.as_ref(), None, "system").await?;
    Ok(true)
}

/// Whether a destination with these event-type patterns gets a task on each request: it subscribed to
/// request events by name (`request.*`, `request.created`). A catch-all `*` (a log, an archive) receives
/// the events but is not asked to confirm anything.
pub fn takes_part(patterns: &[String]) -> bool {
    let named: Vec<String> = patterns.iter().filter(|p| p.as_str() != "*").cloned().collect();
    type_matches(&named, "request.created")
}

pub fn changed(outcome: ChangeOutcome) -> Result<StoredRequest> {
    match outcome {
        ChangeOutcome::Changed(r) => Ok(*r),
        ChangeOutcome::NotFound => Err(Error::NotFound("request")),
        ChangeOutcome::Closed(status) => Err(Error::Conflict(format!("the request is {status}"))),
        ChangeOutcome::UnknownTask => Err(Error::NotFound("task")),
        ChangeOutcome::TaskAlreadyCompleted => Err(Error::Conflict("the task is already completed".into())),
    }
}

/// Consentry's own part of a request; returns what was done, in plain words, for the history.
pub async fn own_part(
    state: &Services,
    subject: &SubjectId,
    kind: RequestType,
    details: Option<&Value>,
    correction: Option<Correction>,
    actor: &str,
) -> Result<String> {
    match kind {
        RequestType::Access | RequestType::Portability => {
            Ok(format!("the export is available for {EXPORT_DAYS} days, generated on each download"))
        }
        RequestType::Restriction | RequestType::Objection => {
            let purpose = details.and_then(|d| d.get("purpose")).and_then(Value::as_str);
            let recorded = limit_processing(state, subject, kind, purpose, actor).await?;
            Ok(format!("recorded {recorded} ledger event(s)"))
        }
        RequestType::Erasure => {
            let summary = crate::erasure::erase(state, subject).await?;
            Ok(summary)
        }
        RequestType::Rectification => match correction {
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
pub struct Correction {
    old: RecordMeta,
    data: Vec<u8>,
    content_type: String,
}

/// For a rectification whose details name a vault record (`details.record`) and its new content
/// (`details.json`, or `details.data` in base64 with `details.content_type`): checks that the record is
/// the subject's and the content acceptable.
pub async fn prepare_correction(
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
pub async fn rectify(state: &Services, subject: &SubjectId, c: Correction) -> Result<String> {
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
pub async fn limit_processing(
    state: &Services,
    subject: &SubjectId,
    kind: RequestType,
    purpose: Option<&str>,
    actor: &str,
) -> Result<usize> {
    let action = if kind == RequestType::Restriction { ChangeAction::Restrict } else { ChangeAction::Object };
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
    let body = RecordConsents { notice: None, notice_version: None, collection_point: None, changes };
    Ok(record_changes(state, subject, body, actor).await?.events.len())
}

/// The subject's requests, oldest first (at most 1,000), for the preference centre.
pub async fn subject_requests(state: &Services, subject: &SubjectId) -> Result<Vec<RequestOut>> {
    let filter = RequestFilter { subject: Some(subject.clone()), limit: 1000, ..RequestFilter::default() };
    let now = Timestamp::now();
    Ok(state.store.requests(&filter).await?.into_iter().map(|r| record_out(r, now)).collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestOut>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

pub async fn load(state: &Services, id: &str) -> Result<StoredRequest> {
    state.store.request(id).await?.ok_or(Error::NotFound("request"))
}

/// A request the principal may see: any, for a service key with `dsr`; only their own, for a subject
/// (another's is answered as if it did not exist).
pub async fn load_for(state: &Services, principal: &Principal, id: &str) -> Result<StoredRequest> {
    match principal {
        Principal::Service(caller) => {
            caller.require(Scope::Dsr)?;
            load(state, id).await
        }
        Principal::Device(_) => Err(Error::WrongPrincipal("device tokens may not use this route")),
        Principal::Subject(s) => {
            let request = load(state, id).await?;
            if request.record.subject.as_ref() != Some(&s.subject) {
                return Err(Error::NotFound("request"));
            }
            Ok(request)
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// 1 or 2: months added to the deadline; at most two months beyond the first in total.
    pub months: u32,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    #[serde(default)]
    pub note: Option<String>,
}

/// The ZIP of an access or portability request while it is available: 404 when there is none, 410 once
/// rejected, erased or past [`EXPORT_DAYS`]. Made on each call and written as it is sent (a stream of
/// chunks for the response body); nothing is stored.
pub async fn export_archive(
    state: &Services,
    request: &StoredRequest,
    now: Timestamp,
) -> Result<crate::export::Archive> {
    let r = &request.record;
    let kind = RequestType::parse(&r.kind).filter(|k| k.exports()).ok_or(Error::NotFound("export"))?;
    let Some(subject) = &r.subject else { return Err(Error::SubjectErased) };
    if r.status == REQUEST_REJECTED {
        return Err(Error::Gone("the request was rejected; there is no export".into()));
    }
    let Some(ready) = r.own_done_at else { return Err(Error::NotFound("export")) };
    if now > export_until(ready) {
        return Err(Error::Gone(format!(
            "exports are available for {EXPORT_DAYS} days; this one has expired"
        )));
    }
    crate::export::build(state, subject, kind, export_until(ready), now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_else(|| panic!("timestamp {text}"))
    }

    #[test]
    fn one_calendar_month_clamped_to_the_month_end() {
        let cases = [
            ("2026-01-15T10:00:00.000000Z", 1, "2026-02-15T10:00:00.000000Z"),
            ("2026-01-31T10:00:00.000000Z", 1, "2026-02-28T10:00:00.000000Z"),
            ("2028-01-31T10:00:00.000000Z", 1, "2028-02-29T10:00:00.000000Z"),
            ("2026-03-31T23:59:59.000000Z", 1, "2026-04-30T23:59:59.000000Z"),
            ("2026-12-31T00:00:00.000000Z", 1, "2027-01-31T00:00:00.000000Z"),
            ("2026-11-30T00:00:00.000000Z", 3, "2027-02-28T00:00:00.000000Z"),
        ];
        for (from, months, expected) in cases {
            assert_eq!(add_months(at(from), months).to_string(), expected, "{from} + {months}");
        }
    }

    #[test]
    fn exports_last_seven_days() {
        let ready = at("2026-01-01T00:00:00.000000Z");
        assert_eq!(export_until(ready).to_string(), "2026-01-08T00:00:00.000000Z");
    }

    #[test]
    fn only_destinations_that_name_request_events_get_tasks() {
        let cases: [(&[&str], bool); 6] = [
            (&["request.*"], true),
            (&["request.created"], true),
            (&["consent.*", "request.*"], true),
            (&["*"], false),
            (&["consent.*"], false),
            (&["request.overdue"], false),
        ];
        for (patterns, expected) in cases {
            let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
            assert_eq!(takes_part(&patterns), expected, "{patterns:?}");
        }
    }

    #[test]
    fn request_ids_sort_by_time() {
        let a = new_request_id(Timestamp::from_micros(1_000)).expect("id");
        let b = new_request_id(Timestamp::from_micros(2_000_000)).expect("id");
        assert!(a < b, "{a} < {b}");
    }
}
