//! Credentials that hand out power: minting a subject token (`tokens:mint`) and pairing a device
//! (`devices:write` and the scopes the device's token exercises). Both are in the subject's access log, and
//! so is what the person does with their token.
use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{
    ACCESS_LOG_ROUTE, ADMIN_KEY, Backend, MINT_ROUTE, TestServer, access_entries as entries, assert_code,
    both_backends, entry, str_of,
};

both_backends!(
    minting_needs_its_own_scope_and_is_logged,
    pairing_needs_devices_write_and_what_the_device_will_do,
);

const PAIR_ROUTE: &str = "POST /v1/subjects/{subject}/devices";
const UNPAIR_ROUTE: &str = "DELETE /v1/subjects/{subject}/devices/{id}";

fn speaker() -> Value {
    json!({"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
           "purposes": ["analytics"]})
}

/// A request with `X-Consentry-Purpose: purpose`; returns the status and the JSON body (null if none).
async fn send_stating(
    s: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
    purpose: &str,
) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut request = client
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(key)
        .header("X-Consentry-Purpose", purpose);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn minting_needs_its_own_scope_and_is_logged(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    // consent:write no longer implies minting: a token acts as the person.
    let (_, writer) = s.create_key("writer", &["consent:write", "consent:read", "check"]).await;
    assert_code(&s.post("/v1/subjects/kim/tokens", &writer, &json!({}), 403).await, "forbidden");
    let (_, support) = s.create_key("support-desk", &["tokens:mint"]).await;
    let (status, minted) = send_stating(
        &s,
        Method::POST,
        "/v1/subjects/kim/tokens",
        &support,
        Some(&json!({})),
        "support chat #812",
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let token = str_of(&minted["token"]).to_owned();
    // tokens:mint is only that: the key reads nothing.
    assert_code(&s.get("/v1/subjects/kim/consents", &support, 403).await, "forbidden");

    // What the person does with the token is logged as theirs, after the minting by the support desk.
    s.get("/v1/subjects/kim/consents", &token, 200).await;
    let (status, _) = send_stating(
        &s,
        Method::GET,
        "/v1/subjects/kim/consents/history",
        &token,
        None,
        "checking my choices",
    )
    .await;
    assert_eq!(status, 200);
    let log = entries(&s, "kim", 3).await;
    assert_eq!(
        log,
        [
            entry("subject", "GET /v1/subjects/{subject}/consents/history", "checking my choices"),
            entry("subject", "GET /v1/subjects/{subject}/consents", "unspecified"),
            entry("support-desk", MINT_ROUTE, "support chat #812"),
        ]
    );
    // The person sees the same log with their token; that read is theirs too.
    let own = s.get("/v1/subjects/kim/access-log", &token, 200).await;
    assert!(
        own["entries"].as_array().is_some_and(|e| e.iter().any(|e| e["caller"] == "support-desk")),
        "{own}"
    );
    let log = entries(&s, "kim", 4).await;
    assert_eq!(log[0], entry("subject", ACCESS_LOG_ROUTE, "unspecified"));
}

async fn pairing_needs_devices_write_and_what_the_device_will_do(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let path = "/v1/subjects/dana/devices";
    // A device's token runs checks and writes records: the pairing key must be able to do both itself.
    for (i, scopes) in [
        &["consent:write", "consent:read", "check", "records:write"][..],
        &["devices:write"],
        &["devices:write", "check"],
        &["devices:write", "records:write"],
        &["check", "records:write"],
    ]
    .into_iter()
    .enumerate()
    {
        let (_, key) = s.create_key(&format!("narrow-{i}"), scopes).await;
        assert_code(&s.post(path, &key, &speaker(), 403).await, "forbidden");
    }
    let (_, pairer) = s.create_key("hub", &["devices:write", "check", "records:write"]).await;
    let (status, paired) =
        send_stating(&s, Method::POST, path, &pairer, Some(&speaker()), "new speaker").await;
    assert_eq!(status, 201, "{paired}");
    let device = str_of(&paired["id"]).to_owned();

    // Unpairing takes devices:write alone (it takes power away); consent:write is not enough.
    let (_, writer) = s.create_key("writer", &["consent:write"]).await;
    assert_code(&s.delete(&format!("{path}/{device}"), &writer, 403).await, "forbidden");
    let (_, unpairer) = s.create_key("unpairer", &["devices:write"]).await;
    s.delete(&format!("{path}/{device}"), &unpairer, 204).await;

    // The person pairs and unpairs their own devices with their token, and only their own.
    let token =
        str_of(&s.post("/v1/subjects/dana/tokens", ADMIN_KEY, &json!({}), 201).await["token"]).to_owned();
    let own = s.post(path, &token, &speaker(), 201).await;
    s.delete(&format!("{path}/{}", str_of(&own["id"])), &token, 204).await;
    assert_code(&s.post("/v1/subjects/eli/devices", &token, &speaker(), 403).await, "forbidden");

    let log = entries(&s, "dana", 5).await;
    assert_eq!(
        log,
        [
            entry("subject", UNPAIR_ROUTE, "unspecified"),
            entry("subject", PAIR_ROUTE, "unspecified"),
            entry("admin", MINT_ROUTE, "unspecified"),
            entry("unpairer", UNPAIR_ROUTE, "unspecified"),
            entry("hub", PAIR_ROUTE, "new speaker"),
        ]
    );
}
