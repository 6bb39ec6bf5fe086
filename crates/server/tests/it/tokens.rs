//! Subject tokens: minted by a service, they reach only their own subject's routes; a link opens the
//! preference centre once and is no API credential; a service or the person revokes them all, on every
//! node at once.

use std::time::{Duration, Instant};

use consentry_client::DeviceConsent;
use consentry_client::verify::{JwsError, VerifyError, verify_receipt};
use consentry_core::proof::Jwks;
use reqwest::Method;
use reqwest::header::{ACCEPT_LANGUAGE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::preferences::{Visitor, csrf_of};
use crate::utils::{
    ADMIN_KEY, Backend, MINT_ROUTE, Node, TestServer, access_entries, assert_code, both_backends, entry,
    grant, str_of,
};

both_backends!(
    a_subject_token_reaches_only_its_own_routes,
    minting_is_validated_and_scoped,
    other_signed_statements_are_not_tokens_nor_tokens_them,
    a_link_opens_the_preference_centre_once,
    a_link_is_no_api_credential,
    revoking_refuses_every_token_issued_before,
    signing_out_everywhere_from_the_page,
);

/// The route of a revocation, as the access log names it.
const REVOKE_ROUTE: &str = "DELETE /v1/subjects/{subject}/tokens";

async fn mint(s: &TestServer, subject: &str) -> serde_json::Value {
    s.post(&format!("/v1/subjects/{subject}/tokens"), ADMIN_KEY, &json!({"ttl": 600, "locale": "de"}), 201)
        .await
}

/// The token a mint's preference-centre link carries.
fn link_token(minted: &serde_json::Value) -> String {
    let url = str_of(&minted["url"]);
    let (_, token) = url.split_once("/preferences?token=").unwrap_or_else(|| panic!("a link: {url}"));
    token.to_owned()
}

async fn a_subject_token_reaches_only_its_own_routes(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let minted = mint(&s, "kim").await;
    let token = str_of(&minted["token"]).to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    let link = link_token(&minted);
    assert_eq!(link.split('.').count(), 3, "the link carries a compact JWS: {link}");
    assert_ne!(link, token, "the link carries a token of its own, not the API token");
    assert!(str_of(&minted["expires_at"]).ends_with('Z'));

    // Kim changes her own consents and reads her own state, history and access log.
    let recorded =
        s.post("/v1/subjects/kim/consents", &token, &grant("marketing.direct", &["email"]), 201).await;
    assert_eq!(recorded["events"][0]["actor"], "subject", "{recorded}");
    let current = s.get("/v1/subjects/kim/consents", &token, 200).await;
    assert_eq!(current["subject"], "kim");
    s.get("/v1/subjects/kim/consents/history", &token, 200).await;
    s.get("/v1/subjects/kim/access-log", &token, 200).await;

    // Another subject's routes: 403.
    let p = s.get("/v1/subjects/alex/consents", &token, 403).await;
    assert_code(&p, "forbidden");
    let p = s.post("/v1/subjects/alex/consents", &token, &grant("marketing.direct", &["email"]), 403).await;
    assert_code(&p, "forbidden");
    // Service routes: 403, whatever the token.
    let p = s.post("/v1/check", &token, &json!({"subject": "kim", "purpose": "service"}), 403).await;
    assert_code(&p, "forbidden");
    s.get("/v1/keys", &token, 403).await;
    s.post("/v1/subjects/kim/tokens", &token, &json!({}), 403).await;

    // Forged: the payload of a token for alex under the signature of kim's.
    let alex = str_of(&mint(&s, "alex").await["token"]).to_owned();
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = alex.split('.').nth(1).expect("payload");
    let forged = parts.join(".");
    let p = s.get("/v1/subjects/alex/consents", &forged, 401).await;
    assert_code(&p, "unauthorized");
    s.get("/v1/subjects/kim/consents", "x.y.z", 401).await;
    // A receipt is signed by the same key but is not a credential.
    let receipt = s
        .get(&format!("/v1/receipts/{}?format=jws", str_of(&recorded["receipt"]["id"])), ADMIN_KEY, 200)
        .await;
    s.get("/v1/subjects/kim/consents", str_of(&receipt["jws"]), 401).await;

    // A service reading kim's data is logged (the receipt above, the consents now), and so are the minting
    // of her token and what she did with it (a consent change, then reading state and history); the subject
    // sees it all.
    s.get("/v1/subjects/kim/consents", ADMIN_KEY, 200).await;
    let mut entries = Vec::new();
    for _ in 0..100 {
        let log = s.get("/v1/subjects/kim/access-log", &token, 200).await;
        entries = log["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["route"] != "GET /v1/subjects/{subject}/access-log")
            .cloned()
            .collect();
        if entries.len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Newest first.
    let seen: Vec<(&str, &str)> =
        entries.iter().map(|e| (str_of(&e["caller"]), str_of(&e["route"]))).collect();
    assert_eq!(
        seen,
        [
            ("admin", "GET /v1/subjects/{subject}/consents"),
            ("admin", "GET /v1/receipts/{id}"),
            ("subject", "GET /v1/subjects/{subject}/consents/history"),
            ("subject", "GET /v1/subjects/{subject}/consents"),
            ("subject", "POST /v1/subjects/{subject}/consents"),
            ("admin", "POST /v1/subjects/{subject}/tokens"),
        ],
        "{entries:?}"
    );
}

async fn minting_is_validated_and_scoped(backend: Backend) {
    let s =
        TestServer::with_config_on(backend, |c| c.public_url = Some("https://consent.example.com".into()))
            .await;
    let minted = mint(&s, "kim").await;
    let expected = format!("https://consent.example.com/preferences?token={}", link_token(&minted));
    assert_eq!(str_of(&minted["url"]), expected, "links use the public URL");
    // No body: the defaults (one hour).
    let reply = s.send(Method::POST, "/v1/subjects/kim/tokens", ADMIN_KEY, None).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"ttl": 5}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"ttl": 99_999_999}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"locale": "<script>"}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"lifetime": 60}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/has%20space/tokens", ADMIN_KEY, &json!({}), 400).await;
    assert_code(&p, "invalid_subject");
    // Minting needs tokens:mint (consent:write is not enough: a token acts as the person).
    let (_, reader) = s.create_key("reader", &["consent:read"]).await;
    let p = s.post("/v1/subjects/kim/tokens", &reader, &json!({}), 403).await;
    assert_code(&p, "forbidden");
    let (_, writer) = s.create_key("writer", &["consent:write"]).await;
    let p = s.post("/v1/subjects/kim/tokens", &writer, &json!({}), 403).await;
    assert_code(&p, "forbidden");
    let (_, minter) = s.create_key("minter", &["tokens:mint"]).await;
    s.post("/v1/subjects/kim/tokens", &minter, &json!({}), 201).await;
}

