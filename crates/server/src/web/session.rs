//! The preference centre's session and form protection.
//!
//! The session cookie holds the subject token itself (an EdDSA-signed, short-lived credential for one
//! subject): nothing is kept on the server, any node can verify it, and it ends when the token does. It is
//! HttpOnly, SameSite=Lax, scoped to `/preferences`, and `Secure` when the public URL is https.
//!
//! Every form carries a CSRF token: HMAC-SHA256 of the session under a key derived from the signing keys
//! ([`consentry_service::signing::Signing::form_key`]), compared in constant time. SameSite=Lax already
//! keeps the cookie off cross-site POSTs; the token also stops same-site ones.
//!
//! A link for another person than the session's never replaces the session by itself (login CSRF: a page
//! could otherwise sign a visitor in as someone else): the person is asked first, and the switch is a form
//! whose token is bound to both the session and the link ([`switch_token`]).

use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::state::AppState;

pub const SESSION_COOKIE: &str = "consentry_session";
pub const LANG_COOKIE: &str = "consentry_lang";
pub const PATH: &str = "/preferences";
/// Where a person who came of age confirms the choices a guardian made for them.
pub const CONFIRM: &str = "/preferences/confirm-guardian-choices";
/// Where a guardian's children's pages are (`/{reference}`).
pub const CHILDREN: &str = "/preferences/children";

/// The strict policy of every preference-centre response: our own origin only, no inline script or style,
/// no framing, forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The value of cookie `name` in the request, if present.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn mac(state: &AppState, session: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(state.signing.form_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"csrf\0");
    mac.update(session.as_bytes());
    mac
}

/// The CSRF token for forms of `session`.
pub fn csrf_token(state: &AppState, session: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(state, session).finalize().into_bytes())
}

/// Whether `presented` is the CSRF token of `session` (constant-time comparison).
pub fn csrf_valid(state: &AppState, session: &str, presented: Option<&str>) -> bool {
    let Some(bytes) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else { return false };
    mac(state, session).verify_slice(&bytes).is_ok()
}

fn switch_mac(state: &AppState, session: &str, link: &str) -> Hmac<Sha256> {
    let mut mac = mac(state, session);
    mac.update(b"\0switch\0");
    mac.update(link.as_bytes());
    mac
}

/// The CSRF token of the form that replaces `session` with the one of the link token `link`: bound to both,
/// so that neither another page's token nor another link can be used with it.
pub fn switch_token(state: &AppState, session: &str, link: &str) -> String {
    URL_SAFE_NO_PAD.encode(switch_mac(state, session, link).finalize().into_bytes())
}

/// Whether `presented` is the [`switch_token`] of `session` and `link` (constant-time comparison).
pub fn switch_valid(state: &AppState, session: &str, link: &str, presented: Option<&str>) -> bool {
    let Some(bytes) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else { return false };
    switch_mac(state, session, link).verify_slice(&bytes).is_ok()
}

/// Whether cookies must be `Secure`: the service is reached over https.
fn secure(state: &AppState) -> bool {
    state.config.served_over_tls()
}

/// `Set-Cookie` for a session holding `token` for `max_age` seconds.
pub fn session_cookie(state: &AppState, token: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path={PATH}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.max(0)
    ))
    .ok()
}

/// `Set-Cookie` that ends the session.
pub fn clear_session(state: &AppState) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path={PATH}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("consentry_session=; Max-Age=0"))
}

/// `Set-Cookie` remembering the language chosen with the switch, for a year.
pub fn lang_cookie(state: &AppState, code: &'static str) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={code}; Path={PATH}; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("consentry_lang=en"))
}

/// The headers every preference-centre response carries.
pub fn harden(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The first visit's address holds the token: never send it on.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::cookie;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; consentry_session_x=2; consentry_session=tok"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("consentry_lang=de"));
        assert_eq!(cookie(&h, "consentry_session"), Some("tok"));
        assert_eq!(cookie(&h, "consentry_lang"), Some("de"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
