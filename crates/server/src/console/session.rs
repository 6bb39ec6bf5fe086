//! The console's cookies and form protection.
//!
//! The session cookie holds the console session's token (its hash is what the store keeps): HttpOnly,
//! SameSite=Strict, scoped to `/console`, `Secure` when the public URL is https, and without `Max-Age`,
//! so it ends with the browser; the server ends it after eight idle hours. Every form carries a CSRF token:
//! HMAC-SHA256 of the session token under the form key derived from the signing keys, compared in
//! constant time. The sign-in form, before there is a session, is bound the same way to a random value in a
//! short-lived cookie of its own, so another site cannot sign a browser in with its key (login CSRF).

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderMap};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::state::AppState;
pub use crate::web::session::cookie;

pub const PATH: &str = "/console";
pub const SESSION_COOKIE: &str = "consentry_console";
pub const LOGIN_COOKIE: &str = "consentry_console_login";
pub const LANG_COOKIE: &str = "consentry_console_lang";

fn mac(state: &AppState, purpose: &[u8], value: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(state.signing.form_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"console\0");
    mac.update(purpose);
    mac.update(b"\0");
    mac.update(value.as_bytes());
    mac
}

/// The CSRF token for forms of the session `token` (or, `purpose` = `login`, of the sign-in form's cookie).
pub fn csrf_token(state: &AppState, purpose: &[u8], value: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(state, purpose, value).finalize().into_bytes())
}

/// Whether `presented` is [`csrf_token`] of `purpose` and `value` (constant-time comparison).
pub fn csrf_valid(state: &AppState, purpose: &[u8], value: &str, presented: Option<&str>) -> bool {
    let Some(bytes) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else { return false };
    mac(state, purpose, value).verify_slice(&bytes).is_ok()
}

/// The forms of a signed-in session.
pub const FORMS: &[u8] = b"session";
/// The sign-in form.
pub const LOGIN: &[u8] = b"login";

fn cookie_value(state: &AppState, name: &str, value: &str, max_age: Option<u32>) -> Option<HeaderValue> {
    let secure = if state.config.served_over_tls() { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path={PATH}{age}; HttpOnly; SameSite=Strict{secure}"))
        .ok()
}

/// Adds `Set-Cookie` for cookie `name` (ended when `max_age` is 0; a browser-session cookie when none).
pub fn set(state: &AppState, response: &mut Response, name: &str, value: &str, max_age: Option<u32>) {
    if let Some(v) = cookie_value(state, name, value, max_age) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The session token of this request, if it carries one.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}
