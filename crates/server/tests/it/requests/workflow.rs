//! A request's course: downstream tasks confirmed by each destination, extensions and rejection,
//! deadlines and the overdue sweep with an injected clock, the export's expiry, and the sweep resuming a
//! request left half way.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_service::export::Language;
use consentry_service::requests::export_archive;
use consentry_service::workers::requests::sweep;
use consentry_store::requests::{NewRequest, RequestKind, SubjectErasure};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Receiver, bytes, changes, destination, request};
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(
    a_request_completes_when_both_destinations_confirm,
    overdue_requests_with_an_injected_clock,
    a_request_left_half_way_is_resumed,
);

/// Every outbox payload, read straight from the data store.
async fn outbox_payloads(s: &TestServer) -> Vec<String> {
    let sql = "SELECT payload FROM outbox ORDER BY id";
    match s.storage().database_url() {
        None => {
            let conn = rusqlite::Connection::open_with_flags(
                s.storage().data_dir().join("consentry.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the data file");
            let mut stmt = conn.prepare(sql).expect("prepare");
            stmt.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            rows
        }
    }
}

async fn metrics(s: &TestServer) -> String {
    let (status, body) = bytes(s, "/metrics").await;
    assert_eq!(status, 200);
    String::from_utf8(body).expect("UTF-8")
}

async fn a_request_completes_when_both_destinations_confirm(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let receiver = Receiver::start().await;
    let crm = destination(&s, "crm", &receiver.url, &["request.*"]).await;
    let shop = destination(&s, "shop", &receiver.url, &["request.created"]).await;
    destination(&s, "consents-only", &receiver.url, &["consent.*"]).await;
    let (_, dsr_key) = s.create_key("privacy-team", &["dsr"]).await;

    let body = json!({"subject": "cleo", "type": "access"});
    let r = s.post("/v1/requests", &dsr_key, &body, 201).await;
    let id = str_of(&r["id"]).to_owned();
    assert_eq!(r["status"], "in_progress", "two tasks are pending");
    let tasks: Vec<&str> =
        r["tasks"].as_array().expect("tasks").iter().map(|t| str_of(&t["destination_id"])).collect();
    assert_eq!(tasks.len(), 2);
    assert!(tasks.contains(&crm.as_str()) && tasks.contains(&shop.as_str()), "{tasks:?}");

    // The announcement reaches the subscribers, naming the subject; the payload at rest does not.
    let created = receiver.wait_for("request.created").await;
    assert_eq!((str_of(&created["subject"]), &created["data"]["request"]["id"]), ("cleo", &json!(id)));
    let at_rest = outbox_payloads(&s).await;
    assert!(at_rest.iter().any(|p| p.contains(&id)), "the announcement is in the outbox");
    assert!(!at_rest.iter().any(|p| p.contains("cleo")), "never the subject id at rest: {at_rest:?}");

    let complete = |dest: &str| format!("/v1/requests/{id}/tasks/{dest}/complete");
    let r = s.post(&complete(&crm), &dsr_key, &json!({"note": "deleted from the CRM"}), 200).await;
    assert_eq!(r["status"], "in_progress", "one task is still pending: {r}");
    assert_eq!(r["pending_tasks"], 1);
    let listed = s.get("/v1/requests", &dsr_key, 200).await;
    assert_eq!(listed["requests"][0]["pending_tasks"], 1, "the list shows what is still awaited");
    let p = s.post(&complete(&crm), &dsr_key, &json!({}), 409).await;
    assert_code(&p, "conflict");
    let p = s.post(&complete("dst_nowhere"), &dsr_key, &json!({}), 404).await;
    assert_code(&p, "not_found");
    // No body at all is fine: the note is optional.
    let reply = s.send(Method::POST, &complete(&shop), &dsr_key, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let r = reply.json();
    assert_eq!(r["status"], "completed");
    assert!(r["tasks"].as_array().expect("tasks").iter().all(|t| t["status"] == "completed"));
    let crm_task =
        r["tasks"].as_array().expect("tasks").iter().find(|t| t["destination_id"] == crm.as_str()).cloned();
    assert_eq!(crm_task.expect("crm task")["note"], "deleted from the CRM");
    assert_eq!(
        changes(&r),
        ["received", "started", "own_part_done", "task_completed", "task_completed", "completed"]
    );
    let got = s.get(&format!("/v1/requests/{id}"), &dsr_key, 200).await;
    assert_eq!(got["status"], "completed");
    let p = s.post(&format!("/v1/requests/{id}/reject"), &dsr_key, &json!({"reason": "late"}), 409).await;
    assert_code(&p, "conflict");

    // Extension by up to two further months in total, with a reason; then a rejection.
    let open = s.post("/v1/requests", &dsr_key, &json!({"subject": "cleo", "type": "erasure"}), 201).await;
    let open_id = str_of(&open["id"]).to_owned();
    assert_eq!(open["status"], "in_progress");
    let extend = format!("/v1/requests/{open_id}/extend");
    let p = s.post(&extend, &dsr_key, &json!({"months": 1, "reason": " "}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s.post(&extend, &dsr_key, &json!({"months": 3, "reason": "complex"}), 422).await;
    assert_code(&p, "validation_failed");
    let e = s.post(&extend, &dsr_key, &json!({"months": 1, "reason": "many systems"}), 200).await;
    assert_eq!(e["reason"], "many systems");
    assert!(e["due_at"].as_str() > open["due_at"].as_str());
    s.post(&extend, &dsr_key, &json!({"months": 1, "reason": "still many"}), 200).await;
    let p = s.post(&extend, &dsr_key, &json!({"months": 1, "reason": "more"}), 422).await;
    assert_code(&p, "validation_failed");
    let rej = s
        .post(&format!("/v1/requests/{open_id}/reject"), &dsr_key, &json!({"reason": "duplicate"}), 200)
        .await;
    assert_eq!((str_of(&rej["status"]), str_of(&rej["reason"])), ("rejected", "duplicate"));
    assert_eq!(changes(&rej)[3..], ["extended", "extended", "rejected"]);
    s.stop().await;
}

async fn overdue_requests_with_an_injected_clock(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let receiver = Receiver::start().await;
    let crm = destination(&s, "crm", &receiver.url, &["request.*"]).await;
    s.record("dora", &grant("analytics", &[])).await;
    let r = request(&s, "dora", "access", None).await;
    let id = str_of(&r["id"]).to_owned();
    let due = Timestamp::parse(str_of(&r["due_at"])).expect("due");
    let interval = Duration::from_secs(60);

    assert_eq!(sweep(&s.state, due.plus_seconds(-1), interval).await.expect("sweep"), 0, "not yet due");
    let later = due.plus_seconds(1);
    assert_eq!(sweep(&s.state, later, interval).await.expect("sweep"), 1);
    assert_eq!(sweep(&s.state, later.plus_seconds(3600), interval).await.expect("sweep"), 0, "marked once");
    let text = metrics(&s).await;
    assert!(text.contains("consentry_requests_overdue 1"), "{text}");
    assert!(text.contains("consentry_request_tasks_overdue 1"), "{text}");

    let got = s.get(&format!("/v1/requests/{id}"), ADMIN_KEY, 200).await;
    assert_eq!(changes(&got).last().map(String::as_str), Some("overdue"));
    let overdue = receiver.wait_for("request.overdue").await;
    assert_eq!((str_of(&overdue["subject"]), &overdue["data"]["tasks"]), ("dora", &json!([crm])));
    let deliveries = s.get(&format!("/v1/destinations/{crm}/deliveries"), ADMIN_KEY, 200).await;
    let overdue_sent = deliveries["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["event_type"] == "request.overdue")
        .count();
    assert_eq!(overdue_sent, 1, "request.overdue is sent once: {deliveries}");

    // The privacy team's list of overdue requests (by the real clock): one received 40 days ago.
    let long_ago = Timestamp::now().plus_seconds(-40 * 86_400);
    s.state
        .store
        .create_request(NewRequest {
            id: "req_0000000000000003".into(),
            subject: consentry_core::SubjectId::new("dora").expect("id"),
            kind: RequestKind::Objection,
            details: None,
            received_at: long_ago,
            destinations: vec![crm.clone()],
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    let overdue_list = s.get("/v1/requests?overdue=true", ADMIN_KEY, 200).await;
    let listed = overdue_list["requests"].as_array().expect("list");
    assert_eq!(listed.len(), 1, "{overdue_list}");
    assert_eq!((&listed[0]["id"], &listed[0]["overdue"]), (&json!("req_0000000000000003"), &json!(true)));
    let one = s.get("/v1/requests/req_0000000000000003", ADMIN_KEY, 200).await;
    assert_eq!(one["tasks"][0]["overdue"], true);
    let reason = json!({"reason": "filed twice"});
    s.post("/v1/requests/req_0000000000000003/reject", ADMIN_KEY, &reason, 200).await;
    assert!(
        s.get("/v1/requests?overdue=true", ADMIN_KEY, 200).await["requests"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // The export is gone after seven days.
    let stored = s.state.store.request(&id).await.expect("read").expect("found");
    let ready = stored.record.own_done_at.expect("ready");
    let en = Language::En;
    assert!(export_archive(&s.state, &stored, ready.plus_seconds(6 * 86_400), en).await.is_ok());
    let gone =
        export_archive(&s.state, &stored, ready.plus_seconds(8 * 86_400), en).await.expect_err("expired");
    assert_eq!(gone.code(), "gone");

    // Confirming the task closes it: no longer overdue.
    s.post(&format!("/v1/requests/{id}/tasks/{crm}/complete"), ADMIN_KEY, &json!({}), 200).await;
    sweep(&s.state, later.plus_seconds(7200), interval).await.expect("sweep");
    assert!(metrics(&s).await.contains("consentry_requests_overdue 0"));
    s.stop().await;
}

async fn a_request_left_half_way_is_resumed(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("joe", &grant("marketing.direct", &["email"])).await;
    // Accepted, then the process stopped before Consentry did its part.
    let received = Timestamp::now();
    s.state
        .store
        .create_request(NewRequest {
            id: "req_0000000000000001".into(),
            subject: consentry_core::SubjectId::new("joe").expect("id"),
            kind: RequestKind::Restriction,
            details: Some(r#"{"purpose":"marketing.direct"}"#.into()),
            received_at: received,
            destinations: Vec::new(),
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    let interval = Duration::from_secs(60);
    sweep(&s.state, received.plus_seconds(60), interval).await.expect("sweep");
    assert_eq!(
        s.check("joe", "marketing.direct", Some("email")).await["allowed"],
        true,
        "not yet: too recent"
    );
    sweep(&s.state, received.plus_seconds(600), interval).await.expect("sweep");
    let check = s.check("joe", "marketing.direct", Some("email")).await;
    assert_eq!((check["allowed"].as_bool(), str_of(&check["reason"])), (Some(false), "restricted"));
    let r = s.get("/v1/requests/req_0000000000000001", ADMIN_KEY, 200).await;
    assert_eq!(r["status"], "completed");
    assert_eq!(changes(&r), ["received", "started", "own_part_done", "completed"]);
    assert_eq!(r["history"][1]["actor"], "system");

    // An erasure that stopped right after the key was destroyed, before the engine forgot the subject: the
    // sweep finishes it.
    s.record("kai", &grant("analytics", &[])).await;
    let kai = consentry_core::SubjectId::new("kai").expect("id");
    s.state
        .store
        .create_request(NewRequest {
            id: "req_0000000000000002".into(),
            subject: kai.clone(),
            kind: RequestKind::Erasure,
            details: None,
            received_at: received,
            destinations: Vec::new(),
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    let tombstone = s.state.erasures.tombstone("kai").expect("the erasure secret is loaded");
    s.state.erasures.insert(&tombstone);
    // Asked before the tombstone is stored: on PostgreSQL this node's follower would soon read it and make
    // the engine forget them itself.
    assert_eq!(s.check("kai", "analytics", None).await["allowed"], true, "the engine still holds them");
    s.state.store.add_erasure_tombstone(&tombstone, received).await.expect("tombstone");
    let erasure = SubjectErasure { subject: kai.clone(), at: received, notices: Vec::new() };
    assert!(s.state.store.erase_subject(erasure).await.expect("erase").had_key);
    assert!(s.state.store.destroy_subject_key(&kai).await.expect("destroy the key"));
    sweep(&s.state, received.plus_seconds(600), interval).await.expect("sweep");
    let r = s.get("/v1/requests/req_0000000000000002", ADMIN_KEY, 200).await;
    assert_eq!((&r["status"], &r["subject"]), (&json!("completed"), &Value::Null));
    assert_eq!(s.check("kai", "analytics", None).await["reason"], "erased");
    s.stop().await;
}
