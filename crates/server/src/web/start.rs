//! "Manage my data": the preference centre's way in for a person without a link. They enter their e-mail
//! address, get a page saying to check their mail, enter the code they received, and are sent into their
//! preference centre with a fresh link (which [`super::signin`] exchanges for a session, as any link).
//!
//! The rules (the same answer for known and unknown addresses, hashed single-use codes, attempts, limits)
//! are [`consentry_service::verification`]'s; this module only renders and parses. There is no session
//! yet, so the forms are bound to a random value in a short-lived cookie of their own (HttpOnly,
//! SameSite=Strict, scoped to these pages): the CSRF token is an HMAC of it under the form key, compared
//! in constant time, so another site can neither start verifications from a visitor's browser nor sign
//! the visitor in as someone else with its own code (login CSRF).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_service::verification::{self, Client, ConfirmVerification, StartVerification};
use consentry_store::random_bytes;
use hmac::{Hmac, Mac};
use maud::html;
use sha2::Sha256;

use super::i18n::Lang;
use super::session::{self, PATH};
use super::{LangParam, Stop, html, keep_lang, lang_for, page, stop_page};
use crate::error::Error;
use crate::state::AppState;

/// The entry page.
pub const START: &str = "/preferences/start";
/// Where the code is posted.
pub const CONFIRM: &str = "/preferences/start/confirm";
/// The cookie binding the forms to this browser.
const START_COOKIE: &str = "consentry_start";
/// How long the binding lasts: longer than a code lives.
const START_MAX_AGE: u32 = 1800;

fn mac(state: &AppState, nonce: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(state.signing.form_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"start\0");
    mac.update(nonce.as_bytes());
    mac
}

fn csrf_token(state: &AppState, nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(state, nonce).finalize().into_bytes())
}

/// The binding of this request, if its form carries the token of its cookie (constant-time comparison).
fn bound<'h>(state: &AppState, headers: &'h HeaderMap, presented: Option<&str>) -> Option<&'h str> {
    let nonce = session::cookie(headers, START_COOKIE)?;
    let bytes = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())?;
    mac(state, nonce).verify_slice(&bytes).is_ok().then_some(nonce)
}

fn binding_cookie(state: &AppState, nonce: &str, max_age: u32) -> Option<HeaderValue> {
    let secure = if state.config.served_over_tls() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{START_COOKIE}={nonce}; Path={START}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// What the forms post, read from an `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
struct Fields {
    csrf: Option<String>,
    email: Option<String>,
    id: Option<String>,
    code: Option<String>,
}

impl Fields {
    fn parse(body: &[u8]) -> Self {
        let mut f = Fields::default();
        for (name, value) in form_urlencoded::parse(body).take(16) {
            let slot = match name.as_ref() {
                "csrf" => &mut f.csrf,
                "email" => &mut f.email,
                "id" => &mut f.id,
                "code" => &mut f.code,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        f
    }
}

/// A note above a form: what went wrong before, announced to screen readers.
struct Note(String);

/// The form asking for the e-mail address; `note` says what went wrong before.
fn email_page(state: &AppState, lang: Lang, csrf: &str, note: Option<Note>) -> String {
    let invalid = note.is_some();
    let content = html! {
        section class="card notice" {
            h1 { (lang.t("start-title")) }
            p { (lang.t("start-intro")) }
            @if let Some(Note(text)) = &note {
                p class="card info" role="alert" id="start-note" { (text) }
            }
            form method="post" action=(START) {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { (lang.t("start-email-label")) }
                @if invalid {
                    input id="email" name="email" type="email" autocomplete="email" required maxlength="254"
                        aria-invalid="true" aria-describedby="start-note";
                } @else {
                    input id="email" name="email" type="email" autocomplete="email" required maxlength="254";
                }
                div class="row" { button type="submit" { (lang.t("start-send")) } }
            }
        }
    };
    page::frame(state, lang, START, content)
}

/// The "check your mail" page, with the form for the code of verification `id`.
fn code_page(state: &AppState, lang: Lang, csrf: &str, id: &str, note: Option<Note>) -> String {
    let invalid = note.is_some();
    let content = html! {
        section class="card notice" {
            h1 { (lang.t("check-mail-title")) }
            p { (lang.t("check-mail-body")) }
            @if let Some(Note(text)) = &note {
                p class="card info" role="alert" id="start-note" { (text) }
            }
            form method="post" action=(CONFIRM) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="id" value=(id);
                label for="code" { (lang.t("start-code-label")) }
                @if invalid {
                    input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9]{6}" maxlength="6" required aria-invalid="true"
                        aria-describedby="start-note";
                } @else {
                    input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9]{6}" maxlength="6" required;
                }
                div class="row" {
                    button type="submit" { (lang.t("start-continue")) }
                    a href=(START) { (lang.t("start-again")) }
                }
            }
        }
    };
    page::frame(state, lang, START, content)
}

