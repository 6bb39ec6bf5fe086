//! Data subject requests end to end on both backends: every type, downstream tasks, deadlines with an
//! injected clock, the export archive, erasure (checks `erased`, routes 410, the chain intact, across a
//! restart), and the problems bad requests get.

use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use consentry_core::Timestamp;
use consentry_service::requests::export_archive;
use consentry_service::workers::requests::sweep;
use consentry_store::requests::NewRequest;
use consentry_store::vault::{SealedPayload, WrappedKey, open_payload};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

/// A webhook receiver that keeps every body it gets.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        async fn keep(State(bodies): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> &'static str {
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            bodies.lock().unwrap_or_else(PoisonError::into_inner).push(value);
            "ok"
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/hook", post(keep)).with_state(Arc::clone(&bodies));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, bodies, task }
    }

    /// Waits for an event of `event_type` and returns it.
    async fn wait_for(&self, event_type: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .bodies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|b| b["type"] == event_type)
                .cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(Instant::now() < deadline, "no {event_type} event arrived within 15 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn destination(s: &TestServer, name: &str, url: &str, types: &[&str]) -> String {
    let body = json!({"name": name, "kind": "webhook", "url": url, "event_types": types});
    str_of(&s.post("/v1/destinations", ADMIN_KEY, &body, 201).await["id"]).to_owned()
}

async fn request(s: &TestServer, subject: &str, kind: &str, details: Option<Value>) -> Value {
    let mut body = json!({"subject": subject, "type": kind});
    if let Some(details) = details {
        body["details"] = details;
    }
    s.post("/v1/requests", ADMIN_KEY, &body, 201).await
}

