//! The personal data vault's use cases: store, list, read and delete a subject's records.
//!
//! A record is stored only when the decision engine allows its category for its purpose at that moment
//! (else `consent_required`), encrypted with the subject's own data key (see
//! `consentry_store::vault`). Its deletion deadline comes from its category's retention; withdrawing,
//! denying or objecting to its purpose deletes it at once unless the purpose says `keep_until_retention`.
//! Every deletion is announced downstream as a `record.deleted` event, committed with it. Every read is in
//! the subject's access log.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use consentry_core::catalog::OnWithdraw;
use consentry_core::ids::Key;
use consentry_core::{Action, Event, Query as CheckQuery, QueryError, SubjectId, Timestamp};
use consentry_store::vault::{NewRecord, RecordFilter, RecordMeta, RecordSelection, new_record_id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::events::{self, DeletionReason};
use crate::state::Services;

/// How far in the future a `collected_at` may lie (clock skew between a device and the server).
const FUTURE_SKEW_SECS: i64 = 300;

/// Records examined per page when a withdrawal looks for what to delete.
const WITHDRAWAL_PAGE: u32 = 1000;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// A personal data record to store: exactly one of `data` (base64) and `json`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIn {
    /// The brand's own id of the person the data is about. Required with a service key; a device stores
    /// for its own subject (naming another is 403).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub subject: Option<String>,
    /// A data category of the catalogue (422 `unknown_category` for one it lacks).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub category: String,
    /// The purpose the data is kept for, a purpose of the catalogue (422 `unknown_purpose`).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub purpose: String,
    /// The payload's media type, e.g. `audio/ogg`. Required with `data`; with `json` it defaults to
    /// `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The payload, base64 (standard alphabet, padding optional).
    #[serde(default)]
    pub data: Option<String>,
    /// A JSON payload, stored as given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub json: Option<serde_json::Value>,
    /// When the data was collected (RFC 3339); default now. Retention counts from it.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub collected_at: Option<Timestamp>,
}

/// A record's metadata (its payload is at `GET /v1/records/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordOut {
    pub id: String,
    pub subject: String,
    pub device_id: Option<String>,
    pub category: String,
    pub purpose: String,
    pub content_type: String,
    /// The payload's size in bytes.
    pub size: u64,
    pub collected_at: String,
    pub stored_at: String,
    /// When it is deleted because its category's retention ends; `null`: kept until deleted.
    pub delete_after: Option<String>,
}

impl RecordOut {
    pub(crate) fn new(subject: &SubjectId, m: RecordMeta) -> Self {
        Self {
            id: m.id,
            subject: subject.as_str().to_owned(),
            device_id: m.device_id,
            category: m.category,
            purpose: m.purpose,
            content_type: m.content_type,
            size: m.size,
            collected_at: m.collected_at.to_string(),
            stored_at: m.stored_at.to_string(),
            delete_after: m.delete_after.map(|t| t.to_string()),
        }
    }
}

/// Checks a media type's shape (`type/subtype`, optional parameters), so it can be sent back as a header.
fn valid_content_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    ct.len() <= 255
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

/// The payload and its media type.
pub(crate) fn payload(state: &Services, body: &mut RecordIn) -> Result<(Vec<u8>, String)> {
    let limit = state.config.max_record_bytes;
    let (bytes, default_type) = match (body.data.take(), body.json.take()) {
        (Some(_), Some(_)) => return Err(Error::validation("json", "give either data or json, not both")),
        (None, None) => {
            return Err(Error::validation("data", "give the payload as data (base64) or json"));
        }
        (Some(text), None) => {
            // Refuse before decoding when even the base64 is too long.
            if text.len() / 4 * 3 > limit + 3 {
                return Err(Error::RecordTooLarge(limit));
            }
            let bytes = STANDARD_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| Error::validation("data", "must be base64 (standard alphabet)"))?;
            (bytes, None)
        }
        (None, Some(value)) => {
            let bytes = serde_json::to_vec(&value).map_err(Error::internal)?;
            (bytes, Some("application/json"))
        }
    };
    if bytes.is_empty() {
        return Err(Error::validation("data", "the payload must not be empty"));
    }
    if bytes.len() > limit {
        return Err(Error::RecordTooLarge(limit));
    }
    let content_type = match (body.content_type.take(), default_type) {
        (Some(ct), _) => ct,
        (None, Some(ct)) => ct.to_owned(),
        (None, None) => return Err(Error::validation("content_type", "name the payload's media type")),
    };
    if !valid_content_type(&content_type) {
        return Err(Error::validation("content_type", "must be a media type such as audio/ogg"));
    }
    if default_type.is_some() && !is_json_type(&content_type) {
        return Err(Error::validation("content_type", "a json payload needs a JSON media type"));
    }
    Ok((bytes, content_type))
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn query_error(e: QueryError, purpose: &str, category: &str) -> Error {
    match e {
        QueryError::UnknownPurpose => Error::UnknownPurpose(purpose.to_owned()),
        _ => Error::UnknownCategory(category.to_owned()),
    }
}

