//! Deliveries survive a hard kill: `consentry serve` on the embedded store, a webhook receiver that is
//! down, 20 changes, `kill -9`, then the receiver comes up and a new `consentry serve` on the same data
//! folder delivers every change (at least once; the receiver de-duplicates by `webhook-id`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::commands::{BOOT_KEY, Server, free_port};

/// What the receiver got: (`webhook-id`, body), in arrival order.
type Seen = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn receive(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    seen.lock().unwrap_or_else(PoisonError::into_inner).push((id, body));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_kill_9_and_arrive_after_a_restart() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    // The first retry waits 3 s: the kill comes in that quiet spell, when no attempt is in flight (an
    // attempt cut off by the kill would hold its 60 s lease after the restart).
    // The receiver listens on loopback, which a fresh install refuses as a destination.
    let env = [
        ("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY),
        ("CONSENTRY_DELIVERY_BACKOFF_MS", "3000,6000,12000"),
        ("CONSENTRY_ALLOW_PRIVATE_DESTINATIONS", "127.0.0.0/8,::1/128"),
    ];
    // Nothing listens on this port yet: every attempt is refused.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");

    let mut server = Server::start(&data, tmp.path(), &env).await;
    let body = json!({"name": "crm", "kind": "webhook", "url": url, "event_types": ["consent.*"]});
    let (status, d) = server.call(reqwest::Method::POST, "/v1/destinations", BOOT_KEY, Some(&body)).await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_str().expect("destination id").to_owned();

    const SUBJECTS: usize = 5;
    const CHANGES: usize = 20;
    let mut written = Vec::new();
    for i in 0..CHANGES {
        let body = if (i / SUBJECTS).is_multiple_of(2) {
            json!({"notice": "marketing.direct", "collection_point": "web-signup",
                   "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"]}]})
        } else {
            json!({"changes": [{"purpose": "marketing.direct", "action": "withdraw"}]})
        };
        let path = format!("/v1/subjects/kill-{}/consents", i % SUBJECTS);
        let (status, out) = server.call(reqwest::Method::POST, &path, BOOT_KEY, Some(&body)).await;
        assert_eq!(status, 201, "{out}");
        written.push(out["events"][0]["id"].as_str().expect("event id").to_owned());
    }

    // Every subject's first change has failed once (refused); the rest wait behind it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, list) = server
            .call(
                reqwest::Method::GET,
                &format!("/v1/destinations/{id}/deliveries?limit=100"),
                BOOT_KEY,
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        let rows = list["deliveries"].as_array().expect("deliveries");
        assert!(rows.iter().all(|d| d["status"] == "pending"), "{list}");
        let failed: Vec<&Value> = rows.iter().filter(|d| d["attempts"] == 1).collect();
        if rows.len() == CHANGES && failed.len() == SUBJECTS {
            assert!(failed.iter().all(|d| d["last_error"] == "connection_failed"), "{list}");
            break;
        }
        assert!(Instant::now() < deadline, "the first attempts did not happen:\n{list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().expect("SIGKILL");
    let status = server.child.wait().expect("wait");
    assert!(!status.success(), "killed, not exited: {status}");
    drop(server);

    // The receiver comes up on the port; a new server on the same folder delivers everything.
    let seen: Seen = Arc::default();
    let app = Router::new().route("/hook", post(receive)).with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver port");
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let server = Server::start(&data, tmp.path(), &env).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let arrived = loop {
        let got = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut ids = HashSet::new();
        let unique: Vec<(String, Bytes)> = got.into_iter().filter(|(id, _)| ids.insert(id.clone())).collect();
        if unique.len() >= CHANGES {
            break unique;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {CHANGES} events arrived after the restart:\n{}",
            unique.len(),
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let ids: HashSet<&str> = arrived.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, written.iter().map(String::as_str).collect(), "every change arrives");
    let mut last: HashMap<String, u64> = HashMap::new();
    for (id, body) in &arrived {
        let e: Value = serde_json::from_slice(body).expect("CloudEvent JSON");
        assert_eq!(e["id"].as_str(), Some(id.as_str()), "{e}");
        let subject = e["subject"].as_str().expect("subject").to_owned();
        let seq = e["data"]["event"]["seq"].as_u64().expect("seq");
        let before = last.insert(subject.clone(), seq);
        assert!(before.is_none_or(|b| b < seq), "{subject}: seq {seq} after {before:?}");
    }
    assert_eq!(last.len(), SUBJECTS);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let path = format!("/v1/destinations/{id}/deliveries?status=delivered&limit=100");
        let (_, list) = server.call(reqwest::Method::GET, &path, BOOT_KEY, None).await;
        if list["deliveries"].as_array().map(Vec::len) == Some(CHANGES) {
            break;
        }
        assert!(Instant::now() < deadline, "deliveries not recorded as delivered:\n{list}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(server);
    receiver.abort();
}
