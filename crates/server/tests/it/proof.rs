//! Proof of consent: signed receipts (checked with an independent verifier too), receipts read back, the
//! access log, and signing-key rotation (the ledger audit and tampering are in `audit.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_client::verify::verify_receipt;
use consentry_core::proof::{Jwks, RECEIPT_SCHEMA_VERSION};
use consentry_service::config::{Address, Controller};
use consentry_store::testing::unreachable_service;
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, NO_KEY, TestServer, assert_code, both_backends, grant, str_of, withdraw,
};

both_backends!(
    receipts_are_signed_and_verify_independently,
    receipts_read_back_by_id,
    the_access_log_shows_reads_and_counts_checks,
    rotated_keys_keep_old_receipts_and_checkpoints_valid,
);

const ACCESS_LOG_ROUTE: &str = "GET /v1/subjects/{subject}/access-log";

fn controller() -> Controller {
    Controller {
        name: "Acme Consent GmbH".into(),
        contact: "Jane Roe, Data Protection Officer".into(),
        address: Address {
            street_address: "2 Test Lane".into(),
            postal_code: Some("10117".into()),
            locality: Some("Berlin".into()),
            region: None,
            country: "DE".into(),
        },
        email: "dpo@acme.test".into(),
        phone: "+49 30 7654321".into(),
        url: Some("https://acme.test".into()),
        on_behalf: false,
        policy_url: "https://acme.test/privacy".into(),
        jurisdiction: "DE".into(),
    }
}

/// The JSON of one base64url part of a JWS.
pub(crate) fn jws_part(jws: &str, index: usize) -> Value {
    let part = jws.split('.').nth(index).unwrap_or_else(|| panic!("a JWS has part {index}: {jws}"));
    let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_else(|e| panic!("part {index} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("part {index} is not JSON: {e}"))
}

fn kid_of(jws: &str) -> String {
    str_of(&jws_part(jws, 0)["kid"]).to_owned()
}

/// `/.well-known/jwks.json`: public, as a JWK Set.
async fn jwks(s: &TestServer) -> (Value, Jwks) {
    let reply = s.send(reqwest::Method::GET, "/.well-known/jwks.json", NO_KEY, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type().starts_with("application/jwk-set+json"), "{}", reply.content_type());
    let value = reply.json();
    let parsed: Jwks = serde_json::from_value(value.clone()).expect("a JWK Set");
    (value, parsed)
}

/// Whether `python3` can import `cryptography`; reports it as an unreachable service when not.
async fn python_available() -> bool {
    python_has("cryptography").await
}

/// Whether `python3` can import `module`; reports it as an unreachable service when not.
pub(crate) async fn python_has(module: &str) -> bool {
    let probe =
        tokio::process::Command::new("python3").args(["-c", &format!("import {module}")]).output().await;
    let why = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    };
    unreachable_service(&format!("python3 with {module}"), &why);
    false
}

/// Verifies `jws` against `jwks` with `tests/support/verify_jws.py` (Python's `cryptography`, nothing of
/// ours); returns the payload it prints.
async fn python_verify(jws: &str, jwks: &Value) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let (jws_file, jwks_file) = (dir.path().join("receipt.jws"), dir.path().join("jwks.json"));
    std::fs::write(&jws_file, jws).expect("write the JWS");
    std::fs::write(&jwks_file, serde_json::to_vec(jwks).expect("JWKS JSON")).expect("write the JWKS");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/verify_jws.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&jws_file)
        .arg(&jwks_file)
        .output()
        .await
        .expect("run python3");
    assert!(
        out.status.success(),
        "the independent verifier refused the JWS ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the verifier prints the payload as JSON")
}

/// The JWS of the receipt a 201 `out` answered with, signed on demand (`?format=jws`).
pub(crate) async fn receipt_jws(s: &TestServer, out: &Value) -> String {
    let id = str_of(&out["receipt"]["id"]);
    let got = s.get(&format!("/v1/receipts/{id}?format=jws"), ADMIN_KEY, 200).await;
    assert_eq!(got["id"], id);
    str_of(&got["jws"]).to_owned()
}