/// Whether the engine allows keeping `category` for `purpose` for the subject now: `Err` names what is
/// missing.
fn require_basis(state: &Services, subject: &SubjectId, purpose: &str, category: &str) -> Result<()> {
    let q = CheckQuery {
        subject: subject.as_str(),
        purpose,
        category: Some(category),
        channel: None,
        recipient: None,
        jurisdiction: None,
    };
    let d = state.engine.check(&q, Timestamp::now()).map_err(|e| query_error(e, purpose, category))?;
    if d.allowed {
        return Ok(());
    }
    Err(Error::ConsentRequired(format!(
        "nothing allows keeping {category:?} for {purpose:?} for this subject now (decision: {}); it needs \
         the subject's consent to that purpose covering that category, or another basis not objected to",
        d.reason.as_str()
    )))
}

/// Stores a record if the subject's consent allows it now. A service key with `records:write` names the
/// subject; a device stores for its own subject, within the categories and purposes it declared; a person
/// stores nothing.
pub async fn create(services: &Services, principal: &Principal, mut body: RecordIn) -> Result<RecordOut> {
    let named = body
        .subject
        .take()
        .map(|s| SubjectId::new(s).map_err(|e| Error::InvalidSubject(format!("the subject id {e}"))))
        .transpose()?
        .map(|s| services.aliases.survivor(s));
    let (subject, device) = match principal {
        Principal::Service(caller) => {
            caller.require(Scope::RecordsWrite)?;
            let subject =
                named.ok_or_else(|| Error::validation("subject", "name the subject the record is about"))?;
            (subject, None)
        }
        Principal::Device(device) => {
            if let Some(named) = &named {
                device.require_subject(named.as_str())?;
            }
            device.require(&body.category, &body.purpose)?;
            (device.subject.clone(), Some(device.device_id.clone()))
        }
        Principal::Subject(_) => {
            return Err(Error::WrongPrincipal("records are stored by services and devices"));
        }
        Principal::Household(_) => {
            return Err(Error::DeviceForbidden("a household's device acts for no one person".into()));
        }
    };
    store_record(services, subject, device, body).await
}

/// Stores a record for `subject` (from a service key's `subject` field, or a device token's subject) after
/// checking the catalogue, the payload and the subject's consent.
async fn store_record(
    state: &Services,
    subject: SubjectId,
    device_id: Option<String>,
    mut body: RecordIn,
) -> Result<RecordOut> {
    // Storing would give an erased subject a new key and data key under the same id.
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let view = state.catalog();
    if view.catalog.category(&body.category).is_none() {
        return Err(Error::UnknownCategory(body.category));
    }
    if view.catalog.purpose(&body.purpose).is_none() {
        return Err(Error::UnknownPurpose(body.purpose));
    }
    let (data, content_type) = payload(state, &mut body)?;
    let now = Timestamp::now();
    let collected_at = body.collected_at.unwrap_or(now);
    if collected_at > now.plus_seconds(FUTURE_SKEW_SECS) {
        return Err(Error::validation("collected_at", "must not lie in the future"));
    }
    let delete_after = view
        .catalog
        .retention_days(&body.category)
        .map(|days| collected_at.plus_micros(i64::from(days).saturating_mul(MICROS_PER_DAY)));
    if delete_after.is_some_and(|t| t <= now) {
        return Err(Error::validation(
            "collected_at",
            format!("the retention of {:?} counted from collected_at has already ended", body.category),
        ));
    }
    require_basis(state, &subject, &body.purpose, &body.category)?;
    let record = NewRecord {
        id: new_record_id(now)?,
        subject: subject.clone(),
        device_id,
        category: body.category,
        purpose: body.purpose,
        content_type,
        collected_at,
        stored_at: now,
        delete_after,
        data,
    };
    let (purpose, category) = (record.purpose.clone(), record.category.clone());
    let meta = state.store.put_record(&state.kek, record).await?;
    // A withdrawal may have landed while the record was being stored, after its deletion pass looked: check
    // again, so a record never outlives the consent it was stored under.
    if let Err(refused) = require_basis(state, &subject, &purpose, &category) {
        let ids = vec![meta.id.clone()];
        state.store.delete_records(RecordSelection::Ids { subject, ids }, None).await?;
        return Err(refused);
    }
    Ok(RecordOut::new(&subject, meta))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordList {
    pub records: Vec<RecordOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next: Option<String>,
}

fn key_param(name: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(v) if Key::validate(&v).is_err() => {
            Err(Error::InvalidQuery(format!("{name} must be a catalogue key")))
        }
        v => Ok(v),
    }
}

