//! `/v1/signals`: IAB TCF TC strings and IAB GPP strings decoded to their values and encoded back; and
//! `/v1/subjects/{subject}/signals`: a person's strings recorded as consent evidence, and their current
//! decisions given back as a string or Consent Mode.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::signals::subject::{self, RecordSignal, RecordedSignal, SignalFormat, SignalState};
use consentry_service::signals::{self, DecodeRequest, DecodeResponse, EncodeRequest, EncodeResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, Query, SubjectPath, stated_purpose};
use crate::state::AppState;

/// Decode a TC string (`{"tcf": "..."}`) or a GPP string (`{"gpp": "..."}`) into its values.
#[utoipa::path(post, operation_id = "decodeSignal", path = "/v1/signals/decode", tag = "signals",
    request_body = DecodeRequest,
    responses((status = 200, body = DecodeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`invalid_tc_string` or `invalid_gpp_string` naming the \
               segment and bit offset the string cannot be read at; `validation_failed` for neither or both strings")),
    security(("bearer" = ["consent:read"])))]
pub async fn decode(
    State(_state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<DecodeRequest>,
) -> ApiResult<Json<DecodeResponse>> {
    caller.require(Scope::ConsentRead)?;
    Ok(Json(signals::decode(body)?))
}

/// Encode values (as `decode` gives them) as a TC string (`{"tcf": {...}}`) or a GPP string
/// (`{"gpp": {"sections": {...}}}`).
#[utoipa::path(post, operation_id = "encodeSignal", path = "/v1/signals/encode", tag = "signals",
    request_body = EncodeRequest,
    responses((status = 200, body = EncodeResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`invalid_tc_string` or `invalid_gpp_string` naming the \
               field whose value is out of range or unknown; `validation_failed` for neither or both")),
    security(("bearer" = ["consent:read"])))]
pub async fn encode(
    State(_state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<EncodeRequest>,
) -> ApiResult<Json<EncodeResponse>> {
    caller.require(Scope::ConsentRead)?;
    Ok(Json(signals::encode(body)?))
}

/// A service's own credentials only: a person's or a device's token may not record or read signals.
fn service_only(principal: &Principal, scope: Scope) -> ApiResult<()> {
    match principal {
        Principal::Service(service) => Ok(service.require(scope)?),
        _ => Err(ApiError(Error::WrongPrincipal("only a service key may use this route"))),
    }
}

/// Record what a person's TC or GPP string says, through the catalogue's `frameworks` mapping: grants,
/// denials and opt-outs with actor `signal:tcf` or `signal:gpp` and the string's SHA-256 as evidence.
/// The same string again records nothing (200).
#[utoipa::path(post, operation_id = "recordSignal", path = "/v1/subjects/{subject}/signals", tag = "signals",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = RecordSignal,
    responses((status = 201, body = RecordedSignal, description = "Events recorded"),
              (status = 200, body = RecordedSignal, description = "Nothing new: the string was recorded before, or maps to nothing"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`invalid_tc_string` or `invalid_gpp_string` for a string that \
               cannot be read or fails the TCF's policy checks; `unknown_collection_point`; `validation_failed` for \
               neither or both strings")),
    security(("bearer" = ["consent:write"])))]
pub async fn record(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<RecordSignal>,
) -> ApiResult<(StatusCode, Json<RecordedSignal>)> {
    service_only(&principal, Scope::ConsentWrite)?;
    let reader = Reader::action(&principal, "POST /v1/subjects/{subject}/signals", stated_purpose(&headers));
    let recorded = subject::record(&state, &subject, body, reader).await?;
    let status = if recorded.events.is_empty() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(recorded)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StateParams {
    /// `tcf`, `gpp` or `consent_mode`.
    #[param(inline)]
    pub format: SignalFormat,
}

/// The person's current decisions as a TC string, a GPP string or Google Consent Mode v2, through the
/// catalogue's `frameworks` mapping.
#[utoipa::path(get, operation_id = "getSignals", path = "/v1/subjects/{subject}/signals", tag = "signals",
    params(("subject" = String, Path), StateParams),
    responses((status = 200, body = SignalState), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` when the catalogue maps nothing for the format")),
    security(("bearer" = ["consent:read"])))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    params: Result<Query<StateParams>, ApiError>,
) -> ApiResult<Json<SignalState>> {
    // Credentials first: a caller who may not read learns nothing from the query's shape.
    service_only(&principal, Scope::ConsentRead)?;
    let Query(params) = params?;
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/signals", stated_purpose(&headers));
    Ok(Json(subject::state(&state, &subject, params.format, reader)?))
}
