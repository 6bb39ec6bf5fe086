//! Paired devices: pairing and unpairing, device tokens kept to their subject and declaration, signed
//! consent snapshots (ETag, offline verification with the SDK), the SSE stream on this node and from
//! another node, and the retained MQTT snapshot.

use std::time::{Duration, Instant};

use consentry_client::DeviceConsent;
use consentry_core::proof::Jwks;
use reqwest::Method;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, Node, TestServer, assert_code, both_backends, grant, str_of, withdraw,
};

const TELEMETRY: &str = "user.device.telemetry";

fn speaker() -> Value {
    json!({"name": "Kitchen speaker", "kind": "speaker", "categories": [TELEMETRY], "purposes": ["analytics"]})
}

/// Pairs a device for `subject`; returns (id, token).
async fn pair(server: &TestServer, subject: &str, body: &Value) -> (String, String) {
    let out = server.post(&format!("/v1/subjects/{subject}/devices"), ADMIN_KEY, body, 201).await;
    (str_of(&out["id"]).to_owned(), str_of(&out["token"]).to_owned())
}

pub(crate) async fn jwks(base: &str) -> Jwks {
    let text = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("a JWKS")
}

/// `GET /v1/device/consent` with `token` (and `If-None-Match`): (status, ETag, body).
pub(crate) async fn snapshot(base: &str, token: &str, etag: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new().get(format!("{base}/v1/device/consent")).bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.expect("snapshot request");
    let status = response.status().as_u16();
    let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, etag, response.text().await.expect("body"))
}

fn analytics_grant() -> Value {
    grant("analytics", &["on_device"])
}

