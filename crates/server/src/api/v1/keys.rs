//! `/v1/keys`: API keys (admin only). A key's secret is shown once, at creation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Scope, make_key};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label for people, 1 to 64 characters of letters, digits, space, `_`, `.` and `-`.
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The secret, shown only in this response. Send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// Checks a key request; shared with the CLI.
pub fn validate_key_request(name: &str, scopes: &[String]) -> ApiResult<Vec<Scope>> {
    let name_ok = !name.trim().is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
    if !name_ok {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 64 characters of letters, digits, space, `_`, `.` and `-`",
        ));
    }
    if scopes.is_empty() {
        return Err(ApiError::validation("scopes", "name at least one scope"));
    }
    let mut parsed = Vec::with_capacity(scopes.len());
    for (i, s) in scopes.iter().enumerate() {
        let scope = Scope::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation(
                format!("scopes[{i}]"),
                format!("unknown scope {s:?}; known: {}", known.join(", ")),
            )
        })?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    Ok(parsed)
}

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
        return Err(ApiError::NotFound("key"));
    }
    state.keys.evict(&id);
    tracing::info!(key_id = %id, by = %caller.key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
