//! The operator console: `/console`, server-rendered HTML for the privacy team.
//!
//! Built like the preference centre: plain forms that work without script, the shared stylesheet plus a
//! few rules of its own, a strict Content-Security-Policy, Fluent messages in English and German (the
//! preference centre's loader, `console-` messages), maud templates that escape every value. Signing in
//! exchanges an API key with a console scope for a session ([`signin`], [`session`]); every form carries a
//! CSRF token; a `console:read` session sees every page and gets a 403 page for any action.
//!
//! Each route parses the request, checks the session (and a form's CSRF token, and for an action
//! `console:write`), calls one use case of [`consentry_service::console`] (or the service module the page
//! is about) and renders what it returns. Charts are SVG drawn on the server ([`charts`]).

mod catalogue;
mod charts;
mod deliveries;
mod extract;
mod keys;
mod overview;
mod page;
mod person;
mod person_acts;
mod requests;
mod session;
mod signin;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use consentry_service::console::{self as service, ConsoleCaller};

use self::session::{LANG_COOKIE, PATH};
use crate::state::AppState;
use crate::web::i18n::Lang;

/// The console's own rules, after the shared stylesheet.
const STYLE: &str = include_str!("console.css");

/// The console's routes (merged into the app's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(overview::show))
        .route("/console/sign-in", get(signin::form).post(signin::sign_in))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/keys", get(keys::show).post(keys::create))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/requests", get(requests::queue))
        .route("/console/requests/{id}", get(requests::show))
        .route("/console/requests/{id}/extend", post(requests::extend))
        .route("/console/requests/{id}/reject", post(requests::reject))
        .route("/console/requests/{id}/tasks/{destination}/complete", post(requests::complete_task))
        .route("/console/requests/{id}/export", get(requests::export))
        .route("/console/deliveries", get(deliveries::list))
        .route("/console/deliveries/{id}", get(deliveries::show))
        .route("/console/deliveries/{id}/replay", post(deliveries::replay))
        .route("/console/deliveries/{id}/dead-letters/{outbox_id}/replay", post(deliveries::replay_one))
        .route("/console/deliveries/{id}/pause", post(deliveries::pause))
        .route("/console/deliveries/{id}/resume", post(deliveries::resume))
        .route("/console/people", get(person::find).post(person::find_by_identifier))
        .route("/console/people/{subject}", get(person::show))
        .route("/console/people/{subject}/receipts/{id}", get(person_acts::verify))
        .route("/console/people/{subject}/link", post(person_acts::mint))
        .route("/console/people/{subject}/records/{id}", get(person_acts::record))
        .route("/console/people/{subject}/records/{id}/open", post(person_acts::open_record))
        .route("/console/catalogue", get(catalogue::show))
        .route("/console/catalogue/diff", post(catalogue::diff))
        .route("/console/catalogue/apply", post(catalogue::apply))
        .route("/console/console.css", get(style))
}