async fn device_flow(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (id, token) = pair(&server, "user-1", &speaker()).await;
    assert!(id.starts_with("dev_") && token.starts_with("cdt_"), "{id} {token}");
    let listed = server.get("/v1/subjects/user-1/devices", ADMIN_KEY, 200).await;
    let devices = listed["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], json!(id));
    assert_eq!(devices[0]["categories"], json!([TELEMETRY]));
    assert!(devices[0].get("token").is_none(), "the token is shown once, at pairing: {listed}");
    assert!(!listed.to_string().contains(&token));

    // Before any consent: a valid snapshot that denies.
    let keys = jwks(&server.base).await;
    let (status, etag, jws) = snapshot(&server.base, &token, None).await;
    assert_eq!(status, 200, "{jws}");
    let etag = etag.expect("an ETag");
    let consent = DeviceConsent::verify(&jws, &keys).expect("the snapshot verifies");
    assert_eq!(
        (consent.snapshot().device_id.as_str(), consent.snapshot().subject.as_str()),
        (id.as_str(), "user-1")
    );
    assert!(!consent.allowed("analytics", TELEMETRY, "on_device"));
    let max_age = consent.snapshot().exp - consent.snapshot().iat;
    assert_eq!(max_age, 86_400, "exp = iat + device_snapshot_max_age_secs");

    // Nothing changed: 304. An unrelated subject's write changes nothing either.
    let (status, _, body) = snapshot(&server.base, &token, Some(&etag)).await;
    assert_eq!((status, body.as_str()), (304, ""));
    // `*` matches any current snapshot, and a paired device always has one (RFC 9110 §13.1.2).
    // Its ETag is the current snapshot's: the same decisions (the part before the dot), issued in this or a
    // later second (the part after it).
    let (status, any_etag, body) = snapshot(&server.base, &token, Some("*")).await;
    assert_eq!((status, body.as_str()), (304, ""));
    let decisions = |tag: &str| tag.split('.').next().map(str::to_owned);
    assert_eq!(any_etag.as_deref().and_then(decisions), decisions(&etag), "{any_etag:?} vs {etag}");
    // Only a device's own token reads a snapshot.
    assert_code(&server.get("/v1/device/consent", ADMIN_KEY, 403).await, "forbidden");
    server.record("user-2", &analytics_grant()).await;
    assert_eq!(snapshot(&server.base, &token, Some(&etag)).await.0, 304);

    // The owner grants: a new snapshot that allows, with the ledger position and the server's decisions.
    let events = server.record("user-1", &analytics_grant()).await;
    let seq = events[0]["seq"].as_u64().expect("seq");
    let (status, new_etag, jws) = snapshot(&server.base, &token, Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
    assert!(consent.allowed("analytics", TELEMETRY, "on_device"));
    assert!(!consent.allowed("analytics", TELEMETRY, "in_app"), "granted on on_device only");
    assert!(!consent.allowed("marketing", "user.contact.email", "email"), "not declared");
    assert!(consent.snapshot().ledger_seq >= seq);
    let decision = consent
        .snapshot()
        .decisions
        .iter()
        .find(|d| d.purpose == "analytics" && d.channel.as_deref() == Some("on_device"))
        .expect("a decision for analytics on on_device");
    assert!(decision.allowed);
    assert_eq!(decision.event_id.as_deref(), Some(format!("evt_{seq}").as_str()));
    // The server's check agrees with the device's offline answer.
    let online = server
        .post("/v1/check", &token, &json!({"subject": "user-1", "purpose": "analytics", "category": TELEMETRY, "channel": "on_device"}), 200)
        .await;
    assert_eq!(online["allowed"], json!(true));

    // Unpairing revokes the token at once.
    server.delete(&format!("/v1/subjects/user-1/devices/{id}"), ADMIN_KEY, 204).await;
    let (status, _, body) = snapshot(&server.base, &token, None).await;
    assert_eq!(status, 401, "{body}");
    let problem = server.get("/v1/device/consent", &token, 401).await;
    assert_code(&problem, "unauthorized");
    server
        .post(
            "/v1/check",
            &token,
            &json!({"subject": "user-1", "purpose": "analytics", "category": TELEMETRY}),
            401,
        )
        .await;
    server.delete(&format!("/v1/subjects/user-1/devices/{id}"), ADMIN_KEY, 404).await;
    let listed = server.get("/v1/subjects/user-1/devices", ADMIN_KEY, 200).await;
    assert_eq!(listed["devices"], json!([]));
    server.stop().await;
}

async fn device_boundaries(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_, token) = pair(&server, "user-1", &speaker()).await;
    let (other_id, _) = pair(&server, "user-2", &speaker()).await;
    let check = |body: Value, status: u16| {
        let (server, token) = (&server, token.clone());
        async move { server.post("/v1/check", &token, &body, status).await }
    };
    check(json!({"subject": "user-1", "purpose": "analytics", "category": TELEMETRY}), 200).await;
    for (body, why) in [
        (json!({"subject": "user-2", "purpose": "analytics", "category": TELEMETRY}), "another subject"),
        (
            json!({"subject": "user-1", "purpose": "analytics", "category": "user.contact.email"}),
            "undeclared category",
        ),
        (
            json!({"subject": "user-1", "purpose": "marketing.direct", "category": TELEMETRY}),
            "undeclared purpose",
        ),
        (json!({"subject": "user-1", "purpose": "analytics"}), "no category named"),
    ] {
        let problem = check(body, 403).await;
        assert_code(&problem, "forbidden");
        assert!(!problem["detail"].as_str().unwrap_or("").is_empty(), "{why}");
    }
    // A device token reaches only the device's routes and checks: its subject's own routes and service
    // routes are 403; unknown and missing tokens are 401, and a service key is no device (403).
    assert_code(&server.get("/v1/subjects/user-1/devices", &token, 403).await, "forbidden");
    assert_code(&server.get("/v1/subjects/user-1/consents", &token, 403).await, "forbidden");
    assert_code(
        &server.post("/v1/subjects/user-1/consents", &token, &analytics_grant(), 403).await,
        "forbidden",
    );
    assert_code(&server.get("/v1/keys", &token, 403).await, "forbidden");
    assert_code(&server.get("/v1/device/consent", "cdt_unknown-token", 401).await, "unauthorized");
    assert_code(
        &server
            .post(
                "/v1/check",
                "cdt_unknown-token",
                &json!({"subject": "user-1", "purpose": "analytics"}),
                401,
            )
            .await,
        "unauthorized",
    );
    assert_code(&server.get("/v1/device/consent", "", 401).await, "unauthorized");
    assert_code(&server.get("/v1/device/consent", ADMIN_KEY, 403).await, "forbidden");

    // The person pairs, lists and unpairs their own devices with their subject token, nobody else's.
    let minted = server.post("/v1/subjects/user-1/tokens", ADMIN_KEY, &json!({"ttl": 600}), 201).await;
    let own = str_of(&minted["token"]).to_owned();
    let paired = server.post("/v1/subjects/user-1/devices", &own, &speaker(), 201).await;
    let listed = server.get("/v1/subjects/user-1/devices", &own, 200).await;
    assert_eq!(listed["devices"].as_array().map(Vec::len), Some(2));
    server.delete(&format!("/v1/subjects/user-1/devices/{}", str_of(&paired["id"])), &own, 204).await;
    assert_code(&server.get("/v1/subjects/user-2/devices", &own, 403).await, "forbidden");
    assert_code(&server.post("/v1/subjects/user-2/devices", &own, &speaker(), 403).await, "forbidden");
    assert_code(
        &server.delete(&format!("/v1/subjects/user-2/devices/{other_id}"), &own, 403).await,
        "forbidden",
    );
    assert_code(&server.get("/v1/device/consent", &own, 403).await, "forbidden");

    // Pairing needs devices:write (with check and records:write, see delegation.rs), listing consent:read;
    // another subject's device is not found.
    let (_, reader) = server.create_key("reader", &["consent:read"]).await;
    assert_code(&server.post("/v1/subjects/user-1/devices", &reader, &speaker(), 403).await, "forbidden");
    let (_, writer) = server.create_key("writer", &["consent:write"]).await;
    assert_code(&server.post("/v1/subjects/user-1/devices", &writer, &speaker(), 403).await, "forbidden");
    server.get("/v1/subjects/user-1/devices", &reader, 200).await;
    assert_code(
        &server.delete(&format!("/v1/subjects/user-1/devices/{other_id}"), ADMIN_KEY, 404).await,
        "not_found",
    );
    assert_eq!(
        server.get("/v1/subjects/user-2/devices", ADMIN_KEY, 200).await["devices"].as_array().map(Vec::len),
        Some(1)
    );

    // Bad pairing requests are problems with stable codes.
    let path = "/v1/subjects/user-1/devices";
    for (body, code) in [
        (
            json!({"name": "x", "kind": "speaker", "categories": ["user.nope"], "purposes": ["analytics"]}),
            "unknown_category",
        ),
        (
            json!({"name": "x", "kind": "speaker", "categories": [TELEMETRY], "purposes": ["nope"]}),
            "unknown_purpose",
        ),
        (
            json!({"name": "x", "kind": "Speaker!", "categories": [TELEMETRY], "purposes": ["analytics"]}),
            "validation_failed",
        ),
        (
            json!({"name": " ", "kind": "speaker", "categories": [TELEMETRY], "purposes": ["analytics"]}),
            "validation_failed",
        ),
        (
            json!({"name": "x", "kind": "speaker", "categories": [], "purposes": ["analytics"]}),
            "validation_failed",
        ),
        (
            json!({"name": "x", "kind": "speaker", "categories": [TELEMETRY], "purposes": ["analytics"], "extra": 1}),
            "validation_failed",
        ),
    ] {
        assert_code(&server.post(path, ADMIN_KEY, &body, 422).await, code);
    }
    server.raw(Method::POST, path, ADMIN_KEY, "application/json", "{", 400).await;
    server.post("/v1/subjects/%20bad/devices", ADMIN_KEY, &speaker(), 400).await;
    server.stop().await;
}

/// Reads Server-Sent Events from a response and hands out the data of each `consent` event.
pub(crate) struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub(crate) async fn open(base: &str, token: &str) -> Self {
        let response = reqwest::Client::new()
            .get(format!("{base}/v1/device/consent/stream"))
            .bearer_auth(token)
            .send()
            .await
            .expect("stream request");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { response, buffer: String::new() }
    }

    /// The next `consent` event's data, `None` when the stream ended or `wait` passed.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<String> {
        tokio::time::timeout(wait, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if block.lines().any(|l| l == "event: consent") {
                        return block.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_owned);
                    }
                }
                match self.response.chunk().await.expect("stream chunk") {
                    Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                    None => return None,
                }
            }
        })
        .await
        .unwrap_or(None)
    }
}

