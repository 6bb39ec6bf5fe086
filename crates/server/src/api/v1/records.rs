//! The personal data vault: `/v1/records` and `/v1/subjects/{subject}/records`.
//!
//! A record is stored only when the decision engine allows its category for its purpose at that moment
//! (else 403 `consent_required`), encrypted with the subject's own data key (see
//! `consentry_store::vault`). Its deletion deadline comes from its category's retention; withdrawing,
//! denying or objecting to its purpose deletes it at once unless the purpose says `keep_until_retention`.
//! Every deletion is announced downstream as a `record.deleted` event, committed with it. Every read is in
//! the subject's access log, and so is a deletion made with the subject's own token.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use consentry_core::Timestamp;
use consentry_service::access::Reader;
use consentry_service::records::{self, Deleted, RecordIn, RecordList, RecordOut, RecordQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Query, SubjectPath, stated_purpose};
use crate::payload::record_payload;
use crate::state::AppState;

/// Store a personal data record, encrypted, if the subject's consent allows it now. A service key with
/// `records:write` names the subject; a device token stores for its own subject, within the categories and
/// purposes it declared.
#[utoipa::path(post, operation_id = "createRecord", path = "/v1/records", tag = "records",
    request_body = RecordIn,
    responses((status = 201, body = RecordOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`forbidden`, or `consent_required` when the subject's consent does not cover it"),
              (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`unknown_category` or `unknown_purpose` for a key the catalogue \
               lacks; `validation_failed` when a service key names no subject, for other than exactly one of `data` and \
               `json`, `data` without `content_type`, or data that is not base64")),
    security(("bearer" = ["records:write"]), ("device_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<RecordIn>,
) -> ApiResult<(StatusCode, Json<RecordOut>)> {
    let out = records::create(&state, &principal, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this data category and those under it.
    #[param(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub category: Option<String>,
    /// Only this purpose and those under it.
    #[param(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub purpose: Option<String>,
    /// Only records from this device.
    #[param(min_length = 1, max_length = 128)]
    pub device: Option<String>,
    /// Collected at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Collected before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(pattern = "^rec_[0-9a-fA-F]{32}$")]
    pub cursor: Option<String>,
}

/// The subject's records (metadata), newest first, paginated.
#[utoipa::path(get, operation_id = "listRecords", path = "/v1/subjects/{subject}/records", tag = "records",
    params(("subject" = String, Path), ListParams),
    responses((status = 200, body = RecordList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["records:read"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<RecordList>> {
    principal.require_subject(&subject, Scope::RecordsRead)?;
    let query = RecordQuery {
        category: params.category,
        purpose: params.purpose,
        device: params.device,
        from: params.from,
        until: params.until,
        limit: params.limit,
        cursor: params.cursor,
    };
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/records", stated_purpose(&headers));
    Ok(Json(records::list(&state, &subject, query, reader).await?))
}

/// One record's payload, with its media type as `Content-Type`.
#[utoipa::path(get, operation_id = "getRecord", path = "/v1/records/{id}", tag = "records", params(("id" = String, Path)),
    responses((status = 200, description = "The payload as stored, with its media type", content_type = "*/*"),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["records:read"]), ("subject_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let reader = Reader::new(&principal, "GET /v1/records/{id}", stated_purpose(&headers));
    let payload = records::get(&state, &principal, &id, reader).await?;
    record_payload(payload.data, &payload.content_type, None)
        .map_err(|_| ApiError::internal("a stored content type is not a header value"))
}

/// Delete one record; a `record.deleted` event goes downstream.
///
/// A deletion with the subject's own token is in their access log (caller `subject`).
#[utoipa::path(delete, operation_id = "deleteRecord", path = "/v1/records/{id}", tag = "records", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["records:write"]), ("subject_token" = [])))]
pub async fn delete_one(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let reader = Reader::action(&principal, "DELETE /v1/records/{id}", stated_purpose(&headers));
    records::delete(&state, &principal, &id, reader).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Only this data category and those under it; without it, every record of the subject.
    #[param(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub category: Option<String>,
}

/// Delete the subject's records of a category (and those under it), or all of them.
///
/// A deletion with the subject's own token is in their access log (caller `subject`).
#[utoipa::path(delete, operation_id = "deleteRecords", path = "/v1/subjects/{subject}/records", tag = "records",
    params(("subject" = String, Path), DeleteParams),
    responses((status = 200, body = Deleted), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["records:write"]), ("subject_token" = [])))]
pub async fn delete_many(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<DeleteParams>,
) -> ApiResult<Json<Deleted>> {
    principal.require_subject(&subject, Scope::RecordsWrite)?;
    let reader =
        Reader::action(&principal, "DELETE /v1/subjects/{subject}/records", stated_purpose(&headers));
    Ok(Json(records::delete_subject(&state, subject, params.category, reader).await?))
}
