//! Propagation end to end: every consent change leaves through the outbox to real receivers. Webhooks
//! (signed, CloudEvents, in order per subject, retried, dead-lettered and replayed, paused and resumed),
//! NATS JetStream and MQTT, on one node and on two nodes sharing PostgreSQL.
//!
//! The webhook receiver is an axum server on 127.0.0.1:0 started by each test; NATS (127.0.0.1:4222) and
//! Mosquitto (127.0.0.1:1883) are the machine's, skipped with a notice when absent (a failure under
//! `CONSENTRY_REQUIRE_SERVICES=1`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_server::Config;
use consentry_store::testing::{TestDatabase, unreachable_service};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of, withdraw};

both_backends!(
    webhooks_get_signed_cloudevents_in_order_and_destinations_are_managed,
    a_receiver_that_is_down_then_back_gets_every_event_in_order,
    a_receiver_that_always_fails_gets_dead_letters_that_replay_delivers,
    ten_thousand_changes_arrive_complete_and_in_order_per_subject,
    nats_jetstream_stores_each_event_under_its_type_with_its_id,
    mqtt_subscribers_receive_each_event_at_qos_1,
    a_hanging_receiver_holds_back_only_its_own_deliveries,
    shutdown_does_not_wait_for_a_hanging_receiver,
);

const PURPOSE: &str = "marketing.direct";

// ---------------------------------------------------------------------------------------------------
// The webhook receiver.

/// One request the receiver got, in arrival order.
#[derive(Debug, Clone)]
struct Hit {
    /// The path it was posted to, without the leading `/`.
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Bytes,
    /// The status the receiver answered with.
    answered: u16,
}

impl Hit {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {:?}", self.body))
    }

    fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Shared {
    hits: Mutex<Vec<Hit>>,
    status: AtomicU16,
}

