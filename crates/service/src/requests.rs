//! Data subject requests (GDPR Art. 15–21) as tracked objects with a deadline, fanned out to every
//! destination subscribed to `request.*`, each of which confirms its part.
//!
//! Consentry does its own part when the request is accepted (`own_part.rs`): access and portability make
//! the export available (for [`EXPORT_DAYS`] days, generated on each download, never stored); erasure
//! deletes the subject's vault and devices and destroys their keys, keeping a tombstone
//! ([`crate::erasure`]); restriction and objection record `restrict` / `object` ledger events through the
//! consent path; rectification replaces the vault record it names, or records what was asked. The request
//! completes once that is done and every task is confirmed.
//!
//! The API's `/v1/requests` routes call one function here each ([`create`], [`list`], [`get`], [`extend`],
//! [`reject`], [`complete_task`], [`export_archive`]); the preference centre files and shows requests
//! through [`submit`], [`subject_requests`] and [`export_archive`]; the request sweep resumes requests left
//! half-way through [`resume`].

mod own_part;
pub mod view;

/// The kinds of request, by the name the API and the preference centre have always used for them.
pub use consentry_core::request::RequestKind;
pub use consentry_core::request::{EXPORT_DAYS, export_until};
pub use own_part::resume;
pub use view::{ExportOut, HistoryOut, RequestList, RequestOut, TaskOut, view};

use consentry_core::request::{MAX_EXTENSION_MONTHS, RequestAction, RequestStatus, initial_due_at};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::requests::{NewRequest, RequestFilter, RequestRecord, StoredRequest};
use consentry_store::{OutboxMessage, random_bytes};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use self::own_part::{changed, finish, prepare_correction};
use self::view::record_out;
use crate::access::Reader;
use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::state::Services;
use crate::workers::dispatcher::type_matches;

/// Longest reason or note accepted.
const MAX_TEXT: usize = 2000;

/// Largest page of requests.
const MAX_PAGE: u32 = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The brand's own id of the person.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// 1 or 2: months added to the deadline; at most two months beyond the first in total (else 409).
    #[serde(deserialize_with = "crate::whole::required")]
    #[schema(minimum = 1, maximum = 2)]
    pub months: u32,
    /// 1 to 2000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// 1 to 2000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    /// 1 to 2000 characters, not only spaces.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub note: Option<String>,
}

