//! Receipts are Kantara Consent Receipts v1.1: every receipt the tests issue is checked against the JSON
//! Schema written from the specification (`fixtures/kantara-consent-receipt-v1.1.schema.json`) by Python's
//! `jsonschema`, and its members are exactly Kantara's with Consentry's evidence in `consentry` alone.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::proof::{jws_part, python_has, record_full};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends};

both_backends!(every_kind_of_purpose_gives_a_kantara_receipt);

const SCHEMA: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/kantara-consent-receipt-v1.1.schema.json");

/// Kantara v1.1's members at each level, and the one extension member.
const TOP: &[&str] = &[
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "publicKey",
    "language",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
];
const EXTENSION: &str = "consentry";
const CONTROLLER: &[&str] =
    &["piiController", "onBehalf", "contact", "address", "email", "phone", "piiControllerUrl"];
const SERVICE: &[&str] = &["service", "purposes"];
const PURPOSE: &[&str] = &[
    "purpose",
    "purposeCategory",
    "consentType",
    "piiCategory",
    "primaryPurpose",
    "termination",
    "thirdPartyDisclosure",
    "thirdPartyName",
];

fn members_within(value: &Value, allowed: &[&str], what: &str) {
    let object = value.as_object().unwrap_or_else(|| panic!("{what} is an object: {value}"));
    let extra: BTreeSet<&String> = object.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    assert!(extra.is_empty(), "{what} has members Kantara v1.1 does not define: {extra:?}");
}

