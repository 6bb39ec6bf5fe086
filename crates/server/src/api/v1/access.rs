//! `/v1/subjects/{subject}/access-log`: who read this subject's data, when, and for which stated purpose;
//! and how often their consent was checked, per purpose.

use axum::extract::State;
use axum::http::HeaderMap;
use consentry_service::access::{self, AccessLogOut, AccessPage, Reader};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query, SubjectPath, stated_purpose};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Entries older than this one (the `next` of the previous page).
    pub before: Option<i64>,
}

/// Who read this subject's data and why, newest first; and their consent checks counted per purpose.
#[utoipa::path(get, operation_id = "getAccessLog", path = "/v1/subjects/{subject}/access-log", tag = "consents",
    params(("subject" = String, Path), AccessParams),
    responses((status = 200, body = AccessLogOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<AccessParams>,
) -> ApiResult<Json<AccessLogOut>> {
    principal.require_subject(&subject, Scope::ConsentRead)?;
    let page = AccessPage { limit: params.limit, before: params.before };
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/access-log", stated_purpose(&headers));
    Ok(Json(access::list(&state, &subject, page, reader).await?))
}
