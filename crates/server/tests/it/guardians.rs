//! Children and guardians over HTTP: an age makes a known child, whose consent purposes need a guardian's
//! grant (refused 403 `guardian_required` from the child alone, never for a withdrawal), sale and sharing
//! never allowed; guardians recorded with their rules (not the child, not a child, no cycle, known
//! subjects); a guardian's token acts on the child's consents; a restarted engine and other nodes know
//! the child; nothing of the age is readable at rest, and erasure removes it.

use std::time::{Duration, Instant};

use consentry_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::cluster::{node, post};
use crate::utils::{
    ADMIN_KEY, Backend, TestServer, access_entries, answer, assert_code, at_rest, both_backends, decided,
    entry, grant, outbox, paused_destination, str_of, withdraw,
};

both_backends!(
    a_child_needs_a_guardian,
    a_guardian_is_named_by_pseudonym,
    concurrent_adds_close_no_cycle,
    a_childs_mixed_request_keeps_its_refusals,
    guardians_follow_their_rules,
    an_age_survives_a_restart_and_goes_with_erasure,
    a_guardians_reads_are_logged_as_the_guardian
);

async fn reason(s: &TestServer, subject: &str, purpose: &str) -> (bool, String) {
    let mut q = json!({"subject": subject, "purpose": purpose});
    if purpose.starts_with("third_party") {
        q["recipient"] = json!("ad_partners");
    }
    if purpose == "marketing.direct" {
        q["channel"] = json!("email");
    }
    decided(s, q).await
}

async fn token(s: &TestServer, subject: &str) -> String {
    let minted = s.post(&format!("/v1/subjects/{subject}/tokens"), ADMIN_KEY, &json!({}), 201).await;
    str_of(&minted["token"]).to_owned()
}