/// Asserts that `payload` is a Kantara v1.1 receipt: valid by the schema (checked by Python's
/// `jsonschema` where it is installed; a failure under `CONSENTRY_REQUIRE_SERVICES=1` where not) and with
/// nothing but Kantara's members, Consentry's own under `consentry` only.
pub async fn assert_kantara(payload: &Value) {
    let mut top = TOP.to_vec();
    top.push(EXTENSION);
    members_within(payload, &top, "the receipt");
    assert!(payload[EXTENSION].is_object(), "the evidence is in `{EXTENSION}`: {payload}");
    for c in payload["piiControllers"].as_array().expect("piiControllers") {
        members_within(c, CONTROLLER, "a PII controller");
    }
    for s in payload["services"].as_array().expect("services") {
        members_within(s, SERVICE, "a service");
        for p in s["purposes"].as_array().expect("purposes") {
            members_within(p, PURPOSE, "a purpose");
        }
    }
    if !python_has("jsonschema").await {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("receipt.json");
    std::fs::write(&file, serde_json::to_vec(payload).expect("JSON")).expect("write the payload");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/validate_receipt.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(SCHEMA)
        .arg(&file)
        .output()
        .await
        .expect("run python3");
    assert!(
        out.status.success(),
        "the receipt is not a valid Kantara v1.1 receipt: {}\n{payload:#}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The schema refuses what Kantara v1.1 refuses, so that a pass means something.
async fn the_schema_refuses_what_kantara_refuses(good: &Value) {
    if !python_has("jsonschema").await {
        return;
    }
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut payload = good.clone();
        change(&mut payload);
        payload
    };
    let cases: Vec<(&str, Value)> = vec![
        ("no policyUrl", broken(&|p| _ = p.as_object_mut().map(|o| o.remove("policyUrl")))),
        ("no services", broken(&|p| p["services"] = json!([]))),
        ("an RFC 3339 timestamp", broken(&|p| p["consentTimestamp"] = json!("2026-01-01T00:00:00Z"))),
        ("another version", broken(&|p| p["version"] = json!("KI-CR-v1.0.0"))),
        ("an address as text", broken(&|p| p["piiControllers"][0]["address"] = json!("1 Road"))),
        ("no phone", broken(&|p| _ = p["piiControllers"][0].as_object_mut().map(|o| o.remove("phone")))),
        (
            "third parties unnamed",
            broken(&|p| {
                let purpose = &mut p["services"][0]["purposes"][0];
                purpose["thirdPartyDisclosure"] = json!(true);
                purpose.as_object_mut().map(|o| o.remove("thirdPartyName"));
            }),
        ),
        ("sensitive without spiCat", broken(&|p| (p["sensitive"], p["spiCat"]) = (json!(true), json!([])))),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/validate_receipt.py");
    for (what, payload) in cases {
        let file = dir.path().join("receipt.json");
        std::fs::write(&file, serde_json::to_vec(&payload).expect("JSON")).expect("write");
        let out = tokio::process::Command::new("python3")
            .arg(script)
            .arg(SCHEMA)
            .arg(&file)
            .output()
            .await
            .expect("run python3");
        assert!(!out.status.success(), "the schema accepts a receipt with {what}");
    }
}

async fn receipt_of(s: &TestServer, subject: &str, body: &Value) -> Value {
    let out = record_full(s, subject, body).await;
    let payload = out["receipt"]["payload"].clone();
    assert_eq!(
        jws_part(&crate::proof::receipt_jws(s, &out).await, 1),
        payload,
        "the JWS signs the same document"
    );
    assert_kantara(&payload).await;
    payload
}

/// Consent to a special category, consent shared with third parties and an objection on legitimate
/// interest: each one's receipt is Kantara's, with the members each case sets.
async fn every_kind_of_purpose_gives_a_kantara_receipt(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut doc = s.get("/v1/catalog", ADMIN_KEY, 200).await["document"].clone();
    doc["purposes"].as_array_mut().expect("purposes").push(json!({
        "key": "voicetest", "name": "Keeping your voice requests", "basis": "consent",
        "dpv": "dpv:ServiceProvision", "categories": ["user.biometric.voice"], "channels": [],
        "recipients": ["brand"], "notice": "voicetest",
    }));
    doc["notices"].as_array_mut().expect("notices").push(json!({
        "key": "voicetest", "title": "Your voice requests", "language": "en",
        "text": "We keep recordings of what you ask the assistant until you withdraw.",
    }));
    s.put("/v1/catalog", ADMIN_KEY, &doc, 200).await;

    let voice = json!({"notice": "voicetest", "changes": [{"purpose": "voicetest", "action": "grant"}]});
    let p = receipt_of(&s, "vic", &voice).await;
    assert_eq!((&p["sensitive"], &p["spiCat"]), (&json!(true), &json!(["Voice recordings"])), "{p}");
    let purpose = &p["services"][0]["purposes"][0];
    assert_eq!(purpose["purpose"], "Keeping your voice requests");
    assert_eq!(purpose["piiCategory"], json!(["Voice recordings"]));
    assert_eq!((&purpose["consentType"], &purpose["primaryPurpose"]), (&json!("EXPLICIT"), &json!(false)));
    assert_eq!(p["consentry"]["events"][0]["pii_information"][0]["sensitive"], true);
    the_schema_refuses_what_kantara_refuses(&p).await;

    let sharing = json!({"notice": "third_party.sharing", "collection_point": "mobile-app",
        "changes": [{"purpose": "third_party.sharing", "action": "grant"}]});
    let p = receipt_of(&s, "vic", &sharing).await;
    let purpose = &p["services"][0]["purposes"][0];
    assert_eq!(
        (&purpose["thirdPartyDisclosure"], &purpose["thirdPartyName"]),
        (&json!(true), &json!("Advertising partners"))
    );
    assert_eq!((&p["language"], &p["collectionMethod"]), (&json!("en"), &json!("app_screen")));

    // A German notice shown: the receipt says so and names the catalogue's words in German.
    let catalog = s.get("/v1/catalog", ADMIN_KEY, 200).await;
    let german = catalog["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .find(|n| n["key"] == "marketing.direct" && n["language"] == "de")
        .expect("the default catalogue has the notice in German");
    let body = json!({"notice": "marketing.direct", "notice_version": german["version"],
        "collection_point": "web-signup",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"],
                     "categories": ["user.contact.email"]}]});
    let p = receipt_of(&s, "vic", &body).await;
    assert_eq!(p["language"], "de");
    let purpose = &p["services"][0]["purposes"][0];
    assert_eq!(
        (&purpose["purpose"], &purpose["piiCategory"]),
        (&json!("Neuigkeiten und Angebote"), &json!(["E-Mail-Adresse"]))
    );
    let x = &p["consentry"];
    assert_eq!((&x["notice"]["language"], &x["notice"]["sha256"]), (&json!("de"), &german["sha256"]));

    let object = json!({"changes": [{"purpose": "service.improvement", "action": "object"}]});
    let p = receipt_of(&s, "vic", &object).await;
    let purpose = &p["services"][0]["purposes"][0];
    assert_eq!((&purpose["consentType"], &purpose["primaryPurpose"]), (&json!("N/A"), &json!(false)));
    let event = &p["consentry"]["events"][0];
    assert_eq!(
        (&event["lawful_basis"], &event["event_type"], &event["event_state"]),
        (&json!("legitimate_interest"), &json!("object"), &json!("objected"))
    );
}

/// Whole seconds since the Unix epoch of an RFC 3339 time as the server renders it.
pub fn epoch_secs(rfc3339: &str) -> i64 {
    let t =
        consentry_core::Timestamp::parse(rfc3339).unwrap_or_else(|| panic!("an RFC 3339 time: {rfc3339}"));
    t.micros().div_euclid(1_000_000)
}
