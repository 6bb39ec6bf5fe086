//! Signing in and out, roles, CSRF, and keys made and revoked from the console.

use reqwest::header::LOCATION;

use super::{server_with_keys, set_cookie, sign_in};
use crate::preferences::{Visitor, csrf_of};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, str_of};

async fn only_a_key_with_a_console_scope_signs_in(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    let (_, checker) = server.create_key("checker", &["check", "consent:read"]).await;
    let mut v = Visitor::new(&server);
    let away = v.get("/console").await;
    assert_eq!((away.status, away.header(LOCATION)), (303, "/console/sign-in"), "no session: sign in first");

    let form = v.get("/console/sign-in").await;
    assert!(form.text.contains("name=\"csrf\""));
    let no_csrf = v.post_form("/console/sign-in", &[("key", &read)]).await;
    assert_eq!(no_csrf.status, 403, "the sign-in form is bound to its cookie");
    // Each form answered comes with a fresh binding.
    let csrf = csrf_of(&no_csrf.text);
    let unknown = v.post_form("/console/sign-in", &[("csrf", &csrf), ("key", "csk_not-a-key")]).await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.text.contains("That key was not recognised"), "{}", unknown.text);
    let csrf = csrf_of(&unknown.text);
    let refused = v.post_form("/console/sign-in", &[("csrf", &csrf), ("key", &checker)]).await;
    assert_eq!(refused.status, 403, "a key without a console scope: {}", refused.text);
    assert!(refused.text.contains("has no console scope"), "{}", refused.text);
    assert!(v.cookies.iter().all(|(k, _)| k != "consentry_console"), "no session");

    let page = sign_in(&mut v, &read).await;
    assert!(page.text.contains("privacy-viewer · can look"), "{}", page.text);
    // The admin key holds every scope, the console's among them.
    let mut admin = Visitor::new(&server);
    assert!(sign_in(&mut admin, ADMIN_KEY).await.text.contains("can act"));
}

async fn console_read_looks_but_cannot_act(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let keys = v.get("/console/keys").await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert!(keys.text.contains("privacy-officer"), "the keys are listed: {}", keys.text);
    assert!(!keys.text.contains("method=\"post\" action=\"/console/keys"), "no form to act with");
    // A value the page cannot read is the console's own page, in the reader's language.
    for (path, says) in [
        ("/console/keys?before=soon", "the page cannot read"),
        ("/console/people/alice?history_before=-1&lang=de", "die Seite nicht lesen kann"),
        ("/console/catalogue?done=x", "the page cannot read"),
    ] {
        let bad = v.get(path).await;
        assert_eq!(bad.status, 400, "{path}: {}", bad.text);
        assert!(bad.text.contains("<html") && bad.text.contains(says), "{path}: {}", bad.text);
    }
    let csrf = csrf_of(&keys.text);
    let refused = v.post_form("/console/keys", &[("csrf", &csrf), ("name", "x"), ("scope", "check")]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("Your key may only look"), "{}", refused.text);
    let forged = v.post_form("/console/keys", &[("csrf", "forged"), ("name", "x"), ("scope", "check")]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.text.contains("This form has expired"), "{}", forged.text);
    let names: Vec<String> = server.get("/v1/keys", ADMIN_KEY, 200).await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| str_of(&k["name"]).to_owned())
        .collect();
    assert!(!names.contains(&"x".to_owned()), "nothing was made: {names:?}");
}

async fn keys_are_made_shown_once_and_revoked_from_the_console(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;
    let keys = officer.get("/console/keys").await;
    let csrf = csrf_of(&keys.text);
    // A console:write key gives only scopes it holds itself.
    let too_much =
        officer.post_form("/console/keys", &[("csrf", &csrf), ("name", "root"), ("scope", "admin")]).await;
    assert_eq!(too_much.status, 400, "{}", too_much.text);
    let made = officer
        .post_form("/console/keys", &[("csrf", &csrf), ("name", "auditor"), ("scope", "console:read")])
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let at = made.text.find("<code id=\"new-key\">").expect("the secret is shown") + 19;
    let secret = made.text[at..].split('<').next().expect("secret").to_owned();
    let mut auditor = Visitor::new(&server);
    sign_in(&mut auditor, &secret).await;
    let again = officer.get("/console/keys").await;
    assert!(!again.text.contains(&secret), "shown once");

    // Revoking the viewer's key ends the viewer's session at once.
    let listed = server.get("/v1/keys", ADMIN_KEY, 200).await;
    let id = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "privacy-viewer")
        .map(|k| str_of(&k["id"]).to_owned())
        .expect("the viewer's key");
    let revoked = officer.post_form(&format!("/console/keys/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!((revoked.status, revoked.header(LOCATION)), (303, "/console/keys?done=revoked"));
    let ended = viewer.get("/console").await;
    assert_eq!(ended.status, 401, "{}", ended.text);
    assert!(ended.text.contains("Your console session has ended"), "{}", ended.text);

    // The ledger's verification runs from the page.
    let verified = officer.get("/console/keys?verify=1").await;
    assert!(verified.text.contains("The ledger is intact"), "{}", verified.text);
}

async fn signing_out_ends_the_session_everywhere(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    let mut v = Visitor::new(&server);
    let page = sign_in(&mut v, &read).await;
    let session = v.cookies.clone();
    let out = v.post_form("/console/sign-out", &[("csrf", &csrf_of(&page.text))]).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert!(out.text.contains("You are signed out"), "{}", out.text);
    let cleared = set_cookie(&out, "consentry_console").expect("the cookie is cleared");
    assert!(cleared.starts_with("consentry_console=; Path=/console; Max-Age=0"), "{cleared}");
    // The old cookie, replayed, is refused: the session is gone from the store.
    let mut thief = Visitor::new(&server);
    thief.cookies = session;
    assert_eq!(thief.get("/console").await.status, 401);
    // German, on request and remembered.
    let german = v.get("/console/sign-in?lang=de").await;
    assert!(german.text.contains("Bei der Konsole anmelden"), "{}", german.text);
    assert!(v.get("/console/sign-in").await.text.contains("<html lang=\"de\">"));
}

async fn cookies_are_secure_behind_https(backend: Backend) {
    let server =
        TestServer::with_config_on(backend, |c| c.public_url = Some("https://consent.example.com".into()))
            .await;
    let mut v = Visitor::new(&server);
    let form = v.get("/console/sign-in").await;
    let login = set_cookie(&form, "consentry_console_login").expect("the sign-in form's cookie");
    assert!(login.contains("; Secure"), "{login}");
    let csrf = csrf_of(&form.text);
    let done = v.post_form("/console/sign-in", &[("csrf", &csrf), ("key", crate::utils::ADMIN_KEY)]).await;
    assert_eq!(done.status, 303);
    let session = set_cookie(&done, "consentry_console").expect("session");
    assert!(session.contains("; Secure") && session.contains("SameSite=Strict"), "{session}");
}

both_backends!(
    only_a_key_with_a_console_scope_signs_in,
    console_read_looks_but_cannot_act,
    keys_are_made_shown_once_and_revoked_from_the_console,
    signing_out_ends_the_session_everywhere,
    cookies_are_secure_behind_https,
);
