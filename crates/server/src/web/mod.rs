//! The preference centre: `/preferences`, server-rendered HTML for the person whose data it is.
//!
//! No front-end build: plain forms that work in any browser without script, one small stylesheet and one
//! small enhancing script served from the binary, a strict Content-Security-Policy. A link carrying a
//! link token (`?token=`) is exchanged once for a session cookie and the address is cleaned by a redirect
//! ([`signin`], [`session`]); forms carry a CSRF token. Words come from Project Fluent message files ([`i18n`]);
//! markup from maud templates, which escape every value ([`page`], [`sections`]).
//!
//! Each route parses the request, checks the session (and a form's CSRF token), calls one use case of
//! [`consentry_service::preferences`] and renders what it returns. A `Sec-GPC: 1` request records the
//! Global Privacy Control signal once, in the service layer ([`gpc`]).

mod data;
mod family;
mod form;
pub mod gpc;
pub(crate) mod i18n;
mod names;
mod page;
mod rights;
mod sections;
pub(crate) mod session;
mod signin;
mod start;
#[cfg(test)]
mod style_tests;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use consentry_core::Timestamp;
use consentry_service::preferences::{self, Notice, Page, Visit};
use serde::Deserialize;

use self::form::Form;
use self::i18n::Lang;
use self::session::{LANG_COOKIE, PATH, SESSION_COOKIE};
use crate::auth::{SubjectCaller, TokenRejection, TokenUse, verify_subject_token};
use crate::error::Error;
use crate::state::AppState;

const STYLE: &str = preferences::STYLESHEET;
const SCRIPT: &str = include_str!("choices.js");

/// The preference centre's routes (merged into the app's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show).post(submit))
        .route(start::START, get(start::form).post(start::start))
        .route(start::CONFIRM, post(start::confirm))
        .route("/preferences/switch", post(signin::switch))
        .route("/preferences/sign-out", post(signin::sign_out_everywhere))
        .route("/preferences/withdraw-all", post(withdraw_all))
        .route("/preferences/object", post(object))
        .route(session::CONFIRM, post(family::confirm))
        .route("/preferences/children/{reference}", get(family::show_child).post(family::save_child))
        .route("/preferences/receipts/{id}", get(receipt))
        .route("/preferences/style.css", get(style))
        .route("/preferences/choices.js", get(script))
        .route("/preferences/data/{id}", get(data::payload))
        .route("/preferences/history/{id}/evidence", get(data::evidence))
        .route("/preferences/data/{id}/delete", post(data::delete_one))
        .route("/preferences/data/delete-category", post(data::delete_category))
        .route("/preferences/devices/{id}/unpair", post(rights::unpair))
        .route("/preferences/requests/access", post(rights::request_copy))
        .route("/preferences/requests/{id}/export", get(rights::export))
        .route("/preferences/erase", get(rights::confirm_erasure).post(rights::erase))
        .route("/.well-known/gpc.json", get(gpc::well_known))
}

/// Why a preference-centre request stops, shown as a page in the person's language.
#[derive(Debug)]
enum Stop {
    /// No session, or a link or session that is forged (401).
    Link,
    /// A genuine link or session past its time (401).
    Expired,
    /// A link that was already exchanged for a session (410).
    Spent,
    /// A form without a valid CSRF token (403).
    Csrf,
    NotFound,
    /// Anything else; the cause was logged where it happened.
    Failed(StatusCode),
}

impl From<TokenRejection> for Stop {
    fn from(r: TokenRejection) -> Self {
        match r {
            // A revoked link or session reads like any dead one: ask for a new link.
            TokenRejection::Invalid | TokenRejection::Revoked => Stop::Link,
            TokenRejection::Expired => Stop::Expired,
            TokenRejection::Failed => Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthorized | Error::Forbidden(_) | Error::WrongPrincipal(_) => Stop::Link,
            Error::NotFound(_) => Stop::NotFound,
            // Other refusals keep their status (a 410 for an erased subject, a 422, ...); the page is
            // generic.
            other => Stop::Failed(crate::error::status(other.kind())),
        }
    }
}

