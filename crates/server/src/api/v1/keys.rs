//! `/v1/keys`: API keys (admin only). A key's secret is shown once, at creation.

use consentry_service::keys::*;

use std::sync::Arc;

use axum::extract::{Path, State};

use axum::http::StatusCode;


use crate::auth::{Caller, Scope, make_key};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::Json;

use crate::state::AppState;

/// Create an API key.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    caller.require(Scope::Admin)?;
    let scopes = validate_key_request(&body.name, &body.scopes)?;
    let key = make_key(body.name.trim(), &scopes, None)?;
    state.store.insert_api_key(key.record.clone()).await?;
    tracing::info!(key_id = %key.record.id, by = %caller.key_id, "API key created");
    let r = key.record;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: r.id,
            name: r.name,
            scopes: r.scopes,
            key: key.secret,
            created_at: r.created_at.to_string(),
        }),
    ))
}

/// List active API keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Arc<Caller>) -> ApiResult<Json<KeyList>> {
    caller.require(Scope::Admin)?;
    let keys = state
        .store
        .api_keys()
        .await?
        .into_iter()
        .map(|k| KeyInfo { id: k.id, name: k.name, scopes: k.scopes, created_at: k.created_at.to_string() })
        .collect();
    Ok(Json(KeyList { keys }))
}

/// Revoke an API key, at once.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Admin)?;
    if !state.store.revoke_api_key(&id, consentry_core::Timestamp::now()).await? {
        return Err(ApiError(Error::NotFound("key")));
    }
    state.keys.evict(&id);
    tracing::info!(key_id = %id, by = %caller.key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