async fn bytes(s: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// A record's sealed payload as the data store keeps it: `(id, pseudonym, nonce, ciphertext)`.
type SealedRow = (String, String, Vec<u8>, Vec<u8>);

/// A copy of the vault's ciphertext, read from the data store only (the data file, or the data tables).
async fn copy_of_the_data(s: &TestServer) -> Vec<SealedRow> {
    let sql = "SELECT id, pseudonym, nonce, ciphertext FROM records ORDER BY id";
    match s.storage().database_url() {
        None => {
            let conn = rusqlite::Connection::open_with_flags(
                s.storage().data_dir().join("consentry.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the data file");
            let mut stmt = conn.prepare(sql).expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            rows
        }
    }
}

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

/// The key store's wrapped data keys as they are now: `(kek_id, wrapped)`.
async fn data_keys_now(s: &TestServer) -> Vec<(String, Vec<u8>)> {
    match s.storage().database_url() {
        None => {
            let conn = rusqlite::Connection::open_with_flags(
                s.storage().data_dir().join("keys.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the key store");
            let mut stmt = conn.prepare("SELECT kek_id, wrapped FROM subject_data_keys").expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let rows = sqlx::query_as("SELECT kek_id, wrapped FROM consentry_keystore.subject_data_keys")
                .fetch_all(&pool)
                .await
                .expect("query");
            pool.close().await;
            rows
        }
    }
}

/// The payloads of `copy` that some data key of the key store (as it is now) opens.
async fn readable(s: &TestServer, copy: &[SealedRow]) -> Vec<Vec<u8>> {
    let keys = data_keys_now(s).await;
    let mut opened = Vec::new();
    for (id, pseudonym, nonce, ciphertext) in copy {
        let sealed = SealedPayload { nonce: nonce.clone(), ciphertext: ciphertext.clone() };
        for (kek_id, wrapped) in &keys {
            let key = WrappedKey { kek_id: kek_id.clone(), wrapped: wrapped.clone() };
            if let Ok(plain) = open_payload(&s.state.kek, &key, pseudonym, id, &sealed) {
                opened.push(plain);
            }
        }
    }
    opened
}

async fn metrics(s: &TestServer) -> String {
    let (status, body) = bytes(s, "/metrics").await;
    assert_eq!(status, 200);
    String::from_utf8(body).expect("UTF-8")
}

fn unzip(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).expect("a ZIP archive");
    (0..zip.len())
        .map(|i| {
            let mut file = zip.by_index(i).expect("entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("read entry (CRC checked)");
            (file.name().expect("a UTF-8 name").into_owned(), content)
        })
        .collect()
}

fn changes(r: &Value) -> Vec<String> {
    r["history"].as_array().expect("history").iter().map(|h| str_of(&h["change"]).to_owned()).collect()
}

async fn every_type_end_to_end(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ann", &grant("marketing.direct", &["email", "sms"])).await;
    s.record("ann", &grant("analytics", &[])).await;
    s.get("/v1/subjects/ann/consents", ADMIN_KEY, 200).await;
    // The access log is written in batches: wait until that read is in it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/v1/subjects/ann/access-log", ADMIN_KEY, 200).await["entries"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "the read was not logged within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let reading = json!({"subject": "ann", "category": "user.device.telemetry", "purpose": "analytics",
                         "json": {"steps": 1200}});
    let record_id = str_of(&s.post("/v1/records", ADMIN_KEY, &reading, 201).await["id"]).to_owned();
    let voice = json!({"subject": "ann", "category": "user.device.telemetry", "purpose": "analytics",
                       "content_type": "audio/ogg", "data": "T2dnUwACAAAA"});
    s.post("/v1/records", ADMIN_KEY, &voice, 201).await;
    let speaker = json!({"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                         "purposes": ["analytics"]});
    let device = s.post("/v1/subjects/ann/devices", ADMIN_KEY, &speaker, 201).await;

    // Access: the export is ready at once and nothing else is waited for.
    let access = request(&s, "ann", "access", None).await;
    assert!(str_of(&access["id"]).starts_with("req_"), "{access}");
    assert_eq!((str_of(&access["type"]), str_of(&access["status"])), ("access", "completed"));
    assert_eq!(changes(&access), ["received", "started", "own_part_done", "completed"]);
    let received = Timestamp::parse(str_of(&access["received_at"])).expect("received_at");
    let due = Timestamp::parse(str_of(&access["due_at"])).expect("due_at");
    let days = (due.micros() - received.micros()) / 86_400_000_000;
    assert!((28..=31).contains(&days), "due one calendar month later: {days} days");
    assert_eq!(access["overdue"], false);
    let url = str_of(&access["export"]["url"]).to_owned();
    let (status, archive) = bytes(&s, &url).await;
    assert_eq!(status, 200);
    let files = unzip(&archive);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"data.json") && names.contains(&"index.html"), "{names:?}");
    let data: Value = serde_json::from_slice(&files.iter().find(|(n, _)| n == "data.json").expect("data").1)
        .expect("data.json is JSON");
    assert_eq!(data["subject"], "ann");
    let current = s.get("/v1/subjects/ann/consents", ADMIN_KEY, 200).await;
    assert_eq!(
        data["consents"]["current"], current["statements"],
        "current statements as the API shows them"
    );
    let history = s.get("/v1/subjects/ann/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(data["consents"]["history"], history["events"], "the full history");
    assert_eq!(data["receipts"].as_array().map(Vec::len), Some(2), "one receipt per recorded change");
    let receipt_id = str_of(&data["receipts"][0]["id"]);
    let receipt = s.get(&format!("/v1/receipts/{receipt_id}"), ADMIN_KEY, 200).await;
    assert_eq!(receipt["jws"], data["receipts"][0]["jws"]);
    assert!(
        data["access_log"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["route"] == "GET /v1/subjects/{subject}/consents")),
        "the access log: {}",
        data["access_log"]
    );
    assert_eq!(data["requests"][0]["id"], access["id"]);
    assert_eq!(data["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&data["devices"][0]["id"], &data["devices"][0]["name"]),
        (&device["id"], &json!("Kitchen speaker"))
    );
    assert!(!data.to_string().contains(str_of(&device["token"])), "never a device token");
    let records = data["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!((&records[0]["id"], &records[0]["content"]), (&json!(record_id), &json!({"steps": 1200})));
    assert_eq!(
        (&records[0]["category"], &records[0]["purpose"]),
        (&json!("user.device.telemetry"), &json!("analytics"))
    );
    assert_eq!(records[1]["content"], Value::Null, "audio only as its file");
    for r in records {
        let file = files.iter().find(|(n, _)| n == str_of(&r["file"])).expect("the payload file");
        assert_eq!(file.1.len() as u64, r["size"].as_u64().expect("size"));
    }
    let audio = files.iter().find(|(n, _)| n.ends_with(".ogg")).expect("the audio file");
    assert_eq!(audio.1, b"OggS\x00\x02\x00\x00\x00");
    let html = String::from_utf8(files.iter().find(|(n, _)| n == "index.html").expect("html").1.clone())
        .expect("UTF-8");
    assert!(html.contains("<html lang=\"en\">") && html.contains("right of access"), "{html}");

    // Portability: the same archive, said so.
    let port = request(&s, "ann", "portability", None).await;
    let (status, archive) = bytes(&s, str_of(&port["export"]["url"])).await;
    assert_eq!(status, 200);
    let html = unzip(&archive).into_iter().find(|(n, _)| n == "index.html").expect("html").1;
    assert!(String::from_utf8_lossy(&html).contains("data portability"));

    // Restriction of one purpose: a `restrict` event through the consent path; checks deny.
    let r = request(&s, "ann", "restriction", Some(json!({"purpose": "marketing.direct"}))).await;
    assert_eq!(r["status"], "completed");
    let check = s.check("ann", "marketing.direct", Some("email")).await;
    assert_eq!((check["allowed"].as_bool(), str_of(&check["reason"])), (Some(false), "restricted"));
    assert_eq!(s.check("ann", "analytics", None).await["allowed"], true, "other purposes untouched");
    let history = s.get("/v1/subjects/ann/consents/history", ADMIN_KEY, 200).await;
    let last = history["events"].as_array().and_then(|e| e.last()).cloned().expect("events");
    assert_eq!((str_of(&last["action"]), str_of(&last["purpose"])), ("restrict", "marketing.direct"));
    assert!(str_of(&last["actor"]).starts_with("key:"), "{last}");

    // Objection to every purpose: analytics (consent) and a legitimate-interest purpose are denied.
    s.record("bob", &grant("analytics", &[])).await;
    let before = s.check("bob", "service.improvement", None).await;
    assert_eq!(before["allowed"], true, "{before}");
    let o = request(&s, "bob", "objection", None).await;
    assert_eq!(o["status"], "completed");
    for purpose in ["analytics", "service.improvement"] {
        let check = s.check("bob", purpose, None).await;
        assert_eq!(
            (check["allowed"].as_bool(), str_of(&check["reason"])),
            (Some(false), "objected"),
            "{purpose}"
        );
    }

    // Rectification of a vault record: replaced through the vault, the new content never kept with the
    // request; one that names no record is recorded for the privacy team.
    let fix = request(
        &s,
        "ann",
        "rectification",
        Some(json!({"record": record_id, "json": {"steps": 1300}, "note": "the counter was off"})),
    )
    .await;
    assert_eq!(fix["status"], "completed");
    assert_eq!(fix["details"], json!({"record": record_id, "note": "the counter was off"}));
    let note = str_of(&fix["history"][2]["note"]);
    assert!(note.starts_with(&format!("replaced vault record {record_id} with rec_")), "{note}");
    let new_id = note.split_whitespace().nth(5).expect("new id");
    assert_code(&s.get(&format!("/v1/records/{record_id}"), ADMIN_KEY, 404).await, "not_found");
    let replaced = s.get(&format!("/v1/records/{new_id}"), ADMIN_KEY, 200).await;
    assert_eq!(replaced, json!({"steps": 1300}));
    let p = s
        .post(
            "/v1/requests",
            ADMIN_KEY,
            &json!({"subject": "bob", "type": "rectification",
        "details": {"record": new_id, "json": {}}}),
            422,
        )
        .await;
    assert_eq!(p["errors"][0]["path"], "details.record", "another subject's record: {p}");
    let fix =
        request(&s, "ann", "rectification", Some(json!({"note": "my e-mail is ann@example.org"}))).await;
    assert_eq!(fix["status"], "completed");
    assert_eq!(fix["details"]["note"], "my e-mail is ann@example.org");
    assert!(str_of(&fix["history"][2]["note"]).contains("recorded"), "{fix}");

    // Erasure (more in its own test).
    let erase = request(&s, "bob", "erasure", None).await;
    assert_eq!(erase["status"], "completed");
    assert_eq!(s.check("bob", "analytics", None).await["reason"], "erased");

    // The list filters by type and status, in pages.
    let list = s.get("/v1/requests?type=access", ADMIN_KEY, 200).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(1));
    let page = s.get("/v1/requests?limit=2", ADMIN_KEY, 200).await;
    assert_eq!(page["requests"].as_array().map(Vec::len), Some(2));
    let next = str_of(&page["next"]).to_owned();
    let rest = s.get(&format!("/v1/requests?limit=10&after={next}"), ADMIN_KEY, 200).await;
    assert_eq!(rest["requests"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        s.get("/v1/requests?status=completed", ADMIN_KEY, 200).await["requests"].as_array().map(Vec::len),
        Some(7)
    );
    assert_eq!(
        s.get("/v1/requests?subject=ann", ADMIN_KEY, 200).await["requests"].as_array().map(Vec::len),
        Some(5)
    );
    s.stop().await;
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
            kind: "objection".into(),
            details: None,
            received_at: long_ago,
            due_at: long_ago.plus_seconds(30 * 86_400),
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
    assert!(export_archive(&s.state, &stored, ready.plus_seconds(6 * 86_400)).await.is_ok());
    let gone = export_archive(&s.state, &stored, ready.plus_seconds(8 * 86_400)).await.expect_err("expired");
    assert_eq!(gone.code(), "gone");

    // Confirming the task closes it: no longer overdue.
    s.post(&format!("/v1/requests/{id}/tasks/{crm}/complete"), ADMIN_KEY, &json!({}), 200).await;
    sweep(&s.state, later.plus_seconds(7200), interval).await.expect("sweep");
    assert!(metrics(&s).await.contains("consentry_requests_overdue 0"));
    s.stop().await;
}

async fn erasure_crypto_shreds_and_keeps_the_chain(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let receiver = Receiver::start().await;
    destination(&s, "crm", &receiver.url, &["subject.*", "request.*"]).await;
    s.record("eve", &grant("marketing.direct", &["email"])).await;
    s.record("eve", &grant("analytics", &[])).await;
    s.record("frank", &grant("analytics", &[])).await;
    let marker = "eve-steps-424242";
    let stored = json!({"subject": "eve", "category": "user.device.telemetry", "purpose": "analytics",
                        "json": {"steps": marker}});
    let record_id = str_of(&s.post("/v1/records", ADMIN_KEY, &stored, 201).await["id"]).to_owned();
    let frank = json!({"subject": "frank", "category": "user.device.telemetry", "purpose": "analytics",
                       "json": {"steps": 7}});
    s.post("/v1/records", ADMIN_KEY, &frank, 201).await;
    let speaker = json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                         "purposes": ["analytics"]});
    let device_token =
        str_of(&s.post("/v1/subjects/eve/devices", ADMIN_KEY, &speaker, 201).await["token"]).to_owned();
    assert_eq!(s.send(Method::GET, "/v1/device/consent", &device_token, None).await.status, 200);
    // A copy of the data taken before the erasure, without the key store: readable with the key store as
    // it was then (so the check below can fail)...
    let copy = copy_of_the_data(&s).await;
    assert_eq!(copy.len(), 2);
    let opened = readable(&s, &copy).await;
    assert!(opened.iter().any(|p| String::from_utf8_lossy(p).contains(marker)), "readable before erasure");
    let objection = json!({"changes": [{"purpose": "service.improvement", "action": "object"}]});
    let receipt = s.post("/v1/subjects/eve/consents", ADMIN_KEY, &objection, 201).await;
    let receipt_id = str_of(&receipt["receipt"]["id"]).to_owned();
    s.get(&format!("/v1/receipts/{receipt_id}"), ADMIN_KEY, 200).await;
    let before = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!((before["ok"].as_bool(), before["events"].as_u64()), (Some(true), Some(4)));

    let r = request(&s, "eve", "erasure", Some(json!({"note": "account closed"}))).await;
    assert_eq!(r["status"], "in_progress", "the CRM has to confirm");
    let erased = receiver.wait_for("subject.erased").await;
    assert_eq!(erased["subject"], "eve", "downstream learns whom to erase");
    assert!(str_of(&r["history"][2]["note"]).contains("deleted 1 vault record"), "{r}");
    assert!(str_of(&r["history"][2]["note"]).contains("unpaired 1 device"), "{r}");
    assert_code(&s.get("/v1/device/consent", &device_token, 401).await, "unauthorized");

    // ...but not with the key store as it is now: Eve's data key is gone; Frank's still opens his.
    let opened = readable(&s, &copy).await;
    assert!(!opened.iter().any(|p| String::from_utf8_lossy(p).contains(marker)), "crypto-shredded");
    assert_eq!(opened.len(), 1, "only Frank's record still opens");
    assert_code(&s.get(&format!("/v1/records/{record_id}"), ADMIN_KEY, 404).await, "not_found");

    for (purpose, channel) in
        [("marketing.direct", Some("email")), ("analytics", None), ("service.improvement", None)]
    {
        let check = s.check("eve", purpose, channel).await;
        assert_eq!(
            (check["allowed"].as_bool(), str_of(&check["reason"])),
            (Some(false), "erased"),
            "{purpose}"
        );
    }
    assert_eq!(s.check("frank", "analytics", None).await["allowed"], true, "others are untouched");
    for path in
        ["/v1/subjects/eve/consents", "/v1/subjects/eve/consents/history", "/v1/subjects/eve/access-log"]
    {
        let p = s.get(path, ADMIN_KEY, 410).await;
        assert_code(&p, "subject_erased");
    }
    let p = s.post("/v1/subjects/eve/consents", ADMIN_KEY, &grant("analytics", &[]), 410).await;
    assert_code(&p, "subject_erased");
    // Unauthenticated callers learn nothing about whom was erased.
    assert_code(&s.get("/v1/subjects/eve/consents", "", 401).await, "unauthorized");
    let p = s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "eve", "type": "access"}), 410).await;
    assert_code(&p, "subject_erased");
    assert_code(&s.post("/v1/records", ADMIN_KEY, &stored, 410).await, "subject_erased");
    let got = s.get(&format!("/v1/requests/{}", str_of(&r["id"])), ADMIN_KEY, 200).await;
    assert_eq!(
        (&got["subject"], &got["details"]),
        (&Value::Null, &Value::Null),
        "no longer names the person"
    );

    // The ledger keeps its events, now naming no one, and still verifies.
    let after = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!(after, before, "the chain is intact and unchanged");
    // Her receipts named her: they are gone from the store (she keeps her copies).
    assert_code(&s.get(&format!("/v1/receipts/{receipt_id}"), ADMIN_KEY, 404).await, "not_found");

    // Erased stays erased after a restart.
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    assert_eq!(s.check("eve", "analytics", None).await["reason"], "erased");
    assert_code(&s.get("/v1/subjects/eve/consents", ADMIN_KEY, 410).await, "subject_erased");
    assert_eq!(s.check("frank", "analytics", None).await["allowed"], true);
    assert_eq!(s.get("/v1/audit/verify", ADMIN_KEY, 200).await["ok"], true);
    s.stop().await;
}

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
            kind: "restriction".into(),
            details: Some(r#"{"purpose":"marketing.direct"}"#.into()),
            received_at: received,
            due_at: received.plus_seconds(30 * 86_400),
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

    // An erasure that stopped right after the key was destroyed is done.
    let kai = consentry_core::SubjectId::new("kai").expect("id");
    s.state
        .store
        .create_request(NewRequest {
            id: "req_0000000000000002".into(),
            subject: kai.clone(),
            kind: "erasure".into(),
            details: None,
            received_at: received,
            due_at: received.plus_seconds(30 * 86_400),
            destinations: Vec::new(),
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    s.state.store.erase_subject(&kai, "tombstone-of-kai", received).await.expect("erase");
    sweep(&s.state, received.plus_seconds(600), interval).await.expect("sweep");
    let r = s.get("/v1/requests/req_0000000000000002", ADMIN_KEY, 200).await;
    assert_eq!((&r["status"], &r["subject"]), (&json!("completed"), &Value::Null));
    s.stop().await;
}

/// After an erasure on the embedded store, once its messages have left, no file of the data folder holds
/// the subject id: key rows, receipts and the id kept for the messages are overwritten, not left in free
/// pages or the write-ahead logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_holds_the_erased_id() {
    let s = TestServer::start_on(Backend::Embedded).await;
    let receiver = Receiver::start().await;
    let crm = destination(&s, "crm", &receiver.url, &["subject.*"]).await;
    let id = "zed-4d1c9e7a";
    s.record(id, &grant("analytics", &[])).await;
    let reading = json!({"subject": id, "category": "user.device.telemetry", "purpose": "analytics",
                         "json": {"steps": 3}});
    s.post("/v1/records", ADMIN_KEY, &reading, 201).await;
    request(&s, id, "access", None).await;
    let dir = s.storage().data_dir();
    let holding = |dir: &std::path::Path| {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).expect("data folder") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            if bytes.windows(id.len()).any(|w| w == id.as_bytes()) {
                found.push(path);
            }
        }
        found
    };
    assert!(!holding(&dir).is_empty(), "before the erasure the key store names them (the scan works)");
    request(&s, id, "erasure", None).await;
    assert_eq!(receiver.wait_for("subject.erased").await["subject"], id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = s.get(&format!("/v1/destinations/{crm}/deliveries?status=pending"), ADMIN_KEY, 200).await;
        if d["deliveries"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "the deliveries did not finish: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sweep(&s.state, Timestamp::now(), Duration::from_secs(60)).await.expect("sweep");
    let left = holding(&dir);
    assert!(left.is_empty(), "files still holding the erased id: {left:?}");
    s.stop().await;
}

both_backends!(
    every_type_end_to_end,
    a_request_completes_when_both_destinations_confirm,
    overdue_requests_with_an_injected_clock,
    erasure_crypto_shreds_and_keeps_the_chain,
    bad_requests_are_problems,
    a_subject_sees_and_files_only_their_own_requests,
    a_request_left_half_way_is_resumed,
);

/// On two nodes sharing one PostgreSQL database, an erasure made on one reaches the other within a few
/// seconds: its engine forgets the subject and its routes answer 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reaches_the_other_node() {
    let Some(db) = consentry_store::testing::TestDatabase::create().await else { return };
    async fn node(
        url: &str,
    ) -> (String, tokio_util::sync::CancellationToken, tokio::task::JoinHandle<std::io::Result<()>>) {
        let config = consentry_server::Config {
            data: std::env::temp_dir(),
            database_url: Some(url.to_owned()),
            database_max_connections: 4,
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            ..consentry_server::Config::default()
        };
        let opened = consentry_server::open(config).await.expect("node opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let token = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
        (base, token, task)
    }
    let (a, stop_a, task_a) = node(&db.url).await;
    let (b, stop_b, task_b) = node(&db.url).await;
    let client = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let client = client.clone();
        async move {
            let r = client.post(url).bearer_auth(ADMIN_KEY).json(&body).send().await.expect("request");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let check =
        |base: String| post(format!("{base}/v1/check"), json!({"subject": "ida", "purpose": "analytics"}));
    let (status, _) = post(format!("{a}/v1/subjects/ida/consents"), grant("analytics", &[])).await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(5);
    while check(b.clone()).await.1["allowed"] != true {
        assert!(Instant::now() < deadline, "node B did not see the grant");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, r) = post(format!("{a}/v1/requests"), json!({"subject": "ida", "type": "erasure"})).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(check(a.clone()).await.1["reason"], "erased");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, answer) = check(b.clone()).await;
        if answer["reason"] == "erased" {
            assert_eq!(answer["allowed"], false);
            break;
        }
        assert!(Instant::now() < deadline, "node B still answers {answer} 10 s after the erasure");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r =
        client.get(format!("{b}/v1/subjects/ida/consents")).bearer_auth(ADMIN_KEY).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 410);
    for (token, task) in [(stop_a, task_a), (stop_b, task_b)] {
        token.cancel();
        let _ = task.await;
    }
}
