//! Devices: pairing (`/v1/subjects/{subject}/devices`), and what a paired device reads with its own token:
//! its signed consent snapshot (`/v1/device/consent`) and a stream of fresh ones
//! (`/v1/device/consent/stream`, Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use consentry_core::Timestamp;
use consentry_store::{DeviceRecord, NewDevice};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use crate::api::v1::consents::log_read;
use crate::auth::{DeviceCaller, Principal, Scope, make_device_token};
use crate::devices::{self, DeviceChange, SignedSnapshot};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, SubjectPath};
use crate::state::AppState;

/// Most categories or purposes one device declares.
pub const MAX_DECLARED: usize = 50;
/// How often an open stream checks that its device is still paired (an unpairing on this node ends it at
/// once; on another node within this).
const REVALIDATE: Duration = Duration::from_secs(5);
/// The media type of a compact JWS whose payload is a JWT claims set.
const JWT_MEDIA_TYPE: &str = "application/jwt";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairDevice {
    /// A label for people, 1 to 100 characters.
    pub name: String,
    /// What the device is (`speaker`, `fridge`, `tv`, ...): 1 to 40 lowercase letters, digits, `_`, `-`.
    pub kind: String,
    /// The data categories the device handles (catalogue keys); it may act on these and those under them.
    pub categories: Vec<String>,
    /// The purposes the device serves (catalogue keys); it may act for these and those under them.
    pub purposes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub created_at: String,
}

impl From<DeviceRecord> for DeviceOut {
    fn from(d: DeviceRecord) -> Self {
        Self {
            id: d.id,
            name: d.name,
            kind: d.kind,
            categories: d.categories,
            purposes: d.purposes,
            created_at: d.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairedDevice {
    #[serde(flatten)]
    pub device: DeviceOut,
    /// The device's token, shown only in this response. The device sends it as
    /// `Authorization: Bearer <token>`; unpairing revokes it.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceOut>,
}

#[derive(Debug, Deserialize)]
pub struct DevicePath {
    pub id: String,
}

/// Checks a pairing request against the catalogue; returns the declared keys sorted, without repeats.
fn validate(state: &AppState, body: &PairDevice) -> ApiResult<(Vec<String>, Vec<String>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 100 characters, none of them control characters",
        ));
    }
    let kind_ok = !body.kind.is_empty()
        && body.kind.len() <= 40
        && body.kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !kind_ok {
        return Err(ApiError::validation("kind", "must be 1 to 40 lowercase letters, digits, `_` or `-`"));
    }
    let view = state.catalog();
    let list = |field: &str, keys: &[String]| -> ApiResult<Vec<String>> {
        if keys.is_empty() || keys.len() > MAX_DECLARED {
            return Err(ApiError::validation(field, format!("declare 1 to {MAX_DECLARED} keys")));
        }
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    };
    let categories = list("categories", &body.categories)?;
    let purposes = list("purposes", &body.purposes)?;
    if let Some(c) = categories.iter().find(|c| view.catalog.category(c).is_none()) {
        return Err(ApiError::UnknownCategory(c.clone()));
    }
    if let Some(p) = purposes.iter().find(|p| view.catalog.purpose(p).is_none()) {
        return Err(ApiError::UnknownPurpose(p.clone()));
    }
    Ok((categories, purposes))
}

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
    log_read(&state, &caller, &subject, "GET /v1/subjects/{subject}/devices", &headers);
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
    let Path(DevicePath { id }) = path.map_err(|_| ApiError::NotFound("device"))?;
    if !state.store.delete_device(&subject, &id).await? {
        return Err(ApiError::NotFound("device"));
    }
    tracing::info!(device = %id, by = %caller.actor(), "device unpaired");
    state.devices.unpaired(&id);
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

/// What a snapshot stream remembers between events.
struct Streaming {
    state: AppState,
    device: DeviceCaller,
    changes: tokio::sync::broadcast::Receiver<DeviceChange>,
    /// The content tag last sent; `None` before the first.
    sent: Option<String>,
    sent_at: tokio::time::Instant,
}

impl Streaming {
    /// Waits for the next snapshot to send; `None` ends the stream (unpaired, or shutting down).
    async fn next(&mut self) -> Option<SignedSnapshot> {
        let renew = Duration::from_secs((self.state.config.device_snapshot_max_age_secs / 2).max(1));
        loop {
            let due = self.sent.is_some() && self.sent_at.elapsed() >= renew;
            if self.sent.is_some() && !due {
                let wait = renew.saturating_sub(self.sent_at.elapsed()).min(REVALIDATE);
                tokio::select! {
                    changed = self.changes.recv() => match changed {
                        Ok(DeviceChange::Subject(s)) if s == self.device.subject => {}
                        Ok(DeviceChange::Unpaired(id)) if id == self.device.device_id => return None,
                        Ok(DeviceChange::Everyone) | Err(RecvError::Lagged(_)) => {}
                        Ok(DeviceChange::Subject(_) | DeviceChange::Unpaired(_)) => continue,
                        Ok(DeviceChange::ShuttingDown) | Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(wait) => {
                        if self.sent_at.elapsed() < renew {
                            // A quiet moment: make sure the device is still paired (another node may
                            // have unpaired it).
                            match self.state.store.device(&self.device.device_id).await {
                                Ok(None) => return None,
                                Ok(Some(_)) => {}
                                Err(e) => tracing::warn!(error = %e, "checking a streaming device failed"),
                            }
                            continue;
                        }
                    }
                }
            }
            // Read again: the stream must end once the device is unpaired.
            let device = match self.state.store.device(&self.device.device_id).await {
                Ok(Some(record)) => DeviceCaller::from_record(record),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a streaming device failed");
                    tokio::time::sleep(REVALIDATE).await;
                    continue;
                }
            };
            let signed = match devices::snapshot(&self.state, &device).await {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::warn!(error = %e, "building a device snapshot failed");
                    tokio::time::sleep(REVALIDATE).await;
                    continue;
                }
            };
            let renewing = self.sent_at.elapsed() >= renew;
            if renewing || self.sent.as_deref() != Some(signed.tag.as_str()) {
                self.sent = Some(signed.tag.clone());
                self.sent_at = tokio::time::Instant::now();
                return Some(signed);
            }
        }
    }
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
    // Subscribe before the first snapshot is built, so no change between the two is missed.
    let changes = state.devices.subscribe();
    let streaming = Streaming { state, device, changes, sent: None, sent_at: tokio::time::Instant::now() };
    let events = futures_util::stream::unfold(streaming, |mut s| async move {
        let signed = s.next().await?;
        let event = SseEvent::default().event("consent").id(signed.etag()).data(signed.jws);
        Some((Ok(event), s))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
