//! The preference centre's "my devices" and "my requests": unpair a device; ask for a copy of one's data
//! and download it; delete one's data after a confirmation page that says plainly what will happen. Each
//! is one use case of [`consentry_service::preferences`], which goes through the same code as the API.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use consentry_service::preferences;

use super::session::PATH;
use super::{
    DONE, LangParam, REQUESTED, Stop, form, html, keep_lang, lang_for, page, render, session, stop_page,
    visit,
};
use crate::state::AppState;

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
    let page = preferences::unpair(&state, &visit(&headers, &caller), &id).await;
    render(&state, lang, &token, page)
}

/// `POST /preferences/requests/access`: "get a copy of my data" files an access request; its export is
/// ready at once. The answer is a redirect (303) to the page, which says so and links the export, so that
/// reloading it files nothing more.
pub async fn request_copy(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, caller, _) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    match preferences::request_copy(&state, &visit(&headers, &caller)).await {
        Ok(_) => {
            let mut r = Redirect::to(&format!("{PATH}?{DONE}={REQUESTED}#requests")).into_response();
            session::harden(&mut r);
            r
        }
        Err(e) => stop_page(&state, lang, Stop::from(e)),
    }
}

/// `GET /preferences/requests/{id}/export`: the ZIP of one of the person's own access requests.
pub async fn export(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_, caller) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    // The archive's guide in the page's language.
    let lang = lang_for(None, &headers, Some(&caller));
    let guide = consentry_service::export::Language::best(Some(lang.code()));
    let archive = match preferences::export(&state, &caller.subject, &id, guide).await {
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

/// `GET /preferences/erase`: what deleting one's data does, and the button that does it; `?lang=`
/// switches its language (and keeps the choice).
pub async fn confirm_erasure(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<LangParam>,
) -> Response {
    let chosen = params.lang.as_deref();
    let mut response = match session(&state, &headers).await {
        Err(stop) => stop_page(&state, lang_for(chosen, &headers, None), stop),
        Ok((token, caller)) => {
            let lang = lang_for(chosen, &headers, Some(&caller));
            let csrf = session::csrf_token(&state, &token);
            html(StatusCode::OK, page::confirm_erasure(&state, lang, &csrf))
        }
    };
    keep_lang(&state, chosen, &mut response);
    response
}

/// `POST /preferences/erase`: files an erasure request, which Consentry carries out at once; the session
/// ends with it.
pub async fn erase(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, caller, form) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    if !form.confirmed {
        return stop_page(&state, lang, Stop::Failed(StatusCode::BAD_REQUEST));
    }
    if let Err(e) = preferences::erase(&state, &caller.subject).await {
        return stop_page(&state, lang, Stop::from(e));
    }
    let body = lang.t_with("erased-body", [("email", state.config.controller.email.as_str().into())]);
    let mut response =
        html(StatusCode::OK, page::message(&state, lang, &lang.t("erased-title"), &body, false));
    response.headers_mut().append(header::SET_COOKIE, session::clear_session(&state));
    response
}
