//! The main flow: catalogue, grant, check, withdraw, current state, history, batch checks.

use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of, withdraw};

both_backends!(
    grant_check_withdraw_and_read_back,
    history_pages_with_limit_and_after,
    an_unknown_subject_has_no_consent,
    batch_checks_answer_in_order,
    a_grant_lapses_at_its_expiry,
    escaped_json_strings_mean_the_same,
);

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn grant_check_withdraw_and_read_back(backend: Backend) {
    let s = TestServer::start_on(backend).await;

    let catalog = s.get("/v1/catalog", ADMIN_KEY, 200).await;
    assert_eq!(catalog["version"], 1);
    let purposes = catalog["document"]["purposes"].as_array().expect("purposes");
    assert!(purposes.iter().any(|p| p["key"] == "marketing.direct"), "default catalogue is installed");
    assert!(catalog["notices"].as_array().expect("notices").iter().any(|n| n["key"] == "marketing.direct"));

    let body = json!({
        "notice": "marketing.direct",
        "collection_point": "web-signup",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"],
                     "categories": ["user.contact.email"]}],
    });
    let out = s.post("/v1/subjects/alice/consents", ADMIN_KEY, &body, 201).await;
    let events = out["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let g = &events[0];
    assert_eq!(g["seq"], 1);
    assert_eq!(g["id"], "evt_1");
    assert_eq!(g["subject"], "alice");
    assert_eq!(g["purpose"], "marketing.direct");
    assert_eq!(g["action"], "grant");
    assert_eq!(g["channels"], json!(["email"]));
    assert_eq!(g["categories"], json!(["user.contact.email"]));
    assert_eq!(g["notice"], "marketing.direct");
    assert_eq!(g["notice_version"], 1);
    assert_eq!(g["collection_point"], "web-signup");
    assert_eq!(g["prev_hash"], GENESIS);
    assert_eq!(str_of(&g["hash"]).len(), 64);
    assert_eq!(str_of(&g["notice_hash"]).len(), 64);
    assert!(str_of(&g["actor"]).starts_with("key:"));

    let email = json!({"subject": "alice", "purpose": "marketing.direct", "channel": "email",
                       "category": "user.contact.email"});
    let c = s.post("/v1/check", ADMIN_KEY, &email, 200).await;
    assert_eq!(c, json!({"allowed": true, "reason": "granted", "event_id": "evt_1"}));
    let mut sms = email.clone();
    sms["channel"] = json!("sms");
    let c = s.post("/v1/check", ADMIN_KEY, &sms, 200).await;
    assert_eq!(c["allowed"], false, "sms was not granted: {c}");
    // A query that leaves the category out asks about every category; the grant covers only e-mail.
    let c = s.check("alice", "marketing.direct", Some("email")).await;
    assert_eq!(c["allowed"], false, "{c}");

    let w = s.record("alice", &withdraw("marketing.direct")).await;
    assert_eq!(w[0]["seq"], 2);
    assert_eq!(w[0]["prev_hash"], g["hash"], "the chain links the withdrawal to the grant");
    assert_eq!(w[0]["notice"], Value::Null);
    let c = s.post("/v1/check", ADMIN_KEY, &email, 200).await;
    assert_eq!(c, json!({"allowed": false, "reason": "withdrawn", "event_id": "evt_2"}));

    let current = s.get("/v1/subjects/alice/consents", ADMIN_KEY, 200).await;
    assert_eq!(current["subject"], "alice");
    assert_eq!(current["catalog_version"], 1);
    let purposes = current["purposes"].as_array().expect("purposes");
    let direct = purposes.iter().find(|p| p["purpose"] == "marketing.direct").expect("marketing.direct");
    assert_eq!(direct["basis"], "consent");
    assert_eq!(direct["allowed"], false);
    assert_eq!(direct["reason"], "withdrawn");
    let email = direct["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["channel"] == "email")
        .expect("email channel");
    assert_eq!((&email["allowed"], &email["reason"]), (&json!(false), &json!("withdrawn")));
    let service = purposes.iter().find(|p| p["purpose"] == "service").expect("service");
    assert_eq!((&service["allowed"], &service["reason"]), (&json!(true), &json!("basis_contract")));
    let statements = current["statements"].as_array().expect("statements");
    assert!(statements.iter().any(|e| e["id"] == "evt_2"), "the withdrawal is in force: {statements:?}");

    let history = s.get("/v1/subjects/alice/consents/history", ADMIN_KEY, 200).await;
    let ids: Vec<&str> =
        history["events"].as_array().expect("events").iter().map(|e| str_of(&e["id"])).collect();
    assert_eq!(ids, ["evt_1", "evt_2"], "oldest first");
    assert_eq!(history["next"], Value::Null);
}

async fn history_pages_with_limit_and_after(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut written = Vec::new();
    for i in 0..5 {
        // Another subject's events interleave and must not show up.
        s.record("other", &grant("analytics", &[])).await;
        let body =
            if i % 2 == 0 { grant("marketing.direct", &["email"]) } else { withdraw("marketing.direct") };
        written.push(s.record("paged", &body).await[0]["id"].clone());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/subjects/paged/consents/history?limit=2".to_owned();
    for _ in 0..10 {
        let page = s.get(&path, ADMIN_KEY, 200).await;
        let events = page["events"].as_array().expect("events");
        assert!(events.len() <= 2, "a page holds at most `limit` events");
        seen.extend(events.iter().map(|e| {
            assert_eq!(e["subject"], "paged");
            e["id"].clone()
        }));
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), events.last().and_then(|e| e["id"].as_str()));
                path = format!("/v1/subjects/paged/consents/history?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, written, "all events, oldest first, each once");
}

async fn an_unknown_subject_has_no_consent(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let c = s.check("nobody-known", "marketing.direct", Some("email")).await;
    assert_eq!(c, json!({"allowed": false, "reason": "no_consent", "event_id": null}));
    let h = s.get("/v1/subjects/nobody-known/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(h, json!({"events": [], "next": null}));
}

async fn batch_checks_answer_in_order(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("bob", &grant("marketing.direct", &["email"])).await;
    let checks = json!({"checks": [
        {"subject": "bob", "purpose": "marketing.direct", "channel": "email"},
        {"subject": "bob", "purpose": "marketing.direct", "channel": "sms"},
        {"subject": "stranger", "purpose": "marketing.direct"},
        {"subject": "stranger", "purpose": "service"},
        {"subject": "bob", "purpose": "marketing.direct", "channel": "email"},
    ]});
    let out = s.post("/v1/check/batch", ADMIN_KEY, &checks, 200).await;
    let results = out["results"].as_array().expect("results");
    let got: Vec<(bool, &str)> =
        results.iter().map(|r| (r["allowed"].as_bool().expect("bool"), str_of(&r["reason"]))).collect();
    assert_eq!(got[0], (true, "granted"));
    assert!(!got[1].0);
    assert_eq!(got[2], (false, "no_consent"));
    assert_eq!(got[3], (true, "basis_contract"));
    assert_eq!(got[4], (true, "granted"));
    assert_eq!(results[0]["event_id"], "evt_1");

    let one = json!({"subject": "bob", "purpose": "marketing.direct", "channel": "email"});
    let at_max = json!({"checks": vec![one.clone(); 10_000]});
    let out = s.post("/v1/check/batch", ADMIN_KEY, &at_max, 200).await;
    assert_eq!(out["results"].as_array().expect("results").len(), 10_000);
    let too_many = json!({"checks": vec![one; 10_001]});
    let p = s.post("/v1/check/batch", ADMIN_KEY, &too_many, 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/check/batch", ADMIN_KEY, &json!({"checks": []}), 422).await;
    assert_code(&p, "validation_failed");
}

async fn a_grant_lapses_at_its_expiry(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let expires = consentry_core::Timestamp::now().plus_seconds(1);
    let mut body = grant("marketing.direct", &["email"]);
    body["changes"][0]["expires_at"] = json!(expires.to_string());
    let events = s.record("eve", &body).await;
    assert_eq!(events[0]["expires_at"], json!(expires.to_string()));
    assert_eq!(s.check("eve", "marketing.direct", Some("email")).await["reason"], "granted");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let c = s.check("eve", "marketing.direct", Some("email")).await;
    assert_eq!(c, json!({"allowed": false, "reason": "expired", "event_id": "evt_1"}));
}

async fn escaped_json_strings_mean_the_same(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("alice", &grant("marketing.direct", &["email"])).await;
    let body = r#"{"subject": "al\u0069ce", "purpose": "marketing\u002edirect", "channel": "e\u006dail"}"#;
    let c = s.raw(reqwest::Method::POST, "/v1/check", ADMIN_KEY, "application/json", body, 200).await;
    assert_eq!(c["reason"], "granted", "{c}");
    let batch = format!(r#"{{"checks": [{body}, {body}]}}"#);
    let out =
        s.raw(reqwest::Method::POST, "/v1/check/batch", ADMIN_KEY, "application/json", batch, 200).await;
    assert_eq!(out["results"][1]["reason"], "granted", "{out}");
}
