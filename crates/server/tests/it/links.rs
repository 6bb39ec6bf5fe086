//! Linking two subjects end to end: choices merge by the documented rule (recorded with actor `link:…`
//! and their original time), identifiers, records, devices and tokens follow the person, the old id is an
//! alias (after a restart too, and on another node of the cluster), refusals have their codes, and erasing
//! the person through either id erases both.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, Node, TestServer, assert_code, both_backends, grant, str_of, withdraw,
};

both_backends!(
    linking_merges_moves_and_aliases,
    linking_refuses_and_erasure_takes_both,
    carried_choices_show_as_a_linked_record
);

/// A choice a link carried over shows in the person's history as theirs from a linked record, not as "Our
/// systems", in English and German; the ledger keeps its pseudonymous actor.
async fn carried_choices_show_as_a_linked_record(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("app-install-9", &grant("analytics", &[])).await;
    s.record("ivy", &withdraw("marketing.direct")).await;
    s.post("/v1/subjects/ivy/links", ADMIN_KEY, &json!({"from": "app-install-9"}), 200).await;
    let history = s.get("/v1/subjects/ivy/consents/history", ADMIN_KEY, 200).await;
    let carried = history["events"].as_array().expect("events").iter().find(|e| e["purpose"] == "analytics");
    let actor = str_of(&carried.expect("the carried grant")["actor"]);
    assert!(actor.starts_with("link:") && !actor.contains("app-install-9"), "{actor}");
    let minted = crate::preferences::mint(&s, "ivy", &json!({})).await;
    let mut v = crate::preferences::Visitor::new(&s);
    let page = v.open_link(str_of(&minted["token"])).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("By: A linked record of yours (carried over when your records were linked)"),
        "{}",
        page.text
    );
    // ivy's own withdrawal, recorded by a service, stays "Our systems".
    assert!(
        page.text.contains("Usage analytics</p><p class=\"meta\">By: A linked record of yours"),
        "{}",
        page.text
    );
    let german = v.get("/preferences?lang=de").await;
    assert!(
        german.text.contains(
            "Ein verknüpfter Datensatz von Ihnen (übernommen, als Ihre Datensätze verknüpft wurden)"
        ),
        "{}",
        german.text
    );
    s.stop().await;
}

