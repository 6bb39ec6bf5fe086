//! `/v1/destinations`: the downstream systems that receive every change (webhooks, NATS JetStream, MQTT),
//! their deliveries, and replay.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use consentry_core::Timestamp;
use consentry_store::{DestinationPatch, DestinationRecord, NewDestination, ReplayFrom};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Query};
use crate::sinks::webhook;
use crate::state::AppState;
use crate::workers::dispatcher::type_matches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Nats,
    Mqtt,
}

impl Kind {
    fn as_str(self) -> &'static str {
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

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

fn check_event_types(types: &[String]) -> ApiResult<()> {
    if types.is_empty() {
        return Err(ApiError::validation("event_types", "list at least one event type or pattern"));
    }
    for (i, t) in types.iter().enumerate() {
        let body = t.strip_suffix('*').unwrap_or(t);
        let ok = t.len() <= 100
            && body.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
            && (t == "*" || !body.is_empty());
        if !ok {
            return Err(ApiError::validation(
                format!("event_types[{i}]"),
                "must be an event type such as consent.withdrawn, a prefix pattern such as consent.*, or *",
            ));
        }
    }
    Ok(())
}

fn check_url(kind: Kind, url: &str) -> ApiResult<()> {
    let schemes: &[&str] = match kind {
        Kind::Webhook => &["https://", "http://"],
        Kind::Nats => &["nats://", "tls://"],
        Kind::Mqtt => &["mqtt://", "tcp://"],
    };
    if url.len() > 2000 || !schemes.iter().any(|s| url.starts_with(s)) || url.contains(char::is_whitespace) {
        return Err(ApiError::validation(
            "url",
            format!("a {} URL starts with {}", kind.as_str(), schemes.join(" or ")),
        ));
    }
    Ok(())
}

fn check_target(field: &str, value: Option<&str>, separator: char) -> ApiResult<String> {
    let value = value.map(str::trim).unwrap_or("");
    let ok = !value.is_empty()
        && value.len() <= 200
        && value.split(separator).all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !ok {
        return Err(ApiError::validation(
            field,
            format!("give a {field} made of letters, digits, - and _, in parts separated by '{separator}'"),
        ));
    }
    Ok(value.to_owned())
}

fn new_id() -> ApiResult<String> {
    let b = consentry_store::random_bytes::<8>()?;
    Ok(format!("dst_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
}

/// Register a downstream system.
#[utoipa::path(post, path = "/v1/destinations", tag = "destinations", request_body = CreateDestination,
    responses((status = 201, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<CreateDestination>,
) -> ApiResult<(StatusCode, Json<DestinationOut>)> {
    caller.require(Scope::Destinations)?;
    check_name(&body.name)?;
    check_url(body.kind, &body.url)?;
    check_event_types(&body.event_types)?;
    let target = match body.kind {
        Kind::Webhook => {
            if body.subject.is_some() || body.topic.is_some() {
                return Err(ApiError::validation("subject", "a webhook takes neither subject nor topic"));
            }
            None
        }
        Kind::Nats => Some(check_target("subject", body.subject.as_deref(), '.')?),
        Kind::Mqtt => Some(check_target("topic", body.topic.as_deref(), '/')?),
    };
    let (secret, shown) = match (body.kind, body.secret.as_deref()) {
        (Kind::Webhook, Some(text)) => {
            let bytes = webhook::parse_secret(text)
                .ok_or_else(|| ApiError::validation("secret", "must be whsec_ followed by base64"))?;
            (Some(bytes), Some(text.to_owned()))
        }
        (Kind::Webhook, None) => {
            let (bytes, text) = webhook::new_secret().map_err(ApiError::internal)?;
            (Some(bytes), Some(text))
        }
        (_, Some(_)) => return Err(ApiError::validation("secret", "only webhooks are signed with a secret")),
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
    Ok((StatusCode::CREATED, Json(out)))
}

/// List destinations.
#[utoipa::path(get, path = "/v1/destinations", tag = "destinations",
    responses((status = 200, body = DestinationList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Arc<Caller>) -> ApiResult<Json<DestinationList>> {
    caller.require(Scope::Destinations)?;
    let destinations = state.store.destinations().await?.into_iter().map(DestinationOut::from).collect();
    Ok(Json(DestinationList { destinations }))
}

/// One destination.
#[utoipa::path(get, path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    responses((status = 200, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<DestinationOut>> {
    caller.require(Scope::Destinations)?;
    let d = state.store.destination(&id).await?.ok_or(ApiError::NotFound("destination"))?;
    Ok(Json(d.into()))
}

/// Pause or resume a destination, or change its name, URL or filter.
#[utoipa::path(patch, path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    request_body = UpdateDestination,
    responses((status = 200, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<UpdateDestination>,
) -> ApiResult<Json<DestinationOut>> {
    caller.require(Scope::Destinations)?;
    let current = state.store.destination(&id).await?.ok_or(ApiError::NotFound("destination"))?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(url) = &body.url {
        let kind = match current.kind.as_str() {
            "nats" => Kind::Nats,
            "mqtt" => Kind::Mqtt,
            _ => Kind::Webhook,
        };
        check_url(kind, url)?;
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
    if !state.store.update_destination(&id, patch).await? {
        return Err(ApiError::NotFound("destination"));
    }
    state.dispatch_wake.notify_one();
    let d = state.store.destination(&id).await?.ok_or(ApiError::NotFound("destination"))?;
    Ok(Json(d.into()))
}

/// Remove a destination and its deliveries.
#[utoipa::path(delete, path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Destinations)?;
    if !state.store.delete_destination(&id).await? {
        return Err(ApiError::NotFound("destination"));
    }
    tracing::info!(destination = %id, by = %caller.key_id, "destination deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<String>,
    /// Deliveries after this id (the `next` of the previous page).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
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

/// Every event sent (or to send) to a destination, with status, attempts, last error and next attempt.
#[utoipa::path(get, path = "/v1/destinations/{id}/deliveries", tag = "destinations",
    params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<Json<DeliveryList>> {
    caller.require(Scope::Destinations)?;
    state.store.destination(&id).await?.ok_or(ApiError::NotFound("destination"))?;
    let limit = crate::extract::page_limit(params.limit, 1000)?;
    if let Some(s) = params.status.as_deref()
        && !matches!(s, "pending" | "delivered" | "dead")
    {
        return Err(ApiError::InvalidQuery("status must be pending, delivered or dead".into()));
    }
    let rows =
        state.store.deliveries(&id, params.status.as_deref(), params.after.unwrap_or(0), limit).await?;
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
    Ok(Json(DeliveryList { deliveries, next }))
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

/// Send events again, from a delivery id or a time, in order.
#[utoipa::path(post, path = "/v1/destinations/{id}/replay", tag = "destinations", params(("id" = String, Path)),
    request_body = ReplayRequest,
    responses((status = 200, body = ReplayOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ReplayRequest>,
) -> ApiResult<Json<ReplayOut>> {
    caller.require(Scope::Destinations)?;
    let d = state.store.destination(&id).await?.ok_or(ApiError::NotFound("destination"))?;
    let from = match (body.from_id, body.since) {
        (Some(id), None) => ReplayFrom::OutboxId(id),
        (None, Some(t)) => ReplayFrom::Time(t),
        _ => return Err(ApiError::validation("from_id", "give exactly one of from_id and since")),
    };
    let patterns = d.event_types.clone();
    let queued = state.store.replay(&id, from, &move |t: &str| type_matches(&patterns, t)).await?;
    state.dispatch_wake.notify_one();
    tracing::info!(destination = %id, queued, by = %caller.key_id, "replay queued");
    Ok(Json(ReplayOut { queued }))
}