/// RFC 8725 §3.11: every JWS the server signs names its kind in its `typ` header, and each verifier takes
/// only its own kind, so no genuine statement of one kind passes for another.
async fn other_signed_statements_are_not_tokens_nor_tokens_them(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let jwks: Jwks = serde_json::from_value(s.get("/.well-known/jwks.json", "", 200).await).expect("a JWKS");
    let token = str_of(&mint(&s, "kim").await["token"]).to_owned();
    let recorded =
        s.post("/v1/subjects/kim/consents", &token, &grant("analytics", &["on_device"]), 201).await;
    let receipt = crate::proof::receipt_jws(&s, &recorded).await;
    let paired = s
        .post(
            "/v1/subjects/kim/devices",
            ADMIN_KEY,
            &json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                    "purposes": ["analytics"]}),
            201,
        )
        .await;
    let reply = s.send(Method::GET, "/v1/device/consent", str_of(&paired["token"]), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let snapshot = reply.text.clone();
    DeviceConsent::verify(&snapshot, &jwks).expect("the snapshot verifies as a snapshot");
    verify_receipt(&receipt, &jwks).expect("the receipt verifies as a receipt");

    // A receipt or a snapshot presented as kim's subject token: 401.
    for jws in [&receipt, &snapshot] {
        assert_code(&s.get("/v1/subjects/kim/consents", jws, 401).await, "unauthorized");
    }
    // The token presented as a receipt, the token and the receipt as a snapshot: refused for their kind.
    let wrong_kind = |e: &JwsError| matches!(e, JwsError::WrongKind { .. });
    assert!(matches!(verify_receipt(&token, &jwks), Err(VerifyError::Jws(ref e)) if wrong_kind(e)));
    for jws in [&token, &receipt] {
        let err = DeviceConsent::verify(jws, &jwks).expect_err("not a snapshot");
        assert!(
            matches!(err, consentry_client::device::DeviceConsentError::Signature(ref e) if wrong_kind(e)),
            "{err}"
        );
    }
}

