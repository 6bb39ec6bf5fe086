//! Households: members and shared devices on both backends; the household device's snapshot decides per
//! member (`check_for`) and for anyone by what every member allows; a member leaving (or erased) takes
//! their consents out at once, pushed over SSE; the household's label is not at rest in plain text.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_client::DeviceConsent;
use serde_json::{Value, json};

use crate::devices::{SseReader, jwks, snapshot};
use crate::preferences::{Visitor, mint};
use crate::utils::{
    ADMIN_KEY, Backend, TestServer, assert_code, at_rest, both_backends, grant, str_of, withdraw,
};

const TELEMETRY: &str = "user.device.telemetry";
const LABEL: &str = "The Household-Label-Scan Family";

fn speaker() -> Value {
    json!({"name": "Living room speaker", "kind": "speaker", "categories": [TELEMETRY], "purposes": ["analytics"]})
}

async fn household(s: &TestServer) -> String {
    let created = s.post("/v1/households", ADMIN_KEY, &json!({"name": LABEL}), 201).await;
    assert_eq!(
        (created["name"].as_str(), &created["members"], &created["devices"]),
        (Some(LABEL), &json!([]), &json!([]))
    );
    str_of(&created["id"]).to_owned()
}

/// Adds `subject`; returns their handle.
async fn join(s: &TestServer, id: &str, subject: &str) -> String {
    let member =
        s.post(&format!("/v1/households/{id}/members"), ADMIN_KEY, &json!({"subject": subject}), 201).await;
    assert_eq!(member["subject"], json!(subject));
    str_of(&member["handle"]).to_owned()
}

/// Pairs a device with the household; returns (id, token).
async fn pair(s: &TestServer, id: &str) -> (String, String) {
    let out = s.post(&format!("/v1/households/{id}/devices"), ADMIN_KEY, &speaker(), 201).await;
    (str_of(&out["id"]).to_owned(), str_of(&out["token"]).to_owned())
}

