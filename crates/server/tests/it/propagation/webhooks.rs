//! Webhooks on the happy path: signed CloudEvents in order, event-type filters, pausing, and the
//! destination API around them (validation, scopes, moving and deleting).

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use super::receiver::{Receiver, first_arrivals, verify_signature};
use super::{PURPOSE, deliveries, eventually, metrics, patch, sample, webhook};
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of, withdraw};

both_backends!(
    webhooks_get_signed_cloudevents_in_order_and_destinations_are_managed,
    each_installation_sends_its_own_source
);

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
        assert_eq!(e["source"], s.state.config.event_source(), "{e}");
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

/// Two installations feeding one consumer never share a `(source, id)`: the default source is the
/// installation's, the same after a restart (and on every node of one store); a configured one wins.
async fn each_installation_sends_its_own_source(backend: Backend) {
    let other_backend = match &backend {
        Backend::Embedded => Backend::Embedded,
        Backend::Postgres(_) => Backend::Postgres(
            consentry_store::testing::TestDatabase::create().await.expect("a second test database"),
        ),
    };
    let one = TestServer::start_on(backend).await;
    let other = TestServer::start_on(other_backend).await;
    let source = one.state.config.event_source().to_owned();
    assert!(source.starts_with("urn:consentry:") && source.len() > "urn:consentry:".len(), "{source}");
    assert_ne!(source, other.state.config.event_source(), "another installation, another source");
    drop(other.stop().await);
    let again = TestServer::start_in(one.stop().await, |_| {}).await;
    assert_eq!(again.state.config.event_source(), source, "the same installation after a restart");

    let configured = "urn:example:consent";
    let s = TestServer::start_in(again.stop().await, |c| c.event_source = Some(configured.into())).await;
    let r = Receiver::start().await;
    webhook(&s, "all", &r.url("all"), &["*"]).await;
    s.record("carol", &grant(PURPOSE, &["email"])).await;
    let hits = r.wait_unique("all", 1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].event()["source"], configured, "a configured source wins");
    drop(s.stop().await);
}
