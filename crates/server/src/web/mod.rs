//! The preference centre: `/preferences`, server-rendered HTML for the person whose data it is.
//!
//! No front-end build: plain forms that work in any browser without script, one small stylesheet and one
//! small enhancing script served from the binary, a strict Content-Security-Policy. A link carrying a
//! subject token (`?token=`) is exchanged for a session cookie and the address is cleaned by a redirect
//! ([`session`]); forms carry a CSRF token. Words come from one message catalogue ([`i18n`]); markup is escaped by construction
//! ([`html`]). Saving records only what changed, through the API's own consent-recording code ([`save`]).
//! A `Sec-GPC: 1` request records the Global Privacy Control signal once ([`gpc`]).

pub mod data;
pub mod gpc;
pub mod html;
pub mod i18n;
pub mod page;
pub mod rights;
pub mod save;
pub mod session;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::vault::RecordFilter;
use serde::Deserialize;

use self::i18n::{Lang, fill};
use self::page::{GpcNote, Notice, Outcome, PageData};
use self::session::{LANG_COOKIE, PATH, SESSION_COOKIE};
use crate::auth::{SubjectCaller, TokenRejection, verify_subject_token};
use crate::error::{ApiError, Error};
use crate::state::AppState;

/// Most history events and log entries the page shows.
const SHOWN: u32 = 100;
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("choices.js");

/// The preference centre's routes (merged into the app's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show).post(submit))
        .route("/preferences/withdraw-all", post(withdraw_all))
        .route("/preferences/receipts/{id}", get(receipt))
        .route("/preferences/style.css", get(style))
        .route("/preferences/choices.js", get(script))
        .route("/preferences/data/{id}", get(data::payload))
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
    /// A form without a valid CSRF token (403).
    Csrf,
    NotFound,
    /// Anything else; the cause was logged where it happened.
    Failed(StatusCode),
}

impl From<consentry_store::StoreError> for Stop {
    fn from(e: consentry_store::StoreError) -> Self {
        Stop::from(Error::from(e))
    }
}

impl From<TokenRejection> for Stop {
    fn from(r: TokenRejection) -> Self {
        match r {
            TokenRejection::Invalid => Stop::Link,
            TokenRejection::Expired => Stop::Expired,
        }
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::from(e.0)
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthorized | Error::Forbidden(_) | Error::WrongPrincipal(_) => Stop::Link,
            Error::NotFound(_) => Stop::NotFound,
            // Other refusals keep their status (a 410 for an erased subject, a 422, ...); the page is generic.
            other => Stop::Failed(crate::error::status(other.kind())),
        }
    }
}

/// The language of this request before the session is known: `?lang=`, then the cookie.
fn chosen_lang(query: Option<&str>, headers: &HeaderMap) -> Option<Lang> {
    query.and_then(Lang::parse).or_else(|| session::cookie(headers, LANG_COOKIE).and_then(Lang::parse))
}

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
    let m = lang.messages();
    let (status, title, body, back) = match stop {
        Stop::Link | Stop::Expired => (
            StatusCode::UNAUTHORIZED,
            if matches!(stop, Stop::Expired) { m.link_expired_title } else { m.link_invalid_title },
            fill(m.link_invalid_body, "email", &state.config.controller.email),
            false,
        ),
        Stop::Csrf => (StatusCode::FORBIDDEN, m.csrf_title, m.csrf_body.to_owned(), true),
        Stop::NotFound => (StatusCode::NOT_FOUND, m.not_found_title, m.not_found_body.to_owned(), true),
        Stop::Failed(status) => (status, m.error_title, m.error_body.to_owned(), true),
    };
    let mut response = html(status, page::message(state, lang, title, &body, back));
    if status == StatusCode::UNAUTHORIZED {
        // A dead session cookie is dropped, so the next link starts clean.
        response.headers_mut().append(header::SET_COOKIE, session::clear_session(state));
    }
    response
}

/// The session of this request, verified.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<(String, SubjectCaller), Stop> {
    let token = session::cookie(headers, SESSION_COOKIE).ok_or(Stop::Link)?;
    let caller = verify_subject_token(state, token, Timestamp::now()).map_err(Stop::from)?;
    Ok((token.to_owned(), caller))
}

#[derive(Debug, Deserialize)]
struct ShowParams {
    token: Option<String>,
    lang: Option<String>,
}

