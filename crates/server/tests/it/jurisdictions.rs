//! Jurisdictions in decisions: a check naming a place decides by its regime (opt-out allows until the
//! person opts out), a consent write sets the subject's place in the ledger, and the engine rebuilt at
//! start and the other nodes of a cluster learn it.

use std::time::{Duration, Instant};

use consentry_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::cluster::{node, post};
use crate::utils::{
    ADMIN_KEY, Backend, TestServer, answer, assert_code, both_backends, decided, grant, withdraw,
};

both_backends!(
    a_check_decides_by_the_place_it_names,
    a_consent_write_sets_the_subjects_place,
    the_rust_client_names_places,
    put_sets_the_place_as_a_locate_event
);

async fn a_check_decides_by_the_place_it_names(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let sharing = |j: Option<&str>| {
        let mut b = json!({"subject": "ada", "purpose": "third_party.sharing", "recipient": "ad_partners"});
        if let Some(j) = j {
            b["jurisdiction"] = json!(j);
        }
        b
    };
    // Nobody said anything: California lets it run, Germany and no place do not.
    assert_eq!(decided(&s, sharing(Some("US-CA"))).await, answer(true, "not_opted_out"));
    assert_eq!(decided(&s, sharing(Some("DE"))).await, answer(false, "no_consent"));
    assert_eq!(decided(&s, sharing(None)).await, answer(false, "no_consent"));
    // Virginia asks consent for sensitive data, which the default catalogue's sharing includes.
    assert_eq!(decided(&s, sharing(Some("US-VA"))).await, answer(false, "no_consent"));
    // Purposes without kinds are opt-in everywhere.
    let direct = json!({"subject": "ada", "purpose": "marketing.direct", "jurisdiction": "US-CA"});
    assert_eq!(decided(&s, direct).await, answer(false, "no_consent"));

    // An opt-out denies, in the batch too.
    s.record("ada", &withdraw("third_party.sharing")).await;
    assert_eq!(decided(&s, sharing(Some("US-CA"))).await, answer(false, "withdrawn"));
    let batch = json!({"checks": [sharing(Some("US-CA")), {"subject": "ben", "purpose": "third_party", "jurisdiction": "US-CA"}]});
    let out = s.post("/v1/check/batch", ADMIN_KEY, &batch, 200).await;
    assert_eq!(out["results"][0]["reason"], "withdrawn");
    assert_eq!(out["results"][1]["reason"], "not_opted_out");
    assert_eq!(out["results"][1]["allowed"], true);
    assert_eq!(out["results"][1]["event_id"], Value::Null);

    // A place the catalogue does not name is a 422 naming the field, never a silent answer.
    let p = s.post("/v1/check", ADMIN_KEY, &sharing(Some("US-WA")), 422).await;
    assert_code(&p, "unknown_jurisdiction");
    assert!(p["detail"].as_str().expect("detail").starts_with("jurisdiction: \"US-WA\""), "{p}");
    let batch = json!({"checks": [sharing(None), sharing(Some("XX"))]});
    let p = s.post("/v1/check/batch", ADMIN_KEY, &batch, 422).await;
    assert_code(&p, "unknown_jurisdiction");
    assert!(p["detail"].as_str().expect("detail").starts_with("checks[1].jurisdiction"), "{p}");
    let p = s.post("/v1/check", ADMIN_KEY, &sharing(Some("us-ca")), 422).await;
    assert_code(&p, "unknown_jurisdiction");
    s.stop().await;
}

