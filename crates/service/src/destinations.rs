//! Destinations: the downstream systems that receive every change (webhooks, NATS JetStream, MQTT), their
//! deliveries, and replay. The API's `/v1/destinations` routes call one function here each.

use consentry_core::Timestamp;
use consentry_store::{DestinationPatch, DestinationRecord, NewDestination, ReplayFrom};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::egress::{AddressPolicy, UrlProblem};
use crate::error::{Error, Result};
use crate::sinks::webhook;
use crate::state::Services;
use crate::workers::dispatcher::type_matches;

/// Largest page of deliveries.
const MAX_DELIVERIES_PAGE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Nats,
    Mqtt,
}

impl Kind {
    /// The kind of a stored destination (webhook for anything unknown, as the dispatcher reads it).
    fn of(record: &DestinationRecord) -> Self {
        match record.kind.as_str() {
            "nats" => Kind::Nats,
            "mqtt" => Kind::Mqtt,
            _ => Kind::Webhook,
        }
    }

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
    /// 1 to 100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    pub kind: Kind,
    /// `https://...` or `http://...` (webhook), `nats://host:4222` or `tls://...`, `mqtt://host:1883` or
    /// `tcp://...`: the scheme must fit the kind, and an IP-literal host must be publicly routable unless the
    /// operator allows its network (else 422 `validation_failed`).
    #[schema(min_length = 1, max_length = 2000, pattern = r"^(https?|nats|tls|mqtt|tcp)://\S+$")]
    pub url: String,
    /// NATS subject prefix: events go to `<subject>.<type>`.
    /// Required for `nats`: letters, digits, `-` and `_`, in parts separated by `.`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"^\s*[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\s*$")]
    pub subject: Option<String>,
    /// MQTT topic prefix: events go to `<topic>/<type>`.
    /// Required for `mqtt`: letters, digits, `-` and `_`, in parts separated by `/`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"^\s*[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\s*$")]
    pub topic: Option<String>,
    /// Event types to send: exact (`consent.withdrawn`), prefix (`consent.*`) or `*`.
    #[schema(min_items = 1, value_type = Vec<crate::schema::EventType>)]
    pub event_types: Vec<String>,
    /// Webhook signing secret (`whsec_` + base64); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// As at creation; the scheme must fit the destination's kind (else 422 `validation_failed`).
    #[schema(min_length = 1, max_length = 2000, pattern = r"^(https?|nats|tls|mqtt|tcp)://\S+$")]
    pub url: Option<String>,
    #[schema(min_items = 1, value_type = Option<Vec<crate::schema::EventType>>)]
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

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::validation("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

fn check_event_types(types: &[String]) -> Result<()> {
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

/// Checks a destination URL: its scheme, then (see [`crate::egress`]) that it parses, that a webhook
/// carries no credentials (NATS and MQTT brokers authenticate with them), and that an IP-literal host is
/// one the operator's `allow_private_destinations` permits. Names are checked when sent to.
fn check_url(state: &Services, kind: Kind, url: &str) -> Result<()> {
    check_scheme(kind, url)?;
    let policy = AddressPolicy::parse(&state.config.allow_private_destinations).map_err(Error::internal)?;
    let urls: Vec<&str> = match kind {
        // A NATS client takes a comma-separated list of servers.
        Kind::Nats => url.split(',').map(str::trim).collect(),
        Kind::Webhook | Kind::Mqtt => vec![url],
    };
    for one in urls {
        match policy.check_url(one, kind != Kind::Webhook) {
            Ok(()) => {}
            Err(UrlProblem::Invalid) => {
                return Err(Error::validation("url", "is not a valid URL with a host"));
            }
            Err(UrlProblem::Credentials) => {
                return Err(Error::validation(
                    "url",
                    "must not carry credentials (user:password@); a webhook is authenticated by its signature",
                ));
            }
            Err(UrlProblem::Refused(ip)) => {
                return Err(Error::validation(
                    "url",
                    format!(
                        "points at {ip}, an address that is not publicly routable; an operator may allow its \
                         network in allow_private_destinations"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_scheme(kind: Kind, url: &str) -> Result<()> {
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

fn check_target(field: &str, value: Option<&str>, separator: char) -> Result<String> {
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

fn new_id() -> Result<String> {
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
    #[serde(default, deserialize_with = "crate::whole::optional")]
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

/// Registers a destination for `caller`. A webhook gets a signing secret (the given one, or a new one),
/// shown in this answer only.
pub async fn create(state: &Services, caller: &Caller, body: CreateDestination) -> Result<DestinationOut> {
    check_name(&body.name)?;
    check_url(state, body.kind, &body.url)?;
    check_event_types(&body.event_types)?;
    let target = match body.kind {
        Kind::Webhook => {
            if body.subject.is_some() || body.topic.is_some() {
                return Err(Error::validation("subject", "a webhook takes neither subject nor topic"));
            }
            None
        }
        Kind::Nats => Some(check_target("subject", body.subject.as_deref(), '.')?),
        Kind::Mqtt => Some(check_target("topic", body.topic.as_deref(), '/')?),
    };
    let (secret, shown) = match (body.kind, body.secret.as_deref()) {
        (Kind::Webhook, Some(text)) => {
            let bytes = webhook::parse_secret(text)
                .ok_or_else(|| Error::validation("secret", "must be whsec_ followed by base64"))?;
            (Some(bytes), Some(text.to_owned()))
        }
        (Kind::Webhook, None) => {
            let (bytes, text) = webhook::new_secret().map_err(Error::internal)?;
            (Some(bytes), Some(text))
        }
        (_, Some(_)) => return Err(Error::validation("secret", "only webhooks are signed with a secret")),
        (_, None) => (None, None),
    };
    let record = DestinationRecord {
        id: new_id()?,
        name: body.name.trim().to_owned(),
        kind: body.kind.as_str().to_owned(),
        url: body.url,
        target,
        event_types: body.event_types,
        paused: false,
        flagged: false,
        created_at: Timestamp::now(),
    };
    state.store.create_destination(NewDestination { record: record.clone(), secret }).await?;
    tracing::info!(destination = %record.id, kind = %record.kind, by = %caller.key_id, "destination created");
    let mut out = DestinationOut::from(record);
    out.secret = shown;
    Ok(out)
}

/// Every destination.
pub async fn list(state: &Services) -> Result<DestinationList> {
    let destinations = state.store.destinations().await?.into_iter().map(DestinationOut::from).collect();
    Ok(DestinationList { destinations })
}

async fn load(state: &Services, id: &str) -> Result<DestinationRecord> {
    state.store.destination(id).await?.ok_or(Error::NotFound("destination"))
}

/// One destination.
pub async fn get(state: &Services, id: &str) -> Result<DestinationOut> {
    Ok(load(state, id).await?.into())
}

/// Renames, re-targets, re-filters, pauses or resumes a destination; returns it as it now is.
pub async fn update(state: &Services, id: &str, body: UpdateDestination) -> Result<DestinationOut> {
    let current = load(state, id).await?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(url) = &body.url {
        check_url(state, Kind::of(&current), url)?;
    }
    if let Some(types) = &body.event_types {
        check_event_types(types)?;
    }
    let patch = DestinationPatch {
        name: body.name.map(|n| n.trim().to_owned()),
        url: body.url,
        event_types: body.event_types,
        paused: body.paused,
    };
    if !state.store.update_destination(id, patch).await? {
        return Err(Error::NotFound("destination"));
    }
    // A resumed destination, or one that now takes more types, has work at once.
    state.dispatch_wake.notify_one();
    get(state, id).await
}

/// Removes a destination and its deliveries.
pub async fn delete(state: &Services, caller: &Caller, id: &str) -> Result<()> {
    if !state.store.delete_destination(id).await? {
        return Err(Error::NotFound("destination"));
    }
    tracing::info!(destination = %id, by = %caller.key_id, "destination deleted");
    Ok(())
}

/// One page of a destination's deliveries: `status` (`pending`, `delivered` or `dead`) if given, after the
/// delivery id `after`, at most `limit` (1 to 1000, default 100).
pub async fn deliveries(
    state: &Services,
    id: &str,
    status: Option<&str>,
    after: Option<i64>,
    limit: Option<u32>,
) -> Result<DeliveryList> {
    load(state, id).await?;
    let limit = crate::page_limit(limit, MAX_DELIVERIES_PAGE)?;
    if let Some(s) = status
        && !matches!(s, "pending" | "delivered" | "dead")
    {
        return Err(Error::InvalidQuery("status must be pending, delivered or dead".into()));
    }
    let rows = state.store.deliveries(id, status, after.unwrap_or(0), limit).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.outbox_id)).flatten();
    let deliveries = rows
        .into_iter()
        .map(|r| DeliveryOut {
            id: r.outbox_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            next_attempt_at: r.next_attempt_at.map(|t| t.to_string()),
            delivered_at: r.delivered_at.map(|t| t.to_string()),
            created_at: r.created_at.to_string(),
        })
        .collect();
    Ok(DeliveryList { deliveries, next })
}

/// Queues again, in order, the events the destination's filter takes from a delivery id or a time on. A
/// destination reaches only what was written since its creation and within `outbox_retention_secs`; an
/// earlier start is refused (`replay_out_of_reach`) rather than silently shortened.
pub async fn replay(state: &Services, caller: &Caller, id: &str, body: ReplayRequest) -> Result<ReplayOut> {
    let d = load(state, id).await?;
    let from = match (body.from_id, body.since) {
        (Some(id), None) => ReplayFrom::OutboxId(id),
        (None, Some(t)) => ReplayFrom::Time(t),
        _ => return Err(Error::validation("from_id", "give exactly one of from_id and since")),
    };
    let patterns = d.event_types;
    let retention = i64::try_from(state.config.outbox_retention_secs).unwrap_or(i64::MAX);
    let not_before = Timestamp::now().plus_seconds(-retention);
    let queued = state.store.replay(id, from, not_before, &move |t: &str| type_matches(&patterns, t)).await?;
    state.dispatch_wake.notify_one();
    tracing::info!(destination = %id, queued, by = %caller.key_id, "replay queued");
    Ok(ReplayOut { queued })
}
