//! `/v1/signals`: IAB TCF TC strings and IAB GPP strings decoded to their values and encoded back.

use std::sync::Arc;

use axum::extract::State;
use consentry_service::signals::{self, DecodeRequest, DecodeResponse, EncodeRequest, EncodeResponse};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::Json;
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