async fn a_child_needs_a_guardian(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    // Known before they are a child: their own grants, then the age.
    s.record("kid", &grant("marketing.direct", &["email"])).await;
    assert_eq!(reason(&s, "kid", "marketing.direct").await, (true, "granted".into()));
    let age = s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    assert_eq!(
        (age["child"].as_bool(), age["age_of_digital_consent"].as_u64()),
        (Some(true), Some(16)),
        "{age}"
    );
    assert!(str_of(&age["child_until"]).starts_with("2032-05-01T00:00:00"), "{age}");
    assert_eq!(s.get("/v1/subjects/kid/age", ADMIN_KEY, 200).await, age);
    // Their own grant no longer counts; sale and sharing never do.
    assert_eq!(reason(&s, "kid", "marketing.direct").await, answer(false, "guardian_required"));
    assert_eq!(reason(&s, "kid", "third_party").await, answer(false, "child_protected"));
    assert_eq!(reason(&s, "kid", "service.provision").await, (true, "basis_contract".into()));

    // The child alone (a key without a guardian actor, or their own token) cannot consent...
    let p = s.post("/v1/subjects/kid/consents", ADMIN_KEY, &grant("marketing.direct", &["email"]), 403).await;
    assert_code(&p, "guardian_required");
    let kid = token(&s, "kid").await;
    let p = s.post("/v1/subjects/kid/consents", &kid, &grant("analytics", &[]), 403).await;
    assert_code(&p, "guardian_required");
    // ...nor move to a place where they would not be a child.
    let p = s.put("/v1/subjects/kid/jurisdiction", &kid, &json!({"jurisdiction": "DK"}), 403).await;
    assert_code(&p, "guardian_required");
    let mut moving = withdraw("analytics");
    moving["jurisdiction"] = json!("DK");
    assert_code(&s.post("/v1/subjects/kid/consents", &kid, &moving, 403).await, "guardian_required");
    // ...but can always say no.
    s.post("/v1/subjects/kid/consents", &kid, &withdraw("analytics"), 201).await;
    // Only a service key states an age.
    assert_code(&s.put("/v1/subjects/kid/age", &kid, &json!({"age_band": "18+"}), 403).await, "forbidden");

    // A guardian, recorded by the brand.
    s.put("/v1/subjects/mum/age", ADMIN_KEY, &json!({"birth_date": "1985-02-03"}), 200).await;
    let link = json!({"guardian": "mum", "evidence": {"method": "id_check", "reference": "A-1"}});
    let added = s.post("/v1/subjects/kid/guardians", ADMIN_KEY, &link, 201).await;
    assert_eq!((&added["child"], &added["guardian"]), (&json!("kid"), &json!("mum")));
    assert!(str_of(&added["evidence"]).starts_with("sha256:"), "{added}");
    // Through a service key naming the guardian.
    let mut by_key = grant("marketing.direct", &["email"]);
    by_key["actor"] = json!("guardian:mum");
    let events = s.record("kid", &by_key).await;
    let mum_actor = str_of(&events[0]["actor"]).to_owned();
    assert!(mum_actor.starts_with("guardian:") && !mum_actor.contains("mum"), "{mum_actor}");
    assert_eq!(reason(&s, "kid", "marketing.direct").await, (true, "granted".into()));
    by_key["actor"] = json!("guardian:dad");
    let p = s.post("/v1/subjects/kid/consents", ADMIN_KEY, &by_key, 422).await;
    assert_code(&p, "validation_failed");
    by_key["actor"] = json!("key:mine");
    assert_code(&s.post("/v1/subjects/kid/consents", ADMIN_KEY, &by_key, 422).await, "validation_failed");
    // With the guardian's own token: recorded as the guardian; they read the child's consents too.
    let mum = token(&s, "mum").await;
    let out = s.post("/v1/subjects/kid/consents", &mum, &grant("analytics", &[]), 201).await;
    assert_eq!(str_of(&out["events"][0]["actor"]), mum_actor, "one guardian, one actor");
    assert!(reason(&s, "kid", "analytics").await.0);
    s.get("/v1/subjects/kid/consents", &mum, 200).await;
    s.get("/v1/subjects/kid/age", &mum, 200).await;
    // A guardian's sale or sharing grant is still never allowed.
    let mut sale = grant("third_party", &[]);
    sale["changes"][0]["recipients"] = json!(["ad_partners"]);
    s.post("/v1/subjects/kid/consents", &mum, &sale, 201).await;
    assert_eq!(reason(&s, "kid", "third_party").await, answer(false, "child_protected"));
    // Someone else's token is refused.
    let ben = token(&s, "ben").await;
    s.post("/v1/subjects/kid/consents", &ben, &grant("analytics", &[]), 403).await;
    s.get("/v1/subjects/kid/consents", &ben, 403).await;
    // The child withdraws what the guardian gave.
    s.post("/v1/subjects/kid/consents", &kid, &withdraw("marketing.direct"), 201).await;
    assert_eq!(reason(&s, "kid", "marketing.direct").await, answer(false, "withdrawn"));

    // An adult band: no longer a child, their own consent counts, the guardian no longer acts.
    let age = s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    assert_eq!((age["child"].as_bool(), &age["child_until"]), (Some(false), &Value::Null), "{age}");
    s.post("/v1/subjects/kid/consents", &kid, &grant("marketing.direct", &["email"]), 201).await;
    assert_eq!(reason(&s, "kid", "marketing.direct").await, (true, "granted".into()));
    s.post("/v1/subjects/kid/consents", &mum, &grant("analytics", &[]), 403).await;
    // A band: held as its lower age on the day it was stated (the youngest anyone in it could be).
    let age = s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"age_band": "13-15"}), 200).await;
    assert_eq!(age["child"], true, "{age}");
    assert_eq!(reason(&s, "kid", "marketing.direct").await, answer(false, "guardian_required"));
    s.stop().await;
}

