//! Global Privacy Control (`Sec-GPC: 1`): a person's browser saying "do not sell or share my data".
//!
//! On the preference centre and on the subject API, an authenticated request for a subject that carries
//! the signal records, once, a `withdraw` (an `object` for a purpose not based on consent) of every purpose
//! the catalogue marks `sale_or_sharing`, with actor `signal:gpc`. "Once": a purpose whose current state
//! already holds a negative statement from the signal is skipped, so repeated requests add nothing.
//! `/.well-known/gpc.json` tells user agents that we honour the signal.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentry_core::SubjectId;
use consentry_core::catalog::Basis;
use consentry_core::ledger::ACTOR_GPC;

use crate::auth::{Principal, Scope};
use crate::error::ApiResult;
use crate::state::AppState;
use consentry_service::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};

/// The request header that carries the signal.
pub const HEADER: &str = "sec-gpc";
/// The `lastUpdate` of our `/.well-known/gpc.json`: when our support for the signal last changed.
pub const SUPPORT_SINCE: &str = "2026-11-29";

/// Whether the request carries `Sec-GPC: 1`.
pub fn signalled(headers: &HeaderMap) -> bool {
    headers.get(HEADER).is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// Records the signal for `subject` unless its current state already holds it for every sale-or-sharing
/// purpose. Returns the purposes withdrawn now (empty when nothing was left to record).
///
/// Concurrent first requests on this node record it once: what is missing is read again under
/// `state.gpc_lock` before recording (the lock is taken only when something is missing, so repeated
/// requests do not queue). Two nodes may still both record it once each; the second adds a statement
/// equal in effect.
pub async fn honour(state: &AppState, subject: &SubjectId) -> ApiResult<Vec<String>> {
    if missing(state, subject).await?.is_empty() {
        return Ok(Vec::new());
    }
    let _one_at_a_time = state.gpc_lock.lock().await;
    let changes = missing(state, subject).await?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let body = RecordConsents { notice: None, notice_version: None, collection_point: None, changes };
    let recorded = record_changes(state, subject, body, ACTOR_GPC).await?;
    tracing::info!(events = recorded.events.len(), "recorded a Global Privacy Control signal");
    Ok(recorded.events.into_iter().map(|e| e.purpose).collect())
}

/// The changes the signal still needs for `subject`: a negative statement from the signal on every
/// sale-or-sharing purpose that holds none.
async fn missing(state: &AppState, subject: &SubjectId) -> ApiResult<Vec<ChangeIn>> {
    let view = state.catalog();
    let purposes: Vec<String> = state
        .engine
        .sale_or_sharing_purposes()
        .into_iter()
        .filter(|p| view.catalog.purpose(p).is_some_and(|p| p.sale_or_sharing))
        .collect();
    if purposes.is_empty() {
        return Ok(Vec::new());
    }
    let current = state.store.current(subject).await?;
    let held = |purpose: &str| {
        current.iter().any(|e| e.purpose == purpose && e.actor == ACTOR_GPC && !e.action.is_positive())
    };
    Ok(purposes
        .iter()
        .filter(|p| !held(p))
        .filter_map(|p| {
            let basis = view.catalog.purpose(p)?.basis;
            let action = if basis == Basis::Consent { ChangeAction::Withdraw } else { ChangeAction::Object };
            Some(ChangeIn {
                purpose: p.clone(),
                action,
                categories: Vec::new(),
                channels: Vec::new(),
                recipients: Vec::new(),
                expires_at: None,
            })
        })
        .collect())
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
    let allowed = may_change_consent(&state, &mut parts, &subject).await;
    if allowed && let Err(e) = honour(&state, &subject).await {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Whether the request's credentials may change `subject`'s consent: a service key with `consent:write`, or
/// the subject's own token.
async fn may_change_consent(state: &AppState, parts: &mut Parts, subject: &SubjectId) -> bool {
    match Principal::from_request_parts(parts, state).await {
        Ok(principal) => principal.require_subject(subject, Scope::ConsentWrite).is_ok(),
        Err(_) => false,
    }
}

/// `/.well-known/gpc.json` (GPC specification, section 3.4).
pub async fn well_known() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=86400")],
        format!("{{\"gpc\": true, \"lastUpdate\": \"{SUPPORT_SINCE}\"}}"),
    )
        .into_response()
}
