//! Who may file and read requests: problems for bad bodies, queries and scopes, and a subject's token that
//! sees and files only its own requests.

use reqwest::Method;
use serde_json::json;

use super::request;
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, str_of};

both_backends!(bad_requests_are_problems, a_subject_sees_and_files_only_their_own_requests);

async fn bad_requests_are_problems(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for (body, path) in [
        (json!({"subject": "gus", "type": "deletion"}), "type"),
        (json!({"subject": "gus"}), "type"),
        (json!({"type": "access"}), "subject"),
        (json!({"subject": "", "type": "access"}), "subject"),
        (json!({"subject": "gus", "type": "rectification"}), "details.note"),
        (json!({"subject": "gus", "type": "restriction", "details": "all"}), "details"),
    ] {
        let p = s.post("/v1/requests", ADMIN_KEY, &body, 422).await;
        assert_code(&p, "validation_failed");
        assert_eq!(p["errors"][0]["path"], path, "{body}: {p}");
    }
    let p = s
        .post(
            "/v1/requests",
            ADMIN_KEY,
            &json!({"subject": "gus", "type": "objection", "details": {"purpose": "nope"}}),
            422,
        )
        .await;
    assert_code(&p, "unknown_purpose");
    let p = s
        .post("/v1/requests", ADMIN_KEY, &json!({"subject": "gus", "type": "access", "extra": 1}), 422)
        .await;
    assert_code(&p, "validation_failed");
    let p = s.raw(Method::POST, "/v1/requests", ADMIN_KEY, "application/json", "{", 400).await;
    assert_code(&p, "invalid_json");
    let (_, reader) = s.create_key("reader", &["consent:read"]).await;
    assert_code(
        &s.post("/v1/requests", &reader, &json!({"subject": "gus", "type": "access"}), 403).await,
        "forbidden",
    );
    assert_code(&s.get("/v1/requests", &reader, 403).await, "forbidden");
    assert_code(&s.get("/v1/requests/req_nope", ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.get("/v1/requests?status=lost", ADMIN_KEY, 400).await, "invalid_query");
    assert_code(&s.get("/v1/requests?type=deletion", ADMIN_KEY, 400).await, "invalid_query");
    assert_code(&s.get("/v1/requests?limit=0", ADMIN_KEY, 400).await, "invalid_query");
    let erasure = request(&s, "gus", "erasure", None).await;
    assert_code(
        &s.get(&format!("/v1/requests/{}/export", str_of(&erasure["id"])), ADMIN_KEY, 404).await,
        "not_found",
    );
    s.stop().await;
}

async fn a_subject_sees_and_files_only_their_own_requests(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mint = |subject: &str| format!("/v1/subjects/{subject}/tokens");
    let kim = str_of(&s.post(&mint("kim"), ADMIN_KEY, &json!({"ttl": 600}), 201).await["token"]).to_owned();
    let alex_request = request(&s, "alex", "access", None).await;

    let own = s.post("/v1/requests", &kim, &json!({"subject": "kim", "type": "access"}), 201).await;
    assert_eq!(own["history"][0]["actor"], "subject", "{own}");
    let p = s.post("/v1/requests", &kim, &json!({"subject": "alex", "type": "erasure"}), 403).await;
    assert_code(&p, "forbidden");
    let mine = s.get("/v1/requests", &kim, 200).await;
    let ids: Vec<&str> =
        mine["requests"].as_array().expect("list").iter().map(|r| str_of(&r["id"])).collect();
    assert_eq!(ids, [str_of(&own["id"])]);
    assert_code(&s.get("/v1/requests?subject=alex", &kim, 403).await, "forbidden");
    assert_code(
        &s.get(&format!("/v1/requests/{}", str_of(&alex_request["id"])), &kim, 404).await,
        "not_found",
    );
    assert_eq!(s.get(&format!("/v1/requests/{}", str_of(&own["id"])), &kim, 200).await["id"], own["id"]);
    let export = s.send(Method::GET, str_of(&own["export"]["url"]), &kim, None).await;
    assert_eq!((export.status, export.content_type()), (200, "application/zip"));
    let alex_export = format!("/v1/requests/{}/export", str_of(&alex_request["id"]));
    assert_code(&s.get(&alex_export, &kim, 404).await, "not_found");
    // The privacy team's actions are for service keys.
    let extend = format!("/v1/requests/{}/extend", str_of(&own["id"]));
    assert_code(&s.post(&extend, &kim, &json!({"months": 1, "reason": "x"}), 403).await, "forbidden");

    // Kim erases herself: her token goes with everything else.
    s.post("/v1/requests", &kim, &json!({"subject": "kim", "type": "erasure"}), 201).await;
    assert_code(&s.get("/v1/requests", &kim, 401).await, "unauthorized");
    assert_code(&s.get("/v1/subjects/kim/consents", &kim, 401).await, "unauthorized");
    s.stop().await;
}