async fn sse_delivers_fresh_snapshots(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let keys = jwks(&server.base).await;
    let (id, token) = pair(&server, "user-1", &speaker()).await;
    let mut stream = SseReader::open(&server.base, &token).await;
    let first = stream.next(Duration::from_secs(5)).await.expect("a snapshot at once");
    assert!(!DeviceConsent::verify(&first, &keys).expect("verifies").allowed(
        "analytics",
        TELEMETRY,
        "on_device"
    ));

    for (body, allowed) in [(analytics_grant(), true), (withdraw("analytics"), false)] {
        server.record("user-1", &body).await;
        let written = Instant::now();
        let jws = stream.next(Duration::from_secs(5)).await.expect("a fresh snapshot after the change");
        let took = written.elapsed();
        assert!(took < Duration::from_secs(1), "the fresh snapshot took {took:?}");
        let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
        assert_eq!(consent.allowed("analytics", TELEMETRY, "on_device"), allowed);
    }
    // Another subject's change sends nothing; unpairing ends the stream.
    server.record("user-2", &analytics_grant()).await;
    server.delete(&format!("/v1/subjects/user-1/devices/{id}"), ADMIN_KEY, 204).await;
    assert_eq!(
        stream.next(Duration::from_secs(5)).await,
        None,
        "no snapshot after an unrelated change, then the end"
    );
    server.stop().await;
}

