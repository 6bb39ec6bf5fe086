//! `/v1/destinations`: the downstream systems that receive every change (webhooks, NATS JetStream, MQTT),
//! their deliveries, and replay. The rules are in [`consentry_service::destinations`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use consentry_service::destinations::{
    self, CreateDestination, DeliveryList, DestinationList, DestinationOut, ReplayOut, ReplayRequest,
    UpdateDestination,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;

/// Register a downstream system.
#[utoipa::path(post, operation_id = "createDestination", path = "/v1/destinations", tag = "destinations", request_body = CreateDestination,
    responses((status = 201, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` for a URL whose scheme does not fit the \
               kind or whose address is not publicly routable, a NATS destination without `subject`, an MQTT one without \
               `topic`, or a malformed secret")),
    security(("bearer" = ["destinations"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<CreateDestination>,
) -> ApiResult<(StatusCode, Json<DestinationOut>)> {
    caller.require(Scope::Destinations)?;
    let out = destinations::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// List destinations.
#[utoipa::path(get, operation_id = "listDestinations", path = "/v1/destinations", tag = "destinations",
    responses((status = 200, body = DestinationList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["destinations"])))]
pub async fn list(State(state): State<AppState>, caller: Arc<Caller>) -> ApiResult<Json<DestinationList>> {
    caller.require(Scope::Destinations)?;
    Ok(Json(destinations::list(&state).await?))
}

/// One destination.
#[utoipa::path(get, operation_id = "getDestination", path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    responses((status = 200, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["destinations"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<DestinationOut>> {
    caller.require(Scope::Destinations)?;
    Ok(Json(destinations::get(&state, &id).await?))
}

/// Pause or resume a destination, or change its name, URL or filter.
#[utoipa::path(patch, operation_id = "updateDestination", path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    request_body = UpdateDestination,
    responses((status = 200, body = DestinationOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` for a URL whose scheme does not fit the \
               destination's kind or whose address is not publicly routable")),
    security(("bearer" = ["destinations"])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<UpdateDestination>,
) -> ApiResult<Json<DestinationOut>> {
    caller.require(Scope::Destinations)?;
    Ok(Json(destinations::update(&state, &id, body).await?))
}

/// Remove a destination and its deliveries.
#[utoipa::path(delete, operation_id = "deleteDestination", path = "/v1/destinations/{id}", tag = "destinations", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["destinations"])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Destinations)?;
    destinations::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `dead`.
    #[param(pattern = "^(pending|delivered|dead)$")]
    pub status: Option<String>,
    /// Deliveries after this id (the `next` of the previous page).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Every event sent (or to send) to a destination, with status, attempts, last error and next attempt.
#[utoipa::path(get, operation_id = "listDeliveries", path = "/v1/destinations/{id}/deliveries", tag = "destinations",
    params(("id" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["destinations"])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<Json<DeliveryList>> {
    caller.require(Scope::Destinations)?;
    let page =
        destinations::deliveries(&state, &id, params.status.as_deref(), params.after, params.limit).await?;
    Ok(Json(page))
}

/// Send events again, from a delivery id or a time, in order. A destination reaches only what was written
/// since its creation and within `outbox_retention_secs`.
#[utoipa::path(post, operation_id = "replayDeliveries", path = "/v1/destinations/{id}/replay", tag = "destinations", params(("id" = String, Path)),
    request_body = ReplayRequest,
    responses((status = 200, body = ReplayOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` unless exactly one of `from_id` and `since` is given; `replay_out_of_reach` for a start before the destination was created or older than the outbox keeps (`outbox_retention_secs`)")),
    security(("bearer" = ["destinations"])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ReplayRequest>,
) -> ApiResult<Json<ReplayOut>> {
    caller.require(Scope::Destinations)?;
    Ok(Json(destinations::replay(&state, &caller, &id, body).await?))
}