/// Why a console request stops, shown as a page.
#[derive(Debug)]
enum Stop {
    /// No session, or one that ended (401): sign in again.
    SignedOut,
    /// A form without a valid CSRF token (403).
    Csrf,
    /// A `console:read` session asked to act (403).
    ReadOnly,
    NotFound,
    /// Input the page cannot take (400), with the message id saying why.
    Invalid(&'static str),
    /// An action on something that changed meanwhile (409), with the message id saying what to do.
    Conflict(&'static str),
    /// Anything else; the cause was logged where it happened.
    Failed(StatusCode),
}

impl From<consentry_service::Error> for Stop {
    fn from(e: consentry_service::Error) -> Self {
        use consentry_service::Error;
        match e {
            Error::Unauthorized => Stop::SignedOut,
            Error::Forbidden(_) | Error::WrongPrincipal(_) => Stop::ReadOnly,
            Error::NotFound(_) => Stop::NotFound,
            other => Stop::Failed(crate::error::status(other.kind())),
        }
    }
}

/// A signed-in request: the session's token, who it is, and the page's language. As an extractor it is a
/// page's visit ([`extract`]): without a session the browser goes to the sign-in form.
struct Visit {
    token: String,
    caller: ConsoleCaller,
    lang: Lang,
    /// The language chosen with `?lang=` on this request, kept in a cookie by [`Visit::answer`].
    chosen: Option<Lang>,
}

impl Visit {
    /// The CSRF token of this session's forms.
    fn csrf(&self, state: &AppState) -> String {
        session::csrf_token(state, session::FORMS, &self.token)
    }

    /// The page saying why this request stopped.
    fn stop(&self, state: &AppState, stop: Stop) -> Response {
        stop_page(state, self.lang, Some(self), stop)
    }

    /// The page of `result`: the rendered page, or the page of its error.
    fn page(&self, state: &AppState, result: Result<String, Stop>) -> Response {
        let response = match result {
            Ok(body) => html(StatusCode::OK, body),
            Err(stop) => self.stop(state, stop),
        };
        self.answer(state, response)
    }

    /// `response`, keeping a language chosen with `?lang=` in the console's cookie.
    fn answer(&self, state: &AppState, mut response: Response) -> Response {
        keep_lang(state, self.chosen, &mut response);
        response
    }
}

/// The language of this request: `?lang=`, then the console's language cookie, then `Accept-Language`.
fn lang_for(query: Option<&str>, headers: &HeaderMap) -> Lang {
    query
        .and_then(Lang::parse)
        .or_else(|| session::cookie(headers, LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or_else(|| Lang::from_accept_language(headers))
}

/// The session of this request.
async fn visit(state: &AppState, headers: &HeaderMap, lang: Option<&str>) -> Result<Visit, Stop> {
    let token = session::token(headers).ok_or(Stop::SignedOut)?;
    let caller = service::session(state, token).await?;
    Ok(Visit {
        token: token.to_owned(),
        caller,
        lang: lang_for(lang, headers),
        chosen: lang.and_then(Lang::parse),
    })
}

/// Most fields read from one console form.
const MAX_FIELDS: usize = 64;

/// A submitted form's fields (`application/x-www-form-urlencoded`), the CSRF token taken out.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8], most: usize) -> Self {
        Fields(
            form_urlencoded::parse(body).take(most).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    crate::web::session::harden(&mut r);
    r
}

/// A 303 to `to` (after a form: the next request is a GET).
fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    crate::web::session::harden(&mut r);
    r
}

/// The page saying why a request stopped. Without a session a page asks to sign in.
fn stop_page(state: &AppState, lang: Lang, visit: Option<&Visit>, stop: Stop) -> Response {
    let (status, title, body) = match stop {
        Stop::SignedOut => (StatusCode::UNAUTHORIZED, "console-signed-out-title", "console-signed-out-body"),
        Stop::Csrf => (StatusCode::FORBIDDEN, "console-csrf-title", "console-csrf-body"),
        Stop::ReadOnly => (StatusCode::FORBIDDEN, "console-read-only-title", "console-read-only-body"),
        Stop::NotFound => (StatusCode::NOT_FOUND, "console-not-found-title", "console-not-found-body"),
        Stop::Invalid(why) => (StatusCode::BAD_REQUEST, "console-invalid-title", why),
        Stop::Conflict(why) => (StatusCode::CONFLICT, "console-conflict-title", why),
        Stop::Failed(status) => (status, "console-error-title", "console-error-body"),
    };
    let visit = visit.filter(|_| status != StatusCode::UNAUTHORIZED);
    let mut response = html(status, page::message(state, lang, visit, &lang.t(title), &lang.t(body)));
    if status == StatusCode::UNAUTHORIZED {
        session::set(state, &mut response, session::SESSION_COOKIE, "", Some(0));
    }
    response
}

/// Keeps a language chosen with `?lang=` in the console's cookie.
fn keep_lang(state: &AppState, chosen: Option<Lang>, response: &mut Response) {
    if let Some(lang) = chosen {
        session::set(state, response, LANG_COOKIE, lang.code(), Some(31_536_000));
    }
}

/// `GET /console/console.css`: the console's rules after the shared stylesheet.
async fn style() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        STYLE,
    )
        .into_response();
    crate::web::session::harden(&mut r);
    r
}
