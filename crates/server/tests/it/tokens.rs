//! Subject tokens: minted by a service, they reach only their own subject's routes.

use consentry_client::DeviceConsent;
use consentry_client::verify::{JwsError, VerifyError, verify_receipt};
use consentry_core::proof::Jwks;
use reqwest::Method;
use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(
    a_subject_token_reaches_only_its_own_routes,
    minting_is_validated_and_scoped,
    other_signed_statements_are_not_tokens_nor_tokens_them,
);

async fn mint(s: &TestServer, subject: &str) -> serde_json::Value {
    s.post(&format!("/v1/subjects/{subject}/tokens"), ADMIN_KEY, &json!({"ttl": 600, "locale": "de"}), 201)
        .await
}

async fn a_subject_token_reaches_only_its_own_routes(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let minted = mint(&s, "kim").await;
    let token = str_of(&minted["token"]).to_owned();
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    let url = str_of(&minted["url"]);
    assert!(url.ends_with(&format!("/preferences?token={token}")), "the link carries the token: {url}");
    assert!(str_of(&minted["expires_at"]).ends_with('Z'));

    // Kim changes her own consents and reads her own state, history and access log.
    let recorded =
        s.post("/v1/subjects/kim/consents", &token, &grant("marketing.direct", &["email"]), 201).await;
    assert_eq!(recorded["events"][0]["actor"], "subject", "{recorded}");
    let current = s.get("/v1/subjects/kim/consents", &token, 200).await;
    assert_eq!(current["subject"], "kim");
    s.get("/v1/subjects/kim/consents/history", &token, 200).await;
    s.get("/v1/subjects/kim/access-log", &token, 200).await;

    // Another subject's routes: 403.
    let p = s.get("/v1/subjects/alex/consents", &token, 403).await;
    assert_code(&p, "forbidden");
    let p = s.post("/v1/subjects/alex/consents", &token, &grant("marketing.direct", &["email"]), 403).await;
    assert_code(&p, "forbidden");
    // Service routes: 403, whatever the token.
    let p = s.post("/v1/check", &token, &json!({"subject": "kim", "purpose": "service"}), 403).await;
    assert_code(&p, "forbidden");
    s.get("/v1/keys", &token, 403).await;
    s.post("/v1/subjects/kim/tokens", &token, &json!({}), 403).await;

    // Forged: the payload of a token for alex under the signature of kim's.
    let alex = str_of(&mint(&s, "alex").await["token"]).to_owned();
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = alex.split('.').nth(1).expect("payload");
    let forged = parts.join(".");
    let p = s.get("/v1/subjects/alex/consents", &forged, 401).await;
    assert_code(&p, "unauthorized");
    s.get("/v1/subjects/kim/consents", "x.y.z", 401).await;
    // A receipt is signed by the same key but is not a credential.
    let receipt =
        s.get(&format!("/v1/receipts/{}", str_of(&recorded["receipt"]["id"])), ADMIN_KEY, 200).await;
    s.get("/v1/subjects/kim/consents", str_of(&receipt["jws"]), 401).await;

    // A service reading kim's data is logged (the receipt above, the consents now), and so are the minting
    // of her token and what she did with it (a consent change, then reading state and history); the subject
    // sees it all.
    s.get("/v1/subjects/kim/consents", ADMIN_KEY, 200).await;
    let mut entries = Vec::new();
    for _ in 0..100 {
        let log = s.get("/v1/subjects/kim/access-log", &token, 200).await;
        entries = log["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["route"] != "GET /v1/subjects/{subject}/access-log")
            .cloned()
            .collect();
        if entries.len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Newest first.
    let seen: Vec<(&str, &str)> =
        entries.iter().map(|e| (str_of(&e["caller"]), str_of(&e["route"]))).collect();
    assert_eq!(
        seen,
        [
            ("admin", "GET /v1/subjects/{subject}/consents"),
            ("admin", "GET /v1/receipts/{id}"),
            ("subject", "GET /v1/subjects/{subject}/consents/history"),
            ("subject", "GET /v1/subjects/{subject}/consents"),
            ("subject", "POST /v1/subjects/{subject}/consents"),
            ("admin", "POST /v1/subjects/{subject}/tokens"),
        ],
        "{entries:?}"
    );
}

async fn minting_is_validated_and_scoped(backend: Backend) {
    let s =
        TestServer::with_config_on(backend, |c| c.public_url = Some("https://consent.example.com".into()))
            .await;
    let minted = mint(&s, "kim").await;
    let expected = format!("https://consent.example.com/preferences?token={}", str_of(&minted["token"]));
    assert_eq!(str_of(&minted["url"]), expected, "links use the public URL");
    // No body: the defaults (one hour).
    let reply = s.send(Method::POST, "/v1/subjects/kim/tokens", ADMIN_KEY, None).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"ttl": 5}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"ttl": 99_999_999}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"locale": "<script>"}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({"lifetime": 60}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post("/v1/subjects/has%20space/tokens", ADMIN_KEY, &json!({}), 400).await;
    assert_code(&p, "invalid_subject");
    // Minting needs tokens:mint (consent:write is not enough: a token acts as the person).
    let (_, reader) = s.create_key("reader", &["consent:read"]).await;
    let p = s.post("/v1/subjects/kim/tokens", &reader, &json!({}), 403).await;
    assert_code(&p, "forbidden");
    let (_, writer) = s.create_key("writer", &["consent:write"]).await;
    let p = s.post("/v1/subjects/kim/tokens", &writer, &json!({}), 403).await;
    assert_code(&p, "forbidden");
    let (_, minter) = s.create_key("minter", &["tokens:mint"]).await;
    s.post("/v1/subjects/kim/tokens", &minter, &json!({}), 201).await;
}

