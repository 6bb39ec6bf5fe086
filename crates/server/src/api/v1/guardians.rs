//! Children and guardians: `/v1/subjects/{subject}/age` and `/v1/subjects/{subject}/guardians`. The rules
//! (age bands, who is a known child, cycles) are in [`consentry_service::guardians`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::guardians::age::{self, AgeIn, AgeOut};
use consentry_service::guardians::writes::require_reader;
use consentry_service::guardians::{self, GuardianIn, GuardianList, GuardianOut};
use serde::Deserialize;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, SubjectPath, stated_purpose};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct GuardianPath {
    pub guardian: String,
}

/// Record what is known of the subject's age: a birth date or an age band (`0-12`, `13-15`, `16-17`,
/// `18+`), stored encrypted. With their place's age of digital consent (16 where none is set) it makes
/// them a known child, whose consent purposes need a guardian's grant. Only a service key states it.
#[utoipa::path(put, operation_id = "setAge", path = "/v1/subjects/{subject}/age", tag = "guardians",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = AgeIn,
    responses((status = 200, body = AgeOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` naming `birth_date` (not a date, in the future, before 1900, or neither field given) or `age_band` (unknown band, or both fields given)")),
    security(("bearer" = ["consent:write"])))]
pub async fn set_age(
    State(state): State<AppState>,
    principal: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<AgeIn>,
) -> ApiResult<Json<AgeOut>> {
    principal.service().ok_or(Error::WrongPrincipal("only a service key states a subject's age"))?;
    principal.require_subject(&subject, Scope::ConsentWrite)?;
    Ok(Json(age::set(&state, &subject, body).await?))
}

/// What is known of the subject's age, and whether they are a known child now (a key with
/// `consent:read`, the subject's own token, or a guardian's). The read is in the subject's access log.
#[utoipa::path(get, operation_id = "getAge", path = "/v1/subjects/{subject}/age", tag = "guardians",
    params(("subject" = String, Path)),
    responses((status = 200, body = AgeOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem, description = "No age is known")),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn get_age(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<AgeOut>> {
    let guardian = require_reader(&state, &principal, &subject, Scope::ConsentRead).await?;
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/age", stated_purpose(&headers))
        .by_guardian(guardian.as_deref());
    Ok(Json(age::get(&state, &subject, reader).await?))
}

/// Record a guardian of the subject (a child): another known subject, with the evidence the brand holds
/// (only its SHA-256 is kept). 201 when recorded, 200 when it was before. Only a service key records one.
#[utoipa::path(post, operation_id = "addGuardian", path = "/v1/subjects/{subject}/guardians", tag = "guardians",
    params(("subject" = String, Path, description = "The child's subject id")),
    request_body = GuardianIn,
    responses((status = 201, body = GuardianOut), (status = 200, body = GuardianOut, description = "Recorded before"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem, description = "Nothing is known of the child or of the guardian"),
              (status = 410, body = Problem, description = "The child or the guardian was erased"),
              (status = 422, body = Problem, description = "`validation_failed` naming `guardian` (the child themselves, a known child, or one who would close a cycle of guardians) or `evidence` (not an object, or over 4 KiB)")),
    security(("bearer" = ["consent:write"])))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<GuardianIn>,
) -> ApiResult<(StatusCode, Json<GuardianOut>)> {
    principal.service().ok_or(Error::WrongPrincipal("only a service key records a guardian"))?;
    principal.require_subject(&subject, Scope::ConsentWrite)?;
    let (out, added) = guardians::add(&state, &subject, body).await?;
    Ok((if added { StatusCode::CREATED } else { StatusCode::OK }, Json(out)))
}

/// The subject's guardians, oldest first (a key with `consent:read`, the subject's own token, or a
/// guardian's). The read is in the subject's access log.
#[utoipa::path(get, operation_id = "listGuardians", path = "/v1/subjects/{subject}/guardians", tag = "guardians",
    params(("subject" = String, Path)),
    responses((status = 200, body = GuardianList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<GuardianList>> {
    let guardian = require_reader(&state, &principal, &subject, Scope::ConsentRead).await?;
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/guardians", stated_purpose(&headers))
        .by_guardian(guardian.as_deref());
    Ok(Json(guardians::list(&state, &subject, reader).await?))
}

/// Remove a guardian of the subject. The consents they gave stay until withdrawn.
#[utoipa::path(delete, operation_id = "removeGuardian", path = "/v1/subjects/{subject}/guardians/{guardian}", tag = "guardians",
    params(("subject" = String, Path), ("guardian" = String, Path, description = "The guardian's subject id")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["consent:write"])))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    SubjectPath(subject): SubjectPath,
    path: Result<Path<GuardianPath>, PathRejection>,
) -> ApiResult<StatusCode> {
    principal.service().ok_or(Error::WrongPrincipal("only a service key removes a guardian"))?;
    principal.require_subject(&subject, Scope::ConsentWrite)?;
    let Path(GuardianPath { guardian }) = path.map_err(|_| ApiError(Error::NotFound("guardian")))?;
    guardians::remove(&state, &subject, &guardian).await?;
    Ok(StatusCode::NO_CONTENT)
}