/// The language of this request before the session is known: `?lang=`, then the cookie.
fn chosen_lang(query: Option<&str>, headers: &HeaderMap) -> Option<Lang> {
    query.and_then(Lang::parse).or_else(|| session::cookie(headers, LANG_COOKIE).and_then(Lang::parse))
}

/// The language of this request: `?lang=`, the cookie, the token's locale, then `Accept-Language`.
fn lang_for(query: Option<&str>, headers: &HeaderMap, caller: Option<&SubjectCaller>) -> Lang {
    chosen_lang(query, headers)
        .or_else(|| caller.and_then(|c| c.locale.as_deref()).and_then(Lang::parse))
        .unwrap_or_else(|| Lang::from_accept_language(headers))
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    session::harden(&mut r);
    r
}

fn stop_page(state: &AppState, lang: Lang, stop: Stop) -> Response {
    let (status, title, body, back) = match stop {
        Stop::Link | Stop::Expired => (
            StatusCode::UNAUTHORIZED,
            lang.t(if matches!(stop, Stop::Expired) { "link-expired-title" } else { "link-invalid-title" }),
            lang.t_with("link-invalid-body", [("email", state.config.controller.email.as_str().into())]),
            false,
        ),
        Stop::Spent => (
            StatusCode::GONE,
            lang.t("link-used-title"),
            lang.t_with("link-used-body", [("email", state.config.controller.email.as_str().into())]),
            false,
        ),
        Stop::Csrf => (StatusCode::FORBIDDEN, lang.t("csrf-title"), lang.t("csrf-body"), true),
        Stop::NotFound => (StatusCode::NOT_FOUND, lang.t("not-found-title"), lang.t("not-found-body"), true),
        Stop::Failed(status) => (status, lang.t("error-title"), lang.t("error-body"), true),
    };
    // A dead or spent link: a person whose address the brand knows can get in again with a code.
    let way = if back {
        Some((PATH, "back"))
    } else {
        state.mailer.is_some().then_some((start::START, "start-title"))
    };
    let mut response = html(status, page::message_to(state, lang, &title, &body, way));
    if status == StatusCode::UNAUTHORIZED {
        // A dead session cookie is dropped, so the next link starts clean.
        response.headers_mut().append(header::SET_COOKIE, session::clear_session(state));
    }
    response
}

/// The session of this request, verified (revocation included). Only an API token is a session: a link's
/// token is exchanged, never kept.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<(String, SubjectCaller), Stop> {
    let token = session::cookie(headers, SESSION_COOKIE).ok_or(Stop::Link)?;
    let caller = verify_subject_token(state, token, Timestamp::now()).await.map_err(Stop::from)?;
    if caller.usage != TokenUse::Api {
        return Err(Stop::Link);
    }
    Ok((token.to_owned(), caller))
}

/// A form post: the session, then the CSRF token, then the form.
async fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, SubjectCaller, Form), Stop> {
    let (token, caller) = session(state, headers).await?;
    let form = Form::parse(body);
    if !session::csrf_valid(state, &token, form.csrf.as_deref()) {
        return Err(Stop::Csrf);
    }
    Ok((token, caller, form))
}

/// The person of the session on this request, and whether their browser sends Global Privacy Control.
fn visit(headers: &HeaderMap, caller: &SubjectCaller) -> Visit {
    Visit { subject: caller.subject.clone(), gpc: gpc::signalled(headers) }
}

/// The page a use case returned, with forms for the session of `token`; or the page saying why not.
fn render(state: &AppState, lang: Lang, token: &str, page: consentry_service::Result<Page>) -> Response {
    match page {
        Ok(page) => {
            let csrf = session::csrf_token(state, token);
            html(StatusCode::OK, page::preferences(state, lang, &csrf, &page))
        }
        Err(e) => stop_page(state, lang, Stop::from(e)),
    }
}

#[derive(Debug, Deserialize)]
struct ShowParams {
    token: Option<String>,
    lang: Option<String>,
    /// What a redirected form did ([`DONE`]).
    done: Option<String>,
}

