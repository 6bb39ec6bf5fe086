//! `/v1/destinations`: the downstream systems that receive every change (webhooks, NATS JetStream, MQTT),
//! their deliveries, and replay.

use consentry_service::destinations::*;

use std::sync::Arc;

use axum::extract::{Path, State};

use axum::http::StatusCode;

use consentry_core::Timestamp;

use consentry_store::{DestinationPatch, DestinationRecord, NewDestination, ReplayFrom};

use serde::Deserialize;

use utoipa::IntoParams;

use crate::auth::{Caller, Scope};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::{Json, Query};

use consentry_service::sinks::webhook;

use crate::state::AppState;

use consentry_service::workers::dispatcher::type_matches;

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
    let d = state.store.destination(&id).await?.ok_or(ApiError(Error::NotFound("destination")))?;
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
    let current = state.store.destination(&id).await?.ok_or(ApiError(Error::NotFound("destination")))?;
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
        return Err(ApiError(Error::NotFound("destination")));
    }
    state.dispatch_wake.notify_one();
    let d = state.store.destination(&id).await?.ok_or(ApiError(Error::NotFound("destination")))?;
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
        return Err(ApiError(Error::NotFound("destination")));
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
    state.store.destination(&id).await?.ok_or(ApiError(Error::NotFound("destination")))?;
    let limit = crate::extract::page_limit(params.limit, 1000)?;
    if let Some(s) = params.status.as_deref()
        && !matches!(s, "pending" | "delivered" | "dead")
    {
        return Err(ApiError(Error::InvalidQuery("status must be pending, delivered or dead".into())));
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
    let d = state.store.destination(&id).await?.ok_or(ApiError(Error::NotFound("destination")))?;
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
