//! Verified requesters end to end, with a real SMTP server on loopback: a known address gets a code that
//! confirms once into a subject token limited to the person; an unknown address gets the same answer and
//! no mail; five wrong codes end a verification; starts are limited per address and per client; without
//! a mail server starting is 503; and the preference centre's "Manage my data" pages walk the same way.
//! Phone numbers get their code from a local SMS gateway (signed JSON), within the egress rules, tried
//! again (same `webhook-id`) while the gateway fails for now and given up on after a few attempts; without
//! a gateway they are 503.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

use crate::smtp::SmtpSink;
use crate::utils::{ADMIN_KEY, Backend, NO_KEY, TestServer, assert_code, both_backends, str_of};

both_backends!(
    a_phone_number_gets_its_code_by_sms,
    a_failing_sms_gateway_is_tried_again_with_the_same_id,
    an_sms_gateway_that_keeps_failing_is_given_up_on,
    a_known_address_gets_a_code_that_confirms_once,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    five_wrong_codes_end_a_verification,
    starts_are_limited_per_address_and_per_client,
    the_preference_centre_walks_from_address_to_choices
);

const FROM: &str = "Example Brand <privacy@example.com>";

async fn server(backend: Backend, sink: &SmtpSink) -> TestServer {
    let url = sink.url();
    TestServer::with_config_on(backend, move |c| {
        c.smtp_url = Some(url);
        c.smtp_from = Some(FROM.to_owned());
    })
    .await
}

async fn attach(s: &TestServer, subject: &str, email: &str) {
    let body = json!({"type": "email", "value": email});
    s.post(&format!("/v1/subjects/{subject}/identifiers"), ADMIN_KEY, &body, 201).await;
}

async fn start(s: &TestServer, identifier: &str) -> String {
    let out = s.post("/v1/verifications", NO_KEY, &json!({"identifier": identifier}), 202).await;
    assert_eq!(out.as_object().map(|o| o.len()), Some(1), "only an id: {out}");
    str_of(&out["id"]).to_owned()
}

async fn confirm(s: &TestServer, id: &str, code: &str, status: u16) -> Value {
    s.post(&format!("/v1/verifications/{id}/confirm"), NO_KEY, &json!({"code": code}), status).await
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    if code == "000000" { "000001".to_owned() } else { "000000".to_owned() }
}