/// Which requests [`list`] shows; every field is optional, as the query string is.
#[derive(Debug, Default)]
pub struct RequestQuery {
    /// `received`, `in_progress`, `completed` or `rejected`.
    pub status: Option<String>,
    pub kind: Option<String>,
    /// Only open requests past their deadline.
    pub overdue: bool,
    /// Only this subject's requests.
    pub subject: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// Files the request `body` for `principal`: a service key needs the `dsr` scope; a subject may file only
/// their own. Consentry does its part at once; returns the request as it then stands. A request a person
/// files with their subject token is in their access log ([`Reader::action`]), except an erasure: it leaves
/// no log to write in.
pub async fn create(
    state: &Services,
    principal: &Principal,
    body: CreateRequest,
    reader: Reader<'_>,
) -> Result<RequestOut> {
    if let Some(caller) = principal.service() {
        caller.require(Scope::Dsr)?;
    }
    let Some(subject) = body.subject else {
        return Err(Error::validation("subject", "name the subject the request is about"));
    };
    let subject =
        SubjectId::new(subject).map_err(|e| Error::validation("subject", format!("the subject id {e}")))?;
    let subject = state.aliases.survivor(subject);
    let kind = body.kind.as_deref().ok_or_else(|| Error::validation("type", "name the type of request"))?;
    let kind = RequestKind::parse(kind).ok_or_else(|| {
        Error::validation(
            "type",
            "must be access, portability, erasure, rectification, restriction or objection",
        )
    })?;
    principal.require_subject(&subject, Scope::Dsr)?;
    let out = submit(state, &subject, kind, body.details, &principal.actor()).await?;
    if kind != RequestKind::Erasure {
        reader.log(&state.access, &subject);
    }
    Ok(out)
}

/// One page of requests, oldest first: any, for a service key with `dsr`; a subject's own, for them (and
/// in their access log, through `reader`).
pub async fn list(
    state: &Services,
    principal: &Principal,
    query: RequestQuery,
    reader: Reader<'_>,
) -> Result<RequestList> {
    let own = match principal {
        Principal::Service(caller) => {
            caller.require(Scope::Dsr)?;
            None
        }
        // A subject sees only their own requests.
        Principal::Subject(s) => Some(s.subject.clone()),
        Principal::Device(_) | Principal::Household(_) => {
            return Err(Error::WrongPrincipal("device tokens may not use this route"));
        }
    };
    let list = filtered(state, own, query).await?;
    if let Principal::Subject(s) = principal {
        reader.log(&state.access, &s.subject);
    }
    Ok(list)
}

/// One page of the requests `query` asks for, oldest first; with `own`, only that subject's (asking for
/// another subject's is refused). The caller has checked who may see them (the API's [`list`], the
/// console).
pub async fn filtered(state: &Services, own: Option<SubjectId>, query: RequestQuery) -> Result<RequestList> {
    let limit = crate::page_limit(query.limit, MAX_PAGE)?;
    let status = match query.status.as_deref().map(RequestStatus::parse) {
        None => None,
        Some(Some(status)) => Some(status),
        Some(None) => {
            return Err(Error::InvalidQuery(
                "status must be received, in_progress, completed or rejected".into(),
            ));
        }
    };
    let kind = match query.kind.as_deref().map(RequestKind::parse) {
        None => None,
        Some(Some(kind)) => Some(kind),
        Some(None) => {
            return Err(Error::InvalidQuery(
                "type must be access, portability, erasure, rectification, restriction or objection".into(),
            ));
        }
    };
    let asked = match query.subject {
        None => None,
        Some(s) => Some(SubjectId::new(s).map_err(|e| Error::InvalidQuery(format!("the subject id {e}")))?),
    };
    let subject = match (own, asked) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(Error::WrongPrincipal("this token is for another subject"));
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let now = Timestamp::now();
    let filter = RequestFilter {
        subject,
        status,
        kind,
        overdue_at: query.overdue.then_some(now),
        after: query.after,
        limit,
    };
    let found = state.store.requests(&filter).await?;
    let next = (found.len() == limit as usize).then(|| found.last().map(|r| r.id.clone())).flatten();
    Ok(RequestList { requests: found.into_iter().map(|r| record_out(r, now)).collect(), next })
}

/// One request with its tasks and history, if `principal` may see it ([`load_for`]); a person reading their
/// own with their subject token is in their access log, through `reader`.
pub async fn get(
    state: &Services,
    principal: &Principal,
    id: &str,
    reader: Reader<'_>,
) -> Result<RequestOut> {
    let request = load_for(state, principal, id).await?;
    if let Some(subject) = &request.record.subject {
        reader.log(&state.access, subject);
    }
    Ok(view(request, Timestamp::now()))
}

/// Extends a request's deadline by `body.months`, at most two months beyond the first in total, with the
/// reason (Art. 12(3)); `actor` is recorded in the history.
pub async fn extend(state: &Services, id: &str, body: ExtendRequest, actor: &str) -> Result<RequestOut> {
    let reason = required_text(body.reason, "reason")?;
    // Checked here too, as the input it is, so a wrong number is answered before the request is looked up;
    // the total limit depends on the request and is the state machine's.
    if !(1..=MAX_EXTENSION_MONTHS).contains(&body.months) {
        return Err(Error::validation("months", format!("must be 1 to {MAX_EXTENSION_MONTHS}")));
    }
    change(state, id, RequestAction::Extend { months: body.months, reason }, actor).await
}

/// Rejects a request, with the reason.
pub async fn reject(state: &Services, id: &str, body: RejectRequest, actor: &str) -> Result<RequestOut> {
    let reason = required_text(body.reason, "reason")?;
    change(state, id, RequestAction::Reject { reason }, actor).await
}

/// Records that destination `destination_id` did its part of the request, with an optional note.
pub async fn complete_task(
    state: &Services,
    id: &str,
    destination_id: String,
    body: CompleteTask,
    actor: &str,
) -> Result<RequestOut> {
    let note = text_field(body.note.map(Value::String).as_ref(), "note", false)?;
    change(state, id, RequestAction::CompleteTask { destination_id, note }, actor).await
}

/// Applies one change made by `actor` to an open request; returns the request as it then stands.
async fn change(state: &Services, id: &str, action: RequestAction, actor: &str) -> Result<RequestOut> {
    let changed = changed(state.store.change_request(id, action, Timestamp::now(), actor).await?)?;
    Ok(view(changed, Timestamp::now()))
}

fn required_text(text: String, path: &str) -> Result<String> {
    Ok(text_field(Some(&Value::String(text)), path, true)?.unwrap_or_default())
}

/// Accepts a request for `subject` made by `actor`, announces it downstream (one task per destination
/// subscribed to `request.*`), does Consentry's own part, and returns the request as it then stands.
pub async fn submit(
    state: &Services,
    subject: &SubjectId,
    kind: RequestKind,
    details: Option<Value>,
    actor: &str,
) -> Result<RequestOut> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let correction = match kind {
        RequestKind::Rectification => prepare_correction(state, subject, details.as_ref()).await?,
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
        kind,
        status: RequestStatus::Received,
        details: details.as_ref().map(Value::to_string),
        received_at: now,
        due_at: initial_due_at(now),
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
            kind,
            details: record.details.clone(),
            received_at: now,
            destinations,
            actor: actor.to_owned(),
            messages: vec![message],
        })
        .await?;
    state.dispatch_wake.notify_one();
    let done = finish(
        state,
        &record.id,
        RequestStatus::Received,
        subject,
        kind,
        details.as_ref(),
        correction,
        actor,
    )
    .await?;
    Ok(view(done, Timestamp::now()))
}

