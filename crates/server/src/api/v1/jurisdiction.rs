//! `/v1/subjects/{subject}/jurisdiction`: the place whose rules decide the subject's checks.

use axum::extract::State;
use axum::http::HeaderMap;
use consentry_service::access::Reader;
use consentry_service::jurisdiction::{self, SetJurisdiction, SubjectJurisdiction};

use crate::auth::{Principal, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, SubjectPath, stated_purpose};
use crate::state::AppState;

/// Set the subject's jurisdiction: a `locate` event in the ledger (none when the subject is already
/// there). Checks that name no jurisdiction decide by it.
#[utoipa::path(put, operation_id = "setJurisdiction", path = "/v1/subjects/{subject}/jurisdiction", tag = "consents",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = SetJurisdiction,
    responses((status = 200, body = SubjectJurisdiction), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`unknown_jurisdiction` for a place the catalogue lacks")),
    security(("bearer" = ["consent:write"]), ("subject_token" = [])))]
pub async fn set(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<SetJurisdiction>,
) -> ApiResult<Json<SubjectJurisdiction>> {
    principal.require_subject(&subject, Scope::ConsentWrite)?;
    let reader =
        Reader::action(&principal, "PUT /v1/subjects/{subject}/jurisdiction", stated_purpose(&headers));
    Ok(Json(jurisdiction::set(&state, &principal, &subject, body, reader).await?))
}

/// The subject's jurisdiction.
#[utoipa::path(get, operation_id = "getJurisdiction", path = "/v1/subjects/{subject}/jurisdiction", tag = "consents",
    params(("subject" = String, Path)),
    responses((status = 200, body = SubjectJurisdiction), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<SubjectJurisdiction>> {
    principal.require_subject(&subject, Scope::ConsentRead)?;
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/jurisdiction", stated_purpose(&headers));
    Ok(Json(jurisdiction::get(&state, &subject, reader)))
}
