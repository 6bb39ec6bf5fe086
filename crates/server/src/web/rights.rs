//! The preference centre's "my devices" and "my requests": unpair a device; ask for a copy of one's data
//! and download it; delete one's data after a confirmation page that says plainly what will happen. Each
//! goes through the same code as the API (`devices::unpair_device`, `requests::submit`,
//! `requests::export_archive`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_core::Timestamp;

use super::i18n::fill;
use super::page::{self, Notice};
use super::session;
use super::{Stop, form, html, lang_for, render, stop_page};
use crate::auth::ACTOR_SUBJECT;
use crate::state::AppState;
use consentry_service::devices::unpair_device;
use consentry_service::requests::{RequestType, export_archive, submit};

/// `POST /preferences/devices/{id}/unpair`.
pub async fn unpair(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (token, caller, _) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    match unpair_device(&state, &caller.subject, &id, ACTOR_SUBJECT).await {
        Ok(true) => {}
        Ok(false) => return stop_page(&state, lang, Stop::NotFound),
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    }
    match render(&state, &headers, lang, &token, &caller.subject, Some(Notice::Unpaired)).await {
        Ok(r) => r,
        Err(stop) => stop_page(&state, lang, stop),
    }
}

/// `POST /preferences/requests/access`: "download my data" files an access request; its export is ready
/// at once and linked from the page.
pub async fn request_copy(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (token, caller, _) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let request = match submit(&state, &caller.subject, RequestType::Access, None, ACTOR_SUBJECT).await {
        Ok(r) => r,
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    let due = Timestamp::parse(&request.due_at).unwrap_or_else(Timestamp::now);
    match render(&state, &headers, lang, &token, &caller.subject, Some(Notice::Requested(due))).await {
        Ok(r) => r,
        Err(stop) => stop_page(&state, lang, stop),
    }
}

/// `GET /preferences/requests/{id}/export`: the ZIP of one of the person's own access requests.
pub async fn export(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_, caller) = match super::session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let request = match state.store.request(&id).await {
        Ok(Some(r)) if r.record.subject.as_ref() == Some(&caller.subject) => r,
        // Someone else's request is as absent as an unknown one.
        Ok(_) => return stop_page(&state, lang, Stop::NotFound),
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    let archive = match export_archive(&state, &request, Timestamp::now()).await {
        Ok(a) => a,
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    // Sent as it is written: an export is never held whole in memory.
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(archive)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"my-data-{id}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    session::harden(&mut response);
    response
}

/// `GET /preferences/erase`: what deleting one's data does, and the button that does it.
pub async fn confirm_erasure(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (token, caller) = match super::session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let csrf = session::csrf_token(&state, &token);
    html(StatusCode::OK, page::confirm_erasure(&state, lang, &csrf))
}

/// `POST /preferences/erase`: files an erasure request, which Consentry carries out at once; the session
/// ends with it.
pub async fn erase(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, caller, wanted) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    if !wanted.confirmed {
        return stop_page(&state, lang, Stop::Failed(StatusCode::BAD_REQUEST));
    }
    if let Err(e) = submit(&state, &caller.subject, RequestType::Erasure, None, ACTOR_SUBJECT).await {
        return stop_page(&state, lang, Stop::from(e));
    }
    let m = lang.messages();
    let body = fill(m.erased_body, "email", &state.config.controller.email);
    let mut response = html(StatusCode::OK, page::message(&state, lang, m.erased_title, &body, false));
    response.headers_mut().append(header::SET_COOKIE, session::clear_session(&state));
    response
}
