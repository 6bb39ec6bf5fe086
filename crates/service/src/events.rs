//! CloudEvents 1.0 (structured JSON) for everything Consentry tells downstream systems.
//!
//! A consent event's payload is made in the append transaction (so it is in the outbox exactly when the
//! ledger event is committed) and carries the event and the subject's resulting decision for its purpose.
//! The stored payload never holds the subject id: the dispatcher adds the CloudEvents `subject` when it
//! sends, from the key store, so the data store keeps only pseudonyms.

use consentry_core::ledger::event_id;
use consentry_core::{Action, Decision, Event, Query, SubjectId, Timestamp};
use consentry_store::OutboxMessage;
use consentry_store::vault::{RecordAnnouncer, RecordMeta};
use serde_json::{Value, json};

use crate::state::Services;

/// The CloudEvents `type` of a consent event.
pub fn consent_type(action: Action) -> &'static str {
    match action {
        Action::Grant => "consent.granted",
        Action::Deny => "consent.denied",
        Action::Withdraw => "consent.withdrawn",
        Action::Object => "consent.objected",
        Action::Restrict => "consent.restricted",
        Action::Renew => "consent.renewed",
        Action::Expire => "consent.expired",
    }
}

fn decision_json(d: Option<Decision>) -> Value {
    match d {
        Some(d) => {
            json!({"allowed": d.allowed, "reason": d.reason.as_str(), "event_id": d.event_seq.map(event_id)})
        }
        None => Value::Null,
    }
}

/// The CloudEvent (without `subject`) for a placed ledger event of `subject`, with the decisions that
/// result from `placed` (the request's events, which the engine does not hold yet).
pub fn consent_payload(state: &Services, subject: &SubjectId, event: &Event, placed: &[Event]) -> String {
    let now = Timestamp::now();
    let decide = |channel: Option<&str>| {
        let q = Query {
            subject: subject.as_str(),
            purpose: &event.purpose,
            category: None,
            channel,
            recipient: None,
        };
        state.engine.check_with(&q, placed, now).ok()
    };
    // Per channel the change names, or else every channel the purpose declares.
    let channels: Vec<String> = if event.scope.channels.is_empty() {
        state.catalog().catalog.purpose(&event.purpose).map(|p| p.channels.clone()).unwrap_or_default()
    } else {
        event.scope.channels.clone()
    };
    let per_channel: Vec<Value> = channels
        .iter()
        .map(|ch| {
            let mut d = decision_json(decide(Some(ch)));
            if let Value::Object(map) = &mut d {
                map.insert("channel".into(), Value::String(ch.clone()));
            }
            d
        })
        .collect();
    let body = json!({
        "specversion": "1.0",
        "id": event.id(),
        "source": state.config.event_source,
        "type": consent_type(event.action),
        "time": event.recorded_at.to_string(),
        "datacontenttype": "application/json",
        "data": {
            "event": {
                "id": event.id(),
                "seq": event.seq,
                "purpose": event.purpose,
                "action": event.action.as_str(),
                "categories": event.scope.categories,
                "channels": event.scope.channels,
                "recipients": event.scope.recipients,
                "notice": event.notice,
                "notice_version": event.notice_version,
                "collection_point": event.collection_point,
                "actor": event.actor,
                "recorded_at": event.recorded_at.to_string(),
                "expires_at": event.expires_at.map(|t| t.to_string()),
                "hash": event.hash,
            },
            "decision": {
                "purpose": event.purpose,
                "overall": decision_json(decide(None)),
                "channels": per_channel,
            },
        },
    });
    body.to_string()
}

/// The outbox messages for a request's placed events: one CloudEvent each.
pub fn consent_messages(state: &Services, subject: &SubjectId, placed: &[Event]) -> Vec<OutboxMessage> {
    placed
        .iter()
        .map(|e| OutboxMessage {
            event_type: consent_type(e.action).to_owned(),
            payload: consent_payload(state, subject, e, placed),
        })
        .collect()
}

/// The body to send: the stored payload with the CloudEvents `subject` set (left out once the subject was
/// erased and the link is gone).
pub fn with_subject(payload: &str, subject: Option<&SubjectId>) -> Result<Vec<u8>, serde_json::Error> {
    let mut value: Value = serde_json::from_str(payload)?;
    if let (Some(subject), Value::Object(map)) = (subject, &mut value) {
        map.insert("subject".into(), Value::String(subject.as_str().to_owned()));
    }
    serde_json::to_vec(&value)
}

/// Why a vault record was deleted, as `record.deleted` events say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionReason {
    /// Through the API, one record or a category.
    Request,
    /// Its category's retention ended.
    Retention,
    /// The consent it was held under was withdrawn, denied or objected to.
    Withdrawal,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionReason::Request => "request",
            DeletionReason::Retention => "retention",
            DeletionReason::Withdrawal => "withdrawal",
        }
    }
}

/// Makes the `record.deleted` CloudEvent (without `subject`, which the dispatcher adds) of each record the
/// store deletes, in the deleting transaction. The payload names the record, never its content.
pub fn record_deleted(state: &Services, reason: DeletionReason) -> RecordAnnouncer {
    let source = state.config.event_source.clone();
    Box::new(move |meta: &RecordMeta| {
        let now = Timestamp::now().to_string();
        let body = json!({
            "specversion": "1.0",
            "id": format!("{}.deleted", meta.id),
            "source": source,
            "type": RECORD_DELETED,
            "time": now,
            "datacontenttype": "application/json",
            "data": {
                "record": {
                    "id": meta.id,
                    "device_id": meta.device_id,
                    "category": meta.category,
                    "purpose": meta.purpose,
                    "content_type": meta.content_type,
                    "size": meta.size,
                    "collected_at": meta.collected_at.to_string(),
                    "stored_at": meta.stored_at.to_string(),
                },
                "reason": reason.as_str(),
                "deleted_at": now,
            },
        });
        OutboxMessage { event_type: RECORD_DELETED.to_owned(), payload: body.to_string() }
    })
}

/// The CloudEvents `type` of a deleted vault record.
pub const RECORD_DELETED: &str = "record.deleted";