async fn a_known_address_gets_a_code_that_confirms_once(backend: Backend) {
    let Some(sink) = SmtpSink::start() else { return };
    let s = server(backend, &sink).await;
    attach(&s, "vera", "vera@example.com").await;
    attach(&s, "otto", "otto@example.com").await;

    let id = start(&s, "email:  Vera@Example.COM ").await;
    assert!(id.starts_with("ver_"), "{id}");
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.to, "vera@example.com", "to the normalised address");
    assert!(mail.text.contains("privacy@example.com"), "from the configured sender: {}", mail.text);
    assert!(mail.text.contains("Example Brand"), "names the controller");
    let code = mail.code();

    let wrong = confirm(&s, &id, &other_than(&code), 422).await;
    assert_code(&wrong, "wrong_code");
    assert_eq!(wrong["remaining_attempts"], 4);
    let token = confirm(&s, &id, &code, 200).await;
    let bearer = str_of(&token["token"]).to_owned();
    assert!(str_of(&token["url"]).contains("/preferences?token="), "{token}");
    assert!(token["expires_at"].is_string());

    // A subject token for vera: her own routes only, no service route, nobody else's data.
    s.get("/v1/subjects/vera/consents", &bearer, 200).await;
    s.get("/v1/subjects/vera/identifiers", &bearer, 200).await;
    s.post("/v1/requests", &bearer, &json!({"subject": "vera", "type": "access"}), 201).await;
    assert_code(&s.get("/v1/subjects/otto/consents", &bearer, 403).await, "forbidden");
    assert_code(&s.get("/v1/subjects/otto/identifiers", &bearer, 403).await, "forbidden");
    assert_code(&s.get("/v1/keys", &bearer, 403).await, "forbidden");
    assert_code(&s.get("/v1/subjects?identifier=email:otto@example.com", &bearer, 403).await, "forbidden");
    // The confirmation is in vera's access log, as her own doing.
    let log = s.get("/v1/subjects/vera/access-log", ADMIN_KEY, 200).await;
    assert!(log.to_string().contains("POST /v1/verifications/{id}/confirm"), "{log}");

    // Once only: the right code again, or any code, finds it ended.
    assert_code(&confirm(&s, &id, &code, 410).await, "verification_ended");
    // Malformed codes and ids are refused before anything is counted.
    assert_code(&confirm(&s, &id, "12345", 422).await, "validation_failed");
    assert_code(&confirm(&s, "ver_00000000000000000000000000000000", &code, 404).await, "not_found");
    assert_code(&confirm(&s, "nonsense", &code, 404).await, "not_found");
    // Only e-mail addresses (and phone numbers, with an SMS gateway) are verified, and they must be
    // addresses.
    for bad in ["account:vera", "email:not-an-address", "vera@example.com"] {
        let out = s.post("/v1/verifications", NO_KEY, &json!({"identifier": bad}), 422).await;
        assert_code(&out, "validation_failed");
    }
    let body = json!({"identifier": "email:vera@example.com", "lang": "00"});
    assert_code(&s.post("/v1/verifications", NO_KEY, &body, 422).await, "validation_failed");
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail(backend: Backend) {
    let Some(sink) = SmtpSink::start() else { return };
    let s = server(backend, &sink).await;
    attach(&s, "vera", "vera@example.com").await;

    let unknown = start(&s, "email:nobody@example.com").await;
    let known = start(&s, "email:vera@example.com").await;
    assert_eq!((unknown.len(), &unknown[..4]), (known.len(), "ver_"), "the same shape");
    let mails = sink.wait_for(1).await;
    // Give a stray mail to the unknown address time to arrive: none does.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_now = sink.mails();
    assert_eq!(mails_now.len(), 1, "one mail, to the known address: {mails_now:?}");
    assert_eq!(mails[0].to, "vera@example.com");

    // An unknown address's verification answers every code as a known one answers a wrong code.
    let code = mails[0].code();
    let answer = confirm(&s, &unknown, &code, 422).await;
    assert_code(&answer, "wrong_code");
    assert_eq!(answer["remaining_attempts"], 4);
    let wrong_known = confirm(&s, &known, &other_than(&code), 422).await;
    assert_eq!(answer["detail"], wrong_known["detail"]);
}

async fn five_wrong_codes_end_a_verification(backend: Backend) {
    let Some(sink) = SmtpSink::start() else { return };
    let s = server(backend, &sink).await;
    attach(&s, "vera", "vera@example.com").await;
    let id = start(&s, "email:vera@example.com").await;
    let code = sink.wait_for(1).await[0].code();
    let wrong = other_than(&code);
    for left in (0..5).rev() {
        let out = confirm(&s, &id, &wrong, 422).await;
        assert_code(&out, "wrong_code");
        assert_eq!(out["remaining_attempts"], left);
    }
    // Dead: even the right code no longer confirms it.
    assert_code(&confirm(&s, &id, &code, 410).await, "verification_ended");
    // A new verification gets a new code that works.
    let again = start(&s, "email:vera@example.com").await;
    let fresh = sink.wait_for(2).await[1].code();
    confirm(&s, &again, &fresh, 200).await;
}

