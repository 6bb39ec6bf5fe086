//! `/v1/requests`: data subject requests (GDPR Art. 15–21) as tracked objects with a deadline, fanned out
//! to every destination subscribed to `request.*`, each of which confirms its part.
//!
//! Consentry does its own part when the request is accepted: access and portability make the export
//! available (for [`EXPORT_DAYS`] days, generated on each download, never stored); erasure deletes the
//! subject's vault and devices and destroys their keys, keeping a tombstone ([`consentry_service::erasure`]);
//! restriction and objection record `restrict` / `object` ledger events through the consent path;
//! rectification replaces the vault record it names, or records what was asked. The request completes
//! once that is done and every task is confirmed. The plain functions here ([`submit`], [`view`],
//! [`subject_requests`], [`export_archive`]) serve the preference centre too.

use consentry_service::requests::*;

use std::sync::Arc;

use axum::extract::{Path, State};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use axum::response::{IntoResponse, Response};

use consentry_core::{SubjectId, Timestamp};

use consentry_store::requests::{
    REQUEST_COMPLETED, REQUEST_IN_PROGRESS, REQUEST_RECEIVED, REQUEST_REJECTED, RequestChange, RequestFilter,
};

use serde::Deserialize;

use serde_json::Value;

use utoipa::IntoParams;

use crate::auth::{Caller, Principal, Scope};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::{Json, JsonBody, Query};

use crate::state::AppState;

