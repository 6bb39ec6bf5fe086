//! `/v1/receipts/{id}`: a consent receipt again, built from the ledger: with the proofs of its events'
//! inclusion in the ledger's Merkle tree (the default), or signed as a JWS on demand (`?format=jws`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use consentry_service::access::Reader;
use consentry_service::receipts::{self, ReceiptFormat, ReceiptRead};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query, stated_purpose};
use crate::state::AppState;

/// The form of a receipt read again.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The receipt document with its events' inclusion proofs against the newest signed checkpoint.
    #[default]
    Proof,
    /// The receipt document signed as a compact JWS (EdDSA), with the key that signs it every time.
    Jws,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// `proof` (default) or `jws`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// A receipt by id.
#[utoipa::path(get, operation_id = "getReceipt", path = "/v1/receipts/{id}", tag = "receipts",
    params(("id" = String, Path), ReceiptParams),
    responses((status = 200, body = ReceiptRead), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["consent:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<ReceiptParams>,
) -> ApiResult<Json<ReceiptRead>> {
    caller.require(Scope::ConsentRead)?;
    let format = match params.format.unwrap_or_default() {
        Format::Proof => ReceiptFormat::Proof,
        Format::Jws => ReceiptFormat::Jws,
    };
    let reader = Reader::service(&caller, "GET /v1/receipts/{id}", stated_purpose(&headers));
    Ok(Json(receipts::get(&state, &id, format, reader).await?))
}
