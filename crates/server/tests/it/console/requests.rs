//! The requests queue and a request's page: filters, extending and rejecting with a reason, marking a
//! downstream task done, the export; each action in the request's history under the key's name, reads in
//! the person's access log with the purpose `console`, and a `console:read` session refused every action.

use serde_json::json;

use super::{server_with_keys, sign_in};
use crate::preferences::{Visitor, csrf_of};
use crate::utils::{ADMIN_KEY, Backend, TestServer, access_entries, both_backends, entry, str_of};

/// A destination that takes part in requests (nothing listens at its address: its deliveries fail), and
/// two requests: alice's access and bob's objection. Returns (destination id, access id, objection id).
pub async fn seed_requests(server: &TestServer) -> (String, String, String) {
    let body = json!({"name": "crm", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "event_types": ["request.*"]});
    let crm = str_of(&server.post("/v1/destinations", ADMIN_KEY, &body, 201).await["id"]).to_owned();
    let access =
        server.post("/v1/requests", ADMIN_KEY, &json!({"subject": "alice", "type": "access"}), 201).await;
    let objection =
        server.post("/v1/requests", ADMIN_KEY, &json!({"subject": "bob", "type": "objection"}), 201).await;
    (crm, str_of(&access["id"]).to_owned(), str_of(&objection["id"]).to_owned())
}

async fn requests_are_worked_from_the_console(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    server.record("alice", &crate::utils::grant("analytics", &[])).await;
    let (crm, access, objection) = seed_requests(&server).await;
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;

    let queue = officer.get("/console/requests").await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    assert!(queue.text.contains(&access) && queue.text.contains(&objection), "{}", queue.text);
    assert!(queue.text.contains("days left"), "{}", queue.text);
    let objections = officer.get("/console/requests?type=objection&status=").await;
    assert!(
        objections.text.contains(&objection) && !objections.text.contains(&access),
        "{}",
        objections.text
    );
    let overdue = officer.get("/console/requests?overdue=1").await;
    assert!(overdue.text.contains("No request matches."), "none is overdue: {}", overdue.text);
    assert_eq!(officer.get("/console/requests?status=lost").await.status, 400);

    let page = officer.get(&format!("/console/requests/{access}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let complete = format!("/console/requests/{access}/tasks/{crm}/complete");
    assert!(page.text.contains(&format!("action=\"{complete}\"")), "{}", page.text);
    let csrf = csrf_of(&page.text);
    let extend = format!("/console/requests/{access}/extend");
    let no_reason = officer.post_form(&extend, &[("csrf", &csrf), ("months", "1"), ("reason", " ")]).await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.text);
    let extended = officer
        .post_form(&extend, &[("csrf", &csrf), ("months", "1"), ("reason", "Many systems to search")])
        .await;
    assert_eq!(extended.status, 303, "{}", extended.text);
    let again = officer.post_form(&extend, &[("csrf", &csrf), ("months", "2"), ("reason", "More")]).await;
    assert_eq!(
        again.status, 400,
        "three months beyond the first are more than the law allows: {}",
        again.text
    );
    assert!(again.text.contains("two months in all"), "{}", again.text);

    // A console:read session sees the request but cannot act on it.
    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let seen = viewer.get(&format!("/console/requests/{access}")).await;
    assert_eq!(seen.text.matches("method=\"post\"").count(), 1, "no form but signing out: {}", seen.text);
    let viewer_csrf = csrf_of(&seen.text);
    let refused = viewer.post_form(&complete, &[("csrf", &viewer_csrf)]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(viewer.get(&format!("/console/requests/{access}/export")).await.status, 403);

    let done = officer.post_form(&complete, &[("csrf", &csrf), ("note", "Confirmed by phone")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let stored = server.get(&format!("/v1/requests/{access}"), ADMIN_KEY, 200).await;
    assert_eq!(stored["status"], "completed", "its own part and its one task are done: {stored}");
    let history: Vec<(String, String)> = stored["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (str_of(&h["change"]).to_owned(), str_of(&h["actor"]).to_owned()))
        .collect();
    for change in ["extended", "task_completed"] {
        assert!(
            history.contains(&(change.to_owned(), "console:privacy-officer".to_owned())),
            "{change} by the key's name: {history:?}"
        );
    }
    let zip = officer.bytes(&format!("/console/requests/{access}/export")).await;
    assert!(zip.starts_with(b"PK"), "a ZIP");

    let page = officer.get(&format!("/console/requests/{objection}")).await;
    let rejected = officer
        .post_form(
            &format!("/console/requests/{objection}/reject"),
            &[("csrf", &csrf_of(&page.text)), ("reason", "Not our customer")],
        )
        .await;
    assert_eq!(rejected.status, 303, "{}", rejected.text);
    let stored = server.get(&format!("/v1/requests/{objection}"), ADMIN_KEY, 200).await;
    assert_eq!(
        (stored["status"].as_str(), stored["reason"].as_str()),
        (Some("rejected"), Some("Not our customer"))
    );

    // Reading alice's request and downloading her data are in her access log, under the key's name.
    let log = access_entries(&server, "alice", 2).await;
    assert!(log.contains(&entry("privacy-officer", "console: request", "console")), "{log:?}");
    assert!(log.contains(&entry("privacy-officer", "console: request export", "console")), "{log:?}");
}

both_backends!(requests_are_worked_from_the_console);
