//! The preference centre over HTTP: links and sessions, CSRF, saving, withdrawing everything, receipts,
//! Global Privacy Control, languages; and subject tokens on the API (another subject's, forged, expired).

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of};

pub mod german;
mod page;

/// A response of the preference centre.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A browser-like client of one test server: no redirects followed, cookies kept by hand.
pub struct Visitor<'s> {
    pub server: &'s TestServer,
    pub client: reqwest::Client,
    pub cookies: Vec<(String, String)>,
    pub extra: Vec<(&'static str, &'static str)>,
}

impl<'s> Visitor<'s> {
    pub fn new(server: &'s TestServer) -> Self {
        let client = reqwest::Client::builder().no_proxy().redirect(Policy::none()).build().expect("client");
        Self { server, client, cookies: Vec::new(), extra: Vec::new() }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder, what: &str) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            request = request.header(COOKIE, jar);
        }
        for (k, v) in &self.extra {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().expect("cookie text");
            let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(k, _)| k != name);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), v.to_owned()));
            }
        }
        let text = response.text().await.expect("body");
        assert!(status < 500, "{what} answered {status}: {text}");
        Page { status, headers, text }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.server.base));
        self.send(request, &format!("GET {path}")).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let request = self
            .client
            .post(format!("{}{path}", self.server.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.send(request, &format!("POST {path}")).await
    }

    /// The body of a GET, as bytes (a download).
    pub async fn bytes(&mut self, path: &str) -> Vec<u8> {
        let mut request = self.client.get(format!("{}{path}", self.server.base));
        let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        request = request.header(COOKIE, jar);
        for (k, v) in &self.extra {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.expect("body").to_vec()
    }

    /// Opens a preference link: the token is swapped for a session cookie and the address cleaned.
    pub async fn open_link(&mut self, token: &str) -> Page {
        let first = self.get(&format!("/preferences?token={token}")).await;
        assert_eq!(first.status, 303, "a link redirects: {}", first.text);
        assert_eq!(first.header(LOCATION), "/preferences", "the token leaves the address bar");
        self.get("/preferences").await
    }
}

/// Mints a preference link's token for `subject`.
pub async fn mint(server: &TestServer, subject: &str, body: &Value) -> Value {
    server.post(&format!("/v1/subjects/{subject}/tokens"), ADMIN_KEY, body, 201).await
}

async fn token_for(server: &TestServer, subject: &str) -> String {
    str_of(&mint(server, subject, &json!({})).await["token"]).to_owned()
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("the page has a CSRF field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

/// The subject's ledger events, oldest first.
async fn history(server: &TestServer, subject: &str) -> Vec<Value> {
    let out = server.get(&format!("/v1/subjects/{subject}/consents/history"), ADMIN_KEY, 200).await;
    out["events"].as_array().expect("events").clone()
}

/// The API's current decision for a purpose and, optionally, a channel: (allowed, reason).
pub async fn decision(
    server: &TestServer,
    subject: &str,
    purpose: &str,
    channel: Option<&str>,
) -> (bool, String) {
    let out = server.get(&format!("/v1/subjects/{subject}/consents"), ADMIN_KEY, 200).await;
    let p = out["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == purpose)
        .unwrap_or_else(|| panic!("purpose {purpose} in {out}"))
        .clone();
    let d = match channel {
        None => p,
        Some(ch) => p["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .find(|c| c["channel"] == ch)
            .unwrap_or_else(|| panic!("channel {ch} in {out}"))
            .clone(),
    };
    (d["allowed"].as_bool().expect("allowed"), str_of(&d["reason"]).to_owned())
}

async fn link_becomes_a_session(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("marketing.direct", &["email"])).await;
    let token = token_for(&server, "alice").await;
    let mut v = Visitor::new(&server);
    let first = v.get(&format!("/preferences?token={token}")).await;
    assert_eq!((first.status, first.header(LOCATION)), (303, "/preferences"));
    let cookie = first.header(SET_COOKIE).to_owned();
    for part in ["consentry_session=", "HttpOnly", "SameSite=Lax", "Path=/preferences", "Max-Age="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag: {cookie}");
    assert_eq!(first.header("referrer-policy"), "no-referrer");

    let page = v.get("/preferences").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header(CONTENT_TYPE).starts_with("text/html"));
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(page.text.starts_with("<!doctype html><html lang=\"en\">"), "{}", &page.text[..80]);
    assert!(!page.text.contains("style=\""), "no inline style");
    assert_eq!(page.text.matches("<script").count(), 1, "one script");
    assert!(
        page.text.contains("<script src=\"/preferences/choices.js\" defer></script>"),
        "of our own, not inline"
    );
    // The granted channel is ticked, the others are not; a purpose's channels carry both data attributes.
    let email = "data-purpose=\"marketing.direct\" data-channel=\"email\" checked";
    assert!(page.text.contains(email), "email is ticked");
    assert!(page.text.contains("data-purpose=\"marketing.direct\" data-channel=\"sms\">"), "sms is not");
    assert!(page.text.contains("data-purpose=\"analytics\">"), "analytics is not ticked");
    let form_at = page.text.find("class=\"choices\"").expect("the choices form");
    let form = &page.text[form_at..form_at + page.text[form_at..].find("</form>").expect("its end")];
    assert_eq!(form.matches("type=\"submit\"").count(), 1, "one submit button");
    assert!(page.text.contains("action=\"/preferences/withdraw-all\""), "withdraw all: a form of its own");
    // The catalogue's own words: what for, categories, recipients, basis; and since when.
    for words in [
        "News and offers",
        "E-mail service provider",
        "Phone number",
        "Your consent",
        "Your choice holds since",
    ] {
        assert!(page.text.contains(words), "{words}");
    }
    // The stylesheet is ours and same-origin.
    let css = v.get("/preferences/style.css").await;
    assert!(css.status == 200 && css.header(CONTENT_TYPE).starts_with("text/css"));

    // No session at all: a clear page with a way forward, not a stack trace.
    let mut stranger = Visitor::new(&server);
    let page = stranger.get("/preferences").await;
    assert_eq!(page.status, 401);
    assert!(page.text.contains("This link no longer works") && page.text.contains("privacy@example.com"));
}

async fn cookies_are_secure_behind_https(backend: Backend) {
    let server =
        TestServer::with_config_on(backend, |c| c.public_url = Some("https://consent.example.com".into()))
            .await;
    let minted = mint(&server, "alice", &json!({"locale": "de"})).await;
    assert!(str_of(&minted["url"]).starts_with("https://consent.example.com/preferences?token="));
    let mut v = Visitor::new(&server);
    let first = v.get(&format!("/preferences?token={}", str_of(&minted["token"]))).await;
    assert_eq!(first.status, 303);
    assert!(first.header(SET_COOKIE).contains("; Secure"), "{}", first.header(SET_COOKIE));
    // The token's locale picks the language when nothing else does.
    let page = v.get("/preferences").await;
    assert!(page.text.starts_with("<!doctype html><html lang=\"de\">"));
    assert!(page.text.contains("https://consent.example.com/.well-known/jwks.json"));
}

async fn subject_tokens_only_open_their_own_subject(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("bob", &grant("analytics", &[])).await;
    let alice = token_for(&server, "alice").await;
    server.get("/v1/subjects/alice/consents", &alice, 200).await;
    let refused = server.get("/v1/subjects/bob/consents", &alice, 403).await;
    assert_eq!(refused["code"], "forbidden");
    server
        .post(
            "/v1/subjects/bob/consents",
            &alice,
            &json!({"changes": [{"purpose": "analytics", "action": "withdraw"}]}),
            403,
        )
        .await;
    server.get("/v1/keys", &alice, 403).await;
}

async fn forged_and_expired_links_get_a_clear_page(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let token = token_for(&server, "alice").await;
    // Forged: the signature of another payload.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = token_for(&server, "mallory").await;
    let other_parts: Vec<&str> = other.split('.').collect();
    parts[2] = other_parts[2];
    let forged = parts.join(".");
    for bad in [forged.as_str(), "not-a-token", "eyJhbGciOiJub25lIn0.e30."] {
        let mut v = Visitor::new(&server);
        let page = v.get(&format!("/preferences?token={bad}")).await;
        assert_eq!(page.status, 401, "{bad}");
        assert!(page.header(CONTENT_TYPE).starts_with("text/html"));
        assert!(page.text.contains("This link no longer works"), "{}", page.text);
        assert!(page.text.contains("privacy@example.com"), "a way forward");
        assert!(v.cookies.iter().all(|(k, _)| k != "consentry_session"), "no session from a bad link");
        server.get("/v1/subjects/alice/consents", bad, 401).await;
        // A forged session cookie is no better.
        let mut v = Visitor::new(&server);
        v.cookies.push(("consentry_session".into(), bad.to_owned()));
        assert_eq!(v.get("/preferences").await.status, 401);
    }
    // Expired: a token of the shortest lifetime (a minute), once it has passed; as a link and as a session.
    let short = mint(&server, "alice", &json!({"ttl": 60})).await;
    let short = str_of(&short["token"]).to_owned();
    let mut v = Visitor::new(&server);
    v.open_link(&short).await;
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    let page = v.get("/preferences").await;
    assert_eq!(page.status, 401);
    assert!(page.text.contains("This link has expired") && page.text.contains("privacy@example.com"));
    assert!(v.cookies.iter().all(|(k, _)| k != "consentry_session"), "the dead session is dropped");
    let page = Visitor::new(&server).get(&format!("/preferences?token={short}")).await;
    assert_eq!(page.status, 401);
    assert!(page.text.contains("This link has expired"));
    server.get("/v1/subjects/alice/consents", &short, 401).await;
}

async fn a_form_post_without_its_csrf_token_is_refused(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let token = token_for(&server, "alice").await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token).await;
    let csrf = csrf_of(&page.text);
    for fields in [
        vec![("p", "analytics")],
        vec![("p", "analytics"), ("csrf", "")],
        vec![("p", "analytics"), ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
    ] {
        let page = v.post_form("/preferences", &fields).await;
        assert_eq!(page.status, 403, "{fields:?}");
        assert!(page.text.contains("Please try again"), "{}", page.text);
    }
    let page = v.post_form("/preferences/withdraw-all", &[]).await;
    assert_eq!(page.status, 403);
    assert!(history(&server, "alice").await.is_empty(), "nothing recorded without the token");
    // Another session's token does not fit this one.
    let mut other = Visitor::new(&server);
    let other_csrf = csrf_of(&other.open_link(&token_for(&server, "bob").await).await.text);
    assert_ne!(other_csrf, csrf);
    assert_eq!(v.post_form("/preferences", &[("p", "analytics"), ("csrf", &other_csrf)]).await.status, 403);
    // Without a session, a post is a dead link, whatever it carries.
    let mut stranger = Visitor::new(&server);
    assert_eq!(stranger.post_form("/preferences", &[("csrf", &csrf)]).await.status, 401);
    // With the right token it goes through.
    let page = v.post_form("/preferences", &[("p", "analytics"), ("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(decision(&server, "alice", "analytics", None).await, (true, "granted".to_owned()));
}

async fn saving_records_only_the_changes_with_a_receipt(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("marketing.direct", &["email", "sms"])).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    let csrf = csrf_of(&page.text);
    // Untick e-mail, keep SMS, tick analytics.
    let page = v
        .post_form(
            "/preferences",
            &[
                ("csrf", &csrf),
                ("p", "marketing.direct"),
                ("c", "marketing.direct|sms"),
                ("p", "analytics"),
                ("v", "marketing.direct|1"),
                ("v", "analytics|1"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Your choices are saved.") && page.text.contains("What changed"));
    assert_eq!(
        decision(&server, "alice", "marketing.direct", Some("email")).await,
        (false, "withdrawn".to_owned())
    );
    assert_eq!(
        decision(&server, "alice", "marketing.direct", Some("sms")).await,
        (true, "granted".to_owned())
    );
    assert_eq!(decision(&server, "alice", "analytics", None).await, (true, "granted".to_owned()));
    let events = history(&server, "alice").await;
    assert_eq!(events.len(), 3, "one grant before, two changes now: {events:?}");
    for e in &events[1..] {
        assert_eq!(
            (e["actor"].as_str(), e["collection_point"].as_str()),
            (Some("subject"), Some("preference-centre"))
        );
        assert_eq!(e["notice_version"], 1);
    }
    // Parents and top-level purposes first: analytics, then the channel of marketing.direct.
    assert_eq!(
        (events[1]["notice"].as_str(), events[1]["action"].as_str()),
        (Some("analytics"), Some("grant"))
    );
    assert_eq!(
        (events[2]["notice"].as_str(), events[2]["action"].as_str()),
        (Some("marketing.direct"), Some("withdraw"))
    );
    assert_eq!(events[2]["channels"], json!(["email"]));
    // One receipt per notice, linked from the page and downloadable; it verifies as any receipt does.
    let at = page.text.find("/preferences/receipts/rcpt_").expect("a receipt link")
        + "/preferences/receipts/".len();
    let id = page.text[at..].split('"').next().expect("id").to_owned();
    let file = v.get(&format!("/preferences/receipts/{id}")).await;
    assert_eq!((file.status, file.header(CONTENT_TYPE)), (200, "application/jose"));
    let stored = server.get(&format!("/v1/receipts/{id}?format=jws"), ADMIN_KEY, 200).await;
    assert_eq!(stored["jws"], file.text.as_str());
    assert!(page.text.contains("/.well-known/jwks.json"), "how to verify");
    // Someone else's receipt is not there for this session.
    let bobs = server.post("/v1/subjects/bob/consents", ADMIN_KEY, &grant("analytics", &[]), 201).await;
    let bobs = str_of(&bobs["receipt"]["id"]).to_owned();
    assert_eq!(v.get(&format!("/preferences/receipts/{bobs}")).await.status, 404);
    assert_eq!(v.get("/preferences/receipts/rcpt_unknown").await.status, 404);

    // Saving the same choices again changes nothing.
    let page = v
        .post_form(
            "/preferences",
            &[
                ("csrf", &csrf),
                ("p", "marketing.direct"),
                ("c", "marketing.direct|sms"),
                ("p", "analytics"),
                ("c", "analytics|in_app"),
                ("c", "analytics|on_device"),
            ],
        )
        .await;
    assert!(page.text.contains("Nothing changed"), "{}", page.text);
    assert_eq!(history(&server, "alice").await.len(), 3);
    // The page shows the history and the receipts.
    let page = v.get("/preferences").await;
    assert!(
        page.text.contains("Withdrew") && page.text.contains("Preference centre") && page.text.contains(&id)
    );
}

async fn withdraw_all_is_one_click(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("marketing", &[])).await;
    server.record("alice", &grant("analytics", &[])).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    let csrf = csrf_of(&page.text);
    let page = v.post_form("/preferences/withdraw-all", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for purpose in
        ["marketing", "marketing.direct", "marketing.personalised_offers", "analytics", "third_party"]
    {
        assert!(!decision(&server, "alice", purpose, None).await.0, "{purpose} withdrawn");
    }
    // Two withdrawals (the parent covers its children), nothing for what was never granted.
    let events = history(&server, "alice").await;
    let withdrawn: Vec<&str> = events[2..].iter().map(|e| str_of(&e["purpose"])).collect();
    assert_eq!(withdrawn, ["marketing", "analytics"]);
    assert!(!page.text.contains(" checked"), "nothing ticked after withdrawing everything");
}

async fn global_privacy_control_is_recorded_once(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("third_party.sharing", &[])).await;
    assert!(decision(&server, "alice", "third_party.sharing", None).await.0);
    let mut v = Visitor::new(&server);
    v.extra.push(("sec-gpc", "1"));
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(page.text.contains("Global Privacy Control signal. We have recorded it"), "{}", page.text);
    let after_first = history(&server, "alice").await;
    let gpc: Vec<(&str, &str)> =
        after_first[1..].iter().map(|e| (str_of(&e["purpose"]), str_of(&e["actor"]))).collect();
    assert_eq!(gpc, [("third_party", "signal:gpc"), ("third_party.sharing", "signal:gpc")]);
    assert_eq!(
        decision(&server, "alice", "third_party.sharing", None).await,
        (false, "gpc_opt_out".to_owned())
    );
    let check = server.check("alice", "third_party.sharing", None).await;
    assert_eq!(check["allowed"], false);
    // Again: nothing new, and the page says the signal is honoured.
    let page = v.get("/preferences").await;
    assert!(page.text.contains("we honour it"), "{}", page.text);
    assert_eq!(history(&server, "alice").await.len(), after_first.len());

    // On the subject API, with a caller allowed to change the subject's consent: once too.
    let api = reqwest::Client::builder().no_proxy().build().expect("client");
    for _ in 0..2 {
        let r = api
            .get(format!("{}/v1/subjects/bob/consents", server.base))
            .bearer_auth(ADMIN_KEY)
            .header("sec-gpc", "1")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 200);
    }
    let bob = history(&server, "bob").await;
    assert_eq!(bob.len(), 2, "recorded once: {bob:?}");
    assert!(bob.iter().all(|e| e["actor"] == "signal:gpc" && e["action"] == "withdraw"));
    // Eight first requests at once: still recorded once.
    let requests = (0..8).map(|_| {
        api.get(format!("{}/v1/subjects/erin/consents", server.base))
            .bearer_auth(ADMIN_KEY)
            .header("sec-gpc", "1")
            .send()
    });
    for r in futures_join_all(requests).await {
        assert_eq!(r.expect("request").status().as_u16(), 200);
    }
    let erin = history(&server, "erin").await;
    assert_eq!(erin.len(), 2, "concurrent first requests record once: {erin:?}");
    // Without credentials the signal records nothing.
    let r = api
        .get(format!("{}/v1/subjects/carol/consents", server.base))
        .header("sec-gpc", "1")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    assert!(history(&server, "carol").await.is_empty());
    // Nor with someone else's subject token, nor with a key that may only read.
    let (_, reader) = server.create_key("reader", &["consent:read"]).await;
    for credential in [token_for(&server, "dave").await, reader] {
        let r = api
            .get(format!("{}/v1/subjects/carol/consents", server.base))
            .bearer_auth(&credential)
            .header("sec-gpc", "1")
            .send()
            .await
            .expect("request");
        assert!(matches!(r.status().as_u16(), 200 | 403), "{}", r.status());
    }
    assert!(history(&server, "carol").await.is_empty());
    // With carol's own token it is recorded.
    let carol = token_for(&server, "carol").await;
    let r = api
        .get(format!("{}/v1/subjects/carol/consents", server.base))
        .bearer_auth(&carol)
        .header("sec-gpc", "1")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(history(&server, "carol").await.len(), 2);

    let well_known: Value = api
        .get(format!("{}/.well-known/gpc.json", server.base))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(well_known["gpc"], true);
    assert!(well_known["lastUpdate"].as_str().is_some_and(|d| d.len() == 10), "{well_known}");
}

async fn my_data_is_shown_played_downloaded_and_deleted(backend: Backend) {
    use base64::Engine as _;
    let server = TestServer::start_on(backend).await;
    for subject in ["alice", "bob"] {
        server
            .record(
                subject,
                &json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]}),
            )
            .await;
    }
    let store = |subject: &str, category: &str, content_type: &str, bytes: &[u8]| {
        json!({
            "subject": subject, "category": category, "purpose": "analytics", "content_type": content_type,
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    };
    let sound = b"RIFF\x24\x00\x00\x00WAVEfmt ";
    let audio = server
        .post("/v1/records", ADMIN_KEY, &store("alice", "user.device.telemetry", "audio/wav", sound), 201)
        .await;
    let audio = str_of(&audio["id"]).to_owned();
    let json_record = server
        .post(
            "/v1/records",
            ADMIN_KEY,
            &store("alice", "user.behavior.purchase_history", "application/json", b"{\"a\":1}"),
            201,
        )
        .await;
    let json_record = str_of(&json_record["id"]).to_owned();
    let bobs = server
        .post("/v1/records", ADMIN_KEY, &store("bob", "user.device.telemetry", "text/plain", b"bob"), 201)
        .await;
    let bobs = str_of(&bobs["id"]).to_owned();

    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(page.text.contains("My data") && page.text.contains("Purchase history"));
    assert!(
        page.text
            .contains(&format!("<audio controls=\"\" preload=\"none\" src=\"/preferences/data/{audio}\">"))
    );
    assert!(page.text.contains(&format!(
        "href=\"/preferences/data/{json_record}\">View<span class=\"vh\"> Purchase history, "
    )));
    assert!(
        page.text.contains("download=\"\">Download<span class=\"vh\"> Device usage and diagnostics, "),
        "named"
    );
    assert!(!page.text.contains(&bobs));
    let csrf = csrf_of(&page.text);

    let played = v.get(&format!("/preferences/data/{audio}")).await;
    assert_eq!((played.status, played.header(CONTENT_TYPE)), (200, "audio/wav"));
    assert!(played.header("content-security-policy").contains("sandbox"));
    let viewed = v.get(&format!("/preferences/data/{json_record}")).await;
    assert_eq!(viewed.text, "{\"a\":1}");
    let file = v.get(&format!("/preferences/data/{json_record}?download=1")).await;
    assert!(file.header("content-disposition").starts_with("attachment"));
    assert_eq!(v.get(&format!("/preferences/data/{bobs}")).await.status, 404, "another person's record");
    assert_eq!(v.get("/preferences/data/rec_nonsense").await.status, 404);

    // Deleting needs the form's token, then takes one record, or a whole kind.
    assert_eq!(v.post_form(&format!("/preferences/data/{audio}/delete"), &[]).await.status, 403);
    let page = v.post_form(&format!("/preferences/data/{bobs}/delete"), &[("csrf", &csrf)]).await;
    assert!(page.text.contains("Deleted: 0"), "another person's record is not deleted");
    let page = v.post_form(&format!("/preferences/data/{audio}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Deleted: 1") && !page.text.contains(&audio));
    let page = v
        .post_form("/preferences/data/delete-category", &[("csrf", &csrf), ("category", "user.behavior")])
        .await;
    assert!(
        page.text.contains("Deleted: 1") && page.text.contains("We hold no stored data about you."),
        "{}",
        page.text
    );
    let left = server.get("/v1/subjects/alice/records", ADMIN_KEY, 200).await;
    assert!(left["records"].as_array().expect("records").is_empty());
    let bob_left = server.get("/v1/subjects/bob/records", ADMIN_KEY, 200).await;
    assert_eq!(bob_left["records"].as_array().expect("records").len(), 1, "bob's record untouched");
}

async fn devices_and_requests_from_the_page(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let pair = json!({"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.device.telemetry"], "purposes": ["analytics"]});
    let paired = server.post("/v1/subjects/alice/devices", ADMIN_KEY, &pair, 201).await;
    let device = str_of(&paired["id"]).to_owned();
    let other = server.post("/v1/subjects/bob/devices", ADMIN_KEY, &pair, 201).await;
    let other = str_of(&other["id"]).to_owned();
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(page.text.contains("My devices") && page.text.contains("Kitchen speaker"));
    assert!(page.text.contains("Device usage and diagnostics") && page.text.contains("Usage analytics"));
    assert!(page.text.contains("You have not made a request yet."));
    let csrf = csrf_of(&page.text);

    // Unpairing: the form's token is needed; another person's device is not found; then it is gone.
    assert_eq!(v.post_form(&format!("/preferences/devices/{device}/unpair"), &[]).await.status, 403);
    assert_eq!(
        v.post_form(&format!("/preferences/devices/{other}/unpair"), &[("csrf", &csrf)]).await.status,
        404
    );
    let page = v.post_form(&format!("/preferences/devices/{device}/unpair"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("The device is unpaired") && page.text.contains("No device is paired"));
    let left = server.get("/v1/subjects/alice/devices", ADMIN_KEY, 200).await;
    assert_eq!(left["devices"].as_array().map(Vec::len), Some(0), "{left}");
    let bobs = server.get("/v1/subjects/bob/devices", ADMIN_KEY, 200).await;
    assert_eq!(bobs["devices"].as_array().map(Vec::len), Some(1), "{bobs}");

    // "Get a copy of my data": an access request, its ZIP downloadable from the page.
    assert_eq!(v.post_form("/preferences/requests/access", &[]).await.status, 403);
    // Filed by a POST that redirects (303), so that reloading the page files nothing more.
    let filed = v.post_form("/preferences/requests/access", &[("csrf", &csrf)]).await;
    assert_eq!(filed.status, 303, "{}", filed.text);
    assert_eq!(filed.header(LOCATION), "/preferences?done=copy-requested#requests");
    let page = v.get("/preferences?done=copy-requested").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("We received your request") && page.text.contains("A copy of my data"));
    let at = page.text.find("/preferences/requests/req_").expect("an export link")
        + "/preferences/requests/".len();
    let id = page.text[at..].split('/').next().expect("id").to_owned();
    let zip = v.get(&format!("/preferences/requests/{id}/export")).await;
    assert_eq!((zip.status, zip.header(CONTENT_TYPE)), (200, "application/zip"));
    assert!(zip.text.starts_with("PK"), "a ZIP archive");
    let requests = server.get("/v1/requests?type=access", ADMIN_KEY, 200).await;
    assert!(requests.to_string().contains(&id));
    // Another person's export is not there for this session.
    let mut bob = Visitor::new(&server);
    bob.open_link(&token_for(&server, "bob").await).await;
    assert_eq!(bob.get(&format!("/preferences/requests/{id}/export")).await.status, 404);
}

async fn deleting_my_data_takes_a_confirmation(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("marketing.direct", &["email"])).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(
        page.text.contains("href=\"/preferences/erase\""),
        "a link to the confirmation, not a button that erases"
    );
    let confirm = v.get("/preferences/erase").await;
    assert_eq!(confirm.status, 200);
    for words in [
        "Delete all your data?",
        "the key that encrypted it is destroyed",
        "This cannot be undone.",
        "No, take me back",
    ] {
        assert!(confirm.text.contains(words), "{words}");
    }
    let csrf = csrf_of(&confirm.text);
    assert_eq!(v.post_form("/preferences/erase", &[("confirm", "yes")]).await.status, 403);
    assert_eq!(
        v.post_form("/preferences/erase", &[("csrf", &csrf)]).await.status,
        400,
        "not without the confirmation"
    );
    assert!(
        server.check("alice", "marketing.direct", Some("email")).await["allowed"] == true,
        "nothing happened yet"
    );
    let done = v.post_form("/preferences/erase", &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your data is deleted"));
    assert!(v.cookies.iter().all(|(k, _)| k != "consentry_session"), "the session ends");
    let check = server.check("alice", "marketing.direct", Some("email")).await;
    assert_eq!((check["allowed"].as_bool(), check["reason"].as_str()), (Some(false), Some("erased")));
    server.get("/v1/subjects/alice/consents", ADMIN_KEY, 410).await;
}

/// The subject of the visitor's session, read through the API with the session's own token.
async fn signed_in_as(server: &TestServer, v: &Visitor<'_>, subject: &str) -> bool {
    let (_, token) = v.cookies.iter().find(|(k, _)| k == "consentry_session").expect("a session");
    let path = format!("/v1/subjects/{subject}/consents");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let status = client.get(format!("{}{path}", server.base)).bearer_auth(token).send().await;
    status.expect("request").status() == 200
}

async fn another_persons_link_asks_before_switching(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (alice, bob) = (token_for(&server, "alice").await, token_for(&server, "bob").await);
    let mut v = Visitor::new(&server);
    v.open_link(&alice).await;
    // Login CSRF: a page sends alice's browser to a link of bob's. Her session stays, and she is asked.
    let page = v.get(&format!("/preferences?token={bob}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Someone else was signed in"), "{}", page.text);
    assert!(!page.text.contains("alice") && !page.text.contains("bob"), "the page names neither person");
    assert!(page.text.contains("action=\"/preferences/switch\""));
    assert!(signed_in_as(&server, &v, "alice").await, "the session is unchanged");
    let csrf = csrf_of(&page.text);
    // The switch is a form: without its token, with another link, or without the session it is refused.
    for fields in [vec![("token", bob.as_str())], vec![("token", bob.as_str()), ("csrf", "")]] {
        assert_eq!(v.post_form("/preferences/switch", &fields).await.status, 403);
    }
    let carol = token_for(&server, "carol").await;
    let fields = [("token", carol.as_str()), ("csrf", csrf.as_str())];
    assert_eq!(v.post_form("/preferences/switch", &fields).await.status, 403);
    let fields = [("token", bob.as_str()), ("csrf", csrf.as_str())];
    assert_eq!(Visitor::new(&server).post_form("/preferences/switch", &fields).await.status, 401);
    assert!(signed_in_as(&server, &v, "alice").await, "still alice");
    // Confirmed: bob's session.
    let page = v.post_form("/preferences/switch", &fields).await;
    assert_eq!((page.status, page.header(LOCATION)), (303, "/preferences"), "{}", page.text);
    assert!(signed_in_as(&server, &v, "bob").await, "now bob");
    assert_eq!(v.get("/preferences").await.status, 200);
    // The same person's link just continues, without asking.
    let again = token_for(&server, "bob").await;
    v.open_link(&again).await;
    assert!(signed_in_as(&server, &v, "bob").await);
    // In German too.
    v.extra.push((ACCEPT_LANGUAGE.as_str(), "de"));
    let page = v.get(&format!("/preferences?token={}", token_for(&server, "alice").await)).await;
    assert!(page.text.contains("Hier war jemand anderes angemeldet"), "{}", page.text);
}

async fn the_page_speaks_german(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let token = token_for(&server, "alice").await;
    let mut v = Visitor::new(&server);
    v.extra.push((ACCEPT_LANGUAGE.as_str(), "de-DE,de;q=0.9,en;q=0.5"));
    let page = v.open_link(&token).await;
    assert!(page.text.starts_with("<!doctype html><html lang=\"de\">"));
    for words in [
        "Ihre Datenschutz-Einstellungen",
        "Meine Auswahl",
        "Auswahl speichern",
        "Alle Einwilligungen widerrufen",
    ] {
        assert!(page.text.contains(words), "{words}");
    }
    assert!(!page.text.contains("Save my choices"));
    // The switch: English now, and it sticks.
    let page = v.get("/preferences?lang=en").await;
    assert!(
        page.text.starts_with("<!doctype html><html lang=\"en\">") && page.text.contains("Save my choices")
    );
    let page = v.get("/preferences").await;
    assert!(page.text.contains("<html lang=\"en\">"), "the chosen language is kept");
    // A dead link in German, too.
    let mut stranger = Visitor::new(&server);
    stranger.extra.push((ACCEPT_LANGUAGE.as_str(), "de"));
    let page = stranger.get("/preferences").await;
    assert_eq!(page.status, 401);
    assert!(page.text.contains("Dieser Link funktioniert nicht mehr"));
}

both_backends!(
    link_becomes_a_session,
    cookies_are_secure_behind_https,
    subject_tokens_only_open_their_own_subject,
    forged_and_expired_links_get_a_clear_page,
    a_form_post_without_its_csrf_token_is_refused,
    saving_records_only_the_changes_with_a_receipt,
    withdraw_all_is_one_click,
    global_privacy_control_is_recorded_once,
    the_page_speaks_german,
    my_data_is_shown_played_downloaded_and_deleted,
    devices_and_requests_from_the_page,
    deleting_my_data_takes_a_confirmation,
    another_persons_link_asks_before_switching,
);

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