/// A guardian's changes name them by pseudonym: the ledger, the answers with their receipts and the
/// CloudEvents hold no guardian's subject id, and once the guardian is erased nothing at rest names them.
async fn a_guardian_is_named_by_pseudonym(backend: Backend) {
    const MUM: &str = "mum-q7f3x";
    let s = TestServer::start_on(backend).await;
    paused_destination(&s, &["consent.*"]).await;
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    s.put(&format!("/v1/subjects/{MUM}/age"), ADMIN_KEY, &json!({"birth_date": "1985-02-03"}), 200).await;
    s.post("/v1/subjects/kid/guardians", ADMIN_KEY, &json!({"guardian": MUM}), 201).await;
    let mut by_key = grant("marketing.direct", &["email"]);
    by_key["actor"] = json!(format!("guardian:{MUM}"));
    let first = s.post("/v1/subjects/kid/consents", ADMIN_KEY, &by_key, 201).await;
    let mum = token(&s, MUM).await;
    let second = s.post("/v1/subjects/kid/consents", &mum, &grant("analytics", &[]), 201).await;
    let actor = str_of(&first["events"][0]["actor"]).to_owned();
    assert!(actor.starts_with("guardian:") && actor.len() > "guardian:".len(), "{actor}");
    assert_eq!(str_of(&second["events"][0]["actor"]), actor, "the key and the token record one actor");
    for answer in [&first, &second] {
        assert!(answer["receipt"].is_object(), "{answer}");
        assert!(!answer.to_string().contains(MUM), "no guardian id in the answer or its receipt: {answer}");
    }
    let history = s.get("/v1/subjects/kid/consents/history", ADMIN_KEY, 200).await;
    assert!(!history.to_string().contains(MUM), "{history}");
    assert_eq!(reason(&s, "kid", "analytics").await, (true, "granted".into()), "the guardian's grant counts");
    let sent: Vec<Value> =
        outbox(&s).await.into_iter().filter(|(t, _)| t == "consent.granted").map(|(_, p)| p).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    // A consent message's row keeps its decisions; the event (with its actor) is the ledger's, sent as is.
    for decision in &sent {
        assert!(decision["overall"].is_object() && decision["channels"].is_array(), "{decision}");
        assert!(!decision.to_string().contains(MUM), "{decision}");
    }
    // Erasing the guardian: their relation goes, and nothing at rest names them any more.
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": MUM, "type": "erasure"}), 201).await;
    let listed = s.get("/v1/subjects/kid/guardians", ADMIN_KEY, 200).await;
    assert_eq!(listed["guardians"], json!([]), "{listed}");
    assert_eq!(at_rest(&s, &[MUM.as_bytes().to_vec()]).await, Vec::<String>::new());
    // The child's history still holds the guardian's grants, which still count.
    assert_eq!(reason(&s, "kid", "analytics").await, (true, "granted".into()));
    s.stop().await;
}

/// What a guardian reads and does with their own token on their child's data is in the child's access log
/// under the guardian's pseudonymous actor (as the ledger names them), never as `subject` (the child
/// themselves) and never by the guardian's id.
async fn a_guardians_reads_are_logged_as_the_guardian(backend: Backend) {
    const MUM: &str = "mum-r4k2w";
    let s = TestServer::start_on(backend).await;
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    s.put(&format!("/v1/subjects/{MUM}/age"), ADMIN_KEY, &json!({"birth_date": "1985-02-03"}), 200).await;
    s.post("/v1/subjects/kid/guardians", ADMIN_KEY, &json!({"guardian": MUM}), 201).await;
    let mum = token(&s, MUM).await;
    let granted = s.post("/v1/subjects/kid/consents", &mum, &grant("analytics", &[]), 201).await;
    let actor = str_of(&granted["events"][0]["actor"]).to_owned();
    assert!(actor.starts_with("guardian:") && !actor.contains(MUM), "{actor}");
    let reads = [
        "/v1/subjects/kid/consents",
        "/v1/subjects/kid/consents/history",
        "/v1/subjects/kid/age",
        "/v1/subjects/kid/guardians",
    ];
    for path in reads {
        s.get(path, &mum, 200).await;
    }
    let logged = access_entries(&s, "kid", 5).await;
    let routes: Vec<String> =
        reads.iter().rev().map(|p| format!("GET {}", p.replace("/kid/", "/{subject}/"))).collect();
    let expected: Vec<_> = routes
        .iter()
        .map(String::as_str)
        .chain(["POST /v1/subjects/{subject}/consents"])
        .map(|route| entry(&actor, route, "unspecified"))
        .collect();
    assert_eq!(logged, expected);
    // The child's own reads stay theirs.
    let kid = token(&s, "kid").await;
    s.get("/v1/subjects/kid/consents", &kid, 200).await;
    // Minting the child's token is in their log too: wait for both entries, newest first.
    let logged = access_entries(&s, "kid", 7).await;
    assert_eq!(logged[0], entry("subject", "GET /v1/subjects/{subject}/consents", "unspecified"));
    s.stop().await;
}

