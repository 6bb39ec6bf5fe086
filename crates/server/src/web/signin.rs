//! Signing in and out of the preference centre: opening a link, switching people, signing out everywhere.
//!
//! A link's token is exchanged once for a session of its own
//! ([`consentry_service::tokens::exchange_link`]): the link is spent in the shared store, so opening it a
//! second time, on any node, gets a page saying it was used (unless this browser already holds a session
//! for the same person: then it just continues). A link for another person than the session's never
//! replaces the session by itself (login CSRF): the person is asked first, on a page that names neither,
//! and the link is spent only when they confirm. "Sign out everywhere" revokes every token of the person
//! issued so far, this session's among them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use consentry_core::Timestamp;
use consentry_service::access::Reader;
use consentry_service::tokens::{self, Exchanged};

use super::form::Form;
use super::i18n::Lang;
use super::session::PATH;
use super::{Stop, form, html, lang_for, page, session, stop_page};
use crate::auth::{SubjectCaller, verify_subject_token};
use crate::state::AppState;

/// The page action of "sign out everywhere" in the person's access log.
const SIGN_OUT_ACTION: &str = "preferences: sign out everywhere";

/// `GET /preferences?token=…`: opens a link. A fresh link becomes a session; a spent one is refused,
/// unless this browser is signed in as the link's person; another person's link asks first.
pub(super) async fn open_link(
    state: &AppState,
    headers: &HeaderMap,
    lang_param: Option<&str>,
    link: &str,
) -> Response {
    let lang = lang_for(lang_param, headers, None);
    let caller = match verify_subject_token(state, link, Timestamp::now()).await {
        Ok(caller) => caller,
        Err(e) => return stop_page(state, lang, Stop::from(e)),
    };
    match session(state, headers).await {
        // A session for someone else stays until the person says otherwise (login CSRF): the page names
        // neither of them, and the link stays unspent until they confirm.
        Ok((current, signed_in)) if signed_in.subject != caller.subject => {
            let csrf = session::switch_token(state, &current, link);
            html(StatusCode::OK, page::confirm_switch(state, lang, &csrf, link))
        }
        // The same person: a fresh link renews the session, a spent one just continues with it.
        Ok(_) => match tokens::exchange_link(state, &caller).await {
            Ok(Exchanged::Session { token, expires_at }) => signed_in(state, &token, expires_at),
            Ok(Exchanged::Spent) => to_the_page(),
            Err(e) => stop_page(state, lang_for(lang_param, headers, Some(&caller)), Stop::from(e)),
        },
        Err(_) => exchange(state, lang_for(lang_param, headers, Some(&caller)), &caller).await,
    }
}

/// Exchanges a verified link for a session, or says it was used already.
async fn exchange(state: &AppState, lang: Lang, link: &SubjectCaller) -> Response {
    match tokens::exchange_link(state, link).await {
        Ok(Exchanged::Session { token, expires_at }) => signed_in(state, &token, expires_at),
        Ok(Exchanged::Spent) => stop_page(state, lang, Stop::Spent),
        Err(e) => stop_page(state, lang, Stop::from(e)),
    }
}

/// The clean address, a 303: the next request is a GET without the token in the address bar.
fn to_the_page() -> Response {
    let mut r = Redirect::to(PATH).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    super::session::harden(&mut r);
    r
}

/// The clean address with a session cookie holding `token` until `expires_at`.
fn signed_in(state: &AppState, token: &str, expires_at: Timestamp) -> Response {
    let max_age = (expires_at.micros() - Timestamp::now().micros()) / 1_000_000;
    let mut r = to_the_page();
    if let Some(cookie) = session::session_cookie(state, token, max_age) {
        r.headers_mut().append(header::SET_COOKIE, cookie);
    }
    r
}

/// `POST /preferences/switch`: the person confirmed replacing the session with the link's; the form's
/// token is bound to the current session and that link. The link is spent now.
pub(super) async fn switch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_for(None, &headers, None);
    let (current, _) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang, stop),
    };
    let csrf = Form::parse(&body).csrf;
    let link = form_urlencoded::parse(&body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    let Some(link) = link.filter(|l| session::switch_valid(&state, &current, l, csrf.as_deref())) else {
        return stop_page(&state, lang, Stop::Csrf);
    };
    match verify_subject_token(&state, &link, Timestamp::now()).await {
        Ok(caller) => exchange(&state, lang, &caller).await,
        Err(e) => stop_page(&state, lang, Stop::from(e)),
    }
}

/// `POST /preferences/sign-out`: revokes every token of the person issued until now (links, API tokens,
/// this and every other session), on every node, and ends this session.
pub(super) async fn sign_out_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, caller, _) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    if let Err(e) = tokens::revoke(&state, &caller.subject, Reader::person(SIGN_OUT_ACTION)).await {
        return stop_page(&state, lang, Stop::from(e));
    }
    let body = lang.t_with("signed-out-body", [("email", state.config.controller.email.as_str().into())]);
    let mut response =
        html(StatusCode::OK, page::message(&state, lang, &lang.t("signed-out-title"), &body, false));
    response.headers_mut().append(header::SET_COOKIE, session::clear_session(&state));
    response
}