async fn a_consent_write_sets_the_subjects_place(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let sharing = json!({"subject": "ada", "purpose": "third_party", "recipient": "ad_partners"});
    let mut body = grant("marketing.direct", &["email"]);
    body["jurisdiction"] = json!("US-CA");
    let events = s.record("ada", &body).await;
    assert_eq!(events[0]["jurisdiction"], "US-CA");
    assert_eq!(decided(&s, sharing.clone()).await, answer(true, "not_opted_out"));
    // The check's own place wins over the subject's.
    let mut in_germany = sharing.clone();
    in_germany["jurisdiction"] = json!("DE");
    assert_eq!(decided(&s, in_germany).await, answer(false, "no_consent"));
    // A later change of the same consent, without a place, leaves the place set.
    s.record("ada", &grant("marketing.direct", &["email"])).await;
    let history = s.get("/v1/subjects/ada/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(history["events"][0]["jurisdiction"], "US-CA");
    assert!(history["events"][1].get("jurisdiction").is_none(), "{history}");
    let current = s.get("/v1/subjects/ada/consents", ADMIN_KEY, 200).await;

    // An unknown place is refused, and nothing is recorded.
    let mut bad = grant("marketing.direct", &["email"]);
    bad["jurisdiction"] = json!("US-WA");
    let p = s.post("/v1/subjects/ada/consents", ADMIN_KEY, &bad, 422).await;
    assert_code(&p, "unknown_jurisdiction");

    // The engine rebuilt at start knows the place.
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(decided(&s, sharing.clone()).await, answer(true, "not_opted_out"));
    assert_eq!(s.get("/v1/subjects/ada/consents", ADMIN_KEY, 200).await, current, "the place is no consent");
    // Moving to Germany: opt-in again, also after a restart.
    let mut moved = withdraw("marketing.direct");
    moved["jurisdiction"] = json!("DE");
    s.record("ada", &moved).await;
    assert_eq!(decided(&s, sharing.clone()).await, answer(false, "no_consent"));
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(decided(&s, sharing).await, answer(false, "no_consent"));
    let audit = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!(audit["ok"], true, "{audit}");
    s.stop().await;
}

/// A place set on one node is known on the others (they follow the ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_nodes_learn_the_subjects_place() {
    let Some(db) = TestDatabase::create().await else { return };
    let a = node(&db.url).await;
    let b = node(&db.url).await;
    let client = reqwest::Client::new();
    let mut body = grant("marketing.direct", &["email"]);
    body["jurisdiction"] = json!("US-CA");
    let (status, out) = post(&client, format!("{}/v1/subjects/ada/consents", a.base), body).await;
    assert_eq!(status, 201, "{out}");
    let started = Instant::now();
    loop {
        let q = json!({"subject": "ada", "purpose": "third_party", "recipient": "ad_partners"});
        let (status, d) = post(&client, format!("{}/v1/check", b.base), q).await;
        assert_eq!(status, 200, "{d}");
        if d["reason"] == "not_opted_out" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "node b never learnt the place: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Moved on its own, by a `locate` event.
    let r = client
        .put(format!("{}/v1/subjects/ada/jurisdiction", a.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"jurisdiction": "DE"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    let started = Instant::now();
    loop {
        let q = json!({"subject": "ada", "purpose": "third_party", "recipient": "ad_partners"});
        let (_, d) = post(&client, format!("{}/v1/check", b.base), q).await;
        if d["reason"] == "no_consent" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "node b never learnt the move: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// The Rust client's calls carry the place.
async fn the_rust_client_names_places(backend: Backend) {
    use consentry_client::{Change, CheckRequest, Client, RecordConsents};
    let s = TestServer::start_on(backend).await;
    let client = Client::new(&s.base, ADMIN_KEY).expect("client");
    let body = RecordConsents::default().change(Change::withdraw("analytics")).jurisdiction("US-CA");
    let events = client.record_consents("cy", &body).await.expect("recorded");
    assert_eq!(events[0].jurisdiction.as_deref(), Some("US-CA"));
    let d =
        client.check(&CheckRequest::new("cy", "third_party").recipient("ad_partners")).await.expect("check");
    assert_eq!((d.allowed, d.reason.as_str()), (true, "not_opted_out"));
    let asked = [CheckRequest::new("cy", "third_party").jurisdiction("DE")];
    assert_eq!(client.check_batch(&asked).await.expect("batch")[0].reason, "no_consent");
    let err = client.check(&CheckRequest::new("cy", "third_party").jurisdiction("US-WA")).await;
    assert!(
        matches!(err, Err(consentry_client::Error::Problem { status: 422, ref code, .. }) if code == "unknown_jurisdiction")
    );
    let event = client.set_jurisdiction("cy", "DE").await.expect("set").expect("an event");
    assert_eq!((event.action.as_str(), event.jurisdiction.as_deref()), ("locate", Some("DE")));
    assert!(client.set_jurisdiction("cy", "DE").await.expect("set").is_none(), "already there");
    assert_eq!(client.jurisdiction("cy").await.expect("get").as_deref(), Some("DE"));
    assert_eq!(client.jurisdiction("nobody").await.expect("get"), None);
    s.stop().await;
}

/// `PUT /v1/subjects/{subject}/jurisdiction` records a `locate` event (once per move), which decisions,
/// the history and a restarted engine follow, and which is no consent.
async fn put_sets_the_place_as_a_locate_event(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let sharing = json!({"subject": "eve", "purpose": "third_party", "recipient": "ad_partners"});
    let path = "/v1/subjects/eve/jurisdiction";
    assert_eq!(s.get(path, ADMIN_KEY, 200).await, json!({"jurisdiction": null}));
    let set = s.put(path, ADMIN_KEY, &json!({"jurisdiction": "US-CA"}), 200).await;
    assert_eq!(set["jurisdiction"], "US-CA");
    let event = &set["event"];
    assert_eq!(
        (&event["action"], &event["purpose"], &event["jurisdiction"]),
        (&json!("locate"), &json!(""), &json!("US-CA"))
    );
    assert_eq!(decided(&s, sharing.clone()).await, answer(true, "not_opted_out"));
    assert_eq!(s.get(path, ADMIN_KEY, 200).await, json!({"jurisdiction": "US-CA"}));
    // Already there: nothing recorded.
    let again = s.put(path, ADMIN_KEY, &json!({"jurisdiction": "US-CA"}), 200).await;
    assert_eq!(again, json!({"jurisdiction": "US-CA"}));
    let p = s.put(path, ADMIN_KEY, &json!({"jurisdiction": "US-WA"}), 422).await;
    assert_code(&p, "unknown_jurisdiction");
    s.put(path, ADMIN_KEY, &json!({"jurisdiction": "x"}), 422).await;
    // An opt-out still denies there.
    s.record("eve", &withdraw("third_party")).await;
    assert_eq!(decided(&s, sharing.clone()).await, answer(false, "withdrawn"));
    s.put(path, ADMIN_KEY, &json!({"jurisdiction": "DE"}), 200).await;
    let history = s.get("/v1/subjects/eve/consents/history", ADMIN_KEY, 200).await;
    let actions: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["locate", "withdraw", "locate"]);
    let current = s.get("/v1/subjects/eve/consents", ADMIN_KEY, 200).await;
    let statements = current["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "a place is no consent: {current}");
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(s.get(path, ADMIN_KEY, 200).await, json!({"jurisdiction": "DE"}));
    s.put(path, ADMIN_KEY, &json!({"jurisdiction": "US-UT"}), 200).await;
    let fresh = json!({"subject": "eve", "purpose": "marketing.personalised_offers"});
    assert_eq!(decided(&s, fresh).await, answer(true, "not_opted_out"));
    let audit = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!(audit["ok"], true, "{audit}");
    s.stop().await;
}
