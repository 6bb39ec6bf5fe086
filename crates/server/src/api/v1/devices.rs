//! Devices: pairing (`/v1/subjects/{subject}/devices`), and what a paired device reads with its own token:
//! its signed consent snapshot (`/v1/device/consent`) and a stream of fresh ones
//! (`/v1/device/consent/stream`, Server-Sent Events).

use consentry_service::devices::*;

use std::convert::Infallible;

use axum::extract::rejection::PathRejection;

use axum::extract::{Path, State};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};

use axum::response::{IntoResponse, Response};

use consentry_core::Timestamp;

use consentry_store::{DeviceRecord, NewDevice};

use futures_util::Stream;


use consentry_service::consents::log_read;

use crate::auth::{DeviceCaller, Principal, Scope, make_device_token};

use consentry_service::devices::{self};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::{Json, SubjectPath};

use crate::state::AppState;

/// Pair a device with a subject (a service key with `consent:write`, or the subject's own token). The
/// device token is in this response only.
#[utoipa::path(post, path = "/v1/subjects/{subject}/devices", tag = "devices",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = PairDevice,
    responses((status = 201, body = PairedDevice), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn pair(
    State(state): State<AppState>,
    caller: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<PairDevice>,
) -> ApiResult<(StatusCode, Json<PairedDevice>)> {
    caller.require_subject(&subject, Scope::ConsentWrite)?;
    let (categories, purposes) = validate(&state, &body)?;
    let (token, token_hash) = make_device_token()?;
    let id = format!("dev_{}", hex::encode(consentry_store::random_bytes::<8>()?));
    let record = DeviceRecord {
        id,
        subject: subject.clone(),
        name: body.name.trim().to_owned(),
        kind: body.kind,
        categories,
        purposes,
        created_at: Timestamp::now(),
    };
    state.store.create_device(NewDevice { record: record.clone(), token_hash }).await?;
    tracing::info!(device = %record.id, by = %caller.actor(), "device paired");
    // The MQTT publisher sends the new device its first snapshot.
    state.devices.subject_changed(&subject);
    Ok((StatusCode::CREATED, Json(PairedDevice { device: DeviceOut::from(record), token })))
}

/// The subject's paired devices, oldest first (a service key with `consent:read`, or the subject's own
/// token).
#[utoipa::path(get, path = "/v1/subjects/{subject}/devices", tag = "devices",
    params(("subject" = String, Path)),
    responses((status = 200, body = DeviceList), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<DeviceList>> {
    caller.require_subject(&subject, Scope::ConsentRead)?;
    log_read(
        &state,
        &caller,
        &subject,
        "GET /v1/subjects/{subject}/devices",
        crate::extract::stated_purpose(&headers),
    );
    let devices = state.store.subject_devices(&subject).await?;
    Ok(Json(DeviceList { devices: devices.into_iter().map(DeviceOut::from).collect() }))
}

/// Unpair a device (a service key with `consent:write`, or the subject's own token): its token stops
/// working at once.
#[utoipa::path(delete, path = "/v1/subjects/{subject}/devices/{id}", tag = "devices",
    params(("subject" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn unpair(
    State(state): State<AppState>,
    caller: Principal,
    SubjectPath(subject): SubjectPath,
    path: Result<Path<DevicePath>, PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require_subject(&subject, Scope::ConsentWrite)?;
    let Path(DevicePath { id }) = path.map_err(|_| ApiError(Error::NotFound("device")))?;
    if !unpair_device(&state, &subject, &id, &caller.actor()).await? {
        return Err(ApiError(Error::NotFound("device")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The device's signed consent snapshot: a compact JWS (EdDSA, keys at `/.well-known/jwks.json`) whose
/// payload holds its subject's statements and decisions for the device's purposes, categories and
/// channels, the ledger position, `iat` and `exp`. Send the `ETag` back as `If-None-Match`: 304 while
/// nothing changed and the snapshot held is less than half its lifetime old.
#[utoipa::path(get, path = "/v1/device/consent", tag = "devices",
    responses((status = 200, description = "The compact JWS", content_type = "application/jwt", body = String),
              (status = 304, description = "The snapshot named by If-None-Match is still current"),
              (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn consent(
    State(state): State<AppState>,
    device: DeviceCaller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let signed = devices::snapshot(&state, &device).await?;
    let held = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    let max_age = state.config.device_snapshot_max_age_secs;
    if let Some(etag) =
        held.and_then(|held| devices::still_fresh(held, &signed.tag, max_age, Timestamp::now()))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(etag) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return Ok(response);
    }
    let mut response = signed.jws.clone().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JWT_MEDIA_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&signed.etag()) {
        h.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// A stream of the device's signed snapshots (Server-Sent Events, event `consent`, data the compact JWS,
/// id the entity tag): one at once, then a fresh one within a second of any change that affects the
/// device, and a renewed one when half the snapshot's lifetime has passed. The stream ends when the
/// device is unpaired.
#[utoipa::path(get, path = "/v1/device/consent/stream", tag = "devices",
    responses((status = 200, description = "Server-Sent Events; each `consent` event's data is a compact JWS",
               content_type = "text/event-stream", body = String),
              (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    device: DeviceCaller,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let streaming = SnapshotStream::open(state.0, device);
    let events = futures_util::stream::unfold(streaming, |mut s| async move {
        let signed = s.next().await?;
        let event = SseEvent::default().event("consent").id(signed.etag()).data(signed.jws);
        Some((Ok(event), s))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
