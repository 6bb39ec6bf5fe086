//! Devices: pairing (`/v1/subjects/{subject}/devices`), and what a paired device reads with its own token:
//! its signed consent snapshot (`/v1/device/consent`) and a stream of fresh ones
//! (`/v1/device/consent/stream`, Server-Sent Events). The rules are in [`consentry_service::devices`]; the
//! entity tags, 304 and the event stream are HTTP's, here.

use std::convert::Infallible;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use consentry_service::access::Reader;
use consentry_service::devices::{
    self, DeviceList, PairDevice, PairedDevice, SnapshotDevice, SnapshotReply, SnapshotStream,
};
use futures_util::Stream;
use serde::Deserialize;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, SubjectPath, stated_purpose};
use crate::state::AppState;

/// The media type of a compact JWS whose payload is a JWT claims set.
const JWT_MEDIA_TYPE: &str = "application/jwt";

#[derive(Debug, Deserialize)]
pub struct DevicePath {
    pub id: String,
}

/// Pair a device with a subject: a service key with `devices:write`, `check` and `records:write` (the
/// device's token runs checks and writes records, and a key may not hand out more than it holds), or the
/// subject's own token. The device token is in this response only; the pairing is in the subject's access
/// log.
#[utoipa::path(post, operation_id = "pairDevice", path = "/v1/subjects/{subject}/devices", tag = "devices",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = PairDevice,
    responses((status = 201, body = PairedDevice), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "`unknown_category` or `unknown_purpose` for a key the catalogue lacks")),
    security(("bearer" = ["devices:write", "check", "records:write"]), ("subject_token" = [])))]
pub async fn pair(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<PairDevice>,
) -> ApiResult<(StatusCode, Json<PairedDevice>)> {
    devices::authorise_pairing(&caller, &subject)?;
    let reader = Reader::new(&caller, "POST /v1/subjects/{subject}/devices", stated_purpose(&headers));
    let paired = devices::pair(&state, &subject, body, &caller.actor(), reader).await?;
    Ok((StatusCode::CREATED, Json(paired)))
}

/// The subject's paired devices, oldest first (a service key with `consent:read`, or the subject's own
/// token).
#[utoipa::path(get, operation_id = "listDevices", path = "/v1/subjects/{subject}/devices", tag = "devices",
    params(("subject" = String, Path)),
    responses((status = 200, body = DeviceList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<DeviceList>> {
    caller.require_subject(&subject, Scope::ConsentRead)?;
    let reader = Reader::new(&caller, "GET /v1/subjects/{subject}/devices", stated_purpose(&headers));
    Ok(Json(devices::list(&state, &subject, reader).await?))
}

/// Unpair a device (a service key with `devices:write`, or the subject's own token): its token stops
/// working at once. The unpairing is in the subject's access log.
#[utoipa::path(delete, operation_id = "unpairDevice", path = "/v1/subjects/{subject}/devices/{id}", tag = "devices",
    params(("subject" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["devices:write"]), ("subject_token" = [])))]
pub async fn unpair(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    path: Result<Path<DevicePath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require_subject(&subject, Scope::DevicesWrite)?;
    let Path(DevicePath { id }) = path.map_err(|_| ApiError(Error::NotFound("device")))?;
    let reader = Reader::new(&caller, "DELETE /v1/subjects/{subject}/devices/{id}", stated_purpose(&headers));
    devices::unpair(&state, &subject, &id, &caller.actor(), reader).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The device's signed consent snapshot: a compact JWS (EdDSA, keys at `/.well-known/jwks.json`) whose
/// payload holds its subject's statements and decisions for the device's purposes, categories and
/// channels (a household's device: each member's statements under their handle), the ledger position,
/// `iat` and `exp`. Send the `ETag` back as `If-None-Match`: 304 while
/// nothing changed and the snapshot held is less than half its lifetime old.
#[utoipa::path(get, operation_id = "getDeviceConsent", path = "/v1/device/consent", tag = "devices",
    responses((status = 200, description = "The compact JWS", content_type = "application/jwt", body = String),
              (status = 304, description = "The snapshot named by If-None-Match is still current, or \
               If-None-Match is `*` (RFC 9110 §13.1.2: a paired device always has a snapshot)"),
              (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`forbidden`: a credential other than a paired device's token")),
    security(("device_token" = [])))]
pub async fn consent(
    State(state): State<AppState>,
    device: SnapshotDevice,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let held = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    // `*` matches any current representation (RFC 9110 §13.1.2), and a paired device always has one.
    let any = held.is_some_and(|v| v.trim() == "*");
    let held = if any { None } else { held };
    let (mut response, etag) = match devices::consent_snapshot(&state, &device, held).await? {
        SnapshotReply::Held { etag } => (StatusCode::NOT_MODIFIED.into_response(), etag),
        SnapshotReply::Fresh(signed) if any => (StatusCode::NOT_MODIFIED.into_response(), signed.etag()),
        SnapshotReply::Fresh(signed) => {
            let etag = signed.etag();
            let mut response = signed.jws.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JWT_MEDIA_TYPE));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
            (response, etag)
        }
    };
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// A stream of the device's signed snapshots (Server-Sent Events, event `consent`, data the compact JWS,
/// id the entity tag): one at once, then a fresh one within a second of any change that affects the
/// device, and a renewed one when half the snapshot's lifetime has passed. The stream ends when the
/// device is unpaired. A device holds at most `max_streams_per_device` streams open on one node (default
/// 4); one more is refused with 429 `too_many_streams` and `Retry-After` until one of them ends.
#[utoipa::path(get, operation_id = "streamDeviceConsent", path = "/v1/device/consent/stream", tag = "devices",
    responses((status = 200, description = "Server-Sent Events; each `consent` event's data is a compact JWS",
               content_type = "text/event-stream", body = String),
              (status = 401, body = Problem),
              (status = 403, body = Problem, description = "`forbidden`: a credential other than a paired device's token"),
              (status = 429, description = "The device already holds as many open streams as it may",
               body = Problem, headers(("Retry-After" = u64, description = "Seconds to wait")))),
    security(("device_token" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    device: SnapshotDevice,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let keep_alive = state.config.stream_keep_alive();
    let streaming = SnapshotStream::open(state.0, device)?;
    let events = futures_util::stream::unfold(streaming, |mut s| async move {
        let signed = s.next().await?;
        let event = SseEvent::default().event("consent").id(signed.etag()).data(signed.jws);
        Some((Ok(event), s))
    });
    // Comments keep the stream alive within the idle timeout (and through proxies).
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)))
}
