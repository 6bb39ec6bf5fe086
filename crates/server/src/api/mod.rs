//! The router: `/v1` resources (one file each under `v1/`), health, metrics and the OpenAPI document.

pub mod health;
pub mod index;
pub mod v1;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router, middleware};

use crate::auth::Principal;
use crate::error::{ApiError, Error};
use crate::extract::BodyLimit;
use crate::metrics;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    // A record's payload travels as base64 inside JSON: room for the encoded maximum and the fields.
    let record_limit = state.config.max_record_bytes.div_ceil(3) * 4 + 64 * 1024;
    let v1 = Router::new()
        .route("/keys", get(v1::keys::list).post(v1::keys::create))
        .route("/keys/{id}", delete(v1::keys::revoke))
        .route("/catalog", get(v1::catalog::get).put(v1::catalog::put))
        .route("/subjects/{subject}/consents", get(v1::consents::current).post(v1::consents::record))
        .route("/subjects/{subject}/consents/history", get(v1::consents::history))
        .route("/subjects/{subject}/consents/history/{id}/evidence", get(v1::consents::evidence))
        .route("/subjects/{subject}/jurisdiction", get(v1::jurisdiction::get).put(v1::jurisdiction::set))
        .route("/subjects/{subject}/access-log", get(v1::access::list))
        .route("/subjects/{subject}/tokens", post(v1::tokens::mint).delete(v1::tokens::revoke))
        .route("/receipts/{id}", get(v1::receipts::get))
        .route("/audit/verify", get(v1::audit::verify))
        .route("/tlog/checkpoint", get(v1::tlog::checkpoint))
        .route("/tlog/vkey", get(v1::tlog::vkey))
        .route("/tlog/consistency", get(v1::tlog::consistency))
        .route("/destinations", get(v1::destinations::list).post(v1::destinations::create))
        .route(
            "/destinations/{id}",
            get(v1::destinations::get).patch(v1::destinations::update).delete(v1::destinations::delete),
        )
        .route("/destinations/{id}/deliveries", get(v1::destinations::deliveries))
        .route("/destinations/{id}/replay", post(v1::destinations::replay))
        .merge(
            Router::new()
                .route("/records", post(v1::records::create))
                .layer(DefaultBodyLimit::max(record_limit))
                .layer(Extension(BodyLimit(record_limit))),
        )
        .route("/records/{id}", get(v1::records::get).delete(v1::records::delete_one))
        .route("/subjects/{subject}/records", get(v1::records::list).delete(v1::records::delete_many))
        .route("/subjects/{subject}/devices", get(v1::devices::list).post(v1::devices::pair))
        .route("/subjects/{subject}/devices/{id}", delete(v1::devices::unpair))
        .route("/households", get(v1::households::list).post(v1::households::create))
        .route(
            "/households/{id}",
            get(v1::households::get).patch(v1::households::update).delete(v1::households::delete),
        )
        .route("/households/{id}/members", post(v1::households::add_member))
        .route("/households/{id}/members/{subject}", delete(v1::households::remove_member))
        .route("/households/{id}/devices", post(v1::households::pair))
        .route("/households/{id}/devices/{device}", delete(v1::households::unpair))
        .route("/subjects", get(v1::identifiers::lookup))
        .route("/subjects/{subject}/identifiers", get(v1::identifiers::list).post(v1::identifiers::add))
        .route("/subjects/{subject}/links", post(v1::links::link))
        .route("/subjects/{subject}/identifiers/{id}", delete(v1::identifiers::delete))
        .route("/subjects/{subject}/age", get(v1::guardians::get_age).put(v1::guardians::set_age))
        .route("/subjects/{subject}/guardians", get(v1::guardians::list).post(v1::guardians::add))
        .route("/subjects/{subject}/guardians/{guardian}", delete(v1::guardians::remove))
        .route("/verifications", post(v1::verifications::start))
        .route("/verifications/{id}/confirm", post(v1::verifications::confirm))
        .route("/device/consent", get(v1::devices::consent))
        .route("/device/consent/stream", get(v1::devices::stream))
        .route("/subjects/{subject}/signals", get(v1::signals::current).post(v1::signals::record))
        .route("/signals/decode", post(v1::signals::decode))
        .route("/signals/encode", post(v1::signals::encode))
        .route("/check", post(v1::check::one))
        .route("/check/batch", post(v1::check::batch))
        .route("/requests", get(v1::requests::list).post(v1::requests::create))
        .route("/requests/{id}", get(v1::requests::get))
        .route("/requests/{id}/extend", post(v1::requests::extend))
        .route("/requests/{id}/reject", post(v1::requests::reject))
        .route("/requests/{id}/tasks/{destination_id}/complete", post(v1::requests::complete_task))
        .route("/requests/{id}/export", get(v1::requests::export))
        .route("/export/consents", get(v1::transfer::export))
        // Streamed: an import is read as it arrives, never held whole, so no body limit applies.
        .merge(Router::new().route("/import", post(v1::transfer::import)).layer(DefaultBodyLimit::disable()))
        // A Global Privacy Control signal is recorded once (inside the erasure layer: never for an erased subject).
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::web::gpc::api_layer))
        // Last: it covers every route above with a `{subject}` in its path.
        .route_layer(middleware::from_fn_with_state(state.clone(), erased_subjects_are_gone));
    Router::new()
        .nest("/v1", v1)
        .route("/", get(index::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .route("/.well-known/jwks.json", get(health::jwks))
        .merge(crate::web::router())
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
        .with_state(state)
}

/// Answers 410 for every route of an erased subject, whatever the route (Art. 17), to authenticated
/// callers.
async fn erased_subjects_are_gone(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    if let Ok(params) = &params
        && let Some((_, subject)) = params.iter().find(|(name, _)| *name == "subject")
        && state.erasures.is_erased(subject)
    {
        // Said only to an authenticated caller; anyone else learns nothing about the id (and an erased
        // subject's own tokens are revoked).
        let (mut parts, _) = request.into_parts();
        return match Principal::from_request_parts(&mut parts, &state).await {
            Ok(_) => ApiError(Error::SubjectErased).into_response(),
            Err(e) => e.into_response(),
        };
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("route"))
}

async fn method_not_allowed() -> ApiError {
    ApiError(Error::MethodNotAllowed)
}
