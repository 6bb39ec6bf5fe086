//! Data subject requests end to end on both backends: every type, downstream tasks, deadlines with an
//! injected clock, the export archive, erasure (checks `erased`, routes 410, the chain intact, across a
//! restart), and the problems bad requests get. One submodule per concern; the receiver and the API helpers
//! they share are here.

mod erasure;
mod permissions;
mod person;
mod types;
mod workflow;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::utils::{ADMIN_KEY, TestServer, str_of};

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

fn changes(r: &Value) -> Vec<String> {
    r["history"].as_array().expect("history").iter().map(|h| str_of(&h["change"]).to_owned()).collect()
}
