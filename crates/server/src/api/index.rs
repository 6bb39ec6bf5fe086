//! `GET /`: the service's front door, pointing a newcomer to the preference centre, the API's document,
//! the verification keys and the guides (instead of a 404 problem).

use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;

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
