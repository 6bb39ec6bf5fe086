//! Erasure: the subject's data crypto-shredded while the ledger's chain stays intact, `erased` answers and
//! 410s (across a restart), no file of the data folder keeping the id, and the erasure reaching the other
//! node of a cluster.

use std::time::{Duration, Instant};

use base64::Engine as _;
use consentry_core::{SubjectId, Timestamp};
use consentry_service::workers::requests::sweep;
use consentry_store::requests::{NewRequest, RequestKind};
use consentry_store::vault::{SealedPayload, WrappedKey, open_payload};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{Receiver, destination, request};
use crate::utils::{
    ADMIN_KEY, Backend, Node, TestServer, assert_code, at_rest, both_backends, grant, str_of,
};

both_backends!(
    erasure_crypto_shreds_and_keeps_the_chain,
    an_interrupted_erasure_is_finished_by_the_sweep,
    checks_answer_erased_from_the_tombstone_on_even_after_a_restart,
    nothing_at_rest_names_the_erased_person_while_a_destination_is_down
);

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
    let (before, tree_before) = crate::audit::audit_of(&s).await;
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
    let (after, tree_after) = crate::audit::audit_of(&s).await;
    assert_eq!(after, before, "the chain is intact and unchanged");
    assert_eq!((&tree_after["size"], &tree_after["root"]), (&tree_before["size"], &tree_before["root"]));
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