/// Waits (up to 5 s: the access log is written in batches) until `subject`'s access log holds an entry of
/// each (caller, route).
async fn logged(s: &TestServer, subject: &str, wanted: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = access_entries(s, subject, 1).await;
        if wanted.iter().all(|(caller, route)| log.contains(&entry(caller, route, "unspecified"))) {
            return;
        }
        assert!(Instant::now() < deadline, "{wanted:?} not all in the access log: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The session cookie a response sets, if any.
fn session_set(page: &crate::preferences::Page) -> Option<String> {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("consentry_session="))
        .map(str::to_owned)
}

/// A client that follows no redirects, like a browser's first request.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn a_link_opens_the_preference_centre_once(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let link = link_token(&mint(&s, "kim").await);
    let mut v = Visitor::new(&s);
    let first = v.get(&format!("/preferences?token={link}")).await;
    assert_eq!((first.status, first.header(LOCATION)), (303, "/preferences"), "{}", first.text);
    let cookie = session_set(&first).expect("a session cookie");
    let session = cookie.split(';').next().expect("value");
    assert_ne!(session, link, "the session is a token of its own, not the link's");
    let max_age = cookie.split("Max-Age=").nth(1).and_then(|r| r.split(';').next());
    let max_age: i64 = max_age.and_then(|n| n.parse().ok()).expect("Max-Age");
    assert!((1..=600).contains(&max_age), "no longer than the link's remaining life: {max_age}");
    assert_eq!(v.get("/preferences").await.status, 200);

    // The same link again in this browser, signed in as kim: it just continues with the session.
    let again = v.get(&format!("/preferences?token={link}")).await;
    assert_eq!((again.status, again.header(LOCATION)), (303, "/preferences"), "{}", again.text);
    assert_eq!(session_set(&again), None, "the session is kept");
    assert_eq!(v.get("/preferences").await.status, 200);
    // Anywhere else it is refused as a link, in the person's language (the link's locale is `de`).
    let mut other = Visitor::new(&s);
    let page = other.get(&format!("/preferences?token={link}")).await;
    assert_eq!(page.status, 410, "{}", page.text);
    assert!(page.text.contains("Dieser Link wurde schon verwendet"), "{}", page.text);
    assert!(page.text.contains("privacy@example.com"), "a way forward");
    assert!(other.cookies.iter().all(|(k, _)| k != "consentry_session"), "no session from a spent link");
    let page = other.get(&format!("/preferences?token={link}&lang=en")).await;
    assert!(page.text.contains("This link was already used"), "{}", page.text);

    // Of concurrent first openings of one link, exactly one becomes a session.
    let fresh = link_token(&mint(&s, "kim").await);
    let url = format!("{}/preferences?token={fresh}", s.base);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { plain_client().get(url).send().await.expect("request").status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task").as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 410, 410, 410, 410, 410]);

    // Login CSRF still asks first; a link spent meanwhile is refused on confirming, the session kept.
    let mut alice = Visitor::new(&s);
    alice.open_link(&link_token(&mint(&s, "alice").await)).await;
    let bob = link_token(&mint(&s, "bob").await);
    let ask = alice.get(&format!("/preferences?token={bob}")).await;
    assert_eq!(ask.status, 200, "{}", ask.text);
    assert!(ask.text.contains("action=\"/preferences/switch\""), "asked before switching");
    let csrf = csrf_of(&ask.text);
    Visitor::new(&s).open_link(&bob).await;
    let page = alice.post_form("/preferences/switch", &[("token", &bob), ("csrf", &csrf)]).await;
    assert_eq!(page.status, 410, "{}", page.text);
    assert_eq!(alice.get("/preferences").await.status, 200, "still signed in");
}

/// A link's token opens only the preference centre: the API refuses it everywhere, its person's own
/// routes included, before and after it was used; the mint's API token is the credential for the API.
async fn a_link_is_no_api_credential(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let minted = mint(&s, "kim").await;
    let (token, link) = (str_of(&minted["token"]).to_owned(), link_token(&minted));
    s.post("/v1/subjects/kim/consents", &token, &grant("analytics", &[]), 201).await;
    for opened in [false, true] {
        for path in ["/v1/subjects/kim/consents", "/v1/subjects/kim/access-log", "/v1/requests"] {
            assert_code(&s.get(path, &link, 401).await, "unauthorized");
        }
        let p = s.post("/v1/subjects/kim/consents", &link, &grant("analytics", &[]), 401).await;
        assert_code(&p, "unauthorized");
        assert_code(&s.delete("/v1/subjects/kim/tokens", &link, 401).await, "unauthorized");
        if !opened {
            Visitor::new(&s).open_link(&link).await;
        }
    }
    s.get("/v1/subjects/kim/consents", &token, 200).await;
}

async fn revoking_refuses_every_token_issued_before(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (_, minter) = s.create_key("minter", &["tokens:mint"]).await;
    let (_, writer) = s.create_key("writer", &["consent:write", "consent:read"]).await;
    let minted = mint(&s, "kim").await;
    let token = str_of(&minted["token"]).to_owned();
    let unopened = link_token(&mint(&s, "kim").await);
    let mut v = Visitor::new(&s);
    v.open_link(&link_token(&minted)).await;
    let alex = str_of(&mint(&s, "alex").await["token"]).to_owned();

    // Who may revoke: a key with tokens:mint (or admin) and the person's own token; nobody else.
    assert_code(&s.delete("/v1/subjects/kim/tokens", &writer, 403).await, "forbidden");
    assert_code(&s.delete("/v1/subjects/kim/tokens", &alex, 403).await, "forbidden");
    assert_code(&s.delete("/v1/subjects/kim/tokens", "", 401).await, "unauthorized");
    s.get("/v1/subjects/kim/consents", &token, 200).await;
    let reply = s.send(Method::DELETE, "/v1/subjects/kim/tokens", &minter, None).await;
    assert_eq!((reply.status, reply.text.as_str()), (204, ""));

    // Everything of kim's issued before, up to this very second: the API token, the session, an unopened
    // link.
    assert_code(&s.get("/v1/subjects/kim/consents", &token, 401).await, "unauthorized");
    let page = v.get("/preferences").await;
    assert_eq!(page.status, 401);
    assert!(page.text.contains("This link no longer works"), "{}", page.text);
    assert_eq!(Visitor::new(&s).get(&format!("/preferences?token={unopened}")).await.status, 401);
    // Nobody else's.
    s.get("/v1/subjects/alex/consents", &alex, 200).await;
    // A token minted right after (most likely in the revocation's own second) works, link and all.
    let fresh = mint(&s, "kim").await;
    let fresh_token = str_of(&fresh["token"]).to_owned();
    s.get("/v1/subjects/kim/consents", &fresh_token, 200).await;
    Visitor::new(&s).open_link(&link_token(&fresh)).await;
    // "Sign out everywhere" through the API with kim's own token: that token stops working too.
    s.delete("/v1/subjects/kim/tokens", &fresh_token, 204).await;
    assert_code(&s.get("/v1/subjects/kim/consents", &fresh_token, 401).await, "unauthorized");

    // Both revocations are in kim's access log, under whoever made them.
    logged(&s, "kim", &[("subject", REVOKE_ROUTE), ("minter", REVOKE_ROUTE), ("admin", MINT_ROUTE)]).await;

    // An erased subject's route is gone.
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "zed", "type": "erasure"}), 201).await;
    assert_code(&s.delete("/v1/subjects/zed/tokens", ADMIN_KEY, 410).await, "subject_erased");
}

