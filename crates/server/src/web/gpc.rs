//! Global Privacy Control (`Sec-GPC: 1`) over HTTP: whether a request carries the signal, the subject API's
//! middleware that records it, and `/.well-known/gpc.json`, which tells user agents that we honour it.
//!
//! What recording the signal means (once, a withdrawal or objection of every sale-or-sharing purpose) is
//! the service layer's ([`consentry_service::gpc`]); the preference centre records it through its page
//! loads, the API through [`api_layer`].

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentry_core::SubjectId;
use consentry_service::access::Reader;

use crate::auth::{Principal, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The request header that carries the signal.
pub const HEADER: &str = "sec-gpc";
/// The `lastUpdate` of our `/.well-known/gpc.json`: when our support for the signal last changed.
pub const SUPPORT_SINCE: &str = "2026-11-29";

/// Whether the request carries `Sec-GPC: 1`.
pub fn signalled(headers: &HeaderMap) -> bool {
    headers.get(HEADER).is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// Middleware on the subject API: a request with the signal, from a caller allowed to change this
/// subject's consent, records it before the route runs. Anyone else's request passes through untouched
/// (the route itself then refuses what it must).
pub async fn api_layer(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    if !signalled(request.headers()) {
        return next.run(request).await;
    }
    let subject = params.ok().and_then(|params| {
        params.iter().find(|(k, _)| *k == "subject").and_then(|(_, v)| SubjectId::new(v).ok())
    });
    let Some(subject) = subject else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    if let Some(principal) = may_change_consent(&state, &mut parts, &subject).await {
        // The person's own browser sent it with their token: theirs, in their access log.
        let reader = Reader::action(&principal, "Global Privacy Control signal (Sec-GPC)", None);
        if let Err(e) = consentry_service::gpc::honour(&state, &subject, reader).await {
            return ApiError(e).into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The request's credentials, when they may change `subject`'s consent: a service key with
/// `consent:write`, or the subject's own token.
async fn may_change_consent(state: &AppState, parts: &mut Parts, subject: &SubjectId) -> Option<Principal> {
    let principal = Principal::from_request_parts(parts, state).await.ok()?;
    principal.require_subject(subject, Scope::ConsentWrite).is_ok().then_some(principal)
}

/// `/.well-known/gpc.json` (GPC specification, section 3.4).
pub async fn well_known() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=86400")],
        format!("{{\"gpc\": true, \"lastUpdate\": \"{SUPPORT_SINCE}\"}}"),
    )
        .into_response()
}
