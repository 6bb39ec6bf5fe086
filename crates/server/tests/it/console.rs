//! The operator console over HTTP: signing in with a key's console scope (and not without one), the
//! session cookie and the CSRF token, `console:read` seeing but not acting, keys made and revoked from
//! the console, and the overview's numbers and charts from the rollups.

use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};

use crate::preferences::{Page, Visitor, csrf_of};
use crate::utils::{Backend, TestServer};

mod audit;
pub(crate) mod browser;
mod catalogue;
mod charts;
mod deliveries;
mod overview;
mod people;
mod requests;
mod signin;

/// Signs `v` in with `key`; returns the overview page.
pub async fn sign_in(v: &mut Visitor<'_>, key: &str) -> Page {
    let form = v.get("/console/sign-in").await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = csrf_of(&form.text);
    let done = v.post_form("/console/sign-in", &[("csrf", &csrf), ("key", key)]).await;
    assert_eq!(done.status, 303, "signed in: {}", done.text);
    assert_eq!(done.header(LOCATION), "/console");
    let cookie = set_cookie(&done, "consentry_console").expect("a session cookie");
    for attribute in ["; Path=/console", "; HttpOnly", "; SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    let page = v.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csp = page.header(CONTENT_SECURITY_POLICY);
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    page
}

/// The `Set-Cookie` of `page` for cookie `name`.
pub fn set_cookie(page: &Page, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with(&prefix))
        .map(str::to_owned)
}

/// A server with a console key of each role: (server, read key, write key).
pub async fn server_with_keys(backend: Backend) -> (TestServer, String, String) {
    // Failed deliveries retry twice, quickly, then go dead (the deliveries page replays them).
    let server = TestServer::with_config_on(backend, |c| c.delivery_backoff_ms = vec![20, 20]).await;
    let (_, read) = server.create_key("privacy-viewer", &["console:read"]).await;
    let (_, write) = server.create_key("privacy-officer", &["console:write"]).await;
    (server, read, write)
}
