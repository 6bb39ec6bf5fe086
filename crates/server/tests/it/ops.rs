//! Health, readiness, metrics (never personal data) and the served OpenAPI document.

use consentry_server::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, NO_KEY, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(
    health_and_readiness_need_no_key,
    metrics_count_without_personal_data,
    metrics_off_loopback_need_the_metrics_scope,
    metrics_made_public_need_no_key,
    the_openapi_document_is_served,
);

async fn health_and_readiness_need_no_key(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    assert_eq!(s.get("/healthz", NO_KEY, 200).await["status"], "ok");
    assert_eq!(s.get("/readyz", NO_KEY, 200).await["status"], "ready");
}

async fn metrics_count_without_personal_data(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let subjects = ["metrics-subject-q7zt", "metrics-person-w3xk@example.org"];
    for subject in subjects {
        s.record(subject, &grant("marketing.direct", &["email"])).await;
        s.check(subject, "marketing.direct", Some("email")).await;
        s.get(&format!("/v1/subjects/{subject}/consents/history"), ADMIN_KEY, 200).await;
        s.post(&format!("/v1/subjects/{subject}/consents"), ADMIN_KEY, &json!({"changes": []}), 422).await;
    }
    s.get("/v1/no-such-route/metrics-subject-q7zt", ADMIN_KEY, 404).await;
    let reply = s.send(Method::GET, "/metrics", NO_KEY, None).await;
    assert_eq!(reply.status, 200);
    let text = &reply.text;
    for series in [
        "consentry_http_requests_total",
        "consentry_checks_total",
        "consentry_ledger_appends_total",
        "consentry_ledger_commit_batch_events",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    assert!(text.contains("route=\"/v1/subjects/{subject}/consents\""), "routes by template:\n{text}");
    assert!(text.lines().any(|l| l == "consentry_ledger_appends_total 2"), "{text}");
    for subject in subjects {
        assert!(!text.contains(subject), "metrics leak the subject id {subject}:\n{text}");
    }
    assert!(!text.contains("q7zt") && !text.contains("w3xk"), "no part of a subject id:\n{text}");
    assert!(!text.contains(ADMIN_KEY));
}

/// The test server is reached on 127.0.0.1 whatever `listen` says; the decision reads the configured
/// `listen`, so a wildcard address there stands for a server reachable from other hosts.
fn listen_everywhere(config: &mut Config) {
    config.listen = "0.0.0.0:8080".parse().expect("an address");
}

async fn metrics_off_loopback_need_the_metrics_scope(backend: Backend) {
    let s = TestServer::with_config_on(backend, listen_everywhere).await;
    assert_code(&s.get("/metrics", NO_KEY, 401).await, "unauthorized");
    assert_code(&s.get("/metrics", "csk_not-a-key", 401).await, "unauthorized");
    let (_, other) = s.create_key("no metrics", &["check", "consent:read"]).await;
    assert_code(&s.get("/metrics", &other, 403).await, "forbidden");
    let (_, scraper) = s.create_key("prometheus", &["metrics"]).await;
    for key in [scraper.as_str(), ADMIN_KEY] {
        let reply = s.send(Method::GET, "/metrics", key, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.text.contains("consentry_http_requests_total"), "{}", reply.text);
    }
    // The other routes of the house stay as they were.
    assert_eq!(s.get("/healthz", NO_KEY, 200).await["status"], "ok");
    // A key with only `metrics` reaches nothing else.
    s.get("/v1/keys", &scraper, 403).await;
}

async fn metrics_made_public_need_no_key(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| {
        listen_everywhere(c);
        c.metrics_public = true;
    })
    .await;
    let reply = s.send(Method::GET, "/metrics", NO_KEY, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // No `Accept` asks for OpenMetrics: the Prometheus text format.
    assert_eq!(reply.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    assert!(reply.text.contains("# HELP consentry_http_requests_total "), "{}", reply.text);
}

async fn the_openapi_document_is_served(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let reply = s.send(Method::GET, "/openapi.json", NO_KEY, None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("application/json"));
    let doc: Value = reply.json();
    assert!(str_of(&doc["openapi"]).starts_with("3.1"), "{}", doc["openapi"]);
    for path in ["/v1/check", "/v1/check/batch", "/v1/catalog", "/v1/keys", "/v1/subjects/{subject}/consents"]
    {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert_eq!(reply.text, consentry_server::openapi::document(), "serves the generated document");
}
