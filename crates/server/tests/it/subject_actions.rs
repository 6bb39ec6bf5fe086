//! What a person does with their own subject token (through the API or the preference centre) is in their
//! access log under caller `subject`, with the route or page action, like a service's reads; a service's
//! actions that are not reads stay in the ledger and the request history.
use reqwest::Method;
use serde_json::json;

use crate::preferences::{Visitor, csrf_of};
use crate::utils::{
    ADMIN_KEY, Backend, MINT_ROUTE, TestServer, access_entries as entries, both_backends, entry, grant,
    str_of,
};

both_backends!(
    actions_with_a_subject_token_are_in_the_access_log,
    preference_centre_actions_are_in_the_access_log,
);

/// A record of `subject`'s, stored by the admin (a service: not logged); returns its id.
async fn store_record(s: &TestServer, subject: &str) -> String {
    use base64::Engine as _;
    let body = json!({
        "subject": subject, "category": "user.device.telemetry", "purpose": "analytics",
        "content_type": "text/plain", "data": base64::engine::general_purpose::STANDARD.encode(b"hello"),
    });
    str_of(&s.post("/v1/records", ADMIN_KEY, &body, 201).await["id"]).to_owned()
}

async fn actions_with_a_subject_token_are_in_the_access_log(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record(
        "kim",
        &json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]}),
    )
    .await;
    let first = store_record(&s, "kim").await;
    let second = store_record(&s, "kim").await;
    // A service's own actions are in the ledger, not the access log: this deletion adds no entry.
    let third = store_record(&s, "kim").await;
    s.delete(&format!("/v1/records/{third}"), ADMIN_KEY, 204).await;
    let token =
        str_of(&s.post("/v1/subjects/kim/tokens", ADMIN_KEY, &json!({}), 201).await["token"]).to_owned();

    // A consent change, with a stated purpose.
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let reply = client
        .post(format!("{}/v1/subjects/kim/consents", s.base))
        .bearer_auth(&token)
        .header("X-Consentry-Purpose", "changing my mind")
        .json(&grant("marketing.direct", &["email"]))
        .send()
        .await
        .expect("request");
    assert_eq!(reply.status().as_u16(), 201, "{}", reply.text().await.unwrap_or_default());
    // A record read and deleted by id, then the rest deleted at once.
    let read = s.send(Method::GET, &format!("/v1/records/{first}"), &token, None).await;
    assert_eq!((read.status, read.text.as_str()), (200, "hello"));
    s.delete(&format!("/v1/records/{first}"), &token, 204).await;
    let deleted = s.delete("/v1/subjects/kim/records", &token, 200).await;
    assert_eq!(deleted["deleted"], 1, "{deleted}; {second} was left");
    // An access request filed, read (alone and in the list) and its export downloaded.
    let filed = s.post("/v1/requests", &token, &json!({"subject": "kim", "type": "access"}), 201).await;
    let id = str_of(&filed["id"]).to_owned();
    s.get(&format!("/v1/requests/{id}"), &token, 200).await;
    s.get("/v1/requests", &token, 200).await;
    let zip = s.send(Method::GET, &format!("/v1/requests/{id}/export"), &token, None).await;
    assert_eq!(zip.status, 200, "{}", zip.text);

    let log = entries(&s, "kim", 9).await;
    assert_eq!(
        log,
        [
            entry("subject", "GET /v1/requests/{id}/export", "unspecified"),
            entry("subject", "GET /v1/requests", "unspecified"),
            entry("subject", "GET /v1/requests/{id}", "unspecified"),
            entry("subject", "POST /v1/requests", "unspecified"),
            entry("subject", "DELETE /v1/subjects/{subject}/records", "unspecified"),
            entry("subject", "DELETE /v1/records/{id}", "unspecified"),
            entry("subject", "GET /v1/records/{id}", "unspecified"),
            entry("subject", "POST /v1/subjects/{subject}/consents", "changing my mind"),
            entry("admin", MINT_ROUTE, "unspecified"),
        ]
    );
    // The person sees the same in their own log.
    let own = s.get("/v1/subjects/kim/access-log", &token, 200).await;
    assert!(own["entries"].as_array().is_some_and(|e| e.len() >= 9), "{own}");
}

async fn preference_centre_actions_are_in_the_access_log(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record(
        "lee",
        &json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]}),
    )
    .await;
    let record = store_record(&s, "lee").await;
    let token =
        str_of(&s.post("/v1/subjects/lee/tokens", ADMIN_KEY, &json!({}), 201).await["token"]).to_owned();
    let mut v = Visitor::new(&s);
    let page = v.open_link(&token).await;
    let csrf = csrf_of(&page.text);
    assert_eq!(v.get(&format!("/preferences/data/{record}")).await.status, 200);
    let deleted = v.post_form(&format!("/preferences/data/{record}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let saved =
        v.post_form("/preferences", &[("csrf", &csrf), ("p", "analytics"), ("v", "analytics|1")]).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert!(saved.text.contains("Your choices are saved."), "{}", saved.text);

    let log = entries(&s, "lee", 5).await;
    assert_eq!(
        log,
        [
            entry("subject", "preferences: save", "unspecified"),
            entry("subject", "preferences: delete record", "unspecified"),
            entry("subject", "preferences: download record", "unspecified"),
            entry("subject", "preferences: view", "unspecified"),
            entry("admin", MINT_ROUTE, "unspecified"),
        ]
    );
    // The page shows the person what they did.
    let page = v.get("/preferences").await;
    assert!(page.text.contains("preferences: save"), "{}", page.text);
}
