//! A restarted server on the same storage (data folder, or PostgreSQL database) answers as before and
//! continues the hash chain.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, withdraw};

both_backends!(restart_keeps_state_and_the_chain);

async fn restart_keeps_state_and_the_chain(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ada", &grant("marketing.direct", &["email", "sms"])).await;
    s.record("ben", &grant("analytics", &[])).await;
    s.record("ben", &withdraw("analytics")).await;
    let (_, checker) = s.create_key("checker", &["check"]).await;
    let mut catalog = s.get("/v1/catalog", ADMIN_KEY, 200).await["document"].clone();
    catalog["channels"].as_array_mut().expect("channels").push(json!({"key": "fax", "name": "Fax"}));
    s.put("/v1/catalog", ADMIN_KEY, &catalog, 200).await;

    let questions = [
        ("ada", "marketing.direct", Some("email")),
        ("ada", "marketing.direct", Some("sms")),
        ("ada", "marketing.direct", Some("postal")),
        ("ben", "analytics", None),
        ("cyd", "marketing.direct", None),
        ("cyd", "service", Some("fax")),
    ];
    let mut before = Vec::new();
    for (subject, purpose, channel) in questions {
        before.push(s.check(subject, purpose, channel).await);
    }
    let history = s.get("/v1/subjects/ben/consents/history", ADMIN_KEY, 200).await;
    let last_hash = history["events"][1]["hash"].clone();
    let current = s.get("/v1/subjects/ada/consents", ADMIN_KEY, 200).await;

    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;

    for ((subject, purpose, channel), was) in questions.into_iter().zip(&before) {
        assert_eq!(&s.check(subject, purpose, channel).await, was, "{subject} {purpose} {channel:?}");
    }
    assert_eq!(s.get("/v1/subjects/ada/consents", ADMIN_KEY, 200).await, current);
    assert_eq!(s.get("/v1/catalog", ADMIN_KEY, 200).await["version"], 2);
    s.post("/v1/check", &checker, &json!({"subject": "ada", "purpose": "service"}), 200).await;

    let next = s.record("dan", &grant("marketing.direct", &["email"])).await;
    assert_eq!(next[0]["seq"], 4);
    assert_eq!(next[0]["prev_hash"], last_hash, "the chain continues from the last event before the restart");
    assert_eq!(s.check("dan", "marketing.direct", Some("email")).await["allowed"], true);
    s.stop().await;
}

/// Once `serve` has returned, the store is closed and the data folder free, even when a request was still
/// in flight at the end of the drain bound: another server may open the folder at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_is_free_once_serve_returns() {
    let s = TestServer::with_config(|c| c.shutdown_timeout_secs = 1).await;
    // A request whose body never finishes arriving stays in flight past the drain bound.
    let mut slow = TcpStream::connect(s.base.trim_start_matches("http://")).await.expect("connect");
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"subject\""
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let storage = s.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3), "serve returns after the drain bound");
    let store = consentry_store::open(storage.store_config()).await;
    let store = store.unwrap_or_else(|e| panic!("the folder is still held after serve returned: {e}"));
    store.close().await;
    drop((slow, storage));
}
