//! `/v1/catalog`: read and apply the whole catalogue, as JSON or YAML.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use consentry_service::catalog::{self, CatalogOut};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{BodyLimit, Json, body_bytes};
use crate::state::AppState;

/// The current catalogue and its version. Any valid key may read it.
#[utoipa::path(get, operation_id = "getCatalog", path = "/v1/catalog", tag = "catalog",
    responses((status = 200, body = CatalogOut), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, _caller: Arc<Caller>) -> ApiResult<Json<CatalogOut>> {
    Ok(Json(catalog::get(&state)))
}

/// Apply a whole catalogue as a new version. A rejected document changes nothing.
#[utoipa::path(put, operation_id = "putCatalog", path = "/v1/catalog", tag = "catalog",
    request_body(content = Object, description = "The catalogue document", content_type = "application/json"),
    responses((status = 200, body = CatalogOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 415, body = Problem),
              (status = 422, body = Problem, description = "`invalid_catalog`, with every problem found in `errors`: the \
               document breaks the catalogue's rules")),
    security(("bearer" = ["catalog:write"])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    request: Request,
) -> ApiResult<Json<CatalogOut>> {
    caller.require(Scope::CatalogWrite)?;
    let limit = request.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = body_bytes(request, &state, limit).await?;
    Ok(Json(catalog::apply(&state, &content_type, &body, &caller.key_id).await?))
}
