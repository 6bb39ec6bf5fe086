//! Every error code: status, `code` and the problem document shape (checked for every error by the
//! client in `utils`), and never a 5xx.

use reqwest::Method;
use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, NO_KEY, TestServer, assert_code, both_backends, grant};

both_backends!(
    unauthorized_without_a_valid_key,
    forbidden_without_the_scope,
    malformed_json_is_invalid_json,
    wrong_shapes_are_validation_failed,
    unknown_catalogue_names_on_check_and_write,
    bodies_over_the_limit_are_payload_too_large,
    non_json_bodies_are_unsupported_media_type,
    unknown_routes_and_wrong_methods,
);

const CHECK: &str = "/v1/check";
const CONSENTS: &str = "/v1/subjects/erin/consents";

async fn unauthorized_without_a_valid_key(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let reply = s.send(Method::GET, "/v1/catalog", NO_KEY, None).await;
    assert_eq!(reply.status, 401);
    assert_code(&reply.json(), "unauthorized");
    assert_eq!(reply.headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));

    let body = json!({"subject": "erin", "purpose": "service"});
    assert_code(&s.post(CHECK, NO_KEY, &body, 401).await, "unauthorized");
    assert_code(&s.post(CHECK, "csk_not_a_key_anyone_made", &body, 401).await, "unauthorized");
    // The admin key with one character changed.
    let near = format!("{}X", &ADMIN_KEY[..ADMIN_KEY.len() - 1]);
    assert_code(&s.get("/v1/catalog", &near, 401).await, "unauthorized");

    let (id, key) = s.create_key("short-lived", &["check"]).await;
    s.post(CHECK, &key, &body, 200).await;
    s.delete(&format!("/v1/keys/{id}"), ADMIN_KEY, 204).await;
    assert_code(&s.post(CHECK, &key, &body, 401).await, "unauthorized");
}

async fn forbidden_without_the_scope(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (_, checker) = s.create_key("checker", &["check"]).await;
    let (_, reader) = s.create_key("reader", &["consent:read"]).await;
    let p = s.post(CONSENTS, &checker, &grant("marketing.direct", &["email"]), 403).await;
    assert_code(&p, "forbidden");
    assert_code(&s.get(CONSENTS, &checker, 403).await, "forbidden");
    assert_code(&s.put("/v1/catalog", &checker, &json!({}), 403).await, "forbidden");
    assert_code(&s.get("/v1/keys", &checker, 403).await, "forbidden");
    assert_code(
        &s.post("/v1/keys", &reader, &json!({"name": "x", "scopes": ["admin"]}), 403).await,
        "forbidden",
    );
    assert_code(
        &s.post(CHECK, &reader, &json!({"subject": "erin", "purpose": "service"}), 403).await,
        "forbidden",
    );
    // What the keys may do still works.
    s.get(CONSENTS, &reader, 200).await;
    s.get("/v1/catalog", &checker, 200).await;
}

