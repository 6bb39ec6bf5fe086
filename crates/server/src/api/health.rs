//! Liveness, readiness, Prometheus metrics and the OpenAPI document: open to anyone, but for the metrics
//! of a server reachable from other hosts (see [`consentry_service::config::Config::metrics_open`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::{Caller, Scope};
use crate::error::ApiResult;
use crate::extract::Json;
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The process can serve: its store answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ledger_head().await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"})))
        }
    }
}

/// The Prometheus metrics. Unless [`metrics_open`](consentry_service::config::Config::metrics_open),
/// only for an API key with the `metrics` scope (401 without one, 403 for another credential).
pub async fn metrics(State(state): State<AppState>, request: Request) -> ApiResult<impl IntoResponse> {
    let format = crate::metrics::format(request.headers());
    if !state.config.metrics_open() {
        let (mut parts, _) = request.into_parts();
        Arc::<Caller>::from_request_parts(&mut parts, &state).await?.require(Scope::Metrics)?;
    }
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    Ok(([(header::CONTENT_TYPE, format.content_type())], state.metrics.encode(format)))
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document())
}

/// The public keys that verify receipts and checkpoints (RFC 7517 JWK Set).
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json"), (header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signing.jwks().clone()),
    )
}
