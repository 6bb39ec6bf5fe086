//! Propagation end to end: every consent change leaves through the outbox to real receivers. Webhooks
//! (signed, CloudEvents, in order per subject, retried, dead-lettered and replayed, paused and resumed),
//! NATS JetStream and MQTT, on one node and on two nodes sharing PostgreSQL.
//!
//! The webhook receiver is an axum server on 127.0.0.1:0 started by each test; NATS (127.0.0.1:4222) and
//! Mosquitto (127.0.0.1:1883) are the machine's, skipped with a notice when absent (a failure under
//! `CONSENTRY_REQUIRE_SERVICES=1`). One submodule per way out or way of failing; the API helpers they share
//! are here.

mod imports;
mod mqtt;
mod nats;
mod receiver;
mod retries;
mod slim;
mod volume;
mod webhooks;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, TestServer, str_of};

const PURPOSE: &str = "marketing.direct";

/// Asserts that each subject's events come in strictly increasing ledger order; returns the number of
/// events per subject.
fn assert_ordered_per_subject(events: &[Value]) -> HashMap<String, usize> {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut counts = HashMap::new();
    for e in events {
        let subject = str_of(&e["subject"]).to_owned();
        let seq = e["data"]["event"]["seq"].as_u64().unwrap_or_else(|| panic!("no data.event.seq: {e}"));
        if let Some(&before) = last.get(&subject) {
            assert!(seq > before, "{subject}: seq {seq} arrived after seq {before}");
        }
        last.insert(subject.clone(), seq);
        *counts.entry(subject).or_insert(0) += 1;
    }
    counts
}

/// Creates a webhook destination; returns its id and secret.
async fn webhook(s: &TestServer, name: &str, url: &str, types: &[&str]) -> (String, String) {
    let body = json!({"name": name, "kind": "webhook", "url": url, "event_types": types});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    (str_of(&d["id"]).to_owned(), str_of(&d["secret"]).to_owned())
}

async fn patch(s: &TestServer, path: &str, body: &Value, status: u16) -> Value {
    s.raw(Method::PATCH, path, ADMIN_KEY, "application/json", body.to_string(), status).await
}

/// The destination's deliveries with `status` (all when `None`), every page.
async fn deliveries(s: &TestServer, id: &str, status: Option<&str>) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let filter = status.map(|st| format!("&status={st}")).unwrap_or_default();
        let page = s
            .get(
                &format!("/v1/destinations/{id}/deliveries?limit=1000&after={after}{filter}"),
                ADMIN_KEY,
                200,
            )
            .await;
        all.extend(page["deliveries"].as_array().expect("deliveries").iter().cloned());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return all,
        }
    }
}

async fn metrics(s: &TestServer) -> String {
    s.send(Method::GET, "/metrics", "", None).await.text
}

/// The value of the unlabelled sample `name` in `/metrics`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn unique() -> String {
    let bytes: [u8; 6] = consentry_store::random_bytes().expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `f` until it returns `Some`, at most `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