/// An erasure that stopped after its first step (the tombstone kept, nothing deleted yet) is finished by
/// the request sweep, which runs it again: the vault, the devices and the key go, `subject.erased` goes out
/// once, the engine forgets the subject and the request completes.
async fn an_interrupted_erasure_is_finished_by_the_sweep(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let receiver = Receiver::start().await;
    destination(&s, "crm", &receiver.url, &["subject.*"]).await;
    s.record("ivy", &grant("analytics", &[])).await;
    let stored = json!({"subject": "ivy", "category": "user.device.telemetry", "purpose": "analytics",
                        "json": {"steps": 3}});
    let record_id = str_of(&s.post("/v1/records", ADMIN_KEY, &stored, 201).await["id"]).to_owned();
    let speaker = json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                         "purposes": ["analytics"]});
    let device_token =
        str_of(&s.post("/v1/subjects/ivy/devices", ADMIN_KEY, &speaker, 201).await["token"]).to_owned();
    let received = Timestamp::now();
    s.state
        .store
        .create_request(NewRequest {
            id: "req_0000000000000009".into(),
            subject: SubjectId::new("ivy").expect("id"),
            kind: RequestKind::Erasure,
            details: None,
            received_at: received,
            destinations: Vec::new(),
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    // Step 1 was done (the tombstone, in memory and stored), then the erasure stopped.
    let tombstone = s.state.erasures.tombstone("ivy").expect("the erasure secret is loaded");
    s.state.erasures.insert(&tombstone);
    s.state.store.add_erasure_tombstone(&tombstone, received).await.expect("tombstone");
    assert_code(&s.post("/v1/records", ADMIN_KEY, &stored, 410).await, "subject_erased");
    assert_eq!(s.send(Method::GET, "/v1/device/consent", &device_token, None).await.status, 200, "not yet");

    sweep(&s.state, received.plus_seconds(600), Duration::from_secs(60)).await.expect("sweep");
    let r = s.get("/v1/requests/req_0000000000000009", ADMIN_KEY, 200).await;
    assert_eq!((&r["status"], &r["subject"]), (&json!("completed"), &Value::Null), "{r}");
    let note = str_of(&r["history"][2]["note"]);
    assert!(note.contains("deleted 1 vault record") && note.contains("unpaired 1 device"), "{r}");
    assert_code(&s.get(&format!("/v1/records/{record_id}"), ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.get("/v1/device/consent", &device_token, 401).await, "unauthorized");
    let check = s.check("ivy", "analytics", None).await;
    assert_eq!((check["allowed"].as_bool(), str_of(&check["reason"])), (Some(false), "erased"));
    assert_eq!(receiver.wait_for("subject.erased").await["subject"], "ivy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent =
        receiver.bodies.lock().map_or(0, |b| b.iter().filter(|e| e["type"] == "subject.erased").count());
    assert_eq!(sent, 1, "subject.erased goes out once");
    s.stop().await;
}

/// An erasure that stopped right after its tombstone was stored (before any key went) never lets a check
/// answer from the subject's consent again: not on this node, and not after a restart, which loads the
/// subject's state from the ledger before the request sweep finishes the erasure.
async fn checks_answer_erased_from_the_tombstone_on_even_after_a_restart(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("uma", &grant("analytics", &[])).await;
    assert_eq!(s.check("uma", "analytics", None).await["allowed"], true);
    let tombstone = s.state.erasures.tombstone("uma").expect("the erasure secret is loaded");
    // What step 1 of an erasure does, and no more: the node stops there.
    s.state.erasures.insert(&tombstone);
    s.state.engine.forget("uma");
    s.state.store.add_erasure_tombstone(&tombstone, Timestamp::now()).await.expect("tombstone");
    // Long enough for this node's follower (PostgreSQL) to catch up on the write above: it must not put
    // the subject back into the engine.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let erased = |check: Value| (check["allowed"].as_bool(), str_of(&check["reason"]).to_owned());
    assert_eq!(erased(s.check("uma", "analytics", None).await), (Some(false), "erased".to_owned()));
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    assert_eq!(erased(s.check("uma", "analytics", None).await), (Some(false), "erased".to_owned()));
    assert_eq!(s.check("vic", "analytics", None).await["reason"], "no_consent", "others are unaffected");
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

/// `id` as it could sit in a file: plain, and in standard and URL-safe base64 at each of the three
/// alignments it may have inside a longer encoded value (a signed payload, say): the characters that
/// only `id`'s bytes decide.
fn encodings(id: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out = vec![id.as_bytes().to_vec()];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for k in 0..3 {
            let mut input = vec![b'x'; k];
            input.extend_from_slice(id.as_bytes());
            let encoded = engine.encode(&input);
            let (first, last) = (k.div_ceil(3) * 4, (k + id.len()) / 3 * 4);
            out.push(encoded.as_bytes()[first..last].to_vec());
        }
    }
    out
}

/// An erasure while one destination is down and another paused: the erasure waits (a bounded time) for
/// its messages, then destroys the keys, and from then on no file of the data folder (and no table on
/// PostgreSQL) names the person, plainly or in base64: no stored receipt, no id kept for the messages.
/// The destination that was up learnt whom to erase; the paused one, resumed, gets `subject.erased`
/// without the id, marked `erased`.
async fn nothing_at_rest_names_the_erased_person_while_a_destination_is_down(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.erasure_notice_wait_secs = 1).await;
    let (up, later) = (Receiver::start().await, Receiver::start().await);
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("address"))
    };
    let types = ["subject.*", "consent.*", "request.*"];
    destination(&s, "crm", &up.url, &types).await;
    destination(&s, "mailer", &closed, &types).await;
    let paused = destination(&s, "lake", &later.url, &types).await;
    let body = json!({"paused": true}).to_string();
    s.raw(Method::PATCH, &format!("/v1/destinations/{paused}"), ADMIN_KEY, "application/json", body, 200)
        .await;

    let id = "zed-4d1c9e7a-0b3f";
    let recorded =
        s.post(&format!("/v1/subjects/{id}/consents"), ADMIN_KEY, &grant("analytics", &[]), 201).await;
    let reading = json!({"subject": id, "category": "user.device.telemetry", "purpose": "analytics",
                         "json": {"steps": 3}});
    s.post("/v1/records", ADMIN_KEY, &reading, 201).await;
    request(&s, id, "access", None).await;
    let needles = encodings(id);
    assert!(!at_rest(&s, &needles).await.is_empty(), "before the erasure the key store names them");
    let receipt = format!("/v1/receipts/{}", str_of(&recorded["receipt"]["id"]));
    let rebuilt = s.get(&receipt, ADMIN_KEY, 200).await;
    assert_eq!(rebuilt["payload"], recorded["receipt"]["payload"], "built again from the ledger, as issued");
    let key = str_of(&recorded["receipt"]["subject_key"]).to_owned();

    let erasure = request(&s, id, "erasure", None).await;
    assert_eq!(up.wait_for("subject.erased").await["subject"], id, "the destination that was up learnt whom");
    let found = at_rest(&s, &needles).await;
    assert!(found.is_empty(), "still naming the erased person: {found:?}");
    let key_bytes = base64::engine::general_purpose::STANDARD.decode(&key).expect("base64 key");
    let found = at_rest(&s, &[key_bytes]).await;
    assert!(found.is_empty(), "the pseudonym's opening outlived the erasure: {found:?}");
    let r = s.get(&format!("/v1/requests/{}", str_of(&erasure["id"])), ADMIN_KEY, 200).await;
    assert!(r.to_string().contains("without the subject id"), "the history says what was not sent: {r}");

    let body = json!({"paused": false}).to_string();
    s.raw(Method::PATCH, &format!("/v1/destinations/{paused}"), ADMIN_KEY, "application/json", body, 200)
        .await;
    let late = later.wait_for("subject.erased").await;
    assert!(late.get("subject").is_none(), "{late}");
    assert_eq!(late["erased"], true, "{late}");
    assert!(at_rest(&s, &needles).await.is_empty());
    s.get(&receipt, ADMIN_KEY, 404).await;
    s.stop().await;
}

/// On two nodes sharing one PostgreSQL database, an erasure made on one reaches the other within a few
/// seconds: its engine forgets the subject and its routes answer 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reaches_the_other_node() {
    let Some(db) = consentry_store::testing::TestDatabase::create().await else { return };
    let (node_a, node_b) = (Node::start(&db.url).await, Node::start(&db.url).await);
    let (a, b) = (node_a.base.clone(), node_b.base.clone());
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
    node_a.stop().await;
    node_b.stop().await;
}
