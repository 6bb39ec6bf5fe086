//! `/v1/requests`: data subject requests (GDPR Art. 15–21) as tracked objects with a deadline, fanned out
//! to every destination subscribed to `request.*`, each of which confirms its part. The rules, and
//! Consentry's own part of each request, are in [`consentry_service::requests`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_core::Timestamp;
use consentry_service::access::Reader;
use consentry_service::export::Language;
use consentry_service::requests::{
    self, CompleteTask, CreateRequest, ExtendRequest, RejectRequest, RequestList, RequestOut, RequestQuery,
    export_archive, load_for,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, JsonBody, Query, stated_purpose};
use crate::state::AppState;

/// Create a data subject request; Consentry does its own part at once and tells downstream systems.
///
/// One filed with the subject's own token is in their access log (caller `subject`), but for an erasure.
#[utoipa::path(post, operation_id = "createRequest", path = "/v1/requests", tag = "requests", request_body = CreateRequest,
    responses((status = 201, body = RequestOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 410, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` when a service key names no subject, for a \
               missing or unknown type, or details that do not fit the type; `unknown_purpose` for a restriction or \
               objection naming a purpose the catalogue lacks")),
    security(("bearer" = ["dsr"]), ("subject_token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Json(body): Json<CreateRequest>,
) -> ApiResult<(StatusCode, Json<RequestOut>)> {
    // Who may file it depends on whose request it is: the service decides, with the body.
    let reader = Reader::action(&principal, "POST /v1/requests", stated_purpose(&headers));
    let out = requests::create(&state, &principal, body, reader).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `received`, `in_progress`, `completed` or `rejected`.
    #[param(pattern = "^(received|in_progress|completed|rejected)$")]
    pub status: Option<String>,
    /// `access`, `portability`, `erasure`, `rectification`, `restriction` or `objection`.
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = "^(access|portability|erasure|rectification|restriction|objection)$")]
    pub kind: Option<String>,
    /// Only open requests past their deadline.
    pub overdue: Option<bool>,
    /// Only this subject's requests.
    #[param(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub subject: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The requests, oldest first, for the privacy team.
///
/// With a subject token, the person's own; that read is in their access log (caller `subject`).
#[utoipa::path(get, operation_id = "listRequests", path = "/v1/requests", tag = "requests", params(ListParams),
    responses((status = 200, body = RequestList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["dsr"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<RequestList>> {
    let query = RequestQuery {
        status: params.status,
        kind: params.kind,
        overdue: params.overdue.unwrap_or(false),
        subject: params.subject,
        after: params.after,
        limit: params.limit,
    };
    let reader = Reader::action(&principal, "GET /v1/requests", stated_purpose(&headers));
    Ok(Json(requests::list(&state, &principal, query, reader).await?))
}

/// One request with its tasks and history.
///
/// Read with the subject's own token, it is in their access log (caller `subject`).
#[utoipa::path(get, operation_id = "getRequest", path = "/v1/requests/{id}", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["dsr"]), ("subject_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestOut>> {
    let reader = Reader::action(&principal, "GET /v1/requests/{id}", stated_purpose(&headers));
    Ok(Json(requests::get(&state, &principal, &id, reader).await?))
}

/// Extend the deadline by up to two further months (in total), with the reason (Art. 12(3)).
#[utoipa::path(post, operation_id = "extendRequest", path = "/v1/requests/{id}/extend", tag = "requests", params(("id" = String, Path)),
    request_body = ExtendRequest,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["dsr"])))]
pub async fn extend(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ExtendRequest>,
) -> ApiResult<Json<RequestOut>> {
    caller.require(Scope::Dsr)?;
    Ok(Json(requests::extend(&state, &id, body, &caller.actor()).await?))
}

/// Reject a request, with the reason.
#[utoipa::path(post, operation_id = "rejectRequest", path = "/v1/requests/{id}/reject", tag = "requests", params(("id" = String, Path)),
    request_body = RejectRequest,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["dsr"])))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<RejectRequest>,
) -> ApiResult<Json<RequestOut>> {
    caller.require(Scope::Dsr)?;
    Ok(Json(requests::reject(&state, &id, body, &caller.actor()).await?))
}

/// A downstream system confirms its part of a request.
#[utoipa::path(post, operation_id = "completeRequestTask", path = "/v1/requests/{id}/tasks/{destination_id}/complete", tag = "requests",
    params(("id" = String, Path), ("destination_id" = String, Path)), request_body = CompleteTask,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["dsr"])))]
pub async fn complete_task(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path((id, destination_id)): Path<(String, String)>,
    request: axum::extract::Request,
) -> ApiResult<Json<RequestOut>> {
    caller.require(Scope::Dsr)?;
    // The body is optional: no body, no note.
    let limit = state.config.max_body_bytes;
    let bytes = crate::extract::body_bytes(request, &state, limit).await?;
    let body: CompleteTask =
        if bytes.is_empty() { CompleteTask::default() } else { JsonBody(bytes).parse()? };
    Ok(Json(requests::complete_task(&state, &id, destination_id, body, &caller.actor()).await?))
}

/// Download the export of an access or portability request: a ZIP with `data.json`, the record payloads
/// and a plain-words `index.html`. Available for 7 days after it is ready, then 410.
///
/// The download is in the subject's access log, under the key's name or `subject`.
#[utoipa::path(get, operation_id = "downloadRequestExport", path = "/v1/requests/{id}/export", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, description = "application/zip", content_type = "application/zip"),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 410, body = Problem)),
    security(("bearer" = ["dsr"]), ("subject_token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let request = load_for(&state, &principal, &id).await?;
    // The archive's guide in the caller's language (`Accept-Language`), else English.
    let lang = Language::best(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let archive = export_archive(&state, &request, Timestamp::now(), lang).await?;
    if let Some(subject) = &request.record.subject {
        let reader = Reader::new(&principal, "GET /v1/requests/{id}/export", stated_purpose(&headers));
        reader.log(&state.access, subject);
    }
    let disposition = format!("attachment; filename=\"consentry-export-{id}.zip\"");
    // Sent as it is written: an export is never held whole in memory.
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(archive)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