/// The query parameter naming what a form that redirects did, and its values.
const DONE: &str = "done";
/// "Get a copy of my data" filed an access request.
const REQUESTED: &str = "copy-requested";

/// A page's `?lang=`, the language switch's link.
#[derive(Debug, Deserialize)]
pub struct LangParam {
    lang: Option<String>,
}

/// Keeps a language chosen with `?lang=` in its cookie.
fn keep_lang(state: &AppState, chosen: Option<&str>, response: &mut Response) {
    if let Some(cookie) = chosen.and_then(Lang::parse).map(|l| session::lang_cookie(state, l.code())) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// `GET /preferences`: exchanges a link's token for a session, or shows the page of the session.
async fn show(State(state): State<AppState>, headers: HeaderMap, query: Query<ShowParams>) -> Response {
    let params = query.0;
    let lang_param = params.lang.as_deref();
    let mut response = match params.token.as_deref() {
        Some(link) => signin::open_link(&state, &headers, lang_param, link).await,
        None => match session(&state, &headers).await {
            Err(stop) => stop_page(&state, lang_for(lang_param, &headers, None), stop),
            Ok((token, caller)) => {
                let lang = lang_for(lang_param, &headers, Some(&caller));
                let mut page = preferences::show(&state, &visit(&headers, &caller)).await;
                if let (Ok(page), Some(REQUESTED)) = (&mut page, params.done.as_deref()) {
                    // After "get a copy of my data": when the newest access request is due.
                    let due = page.requests.iter().find(|r| r.kind == "access").map(|r| r.due_at.as_str());
                    page.notice = due.and_then(Timestamp::parse).map(Notice::Requested);
                }
                render(&state, lang, &token, page)
            }
        },
    };
    keep_lang(&state, lang_param, &mut response);
    response
}

/// Saves the submitted choices; `withdraw_everything` saves them with nothing ticked.
async fn save(state: &AppState, headers: &HeaderMap, body: &[u8], withdraw_everything: bool) -> Response {
    let (token, caller, form) = match form(state, headers, body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(state, lang_for(None, headers, None), stop),
    };
    let lang = lang_for(None, headers, Some(&caller));
    let mut choices = form.choices;
    if withdraw_everything {
        choices.purposes.clear();
        choices.channels.clear();
    }
    let page = preferences::save(state, &visit(headers, &caller), &choices).await;
    render(state, lang, &token, page)
}

/// `POST /preferences`: save the choices.
async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    save(&state, &headers, &body, false).await
}

/// `POST /preferences/withdraw-all`: one click withdraws every consent.
async fn withdraw_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    save(&state, &headers, &body, true).await
}

/// `POST /preferences/object`: objects to the purpose the form names (one based on legitimate interest or a
/// public task).
async fn object(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (token, caller, form) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let Some(purpose) = form.purpose else {
        return stop_page(&state, lang, Stop::Failed(StatusCode::BAD_REQUEST));
    };
    let page = preferences::object(&state, &visit(&headers, &caller), &purpose).await;
    render(&state, lang, &token, page)
}

/// `GET /preferences/receipts/{id}`: one of the person's own receipts, as a file.
async fn receipt(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_, caller) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let found = match preferences::receipt(&state, &caller.subject, &id).await {
        Ok(found) => found,
        Err(e) => return stop_page(&state, lang_for(None, &headers, Some(&caller)), Stop::from(e)),
    };
    let file = format!("attachment; filename=\"{}.jws\"", found.id.replace(['"', '\\'], ""));
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/jose".to_owned()), (header::CONTENT_DISPOSITION, file)],
        found.jws,
    )
        .into_response();
    session::harden(&mut r);
    r
}

/// `GET /preferences/choices.js`: the one small script that enhances the form (the page works without it).
async fn script() -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response();
    session::harden(&mut r);
    r
}

/// `GET /preferences/style.css`: our one stylesheet.
async fn style() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        STYLE,
    )
        .into_response();
    session::harden(&mut r);
    r
}