async fn allowed(base: &str, subject: &str, purpose: &str, channel: Option<&str>) -> bool {
    let mut body = json!({"subject": subject, "purpose": purpose});
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    let reply = reqwest::Client::new()
        .post(format!("{base}/v1/check"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("check");
    assert_eq!(reply.status(), 200);
    let answer: Value = reply.json().await.expect("answer");
    answer["allowed"].as_bool().expect("allowed")
}

async fn linking_merges_moves_and_aliases(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    // Another node on the same database learns of the link from its follower.
    let node = Node::beside(&s).await;
    // The anonymous install granted analytics first; then the account withdrew it; then the install
    // granted direct marketing by e-mail.
    s.record("anon-1", &grant("analytics", &[])).await;
    s.record("acct-1", &withdraw("analytics")).await;
    let theirs = s.record("anon-1", &grant("marketing.direct", &["email"])).await;
    s.post(
        "/v1/subjects/anon-1/identifiers",
        ADMIN_KEY,
        &json!({"type": "email", "value": "ana@example.com"}),
        201,
    )
    .await;
    let record = json!({"subject": "anon-1", "category": "user.device.telemetry", "purpose": "analytics",
        "content_type": "text/plain", "data": STANDARD.encode(b"linked reading")});
    let stored = s.post("/v1/records", ADMIN_KEY, &record, 201).await;
    let device = json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"], "purposes": ["analytics"]});
    let paired = s.post("/v1/subjects/anon-1/devices", ADMIN_KEY, &device, 201).await;
    let device_token = str_of(&paired["token"]).to_owned();
    let minted = s.post("/v1/subjects/anon-1/tokens", ADMIN_KEY, &json!({}), 201).await;
    let anon_token = str_of(&minted["token"]).to_owned();

    // Refused: a key without both scopes, a person's token.
    let (_, writer) = s.create_key("writer", &["consent:write"]).await;
    s.post("/v1/subjects/acct-1/links", &writer, &json!({"from": "anon-1"}), 403).await;
    s.post("/v1/subjects/anon-1/links", &anon_token, &json!({"from": "acct-1"}), 403).await;

    let linked = s.post("/v1/subjects/acct-1/links", ADMIN_KEY, &json!({"from": "anon-1"}), 200).await;
    assert_eq!(linked["subject"], "acct-1");
    assert_eq!(linked["from"], "anon-1");
    assert_eq!(linked["moved"], json!({"identifiers": 1, "records": 1, "devices": 1, "requests": 0}));
    // Only the newer choice came over, at its original time; the older grant did not pass the withdrawal.
    let events = linked["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{linked}");
    assert_eq!(
        (events[0]["purpose"].as_str(), events[0]["action"].as_str()),
        (Some("marketing.direct"), Some("grant"))
    );
    assert_eq!(events[0]["occurred_at"], theirs[0]["recorded_at"], "{linked}");
    assert!(linked["receipt"].is_object(), "{linked}");
    let actor = str_of(&events[0]["actor"]);
    assert!(
        actor.starts_with("link:") && !actor.contains("anon-1"),
        "the ledger names no subject id: {actor}"
    );

    // Checks under either id answer for the person.
    for who in ["acct-1", "anon-1"] {
        assert!(allowed(&s.base, who, "marketing.direct", Some("email")).await, "{who}");
        assert!(!allowed(&s.base, who, "analytics", None).await, "{who}: the withdrawal stands");
    }
    // The identifier, the record, the device and the old token followed.
    let found = s.get("/v1/subjects?identifier=email:ana@example.com", ADMIN_KEY, 200).await;
    assert_eq!(found["subjects"], json!([{"subject": "acct-1"}]));
    let listed = s.get("/v1/subjects/acct-1/records", ADMIN_KEY, 200).await;
    assert_eq!(listed["records"][0]["id"], stored["id"]);
    let reply = s
        .send(reqwest::Method::GET, &format!("/v1/records/{}", str_of(&stored["id"])), ADMIN_KEY, None)
        .await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (200, "linked reading"),
        "re-sealed under the survivor's key"
    );
    let devices = s.get("/v1/subjects/acct-1/devices", ADMIN_KEY, 200).await;
    assert_eq!(devices["devices"][0]["id"], paired["id"]);
    // The device asks about the id it was paired under, and is answered for the person.
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/check", s.base))
        .bearer_auth(&device_token)
        .json(&json!({"subject": "anon-1", "purpose": "analytics", "category": "user.device.telemetry"}))
        .send()
        .await
        .expect("device check");
    assert_eq!(reply.status(), 200);
    let answer: Value = reply.json().await.expect("answer");
    assert_eq!(answer["allowed"], false, "the survivor's withdrawal answers: {answer}");
    let mine = s.get("/v1/subjects/acct-1/consents", &anon_token, 200).await;
    assert_eq!(mine["subject"], "acct-1");
    let old = s.get("/v1/subjects/anon-1/consents", ADMIN_KEY, 200).await;
    assert_eq!(old["subject"], "acct-1", "a route under the old id answers for the survivor");
    // A consent write under the old id is the survivor's.
    let written = s.record("anon-1", &withdraw("marketing.direct")).await;
    assert_eq!(written[0]["subject"], "acct-1");
    assert!(!allowed(&s.base, "acct-1", "marketing.direct", Some("email")).await);

    if let Some(node) = node {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Without the alias, anon-1's own grant of analytics would still answer there.
        while allowed(&node.base, "anon-1", "analytics", None).await {
            assert!(Instant::now() < deadline, "the other node did not learn of the link within 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        node.stop().await;
    }
    // Revoking the survivor's tokens revokes those minted for the old id.
    s.delete("/v1/subjects/acct-1/tokens", ADMIN_KEY, 204).await;
    let reply = s.send(reqwest::Method::GET, "/v1/subjects/acct-1/consents", &anon_token, None).await;
    assert_eq!(reply.status, 401, "{}", reply.text);

    // After a restart the alias holds.
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert!(!allowed(&s.base, "anon-1", "analytics", None).await, "anon-1 answers as acct-1");
    let old = s.get("/v1/subjects/anon-1/identifiers", ADMIN_KEY, 200).await;
    assert_eq!(old["identifiers"].as_array().map(Vec::len), Some(1));

    // The Rust client links too; this grant is newer than acct-1's withdrawal: it wins.
    s.record("anon-2", &grant("analytics", &[])).await;
    let client = consentry_client::Client::new(&s.base, ADMIN_KEY).expect("client");
    let linked = client.link("acct-1", "anon-2").await.expect("link");
    assert_eq!((linked.subject.as_str(), linked.from.as_str()), ("acct-1", "anon-2"));
    assert_eq!(linked.events.len(), 1, "{linked:?}");
    assert!(allowed(&s.base, "acct-1", "analytics", None).await);
    let err = client.link("acct-1", "anon-2").await.expect_err("already linked");
    assert!(matches!(err, consentry_client::Error::Problem { status: 409, .. }), "{err:?}");
}

async fn linking_refuses_and_erasure_takes_both(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ben", &grant("analytics", &[])).await;
    s.record("ben-app", &grant("marketing.direct", &["email"])).await;
    s.record("cleo", &grant("analytics", &[])).await;
    let p = s.post("/v1/subjects/ben/links", ADMIN_KEY, &json!({"from": "ben"}), 422).await;
    assert_eq!(p["errors"][0]["path"], "from", "{p}");
    assert_code(
        &s.post("/v1/subjects/ben/links", ADMIN_KEY, &json!({"from": "nobody-known"}), 404).await,
        "not_found",
    );
    // A record with an age, or in a guardian relation, is not merged: the age would not follow it.
    s.record("kid-app", &grant("analytics", &[])).await;
    s.put("/v1/subjects/kid-app/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    assert_code(
        &s.post("/v1/subjects/cleo/links", ADMIN_KEY, &json!({"from": "kid-app"}), 409).await,
        "conflict",
    );
    s.post("/v1/subjects/kid-app/guardians", ADMIN_KEY, &json!({"guardian": "cleo"}), 201).await;
    assert_code(
        &s.post("/v1/subjects/ben/links", ADMIN_KEY, &json!({"from": "cleo"}), 409).await,
        "conflict",
    );
    // Nor is a household member: the membership would not follow it.
    let home = s.post("/v1/households", ADMIN_KEY, &json!({"name": "Home"}), 201).await;
    let home = home["id"].as_str().expect("household id").to_owned();
    s.post(&format!("/v1/households/{home}/members"), ADMIN_KEY, &json!({"subject": "ben-app"}), 201).await;
    assert_code(
        &s.post("/v1/subjects/ben/links", ADMIN_KEY, &json!({"from": "ben-app"}), 409).await,
        "conflict",
    );
    s.delete(&format!("/v1/households/{home}/members/ben-app"), ADMIN_KEY, 204).await;
    s.post("/v1/subjects/ben/links", ADMIN_KEY, &json!({"from": "ben-app"}), 200).await;
    // Once linked, the old id joins a household as its survivor.
    let member = s
        .post(&format!("/v1/households/{home}/members"), ADMIN_KEY, &json!({"subject": "ben-app"}), 201)
        .await;
    assert_eq!(member["subject"], "ben", "{member}");
    s.delete(&format!("/v1/households/{home}/members/ben-app"), ADMIN_KEY, 204).await;
    // `from` already an alias; the survivor named by its alias is resolved to it.
    assert_code(
        &s.post("/v1/subjects/cleo/links", ADMIN_KEY, &json!({"from": "ben-app"}), 409).await,
        "subject_linked",
    );
    let p = s.post("/v1/subjects/ben-app/links", ADMIN_KEY, &json!({"from": "ben"}), 422).await;
    assert_code(&p, "validation_failed");

    // Erasing the person through the old id erases the survivor and the alias.
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "ben-app", "type": "erasure"}), 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = s.send(reqwest::Method::GET, "/v1/subjects/ben/consents", ADMIN_KEY, None).await;
        if reply.status == 410 {
            break;
        }
        assert!(Instant::now() < deadline, "the erasure did not finish within 60 s: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for who in ["ben", "ben-app"] {
        let reply =
            s.send(reqwest::Method::GET, &format!("/v1/subjects/{who}/consents"), ADMIN_KEY, None).await;
        assert_eq!(reply.status, 410, "{who}: {}", reply.text);
        assert!(!allowed(&s.base, who, "analytics", None).await, "{who}");
    }
    assert_code(
        &s.post("/v1/subjects/cleo/links", ADMIN_KEY, &json!({"from": "ben"}), 410).await,
        "subject_erased",
    );
}
