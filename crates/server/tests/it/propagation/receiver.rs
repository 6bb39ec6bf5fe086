//! The test receivers: an HTTP endpoint that records every webhook and answers a settable status, one
//! that accepts connections and never answers, and the checks a receiver makes (signature, de-duplication).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the receiver got, in arrival order.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    /// The path it was posted to, without the leading `/`.
    pub(super) path: String,
    pub(super) id: String,
    pub(super) timestamp: String,
    pub(super) signature: String,
    pub(super) content_type: String,
    pub(super) body: Bytes,
    /// The status the receiver answered with.
    pub(super) answered: u16,
}

impl Hit {
    pub(super) fn event(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {:?}", self.body))
    }

    pub(super) fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Shared {
    hits: Mutex<Vec<Hit>>,
    status: AtomicU16,
}

/// An HTTP receiver on 127.0.0.1 answering every `POST /<path>` with a settable status.
pub(super) struct Receiver {
    base: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let answered = shared.status.load(Ordering::SeqCst);
    shared.hits.lock().unwrap_or_else(PoisonError::into_inner).push(Hit {
        path,
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// A receiver on a fresh port answering 200.
    pub(super) async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver")).await
    }

    async fn on(listener: TcpListener) -> Self {
        let shared = Arc::new(Shared { hits: Mutex::new(Vec::new()), status: AtomicU16::new(200) });
        let app = Router::new().route("/{path}", post(receive)).with_state(Arc::clone(&shared));
        let base = format!("http://{}", listener.local_addr().expect("receiver address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, task }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Answers every later request with `status`.
    pub(super) fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub(super) fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The requests to `path` answered with a 2xx, in arrival order.
    pub(super) fn accepted(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path && h.accepted()).collect()
    }

    /// Waits until `path` has accepted `n` distinct events (by `webhook-id`); returns them, first
    /// arrival of each, in arrival order.
    pub(super) async fn wait_unique(&self, path: &str, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let unique = first_arrivals(&self.accepted(path));
            if unique.len() >= n {
                return unique;
            }
            assert!(
                Instant::now() < deadline,
                "/{path} received {} of {n} events within {within:?}; the last was {:?}",
                unique.len(),
                unique.last().map(|h| h.id.as_str())
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The first arrival of each `webhook-id`, in arrival order (the receiver's de-duplication).
pub(super) fn first_arrivals(hits: &[Hit]) -> Vec<Hit> {
    let mut seen = HashSet::new();
    hits.iter().filter(|h| seen.insert(h.id.clone())).cloned().collect()
}

/// Checks the Standard Webhooks signature without the server's code: HMAC-SHA256 keyed with the bytes
/// after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`, base64, `v1,` in front.
pub(super) fn verify_signature(secret: &str, hit: &Hit) {
    let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("secret {secret:?} lacks whsec_"));
    let key = STANDARD.decode(encoded).expect("the secret is base64");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{}.{}.", hit.id, hit.timestamp).as_bytes());
    mac.update(&hit.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    // The header may carry several space-separated signatures; one must match.
    assert!(
        hit.signature.split(' ').any(|s| s == expected),
        "webhook-signature {:?} does not verify (expected {expected})",
        hit.signature
    );
    let sent: i64 = hit.timestamp.parse().expect("webhook-timestamp is unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 300, "webhook-timestamp {sent} is not now ({now})");
}

/// An HTTP endpoint that accepts connections, reads nothing and never answers.
pub(super) struct Hanging {
    pub(super) url: String,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hanging {
    pub(super) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self { url, connections, task }
    }

    pub(super) async fn wait_for_a_connection(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connections.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the dispatcher never connected to the hanging receiver");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