async fn starts_are_limited_per_address_and_per_client(backend: Backend) {
    let Some(sink) = SmtpSink::start() else { return };
    let url = sink.url();
    let s = TestServer::with_config_on(backend, move |c| {
        c.smtp_url = Some(url);
        c.smtp_from = Some(FROM.to_owned());
        c.verification_per_identifier_per_hour = 2;
        c.verification_per_address_per_hour = 4;
    })
    .await;
    attach(&s, "vera", "vera@example.com").await;
    start(&s, "email:vera@example.com").await;
    start(&s, "email:vera@example.com").await;
    let limited = s
        .send(
            reqwest::Method::POST,
            "/v1/verifications",
            NO_KEY,
            Some(("application/json", br#"{"identifier": "email:VERA@example.com"}"#.to_vec())),
        )
        .await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_code(&limited.json(), "too_many_verifications");
    let wait: u64 = limited.headers[RETRY_AFTER].to_str().expect("text").parse().expect("seconds");
    assert!((3500..=3600).contains(&wait), "until the first start leaves the hour: {wait}");
    // The same limit for an address nobody holds: it tells nothing.
    start(&s, "email:nobody@example.com").await;
    start(&s, "email:nobody@example.com").await;
    let out =
        s.post("/v1/verifications", NO_KEY, &json!({"identifier": "email:nobody@example.com"}), 429).await;
    assert_code(&out, "too_many_verifications");
    // This client has made 4 starts: another address is refused too.
    let out =
        s.post("/v1/verifications", NO_KEY, &json!({"identifier": "email:third@example.com"}), 429).await;
    assert_code(&out, "too_many_verifications");
    assert_eq!(sink.wait_for(2).await.len(), 2, "two codes sent, to vera");
}

#[tokio::test]
async fn without_a_mail_server_starting_is_unavailable() {
    let s = TestServer::with_config(|_| {}).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/verifications", s.base))
        .json(&json!({"identifier": "email:vera@example.com"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503);
    let problem: Value = response.json().await.expect("a problem");
    assert_code(&problem, "verification_unavailable");
    // The entry page says so too, instead of a form that cannot work.
    let page = reqwest::get(format!("{}/preferences/start", s.base)).await.expect("page");
    assert_eq!(page.status().as_u16(), 503);
    assert!(page.text().await.expect("text").contains("cannot send codes"));
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    })
}

/// The value of the hidden field `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no field {name} in {page}")) + marker.len();
    page[at..].split('"').next().expect("a value").to_owned()
}

async fn the_preference_centre_walks_from_address_to_choices(backend: Backend) {
    let Some(sink) = SmtpSink::start() else { return };
    let s = server(backend, &sink).await;
    attach(&s, "vera", "vera@example.com").await;
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let form = |path: &str, cookie: &str, body: String| {
        client
            .post(format!("{}{path}", s.base))
            .header(COOKIE, cookie.to_owned())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-language", "de")
            .body(body)
            .send()
    };

    // A dead link's page leads here.
    let dead = client.get(format!("{}/preferences?token=a.b.c", s.base)).send().await.expect("dead link");
    assert_eq!(dead.status().as_u16(), 401);
    assert!(dead.text().await.expect("text").contains("href=\"/preferences/start\""), "the way in");

    let entry = client
        .get(format!("{}/preferences/start", s.base))
        .header("accept-language", "de")
        .send()
        .await
        .expect("entry");
    assert_eq!(entry.status().as_u16(), 200);
    let binding = set_cookie(&entry, "consentry_start").expect("the form's binding cookie");
    let page = entry.text().await.expect("text");
    assert!(page.contains("Meine Daten verwalten") && page.contains("type=\"email\""), "{page}");
    let csrf = hidden(&page, "csrf");
    let cookie = format!("consentry_start={binding}");

    // Without the binding (another site's form), nothing starts.
    let forged =
        form("/preferences/start", "", format!("csrf={csrf}&email=vera%40example.com")).await.expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    let forged =
        form("/preferences/start", &cookie, "csrf=x&email=vera%40example.com".into()).await.expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    assert!(sink.mails().is_empty());

    let bad = form("/preferences/start", &cookie, format!("csrf={csrf}&email=vera")).await.expect("post");
    assert_eq!(bad.status().as_u16(), 422);
    assert!(bad.text().await.expect("text").contains("aria-invalid=\"true\""));

    let sent = form("/preferences/start", &cookie, format!("csrf={csrf}&email=Vera%40example.com"))
        .await
        .expect("post");
    assert_eq!(sent.status().as_u16(), 200);
    let page = sent.text().await.expect("text");
    assert!(page.contains("Sehen Sie in Ihr Postfach"), "{page}");
    let id = hidden(&page, "id");
    let csrf = hidden(&page, "csrf");
    let mail = sink.wait_for(1).await.remove(0);
    assert!(mail.text.contains("Ihr Code"), "in the page's language: {}", mail.text);
    let code = mail.code();

    let wrong = form(
        "/preferences/start/confirm",
        &cookie,
        format!("csrf={csrf}&id={id}&code={}", other_than(&code)),
    )
    .await
    .expect("post");
    assert_eq!(wrong.status().as_u16(), 422);
    assert!(wrong.text().await.expect("text").contains("noch 4 Versuche"));

    let right = form("/preferences/start/confirm", &cookie, format!("csrf={csrf}&id={id}&code={code}"))
        .await
        .expect("post");
    assert_eq!(right.status().as_u16(), 303);
    let link = right.headers()[LOCATION].to_str().expect("location").to_owned();
    assert!(link.starts_with("/preferences?token="), "{link}");

    // The link opens the person's preference centre, as any link does.
    let opened = client.get(format!("{}{link}", s.base)).send().await.expect("open");
    assert_eq!(opened.status().as_u16(), 303);
    let session = set_cookie(&opened, "consentry_session").expect("a session");
    let started = Instant::now();
    let choices = client
        .get(format!("{}/preferences", s.base))
        .header(COOKIE, format!("consentry_session={session}"))
        .send()
        .await
        .expect("page");
    assert_eq!(choices.status().as_u16(), 200, "{:?}", started.elapsed());
    assert!(choices.text().await.expect("text").contains("lang=\"de\""), "opens in the language used");
}

/// The requests a gateway received: each one's headers and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A local SMS gateway on loopback: it keeps each request's headers and body and answers 200.
struct SmsGateway {
    url: String,
    got: Received,
}

impl SmsGateway {
    async fn start() -> Self {
        Self::scripted(Vec::new(), 200).await
    }

    /// A gateway answering its first requests as `first` says (a status and a `Retry-After`), then
    /// every further one with `then`.
    async fn scripted(first: Vec<(u16, Option<&'static str>)>, then: u16) -> Self {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        use axum::routing::post;
        let got: Received = std::sync::Arc::default();
        let kept = std::sync::Arc::clone(&got);
        let app = axum::Router::new().route(
            "/sms",
            post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = std::sync::Arc::clone(&kept);
                let first = first.clone();
                async move {
                    let n = {
                        let mut kept = kept.lock().expect("lock");
                        kept.push((headers, body.to_vec()));
                        kept.len()
                    };
                    let (status, retry) = first.get(n - 1).copied().unwrap_or((then, None));
                    let status = StatusCode::from_u16(status).expect("a status");
                    match retry {
                        Some(after) => (status, [(RETRY_AFTER, after)], "answer").into_response(),
                        None => (status, "answer").into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/sms", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { url, got }
    }

    /// The first `n` requests, waiting up to 10 s for them.
    async fn wait_for(&self, n: usize) -> Vec<(axum::http::HeaderMap, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "the gateway got {} of {n} requests in 10 s", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

/// Starting a verification of `identifier` is 503 `verification_unavailable` (sent by hand: the test
/// client takes no 5xx).
async fn assert_unavailable(s: &TestServer, identifier: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/verifications", s.base))
        .json(&json!({"identifier": identifier}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503, "{identifier}");
    let problem: Value = response.json().await.expect("a problem");
    assert_code(&problem, "verification_unavailable");
}

const SMS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn sms_server(backend: Backend, gateway: &SmsGateway, allow_loopback: bool) -> TestServer {
    let url = gateway.url.clone();
    TestServer::with_config_on(backend, move |c| {
        c.sms_webhook_url = Some(url);
        c.sms_webhook_secret = Some(SMS_SECRET.to_owned());
        c.phone_default_region = Some("DE".to_owned());
        // Test servers allow loopback destinations; here only as the test asks.
        c.allow_private_destinations =
            if allow_loopback { vec!["127.0.0.1/32".to_owned()] } else { Vec::new() };
    })
    .await
}

/// A phone number's code goes to the SMS gateway as signed JSON and confirms once; an unknown number gets
/// the same answer and no SMS.
async fn a_phone_number_gets_its_code_by_sms(backend: Backend) {
    let gateway = SmsGateway::start().await;
    let s = sms_server(backend, &gateway, true).await;
    let body = json!({"type": "phone", "value": "+49 30 1234567"});
    s.post("/v1/subjects/fiona/identifiers", ADMIN_KEY, &body, 201).await;

    let out = s
        .post("/v1/verifications", NO_KEY, &json!({"identifier": "phone:030 1234567", "lang": "de"}), 202)
        .await;
    let id = str_of(&out["id"]).to_owned();
    let (headers, raw) = gateway.wait_for(1).await.remove(0);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["webhook-id"], id.as_str());
    let timestamp: i64 = headers["webhook-timestamp"].to_str().expect("text").parse().expect("seconds");
    let key = consentry_service::sinks::webhook::parse_secret(SMS_SECRET).expect("a secret");
    let signature = consentry_service::sinks::webhook::sign(&key, &id, timestamp, &raw);
    assert_eq!(headers["webhook-signature"], signature.as_str(), "signed like the webhooks");
    let sms: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(
        (sms["type"].as_str(), sms["id"].as_str(), sms["to"].as_str(), sms["lang"].as_str()),
        (Some("verification.code"), Some(id.as_str()), Some("+49301234567"), Some("de"))
    );
    let code = str_of(&sms["code"]).to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert!(str_of(&sms["text"]).contains(&code) && str_of(&sms["text"]).contains("Code"), "{sms}");

    assert_code(&confirm(&s, &id, &other_than(&code), 422).await, "wrong_code");
    let token = confirm(&s, &id, &code, 200).await;
    s.get("/v1/subjects/fiona/consents", str_of(&token["token"]), 200).await;
    assert_code(&confirm(&s, &id, &code, 410).await, "verification_ended");

    // Unknown: the same answer, no SMS.
    let unknown = start(&s, "phone:+49 30 7654321").await;
    assert_code(&confirm(&s, &unknown, &code, 422).await, "wrong_code");
    assert_code(
        &s.post("/v1/verifications", NO_KEY, &json!({"identifier": "phone:12"}), 422).await,
        "validation_failed",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gateway.count(), 1, "no SMS for a number nobody holds");
    // E-mail addresses need the mail server, which is not configured here.
    assert_unavailable(&s, "email:f@example.com").await;
    s.stop().await;
}

/// The gateway is reached only where destinations may go: on loopback, without
/// `allow_private_destinations`, the start answers as ever but nothing is sent.
#[tokio::test]
async fn the_sms_gateway_obeys_the_egress_rules() {
    let gateway = SmsGateway::start().await;
    let s = sms_server(Backend::Embedded, &gateway, false).await;
    let body = json!({"type": "phone", "value": "+49 30 1234567"});
    s.post("/v1/subjects/fiona/identifiers", ADMIN_KEY, &body, 201).await;
    start(&s, "phone:+49301234567").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gateway.count(), 0, "a refused address is never contacted");
    s.stop().await;
}

/// Without an SMS gateway a phone number cannot be verified: 503, the same for every number.
#[tokio::test]
async fn without_an_sms_gateway_phone_numbers_are_unavailable() {
    let Some(sink) = SmtpSink::start() else { return };
    let s = server(Backend::Embedded, &sink).await;
    let body = json!({"type": "phone", "value": "+49 30 1234567"});
    s.post("/v1/subjects/fiona/identifiers", ADMIN_KEY, &body, 201).await;
    for number in ["phone:+49301234567", "phone:+49307654321"] {
        assert_unavailable(&s, number).await;
    }
    // E-mail still works, and another type is refused.
    start(&s, "email:fiona@example.com").await;
    let p = s.post("/v1/verifications", NO_KEY, &json!({"identifier": "account:1"}), 422).await;
    assert_code(&p, "validation_failed");
    s.stop().await;
}

/// The `webhook-id` of a request, and whether its signature (over its own timestamp) is right.
fn id_and_signed(headers: &axum::http::HeaderMap, raw: &[u8]) -> (String, bool) {
    let id = headers["webhook-id"].to_str().expect("text").to_owned();
    let timestamp: i64 = headers["webhook-timestamp"].to_str().expect("text").parse().expect("seconds");
    let key = consentry_service::sinks::webhook::parse_secret(SMS_SECRET).expect("a secret");
    let signature = consentry_service::sinks::webhook::sign(&key, &id, timestamp, raw);
    (id, headers["webhook-signature"] == signature.as_str())
}

/// A gateway that fails for now (a 503, then a 429 asking for a second) gets the same message again, with
/// the same `webhook-id`, after the backoff and the `Retry-After`, each attempt signed; the code that
/// finally goes through confirms. The answer to the start never waited for any of it.
async fn a_failing_sms_gateway_is_tried_again_with_the_same_id(backend: Backend) {
    let gateway = SmsGateway::scripted(vec![(503, None), (429, Some("1"))], 200).await;
    let s = sms_server(backend, &gateway, true).await;
    let body = json!({"type": "phone", "value": "+49 30 1234567"});
    s.post("/v1/subjects/fiona/identifiers", ADMIN_KEY, &body, 201).await;
    let started = Instant::now();
    let id = start(&s, "phone:+49301234567").await;
    assert!(started.elapsed() < Duration::from_millis(400), "answered before any retry");
    let got = gateway.wait_for(3).await;
    let elapsed = started.elapsed();
    // 0.5 s before the second attempt, then the 429's 1 s (longer than the 1 s backoff would be too).
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    let mut code = None;
    for (headers, raw) in &got {
        let (webhook_id, signed) = id_and_signed(headers, raw);
        assert_eq!((webhook_id.as_str(), signed), (id.as_str(), true));
        let sms: Value = serde_json::from_slice(raw).expect("JSON");
        let this = str_of(&sms["code"]).to_owned();
        assert!(code.as_ref().is_none_or(|c| *c == this), "the same message each time");
        code = Some(this);
    }
    assert_eq!(got[0].1, got[2].1, "the same body");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gateway.count(), 3, "nothing after it went through");
    let token = confirm(&s, &id, &code.expect("a code"), 200).await;
    s.get("/v1/subjects/fiona/consents", str_of(&token["token"]), 200).await;
    s.stop().await;
}

/// A gateway that keeps failing is tried `MAX_ATTEMPTS` times and then left alone; one that refuses the
/// message (a 4xx other than 429) or asks to wait too long is not tried again at all.
async fn an_sms_gateway_that_keeps_failing_is_given_up_on(backend: Backend) {
    use consentry_service::verification::sms::{FIRST_WAIT, MAX_ATTEMPTS};
    let down = SmsGateway::scripted(Vec::new(), 500).await;
    let s = sms_server(backend, &down, true).await;
    let body = json!({"type": "phone", "value": "+49 30 1234567"});
    s.post("/v1/subjects/fiona/identifiers", ADMIN_KEY, &body, 201).await;
    let started = Instant::now();
    start(&s, "phone:+49301234567").await;
    assert!(started.elapsed() < Duration::from_millis(400), "answered before any retry");
    let got = down.wait_for(MAX_ATTEMPTS as usize).await;
    // The waits double: 0.5 + 1 + 2 s before the fourth attempt.
    let waits: u32 = (0..MAX_ATTEMPTS - 1).map(|i| 1 << i).sum();
    assert!(started.elapsed() >= FIRST_WAIT * waits, "{:?}", started.elapsed());
    let ids: std::collections::HashSet<String> = got.iter().map(|(h, raw)| id_and_signed(h, raw).0).collect();
    assert_eq!(ids.len(), 1, "one webhook-id for every attempt");
    // Past the moment a further attempt would have come (after twice the last wait), none did.
    tokio::time::sleep((FIRST_WAIT * (1 << MAX_ATTEMPTS)).saturating_sub(started.elapsed())).await;
    assert_eq!(down.count(), MAX_ATTEMPTS as usize, "given up after MAX_ATTEMPTS");
    let mut storage = s.stop().await;

    for (answer, retry_after) in [(400, None), (429, Some("3600"))] {
        let refusing = SmsGateway::scripted(vec![(answer, retry_after)], 200).await;
        let url = refusing.url.clone();
        let s = TestServer::start_in(storage, move |c| {
            c.sms_webhook_url = Some(url);
            c.sms_webhook_secret = Some(SMS_SECRET.to_owned());
            c.phone_default_region = Some("DE".to_owned());
        })
        .await;
        start(&s, "phone:+49301234567").await;
        refusing.wait_for(1).await;
        tokio::time::sleep(FIRST_WAIT * 3).await;
        assert_eq!(refusing.count(), 1, "{answer} is not tried again");
        storage = s.stop().await;
    }
}
