//! Identifiers: `/v1/subjects/{subject}/identifiers` and the look-up `GET /v1/subjects?identifier=`. The
//! rules (normalisation, the blind index, masking) are in [`consentry_service::identifiers`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::identifiers::{self, IdentifierIn, IdentifierList, IdentifierOut, SubjectMatches};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, Query, SubjectPath, stated_purpose};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct IdentifierPath {
    pub id: String,
}

/// Attach an identifier (an e-mail address, a phone number, an account, a device serial, an advertising
/// id) to a subject. It is normalised, stored encrypted under the subject's data key and found by a blind
/// index. 201 when added, 200 when the subject already had it; 409 `conflict` when another subject has it
/// (which one is not said).
#[utoipa::path(post, operation_id = "addIdentifier", path = "/v1/subjects/{subject}/identifiers", tag = "identifiers",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = IdentifierIn,
    responses((status = 201, body = IdentifierOut), (status = 200, body = IdentifierOut, description = "The subject already had it"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem, description = "Another subject has this identifier"),
              (status = 422, body = Problem, description = "`unknown_identifier_type`: a `type` neither built in nor declared by the catalogue; `validation_failed`: a `value` that is no e-mail address, phone number or advertising id, or breaks its type's rule")),
    security(("bearer" = ["identifiers:write"])))]
pub async fn add(
    State(state): State<AppState>,
    caller: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<IdentifierIn>,
) -> ApiResult<(StatusCode, Json<IdentifierOut>)> {
    caller.service().ok_or(Error::WrongPrincipal("only a service key may attach identifiers"))?;
    caller.require_subject(&subject, Scope::IdentifiersWrite)?;
    let (out, added) = identifiers::add(&state, &subject, body).await?;
    Ok((if added { StatusCode::CREATED } else { StatusCode::OK }, Json(out)))
}

/// The subject's identifiers, oldest first: values in the clear for a key with `identifiers:read` and for
/// the subject's own token, masked for other keys. The read is in the subject's access log.
#[utoipa::path(get, operation_id = "listIdentifiers", path = "/v1/subjects/{subject}/identifiers", tag = "identifiers",
    params(("subject" = String, Path)),
    responses((status = 200, body = IdentifierList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<IdentifierList>> {
    caller.require_subject(&subject, Scope::ConsentRead)?;
    let reader = Reader::new(&caller, "GET /v1/subjects/{subject}/identifiers", stated_purpose(&headers));
    Ok(Json(identifiers::list(&state, &caller, &subject, reader).await?))
}

/// Remove one of the subject's identifiers with its index entry (a key with `identifiers:write`, or the
/// subject's own token).
#[utoipa::path(delete, operation_id = "deleteIdentifier", path = "/v1/subjects/{subject}/identifiers/{id}", tag = "identifiers",
    params(("subject" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["identifiers:write"]), ("subject_token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    path: Result<Path<IdentifierPath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require_subject(&subject, Scope::IdentifiersWrite)?;
    let Path(IdentifierPath { id }) = path.map_err(|_| ApiError(Error::NotFound("identifier")))?;
    identifiers::delete(&state, &subject, &id).await?;
    let reader =
        Reader::action(&caller, "DELETE /v1/subjects/{subject}/identifiers/{id}", stated_purpose(&headers));
    reader.log(&state.access, &subject);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupParams {
    /// `type:value`, e.g. `email:ana@example.com` or `phone:+49301234567`; normalised as when it was added.
    #[param(required = true, min_length = 3, max_length = 300, example = "email:ana@example.com")]
    pub identifier: Option<String>,
}

/// Find the subject an identifier belongs to: `{"subjects": []}` when none, else the one subject.
#[utoipa::path(get, operation_id = "findSubjects", path = "/v1/subjects", tag = "identifiers",
    params(LookupParams),
    responses((status = 200, body = SubjectMatches), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`unknown_identifier_type`: a type neither built in nor declared by the catalogue; `validation_failed`: not `type:value`, or a malformed value")),
    security(("bearer" = ["identifiers:read"])))]
pub async fn lookup(
    State(state): State<AppState>,
    caller: Principal,
    Query(params): Query<LookupParams>,
) -> ApiResult<Json<SubjectMatches>> {
    let service = caller.service().ok_or(Error::WrongPrincipal("only a service key may look subjects up"))?;
    service.require(Scope::IdentifiersRead)?;
    let identifier =
        params.identifier.ok_or_else(|| ApiError::validation("identifier", "name one, as type:value"))?;
    Ok(Json(identifiers::lookup(&state, &identifier).await?))
}