/// `GET /preferences`: exchanges a link's token for a session, or shows the page of the session.
async fn show(State(state): State<AppState>, headers: HeaderMap, query: Query<ShowParams>) -> Response {
    let params = query.0;
    let lang_param = params.lang.as_deref();
    let set_lang = lang_param.and_then(Lang::parse).map(|l| session::lang_cookie(&state, l.code()));
    let mut response = match params.token.as_deref() {
        Some(token) => match verify_subject_token(&state, token, Timestamp::now()) {
            Ok(caller) => {
                let max_age = (caller.expires_at.micros() - Timestamp::now().micros()) / 1_000_000;
                let mut r = Redirect::to(PATH).into_response();
                // 303: the next request is a GET of the clean address, the token gone from the address bar.
                *r.status_mut() = StatusCode::SEE_OTHER;
                if let Some(cookie) = session::session_cookie(&state, token, max_age) {
                    r.headers_mut().append(header::SET_COOKIE, cookie);
                }
                session::harden(&mut r);
                r
            }
            Err(e) => stop_page(&state, lang_for(lang_param, &headers, None), Stop::from(e)),
        },
        None => match session(&state, &headers).await {
            Err(stop) => stop_page(&state, lang_for(lang_param, &headers, None), stop),
            Ok((token, caller)) => {
                let lang = lang_for(lang_param, &headers, Some(&caller));
                match render(&state, &headers, lang, &token, &caller.subject, None).await {
                    Ok(r) => r,
                    Err(stop) => stop_page(&state, lang, stop),
                }
            }
        },
    };
    if let Some(cookie) = set_lang {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The page for `subject`, after honouring a GPC signal, with the outcome of a save if there was one.
async fn render(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    token: &str,
    subject: &SubjectId,
    notice: Option<Notice>,
) -> Result<Response, Stop> {
    let gpc = if gpc::signalled(headers) {
        let recorded = gpc::honour(state, subject).await?;
        Some(if recorded.is_empty() { GpcNote::Honoured } else { GpcNote::Recorded(recorded) })
    } else {
        None
    };
    let view = state.catalog();
    let current = state.store.current(subject).await?;
    let history = newest_history(state, subject).await?;
    // Oldest first from the store; the page shows the newest.
    let mut receipts = state.store.subject_receipts(subject).await?;
    receipts.reverse();
    receipts.truncate(SHOWN as usize);
    let access = state.store.access_log(subject, None, SHOWN).await?;
    let checks = state.store.check_counts(subject).await?;
    let filter = RecordFilter { limit: SHOWN, ..RecordFilter::default() };
    let records = state.store.records(subject, &filter).await?;
    let devices = state.store.subject_devices(subject).await?;
    let mut requests = consentry_service::requests::subject_requests(state, subject).await?;
    requests.reverse();
    let data = PageData {
        lang,
        csrf: session::csrf_token(state, token),
        subject: subject.as_str().to_owned(),
        current,
        history,
        receipts,
        access,
        checks,
        gpc,
        notice,
        records,
        devices,
        requests,
    };
    Ok(html(StatusCode::OK, page::preferences(state, &view, &data)))
}

/// The subject's latest [`SHOWN`] ledger events, newest first.
async fn newest_history(state: &AppState, subject: &SubjectId) -> Result<Vec<consentry_core::Event>, Stop> {
    let mut after = 0;
    let mut events = Vec::new();
    loop {
        let page = state.store.history(subject, after, 1000).await?;
        let full = page.len() == 1000;
        let Some(last) = page.last() else { break };
        after = last.seq;
        events.extend(page);
        if events.len() > SHOWN as usize {
            events.drain(..events.len() - SHOWN as usize);
        }
        if !full {
            break;
        }
    }
    events.reverse();
    Ok(events)
}

/// A form post: the session, then the CSRF token, then the form.
async fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, SubjectCaller, save::Wanted), Stop> {
    let (token, caller) = session(state, headers).await?;
    let (wanted, csrf) = save::Wanted::parse(body);
    if !session::csrf_valid(state, &token, csrf.as_deref()) {
        return Err(Stop::Csrf);
    }
    Ok((token, caller, wanted))
}

async fn apply(state: &AppState, headers: &HeaderMap, body: &[u8], withdraw_everything: bool) -> Response {
    let fallback = lang_for(None, headers, None);
    let (token, caller, mut wanted) = match form(state, headers, body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(state, fallback, stop),
    };
    let lang = lang_for(None, headers, Some(&caller));
    if withdraw_everything {
        wanted.purposes.clear();
        wanted.channels.clear();
    }
    let view = state.catalog();
    let changed = save::plan(state, &view, &caller.subject, &wanted);
    let (receipts, records_deleted) =
        match save::record(state, &view, &caller.subject, &changed, &wanted.versions).await {
            Ok(r) => r,
            Err(e) => return stop_page(state, lang, Stop::from(e)),
        };
    let notice = Notice::Saved(Outcome { changed, receipts, records_deleted });
    match render(state, headers, lang, &token, &caller.subject, Some(notice)).await {
        Ok(r) => r,
        Err(stop) => stop_page(state, lang, stop),
    }
}

/// `POST /preferences`: save the choices.
async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    apply(&state, &headers, &body, false).await
}

/// `POST /preferences/withdraw-all`: one click withdraws every consent.
async fn withdraw_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    apply(&state, &headers, &body, true).await
}

/// `GET /preferences/receipts/{id}`: one of the person's own receipts, as a file.
async fn receipt(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let fallback = lang_for(None, &headers, None);
    let (_, caller) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, fallback, stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let found = match state.store.receipt(&id).await {
        Ok(found) => found,
        Err(e) => return stop_page(&state, lang, Stop::from(ApiError::from(e))),
    };
    // Someone else's receipt is as absent as an unknown one.
    let Some(found) = found.filter(|r| r.subject.as_ref() == Some(&caller.subject)) else {
        return stop_page(&state, lang, Stop::NotFound);
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
