//! `/v1/receipts/{id}`: a consent receipt again, as signed when the consent was recorded.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use consentry_service::access::Reader;
use consentry_service::receipts::{self, ReceiptOut};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, stated_purpose};
use crate::state::AppState;

/// A receipt by id.
#[utoipa::path(get, operation_id = "getReceipt", path = "/v1/receipts/{id}", tag = "receipts", params(("id" = String, Path)),
    responses((status = 200, body = ReceiptOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = ["consent:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptOut>> {
    caller.require(Scope::ConsentRead)?;
    let reader = Reader::service(&caller, "GET /v1/receipts/{id}", stated_purpose(&headers));
    Ok(Json(receipts::get(&state, &id, reader).await?))
}
