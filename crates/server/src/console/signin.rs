//! Signing in to the console with an API key, and out again.
//!
//! The form posts the key once; the key is exchanged for a session ([`consentry_service::console::sign_in`])
//! and never kept by the browser. A key that is unknown or revoked gets the form again with a 401 (which
//! counts towards the failed-authentication limit of the client's address, like a wrong API key); a key
//! without a console scope a 403. Signing out ends the session in the store, on every node.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_service::Error;
use consentry_service::console as service;
use consentry_store::random_bytes;

use super::session::{self, LOGIN, LOGIN_COOKIE, SESSION_COOKIE};
use super::{Fields, Stop, html, keep_lang, lang_for, page, see_other, stop_page, visit};
use crate::state::AppState;
use crate::web::i18n::Lang;

/// How long the sign-in form stays valid: an hour.
const LOGIN_MAX_AGE: u32 = 3600;

#[derive(Debug, serde::Deserialize)]
pub(super) struct LangParam {
    lang: Option<String>,
}

/// The sign-in form with a fresh login binding; `problem` is the message id of what went wrong before.
fn sign_in_page(state: &AppState, lang: Lang, status: StatusCode, problem: Option<&str>) -> Response {
    let nonce = match random_bytes::<16>() {
        Ok(b) => URL_SAFE_NO_PAD.encode(b),
        Err(_) => return stop_page(state, lang, None, Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR)),
    };
    let csrf = session::csrf_token(state, LOGIN, &nonce);
    let mut r = html(status, page::sign_in(state, lang, &csrf, problem.map(|p| lang.t(p)).as_deref()));
    session::set(state, &mut r, LOGIN_COOKIE, &nonce, Some(LOGIN_MAX_AGE));
    r
}

/// `GET /console/sign-in`: the form (or, signed in already, the overview).
pub(super) async fn form(State(state): State<AppState>, headers: HeaderMap, q: Query<LangParam>) -> Response {
    let chosen = q.0.lang;
    if visit(&state, &headers, None).await.is_ok() {
        return see_other(super::PATH);
    }
    let mut r = sign_in_page(&state, lang_for(chosen.as_deref(), &headers), StatusCode::OK, None);
    keep_lang(&state, chosen.as_deref().and_then(Lang::parse), &mut r);
    r
}

/// `POST /console/sign-in`: exchanges the key for a session.
pub(super) async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_for(None, &headers);
    let fields = Fields::parse(&body, 8);
    let bound = session::cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|nonce| session::csrf_valid(&state, LOGIN, nonce, fields.get("csrf")));
    if !bound {
        return sign_in_page(&state, lang, StatusCode::FORBIDDEN, Some("console-sign-in-expired"));
    }
    match service::sign_in(&state, fields.get("key").unwrap_or("")).await {
        Ok(signed_in) => {
            let mut r = see_other(super::PATH);
            session::set(&state, &mut r, SESSION_COOKIE, &signed_in.token, None);
            session::set(&state, &mut r, LOGIN_COOKIE, "", Some(0));
            r
        }
        Err(Error::Unauthorized) => {
            sign_in_page(&state, lang, StatusCode::UNAUTHORIZED, Some("console-sign-in-unknown-key"))
        }
        Err(Error::Forbidden(_)) => {
            sign_in_page(&state, lang, StatusCode::FORBIDDEN, Some("console-sign-in-no-scope"))
        }
        Err(e) => stop_page(&state, lang, None, Stop::from(e)),
    }
}

/// `POST /console/sign-out`: ends the session (a `console:read` session may, too).
pub(super) async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_for(None, &headers);
    let visit = match visit(&state, &headers, None).await {
        Ok(v) => v,
        Err(stop) => return stop_page(&state, lang, None, stop),
    };
    let csrf = form_urlencoded::parse(&body).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    if !session::csrf_valid(&state, session::FORMS, &visit.token, csrf.as_deref()) {
        return stop_page(&state, lang, Some(&visit), Stop::Csrf);
    }
    if let Err(e) = service::sign_out(&state, &visit.caller, &visit.token).await {
        return stop_page(&state, lang, Some(&visit), Stop::from(e));
    }
    let mut r = sign_in_page(&state, lang, StatusCode::OK, Some("console-signed-out-note"));
    session::set(&state, &mut r, SESSION_COOKIE, "", Some(0));
    r
}