async fn malformed_json_is_invalid_json(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for path in [CHECK, "/v1/check/batch", CONSENTS, "/v1/keys"] {
        for body in ["{not json", "{\"", "", "{,}", "nul"] {
            let p = s.raw(Method::POST, path, ADMIN_KEY, "application/json", body, 400).await;
            assert_code(&p, "invalid_json");
        }
    }
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/json", "{not json", 400).await;
    assert_code(&p, "invalid_json");
}

async fn wrong_shapes_are_validation_failed(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let cases = [
        (CHECK, json!({"subject": 5, "purpose": "service"})),
        (CHECK, json!({"purpose": "service"})),
        (CHECK, json!({"subject": "erin", "purpose": "service", "chanel": "email"})),
        (CHECK, json!({"subject": "", "purpose": "service"})),
        ("/v1/check/batch", json!({"checks": "all"})),
        (CONSENTS, json!({"changes": []})),
        (CONSENTS, json!({"changes": "grant"})),
        (
            CONSENTS,
            json!({"notice": "marketing.direct", "changes": [
                {"purpose": "marketing.direct", "action": "grant", "chanels": ["email"]}]}),
        ),
        (CONSENTS, json!({"changes": [{"purpose": "marketing.direct", "action": "obliterate"}]})),
        (
            CONSENTS,
            json!({"notice": "marketing.direct", "changes": [
                {"purpose": "marketing.direct", "action": "grant", "expires_at": "2001-01-01T00:00:00Z"}]}),
        ),
        ("/v1/keys", json!({"name": "", "scopes": ["check"]})),
        ("/v1/keys", json!({"name": "k", "scopes": []})),
    ];
    for (path, body) in cases {
        let reply = s
            .send(Method::POST, path, ADMIN_KEY, Some(("application/json", body.to_string().into_bytes())))
            .await;
        assert_eq!(reply.status, 422, "POST {path} {body}: {}", reply.text);
        assert_code(&reply.json(), "validation_failed");
    }
    let p = s.post(CONSENTS, ADMIN_KEY, &json!({"changes": []}), 422).await;
    assert_eq!(p["errors"][0]["path"], "changes");
    let p = s.get("/v1/subjects/erin/consents/history?limit=0", ADMIN_KEY, 400).await;
    assert_code(&p, "invalid_query");
    let p = s.get("/v1/subjects/erin/consents/history?after=yesterday", ADMIN_KEY, 400).await;
    assert_code(&p, "invalid_query");
    let p = s.get("/v1/subjects/erin%20smith/consents", ADMIN_KEY, 400).await;
    assert_code(&p, "invalid_subject");
}

async fn unknown_catalogue_names_on_check_and_write(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let check = |purpose: &str, extra: serde_json::Value| {
        let mut body = json!({"subject": "erin", "purpose": purpose});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (check("nope", json!({})), "unknown_purpose"),
        (check("marketing.direct", json!({"category": "user.nope"})), "unknown_category"),
        (check("marketing.direct", json!({"channel": "pigeon"})), "unknown_channel"),
        (check("marketing.direct", json!({"recipient": "nobody"})), "unknown_recipient"),
    ];
    for (body, code) in &cases {
        assert_code(&s.post(CHECK, ADMIN_KEY, body, 422).await, code);
        let batch = json!({"checks": [check("service", json!({})), body]});
        assert_code(&s.post("/v1/check/batch", ADMIN_KEY, &batch, 422).await, code);
    }
    // A bad subject id is named by its place: in a batch, the check's index.
    let bad = json!({"subject": "", "purpose": "service"});
    let one = s.post(CHECK, ADMIN_KEY, &bad, 422).await;
    assert_eq!(one["errors"][0]["path"], "subject", "{one}");
    let batch = json!({"checks": [check("service", json!({})), bad]});
    let many = s.post("/v1/check/batch", ADMIN_KEY, &batch, 422).await;
    assert_eq!(many["errors"][0]["path"], "checks[1].subject", "{many}");

    let change = |purpose: &str, extra: serde_json::Value| {
        let mut c = json!({"purpose": purpose, "action": "grant"});
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        json!({"notice": "marketing.direct", "changes": [c]})
    };
    let cases = [
        (change("nope", json!({})), "unknown_purpose"),
        (change("marketing.direct", json!({"categories": ["user.nope"]})), "unknown_category"),
        (change("marketing.direct", json!({"channels": ["pigeon"]})), "unknown_channel"),
        (change("marketing.direct", json!({"recipients": ["nobody"]})), "unknown_recipient"),
        (change("marketing.direct", json!({"channels": ["voice"]})), "not_in_purpose"),
    ];
    for (body, code) in &cases {
        assert_code(&s.post(CONSENTS, ADMIN_KEY, body, 422).await, code);
    }
    let mut body = grant("marketing.direct", &["email"]);
    body["collection_point"] = json!("carrier-pigeon");
    assert_code(&s.post(CONSENTS, ADMIN_KEY, &body, 422).await, "unknown_collection_point");
    let h = s.get("/v1/subjects/erin/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(h["events"], json!([]), "nothing refused was recorded");
}

async fn bodies_over_the_limit_are_payload_too_large(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.max_body_bytes = 1024).await;
    let big = "x".repeat(2048);
    let check = json!({"subject": "erin", "purpose": big});
    assert_code(&s.post(CHECK, ADMIN_KEY, &check, 413).await, "payload_too_large");
    assert_code(
        &s.post("/v1/check/batch", ADMIN_KEY, &json!({"checks": [check]}), 413).await,
        "payload_too_large",
    );
    let mut grant_body = grant("marketing.direct", &["email"]);
    grant_body["collection_point"] = json!(big);
    assert_code(&s.post(CONSENTS, ADMIN_KEY, &grant_body, 413).await, "payload_too_large");
    let yaml = format!("# {big}\npurposes: []\n");
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", yaml, 413).await;
    assert_code(&p, "payload_too_large");
    // Just under the limit is fine.
    s.post(CHECK, ADMIN_KEY, &json!({"subject": "erin", "purpose": "service"}), 200).await;
}

async fn non_json_bodies_are_unsupported_media_type(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let body = json!({"subject": "erin", "purpose": "service"}).to_string();
    for path in [CHECK, "/v1/check/batch", CONSENTS, "/v1/keys"] {
        let p = s.raw(Method::POST, path, ADMIN_KEY, "text/plain", body.clone(), 415).await;
        assert_code(&p, "unsupported_media_type");
    }
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "text/csv", "a,b\n", 415).await;
    assert_code(&p, "unsupported_media_type");
    let reply = s.send(Method::POST, CHECK, ADMIN_KEY, None).await;
    assert_eq!(reply.status, 415, "no content type at all: {}", reply.text);
}

async fn unknown_routes_and_wrong_methods(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    assert_code(&s.get("/v1/nothing-here", ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.get("/nothing-here", NO_KEY, 404).await, "not_found");
    assert_code(&s.delete("/v1/keys/key_0000000000000000", ADMIN_KEY, 404).await, "not_found");

    let wrong = [
        (Method::DELETE, CHECK),
        (Method::GET, CHECK),
        (Method::PUT, "/v1/check/batch"),
        (Method::POST, "/v1/catalog"),
        (Method::PATCH, "/v1/keys"),
        (Method::DELETE, CONSENTS),
        (Method::POST, "/healthz"),
        (Method::PUT, "/metrics"),
    ];
    for (method, path) in wrong {
        let reply = s.send(method.clone(), path, ADMIN_KEY, None).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
        assert_code(&reply.json(), "method_not_allowed");
    }
}