/// The page for a server that sends no mail.
fn unavailable(state: &AppState, lang: Lang) -> Response {
    let body =
        lang.t_with("start-unavailable-body", [("email", state.config.controller.email.as_str().into())]);
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page::message(state, lang, &lang.t("start-unavailable-title"), &body, false),
    )
}

/// The e-mail form with a fresh binding (a new random value in the cookie).
fn fresh_email_page(state: &AppState, lang: Lang, status: StatusCode, note: Option<Note>) -> Response {
    let nonce = match random_bytes::<16>() {
        Ok(b) => URL_SAFE_NO_PAD.encode(b),
        Err(_) => return stop_page(state, lang, Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR)),
    };
    let mut r = html(status, email_page(state, lang, &csrf_token(state, &nonce), note));
    if let Some(cookie) = binding_cookie(state, &nonce, START_MAX_AGE) {
        r.headers_mut().append(header::SET_COOKIE, cookie);
    }
    r
}

/// `GET /preferences/start`: the form asking for the e-mail address.
pub(super) async fn form(State(state): State<AppState>, headers: HeaderMap, q: Query<LangParam>) -> Response {
    let chosen = q.0.lang;
    let lang = lang_for(chosen.as_deref(), &headers, None);
    let mut r = if state.mailer.is_none() {
        unavailable(&state, lang)
    } else {
        fresh_email_page(&state, lang, StatusCode::OK, None)
    };
    keep_lang(&state, chosen.as_deref(), &mut r);
    r
}

/// `POST /preferences/start`: starts a verification of the address and asks for the code.
pub(super) async fn start(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = lang_for(None, &headers, None);
    let fields = Fields::parse(&body);
    let Some(nonce) = bound(&state, &headers, fields.csrf.as_deref()) else {
        return fresh_email_page(&state, lang, StatusCode::FORBIDDEN, Some(Note(lang.t("csrf-body"))));
    };
    let email = fields.email.unwrap_or_default();
    let request =
        StartVerification { identifier: format!("email:{email}"), lang: Some(lang.code().to_owned()) };
    let address = crate::client::ClientAddr::of(&extensions);
    let client = Client { address, accept_language: None };
    let csrf = csrf_token(&state, nonce);
    match verification::start(&state, request, client).await {
        Ok(started) => html(StatusCode::OK, code_page(&state, lang, &csrf, &started.id, None)),
        Err(Error::Validation { .. }) => {
            let note = Some(Note(lang.t("start-invalid-email")));
            html(StatusCode::UNPROCESSABLE_ENTITY, email_page(&state, lang, &csrf, note))
        }
        Err(e @ Error::TooManyVerifications(_)) => {
            let note = Some(Note(lang.t("start-too-many")));
            let mut r = html(StatusCode::TOO_MANY_REQUESTS, email_page(&state, lang, &csrf, note));
            if let Some(secs) = e.retry_after() {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
        Err(Error::VerificationUnavailable) => unavailable(&state, lang),
        Err(e) => stop_page(&state, lang, Stop::from(e)),
    }
}

/// `POST /preferences/start/confirm`: checks the code and sends the person into their preference centre.
pub(super) async fn confirm(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_for(None, &headers, None);
    let fields = Fields::parse(&body);
    let Some(nonce) = bound(&state, &headers, fields.csrf.as_deref()) else {
        return fresh_email_page(&state, lang, StatusCode::FORBIDDEN, Some(Note(lang.t("csrf-body"))));
    };
    let csrf = csrf_token(&state, nonce);
    let id = fields.id.unwrap_or_default();
    let code = ConfirmVerification { code: fields.code.unwrap_or_default() };
    match verification::confirm(&state, &id, code, Some(lang.code())).await {
        Ok(minted) => {
            // Into the preference centre by its link (on this server: the path alone), which opens once.
            let link = minted.url.find(PATH).map_or(minted.url.as_str(), |at| &minted.url[at..]);
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, link.to_owned())]).into_response();
            if let Some(cookie) = binding_cookie(&state, "", 0) {
                r.headers_mut().append(header::SET_COOKIE, cookie);
            }
            session::harden(&mut r);
            r
        }
        Err(Error::WrongCode { remaining }) => {
            let note = Note(lang.t_with("start-wrong-code", [("count", remaining.into())]));
            html(StatusCode::UNPROCESSABLE_ENTITY, code_page(&state, lang, &csrf, &id, Some(note)))
        }
        Err(Error::Validation { .. }) => {
            let note = Note(lang.t("start-code-format"));
            html(StatusCode::UNPROCESSABLE_ENTITY, code_page(&state, lang, &csrf, &id, Some(note)))
        }
        Err(Error::VerificationEnded | Error::NotFound(_)) => {
            fresh_email_page(&state, lang, StatusCode::GONE, Some(Note(lang.t("start-ended"))))
        }
        Err(e) => stop_page(&state, lang, Stop::from(e)),
    }
}
