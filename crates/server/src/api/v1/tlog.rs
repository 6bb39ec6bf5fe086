//! `/v1/tlog/…`: the ledger as a transparency log, open to anyone like the verification keys: the newest
//! signed checkpoint, the verifier keys, and consistency proofs between tree sizes. They name no person
//! (the tree's leaves hold pseudonyms only) and let witnesses and auditors follow the log.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use consentry_service::tlog::{self, ConsistencyOut, ConsistencyQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;

const TEXT: &str = "text/plain; charset=utf-8";

/// The newest signed checkpoint of the ledger's Merkle tree: a C2SP `tlog-checkpoint` in a signed note.
#[utoipa::path(get, operation_id = "getTlogCheckpoint", path = "/v1/tlog/checkpoint", tag = "audit",
    responses((status = 200, content_type = "text/plain", body = String,
               description = "`<origin>\\n<tree size>\\n<base64 root>\\n`, a blank line, and `— <origin> <signature>`")),
    security(()))]
pub async fn checkpoint(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let note = tlog::checkpoint(&state).await?;
    Ok(([(header::CONTENT_TYPE, TEXT), (header::CACHE_CONTROL, "no-cache")], note))
}

/// The log's verifier keys in C2SP note form, one per line: the current key first, then those it replaced.
#[utoipa::path(get, operation_id = "getTlogVerifierKeys", path = "/v1/tlog/vkey", tag = "audit",
    responses((status = 200, content_type = "text/plain", body = String,
               description = "`<origin>+<hex key id>+<base64(0x01 ‖ Ed25519 public key)>` per line")),
    security(()))]
pub async fn vkey(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, TEXT), (header::CACHE_CONTROL, "public, max-age=300")], tlog::vkeys(&state))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The smaller tree size, 0 to `to`.
    #[param(minimum = 0)]
    pub from: u64,
    /// The larger tree size, at most the log's size.
    #[param(minimum = 0)]
    pub to: u64,
}

/// An RFC 9162 consistency proof between two sizes of the ledger's Merkle tree (404 unless
/// `from` ≤ `to` ≤ the log's size).
#[utoipa::path(get, operation_id = "getTlogConsistency", path = "/v1/tlog/consistency", tag = "audit",
    params(ConsistencyParams),
    responses((status = 200, body = ConsistencyOut), (status = 400, body = Problem),
              (status = 404, body = Problem, description = "`to` is beyond the log's size, or `from` beyond `to`")),
    security(()))]
pub async fn consistency(
    State(state): State<AppState>,
    Query(params): Query<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyOut>> {
    let query = ConsistencyQuery { from: params.from, to: params.to };
    Ok(Json(tlog::consistency(&state, query).await?))
}