/// An HTTP receiver on 127.0.0.1 answering every `POST /<path>` with a settable status.
struct Receiver {
    base: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let answered = shared.status.load(Ordering::SeqCst);
    shared.hits.lock().unwrap_or_else(PoisonError::into_inner).push(Hit {
        path,
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// A receiver on a fresh port answering 200.
    async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver")).await
    }

    async fn on(listener: TcpListener) -> Self {
        let shared = Arc::new(Shared { hits: Mutex::new(Vec::new()), status: AtomicU16::new(200) });
        let app = Router::new().route("/{path}", post(receive)).with_state(Arc::clone(&shared));
        let base = format!("http://{}", listener.local_addr().expect("receiver address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, task }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Answers every later request with `status`.
    fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The requests to `path` answered with a 2xx, in arrival order.
    fn accepted(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path && h.accepted()).collect()
    }

    /// Waits until `path` has accepted `n` distinct events (by `webhook-id`); returns them, first
    /// arrival of each, in arrival order.
    async fn wait_unique(&self, path: &str, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let unique = first_arrivals(&self.accepted(path));
            if unique.len() >= n {
                return unique;
            }
            assert!(
                Instant::now() < deadline,
                "/{path} received {} of {n} events within {within:?}; the last was {:?}",
                unique.len(),
                unique.last().map(|h| h.id.as_str())
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The first arrival of each `webhook-id`, in arrival order (the receiver's de-duplication).
fn first_arrivals(hits: &[Hit]) -> Vec<Hit> {
    let mut seen = HashSet::new();
    hits.iter().filter(|h| seen.insert(h.id.clone())).cloned().collect()
}

/// Checks the Standard Webhooks signature without the server's code: HMAC-SHA256 keyed with the bytes
/// after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`, base64, `v1,` in front.
fn verify_signature(secret: &str, hit: &Hit) {
    let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("secret {secret:?} lacks whsec_"));
    let key = STANDARD.decode(encoded).expect("the secret is base64");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{}.{}.", hit.id, hit.timestamp).as_bytes());
    mac.update(&hit.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    // The header may carry several space-separated signatures; one must match.
    assert!(
        hit.signature.split(' ').any(|s| s == expected),
        "webhook-signature {:?} does not verify (expected {expected})",
        hit.signature
    );
    let sent: i64 = hit.timestamp.parse().expect("webhook-timestamp is unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 300, "webhook-timestamp {sent} is not now ({now})");
}

/// Asserts that each subject's events come in strictly increasing ledger order; returns the number of
/// events per subject.
fn assert_ordered_per_subject(events: &[Value]) -> HashMap<String, usize> {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut counts = HashMap::new();
    for e in events {
        let subject = str_of(&e["subject"]).to_owned();
        let seq = e["data"]["event"]["seq"].as_u64().unwrap_or_else(|| panic!("no data.event.seq: {e}"));
        if let Some(&before) = last.get(&subject) {
            assert!(seq > before, "{subject}: seq {seq} arrived after seq {before}");
        }
        last.insert(subject.clone(), seq);
        *counts.entry(subject).or_insert(0) += 1;
    }
    counts
}

// ---------------------------------------------------------------------------------------------------
// API helpers.

/// Creates a webhook destination; returns its id and secret.
async fn webhook(s: &TestServer, name: &str, url: &str, types: &[&str]) -> (String, String) {
    let body = json!({"name": name, "kind": "webhook", "url": url, "event_types": types});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    (str_of(&d["id"]).to_owned(), str_of(&d["secret"]).to_owned())
}

async fn patch(s: &TestServer, path: &str, body: &Value, status: u16) -> Value {
    s.raw(Method::PATCH, path, ADMIN_KEY, "application/json", body.to_string(), status).await
}

/// The destination's deliveries with `status` (all when `None`), every page.
async fn deliveries(s: &TestServer, id: &str, status: Option<&str>) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let filter = status.map(|st| format!("&status={st}")).unwrap_or_default();
        let page = s
            .get(
                &format!("/v1/destinations/{id}/deliveries?limit=1000&after={after}{filter}"),
                ADMIN_KEY,
                200,
            )
            .await;
        all.extend(page["deliveries"].as_array().expect("deliveries").iter().cloned());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return all,
        }
    }
}

async fn metrics(s: &TestServer) -> String {
    s.send(Method::GET, "/metrics", "", None).await.text
}

/// The value of the unlabelled sample `name` in `/metrics`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn unique() -> String {
    let bytes: [u8; 6] = consentry_store::random_bytes().expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `f` until it returns `Some`, at most `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------------
// 1. Webhooks: signature, CloudEvent, order, filters, and the destination API.

async fn webhooks_get_signed_cloudevents_in_order_and_destinations_are_managed(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let r = Receiver::start().await;

    let body = json!({"name": " CRM ", "kind": "webhook", "url": r.url("all"), "event_types": ["consent.*"]});
    let all = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    let (all_id, all_secret) = (str_of(&all["id"]).to_owned(), str_of(&all["secret"]).to_owned());
    assert!(all_id.starts_with("dst_"), "{all}");
    assert!(all_secret.starts_with("whsec_"), "{all}");
    let key_len = STANDARD.decode(&all_secret["whsec_".len()..]).expect("base64 secret").len();
    assert!((24..=64).contains(&key_len), "a {key_len}-byte key");
    assert_eq!(
        (&all["name"], &all["kind"], &all["url"], &all["event_types"], &all["paused"], &all["flagged"]),
        (
            &json!("CRM"),
            &json!("webhook"),
            &json!(r.url("all")),
            &json!(["consent.*"]),
            &json!(false),
            &json!(false)
        )
    );
    let (only_id, only_secret) =
        webhook(&s, "withdrawals", &r.url("withdrawn"), &["consent.withdrawn"]).await;
    assert_ne!(all_secret, only_secret);

    let granted = s.record("alice", &grant(PURPOSE, &["email"])).await;
    let withdrawn = s.record("alice", &withdraw(PURPOSE)).await;

    let hits = r.wait_unique("all", 2, Duration::from_secs(10)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    let expected = [("consent.granted", &granted[0], true), ("consent.withdrawn", &withdrawn[0], false)];
    for (hit, (kind, placed, allowed)) in hits.iter().zip(expected) {
        verify_signature(&all_secret, hit);
        assert_eq!(hit.content_type, "application/cloudevents+json");
        let e = hit.event();
        assert_eq!(hit.id, str_of(&e["id"]), "webhook-id is the CloudEvent id");
        assert_eq!(e["specversion"], "1.0", "{e}");
        assert_eq!(e["id"], placed["id"], "{e}");
        assert_eq!(e["source"], "urn:consentry", "{e}");
        assert_eq!(e["type"], kind, "{e}");
        assert_eq!(e["subject"], "alice", "{e}");
        assert_eq!(e["datacontenttype"], "application/json", "{e}");
        assert_eq!(e["time"], placed["recorded_at"], "{e}");
        let event = &e["data"]["event"];
        assert_eq!(event["purpose"], PURPOSE, "{e}");
        assert_eq!(event["action"], placed["action"], "{e}");
        assert_eq!(event["seq"], placed["seq"], "{e}");
        assert_eq!(event["hash"], placed["hash"], "{e}");
        assert_eq!(event["id"], placed["id"], "{e}");
        let decision = &e["data"]["decision"];
        assert_eq!(decision["purpose"], PURPOSE, "{e}");
        let channels = decision["channels"].as_array().expect("data.decision.channels");
        assert_eq!(channels[0]["channel"], "email", "{e}");
        assert_eq!(channels[0]["allowed"], allowed, "{e}");
        let email = channels.iter().find(|c| c["channel"] == "email").expect("an email decision");
        assert_eq!(email["allowed"], allowed, "{e}");
    }
    assert_eq!(hits[1].event()["data"]["decision"]["channels"][0]["reason"], "withdrawn");

    // The filter: only the withdrawal.
    let only = r.wait_unique("withdrawn", 1, Duration::from_secs(10)).await;
    verify_signature(&only_secret, &only[0]);
    assert_eq!(only[0].event()["type"], "consent.withdrawn");
    assert_eq!(only[0].id, str_of(&withdrawn[0]["id"]));

    // Reading: the secret is shown only at creation.
    let got = s.get(&format!("/v1/destinations/{all_id}"), ADMIN_KEY, 200).await;
    assert_eq!((&got["id"], &got["flagged"]), (&json!(all_id), &json!(false)));
    assert!(got.get("secret").is_none(), "the secret is shown again: {got}");
    let list = s.get("/v1/destinations", ADMIN_KEY, 200).await;
    let ids: Vec<&str> =
        list["destinations"].as_array().expect("list").iter().map(|d| str_of(&d["id"])).collect();
    assert_eq!(ids, [all_id.as_str(), only_id.as_str()]);
    assert!(!list.to_string().contains("whsec_"), "{list}");
    // The receiver may see an event a moment before the dispatcher records the delivery.
    let deadline = Instant::now() + Duration::from_secs(5);
    let done = loop {
        let done = deliveries(&s, &all_id, Some("delivered")).await;
        if done.len() == 2 || Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.len(), 2, "{done:?}");
    for d in &done {
        assert_eq!(
            (&d["status"], &d["attempts"], &d["last_error"]),
            (&json!("delivered"), &json!(1), &Value::Null)
        );
        assert!(d["delivered_at"].is_string(), "{d}");
    }
    assert_eq!(deliveries(&s, &only_id, None).await.len(), 1, "the filter queued only the withdrawal");

    // Metrics of propagation.
    let text = eventually("propagation metrics", Duration::from_secs(5), || {
        let (s, all_id) = (&s, &all_id);
        async move {
            let text = metrics(s).await;
            let has = text.lines().any(|l| {
                l.starts_with("consentry_deliveries_total{")
                    && l.contains(&format!("destination=\"{all_id}\""))
                    && l.contains("result=\"delivered\"")
            });
            has.then_some(text)
        }
    })
    .await;
    assert!(sample(&text, "consentry_outbox_lag_seconds").is_some(), "{text}");
    assert_eq!(sample(&text, "consentry_dead_letters"), Some(0.0), "{text}");

    // Paused: events queue; resumed: they leave.
    let paused = patch(&s, &format!("/v1/destinations/{all_id}"), &json!({"paused": true}), 200).await;
    assert_eq!(paused["paused"], true, "{paused}");
    let held = s.record("bob", &grant(PURPOSE, &["sms"])).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(first_arrivals(&r.accepted("all")).len(), 2, "a paused destination received an event");
    assert_eq!(s.get(&format!("/v1/destinations/{all_id}"), ADMIN_KEY, 200).await["paused"], true);
    let resumed = patch(&s, &format!("/v1/destinations/{all_id}"), &json!({"paused": false}), 200).await;
    assert_eq!(resumed["paused"], false);
    let hits = r.wait_unique("all", 3, Duration::from_secs(10)).await;
    assert_eq!(hits[2].id, str_of(&held[0]["id"]));
    assert_eq!(hits[2].event()["subject"], "bob");

    // Renaming and refiltering.
    let renamed = patch(
        &s,
        &format!("/v1/destinations/{only_id}"),
        &json!({"name": "w", "event_types": ["consent.granted"]}),
        200,
    )
    .await;
    assert_eq!((&renamed["name"], &renamed["event_types"]), (&json!("w"), &json!(["consent.granted"])));

    // Validation: 422 problems naming the field.
    for (body, field) in [
        (json!({"name": "x", "kind": "webhook", "url": "ftp://h/x", "event_types": ["*"]}), "url"),
        (json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": []}), "event_types"),
        (
            json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": ["Consent.*"]}),
            "event_types[0]",
        ),
        (json!({"name": "", "kind": "webhook", "url": r.url("x"), "event_types": ["*"]}), "name"),
        (
            json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": ["*"], "secret": "nope"}),
            "secret",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": ["*"], "subject": "a"}),
            "subject",
        ),
        (
            json!({"name": "x", "kind": "nats", "url": "nats://127.0.0.1:4222", "event_types": ["*"]}),
            "subject",
        ),
        (
            json!({"name": "x", "kind": "nats", "url": "nats://h", "subject": "a.*", "event_types": ["*"]}),
            "subject",
        ),
        (
            json!({"name": "x", "kind": "mqtt", "url": "mqtt://h", "topic": "a/#", "event_types": ["*"]}),
            "topic",
        ),
        (json!({"name": "x", "kind": "mqtt", "url": "http://h", "topic": "a", "event_types": ["*"]}), "url"),
        (
            json!({"name": "x", "kind": "nats", "url": "nats://h", "subject": "a", "event_types": ["*"], "secret": "whsec_AAAA"}),
            "secret",
        ),
    ] {
        let p = s.post("/v1/destinations", ADMIN_KEY, &body, 422).await;
        assert_code(&p, "validation_failed");
        assert_eq!(p["errors"][0]["path"], field, "{body}: {p}");
    }
    for body in [
        json!({"name": "x", "kind": "smtp", "url": "smtp://h", "event_types": ["*"]}),
        json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": ["*"], "colour": "red"}),
        json!({"kind": "webhook", "url": r.url("x"), "event_types": ["*"]}),
    ] {
        assert_code(&s.post("/v1/destinations", ADMIN_KEY, &body, 422).await, "validation_failed");
    }
    let path = format!("/v1/destinations/{all_id}");
    for (body, field) in [
        (json!({"url": "nats://h"}), "url"),
        (json!({"event_types": []}), "event_types"),
        (json!({"name": " "}), "name"),
    ] {
        let p = patch(&s, &path, &body, 422).await;
        assert_eq!(p["errors"][0]["path"], field, "{body}: {p}");
    }
    assert_code(&patch(&s, &path, &json!({"paused": "yes"}), 422).await, "validation_failed");
    assert_code(&patch(&s, "/v1/destinations/dst_missing", &json!({"paused": true}), 404).await, "not_found");
    assert_code(&s.get("/v1/destinations/dst_missing", ADMIN_KEY, 404).await, "not_found");
    let replay = format!("{path}/replay");
    assert_code(&s.post(&replay, ADMIN_KEY, &json!({}), 422).await, "validation_failed");
    let both = json!({"from_id": 1, "since": "2020-01-01T00:00:00Z"});
    assert_code(&s.post(&replay, ADMIN_KEY, &both, 422).await, "validation_failed");
    assert_code(&s.get(&format!("{path}/deliveries?status=lost"), ADMIN_KEY, 400).await, "invalid_query");
    assert_code(&s.get(&format!("{path}/deliveries?limit=0"), ADMIN_KEY, 400).await, "invalid_query");

    // Scopes: a check-only key may do nothing here; a destinations key may.
    let (_, check_key) = s.create_key("checker", &["check"]).await;
    assert_code(&s.get("/v1/destinations", &check_key, 403).await, "forbidden");
    assert_code(&s.get(&path, &check_key, 403).await, "forbidden");
    let body = json!({"name": "x", "kind": "webhook", "url": r.url("x"), "event_types": ["*"]});
    assert_code(&s.post("/v1/destinations", &check_key, &body, 403).await, "forbidden");
    assert_code(
        &s.raw(Method::PATCH, &path, &check_key, "application/json", r#"{"paused":true}"#, 403).await,
        "forbidden",
    );
    assert_code(&s.delete(&path, &check_key, 403).await, "forbidden");
    assert_code(&s.get(&format!("{path}/deliveries"), &check_key, 403).await, "forbidden");
    assert_code(&s.post(&replay, &check_key, &json!({"from_id": 1}), 403).await, "forbidden");
    s.get("/v1/destinations", "", 401).await;
    let (_, ops_key) = s.create_key("ops", &["destinations"]).await;
    s.get(&path, &ops_key, 200).await;

    // A new URL: the next event goes there, signed with the same secret.
    let moved = patch(&s, &path, &json!({"url": r.url("moved")}), 200).await;
    assert_eq!(moved["url"], r.url("moved"));
    let dave = s.record("dave", &grant(PURPOSE, &["email"])).await;
    let hits = r.wait_unique("moved", 1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].id, str_of(&dave[0]["id"]));
    verify_signature(&all_secret, &hits[0]);
    r.wait_unique("withdrawn", 2, Duration::from_secs(10)).await; // the refiltered one gets grants now

    // Deleting: gone, and no more deliveries to it.
    assert_eq!(s.delete(&path, ADMIN_KEY, 204).await, Value::Null);
    assert_code(&s.get(&path, ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.delete(&path, ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.get(&format!("{path}/deliveries"), ADMIN_KEY, 404).await, "not_found");
    s.record("carol", &grant(PURPOSE, &["email"])).await;
    r.wait_unique("withdrawn", 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(first_arrivals(&r.accepted("all")).len(), 3, "an old URL received an event");
    assert_eq!(first_arrivals(&r.accepted("moved")).len(), 1, "a deleted destination received an event");
    drop(s.stop().await);
}

// ---------------------------------------------------------------------------------------------------
// 2. A receiver that is down for a while loses nothing and sees each subject in order.

async fn a_receiver_that_is_down_then_back_gets_every_event_in_order(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| {
        c.delivery_backoff_ms = vec![50, 100, 200, 400, 800, 1600, 3200];
    })
    .await;
    let r = Receiver::start().await;
    r.answer(503);
    let (id, secret) = webhook(&s, "flaky", &r.url("in"), &["consent.*"]).await;

    const SUBJECTS: usize = 4;
    const ROUNDS: usize = 5;
    let mut written = Vec::new();
    for round in 0..ROUNDS {
        for n in 0..SUBJECTS {
            let body = if round % 2 == 0 { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
            let placed = s.record(&format!("flaky-{n}"), &body).await;
            written.push(str_of(&placed[0]["id"]).to_owned());
        }
    }
    // Down long enough for several failed attempts per subject, then back.
    eventually("failed attempts", Duration::from_secs(10), || {
        let r = &r;
        async move { (r.hits().iter().filter(|h| h.answered == 503).count() >= 3 * SUBJECTS).then_some(()) }
    })
    .await;
    let pending = deliveries(&s, &id, Some("pending")).await;
    assert_eq!(pending.len(), SUBJECTS * ROUNDS, "nothing delivered or dead while the receiver fails");
    let failing: Vec<&Value> = pending.iter().filter(|d| d["attempts"].as_u64() > Some(0)).collect();
    assert!(!failing.is_empty(), "{pending:?}");
    for d in &failing {
        assert_eq!(d["last_error"], "the endpoint answered 503", "{d}");
        assert!(d["next_attempt_at"].is_string(), "{d}");
    }
    r.answer(200);

    let hits = r.wait_unique("in", SUBJECTS * ROUNDS, Duration::from_secs(20)).await;
    for h in &hits {
        verify_signature(&secret, h);
    }
    let events: Vec<Value> = hits.iter().map(Hit::event).collect();
    let ids: HashSet<&str> = events.iter().map(|e| str_of(&e["id"])).collect();
    assert_eq!(ids, written.iter().map(String::as_str).collect(), "every event arrives");
    let counts = assert_ordered_per_subject(&events);
    assert!(counts.values().all(|&n| n == ROUNDS), "{counts:?}");

    // Stronger: a subject's later event is never even tried before its earlier ones were delivered.
    let mut tried: HashMap<String, u64> = HashMap::new();
    for h in r.hits() {
        let e = h.event();
        let seq = e["data"]["event"]["seq"].as_u64().expect("seq");
        let before = tried.insert(str_of(&e["subject"]).to_owned(), seq);
        assert!(before.is_none_or(|b| b <= seq), "{}: seq {seq} tried after seq {before:?}", e["subject"]);
    }

    let done = eventually("all delivered", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move {
            let done = deliveries(s, id, Some("delivered")).await;
            (done.len() == SUBJECTS * ROUNDS).then_some(done)
        }
    })
    .await;
    assert!(done.iter().any(|d| d["attempts"].as_u64() > Some(1)), "some needed retries: {done:?}");
    assert!(deliveries(&s, &id, Some("dead")).await.is_empty());
    assert_eq!(s.get(&format!("/v1/destinations/{id}"), ADMIN_KEY, 200).await["flagged"], false);
    drop(s.stop().await);
}

// ---------------------------------------------------------------------------------------------------
// 3. Dead letters after the last retry; replay once the receiver is fixed.

async fn a_receiver_that_always_fails_gets_dead_letters_that_replay_delivers(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.delivery_backoff_ms = vec![20, 40, 80]).await;
    let r = Receiver::start().await;
    r.answer(500);
    let (id, _) = webhook(&s, "broken", &r.url("in"), &["consent.*"]).await;
    let mut written = Vec::new();
    for (subject, body) in [
        ("dead-1", grant(PURPOSE, &["email"])),
        ("dead-2", grant(PURPOSE, &["sms"])),
        ("dead-1", withdraw(PURPOSE)),
    ] {
        written.push(str_of(&s.record(subject, &body).await[0]["id"]).to_owned());
    }

    let dead = eventually("three dead letters", Duration::from_secs(20), || {
        let (s, id) = (&s, &id);
        async move {
            let dead = deliveries(s, id, Some("dead")).await;
            (dead.len() == 3).then_some(dead)
        }
    })
    .await;
    for d in &dead {
        assert_eq!(d["status"], "dead", "{d}");
        assert_eq!(d["attempts"], 4, "one attempt and three retries: {d}");
        assert!(str_of(&d["last_error"]).contains("500"), "{d}");
        assert_eq!(d["next_attempt_at"], Value::Null, "{d}");
        assert_eq!(d["delivered_at"], Value::Null, "{d}");
    }
    let mut tries: HashMap<String, usize> = HashMap::new();
    for h in r.hits() {
        *tries.entry(h.id).or_insert(0) += 1;
    }
    assert_eq!(tries, written.iter().map(|w| (w.clone(), 4)).collect(), "four tries each");
    assert_eq!(s.get(&format!("/v1/destinations/{id}"), ADMIN_KEY, 200).await["flagged"], true);
    assert!(deliveries(&s, &id, Some("pending")).await.is_empty());
    let text = eventually("the dead-letter gauge", Duration::from_secs(5), || {
        let s = &s;
        async move {
            let text = metrics(s).await;
            (sample(&text, "consentry_dead_letters") == Some(3.0)).then_some(text)
        }
    })
    .await;
    assert!(
        text.lines().any(|l| l.starts_with("consentry_deliveries_total{")
            && l.contains("result=\"dead\"")
            && l.ends_with(" 3")),
        "{text}"
    );

    // Fixed, then replayed from the first dead letter: every event arrives, in order.
    r.answer(200);
    let first = dead[0]["id"].as_i64().expect("delivery id");
    let out =
        s.post(&format!("/v1/destinations/{id}/replay"), ADMIN_KEY, &json!({"from_id": first}), 200).await;
    assert_eq!(out["queued"], 3, "{out}");
    let hits = r.wait_unique("in", 3, Duration::from_secs(10)).await;
    let events: Vec<Value> = hits.iter().map(Hit::event).collect();
    assert_ordered_per_subject(&events);
    let got: HashSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(got, written.iter().map(String::as_str).collect());
    eventually("replayed deliveries recorded", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move { (deliveries(s, id, Some("delivered")).await.len() == 3).then_some(()) }
    })
    .await;
    assert!(deliveries(&s, &id, Some("dead")).await.is_empty());
    // Replay by time sends them all again, with the same ids (receivers de-duplicate).
    let out = s
        .post(
            &format!("/v1/destinations/{id}/replay"),
            ADMIN_KEY,
            &json!({"since": "2000-01-01T00:00:00Z"}),
            200,
        )
        .await;
    assert_eq!(out["queued"], 3, "{out}");
    eventually("a second copy of each", Duration::from_secs(10), || {
        let r = &r;
        async move { (r.accepted("in").len() >= 6).then_some(()) }
    })
    .await;
    assert_eq!(first_arrivals(&r.accepted("in")).len(), 3);
    assert_code(
        &s.post("/v1/destinations/dst_missing/replay", ADMIN_KEY, &json!({"from_id": 1}), 404).await,
        "not_found",
    );
    let text = eventually("the dead-letter gauge after replay", Duration::from_secs(5), || {
        let s = &s;
        async move {
            let text = metrics(s).await;
            (sample(&text, "consentry_dead_letters") == Some(0.0)).then_some(text)
        }
    })
    .await;
    assert!(sample(&text, "consentry_outbox_lag_seconds").is_some(), "{text}");
    drop(s.stop().await);
}

// ---------------------------------------------------------------------------------------------------
// A receiver that accepts the connection and never answers.

/// An HTTP endpoint that accepts connections, reads nothing and never answers.
struct Hanging {
    url: String,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hanging {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self { url, connections, task }
    }

    async fn wait_for_a_connection(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connections.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the dispatcher never connected to the hanging receiver");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The dispatcher's promise: a stuck event holds back that subject's later events for that destination
/// "and nothing else". A receiver that hangs until the webhook timeout must not slow the others down.
async fn a_hanging_receiver_holds_back_only_its_own_deliveries(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.webhook_timeout_secs = 10).await;
    let stuck = Hanging::start().await;
    let r = Receiver::start().await;
    webhook(&s, "stuck", &stuck.url, &["consent.*"]).await;
    webhook(&s, "healthy", &r.url("in"), &["consent.*"]).await;
    let started = Instant::now();
    for round in 0..5 {
        let body = if round % 2 == 0 { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
        s.record("head-of-line", &body).await;
    }
    stuck.wait_for_a_connection().await;
    // A hanging attempt lasts 10 s; the healthy receiver must not wait for it.
    let deadline = started + Duration::from_secs(4);
    while first_arrivals(&r.accepted("in")).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the healthy destination got {} of 5 events in 4 s: a receiver hanging until the 10 s webhook \
             timeout holds back every other destination (each dispatcher round waits for all its sends)",
            first_arrivals(&r.accepted("in")).len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let hits = first_arrivals(&r.accepted("in"));
    assert_ordered_per_subject(&hits.iter().map(Hit::event).collect::<Vec<_>>());
    drop(s.stop().await);
}

/// `shutdown_timeout_secs` bounds a stop; a delivery attempt in flight must not stretch it to the webhook
/// timeout.
async fn shutdown_does_not_wait_for_a_hanging_receiver(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| {
        c.webhook_timeout_secs = 120;
        c.shutdown_timeout_secs = 2;
    })
    .await;
    let stuck = Hanging::start().await;
    let (id, _) = webhook(&s, "stuck", &stuck.url, &["consent.*"]).await;
    s.record("stopping", &grant(PURPOSE, &["email"])).await;
    stuck.wait_for_a_connection().await;
    let started = Instant::now();
    let storage = tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .unwrap_or_else(|_| panic!("stopping took over 10 s with shutdown_timeout_secs = 2: the dispatcher waits for the 120 s webhook timeout"));
    eprintln!("stopped in {:?}", started.elapsed());

    // The interrupted attempt is not lost: the event is still pending for the destination.
    let store = consentry_store::open(storage.store_config()).await.expect("reopen the store");
    let pending = store.deliveries(&id, Some("pending"), 0, 10).await.expect("deliveries");
    assert_eq!(pending.len(), 1, "{pending:?}");
    store.close().await;
}

// ---------------------------------------------------------------------------------------------------
// 4. Volume: 10,000 changes over 1,000 subjects from 32 writers.

const VOLUME_SUBJECTS: usize = 1_000;
const VOLUME_CHANGES: usize = 10_000;
const VOLUME_WRITERS: usize = 32;
const VOLUME_WITHIN: Duration = Duration::from_secs(60);

/// The body and subject of change `i`: subjects round-robin, each subject alternating grant and withdraw.
fn volume_change(i: usize) -> (String, Value) {
    let subject = format!("vol-{}", i % VOLUME_SUBJECTS);
    let body =
        if (i / VOLUME_SUBJECTS).is_multiple_of(2) { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
    (subject, body)
}

/// Checks the receiver's events after de-duplication: exactly the ledger's events 1..=n, each subject's
/// in order.
fn assert_volume(hits: &[Hit]) {
    let events: Vec<Value> = first_arrivals(hits).iter().map(Hit::event).collect();
    assert_eq!(events.len(), VOLUME_CHANGES);
    let seqs: HashSet<u64> = events.iter().filter_map(|e| e["data"]["event"]["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=VOLUME_CHANGES as u64).collect(), "every ledger event arrives");
    let counts = assert_ordered_per_subject(&events);
    assert_eq!(counts.len(), VOLUME_SUBJECTS);
    assert!(counts.values().all(|&n| n == VOLUME_CHANGES / VOLUME_SUBJECTS), "per subject: {counts:?}");
}

async fn ten_thousand_changes_arrive_complete_and_in_order_per_subject(backend: Backend) {
    let started = Instant::now();
    let s = Arc::new(TestServer::start_on(backend).await);
    let r = Receiver::start().await;
    webhook(&s, "bulk", &r.url("in"), &["consent.*"]).await;
    let mut writers = Vec::new();
    for w in 0..VOLUME_WRITERS {
        let s = Arc::clone(&s);
        writers.push(tokio::spawn(async move {
            for i in (w..VOLUME_CHANGES).step_by(VOLUME_WRITERS) {
                let (subject, body) = volume_change(i);
                let reply = s
                    .send(
                        Method::POST,
                        &format!("/v1/subjects/{subject}/consents"),
                        ADMIN_KEY,
                        Some(("application/json", body.to_string().into_bytes())),
                    )
                    .await;
                assert_eq!(reply.status, 201, "{subject}: {}", reply.text);
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let written = started.elapsed();
    let hits = r.wait_unique("in", VOLUME_CHANGES, VOLUME_WITHIN.saturating_sub(started.elapsed())).await;
    eprintln!("10,000 changes: written in {written:?}, all delivered after {:?}", started.elapsed());
    assert_eq!(hits.len(), VOLUME_CHANGES);
    assert_volume(&r.accepted("in"));
    // The deliveries list pages through all of them.
    let id = str_of(&s.get("/v1/destinations", ADMIN_KEY, 200).await["destinations"][0]["id"]).to_owned();
    let listed = eventually("10,000 deliveries recorded", Duration::from_secs(10), || {
        let (s, id) = (&s, &id);
        async move {
            let listed = deliveries(s, id, Some("delivered")).await;
            (listed.len() == VOLUME_CHANGES).then_some(listed)
        }
    })
    .await;
    let ids: Vec<i64> = listed.iter().map(|d| d["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "pages follow the outbox order without repeats");
    let s = Arc::into_inner(s).expect("no other handle to the server");
    drop(s.stop().await);
}

/// A node on `url` (as in `cluster.rs`), serving until stopped.
struct Node {
    base: String,
    token: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Node {
    async fn start(url: &str) -> Self {
        let config = Config {
            data: std::env::temp_dir(),
            database_url: Some(url.to_owned()),
            database_max_connections: 8,
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            ..Config::default()
        };
        let opened = consentry_server::open(config).await.expect("node opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let token = CancellationToken::new();
        let task = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
        Self { base, token, task }
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_deliver_every_event_in_order_per_subject() {
    let Some(db) = TestDatabase::create().await else { return };
    let started = Instant::now();
    let a = Node::start(&db.url).await;
    let b = Node::start(&db.url).await;
    let http =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
    let r = Receiver::start().await;
    let body = json!({"name": "bulk", "kind": "webhook", "url": r.url("in"), "event_types": ["consent.*"]});
    let created = http
        .post(format!("{}/v1/destinations", a.base))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("create destination");
    assert_eq!(created.status().as_u16(), 201);

    let mut writers = Vec::new();
    for w in 0..VOLUME_WRITERS {
        let http = http.clone();
        let base = if w % 2 == 0 { a.base.clone() } else { b.base.clone() };
        writers.push(tokio::spawn(async move {
            for i in (w..VOLUME_CHANGES).step_by(VOLUME_WRITERS) {
                let (subject, body) = volume_change(i);
                let reply = http
                    .post(format!("{base}/v1/subjects/{subject}/consents"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{subject}: {e}"));
                let status = reply.status().as_u16();
                assert_eq!(status, 201, "{subject}: {}", reply.text().await.unwrap_or_default());
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let written = started.elapsed();
    let hits = r.wait_unique("in", VOLUME_CHANGES, VOLUME_WITHIN.saturating_sub(started.elapsed())).await;
    eprintln!(
        "two nodes, 10,000 changes: written in {written:?}, all delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(hits.len(), VOLUME_CHANGES);
    let all = r.accepted("in");
    eprintln!("two nodes: {} requests for {} events", all.len(), VOLUME_CHANGES);
    assert_volume(&all);
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// 5. NATS JetStream.

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// The stream the sink creates for `prefix` (see `sinks::nats::stream_name_for`).
fn stream_name(prefix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_uppercase() } else { '_' })
        .collect();
    format!("CONSENTRY_{cleaned}")
}

async fn nats_jetstream_stores_each_event_under_its_type_with_its_id(backend: Backend) {
    let client = match async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(NATS_URL)
        .await
    {
        Ok(client) => client,
        Err(e) => {
            unreachable_service("NATS", &e.to_string());
            return;
        }
    };
    let js = async_nats::jetstream::new(client);
    let prefix = format!("ctest.{}", unique());
    let name = stream_name(&prefix);
    assert_eq!(stream_name("ctest.ab12"), "CONSENTRY_CTEST_AB12");
    // Deletes the stream however this test ends.
    let _cleanup = DeleteStream(name.clone());

    let s = TestServer::start_on(backend).await;
    let body = json!({"name": "bus", "kind": "nats", "url": NATS_URL, "subject": prefix, "event_types": ["consent.*"]});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    assert_eq!((&d["kind"], &d["subject"], &d["url"]), (&json!("nats"), &json!(prefix), &json!(NATS_URL)));
    assert!(d.get("secret").is_none() && d.get("topic").is_none(), "{d}");
    let granted = s.record("nats-subject", &grant(PURPOSE, &["email"])).await;
    let withdrawn = s.record("nats-subject", &withdraw(PURPOSE)).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let stream = loop {
        if let Ok(mut stream) = js.get_stream(&name).await
            && stream.info().await.is_ok_and(|info| info.state.messages >= 2)
        {
            break stream;
        }
        assert!(Instant::now() < deadline, "{name}: two messages not stored within 15 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    for (seq, (kind, placed)) in
        [("consent.granted", &granted[0]), ("consent.withdrawn", &withdrawn[0])].into_iter().enumerate()
    {
        let m = stream.get_raw_message(seq as u64 + 1).await.expect("stored message");
        assert_eq!(m.subject.as_str(), format!("{prefix}.{kind}"));
        let e: Value = serde_json::from_slice(&m.payload).expect("CloudEvent JSON");
        assert_eq!(
            (&e["specversion"], &e["type"], &e["id"]),
            (&json!("1.0"), &json!(kind), &placed["id"]),
            "{e}"
        );
        assert_eq!(
            (&e["subject"], &e["data"]["event"]["seq"]),
            (&json!("nats-subject"), &placed["seq"]),
            "{e}"
        );
        let id = m.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_owned());
        assert_eq!(id.as_deref(), Some(str_of(&e["id"])), "Nats-Msg-Id is the CloudEvent id");
    }
    let id = str_of(&d["id"]).to_owned();
    let done = eventually("deliveries recorded", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move {
            let done = deliveries(s, id, Some("delivered")).await;
            (done.len() == 2).then_some(done)
        }
    })
    .await;
    assert!(done.iter().all(|d| d["attempts"] == 1), "{done:?}");
    drop(s.stop().await);
}

/// Deletes a JetStream stream when dropped (also while unwinding), on a runtime of its own.
struct DeleteStream(String);

impl Drop for DeleteStream {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(client) = async_nats::connect(NATS_URL).await {
                    let _ = async_nats::jetstream::new(client).delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

// ---------------------------------------------------------------------------------------------------
// 6. MQTT.

async fn mqtt_subscribers_receive_each_event_at_qos_1(backend: Backend) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let prefix = format!("consentry-test/{}", unique());
    let mut options = MqttOptions::new(format!("consentry-test-sub-{}", unique()), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    client.subscribe(format!("{prefix}/#"), QoS::AtLeastOnce).await.expect("subscribe");
    let subscribed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no SubAck in time".to_owned()));
    if let Err(why) = subscribed {
        unreachable_service("Mosquitto (MQTT)", &why);
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });

    let s = TestServer::start_on(backend).await;
    let body = json!({"name": "iot", "kind": "mqtt", "url": "mqtt://127.0.0.1:1883", "topic": prefix, "event_types": ["consent.*"]});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    assert_eq!((&d["kind"], &d["topic"]), (&json!("mqtt"), &json!(prefix)));
    assert!(d.get("secret").is_none() && d.get("subject").is_none(), "{d}");
    let granted = s.record("mqtt-subject", &grant(PURPOSE, &["email"])).await;
    let withdrawn = s.record("mqtt-subject", &withdraw(PURPOSE)).await;

    for (kind, placed) in [("consent.granted", &granted[0]), ("consent.withdrawn", &withdrawn[0])] {
        let p = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} on {prefix}/# within 15 s"))
            .expect("the subscriber runs");
        assert_eq!(p.topic, format!("{prefix}/{kind}"));
        assert_eq!(p.qos, QoS::AtLeastOnce);
        let e: Value = serde_json::from_slice(&p.payload).expect("CloudEvent JSON");
        assert_eq!(
            (&e["specversion"], &e["type"], &e["id"]),
            (&json!("1.0"), &json!(kind), &placed["id"]),
            "{e}"
        );
        assert_eq!((&e["subject"], &e["source"]), (&json!("mqtt-subject"), &json!("urn:consentry")), "{e}");
        assert_eq!(e["data"]["event"]["hash"], placed["hash"], "{e}");
    }
    let _ = client.disconnect().await;
    pump.abort();
    drop(s.stop().await);
}