both_backends!(
    device_flow,
    device_boundaries,
    sse_delivers_fresh_snapshots,
    a_device_stores_records_for_its_own_subject
);

/// The vault takes a device's records for its own subject, within its declaration and the consent.
async fn a_device_stores_records_for_its_own_subject(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (id, token) = pair(&s, "kim", &speaker()).await;
    let record = |subject: Option<&str>, category: &str, purpose: &str| {
        let mut body = json!({"category": category, "purpose": purpose, "json": {"temp": 4}});
        if let Some(subject) = subject {
            body["subject"] = json!(subject);
        }
        body
    };
    // No consent yet: refused, whoever stores it.
    let p = s.post("/v1/records", &token, &record(None, TELEMETRY, "analytics"), 403).await;
    assert_code(&p, "consent_required");
    // A grant of analytics as a whole (records are kept, not sent through a channel).
    s.record("kim", &grant("analytics", &[])).await;
    let stored = s.post("/v1/records", &token, &record(None, TELEMETRY, "analytics"), 201).await;
    assert_eq!(stored["subject"], "kim", "{stored}");
    assert_eq!(stored["device_id"], id.as_str(), "the record names the device that collected it: {stored}");
    s.post("/v1/records", &token, &record(Some("kim"), TELEMETRY, "analytics"), 201).await;
    // Another subject, an undeclared category or purpose: 403, and nothing stored.
    let p = s.post("/v1/records", &token, &record(Some("alex"), TELEMETRY, "analytics"), 403).await;
    assert_code(&p, "forbidden");
    let p = s.post("/v1/records", &token, &record(None, "user.biometric.voice", "analytics"), 403).await;
    assert_code(&p, "forbidden");
    let p = s.post("/v1/records", &token, &record(None, TELEMETRY, "marketing.direct"), 403).await;
    assert_code(&p, "forbidden");
    let listed = s.get(&format!("/v1/subjects/kim/records?device={id}"), ADMIN_KEY, 200).await;
    assert_eq!(listed["records"].as_array().expect("records").len(), 2, "{listed}");
    // The device's token reads nothing back: the vault is read by services and the person.
    s.get("/v1/subjects/kim/records", &token, 403).await;
    // Unpaired: its token is refused.
    s.delete(&format!("/v1/subjects/kim/devices/{id}"), ADMIN_KEY, 204).await;
    s.post("/v1/records", &token, &record(None, TELEMETRY, "analytics"), 401).await;
}

