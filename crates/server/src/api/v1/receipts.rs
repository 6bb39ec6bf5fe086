//! `/v1/receipts/{id}`: a consent receipt again, as signed when the consent was recorded.

use consentry_service::receipts::*;

use std::sync::Arc;

use axum::extract::{Path, State};

use axum::http::HeaderMap;

use crate::auth::{Caller, Scope};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::Json;

use crate::state::AppState;

/// A receipt by id.
#[utoipa::path(get, path = "/v1/receipts/{id}", tag = "receipts", params(("id" = String, Path)),
    responses((status = 200, body = ReceiptOut), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptOut>> {
    caller.require(Scope::ConsentRead)?;
    let found = state.store.receipt(&id).await?.ok_or(ApiError(Error::NotFound("receipt")))?;
    // A receipt whose subject was erased names nobody any more: nothing to hand out.
    let subject = found.subject.ok_or(ApiError(Error::NotFound("receipt")))?;
    state.access.read(
        &subject,
        &caller.key_name,
        "GET /v1/receipts/{id}",
        crate::extract::stated_purpose(&headers),
    );
    Ok(Json(ReceiptOut {
        id: found.id,
        subject: subject.into_string(),
        jws: found.jws,
        created_at: found.created_at.to_string(),
    }))
}
