//! `/v1/check`: decisions from memory. The hot path: the body is parsed borrowing from the request
//! buffer, the engine allocates nothing, and nothing touches the store.

use std::sync::Arc;

use axum::extract::State;
use consentry_service::check::{self, BatchRequest, BatchResponse, CheckRequest, CheckResponse};

use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, JsonBody};
use crate::state::AppState;

/// May this subject's data be used for this purpose (and category, channel, recipient), now? A service
/// key needs `check`; a paired device may ask about its own subject only, naming a data category, within
/// the categories and purposes it declared (else 403).
#[utoipa::path(post, operation_id = "check", path = "/v1/check", tag = "check", request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`unknown_purpose`, `unknown_category`, `unknown_channel`, `unknown_recipient` or `unknown_jurisdiction` for a key the catalogue lacks")),
    security(("bearer" = ["check"]), ("device_token" = [])))]
pub async fn one(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody,
) -> ApiResult<Json<CheckResponse>> {
    // Refused before the body is read; what a device may ask depends on the body (the service checks it).
    match &caller {
        Principal::Service(service) => service.require(Scope::Check)?,
        Principal::Subject(_) => {
            return Err(ApiError(Error::WrongPrincipal("subject tokens may not use this route")));
        }
        Principal::Device(_) | Principal::Household(_) => {}
    }
    let c: CheckRequest<'_> = body.parse()?;
    Ok(Json(check::one(&state, &caller, &c)?))
}

/// Many checks in one request (up to the configured maximum, 10,000 by default).
#[utoipa::path(post, operation_id = "checkBatch", path = "/v1/check/batch", tag = "check", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`unknown_purpose`, `unknown_category`, `unknown_channel`, `unknown_recipient` or `unknown_jurisdiction` for a key the catalogue lacks (the first such check), or `validation_failed` for more checks than `check_batch_max`")),
    security(("bearer" = ["check"])))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    body: JsonBody,
) -> ApiResult<Json<BatchResponse>> {
    caller.require(Scope::Check)?;
    let b: BatchRequest<'_> = body.parse()?;
    Ok(Json(check::batch(&state, &b)?))
}
