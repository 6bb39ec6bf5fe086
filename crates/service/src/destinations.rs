//! `/v1/destinations`: the downstream systems that receive every change (webhooks, NATS JetStream, MQTT),
//! their deliveries, and replay.

use consentry_core::Timestamp;

use consentry_store::DestinationRecord;

use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Nats,
    Mqtt,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Nats => "nats",
            Kind::Mqtt => "mqtt",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDestination {
    pub name: String,
    pub kind: Kind,
    /// `https://...` (webhook), `nats://host:4222`, `mqtt://host:1883`.
    pub url: String,
    /// NATS subject prefix: events go to `<subject>.<type>`.
    #[serde(default)]
    pub subject: Option<String>,
    /// MQTT topic prefix: events go to `<topic>/<type>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Event types to send: exact (`consent.withdrawn`), prefix (`consent.*`) or `*`.
    pub event_types: Vec<String>,
    /// Webhook signing secret (`whsec_` + base64); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    pub name: Option<String>,
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Pause (true) or resume (false) deliveries; events keep queueing while paused.
    pub paused: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationOut {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub event_types: Vec<String>,
    pub paused: bool,
    /// Some event was dead-lettered for this destination.
    pub flagged: bool,
    pub created_at: String,
    /// The webhook signing secret, shown only when the destination is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<DestinationRecord> for DestinationOut {
    fn from(d: DestinationRecord) -> Self {
        let (subject, topic) = match d.kind.as_str() {
            "nats" => (d.target, None),
            "mqtt" => (None, d.target),
            _ => (None, None),
        };
        DestinationOut {
            id: d.id,
            name: d.name,
            kind: d.kind,
            url: d.url,
            subject,
            topic,
            event_types: d.event_types,
            paused: d.paused,
            flagged: d.flagged,
            created_at: d.created_at.to_string(),
            secret: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationList {
    pub destinations: Vec<DestinationOut>,
}

pub fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::validation("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

pub fn check_event_types(types: &[String]) -> Result<()> {
    if types.is_empty() {
        return Err(Error::validation("event_types", "list at least one event type or pattern"));
    }
    for (i, t) in types.iter().enumerate() {
        let body = t.strip_suffix('*').unwrap_or(t);
        let ok = t.len() <= 100
            && body.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
            && (t == "*" || !body.is_empty());
        if !ok {
            return Err(Error::validation(
                format!("event_types[{i}]"),
                "must be an event type such as consent.withdrawn, a prefix pattern such as consent.*, or *",
            ));
        }
    }
    Ok(())
}

pub fn check_url(kind: Kind, url: &str) -> Result<()> {
    let schemes: &[&str] = match kind {
        Kind::Webhook => &["https://", "http://"],
        Kind::Nats => &["nats://", "tls://"],
        Kind::Mqtt => &["mqtt://", "tcp://"],
    };
    if url.len() > 2000 || !schemes.iter().any(|s| url.starts_with(s)) || url.contains(char::is_whitespace) {
        return Err(Error::validation(
            "url",
            format!("a {} URL starts with {}", kind.as_str(), schemes.join(" or ")),
        ));
    }
    Ok(())
}

pub fn check_target(field: &str, value: Option<&str>, separator: char) -> Result<String> {
    let value = value.map(str::trim).unwrap_or("");
    let ok = !value.is_empty()
        && value.len() <= 200
        && value.split(separator).all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !ok {
        return Err(Error::validation(
            field,
            format!("give a {field} made of letters, digits, - and _, in parts separated by '{separator}'"),
        ));
    }
    Ok(value.to_owned())
}

pub fn new_id() -> Result<String> {
    let b = consentry_store::random_bytes::<8>()?;
    Ok(format!("dst_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// The event's position in the outbox; `replay` starts from one.
    pub id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryOut>,
    pub next: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Replay from this delivery id (as listed by `deliveries`) on.
    pub from_id: Option<i64>,
    /// Or replay every event since this time (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    /// Events queued again for this destination.
    pub queued: u64,
}