/// Records `body` for `subject`; returns the whole 201 response.
pub(crate) async fn record_full(s: &TestServer, subject: &str, body: &Value) -> Value {
    s.post(&format!("/v1/subjects/{subject}/consents"), ADMIN_KEY, body, 201).await
}

fn notice_info<'a>(catalog: &'a Value, key: &str) -> &'a Value {
    let notices = catalog["notices"].as_array().expect("notices");
    notices.iter().find(|n| n["key"] == key).unwrap_or_else(|| panic!("notice {key}"))
}

/// What a receipt's evidence must say about the event behind it.
fn assert_event_ref(evidence: &Value, event: &Value) {
    let named: Value = ["event_id", "seq", "hash", "prev_hash", "event_time"]
        .into_iter()
        .map(|k| (k.to_owned(), evidence[k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        named,
        json!({"event_id": event["id"], "seq": event["seq"], "hash": event["hash"],
               "prev_hash": event["prev_hash"], "event_time": event["recorded_at"]}),
        "the receipt names the event it records"
    );
}

async fn receipts_are_signed_and_verify_independently(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.controller = controller()).await;
    let python = python_available().await;
    let catalog = s.get("/v1/catalog", ADMIN_KEY, 200).await;

    let (jwks_json, jwks) = jwks(&s).await;
    let keys = jwks_json["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "one signing key on a fresh store: {jwks_json}");
    let key = &keys[0];
    assert_eq!((&key["kty"], &key["crv"]), (&json!("OKP"), &json!("Ed25519")), "{key}");
    assert_eq!((&key["alg"], &key["use"]), (&json!("EdDSA"), &json!("sig")), "{key}");
    assert_eq!(str_of(&key["x"]).len(), 43, "a base64url 32-byte public key: {key}");
    let kid = str_of(&key["kid"]).to_owned();
    assert_eq!(
        jwks.keys[0].thumbprint().as_deref(),
        Some(kid.as_str()),
        "the kid is the RFC 7638 thumbprint"
    );

    // A grant: every field of the receipt.
    let body = json!({
        "notice": "marketing.direct",
        "collection_point": "web-signup",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"],
                     "categories": ["user.contact.email"]}],
    });
    let out = record_full(&s, "alice", &body).await;
    let event = &out["events"][0];
    let receipt_id = str_of(&out["receipt"]["id"]).to_owned();
    assert!(receipt_id.starts_with("rcpt_") && receipt_id.len() == 37, "{receipt_id}");
    // The 201 proves the receipt (no signature per request); the JWS is signed when asked for.
    crate::tlog::assert_proven(&s, &out, "alice").await;
    let jws = receipt_jws(&s, &out).await;
    assert_eq!(jws_part(&jws, 1), out["receipt"]["payload"], "the JWS signs the receipt document answered");

    // Its kind is in the header (RFC 8725 §3.11), so no other JWS of the same key passes for a receipt.
    assert_eq!(jws_part(&jws, 0), json!({"alg": "EdDSA", "kid": kid, "typ": "consent-receipt+jwt"}));
    let payload = jws_part(&jws, 1);
    let ours = verify_receipt(&jws, &jwks).expect("our verifier accepts the receipt");
    assert_eq!(serde_json::to_value(&ours).expect("JSON"), payload, "our verifier reads the signed payload");
    if python {
        assert_eq!(python_verify(&jws, &jwks_json).await, payload, "the independent verifier agrees");
    }

    crate::receipts::assert_kantara(&payload).await;

    // Kantara v1.1's members, from the controller's configuration, the catalogue and the ledger.
    assert_eq!(payload["version"], "KI-CR-v1.1.0");
    assert_eq!(payload["jurisdiction"], "DE");
    let recorded = event["recorded_at"].as_str().expect("recorded_at");
    let recorded_secs = crate::receipts::epoch_secs(recorded);
    assert_eq!(payload["consentTimestamp"], recorded_secs, "epoch seconds of {recorded}");
    assert_eq!(payload["collectionMethod"], "web_form");
    assert_eq!(payload["consentReceiptID"], receipt_id.as_str());
    assert_eq!(payload["publicKey"], key["x"], "the signing key, as the JWK's x");
    assert_eq!(payload["language"], "en", "the language of the notice shown");
    assert_eq!(payload["piiPrincipalId"], "alice");
    assert_eq!(
        payload["piiControllers"],
        json!([{"piiController": "Acme Consent GmbH", "onBehalf": false,
                "contact": "Jane Roe, Data Protection Officer",
                "address": {"streetAddress": "2 Test Lane", "postalCode": "10117", "addressLocality": "Berlin",
                            "addressCountry": "DE"},
                "email": "dpo@acme.test", "phone": "+49 30 7654321", "piiControllerUrl": "https://acme.test"}])
    );
    assert_eq!(payload["policyUrl"], "https://acme.test/privacy");
    assert_eq!((&payload["sensitive"], &payload["spiCat"]), (&json!(false), &json!([])));
    assert_eq!(
        payload["services"],
        json!([{"service": "Acme Consent GmbH", "purposes": [{
            "purpose": "News and offers", "purposeCategory": ["dpv:DirectMarketing"], "consentType": "EXPLICIT",
            "piiCategory": ["E-mail address"], "primaryPurpose": false, "termination": "https://acme.test/privacy",
            "thirdPartyDisclosure": false}]}])
    );

    // Consentry's evidence, in its one extension member.
    let x = &payload["consentry"];
    assert_eq!(x["schema_version"], RECEIPT_SCHEMA_VERSION);
    assert_eq!(x["kid"], kid.as_str());
    assert_eq!(x["consent_time"], event["recorded_at"]);
    let issued = crate::receipts::epoch_secs(x["issued_at"].as_str().expect("issued_at"));
    let now = consentry_core::Timestamp::now().micros() / 1_000_000;
    assert!((now - 60..=now).contains(&issued), "issued {issued} about now ({now})");
    assert_eq!(x["collection_point"], json!({"key": "web-signup", "name": "Sign-up form on our website"}));
    let notice = &x["notice"];
    let shown = notice_info(&catalog, "marketing.direct");
    assert_eq!((&notice["notice_id"], &notice["version"]), (&json!("marketing.direct"), &json!(1)));
    assert_eq!(notice["sha256"], event["notice_hash"], "the receipt names the exact notice text");
    assert_eq!(notice["sha256"], shown["sha256"]);
    assert_eq!(notice["language"], "en");
    assert_eq!(notice["title"], "News and offers from Example Brand");
    assert_eq!(notice["title"], shown["title"]);
    assert_eq!(x["ledger"], json!({"first_seq": 1, "last_seq": 1, "head": event["hash"]}));
    let evidence = x["events"].as_array().expect("events");
    assert_eq!(evidence.len(), 1);
    let e = &evidence[0];
    assert_eq!((&e["purpose_id"], &e["dpv"]), (&json!("marketing.direct"), &json!("dpv:DirectMarketing")));
    assert_eq!((&e["lawful_basis"], &e["event_type"]), (&json!("consent"), &json!("grant")));
    assert_eq!(e["event_state"], "given");
    assert_eq!(
        e["pii_information"],
        json!([{"key": "user.contact.email", "dpv": "pd:EmailAddress", "sensitive": false}])
    );
    assert_eq!(e["channels"], json!(["email"]));
    assert_eq!(
        e["recipients"],
        json!([
            {"key": "brand", "name": "Example Brand", "kind": "controller"},
            {"key": "email_service", "name": "E-mail service provider", "kind": "processor"},
            {"key": "crm", "name": "Customer relationship management (CRM) system", "kind": "processor"},
        ]),
        "no recipients named: those the purpose declares"
    );
    assert_event_ref(e, event);

    // Sharing with third parties, collected in the app.
    let body = json!({
        "notice": "third_party.sharing",
        "collection_point": "mobile-app",
        "changes": [{"purpose": "third_party.sharing", "action": "grant", "categories": ["user.location.precise"]}],
    });
    let out = record_full(&s, "alice", &body).await;
    crate::tlog::assert_proven(&s, &out, "alice").await;
    let jws = &receipt_jws(&s, &out).await;
    let payload = jws_part(jws, 1);
    if python {
        assert_eq!(python_verify(jws, &jwks_json).await, payload);
    }
    verify_receipt(jws, &jwks).expect("verifies");
    crate::receipts::assert_kantara(&payload).await;
    assert_eq!(payload["collectionMethod"], "app_screen");
    assert_eq!(payload["consentry"]["notice"]["notice_id"], "third_party.sharing");
    assert_eq!(payload["consentry"]["notice"]["sha256"], out["events"][0]["notice_hash"]);
    let p = &payload["services"][0]["purposes"][0];
    assert_eq!(p["purposeCategory"], json!(["dpv:SellDataToThirdParties"]));
    assert_eq!(p["piiCategory"], json!(["Precise location"]));
    assert_eq!(
        (&p["thirdPartyDisclosure"], &p["thirdPartyName"]),
        (&json!(true), &json!("Advertising partners"))
    );
    let e = &payload["consentry"]["events"][0];
    assert_eq!(e["event_state"], "given");
    assert_eq!(
        e["pii_information"],
        json!([{"key": "user.location.precise", "dpv": "pd:GPSCoordinate", "sensitive": false}])
    );
    assert_eq!(e["channels"], json!([]));
    assert_eq!(
        e["recipients"],
        json!([{"key": "ad_partners", "name": "Advertising partners", "kind": "third_party"}])
    );
    assert_event_ref(e, &out["events"][0]);

    // One receipt for every change of a request: a purpose and its evidence for each, in the same order.
    let body = json!({
        "notice": "marketing.direct",
        "collection_point": "preference-centre",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["sms"]},
                    {"purpose": "marketing.direct", "action": "grant", "channels": ["postal"]}],
    });
    let out = record_full(&s, "alice", &body).await;
    crate::tlog::assert_proven(&s, &out, "alice").await;
    let payload = verify_receipt(&receipt_jws(&s, &out).await, &jwks).expect("verifies");
    let payload = serde_json::to_value(payload).expect("JSON");
    crate::receipts::assert_kantara(&payload).await;
    assert_eq!(payload["collectionMethod"], "preference_centre");
    assert_eq!(payload["services"][0]["purposes"].as_array().map(Vec::len), Some(2));
    let x = &payload["consentry"];
    assert_eq!(x["ledger"], json!({"first_seq": 3, "last_seq": 4, "head": out["events"][1]["hash"]}));
    for (i, channel) in ["sms", "postal"].into_iter().enumerate() {
        assert_eq!(x["events"][i]["channels"], json!([channel]));
        assert_event_ref(&x["events"][i], &out["events"][i]);
    }

    // A withdrawal: no notice, so no language; state withdrawn.
    let out = record_full(&s, "alice", &withdraw("marketing.direct")).await;
    crate::tlog::assert_proven(&s, &out, "alice").await;
    let jws = &receipt_jws(&s, &out).await;
    let payload = jws_part(jws, 1);
    if python {
        assert_eq!(python_verify(jws, &jwks_json).await, payload);
    }
    verify_receipt(jws, &jwks).expect("verifies");
    crate::receipts::assert_kantara(&payload).await;
    assert_eq!(payload["piiPrincipalId"], "alice");
    assert!(payload.get("language").is_none(), "a withdrawal shows no notice: {payload}");
    let x = &payload["consentry"];
    assert!(x.get("notice").is_none() && x.get("collection_point").is_none(), "{payload}");
    assert_eq!(payload["collectionMethod"], "api");
    assert_eq!(payload["services"][0]["purposes"][0]["consentType"], "EXPLICIT");
    let e = &x["events"][0];
    assert_eq!(
        (&e["purpose_id"], &e["event_state"], &e["lawful_basis"]),
        (&json!("marketing.direct"), &json!("withdrawn"), &json!("consent"))
    );
    assert_event_ref(e, &out["events"][0]);
    assert_eq!(out["events"][0]["seq"], 5);
}

