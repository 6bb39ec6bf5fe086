//! CloudEvents 1.0 (structured JSON) for everything Consentry tells downstream systems: one envelope,
//! [`CloudEvent`], made by [`CloudEvent::new`] for every kind of event (consent changes here, `record.deleted`
//! here, `subject.erased` in erasure, `request.*` in requests), and completed by the dispatcher.
//!
//! A consent event's message is queued in the append transaction (so it is in the outbox exactly when the
//! ledger event is committed) and carries the event and the subject's resulting decision for its purpose.
//! Its outbox row keeps only the event's seq, the `source` and the decision: the dispatcher builds the
//! CloudEvent from the ledger event ([`claimed_event`]), byte for byte as a stored one was.
//! The stored payload never holds the subject id: the dispatcher adds the CloudEvents `subject` when it
//! sends ([`CloudEvent::with_subject`]), from the key store, so the data store keeps only pseudonyms.
//!
//! Every event's `source` is the installation's ([`installation_source`] unless `event_source` is set), so
//! that two installations feeding one consumer never send the same `(source, id)`.

use consentry_core::ledger::event_id;
use consentry_core::{Action, Decision, Event, Query, SubjectId, Timestamp};
use consentry_store::vault::{RecordAnnouncer, RecordMeta};
use consentry_store::{ClaimedDelivery, ClaimedEvent, OutboxEvent, OutboxMessage, Wants};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::state::Services;

/// A CloudEvents 1.0 event in the structured JSON format (`application/cloudevents+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    /// Unique for its `source`: a consent event's is its ledger event's id.
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change happened (RFC 3339).
    pub time: String,
    pub datacontenttype: String,
    /// The subject id: never stored with the payload, added when the event is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// An extension attribute, `true` on an event sent after its subject was erased: the id is gone, so
    /// the event names nobody (every message belongs to a subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<bool>,
    pub data: Value,
}

impl CloudEvent {
    /// An event of type `kind` from `source`, with JSON `data` and no subject.
    pub fn new(source: &str, id: String, kind: &str, time: Timestamp, data: Value) -> Self {
        Self {
            specversion: "1.0".to_owned(),
            id,
            source: source.to_owned(),
            kind: kind.to_owned(),
            time: time.to_string(),
            datacontenttype: "application/json".to_owned(),
            subject: None,
            erased: None,
            data,
        }
    }

    /// The outbox row for this event: its type, and the JSON to send (without a subject).
    pub fn into_outbox(self) -> OutboxMessage {
        OutboxMessage::whole(self.kind.clone(), self.to_json())
    }

    /// A stored payload read back, to be completed and sent.
    pub fn from_stored(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }

    /// The event with its CloudEvents `subject` set, or, once the subject was erased and the link is gone,
    /// without it and marked `erased: true`.
    #[must_use]
    pub fn with_subject(mut self, subject: Option<&SubjectId>) -> Self {
        self.subject = subject.map(|s| s.as_str().to_owned());
        self.erased = subject.is_none().then_some(true);
        self
    }

    /// The event as JSON.
    pub fn to_json(&self) -> String {
        // Only strings and a JSON value: serde_json cannot fail on them (it fails only on maps whose keys
        // are not strings, or on a failing `Serialize` impl).
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("a CloudEvent always serialises: {e}"))
    }
}

/// The default CloudEvents `source` of an installation: `urn:consentry:<installation id>`, where the id is
/// derived from `installation_secret`, a secret the key store makes on first start and every node of a
/// deployment shares. One-way (an HMAC under the secret), so the source reveals nothing of it.
pub(crate) fn installation_source(installation_secret: &[u8]) -> String {
    format!("urn:consentry:{}", installation_id(installation_secret))
}

/// The default origin of the installation's transparency log (`tlog_origin`): as unique as
/// [`installation_source`], from the same id, in the schema-less form C2SP checkpoints ask for.
pub(crate) fn installation_origin(installation_secret: &[u8]) -> String {
    format!("consentry.invalid/{}", installation_id(installation_secret))
}

/// 32 hex digits naming the installation, derived from its secret.
fn installation_id(installation_secret: &[u8]) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(installation_secret)
        .map(|mac| mac.chain_update(b"consentry installation id").finalize().into_bytes());
    // HMAC takes a key of any length; kept total rather than asserted.
    mac.map_or_else(|_| "0".repeat(32), |bytes| hex::encode(&bytes[..16]))
}

