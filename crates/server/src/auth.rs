//! The credential extractors: `Authorization: Bearer <credential>` to the service layer's
//! [`Principal`], [`Caller`] (API keys only) and [`DeviceCaller`] (device tokens only). What a credential
//! is and may do is the service layer's ([`consentry_service::auth`]); so is the rule that limits failed
//! authentication per client address ([`throttle`]), which [`limit_failures`] applies to every route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentry_service::auth::throttle::FailureLimit;
pub use consentry_service::auth::*;
use consentry_service::devices::SnapshotDevice;

use crate::error::{ApiError, ApiResult, Error};
use crate::state::AppState;

/// The credential of `Authorization: Bearer <credential>`.
fn bearer(parts: &Parts) -> ApiResult<&str> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError(Error::Unauthorized))?;
    let value = header.to_str().map_err(|_| ApiError(Error::Unauthorized))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_CREDENTIAL_LEN)
        .ok_or(ApiError(Error::Unauthorized))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(authenticate(state, bearer(parts)?).await?)
    }
}

/// A service caller: an API key. A valid subject or device token is refused with 403 (it is genuine, but
/// this route is not one of its own).
impl FromRequestParts<AppState> for Arc<Caller> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Service(caller) => Ok(caller),
            Principal::Subject(_) => {
                Err(Error::WrongPrincipal("subject tokens may not use this route").into())
            }
            Principal::Device(_) | Principal::Household(_) => {
                Err(Error::WrongPrincipal("device tokens may not use this route").into())
            }
        }
    }
}

/// A device caller, for the device's own routes: an unknown or revoked device token is 401, any other
/// genuine credential 403.
impl FromRequestParts<AppState> for DeviceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Device(device) => Ok(device),
            Principal::Service(_) | Principal::Subject(_) | Principal::Household(_) => {
                Err(Error::WrongPrincipal("only a paired device's token may use this route").into())
            }
        }
    }
}

/// A device reading its own snapshot: a subject's paired device or a household's. An unknown or revoked
/// device token is 401, any other genuine credential 403.
impl FromRequestParts<AppState> for SnapshotDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Device(device) => Ok(SnapshotDevice::Subject(device)),
            Principal::Household(device) => Ok(SnapshotDevice::Household(device)),
            Principal::Service(_) | Principal::Subject(_) => {
                Err(Error::WrongPrincipal("only a paired device's token may use this route").into())
            }
        }
    }
}

/// Routes a limited address may still reach: the health probes (a load balancer may probe from the same
/// address its clients come through).
const UNLIMITED: [&str; 2] = ["/healthz", "/readyz"];

/// The failed-authentication limit around every route: a request from an address that failed too often is
/// answered 429 `too_many_failed_attempts` before anything reads its credential, and every 401 answered
/// (an API credential, a preference-centre link or session alike) counts as a failure of its address.
/// A request without a peer address (a handler test without a socket) is not limited; behind a trusted
/// proxy the address is the client's ([`crate::client`]).
pub async fn limit_failures(
    State(limit): State<Arc<FailureLimit>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = crate::client::ClientAddr::of(request.extensions());
    let Some(ip) = peer.filter(|_| !UNLIMITED.contains(&request.uri().path())) else {
        return next.run(request).await;
    };
    if let Err(limited) = limit.check(ip, Instant::now()) {
        return ApiError(limited).into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        limit.failed(ip, Instant::now());
    }
    response
}