/// RFC 8725 §3.11: every JWS the server signs names its kind in its `typ` header, and each verifier takes
/// only its own kind, so no genuine statement of one kind passes for another.
async fn other_signed_statements_are_not_tokens_nor_tokens_them(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let jwks: Jwks = serde_json::from_value(s.get("/.well-known/jwks.json", "", 200).await).expect("a JWKS");
    let token = str_of(&mint(&s, "kim").await["token"]).to_owned();
    let recorded =
        s.post("/v1/subjects/kim/consents", &token, &grant("analytics", &["on_device"]), 201).await;
    let receipt = str_of(&recorded["receipt"]["jws"]).to_owned();
    let paired = s
        .post(
            "/v1/subjects/kim/devices",
            ADMIN_KEY,
            &json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                    "purposes": ["analytics"]}),
            201,
        )
        .await;
    let reply = s.send(Method::GET, "/v1/device/consent", str_of(&paired["token"]), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let snapshot = reply.text.clone();
    DeviceConsent::verify(&snapshot, &jwks).expect("the snapshot verifies as a snapshot");
    verify_receipt(&receipt, &jwks).expect("the receipt verifies as a receipt");

    // A receipt or a snapshot presented as kim's subject token: 401.
    for jws in [&receipt, &snapshot] {
        assert_code(&s.get("/v1/subjects/kim/consents", jws, 401).await, "unauthorized");
    }
    // The token presented as a receipt, the token and the receipt as a snapshot: refused for their kind.
    let wrong_kind = |e: &JwsError| matches!(e, JwsError::WrongKind { .. });
    assert!(matches!(verify_receipt(&token, &jwks), Err(VerifyError::Jws(ref e)) if wrong_kind(e)));
    for jws in [&token, &receipt] {
        let err = DeviceConsent::verify(jws, &jwks).expect_err("not a snapshot");
        assert!(
            matches!(err, consentry_client::device::DeviceConsentError::Signature(ref e) if wrong_kind(e)),
            "{err}"
        );
    }
}