pub fn valid_record_id(id: &str) -> bool {
    id.len() == 36 && id.starts_with("rec_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `principal` may act on the record `id` with `scope`: a service key needs the scope, a subject
/// token must be its owner's (another subject's record is answered as not found, so ids tell nothing).
/// Returns the record's owner.
async fn authorize_record(
    state: &Services,
    principal: &Principal,
    id: &str,
    scope: Scope,
) -> Result<SubjectId> {
    if let Some(caller) = principal.service() {
        caller.require(scope)?;
    }
    if !valid_record_id(id) {
        return Err(Error::NotFound("record"));
    }
    let (subject, _) = state.store.record_meta(id).await?.ok_or(Error::NotFound("record"))?;
    if principal.require_subject(&subject, scope).is_err() {
        return Err(Error::NotFound("record"));
    }
    Ok(subject)
}

/// Which of a subject's records to list: filters, and a page of `limit` (1 to 1000, default 100) after
/// `cursor`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RecordQuery {
    /// Only this data category and those under it.
    pub category: Option<String>,
    /// Only this purpose and those under it.
    pub purpose: Option<String>,
    /// Only records from this device.
    pub device: Option<String>,
    /// Collected at or after.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Collected before.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the subject's records (metadata), newest first. A service's read is logged.
pub async fn list(
    services: &Services,
    subject: &SubjectId,
    query: RecordQuery,
    reader: Reader<'_>,
) -> Result<RecordList> {
    let limit = crate::page_limit(query.limit, 1000)?;
    if query.cursor.as_deref().is_some_and(|c| !valid_record_id(c)) {
        return Err(Error::InvalidQuery("cursor must be the next of an earlier page".into()));
    }
    if query.device.as_deref().is_some_and(|d| d.is_empty() || d.len() > 128) {
        return Err(Error::InvalidQuery("device must be a device id".into()));
    }
    let filter = RecordFilter {
        category: key_param("category", query.category)?,
        purpose: key_param("purpose", query.purpose)?,
        device_id: query.device,
        from: query.from,
        until: query.until,
        before: query.cursor,
        limit,
    };
    reader.log(&services.access, subject);
    let records = services.store.records(subject, &filter).await?;
    let next = (records.len() == limit as usize).then(|| records.last().map(|m| m.id.clone())).flatten();
    let records = records.into_iter().map(|m| RecordOut::new(subject, m)).collect();
    Ok(RecordList { records, next })
}

/// A record's payload as stored, with its media type.
pub struct Payload {
    /// A valid media type (checked when the record was stored).
    pub content_type: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Payload {
    // Never personal data in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload").field("content_type", &self.content_type).finish_non_exhaustive()
    }
}

/// One record's payload, for `principal` (see [`authorize_record`]). A service's read is logged.
pub async fn get(
    services: &Services,
    principal: &Principal,
    id: &str,
    reader: Reader<'_>,
) -> Result<Payload> {
    authorize_record(services, principal, id, Scope::RecordsRead).await?;
    let record = services.store.record(&services.kek, id).await?.ok_or(Error::NotFound("record"))?;
    reader.log(&services.access, &record.subject);
    Ok(Payload { content_type: record.meta.content_type, data: record.data })
}

/// Deletes one record for `principal` (see [`authorize_record`]), announced downstream; a person's own
/// deletion with their subject token is in their access log ([`Reader::action`]).
pub async fn delete(services: &Services, principal: &Principal, id: &str, reader: Reader<'_>) -> Result<()> {
    let subject = authorize_record(services, principal, id, Scope::RecordsWrite).await?;
    let selection = RecordSelection::Ids { subject: subject.clone(), ids: vec![id.to_owned()] };
    if delete_at_request(services, selection).await? == 0 {
        return Err(Error::NotFound("record"));
    }
    reader.log(&services.access, &subject);
    Ok(())
}

/// Deletes the subject's records of `category` (and those under it), or all of them, each announced
/// downstream; a person's own deletion with their subject token is in their access log.
pub async fn delete_subject(
    services: &Services,
    subject: SubjectId,
    category: Option<String>,
    reader: Reader<'_>,
) -> Result<Deleted> {
    let category = key_param("category", category)?;
    let selection = RecordSelection::Subject { subject: subject.clone(), category };
    let deleted = delete_at_request(services, selection).await?;
    reader.log(&services.access, &subject);
    Ok(Deleted { deleted })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// How many records were deleted.
    pub deleted: u64,
}

/// Deletes the selected records at the person's or a service's request, each announced downstream as
/// `record.deleted`; returns how many. The API and the preference centre delete through here.
pub async fn delete_at_request(state: &Services, selection: RecordSelection) -> Result<u64> {
    Ok(delete_announced(state, selection, DeletionReason::Request).await?.len() as u64)
}

/// Deletes the selected records, each announced as a `record.deleted` event (committed with the
/// deletion), and wakes the dispatcher when any went. Every deletion of records goes through here.
pub(crate) async fn delete_announced(
    state: &Services,
    selection: RecordSelection,
    reason: DeletionReason,
) -> Result<Vec<consentry_store::vault::RecordMeta>, consentry_store::StoreError> {
    let announce = events::record_deleted(state, reason);
    let deleted = state.store.delete_records(selection, Some(announce)).await?;
    if !deleted.is_empty() {
        state.dispatch_wake.notify_one();
    }
    Ok(deleted)
}

/// Whether `e` may end the basis records are held under (a withdrawal, denial or objection): what
/// [`delete_after_withdrawal`] looks for.
pub(crate) fn ends_basis(e: &Event) -> bool {
    matches!(e.action, Action::Withdraw | Action::Deny | Action::Object)
}

/// After a consent change of `subject` (its `placed` events already applied to the engine): deletes the
/// records held for a withdrawn, denied or objected purpose (or one under it) that no longer have a basis,
/// unless their purpose keeps them until retention. Returns how many it deleted.
pub(crate) async fn delete_after_withdrawal(
    state: &Services,
    subject: &SubjectId,
    placed: &[Event],
) -> Result<u64> {
    let purposes: BTreeSet<&str> =
        placed.iter().filter(|e| ends_basis(e)).map(|e| e.purpose.as_str()).collect();
    if purposes.is_empty() {
        return Ok(0);
    }
    let view = state.catalog();
    let now = Timestamp::now();
    let mut doomed = BTreeSet::new();
    for purpose in purposes {
        let mut before = None;
        loop {
            let filter = RecordFilter {
                purpose: Some(purpose.to_owned()),
                before,
                limit: WITHDRAWAL_PAGE,
                ..RecordFilter::default()
            };
            let page = state.store.records(subject, &filter).await?;
            for m in &page {
                let keeps = view
                    .catalog
                    .purpose(&m.purpose)
                    .is_some_and(|p| p.on_withdraw == OnWithdraw::KeepUntilRetention);
                if keeps {
                    continue;
                }
                let q = CheckQuery {
                    subject: subject.as_str(),
                    purpose: &m.purpose,
                    category: Some(&m.category),
                    channel: None,
                    recipient: None,
                    jurisdiction: None,
                };
                // A purpose or category the catalogue no longer knows is no basis either.
                if !state.engine.check(&q, now).is_ok_and(|d| d.allowed) {
                    doomed.insert(m.id.clone());
                }
            }
            if page.len() < WITHDRAWAL_PAGE as usize {
                break;
            }
            before = page.last().map(|m| m.id.clone());
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let selection = RecordSelection::Ids { subject: subject.clone(), ids: doomed.into_iter().collect() };
    Ok(delete_announced(state, selection, DeletionReason::Withdrawal).await?.len() as u64)
}