/// The subject's requests, oldest first (at most 1,000), for the preference centre.
pub async fn subject_requests(state: &Services, subject: &SubjectId) -> Result<Vec<RequestOut>> {
    let filter = RequestFilter { subject: Some(subject.clone()), limit: 1000, ..RequestFilter::default() };
    let now = Timestamp::now();
    Ok(state.store.requests(&filter).await?.into_iter().map(|r| record_out(r, now)).collect())
}

async fn load(state: &Services, id: &str) -> Result<StoredRequest> {
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
        Principal::Device(_) | Principal::Household(_) => {
            Err(Error::WrongPrincipal("device tokens may not use this route"))
        }
        Principal::Subject(s) => {
            let request = load(state, id).await?;
            if request.record.subject.as_ref() != Some(&s.subject) {
                return Err(Error::NotFound("request"));
            }
            Ok(request)
        }
    }
}

fn new_request_id(now: Timestamp) -> Result<String> {
    let random: [u8; 5] = random_bytes()?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    // Time first, so ids sort by receipt and pages by id follow it.
    Ok(format!("req_{:015x}{hex}", now.micros().max(0)))
}

fn text_field(value: Option<&Value>, path: &str, required: bool) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_TEXT => Ok(Some(s.clone())),
        _ => Err(Error::validation(path, format!("give a text of 1 to {MAX_TEXT} characters"))),
    }
}

/// Checks `details` for `kind` and returns what is stored: only the fields the request needs.
fn checked_details(state: &Services, kind: RequestKind, details: Option<Value>) -> Result<Option<Value>> {
    let details = match details {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(Error::validation("details", "must be an object")),
    };
    let field = |name: &str| details.as_ref().and_then(|d| d.get(name));
    match kind {
        RequestKind::Restriction | RequestKind::Objection => {
            let Some(purpose) = text_field(field("purpose"), "details.purpose", false)? else {
                return Ok(None);
            };
            if state.catalog().catalog.purpose(&purpose).is_none() {
                return Err(Error::UnknownPurpose(purpose));
            }
            Ok(Some(json!({ "purpose": purpose })))
        }
        RequestKind::Rectification => {
            // The new content is never kept with the request: it goes into the vault, encrypted.
            let record = text_field(field("record"), "details.record", false)?;
            let note = text_field(field("note"), "details.note", record.is_none())?;
            Ok(Some(json!({ "record": record, "note": note })))
        }
        RequestKind::Access | RequestKind::Portability | RequestKind::Erasure => {
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
    let details = match r.kind {
        RequestKind::Restriction | RequestKind::Objection => {
            r.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok())
        }
        _ => None,
    };
    let data = json!({
        "request": {
            "id": r.id,
            "type": r.kind.as_str(),
            "status": r.status.as_str(),
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

/// Whether a destination with these event-type patterns gets a task on each request: it subscribed to
/// request events by name (`request.*`, `request.created`). A catch-all `*` (a log, an archive) receives
/// the events but is not asked to confirm anything.
fn takes_part(patterns: &[String]) -> bool {
    let named: Vec<String> = patterns.iter().filter(|p| p.as_str() != "*").cloned().collect();
    type_matches(&named, "request.created")
}

/// The ZIP of an access or portability request while it is available: 404 when there is none, 410 once
/// rejected, erased or past [`EXPORT_DAYS`]. Made on each call and written as it is sent (a stream of
/// chunks for the response body); nothing is stored. Its guide (`index.html`) is written in `lang`.
pub async fn export_archive(
    state: &Services,
    request: &StoredRequest,
    now: Timestamp,
    lang: crate::export::Language,
) -> Result<crate::export::Archive> {
    let r = &request.record;
    let kind = Some(r.kind).filter(|k| k.exports()).ok_or(Error::NotFound("export"))?;
    let Some(subject) = &r.subject else { return Err(Error::SubjectErased) };
    if r.status == RequestStatus::Rejected {
        return Err(Error::Gone("the request was rejected; there is no export".into()));
    }
    let Some(ready) = r.own_done_at else { return Err(Error::NotFound("export")) };
    if now > export_until(ready) {
        return Err(Error::Gone(format!(
            "exports are available for {EXPORT_DAYS} days; this one has expired"
        )));
    }
    crate::export::build(state, subject, kind, export_until(ready), now, lang).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