async fn signing_out_everywhere_from_the_page(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let minted = mint(&s, "kim").await;
    let token = str_of(&minted["token"]).to_owned();
    let mut v = Visitor::new(&s);
    let page = v.open_link(&link_token(&minted)).await;
    // German, as the link's locale says; a form of its own with the session's CSRF token.
    assert!(page.text.contains("action=\"/preferences/sign-out\""), "{}", page.text);
    assert!(page.text.contains("<h2 id=\"sign-out\">Überall abmelden</h2>"), "{}", page.text);
    let csrf = csrf_of(&page.text);
    assert_eq!(v.post_form("/preferences/sign-out", &[]).await.status, 403, "not without the form's token");
    s.get("/v1/subjects/kim/consents", &token, 200).await;
    let copy = v.cookies.clone();
    let done = v.post_form("/preferences/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Sie sind überall abgemeldet"), "{}", done.text);
    assert!(v.cookies.iter().all(|(k, _)| k != "consentry_session"), "this session ends");
    // A copy of the old session and the API token minted with the link are refused.
    let mut stolen = Visitor::new(&s);
    stolen.cookies = copy;
    assert_eq!(stolen.get("/preferences").await.status, 401);
    assert_code(&s.get("/v1/subjects/kim/consents", &token, 401).await, "unauthorized");
    logged(&s, "kim", &[("subject", "preferences: sign out everywhere")]).await;

    // In English, too.
    let mut en = Visitor::new(&s);
    en.extra.push((ACCEPT_LANGUAGE.as_str(), "en"));
    let minted = s.post("/v1/subjects/lee/tokens", ADMIN_KEY, &json!({}), 201).await;
    let page = en.open_link(&link_token(&minted)).await;
    assert!(page.text.contains("<h2 id=\"sign-out\">Sign out everywhere</h2>"), "{}", page.text);
    let done = en.post_form("/preferences/sign-out", &[("csrf", &csrf_of(&page.text))]).await;
    assert!(done.text.contains("You are signed out everywhere"), "{}", done.text);
}