/// Create a data subject request; Consentry does its own part at once and tells downstream systems.
#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = CreateRequest,
    responses((status = 201, body = RequestOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 410, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateRequest>,
) -> ApiResult<(StatusCode, Json<RequestOut>)> {
    if let Some(caller) = principal.service() {
        caller.require(Scope::Dsr)?;
    }
    let Some(subject) = body.subject else {
        return Err(ApiError::validation("subject", "name the subject the request is about"));
    };
    let subject = SubjectId::new(subject)
        .map_err(|e| ApiError::validation("subject", format!("the subject id {e}")))?;
    let kind =
        body.kind.as_deref().ok_or_else(|| ApiError::validation("type", "name the type of request"))?;
    let kind = RequestType::parse(kind).ok_or_else(|| {
        ApiError::validation(
            "type",
            "must be access, portability, erasure, rectification, restriction or objection",
        )
    })?;
    principal.require_subject(&subject, Scope::Dsr)?;
    let out = submit(&state, &subject, kind, body.details, &principal.actor()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `received`, `in_progress`, `completed` or `rejected`.
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only open requests past their deadline.
    pub overdue: Option<bool>,
    /// Only this subject's requests.
    pub subject: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// The requests, oldest first, for the privacy team.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListParams),
    responses((status = 200, body = RequestList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<RequestList>> {
    let own = match &principal {
        Principal::Service(caller) => {
            caller.require(Scope::Dsr)?;
            None
        }
        // A subject sees only their own requests.
        Principal::Subject(s) => Some(s.subject.clone()),
        Principal::Device(_) => {
            return Err(ApiError(Error::WrongPrincipal("device tokens may not use this route")));
        }
    };
    let limit = crate::extract::page_limit(params.limit, 500)?;
    if let Some(s) = &params.status
        && ![REQUEST_RECEIVED, REQUEST_IN_PROGRESS, REQUEST_COMPLETED, REQUEST_REJECTED].contains(&s.as_str())
    {
        return Err(ApiError(Error::InvalidQuery(
            "status must be received, in_progress, completed or rejected".into(),
        )));
    }
    if let Some(t) = &params.kind
        && RequestType::parse(t).is_none()
    {
        return Err(ApiError(Error::InvalidQuery(
            "type must be access, portability, erasure, rectification, restriction or objection".into(),
        )));
    }
    let subject = match params.subject {
        None => None,
        Some(s) => Some(
            SubjectId::new(s).map_err(|e| ApiError(Error::InvalidQuery(format!("the subject id {e}"))))?,
        ),
    };
    let subject = match (own, subject) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError(Error::WrongPrincipal("this token is for another subject")));
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let now = Timestamp::now();
    let filter = RequestFilter {
        subject,
        status: params.status,
        kind: params.kind,
        overdue_at: params.overdue.unwrap_or(false).then_some(now),
        after: params.after,
        limit,
    };
    let found = state.store.requests(&filter).await?;
    let next = (found.len() == limit as usize).then(|| found.last().map(|r| r.id.clone())).flatten();
    Ok(Json(RequestList { requests: found.into_iter().map(|r| record_out(r, now)).collect(), next }))
}

/// One request with its tasks and history.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestOut>> {
    let request = load_for(&state, &principal, &id).await?;
    Ok(Json(view(request, Timestamp::now())))
}

/// Extend the deadline by up to two further months (in total), with the reason (Art. 12(3)).
#[utoipa::path(post, path = "/v1/requests/{id}/extend", tag = "requests", params(("id" = String, Path)),
    request_body = ExtendRequest,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn extend(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<ExtendRequest>,
) -> ApiResult<Json<RequestOut>> {
    caller.require(Scope::Dsr)?;
    let reason = text_field(Some(&Value::String(body.reason)), "reason", true)?.unwrap_or_default();
    if !(1..=MAX_EXTENSION_MONTHS).contains(&body.months) {
        return Err(ApiError::validation("months", format!("must be 1 to {MAX_EXTENSION_MONTHS}")));
    }
    let current = load(&state, &id).await?.record;
    let due_at = add_months(current.due_at, body.months);
    if due_at > add_months(current.received_at, 1 + MAX_EXTENSION_MONTHS) {
        return Err(ApiError::validation(
            "months",
            format!("a deadline may move by at most {MAX_EXTENSION_MONTHS} further months in total"),
        ));
    }
    let change = RequestChange::Extend { due_at, reason };
    let out = changed(state.store.change_request(&id, change, Timestamp::now(), &caller.actor()).await?)?;
    Ok(Json(view(out, Timestamp::now())))
}

/// Reject a request, with the reason.
#[utoipa::path(post, path = "/v1/requests/{id}/reject", tag = "requests", params(("id" = String, Path)),
    request_body = RejectRequest,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
    Json(body): Json<RejectRequest>,
) -> ApiResult<Json<RequestOut>> {
    caller.require(Scope::Dsr)?;
    let reason = text_field(Some(&Value::String(body.reason)), "reason", true)?.unwrap_or_default();
    let change = RequestChange::Reject { reason };
    let out = changed(state.store.change_request(&id, change, Timestamp::now(), &caller.actor()).await?)?;
    Ok(Json(view(out, Timestamp::now())))
}

/// A downstream system confirms its part of a request.
#[utoipa::path(post, path = "/v1/requests/{id}/tasks/{destination_id}/complete", tag = "requests",
    params(("id" = String, Path), ("destination_id" = String, Path)), request_body = CompleteTask,
    responses((status = 200, body = RequestOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
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
    let note = body.note;
    let note = text_field(note.map(Value::String).as_ref(), "note", false)?;
    let change = RequestChange::CompleteTask { destination_id, note };
    let out = changed(state.store.change_request(&id, change, Timestamp::now(), &caller.actor()).await?)?;
    Ok(Json(view(out, Timestamp::now())))
}

/// Download the export of an access or portability request: a ZIP with `data.json`, the record payloads
/// and a plain-words `index.html`. Available for 7 days after it is ready, then 410.
#[utoipa::path(get, path = "/v1/requests/{id}/export", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, description = "application/zip", content_type = "application/zip"),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 410, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let request = load_for(&state, &principal, &id).await?;
    let archive = export_archive(&state, &request, Timestamp::now()).await?;
    if let (Some(subject), Some(caller)) = (&request.record.subject, principal.service()) {
        state.access.read(
            subject,
            &caller.key_name,
            "GET /v1/requests/{id}/export",
            crate::extract::stated_purpose(&headers),
        );
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