/// The CloudEvents type of an import's events: one per subject and batch, listing its imported changes.
/// Destinations receive it only when they name it exactly (not through `*` or `consent.*`).
pub const IMPORTED_TYPE: &str = "consent.imported";

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
        Action::Locate => "subject.located",
    }
}

/// A decision as the check API answers it: `not_covered` names what was not covered, and is left out
/// otherwise.
fn decision_json(d: Option<Decision>) -> Value {
    match d {
        Some(d) => {
            let mut v = json!({"allowed": d.allowed, "reason": d.reason.as_str(), "event_id": d.event_seq.map(event_id)});
            if let Some(dimension) = d.not_covered {
                v["not_covered"] = json!(dimension.as_str());
            }
            v
        }
        None => Value::Null,
    }
}

/// The decisions that result for a placed ledger event of `subject` from `placed` (the request's events,
/// which the engine does not hold yet), `overall` and per channel: what a consent message says beyond its
/// event, and all its outbox row keeps besides the event's seq and the message's source (the state it was
/// decided on is gone later; the decision's `purpose` is the event's and is not kept).
fn consent_decision(state: &Services, subject: &SubjectId, event: &Event, placed: &[Event]) -> Value {
    let now = Timestamp::now();
    let decide = |channel: Option<&str>| {
        let q = Query {
            subject: subject.as_str(),
            purpose: &event.purpose,
            category: None,
            channel,
            recipient: None,
            jurisdiction: None,
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
    json!({
        "overall": decision_json(decide(None)),
        "channels": per_channel,
    })
}

/// The CloudEvent (without `subject`) of a consent change: the ledger event as the ledger holds it, the
/// `decided` decisions made when it was recorded ([`consent_decision`]: `overall` and `channels`) and
/// the `source` it was queued with. The dispatcher builds it here from the outbox row and the ledger, byte
/// for byte as it was built when the whole message was stored.
pub fn consent_cloud_event(source: &str, event: &Event, decided: &Value) -> CloudEvent {
    let mut data = json!({
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
            "overall": decided["overall"],
            "channels": decided["channels"],
        },
    });
    // An imported change, or an expiry: when it took effect, which is the event's `time` too.
    if let Some(at) = event.occurred_at {
        data["event"]["occurred_at"] = Value::String(at.to_string());
    }
    CloudEvent::new(source, event.id(), consent_type(event.action), event.effective_at(), data)
}

/// The outbox message of a placed ledger event: its type, its seq and the installation's source, and as
/// payload only its decision (the dispatcher builds the CloudEvent from the ledger event).
fn consent_message(state: &Services, subject: &SubjectId, event: &Event, placed: &[Event]) -> OutboxMessage {
    OutboxMessage {
        event_type: consent_type(event.action).to_owned(),
        payload: consent_decision(state, subject, event, placed).to_string(),
        event: Some(OutboxEvent { seq: event.seq, source: state.config.event_source().to_owned() }),
    }
}

/// The outbox messages for a request's placed events: one CloudEvent each, of the types some destination
/// `wants` (no other would be stored).
pub fn consent_messages(
    state: &Services,
    subject: &SubjectId,
    placed: &[Event],
    wants: &Wants<'_>,
) -> Vec<OutboxMessage> {
    placed
        .iter()
        .filter(|e| wants(consent_type(e.action)))
        .map(|e| consent_message(state, subject, e, placed))
        .collect()
}

/// The CloudEvent of a claimed delivery, without `subject`: built from its ledger event for a consent
/// message, read back whole otherwise. An `Err` says why it cannot be sent.
pub fn claimed_event(claimed: &ClaimedDelivery) -> Result<CloudEvent, String> {
    match &claimed.event {
        None => CloudEvent::from_stored(&claimed.payload)
            .map_err(|e| format!("stored payload is not a CloudEvent: {e}")),
        Some(ClaimedEvent { event: None, .. }) => {
            Err("the ledger event of the message is missing".to_owned())
        }
        Some(ClaimedEvent { source, event: Some(event), .. }) => {
            let decided: Value = serde_json::from_str(&claimed.payload)
                .ok()
                .filter(|d: &Value| d.get("overall").is_some() && d.get("channels").is_some())
                .ok_or("the stored decision does not read back")?;
            Ok(consent_cloud_event(source, event, &decided))
        }
    }
}

/// The outbox messages an import's placed events may send as in force: the `consent.<action>` CloudEvent
/// of each, with the resulting decision, as a live change sends it, paired with its seq. The store puts a
/// message in the outbox only when its event is in force once the write is applied (the latest of its
/// purpose, scope and stance in the current state, read in the writing transaction: [`Sealed::in_force`]),
/// so a change older than what the subject holds, or than a change committed in the same or a concurrent
/// write, reaches the destinations that take consent events only through the `consent.imported` history.
/// Left out here already: a change a later one of the same import replaces.
///
/// [`Sealed::in_force`]: consentry_store::Sealed::in_force
pub fn imported_in_force(
    state: &Services,
    subject: &SubjectId,
    placed: &[Event],
    wants: &Wants<'_>,
) -> Vec<(u64, OutboxMessage)> {
    let replaced = |e: &Event| {
        placed.iter().any(|o| {
            o.purpose == e.purpose
                && o.scope == e.scope
                && o.action.stance() == e.action.stance()
                && o.order() > e.order()
        })
    };
    placed
        .iter()
        .filter(|e| e.action != Action::Locate && wants(consent_type(e.action)) && !replaced(e))
        .map(|e| (e.seq, consent_message(state, subject, e, placed)))
        .collect()
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
    let source = state.config.event_source().to_owned();
    Box::new(move |meta: &RecordMeta| {
        let now = Timestamp::now();
        let data = json!({
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
            "deleted_at": now.to_string(),
        });
        CloudEvent::new(&source, format!("{}.deleted", meta.id), RECORD_DELETED, now, data).into_outbox()
    })
}

/// The CloudEvents `type` of a deleted vault record.
pub const RECORD_DELETED: &str = "record.deleted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_cloudevents_json() {
        let at = Timestamp::parse("2025-01-02T03:04:05Z").expect("time");
        let event = CloudEvent::new("urn:x", "e1".into(), "consent.granted", at, json!({"a": 1}));
        let stored = event.clone().into_outbox();
        assert_eq!(stored.event_type, "consent.granted");
        let value: Value = serde_json::from_str(&stored.payload).expect("JSON");
        assert_eq!(
            value,
            json!({"specversion": "1.0", "id": "e1", "source": "urn:x", "type": "consent.granted",
                   "time": at.to_string(), "datacontenttype": "application/json", "data": {"a": 1}}),
            "no subject in what is stored"
        );
        let subject = SubjectId::new("ann").expect("subject");
        let sent = CloudEvent::from_stored(&stored.payload).expect("read back").with_subject(Some(&subject));
        assert_eq!(sent, CloudEvent { subject: Some("ann".into()), ..event.clone() });
        let sent: Value = serde_json::from_str(&sent.to_json()).expect("JSON");
        assert_eq!(sent["subject"], "ann");
        let erased = CloudEvent::from_stored(&stored.payload).expect("read back").with_subject(None);
        assert_eq!(erased, CloudEvent { erased: Some(true), ..event }, "an erased subject is left out");
        let erased: Value = serde_json::from_str(&erased.to_json()).expect("JSON");
        assert!(erased.get("subject").is_none(), "no `subject: null`: CloudEvents has no null attributes");
        assert_eq!(erased["erased"], true);
    }

    #[test]
    fn a_decision_reads_as_the_check_api_answers_it() {
        use consentry_core::{Dimension, Reason};
        let granted = decision_json(Some(Decision::new(Reason::Granted, Some(1))));
        assert_eq!(granted, json!({"allowed": true, "reason": "granted", "event_id": "evt_1"}));
        let partial = decision_json(Some(Decision::not_covered(Dimension::Category, Some(2))));
        assert_eq!(
            partial,
            json!({"allowed": false, "reason": "not_covered", "event_id": "evt_2", "not_covered": "category"})
        );
        assert_eq!(decision_json(None), Value::Null);
    }

    #[test]
    fn each_installation_has_its_own_source() {
        let one = installation_source(&[1; 32]);
        assert_eq!(one, installation_source(&[1; 32]), "the same secret, the same source: every node agrees");
        assert_ne!(one, installation_source(&[2; 32]));
        assert!(one.starts_with("urn:consentry:") && one.len() == "urn:consentry:".len() + 32, "{one}");
        assert!(!one.contains(&hex::encode([1; 16])), "the secret does not show");
    }
}