/// A known child's request that both grants and refuses (a form, a TC string): the refusals are recorded
/// under their own receipt, the grants refused with 403 `guardian_required` naming each; a request that only
/// grants records nothing.
async fn a_childs_mixed_request_keeps_its_refusals(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("kid", &grant("analytics", &[])).await;
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    let kid = token(&s, "kid").await;
    let mut mixed = grant("marketing.direct", &["email"]);
    mixed["changes"]
        .as_array_mut()
        .expect("changes")
        .push(json!({"purpose": "analytics", "action": "withdraw"}));
    let before = s.get("/v1/subjects/kid/consents/history", ADMIN_KEY, 200).await["events"]
        .as_array()
        .expect("events")
        .len();
    let p = s.post("/v1/subjects/kid/consents", &kid, &mixed, 403).await;
    assert_code(&p, "guardian_required");
    assert_eq!(p["errors"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["errors"][0]["path"], "changes[0]", "{p}");
    assert!(str_of(&p["errors"][0]["message"]).contains("marketing.direct"), "{p}");
    assert!(str_of(&p["detail"]).contains("1 change(s) were recorded, receipt rcpt_"), "{p}");
    let after = s.get("/v1/subjects/kid/consents/history", ADMIN_KEY, 200).await;
    let events = after["events"].as_array().expect("events");
    assert_eq!(events.len(), before + 1, "{after}");
    let newest = events.iter().max_by_key(|e| e["seq"].as_u64()).expect("an event");
    assert_eq!((&newest["purpose"], &newest["action"]), (&json!("analytics"), &json!("withdraw")), "{after}");
    // The refusal counts: once of age, their earlier own grant no longer allows analytics.
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    assert_eq!(reason(&s, "kid", "analytics").await, answer(false, "withdrawn"));
    assert_eq!(
        reason(&s, "kid", "marketing.direct").await,
        answer(false, "no_consent"),
        "the grant was not recorded"
    );
    // A request that only grants records nothing.
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    let p = s.post("/v1/subjects/kid/consents", &kid, &grant("analytics", &[]), 403).await;
    assert!(str_of(&p["detail"]).contains("nothing was recorded"), "{p}");
    assert_eq!(
        s.get("/v1/subjects/kid/consents/history", ADMIN_KEY, 200).await["events"].as_array().map(Vec::len),
        Some(before + 1)
    );
    s.stop().await;
}

async fn guardians_follow_their_rules(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for (who, born) in
        [("kid", "2015-01-01"), ("kid2", "2014-01-01"), ("mum", "1980-01-01"), ("gran", "1950-01-01")]
    {
        s.put(&format!("/v1/subjects/{who}/age"), ADMIN_KEY, &json!({"birth_date": born}), 200).await;
    }
    // Bad ages name their field.
    for (body, field) in [
        (json!({"birth_date": "2999-01-01"}), "birth_date"),
        (json!({"birth_date": "2014-02-30"}), "birth_date"),
        (json!({"birth_date": "1850-01-01"}), "birth_date"),
        (json!({"age_band": "10-12"}), "age_band"),
        (json!({"birth_date": "2014-05-01", "age_band": "13-15"}), "age_band"),
        (json!({}), "birth_date"),
    ] {
        let p = s.put("/v1/subjects/kid/age", ADMIN_KEY, &body, 422).await;
        assert_code(&p, "validation_failed");
        assert_eq!(p["errors"][0]["path"], field, "{body}: {p}");
    }
    assert_code(&s.get("/v1/subjects/nobody/age", ADMIN_KEY, 404).await, "not_found");

    let add = |child: &str, guardian: &str| {
        (format!("/v1/subjects/{child}/guardians"), json!({"guardian": guardian}))
    };
    let (path, body) = add("kid", "mum");
    s.post(&path, ADMIN_KEY, &body, 201).await;
    s.post(&path, ADMIN_KEY, &body, 200).await;
    let (path, body) = add("mum", "gran");
    s.post(&path, ADMIN_KEY, &body, 201).await;
    for (child, guardian, field, status) in [
        ("kid", "kid", "guardian", 422),
        ("kid", "kid2", "guardian", 422),
        ("gran", "mum", "guardian", 422),
        ("gran", "kid", "guardian", 422),
    ] {
        let (path, body) = add(child, guardian);
        let p = s.post(&path, ADMIN_KEY, &body, status).await;
        assert_code(&p, "validation_failed");
        assert_eq!(p["errors"][0]["path"], field, "{child} <- {guardian}: {p}");
    }
    let (path, mut body) = add("kid", "gran");
    body["evidence"] = json!("a string");
    assert_eq!(s.post(&path, ADMIN_KEY, &body, 422).await["errors"][0]["path"], "evidence");
    let (path, body) = add("kid", "stranger");
    s.post(&path, ADMIN_KEY, &body, 404).await;
    let (path, body) = add("ghost", "mum");
    s.post(&path, ADMIN_KEY, &body, 404).await;
    // Only a service key records one.
    let mum = token(&s, "mum").await;
    let (path, body) = add("kid", "gran");
    s.post(&path, &mum, &body, 403).await;

    let list = s.get("/v1/subjects/kid/guardians", ADMIN_KEY, 200).await;
    assert_eq!(list["guardians"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["guardians"][0]["guardian"], "mum");
    assert_eq!(list["guardians"][0]["evidence"], Value::Null);
    s.get("/v1/subjects/kid/guardians", &mum, 200).await;
    s.delete("/v1/subjects/kid/guardians/mum", ADMIN_KEY, 204).await;
    s.delete("/v1/subjects/kid/guardians/mum", ADMIN_KEY, 404).await;
    s.get("/v1/subjects/kid/guardians", &mum, 403).await;
    s.stop().await;
}

/// Two people each added as the other's guardian at the same moment: the store's write checks for the
/// cycle, so exactly one of the two relations is recorded and the other is 422.
async fn concurrent_adds_close_no_cycle(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for i in 0..12 {
        let (a, b) = (format!("adult-a{i}"), format!("adult-b{i}"));
        for who in [&a, &b] {
            s.put(&format!("/v1/subjects/{who}/age"), ADMIN_KEY, &json!({"birth_date": "1980-01-01"}), 200)
                .await;
        }
        let server = &s;
        let add = |child: &str, guardian: &str| {
            let body = serde_json::to_vec(&json!({"guardian": guardian})).expect("json");
            let path = format!("/v1/subjects/{child}/guardians");
            async move {
                server.send(reqwest::Method::POST, &path, ADMIN_KEY, Some(("application/json", body))).await
            }
        };
        let (one, other) = tokio::join!(add(&a, &b), add(&b, &a));
        let mut statuses = [one.status, other.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 422], "{i}: {} / {}", one.text, other.text);
        let loser = if one.status == 422 { &one } else { &other };
        assert!(
            loser.text.contains("validation_failed") && loser.text.contains("guardian"),
            "{}",
            loser.text
        );
        let recorded = s.get(&format!("/v1/subjects/{a}/guardians"), ADMIN_KEY, 200).await["guardians"]
            .as_array()
            .map_or(0, Vec::len)
            + s.get(&format!("/v1/subjects/{b}/guardians"), ADMIN_KEY, 200).await["guardians"]
                .as_array()
                .map_or(0, Vec::len);
        assert_eq!(recorded, 1, "{i}");
    }
    s.stop().await;
}

async fn an_age_survives_a_restart_and_goes_with_erasure(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("kid", &grant("marketing.direct", &["email"])).await;
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": "2013-07-19"}), 200).await;
    s.put("/v1/subjects/teen/age", ADMIN_KEY, &json!({"age_band": "13-15"}), 200).await;
    assert!(
        at_rest(&s, &[b"2013-07-19".to_vec(), b"13-15".to_vec()]).await.is_empty(),
        "the age is encrypted"
    );
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(reason(&s, "kid", "marketing.direct").await, answer(false, "guardian_required"));
    assert_eq!(reason(&s, "teen", "third_party").await, answer(false, "child_protected"));
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "kid", "type": "erasure"}), 201).await;
    let after = s.send(reqwest::Method::GET, "/v1/subjects/kid/age", ADMIN_KEY, None).await;
    assert!(matches!(after.status, 404 | 410), "the age went with the erasure: {}", after.status);
    let ages: Vec<_> = s
        .state
        .store
        .ages_since(&s.state.kek, consentry_core::Timestamp::from_micros(0), None, 10)
        .await
        .expect("ages")
        .0;
    assert_eq!(ages.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(), ["teen"]);
    s.stop().await;
}

/// An age set on one node is known on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_nodes_learn_a_childs_age() {
    let Some(db) = TestDatabase::create().await else { return };
    let a = node(&db.url).await;
    let b = node(&db.url).await;
    let client = reqwest::Client::new();
    let (status, out) =
        post(&client, format!("{}/v1/subjects/kid/consents", a.base), grant("analytics", &[])).await;
    assert_eq!(status, 201, "{out}");
    let r = client
        .put(format!("{}/v1/subjects/kid/age", a.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"birth_date": "2017-03-04"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    let started = Instant::now();
    loop {
        let (status, d) =
            post(&client, format!("{}/v1/check", b.base), json!({"subject": "kid", "purpose": "analytics"}))
                .await;
        assert_eq!(status, 200, "{d}");
        if d["reason"] == "guardian_required" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "node b never learnt the age: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
}