async fn receipts_read_back_by_id(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let out = record_full(&s, "bea", &grant("marketing.direct", &["email"])).await;
    let id = str_of(&out["receipt"]["id"]);
    let (_, reader) = s.create_key("receipt-reader", &["consent:read"]).await;
    let (_, checker) = s.create_key("checker", &["check"]).await;

    // Refused reads first: were one logged, it would be written before the allowed read's entry.
    let p = s.get("/v1/receipts/rcpt_00000000000000000000000000000000", &reader, 404).await;
    assert_code(&p, "not_found");
    let p = s.get(&format!("/v1/receipts/{id}"), &checker, 403).await;
    assert_code(&p, "forbidden");
    s.get(&format!("/v1/receipts/{id}"), NO_KEY, 401).await;

    let got = s.get(&format!("/v1/receipts/{id}"), &reader, 200).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["subject"], "bea");
    assert_eq!(
        got["payload"], out["receipt"]["payload"],
        "the receipt as issued when the consent was recorded"
    );
    assert_eq!(
        (&got["leaf"], &got["subject_key"]),
        (&out["receipt"]["leaf"], &out["receipt"]["subject_key"])
    );
    assert!(got["created_at"].is_string(), "{got}");
    let signed = s.get(&format!("/v1/receipts/{id}?format=jws"), &reader, 200).await;
    assert_eq!(jws_part(str_of(&signed["jws"]), 1), out["receipt"]["payload"], "signed on demand: {signed}");
    let p = s.get(&format!("/v1/receipts/{id}?format=xml"), &reader, 400).await;
    assert_code(&p, "invalid_query");

    let entries = wait_for_entries(&s, "bea", 2).await;
    assert_eq!(entries.len(), 2, "only the allowed reads are logged: {entries:?}");
    assert_eq!(entries[0]["caller"], "receipt-reader");
    assert_eq!(entries[0]["route"], "GET /v1/receipts/{id}");
    assert_eq!(entries[0]["purpose"], "unspecified");
}

