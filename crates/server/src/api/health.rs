//! The service's front door (`GET /`), liveness, readiness, Prometheus metrics and the OpenAPI document:
//! open to anyone, but for the metrics of a server reachable from other hosts (see
//! [`consentry_service::config::Config::metrics_open`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::ApiResult;
use crate::extract::Json;
use crate::state::AppState;

/// What `GET /` answers: where a newcomer goes next.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceIndex {
    /// `Consentry`.
    pub name: &'static str,
    /// The server's version.
    pub version: &'static str,
    pub links: IndexLinks,
    /// Where the guides are.
    pub docs: &'static str,
}

/// The service's own addresses, relative to this server.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexLinks {
    /// The preference centre, opened with a link minted by `POST /v1/subjects/{subject}/tokens`.
    pub preferences: &'static str,
    /// The API's OpenAPI 3.1 document.
    pub openapi: &'static str,
    /// The keys that verify receipts, checkpoints and device snapshots (RFC 7517).
    pub jwks: &'static str,
    pub healthz: &'static str,
    pub readyz: &'static str,
}

/// Where to go from here: the preference centre, the API's document, the verification keys and the
/// guides. The `Link` header names the API's description (RFC 8631 `service-desc`).
#[utoipa::path(get, path = "/", operation_id = "getServiceIndex", tag = "service",
    responses((status = 200, body = ServiceIndex,
               headers(("Link" = String, description = "`</openapi.json>; rel=\"service-desc\"`")))),
    security(()))]
pub async fn index() -> impl IntoResponse {
    let index = ServiceIndex {
        name: "Consentry",
        version: env!("CARGO_PKG_VERSION"),
        links: IndexLinks {
            preferences: "/preferences",
            openapi: "/openapi.json",
            jwks: "/.well-known/jwks.json",
            healthz: "/healthz",
            readyz: "/readyz",
        },
        docs: "README.md and docs/ in Consentry's source; the API reference is /openapi.json",
    };
    ([(header::LINK, "</openapi.json>; rel=\"service-desc\"")], Json(index))
}

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
    if !state.config.metrics_open() {
        let (mut parts, _) = request.into_parts();
        Arc::<Caller>::from_request_parts(&mut parts, &state).await?.require(Scope::Metrics)?;
    }
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    ))
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
