//! Destinations cannot be aimed at the node's own network (issue 13, item 4): with an empty
//! `allow_private_destinations`, as a fresh install has, IP literals that are not publicly routable are
//! refused when a destination is created or changed, a name that resolves to one is refused when sent to
//! (and nothing connects), URLs with credentials are refused, and delivery errors stay coarse.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(
    internal_ip_literals_are_refused_at_creation,
    credentials_in_a_webhook_url_are_refused,
    a_name_that_resolves_to_loopback_is_refused_when_sent,
    delivery_errors_are_coarse,
);

/// A server as a fresh install configures it: no private destination allowed.
async fn closed(backend: Backend) -> TestServer {
    TestServer::with_config_on(backend, |c| {
        c.allow_private_destinations.clear();
        c.delivery_backoff_ms = vec![20, 40];
    })
    .await
}

/// A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them).
struct Counter {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counter {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Self { port, accepted, task }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn destination(kind: &str, url: &str) -> Value {
    let mut body = json!({"name": "probe", "kind": kind, "url": url, "event_types": ["*"]});
    match kind {
        "nats" => body["subject"] = json!("probe"),
        "mqtt" => body["topic"] = json!("probe"),
        _ => {}
    }
    body
}

async fn internal_ip_literals_are_refused_at_creation(backend: Backend) {
    let s = closed(backend).await;
    let port = Counter::start().await.port;
    for (kind, url) in [
        ("webhook", format!("http://127.0.0.1:{port}/hook")),
        ("webhook", "http://2130706433/".to_owned()),
        ("webhook", "http://127.1/".to_owned()),
        ("webhook", "http://0x7f000001/".to_owned()),
        ("webhook", "http://[::1]/".to_owned()),
        ("webhook", "http://[::ffff:127.0.0.1]/".to_owned()),
        ("webhook", "http://169.254.169.254/latest/meta-data/".to_owned()),
        ("webhook", "http://[fd00:ec2::254]/".to_owned()),
        ("webhook", "http://10.0.0.1/".to_owned()),
        ("webhook", "http://100.64.0.1/".to_owned()),
        ("webhook", "https://0.0.0.0/".to_owned()),
        ("webhook", "http://[fe80::1]/".to_owned()),
        ("webhook", "http://224.0.0.1/".to_owned()),
        ("webhook", "http://255.255.255.255/".to_owned()),
        ("nats", "nats://127.0.0.1:4222".to_owned()),
        ("nats", "nats://nats.example.org:4222,nats://2130706433:4222".to_owned()),
        ("mqtt", "mqtt://[::1]:1883".to_owned()),
        ("mqtt", "mqtt://192.168.1.10".to_owned()),
    ] {
        let problem = s.post("/v1/destinations", ADMIN_KEY, &destination(kind, &url), 422).await;
        assert_code(&problem, "validation_failed");
        let text = problem.to_string();
        assert!(text.contains("allow_private_destinations") && text.contains("url"), "{url}: {problem}");
    }
    assert!(
        s.get("/v1/destinations", ADMIN_KEY, 200).await["destinations"].as_array().expect("list").is_empty()
    );

    // Changing a destination's URL is checked the same way.
    let d = s
        .post("/v1/destinations", ADMIN_KEY, &destination("webhook", "https://hooks.example.org/in"), 201)
        .await;
    let path = format!("/v1/destinations/{}", str_of(&d["id"]));
    let body = json!({"url": "http://2130706433/"}).to_string();
    let problem = s.raw(Method::PATCH, &path, ADMIN_KEY, "application/json", body, 422).await;
    assert_code(&problem, "validation_failed");
    assert_eq!(s.get(&path, ADMIN_KEY, 200).await["url"], "https://hooks.example.org/in");

    // A public address is accepted, and so is a name (checked when sent to).
    s.post("/v1/destinations", ADMIN_KEY, &destination("webhook", "https://93.184.216.34/in"), 201).await;
    s.post("/v1/destinations", ADMIN_KEY, &destination("webhook", "http://localhost/in"), 201).await;
}

async fn credentials_in_a_webhook_url_are_refused(backend: Backend) {
    let s = closed(backend).await;
    for url in ["https://user:pass@hooks.example.org/in", "https://user@hooks.example.org/in"] {
        let problem = s.post("/v1/destinations", ADMIN_KEY, &destination("webhook", url), 422).await;
        assert_code(&problem, "validation_failed");
        assert!(problem.to_string().contains("credentials"), "{url}: {problem}");
    }
    // Brokers authenticate with them.
    s.post("/v1/destinations", ADMIN_KEY, &destination("nats", "nats://u:p@nats.example.org:4222"), 201)
        .await;
}

/// Waits until the destination's only delivery is dead; returns it.
async fn dead_delivery(s: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = s.get(&format!("/v1/destinations/{id}/deliveries?status=dead"), ADMIN_KEY, 200).await;
        if let Some(d) = page["deliveries"].as_array().and_then(|d| d.first()) {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "no dead delivery within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_name_that_resolves_to_loopback_is_refused_when_sent(backend: Backend) {
    let s = closed(backend).await;
    let counter = Counter::start().await;
    let url = format!("http://localhost:{}/hook", counter.port);
    let d = s.post("/v1/destinations", ADMIN_KEY, &destination("webhook", &url), 201).await;
    let id = str_of(&d["id"]).to_owned();
    s.record("ssrf-1", &grant("marketing.direct", &["email"])).await;

    let dead = dead_delivery(&s, &id).await;
    assert_eq!(dead["last_error"], "refused_address", "{dead}");
    assert_eq!(dead["attempts"], 1, "a refused address is not retried: {dead}");
    assert_eq!(counter.accepted.load(Ordering::SeqCst), 0, "something connected to the refused address");
}

async fn delivery_errors_are_coarse(backend: Backend) {
    // Allowed to reach loopback, where nothing listens on this port: the error says only that.
    let s = TestServer::with_config_on(backend, |c| c.delivery_backoff_ms = vec![20]).await;
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("local address").port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let d = s.post("/v1/destinations", ADMIN_KEY, &destination("webhook", &url), 201).await;
    let id = str_of(&d["id"]).to_owned();
    s.record("ssrf-2", &grant("marketing.direct", &["email"])).await;

    let dead = dead_delivery(&s, &id).await;
    assert_eq!(dead["last_error"], "connection_failed", "{dead}");
}
