//! Several Consentry nodes on one PostgreSQL database: one chain, every write visible on every node within
//! a second, and one node's death leaves the others serving.

use std::time::{Duration, Instant};

use consentry_core::ledger::ChainVerifier;
use consentry_server::Config;
use consentry_store::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::utils::ADMIN_KEY;

pub(crate) struct Node {
    pub(crate) base: String,
    token: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

pub(crate) async fn node(url: &str) -> Node {
    let dir = std::env::temp_dir();
    let config = Config {
        data: dir,
        database_url: Some(url.to_owned()),
        database_max_connections: 4,
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        shutdown_timeout_secs: 5,
        ..Config::default()
    };
    let opened = consentry_server::open(config).await.expect("node opens");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let token = CancellationToken::new();
    let task = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
    Node { base, token, task }
}

impl Node {
    pub(crate) async fn stop(self) {
        self.token.cancel();
        let _ = self.task.await;
    }
}

pub(crate) async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = client.post(url).bearer_auth(ADMIN_KEY).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn allowed(client: &reqwest::Client, node: &Node, subject: &str) -> bool {
    let (status, body) =
        post(client, format!("{}/v1/check", node.base), json!({"subject": subject, "purpose": "analytics"}))
            .await;
    assert_eq!(status, 200, "{body}");
    body["allowed"].as_bool().expect("allowed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_chain_and_see_each_others_writes() {
    let Some(db) = TestDatabase::create().await else { return };
    let a = node(&db.url).await;
    let b = node(&db.url).await;
    let client = reqwest::Client::new();

    // Concurrent writes on both nodes.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base) = (client.clone(), if w % 2 == 0 { a.base.clone() } else { b.base.clone() });
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let body =
                    json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]});
                let (status, reply) =
                    post(&client, format!("{base}/v1/subjects/n{w}-{i}/consents"), body).await;
                assert_eq!(status, 201, "{reply}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }

    // Every write is visible on both nodes within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    for w in 0..8 {
        for i in 0..10 {
            let subject = format!("n{w}-{i}");
            for n in [&a, &b] {
                while !allowed(&client, n, &subject).await {
                    assert!(Instant::now() < deadline, "{subject} not visible on {} within 1 s", n.base);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    // A write on A, then a withdraw on B: both nodes agree, in order.
    let lag = Instant::now();
    let body = json!({"changes": [{"purpose": "analytics", "action": "withdraw"}]});
    assert_eq!(post(&client, format!("{}/v1/subjects/n0-0/consents", b.base), body).await.0, 201);
    while allowed(&client, &a, "n0-0").await {
        assert!(lag.elapsed() < Duration::from_secs(1), "withdraw on B not seen on A within 1 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Killing one node leaves the other serving, reads and writes.
    a.stop().await;
    assert!(allowed(&client, &b, "n1-1").await);
    let body = json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]});
    assert_eq!(post(&client, format!("{}/v1/subjects/after-a/consents", b.base), body).await.0, 201);
    assert!(allowed(&client, &b, "after-a").await);
    b.stop().await;

    // One unbroken chain.
    let store =
        consentry_store::open(consentry_store::StoreConfig::postgres(db.url.clone())).await.expect("open");
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.events_page(after, 500).await.expect("page");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            assert!(verifier.push(e), "chain breaks at {:?}", verifier.first_break());
        }
    }
    assert_eq!(verifier.count(), 82);
    store.close().await;
}
