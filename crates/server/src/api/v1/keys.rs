//! `/v1/keys`: API keys (admin only). A key's secret is shown once, at creation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use consentry_service::keys::{self, CreateKey, CreatedKey, KeyList};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;

/// Create an API key.
#[utoipa::path(post, operation_id = "createKey", path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["admin"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    caller.require(Scope::Admin)?;
    let created = keys::create(state.store.as_ref(), body, &caller.key_id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List active API keys (never their secrets).
#[utoipa::path(get, operation_id = "listKeys", path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["admin"])))]
pub async fn list(State(state): State<AppState>, caller: Arc<Caller>) -> ApiResult<Json<KeyList>> {
    caller.require(Scope::Admin)?;
    Ok(Json(keys::list(state.store.as_ref()).await?))
}

/// Revoke an API key, at once.
#[utoipa::path(delete, operation_id = "revokeKey", path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["admin"])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Admin)?;
    keys::revoke(&state, &id, &caller.key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
