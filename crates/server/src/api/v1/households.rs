//! Households (`/v1/households`): creating them, their members, and pairing devices with a household
//! rather than one person. The rules are in [`consentry_service::households`].

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::devices::{self, PairDevice, PairedDevice};
use consentry_service::households::{
    self, AddMember, CreateHousehold, HouseholdList, HouseholdOut, MemberOut, UpdateHousehold,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, Query, stated_purpose};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct HouseholdPath {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct MemberPath {
    pub id: String,
    pub subject: String,
}

#[derive(Debug, Deserialize)]
pub struct DevicePath {
    pub id: String,
    pub device: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

fn household_path(path: Result<Path<HouseholdPath>, PathRejection>) -> ApiResult<String> {
    path.map(|Path(p)| p.id).map_err(|_| ApiError(Error::NotFound("household")))
}

/// Create a household (a service key with `devices:write`). Its name is an operator's label, stored
/// encrypted.
#[utoipa::path(post, operation_id = "createHousehold", path = "/v1/households", tag = "households",
    request_body = CreateHousehold,
    responses((status = 201, body = HouseholdOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["devices:write"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<CreateHousehold>,
) -> ApiResult<(StatusCode, Json<HouseholdOut>)> {
    caller.require(Scope::DevicesWrite)?;
    let created = households::create(&state, body, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The households, by id, a page at a time (a service key with `consent:read`); reading them is in each
/// member's access log.
#[utoipa::path(get, operation_id = "listHouseholds", path = "/v1/households", tag = "households",
    params(ListParams),
    responses((status = 200, body = HouseholdList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<HouseholdList>> {
    caller.require(Scope::ConsentRead)?;
    let reader = Reader::service(&caller, "GET /v1/households", stated_purpose(&headers));
    Ok(Json(households::list(&state, params.after.as_deref(), params.limit, reader).await?))
}

/// One household with its members and devices (a service key with `consent:read`); the read is in each
/// member's access log.
#[utoipa::path(get, operation_id = "getHousehold", path = "/v1/households/{id}", tag = "households",
    params(("id" = String, Path)),
    responses((status = 200, body = HouseholdOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["consent:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    path: Result<Path<HouseholdPath>, PathRejection>,
) -> ApiResult<Json<HouseholdOut>> {
    caller.require(Scope::ConsentRead)?;
    let id = household_path(path)?;
    let reader = Reader::service(&caller, "GET /v1/households/{id}", stated_purpose(&headers));
    Ok(Json(households::get(&state, &id, reader).await?))
}

/// Rename a household (a service key with `devices:write`): its only setting is its name. A field left
/// out stays as it is. The answer is empty: who the members are is for `consent:read` (`GET`) to see.
#[utoipa::path(patch, operation_id = "updateHousehold", path = "/v1/households/{id}", tag = "households",
    params(("id" = String, Path)),
    request_body = UpdateHousehold,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` naming `name`")),
    security(("bearer" = ["devices:write"])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    path: Result<Path<HouseholdPath>, PathRejection>,
    Json(body): Json<UpdateHousehold>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::DevicesWrite)?;
    let id = household_path(path)?;
    households::update(&state, &id, body, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a household (a service key with `devices:write`) with its memberships and paired devices: the
/// devices' tokens stop working at once. The members' own records stay as they are.
#[utoipa::path(delete, operation_id = "deleteHousehold", path = "/v1/households/{id}", tag = "households",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["devices:write"])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    path: Result<Path<HouseholdPath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::DevicesWrite)?;
    let id = household_path(path)?;
    let reader = Reader::service(&caller, "DELETE /v1/households/{id}", stated_purpose(&headers));
    households::delete(&state, &id, &caller.actor(), reader).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member (a service key with `devices:write`): 201 with their handle, 200 when they already were
/// one. The household's devices get a snapshot with the member's consents at once.
#[utoipa::path(post, operation_id = "addHouseholdMember", path = "/v1/households/{id}/members", tag = "households",
    params(("id" = String, Path)),
    request_body = AddMember,
    responses((status = 201, body = MemberOut), (status = 200, body = MemberOut, description = "Already a member"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 410, body = Problem, description = "`subject_erased`"),
              (status = 422, body = Problem)),
    security(("bearer" = ["devices:write"])))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    path: Result<Path<HouseholdPath>, PathRejection>,
    Json(body): Json<AddMember>,
) -> ApiResult<(StatusCode, Json<MemberOut>)> {
    caller.require(Scope::DevicesWrite)?;
    let id = household_path(path)?;
    let reader = Reader::service(&caller, "POST /v1/households/{id}/members", stated_purpose(&headers));
    let (member, joined) = households::add_member(&state, &id, body, &caller.actor(), reader).await?;
    Ok((if joined { StatusCode::CREATED } else { StatusCode::OK }, Json(member)))
}

/// Take a member out (a service key with `devices:write`): their consents leave the household's devices'
/// snapshots at once (pushed over SSE and MQTT).
#[utoipa::path(delete, operation_id = "removeHouseholdMember", path = "/v1/households/{id}/members/{subject}",
    tag = "households",
    params(("id" = String, Path), ("subject" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["devices:write"])))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    path: Result<Path<MemberPath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::DevicesWrite)?;
    let Path(MemberPath { id, subject }) = path.map_err(|_| ApiError(Error::NotFound("member")))?;
    let subject = consentry_core::SubjectId::new(subject)
        .map_err(|e| ApiError(Error::InvalidSubject(format!("the subject id {e}"))))?;
    let reader =
        Reader::service(&caller, "DELETE /v1/households/{id}/members/{subject}", stated_purpose(&headers));
    households::remove_member(&state, &id, &subject, &caller.actor(), reader).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pair a device with the household (a service key with `devices:write`, `check` and `records:write`, as
/// pairing with a subject): the same body and answer. Its token reads the household's snapshot only.
#[utoipa::path(post, operation_id = "pairHouseholdDevice", path = "/v1/households/{id}/devices", tag = "households",
    params(("id" = String, Path)),
    request_body = PairDevice,
    responses((status = 201, body = PairedDevice), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem, description = "`unknown_category` or `unknown_purpose` for a key the catalogue lacks")),
    security(("bearer" = ["devices:write", "check", "records:write"])))]
pub async fn pair(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    path: Result<Path<HouseholdPath>, PathRejection>,
    Json(body): Json<PairDevice>,
) -> ApiResult<(StatusCode, Json<PairedDevice>)> {
    devices::PAIRING_SCOPES.into_iter().try_for_each(|scope| caller.require(scope))?;
    let id = household_path(path)?;
    let paired = households::pair(&state, &id, body, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(paired)))
}

/// Unpair a household's device (a service key with `devices:write`): its token stops working at once.
#[utoipa::path(delete, operation_id = "unpairHouseholdDevice", path = "/v1/households/{id}/devices/{device}",
    tag = "households",
    params(("id" = String, Path), ("device" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["devices:write"])))]
pub async fn unpair(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    path: Result<Path<DevicePath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::DevicesWrite)?;
    let Path(DevicePath { id, device }) = path.map_err(|_| ApiError(Error::NotFound("device")))?;
    households::unpair(&state, &id, &device, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