/// A change written on one node reaches a stream open on another within a second (the follower), and an
/// unpairing on one node ends the other's stream and refuses the token there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_follows_writes_of_another_node() {
    let Some(db) = consentry_store::testing::TestDatabase::create().await else { return };
    let (node_a, node_b) = (Node::start(&db.url).await, Node::start(&db.url).await);
    let (a, b) = (node_a.base.clone(), node_b.base.clone());
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, body: Value| {
        client.post(format!("{base}{path}")).bearer_auth(ADMIN_KEY).json(&body).send()
    };
    let paired: Value =
        post(&a, "/v1/subjects/user-1/devices", speaker()).await.expect("pair").json().await.expect("json");
    let (id, token) = (str_of(&paired["id"]).to_owned(), str_of(&paired["token"]).to_owned());
    let keys = jwks(&b).await;
    let mut stream = SseReader::open(&b, &token).await;
    stream.next(Duration::from_secs(5)).await.expect("a first snapshot");

    let r = post(&a, "/v1/subjects/user-1/consents", analytics_grant()).await.expect("grant");
    assert_eq!(r.status().as_u16(), 201);
    let written = Instant::now();
    let jws =
        stream.next(Duration::from_secs(5)).await.expect("a fresh snapshot from the other node's write");
    let took = written.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(DeviceConsent::verify(&jws, &keys).expect("verifies").allowed(
        "analytics",
        TELEMETRY,
        "on_device"
    ));

    let r = client
        .delete(format!("{a}/v1/subjects/user-1/devices/{id}"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("unpair");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(snapshot(&b, &token, None).await.0, 401, "revoked on the other node at once");
    assert_eq!(stream.next(Duration::from_secs(8)).await, None, "the other node's stream ends");
    node_a.stop().await;
    node_b.stop().await;
}

/// Which MQTT payloads a test waits for.
type Accept = Box<dyn Fn(&[u8]) -> bool + Send>;

/// With `mqtt_url` set, the snapshot is published retained at QoS 1, renewed on a change, and cleared on
/// unpairing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_retains_the_latest_snapshot() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let url = std::env::var("CONSENTRY_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_owned());
    let server = TestServer::with_config(|c| c.mqtt_url = Some(url.clone())).await;
    let keys = jwks(&server.base).await;
    let (id, token) = pair(&server, "user-1", &speaker()).await;
    server.record("user-1", &analytics_grant()).await;
    let topic = format!("consentry/devices/{id}/consent");

    // A subscriber gets the snapshot after the grant; one arriving later gets it too, retained.
    let subscribe = || async {
        let parsed = reqwest::Url::parse(&url).expect("mqtt url");
        let suffix: [u8; 6] = consentry_store::random_bytes().expect("random");
        let mut options = MqttOptions::new(
            format!("consentry-test-dev-{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            parsed.host_str().unwrap_or("127.0.0.1"),
            parsed.port().unwrap_or(1883),
        );
        options.set_keep_alive(Duration::from_secs(5));
        let (client, eventloop) = AsyncClient::new(options, 10);
        client.subscribe(&topic, QoS::AtLeastOnce).await.expect("subscribe");
        (client, eventloop)
    };
    // The first message whose payload `accept`s, within 5 s; Err when the broker is unreachable.
    let receive = |mut eventloop: rumqttc::EventLoop, accept: Accept| async move {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) if accept(&p.payload) => {
                        return Ok((p, eventloop));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("no message in time".to_owned()))
    };
    let granted = || -> Accept {
        let keys = keys.clone();
        Box::new(move |payload: &[u8]| {
            std::str::from_utf8(payload)
                .ok()
                .and_then(|jws| DeviceConsent::verify(jws, &keys).ok())
                .is_some_and(|c| c.allowed("analytics", TELEMETRY, "on_device"))
        })
    };
    let (_first, eventloop) = subscribe().await;
    match receive(eventloop, granted()).await {
        Ok(_) => {}
        Err(why) if why.contains("no message") => panic!("no snapshot allowing analytics arrived"),
        Err(why) => {
            consentry_store::testing::unreachable_service("Mosquitto (MQTT)", &why);
            return;
        }
    }
    // The broker now holds it: a new subscriber receives it as a retained message.
    let (_client, eventloop) = subscribe().await;
    let (publish, eventloop) = receive(eventloop, granted()).await.expect("the retained snapshot");
    assert_eq!(publish.topic, topic);
    assert_eq!(publish.qos, QoS::AtLeastOnce);
    assert!(publish.retain, "a late subscriber gets the retained message");
    let consent = DeviceConsent::verify(std::str::from_utf8(&publish.payload).expect("utf-8"), &keys)
        .expect("verifies");
    assert_eq!(consent.snapshot().device_id, id);

    // A withdrawal is published (live, to the subscriber already there).
    server.record("user-1", &withdraw("analytics")).await;
    let withdrawn = {
        let keys = keys.clone();
        Box::new(move |payload: &[u8]| {
            std::str::from_utf8(payload)
                .ok()
                .and_then(|jws| DeviceConsent::verify(jws, &keys).ok())
                .is_some_and(|c| !c.allowed("analytics", TELEMETRY, "on_device"))
        })
    };
    receive(eventloop, withdrawn).await.expect("the withdrawal's snapshot");

    // Unpairing clears the retained message: a new subscriber gets nothing retained.
    server.delete(&format!("/v1/subjects/user-1/devices/{id}"), ADMIN_KEY, 204).await;
    assert_eq!(snapshot(&server.base, &token, None).await.0, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_client2, eventloop) = subscribe().await;
    let anything = Box::new(|payload: &[u8]| !payload.is_empty());
    assert!(receive(eventloop, anything).await.is_err(), "no snapshot stays retained for an unpaired device");
    server.stop().await;
}