/// A GET with an optional `X-Consentry-Purpose`, expecting 200.
async fn read_as(s: &TestServer, path: &str, key: &str, purpose: Option<&str>) -> Value {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut request = client.get(format!("{}{path}", s.base)).bearer_auth(key);
    if let Some(purpose) = purpose {
        request = request.header("X-Consentry-Purpose", purpose);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The subject's access-log entries other than reads of the access log itself (each poll is one),
/// newest first, once there are at least `n` of them (polled for up to 5 s).
async fn wait_for_entries(s: &TestServer, subject: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.get(&format!("/v1/subjects/{subject}/access-log?limit=1000"), ADMIN_KEY, 200).await;
        let entries: Vec<Value> = log["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["route"] != ACCESS_LOG_ROUTE)
            .cloned()
            .collect();
        if entries.len() >= n {
            return entries;
        }
        assert!(Instant::now() < deadline, "{n} access-log entries did not appear within 5 s: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_access_log_shows_reads_and_counts_checks(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let subject = "subj-7f3a";
    let out = record_full(&s, subject, &grant("marketing.direct", &["email"])).await;
    let receipt = str_of(&out["receipt"]["id"]);
    let (_, key) = s.create_key("support-desk", &["consent:read"]).await;

    let ticket = Some("support-ticket-42");
    let started = Instant::now();
    read_as(&s, &format!("/v1/subjects/{subject}/consents"), &key, ticket).await;
    read_as(&s, &format!("/v1/subjects/{subject}/consents/history"), &key, ticket).await;
    read_as(&s, &format!("/v1/receipts/{receipt}"), &key, ticket).await;
    read_as(&s, &format!("/v1/subjects/{subject}/consents"), &key, None).await;
    for _ in 0..3 {
        s.check(subject, "marketing.direct", Some("email")).await;
    }
    s.check(subject, "analytics", None).await;
    // A check of someone Consentry does not know is not counted.
    s.check("never-seen", "analytics", None).await;

    let entries = wait_for_entries(&s, subject, 4).await;
    assert!(started.elapsed() < Duration::from_secs(3), "entries took {:?} to appear", started.elapsed());
    let seen: Vec<(&str, &str, &str)> =
        entries.iter().map(|e| (str_of(&e["caller"]), str_of(&e["route"]), str_of(&e["purpose"]))).collect();
    assert_eq!(
        seen,
        [
            ("support-desk", "GET /v1/subjects/{subject}/consents", "unspecified"),
            ("support-desk", "GET /v1/receipts/{id}", "support-ticket-42"),
            ("support-desk", "GET /v1/subjects/{subject}/consents/history", "support-ticket-42"),
            ("support-desk", "GET /v1/subjects/{subject}/consents", "support-ticket-42"),
        ],
        "newest first"
    );
    for e in &entries {
        assert!(!str_of(&e["route"]).contains(subject), "the route is a template: {e}");
        assert!(consentry_core::Timestamp::parse(str_of(&e["at"])).is_some(), "{e}");
    }

    // Checks, counted per purpose (flushed every 2 s); and reading the access log is itself an access.
    let counts = |log: &Value| -> BTreeMap<String, u64> {
        let checks = log["checks"].as_array().expect("checks");
        checks
            .iter()
            .map(|c| (str_of(&c["purpose"]).to_owned(), c["count"].as_u64().expect("count")))
            .collect()
    };
    let logged_itself = |log: &Value| {
        let entries = log["entries"].as_array().expect("entries");
        entries.iter().any(|e| e["route"] == ACCESS_LOG_ROUTE && e["caller"] == "admin")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = s.get(&format!("/v1/subjects/{subject}/access-log"), ADMIN_KEY, 200).await;
        let done = counts(&log).values().sum::<u64>() >= 4 && logged_itself(&log);
        if done || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expected: BTreeMap<String, u64> =
        [("analytics".to_owned(), 1), ("marketing.direct".to_owned(), 3)].into();
    assert_eq!(counts(&log), expected, "{log}");
    for c in log["checks"].as_array().expect("checks") {
        assert!(consentry_core::Timestamp::parse(str_of(&c["last_at"])).is_some(), "{c}");
    }
    assert!(logged_itself(&log), "{log}");
    let unknown = s.get("/v1/subjects/never-seen/access-log", ADMIN_KEY, 200).await;
    assert_eq!(unknown["checks"], json!([]), "{unknown}");

    // Pages of two, from a fixed point, give the whole log once, newest first.
    let full = s.get(&format!("/v1/subjects/{subject}/access-log?limit=1000"), ADMIN_KEY, 200).await;
    let full = full["entries"].as_array().expect("entries").clone();
    assert!(full.len() >= 5, "{full:?}");
    let ids: Vec<i64> = full.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let mut before = ids[0] + 1;
    let mut paged = Vec::new();
    for _ in 0..100 {
        let page = s
            .get(&format!("/v1/subjects/{subject}/access-log?limit=2&before={before}"), ADMIN_KEY, 200)
            .await;
        let entries = page["entries"].as_array().expect("entries");
        assert!(entries.len() <= 2);
        paged.extend(entries.iter().cloned());
        match page["next"].as_i64() {
            Some(next) => {
                assert_eq!(Some(next), entries.last().and_then(|e| e["id"].as_i64()), "next is the last id");
                before = next;
            }
            None => break,
        }
    }
    assert_eq!(paged, full, "the pages hold every entry once, in order");
    let p = s.get(&format!("/v1/subjects/{subject}/access-log?limit=0"), ADMIN_KEY, 400).await;
    assert_code(&p, "invalid_query");
}

async fn rotated_keys_keep_old_receipts_and_checkpoints_valid(backend: Backend) {
    let python = python_available().await;
    let s = TestServer::start_on(backend).await;
    let r1 = record_full(&s, "rot", &grant("marketing.direct", &["email"])).await;
    let r1_jws = receipt_jws(&s, &r1).await;
    let (_, old_jwks) = jwks(&s).await;
    let k1 = kid_of(&r1_jws);
    assert_eq!(old_jwks.keys.len(), 1);
    assert_eq!(old_jwks.keys[0].kid, k1);

    // Offline rotation, as `consentry keys rotate-signing` does it.
    let storage = s.stop().await;
    let store = consentry_store::open(storage.store_config()).await.expect("open the store");
    let k2 = consentry_service::signing::rotate(store.as_ref()).await.expect("rotate");
    store.close().await;
    assert_ne!(k2, k1);

    let s = TestServer::start_in(storage, |_| {}).await;
    let (jwks_json, jwks) = jwks(&s).await;
    let mut kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    kids.sort_unstable();
    let mut expected = vec![k1.as_str(), k2.as_str()];
    expected.sort_unstable();
    assert_eq!(kids, expected, "both keys are published");

    let r2 = record_full(&s, "rot", &withdraw("marketing.direct")).await;
    let r2_jws = receipt_jws(&s, &r2).await;
    assert_eq!(kid_of(&r2_jws), k2, "new receipts are signed with the new key");
    verify_receipt(&r2_jws, &jwks).expect("the new receipt verifies");
    assert!(verify_receipt(&r2_jws, &old_jwks).is_err(), "the old key set does not know the new key");
    let old = verify_receipt(&r1_jws, &jwks).expect("the old receipt still verifies");
    assert_eq!(serde_json::to_value(old).expect("JSON"), jws_part(&r1_jws, 1));
    if python {
        assert_eq!(python_verify(&r1_jws, &jwks_json).await, jws_part(&r1_jws, 1));
        assert_eq!(python_verify(&r2_jws, &jwks_json).await, jws_part(&r2_jws, 1));
    }
    let again =
        s.get(&format!("/v1/receipts/{}?format=jws", str_of(&r1["receipt"]["id"])), ADMIN_KEY, 200).await;
    assert_eq!(again["jws"], r1_jws.as_str());
    // JWS checkpoints as builds before the transparency log stored them (at shutdown): the first, of the
    // ledger before the rotation, under the old key, stored here now; the audit checks each.
    crate::audit::old_checkpoint_signed_by(&s, &k1).await;
    let v = crate::audit::audit_of(&s).await.0;
    assert_eq!(
        v,
        json!({"ok": true, "events": 2, "head": r2["events"][0]["hash"], "checkpoints": 1, "first_bad": null})
    );

    // The next checkpoint, of a longer ledger, is signed with the new key; both verify.
    let r3 = record_full(&s, "rot", &grant("marketing.direct", &["email"])).await;
    crate::audit::old_checkpoint_signed_by(&s, &k2).await;
    let storage = s.stop().await;
    let store = consentry_store::open(storage.store_config()).await.expect("open the store");
    let checkpoints = store.checkpoints().await.expect("checkpoints");
    store.close().await;
    let signers: Vec<String> = checkpoints.iter().map(|c| kid_of(&c.jws)).collect();
    assert_eq!(signers, [k1.clone(), k2.clone()]);
    let s = TestServer::start_in(storage, |_| {}).await;
    let v = crate::audit::audit_of(&s).await.0;
    assert_eq!(
        v,
        json!({"ok": true, "events": 3, "head": r3["events"][0]["hash"], "checkpoints": 2, "first_bad": null})
    );
    s.stop().await;
}