fn payload(jws: &str) -> String {
    let part = jws.split('.').nth(1).expect("payload");
    String::from_utf8(URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("utf-8")
}

async fn household_flow(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let keys = jwks(&s.base).await;
    let id = household(&s).await;
    assert!(id.starts_with("hh_"), "{id}");
    assert_code(&s.post("/v1/households", ADMIN_KEY, &json!({"name": " "}), 422).await, "validation_failed");
    let unknown = s.post("/v1/households", ADMIN_KEY, &json!({"name": "x", "y": 1}), 422).await;
    assert_code(&unknown, "validation_failed");
    let ana = join(&s, &id, "hh-ana").await;
    let ben = join(&s, &id, "hh-ben").await;
    assert!(ana.starts_with("hm_") && ana != ben, "{ana} {ben}");
    let again =
        s.post(&format!("/v1/households/{id}/members"), ADMIN_KEY, &json!({"subject": "hh-ana"}), 200).await;
    assert_eq!(again["handle"], json!(ana), "a member joins once and keeps their handle");
    assert_code(
        &s.post("/v1/households/hh_none/members", ADMIN_KEY, &json!({"subject": "x"}), 404).await,
        "not_found",
    );
    let (device, token) = pair(&s, &id).await;
    assert!(device.starts_with("dev_") && token.starts_with("cdt_"));
    assert_code(&s.post("/v1/households/hh_none/devices", ADMIN_KEY, &speaker(), 404).await, "not_found");
    let read = s.get(&format!("/v1/households/{id}"), ADMIN_KEY, 200).await;
    assert_eq!(read["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(read["devices"][0]["id"], json!(device));
    assert!(!read.to_string().contains(&token), "the token is shown once");
    let listed = s.get("/v1/households?limit=1", ADMIN_KEY, 200).await;
    assert_eq!(listed["households"][0]["id"], json!(id));
    assert_code(&s.get("/v1/households?limit=0", ADMIN_KEY, 400).await, "invalid_query");
    // A household's device reads its snapshot, and nothing of any one person.
    assert_code(&s.get("/v1/subjects/hh-ana/consents", &token, 403).await, "forbidden");
    let check = json!({"subject": "hh-ana", "purpose": "analytics", "category": TELEMETRY});
    assert_code(&s.post("/v1/check", &token, &check, 403).await, "forbidden");
    assert_code(&s.get(&format!("/v1/households/{id}"), &token, 403).await, "forbidden");

    s.record("hh-ana", &grant("analytics", &["on_device"])).await;
    let (status, _, jws) = snapshot(&s.base, &token, None).await;
    assert_eq!(status, 200, "{jws}");
    let text = payload(&jws);
    assert!(!text.contains("hh-ana") && !text.contains("hh-ben"), "members go by handle: {text}");
    let consent = DeviceConsent::verify_for_device_at(&jws, &keys, &device, consentry_core::Timestamp::now())
        .expect("verifies");
    assert_eq!(consent.members(), [ana.clone(), ben.clone()]);
    assert!(consent.check_for(&ana, "analytics", TELEMETRY, "on_device"));
    assert!(!consent.check_for(&ben, "analytics", TELEMETRY, "on_device"));
    assert!(!consent.check_for("hh-ana", "analytics", TELEMETRY, "on_device"), "a subject id is no handle");
    assert!(!consent.allowed("analytics", TELEMETRY, "on_device"), "ben has not agreed: nobody unrecognised");

    // Ben leaves: his (absent) consent no longer holds back the household.
    s.delete(&format!("/v1/households/{id}/members/hh-ben"), ADMIN_KEY, 204).await;
    assert_code(&s.delete(&format!("/v1/households/{id}/members/hh-ben"), ADMIN_KEY, 404).await, "not_found");
    let (_, _, jws) = snapshot(&s.base, &token, None).await;
    let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
    assert_eq!(consent.members(), std::slice::from_ref(&ana));
    assert!(!consent.check_for(&ben, "analytics", TELEMETRY, "on_device"), "no longer a member");
    assert!(consent.allowed("analytics", TELEMETRY, "on_device"), "every member allows");

    // Unpairing revokes the token at once.
    s.delete(&format!("/v1/households/{id}/devices/{device}"), ADMIN_KEY, 204).await;
    assert_eq!(snapshot(&s.base, &token, None).await.0, 401);
    s.stop().await;
}

/// The household device's stream sends a fresh snapshot when a member's consent changes and when a member
/// leaves, and ends when the device is unpaired.
async fn household_stream(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let keys = jwks(&s.base).await;
    let id = household(&s).await;
    let ana = join(&s, &id, "st-ana").await;
    let ben = join(&s, &id, "st-ben").await;
    let (device, token) = pair(&s, &id).await;
    s.record("st-ana", &grant("analytics", &["on_device"])).await;
    s.record("st-ben", &grant("analytics", &["on_device"])).await;
    let mut stream = SseReader::open(&s.base, &token).await;
    let first = stream.next(Duration::from_secs(5)).await.expect("a snapshot at once");
    let consent = DeviceConsent::verify(&first, &keys).expect("verifies");
    assert!(consent.allowed("analytics", TELEMETRY, "on_device"));

    s.record("st-ben", &withdraw("analytics")).await;
    let jws = stream.next(Duration::from_secs(5)).await.expect("a fresh snapshot after ben's withdrawal");
    let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
    assert!(!consent.allowed("analytics", TELEMETRY, "on_device"));
    assert!(!consent.check_for(&ben, "analytics", TELEMETRY, "on_device"));

    s.delete(&format!("/v1/households/{id}/members/st-ben"), ADMIN_KEY, 204).await;
    let jws = stream.next(Duration::from_secs(5)).await.expect("a fresh snapshot after ben left");
    let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
    assert_eq!(consent.members(), std::slice::from_ref(&ana));
    assert!(consent.allowed("analytics", TELEMETRY, "on_device"));

    s.delete(&format!("/v1/households/{id}/devices/{device}"), ADMIN_KEY, 204).await;
    assert_eq!(stream.next(Duration::from_secs(5)).await, None, "unpairing ends the stream");
    s.stop().await;
}

/// Erasing a member takes them out of the household (and its device's snapshot); the household's label
/// is never at rest in plain text.
async fn household_erasure(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let keys = jwks(&s.base).await;
    let id = household(&s).await;
    join(&s, &id, "er-ana").await;
    let zed = join(&s, &id, "er-zed").await;
    let (_, token) = pair(&s, &id).await;
    let needles = vec![LABEL.as_bytes().to_vec()];
    assert!(at_rest(&s, &needles).await.is_empty(), "the label is at rest in plain text");

    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "er-zed", "type": "erasure"}), 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = s.get(&format!("/v1/households/{id}"), ADMIN_KEY, 200).await;
        if read["members"].as_array().is_some_and(|m| m.len() == 1) {
            assert_eq!(read["members"][0]["subject"], json!("er-ana"));
            break;
        }
        assert!(Instant::now() < deadline, "the erasure did not take the member out within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, _, jws) = snapshot(&s.base, &token, None).await;
    let consent = DeviceConsent::verify(&jws, &keys).expect("verifies");
    assert_eq!(consent.members().len(), 1);
    assert!(!consent.members().contains(&zed));
    let p =
        s.post(&format!("/v1/households/{id}/members"), ADMIN_KEY, &json!({"subject": "er-zed"}), 410).await;
    assert_code(&p, "subject_erased");
    s.stop().await;
}

/// Each member sees the household's devices in the preference centre (English and German), without an
/// unpair button; someone outside the household does not.
async fn household_devices_in_the_preference_centre(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let id = household(&s).await;
    join(&s, &id, "pc-ana").await;
    join(&s, &id, "pc-ben").await;
    let (device, _) = pair(&s, &id).await;
    let open = |subject: &'static str, locale: &'static str| {
        let s = &s;
        async move {
            let minted = mint(s, subject, &json!({"locale": locale})).await;
            let mut v = Visitor::new(s);
            v.open_link(str_of(&minted["token"])).await.text
        }
    };
    let ana = open("pc-ana", "en").await;
    assert!(ana.contains("Shared with your household") && ana.contains("Living room speaker"), "{ana}");
    assert!(
        !ana.contains(&format!("/devices/{device}/unpair")),
        "the household's device is not unpaired here"
    );
    let ben = open("pc-ben", "de").await;
    assert!(ben.contains("Mit Ihrem Haushalt geteilt") && ben.contains("Living room speaker"), "{ben}");
    let cleo = open("pc-cleo", "en").await;
    assert!(!cleo.contains("Shared with your household") && !cleo.contains("Living room speaker"));
    s.stop().await;
}

/// A household deleted while members join: every member whose joining was answered 201 was removed by
/// the delete, and their access log says so (the members are read in the delete's own transaction, not
/// before it); one that joined too late was refused with 404.
async fn household_delete_logs_exactly_the_members_it_removed(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut removed = Vec::new();
    for round in 0..20 {
        let id = household(&s).await;
        join(&s, &id, &format!("race-{round}-first")).await;
        let add = |k: usize| {
            let (s, id) = (&s, &id);
            async move {
                let subject = format!("race-{round}-{k}");
                let body = json!({"subject": subject}).to_string().into_bytes();
                let path = format!("/v1/households/{id}/members");
                let reply =
                    s.send(reqwest::Method::POST, &path, ADMIN_KEY, Some(("application/json", body))).await;
                (subject, reply.status)
            }
        };
        let delete = async {
            tokio::time::sleep(Duration::from_millis(round % 5)).await;
            s.send(reqwest::Method::DELETE, &format!("/v1/households/{id}"), ADMIN_KEY, None).await.status
        };
        let (a, b, c, deleted) = tokio::join!(add(1), add(2), add(3), delete);
        assert_eq!(deleted, 204);
        removed.push((format!("race-{round}-first"), id.clone()));
        for (subject, status) in [a, b, c] {
            assert!(status == 201 || status == 404, "{subject}: {status}");
            if status == 201 {
                removed.push((subject, id.clone()));
            }
        }
        s.get(&format!("/v1/households/{id}"), ADMIN_KEY, 404).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (subject, id) in removed {
        loop {
            let log = s.get(&format!("/v1/subjects/{subject}/access-log?limit=1000"), ADMIN_KEY, 200).await;
            let entries = log["entries"].as_array().expect("entries");
            if entries.iter().any(|e| e["route"] == "DELETE /v1/households/{id}" && e["caller"] == "admin") {
                break;
            }
            assert!(Instant::now() < deadline, "{subject} left {id} unlogged: {log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    s.stop().await;
}

async fn patch(s: &TestServer, path: &str, key: &str, body: &Value, status: u16) -> Value {
    s.raw(reqwest::Method::PATCH, path, key, "application/json", body.to_string(), status).await
}

/// A household is renamed (the new label only sealed at rest) and deleted with its memberships and
/// devices: the device's token is dead at once and its open stream ends; the members' records stay.
async fn household_rename_and_delete(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let id = household(&s).await;
    join(&s, &id, "rd-ana").await;
    let (_, token) = pair(&s, &id).await;
    let path = format!("/v1/households/{id}");
    let renamed_label = "The Renamed-Label-Scan Family";
    // A key that renames does not read: the answer names no member (that is GET's, with consent:read).
    let renamed = patch(&s, &path, ADMIN_KEY, &json!({"name": format!("  {renamed_label} ")}), 204).await;
    assert_eq!(renamed, Value::Null, "no body");
    let now = s.get(&path, ADMIN_KEY, 200).await;
    assert_eq!(now["name"], json!(renamed_label), "trimmed");
    assert_eq!(
        (now["members"].as_array().map(Vec::len), now["devices"].as_array().map(Vec::len)),
        (Some(1), Some(1))
    );
    assert_eq!(patch(&s, &path, ADMIN_KEY, &json!({}), 204).await, Value::Null, "nothing to change");
    assert_eq!(s.get(&path, ADMIN_KEY, 200).await["name"], json!(renamed_label));
    assert_code(
        &patch(&s, "/v1/households/hh_0000000000000000", ADMIN_KEY, &json!({}), 404).await,
        "not_found",
    );
    for bad in [
        json!({"name": ""}),
        json!({"name": "a\u{7}b"}),
        json!({"name": "x".repeat(101)}),
        json!({"name": 5}),
        json!({"colour": "red"}),
    ] {
        assert_code(&patch(&s, &path, ADMIN_KEY, &bad, 422).await, "validation_failed");
    }
    assert_code(
        &patch(&s, "/v1/households/hh_0000000000000000", ADMIN_KEY, &json!({"name": "x"}), 404).await,
        "not_found",
    );
    let needles = vec![LABEL.as_bytes().to_vec(), renamed_label.as_bytes().to_vec()];
    assert!(at_rest(&s, &needles).await.is_empty(), "a label is at rest in plain text");

    // Only devices:write renames or deletes.
    let (_, reader) = s.create_key("household-reader", &["consent:read"]).await;
    assert_code(&patch(&s, &path, &reader, &json!({"name": "x"}), 403).await, "forbidden");
    assert_code(&s.delete(&path, &reader, 403).await, "forbidden");

    // The Rust client renames too.
    let client = consentry_client::Client::new(&s.base, ADMIN_KEY).expect("a client");
    client.rename_household(&id, "Flat 3").await.expect("renamed");
    let again = client.household(&id).await.expect("read");
    assert_eq!((again.name.as_str(), again.members.len()), ("Flat 3", 1));

    let mut stream = SseReader::open(&s.base, &token).await;
    stream.next(Duration::from_secs(5)).await.expect("a snapshot at once");
    client.delete_household(&id).await.expect("deleted");
    assert_eq!(stream.next(Duration::from_secs(5)).await, None, "deleting the household ends the stream");
    assert_eq!(snapshot(&s.base, &token, None).await.0, 401, "the device's token is dead");
    assert_code(&s.delete(&path, ADMIN_KEY, 404).await, "not_found");
    s.get(&path, ADMIN_KEY, 404).await;
    assert!(
        s.get("/v1/households", ADMIN_KEY, 200).await["households"].as_array().is_some_and(Vec::is_empty)
    );
    s.post(&format!("{path}/members"), ADMIN_KEY, &json!({"subject": "rd-ana"}), 404).await;
    s.post(&format!("{path}/devices"), ADMIN_KEY, &speaker(), 404).await;
    // The member's own record stands.
    s.record("rd-ana", &grant("analytics", &["on_device"])).await;
    s.stop().await;
}

both_backends!(
    household_delete_logs_exactly_the_members_it_removed,
    household_rename_and_delete,
    household_flow,
    household_stream,
    household_erasure,
    household_devices_in_the_preference_centre
);
