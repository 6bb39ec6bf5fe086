//! The personal data vault: `/v1/records` and `/v1/subjects/{subject}/records`.
//!
//! A record is stored only when the decision engine allows its category for its purpose at that moment
//! (else 403 `consent_required`), encrypted with the subject's own data key (see
//! `consentry_store::vault`). Its deletion deadline comes from its category's retention; withdrawing,
//! denying or objecting to its purpose deletes it at once unless the purpose says `keep_until_retention`.
//! Every deletion is announced downstream as a `record.deleted` event, committed with it. Every read is in
//! the subject's access log.

use consentry_service::records::*;

use axum::body::Body;

use axum::extract::{Path, State};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use axum::response::{IntoResponse, Response};

use consentry_core::{SubjectId, Timestamp};

use consentry_store::vault::{RecordFilter, RecordSelection};

use serde::Deserialize;

use utoipa::IntoParams;

use consentry_service::consents::log_read;

use crate::auth::{Principal, Scope};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::{Json, Query, SubjectPath};

use crate::state::AppState;

/// Store a personal data record, encrypted, if the subject's consent allows it now. A service key with
/// `records:write` names the subject; a device token stores for its own subject, within the categories and
/// purposes it declared.
#[utoipa::path(post, path = "/v1/records", tag = "records",
    request_body = RecordIn,
    responses((status = 201, body = RecordOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`forbidden`, or `consent_required` when the subject's consent does not cover it"),
              (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(mut body): Json<RecordIn>,
) -> ApiResult<(StatusCode, Json<RecordOut>)> {
    let named = body
        .subject
        .take()
        .map(|s| {
            SubjectId::new(s).map_err(|e| ApiError(Error::InvalidSubject(format!("the subject id {e}"))))
        })
        .transpose()?;
    let (subject, device) = match &principal {
        Principal::Service(caller) => {
            caller.require(Scope::RecordsWrite)?;
            let subject = named
                .ok_or_else(|| ApiError::validation("subject", "name the subject the record is about"))?;
            (subject, None)
        }
        // A device stores only for its own subject, and only what it declared.
        Principal::Device(device) => {
            if let Some(named) = &named {
                device.require_subject(named.as_str())?;
            }
            device.require(&body.category, &body.purpose)?;
            (device.subject.clone(), Some(device.device_id.clone()))
        }
        Principal::Subject(_) => {
            return Err(ApiError(Error::WrongPrincipal("records are stored by services and devices")));
        }
    };
    let out = store_record(&state, subject, device, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this data category and those under it.
    pub category: Option<String>,
    /// Only this purpose and those under it.
    pub purpose: Option<String>,
    /// Only records from this device.
    pub device: Option<String>,
    /// Collected at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Collected before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The subject's records (metadata), newest first, paginated.
#[utoipa::path(get, path = "/v1/subjects/{subject}/records", tag = "records",
    params(("subject" = String, Path), ListParams),
    responses((status = 200, body = RecordList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<RecordList>> {
    principal.require_subject(&subject, Scope::RecordsRead)?;
    let limit = crate::extract::page_limit(params.limit, 1000)?;
    if params.cursor.as_deref().is_some_and(|c| !valid_record_id(c)) {
        return Err(ApiError(Error::InvalidQuery("cursor must be the next of an earlier page".into())));
    }
    if params.device.as_deref().is_some_and(|d| d.is_empty() || d.len() > 128) {
        return Err(ApiError(Error::InvalidQuery("device must be a device id".into())));
    }
    let filter = RecordFilter {
        category: key_param("category", params.category)?,
        purpose: key_param("purpose", params.purpose)?,
        device_id: params.device,
        from: params.from,
        until: params.until,
        before: params.cursor,
        limit,
    };
    log_read(
        &state,
        &principal,
        &subject,
        "GET /v1/subjects/{subject}/records",
        crate::extract::stated_purpose(&headers),
    );
    let records = state.store.records(&subject, &filter).await?;
    let next = (records.len() == limit as usize).then(|| records.last().map(|m| m.id.clone())).flatten();
    let records = records.into_iter().map(|m| RecordOut::new(&subject, m)).collect();
    Ok(Json(RecordList { records, next }))
}

/// One record's payload, with its media type as `Content-Type`.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", params(("id" = String, Path)),
    responses((status = 200, description = "The payload as stored, with its media type", content_type = "*/*"),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize_record(&state, &principal, &id, Scope::RecordsRead).await?;
    let record = state.store.record(&state.kek, &id).await?.ok_or(ApiError(Error::NotFound("record")))?;
    log_read(
        &state,
        &principal,
        &record.subject,
        "GET /v1/records/{id}",
        crate::extract::stated_purpose(&headers),
    );
    let content_type = HeaderValue::from_str(&record.meta.content_type)
        .map_err(|_| ApiError::internal("a stored content type is not a header value"))?;
    let mut response = Response::new(Body::from(record.data));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Personal data shown in a browser must not run as a page of this origin.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response.into_response())
}

/// Delete one record; a `record.deleted` event goes downstream.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let subject = authorize_record(&state, &principal, &id, Scope::RecordsWrite).await?;
    if delete_at_request(&state, RecordSelection::Ids { subject, ids: vec![id] }).await? == 0 {
        return Err(ApiError(Error::NotFound("record")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Only this data category and those under it; without it, every record of the subject.
    pub category: Option<String>,
}

/// Delete the subject's records of a category (and those under it), or all of them.
#[utoipa::path(delete, path = "/v1/subjects/{subject}/records", tag = "records",
    params(("subject" = String, Path), DeleteParams),
    responses((status = 200, body = Deleted), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_many(
    State(state): State<AppState>,
    principal: Principal,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<DeleteParams>,
) -> ApiResult<Json<Deleted>> {
    principal.require_subject(&subject, Scope::RecordsWrite)?;
    let category = key_param("category", params.category)?;
    let deleted = delete_at_request(&state, RecordSelection::Subject { subject, category }).await?;
    Ok(Json(Deleted { deleted }))
}
