//! Volume: 10,000 changes over 1,000 subjects arrive complete and in order per subject, from one node and
//! from two nodes sharing one PostgreSQL database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentry_server::Config;
use consentry_store::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::receiver::{Hit, Receiver, first_arrivals};
use super::{PURPOSE, assert_ordered_per_subject, deliveries, eventually, webhook};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of, withdraw};

both_backends!(ten_thousand_changes_arrive_complete_and_in_order_per_subject);

const VOLUME_SUBJECTS: usize = 1_000;
const VOLUME_CHANGES: usize = 10_000;
const VOLUME_WRITERS: usize = 32;
// A bound on a hang, not a speed target (the benchmarks hold those): generous enough for a machine that is
// busy with other builds.
const VOLUME_WITHIN: Duration = Duration::from_secs(180);

/// The body and subject of change `i`: subjects round-robin, each subject alternating grant and withdraw.
fn volume_change(i: usize) -> (String, Value) {
    let subject = format!("vol-{}", i % VOLUME_SUBJECTS);
    let body =
        if (i / VOLUME_SUBJECTS).is_multiple_of(2) { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
    (subject, body)
}

/// Checks the receiver's events after de-duplication: exactly the ledger's events 1..=n, each subject's
/// in order.
fn assert_volume(hits: &[Hit]) {
    let events: Vec<Value> = first_arrivals(hits).iter().map(Hit::event).collect();
    assert_eq!(events.len(), VOLUME_CHANGES);
    let seqs: HashSet<u64> = events.iter().filter_map(|e| e["data"]["event"]["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=VOLUME_CHANGES as u64).collect(), "every ledger event arrives");
    let counts = assert_ordered_per_subject(&events);
    assert_eq!(counts.len(), VOLUME_SUBJECTS);
    assert!(counts.values().all(|&n| n == VOLUME_CHANGES / VOLUME_SUBJECTS), "per subject: {counts:?}");
}

async fn ten_thousand_changes_arrive_complete_and_in_order_per_subject(backend: Backend) {
    let started = Instant::now();
    // A delivery that fails on a busy machine (a timeout) is tried again within seconds, not after the
    // default schedule's 5 s, 30 s and 2 min, which can outlast the bound below without anything being lost:
    // this test is about every event arriving once and in order, not about the retry schedule.
    let s = Arc::new(
        TestServer::with_config_on(backend, |c| {
            c.delivery_backoff_ms = vec![100, 200, 400, 800, 1_600, 3_200]
        })
        .await,
    );
    let r = Receiver::start().await;
    webhook(&s, "bulk", &r.url("in"), &["consent.*"]).await;
    let mut writers = Vec::new();
    for w in 0..VOLUME_WRITERS {
        let s = Arc::clone(&s);
        writers.push(tokio::spawn(async move {
            for i in (w..VOLUME_CHANGES).step_by(VOLUME_WRITERS) {
                let (subject, body) = volume_change(i);
                let reply = s
                    .send(
                        Method::POST,
                        &format!("/v1/subjects/{subject}/consents"),
                        ADMIN_KEY,
                        Some(("application/json", body.to_string().into_bytes())),
                    )
                    .await;
                assert_eq!(reply.status, 201, "{subject}: {}", reply.text);
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let written = started.elapsed();
    let hits = r.wait_unique("in", VOLUME_CHANGES, VOLUME_WITHIN.saturating_sub(started.elapsed())).await;
    eprintln!("10,000 changes: written in {written:?}, all delivered after {:?}", started.elapsed());
    assert_eq!(hits.len(), VOLUME_CHANGES);
    assert_volume(&r.accepted("in"));
    // The deliveries list pages through all of them.
    let id = str_of(&s.get("/v1/destinations", ADMIN_KEY, 200).await["destinations"][0]["id"]).to_owned();
    let listed = eventually("10,000 deliveries recorded", Duration::from_secs(10), || {
        let (s, id) = (&s, &id);
        async move {
            let listed = deliveries(s, id, Some("delivered")).await;
            (listed.len() == VOLUME_CHANGES).then_some(listed)
        }
    })
    .await;
    let ids: Vec<i64> = listed.iter().map(|d| d["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "pages follow the outbox order without repeats");
    let s = Arc::into_inner(s).expect("no other handle to the server");
    drop(s.stop().await);
}

/// A node on `url` (as in `cluster.rs`), serving until stopped.
struct Node {
    base: String,
    token: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Node {
    async fn start(url: &str) -> Self {
        let config = Config {
            data: std::env::temp_dir(),
            database_url: Some(url.to_owned()),
            database_max_connections: 8,
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            // The receiver listens on loopback, which a fresh install refuses as a destination.
            allow_private_destinations: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            ..Config::default()
        };
        let opened = consentry_server::open(config).await.expect("node opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let token = CancellationToken::new();
        let task = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
        Self { base, token, task }
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_deliver_every_event_in_order_per_subject() {
    let Some(db) = TestDatabase::create().await else { return };
    let started = Instant::now();
    let a = Node::start(&db.url).await;
    let b = Node::start(&db.url).await;
    let http =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
    let r = Receiver::start().await;
    let body = json!({"name": "bulk", "kind": "webhook", "url": r.url("in"), "event_types": ["consent.*"]});
    let created = http
        .post(format!("{}/v1/destinations", a.base))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("create destination");
    assert_eq!(created.status().as_u16(), 201);

    let mut writers = Vec::new();
    for w in 0..VOLUME_WRITERS {
        let http = http.clone();
        let base = if w % 2 == 0 { a.base.clone() } else { b.base.clone() };
        writers.push(tokio::spawn(async move {
            for i in (w..VOLUME_CHANGES).step_by(VOLUME_WRITERS) {
                let (subject, body) = volume_change(i);
                let reply = http
                    .post(format!("{base}/v1/subjects/{subject}/consents"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{subject}: {e}"));
                let status = reply.status().as_u16();
                assert_eq!(status, 201, "{subject}: {}", reply.text().await.unwrap_or_default());
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let written = started.elapsed();
    let hits = r.wait_unique("in", VOLUME_CHANGES, VOLUME_WITHIN.saturating_sub(started.elapsed())).await;
    eprintln!(
        "two nodes, 10,000 changes: written in {written:?}, all delivered after {:?}",
        started.elapsed()
    );
    assert_eq!(hits.len(), VOLUME_CHANGES);
    let all = r.accepted("in");
    eprintln!("two nodes: {} requests for {} events", all.len(), VOLUME_CHANGES);
    assert_volume(&all);
    a.stop().await;
    b.stop().await;
}
