//! A subject's consents: record changes in the ledger (with their receipt, outbox messages and the vault's
//! clean-up), and read the current decisions and the history.

use std::sync::Arc;

use consentry_core::catalog::{Basis, ChangeError};
use consentry_core::ledger::{event_id, is_guardian_actor, parse_event_id};
use consentry_core::{
    Action, Event, NewEvent, Query as CheckQuery, Scope as EventScope, SubjectId, Timestamp,
};
use consentry_store::{NoticeVersion, Sealed, SealedReceipt, Sealer, StoreError, Wants};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events;
use crate::guardians::writes::Refused;
use crate::receipts::{self, ReceiptContext, ReceiptProof, new_receipt_id};
use crate::records;
use crate::state::{CatalogView, Services};

/// Most changes in one request.
const MAX_CHANGES: usize = 100;

/// What a person did, as a request may state it (`expire` is Consentry's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Grant,
    Deny,
    Withdraw,
    Object,
    Restrict,
    Renew,
}

impl From<ChangeAction> for Action {
    fn from(a: ChangeAction) -> Self {
        match a {
            ChangeAction::Grant => Action::Grant,
            ChangeAction::Deny => Action::Deny,
            ChangeAction::Withdraw => Action::Withdraw,
            ChangeAction::Object => Action::Object,
            ChangeAction::Restrict => Action::Restrict,
            ChangeAction::Renew => Action::Renew,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeIn {
    /// A purpose of the catalogue (422 `unknown_purpose`); the action must be one it allows (422
    /// `action_not_allowed`).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub purpose: String,
    pub action: ChangeAction,
    /// Data categories the change covers; empty: all the purpose's notice covers.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::CatalogKey>)]
    pub categories: Vec<String>,
    /// Channels of the purpose; empty: all of them.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::CatalogKey>)]
    pub channels: Vec<String>,
    /// Recipients of the purpose; empty: all of them.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::CatalogKey>)]
    pub recipients: Vec<String>,
    /// When a grant lapses (RFC 3339). Only for `grant` and `renew`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConsents {
    /// The notice shown to the person. Required when a change grants or renews consent; it must be the
    /// notice the purpose names.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub notice: Option<String>,
    /// The notice version shown; default the current one.
    #[serde(default, deserialize_with = "crate::whole::optional")]
    pub notice_version: Option<u32>,
    /// Where the consent was collected (a catalogue collection point).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub collection_point: Option<String>,
    /// 1 to 100 changes.
    #[schema(min_items = 1, max_items = 100)]
    pub changes: Vec<ChangeIn>,
    /// Where the person is: a place of the catalogue's `jurisdictions` (422 `unknown_jurisdiction`),
    /// the subject's jurisdiction from this write on, recorded in the ledger with its first event.
    /// Checks that name no jurisdiction decide by it.
    #[serde(default)]
    #[schema(min_length = 2, max_length = 6, pattern = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", example = "US-CA")]
    pub jurisdiction: Option<String>,
    /// Only with a service key: `guardian:<subject id>` records the changes as made by that recorded
    /// guardian of the subject (a known child's consent needs one); 422 for anyone else. A guardian's
    /// own subject token is recorded so without it. The events name the guardian by pseudonym
    /// (`guardian:<pseudonym>`), never by subject id.
    #[serde(default)]
    #[schema(max_length = 137, pattern = r"^guardian:.+$", example = "guardian:parent-17")]
    pub actor: Option<String>,
}

/// One ledger event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    pub seq: u64,
    pub subject: String,
    pub purpose: String,
    pub action: String,
    pub categories: Vec<String>,
    pub channels: Vec<String>,
    pub recipients: Vec<String>,
    pub notice: Option<String>,
    pub notice_version: Option<u32>,
    pub notice_hash: Option<String>,
    pub collection_point: Option<String>,
    pub actor: String,
    pub recorded_at: String,
    pub expires_at: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// What the change rests on besides the notice: `sha256:<hex>` of the IAB TCF or GPP string a
    /// `signal:tcf` or `signal:gpp` change was read from, or of an imported change's evidence (compact
    /// JSON, keys sorted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The subject's jurisdiction from this event on, when the change set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// When an imported change was originally made (its `recorded_at` is when it was imported); the
    /// current state orders changes by this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// In a history: `true` when the evidence itself is stored (an imported change's), readable at
    /// `GET /v1/subjects/{subject}/consents/history/{id}/evidence`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evidence_stored: bool,
}

impl EventOut {
    pub(crate) fn new(subject: &SubjectId, e: Event) -> Self {
        EventOut {
            id: event_id(e.seq),
            seq: e.seq,
            subject: subject.as_str().to_owned(),
            purpose: e.purpose,
            action: e.action.as_str().to_owned(),
            categories: e.scope.categories,
            channels: e.scope.channels,
            recipients: e.scope.recipients,
            notice: e.notice,
            notice_version: e.notice_version,
            notice_hash: e.notice_hash,
            collection_point: e.collection_point,
            actor: e.actor,
            recorded_at: e.recorded_at.to_string(),
            expires_at: e.expires_at.map(|t| t.to_string()),
            prev_hash: e.prev_hash,
            hash: e.hash,
            evidence: e.evidence,
            jurisdiction: e.jurisdiction,
            occurred_at: e.occurred_at.map(|t| t.to_string()),
            evidence_stored: false,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedConsents {
    pub events: Vec<EventOut>,
    /// One receipt for the whole request, with the proof of its events' inclusion in the ledger.
    pub receipt: ReceiptProof,
    /// How many of the subject's vault records this change deleted (those held for a purpose it
    /// withdrew, denied or objected to, unless the purpose keeps them until their retention ends).
    pub records_deleted: u64,
}

fn change_error(i: usize, e: ChangeError, purpose: &str) -> Error {
    let at = |field: &str| format!("changes[{i}].{field}");
    match e {
        ChangeError::UnknownPurpose => Error::UnknownPurpose(purpose.to_owned()),
        ChangeError::UnknownCategory(c) => Error::UnknownCategory(c),
        ChangeError::UnknownChannel(c) => Error::UnknownChannel(c),
        ChangeError::UnknownRecipient(r) => Error::UnknownRecipient(r),
        ChangeError::ActionNotForBasis { .. } | ChangeError::SystemOnlyAction => {
            Error::ActionNotAllowed(format!("{}: {e}", at("action")))
        }
        ChangeError::OutsidePurpose { field, .. } => Error::NotInPurpose(format!("{}: {e}", at(field))),
    }
}

/// Checks a request against the catalogue and turns it into ledger events. `notice_hash` is the SHA-256
/// of the notice version the request names.
fn build_events(
    view: &CatalogView,
    body: RecordConsents,
    notice: Option<&NoticeVersion>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<NewEvent>> {
    if body.changes.is_empty() {
        return Err(Error::validation("changes", "list at least one change"));
    }
    if body.changes.len() > MAX_CHANGES {
        return Err(Error::validation("changes", format!("at most {MAX_CHANGES} changes per request")));
    }
    if let Some(cp) = &body.collection_point
        && view.catalog.collection_point(cp).is_none()
    {
        return Err(Error::UnknownCollectionPoint(cp.clone()));
    }
    if let Some(j) = &body.jurisdiction
        && view.catalog.jurisdiction(j).is_none()
    {
        return Err(Error::unknown_jurisdiction("jurisdiction", j));
    }
    let mut jurisdiction = body.jurisdiction;
    let mut events = Vec::with_capacity(body.changes.len());
    for (i, c) in body.changes.into_iter().enumerate() {
        let action = Action::from(c.action);
        let scope = EventScope::new(c.categories, c.channels, c.recipients);
        view.catalog.check_change(&c.purpose, action, &scope).map_err(|e| change_error(i, e, &c.purpose))?;
        let purpose =
            view.catalog.purpose(&c.purpose).ok_or_else(|| Error::UnknownPurpose(c.purpose.clone()))?;
        if action.is_positive() {
            let named = notice.map(|n| n.key.as_str());
            if purpose.basis == Basis::Consent && named != purpose.notice.as_deref() {
                return Err(Error::NoticeMismatch(format!(
                    "changes[{i}]: consent to {:?} must be given under its notice {:?}",
                    c.purpose,
                    purpose.notice.as_deref().unwrap_or("")
                )));
            }
        }
        match c.expires_at {
            Some(_) if !action.is_positive() => {
                return Err(Error::validation(
                    format!("changes[{i}].expires_at"),
                    "only a grant or renewal can expire",
                ));
            }
            Some(t) if t <= now => {
                return Err(Error::validation(format!("changes[{i}].expires_at"), "must lie in the future"));
            }
            _ => {}
        }
        let (notice_key, notice_version, notice_hash) = match notice {
            Some(n) => (Some(n.key.clone()), Some(n.version), Some(n.sha256.clone())),
            None => (None, None, None),
        };
        events.push(NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: jurisdiction.take(),
            purpose: c.purpose,
            action,
            scope,
            notice: notice_key,
            notice_version,
            notice_hash,
            collection_point: body.collection_point.clone(),
            actor: actor.to_owned(),
            expires_at: c.expires_at,
        });
    }
    Ok(events)
}

/// Resolves the notice version a request names (default: the current one).
async fn resolve_notice(
    state: &Services,
    view: &CatalogView,
    notice: Option<&str>,
    version: Option<u32>,
) -> Result<Option<NoticeVersion>> {
    let Some(key) = notice else {
        if version.is_some() {
            return Err(Error::validation("notice_version", "name the notice too"));
        }
        return Ok(None);
    };
    let current = view
        .stored
        .notices
        .iter()
        .find(|n| n.key == key)
        .ok_or_else(|| Error::UnknownNotice(format!("unknown notice {key:?}")))?;
    match version {
        None => Ok(Some(current.clone())),
        Some(v) if v == current.version => Ok(Some(current.clone())),
        Some(v) => match state.store.notice_version(key, v).await? {
            Some(n) => Ok(Some(n)),
            None => Err(Error::UnknownNotice(format!("notice {key:?} has no version {v}"))),
        },
    }
}

/// Records consent changes through the API for `principal` (a service key with `consent:write`, the
/// person, or a guardian of theirs: [`write_actor`](crate::guardians::writes::write_actor)), recorded as
/// its actor; a change made with a subject token is also written in the access log ([`Reader::action`]).
pub async fn record(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    body: RecordConsents,
    reader: Reader<'_>,
) -> Result<RecordedConsents> {
    let actor =
        crate::guardians::writes::write_actor(state, principal, subject, body.actor.as_deref()).await?;
    let recorded = record_changes(state, subject, body, &actor).await?;
    // A guardian with their own token is logged as the ledger names them, not as the child.
    let guardian = matches!(principal, Principal::Subject(_)) && is_guardian_actor(&actor);
    reader.by_guardian(guardian.then_some(actor.as_str())).log(&state.access, subject);
    Ok(recorded)
}

/// Records one request's consent changes for `subject` as `actor`: checks them against the catalogue,
/// appends them sealed with a signed receipt and their outbox messages, and applies them to the engine.
/// Answers once they are durable. The API, the preference centre and the Global Privacy Control signal all
/// record through here. A known child's own grants are refused (403 `guardian_required`) while the rest
/// of the request is recorded ([`append_events`]).
pub async fn record_changes(
    state: &Services,
    subject: &SubjectId,
    body: RecordConsents,
    actor: &str,
) -> Result<RecordedConsents> {
    settled(record_split(state, subject, body, actor).await?)
}

/// [`record_changes`], answering what was recorded (if anything) and what a known child may not record
/// alone.
pub(crate) async fn record_split(
    state: &Services,
    subject: &SubjectId,
    body: RecordConsents,
    actor: &str,
) -> Result<(Option<RecordedConsents>, Refused)> {
    // Every face refuses an erased subject before this; this keeps the rule where the write is.
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let view = state.catalog();
    let notice = resolve_notice(state, &view, body.notice.as_deref(), body.notice_version).await?;
    let collection_point = body.collection_point.clone();
    let events = build_events(&view, body, notice.as_ref(), actor, Timestamp::now())?;
    append_split(state, subject, &view, events, notice, collection_point).await
}

/// Appends checked events of one request for `subject`, sealed with a signed receipt and their outbox
/// messages, and applies them to the engine; deletes the vault's records they no longer allow. Answers
/// once they are durable. Consent changes and consent signals both append through here.
///
/// Every write of consents passes here: a known child's own consent is refused, whoever records it, while
/// the rest of the request (its withdrawals, denials, objections, restrictions) is recorded all the same,
/// under its own receipt, before the answer is 403 `guardian_required` naming each refused change.
pub(crate) async fn append_events(
    state: &Services,
    subject: &SubjectId,
    view: &Arc<CatalogView>,
    events: Vec<NewEvent>,
    notice: Option<NoticeVersion>,
    collection_point: Option<String>,
) -> Result<RecordedConsents> {
    settled(append_split(state, subject, view, events, notice, collection_point).await?)
}

/// A split write's answer for a face that shows only one: what was recorded when nothing was refused,
/// otherwise 403 `guardian_required` naming the refused changes and what was recorded beside them.
fn settled((recorded, refused): (Option<RecordedConsents>, Refused)) -> Result<RecordedConsents> {
    match recorded {
        Some(recorded) if refused.is_empty() => Ok(recorded),
        recorded => {
            let kept = recorded.as_ref().map(|r| (r.events.len(), r.receipt.id.as_str()));
            Err(refused.into_error(kept))
        }
    }
}

/// [`append_events`], answering what was recorded (if anything) and what a known child may not record
/// alone, for a face that shows both (the preference centre).
pub(crate) async fn append_split(
    state: &Services,
    subject: &SubjectId,
    view: &Arc<CatalogView>,
    events: Vec<NewEvent>,
    notice: Option<NoticeVersion>,
    collection_point: Option<String>,
) -> Result<(Option<RecordedConsents>, Refused)> {
    let (events, refused) = crate::guardians::writes::split_for_child(state, subject, events).await?;
    if events.is_empty() && !refused.is_empty() {
        return Ok((None, refused));
    }
    let recorded = append_allowed(state, subject, view, events, notice, collection_point).await?;
    Ok((Some(recorded), refused))
}

/// [`append_events`] once what a known child may not record alone was taken out.
async fn append_allowed(
    state: &Services,
    subject: &SubjectId,
    view: &Arc<CatalogView>,
    events: Vec<NewEvent>,
    notice: Option<NoticeVersion>,
    collection_point: Option<String>,
) -> Result<RecordedConsents> {
    let ctx = ReceiptContext {
        id: new_receipt_id()?,
        subject: subject.clone(),
        controller: state.config.controller.clone(),
        notice,
        collection_point,
    };
    let signer = state.signing.current();
    let sealing_view = Arc::clone(view);
    let sealing_state = state.clone();
    let receipt_id = ctx.id.clone();
    let kid = signer.kid().to_owned();
    let sealing_subject = subject.clone();
    // Inside the commit only what the outbox needs: the receipt is built and proven after it, and never
    // signed per request (one checkpoint signature covers every event).
    let seal: Sealer = Box::new(move |placed: &[Event], wants: &Wants<'_>| {
        Ok(Sealed {
            receipt: Some(SealedReceipt {
                id: receipt_id,
                catalog_version: sealing_view.stored.version,
                issued_at: Timestamp::now(),
                kid,
            }),
            outbox: events::consent_messages(&sealing_state, &sealing_subject, placed, wants),
            in_force: Vec::new(),
        })
    });
    let retry = (events.clone(), ctx.notice.clone(), ctx.collection_point.clone());
    let (placed, sealed) = match state.store.append_sealed(subject, events, Some(seal)).await {
        // Linked into another subject meanwhile (on any node): the change is the survivor's.
        Err(StoreError::Linked(survivor)) => {
            state.aliases.link(subject.as_str(), survivor.as_str());
            let (events, notice, point) = retry;
            return Box::pin(append_events(state, &survivor, view, events, notice, point)).await;
        }
        placed => placed?,
    };
    let sealed =
        sealed.ok_or_else(|| Error::internal("the store returned no receipt for a sealed append"))?;
    state.apply_committed(subject, &placed);
    state.metrics.ledger_appends.inc_by(placed.len() as u64);
    state.dispatch_wake.notify_one();
    // Devices learn of the change before the vault's clean-up, which may fail on its own.
    state.devices.subject_changed(subject);
    let records_deleted = records::delete_after_withdrawal(state, subject, &placed).await?;
    let payload = receipts::build(&ctx, &view.catalog, &placed, sealed.issued_at, &signer);
    let receipt = receipts::prove(state, ctx.id, subject, sealed.issued_at, payload, &placed).await?;
    let events = placed.into_iter().map(|e| EventOut::new(subject, e)).collect();
    Ok(RecordedConsents { events, receipt, records_deleted })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelDecision {
    pub channel: String,
    pub allowed: bool,
    pub reason: String,
    pub event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeDecision {
    pub purpose: String,
    pub basis: String,
    /// The decision for the purpose as a whole (every channel, category and recipient it declares).
    pub allowed: bool,
    pub reason: String,
    pub event_id: Option<String>,
    /// The decision per channel the purpose declares.
    pub channels: Vec<ChannelDecision>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentConsents {
    pub subject: String,
    pub catalog_version: u64,
    pub purposes: Vec<PurposeDecision>,
    /// The statements in force: the latest event per purpose and scope.
    pub statements: Vec<EventOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub events: Vec<EventOut>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// The subject's current state: a decision per purpose and per channel it declares, and the statements
/// in force. A service's read is logged.
pub async fn current(
    services: &Services,
    subject: &SubjectId,
    reader: Reader<'_>,
) -> Result<CurrentConsents> {
    reader.log(&services.access, subject);
    let view = services.catalog();
    let now = Timestamp::now();
    // The engine may already hold a newer catalogue than `view` (a concurrent apply); a purpose or channel
    // it no longer knows is left out rather than failing the read.
    let decide = |purpose: &str, channel: Option<&str>| {
        let q = CheckQuery::whole_purpose(subject.as_str(), purpose, channel);
        services.engine.check(&q, now).ok()
    };
    let mut purposes = Vec::new();
    for p in &view.catalog.document().purposes {
        let Some(d) = decide(&p.key, None) else { continue };
        let mut channels = Vec::with_capacity(p.channels.len());
        for ch in &p.channels {
            let Some(cd) = decide(&p.key, Some(ch)) else { continue };
            channels.push(ChannelDecision {
                channel: ch.clone(),
                allowed: cd.allowed,
                reason: cd.reason.as_str().to_owned(),
                event_id: cd.event_seq.map(event_id),
            });
        }
        purposes.push(PurposeDecision {
            purpose: p.key.clone(),
            basis: p.basis.as_str().to_owned(),
            allowed: d.allowed,
            reason: d.reason.as_str().to_owned(),
            event_id: d.event_seq.map(event_id),
            channels,
        });
    }
    let statements =
        services.store.current(subject).await?.into_iter().map(|e| EventOut::new(subject, e)).collect();
    Ok(CurrentConsents {
        subject: subject.as_str().to_owned(),
        catalog_version: view.stored.version,
        purposes,
        statements,
    })
}

/// Which page of the history: `limit` events (1 to 1000, default 100) after the event id `after`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct HistoryPage {
    pub limit: Option<u32>,
    /// An event id such as `evt_42`: the `next` of the previous page.
    pub after: Option<String>,
}

/// One page of the subject's ledger events, oldest first. A service's read is logged, even of a page
/// asked for wrongly.
pub async fn history(
    services: &Services,
    subject: &SubjectId,
    page: HistoryPage,
    reader: Reader<'_>,
) -> Result<History> {
    reader.log(&services.access, subject);
    let limit = crate::page_limit(page.limit, 1000)?;
    let after = match page.after.as_deref() {
        None => 0,
        Some(id) => parse_event_id(id)
            .ok_or_else(|| Error::InvalidQuery("after must be an event id such as evt_42".into()))?,
    };
    let events = services.store.history(subject, after, limit).await?;
    let next = (events.len() == limit as usize).then(|| events.last().map(|e| event_id(e.seq))).flatten();
    let held = crate::evidence::held(services, subject, &events).await?;
    let events = events
        .into_iter()
        .map(|e| {
            let stored = held.contains(&e.seq);
            EventOut { evidence_stored: stored, ..EventOut::new(subject, e) }
        })
        .collect();
    Ok(History { events, next })
}