/// Two nodes on one database: a link spent on one is spent on the other, and a revocation made on one is
/// refused on the other within a second (at once, as every use reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_and_a_spent_link_hold_on_every_node() {
    let Some(db) = consentry_store::testing::TestDatabase::create().await else { return };
    let (a, b) = (Node::start(&db.url).await, Node::start(&db.url).await);
    let client = plain_client();
    let minted: serde_json::Value = client
        .post(format!("{}/v1/subjects/kim/tokens", a.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("JSON");
    let (token, link) = (str_of(&minted["token"]).to_owned(), link_token(&minted));
    let open = |node: &Node| client.get(format!("{}/preferences?token={link}", node.base)).send();
    assert_eq!(open(&a).await.expect("open").status(), 303);
    assert_eq!(open(&b).await.expect("open").status(), 410, "spent on the other node too");

    let consents = |node: &Node| {
        client.get(format!("{}/v1/subjects/kim/consents", node.base)).bearer_auth(&token).send()
    };
    assert_eq!(consents(&b).await.expect("read").status(), 200);
    let revoked = client
        .delete(format!("{}/v1/subjects/kim/tokens", a.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    let at = Instant::now();
    loop {
        let status = consents(&b).await.expect("read").status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(at.elapsed() < Duration::from_secs(1), "the revocation reached the other node within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
    b.stop().await;
}
