//! Many concurrent writers: every write succeeds and the ledger stays one unbroken chain.

use std::sync::Arc;

use consentry_core::ledger::ChainVerifier;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, withdraw};

both_backends!(concurrent_writers_keep_one_unbroken_chain);

const TASKS: usize = 32;
const WRITES: usize = 25;

async fn concurrent_writers_keep_one_unbroken_chain(backend: Backend) {
    let s = Arc::new(TestServer::start_on(backend).await);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES {
                let body = if i % 3 == 2 {
                    withdraw("marketing.direct")
                } else {
                    grant("marketing.direct", &["email"])
                };
                let subject = format!("writer-{t}-{i}");
                let reply = s
                    .send(
                        reqwest::Method::POST,
                        &format!("/v1/subjects/{subject}/consents"),
                        ADMIN_KEY,
                        Some(("application/json", body.to_string().into_bytes())),
                    )
                    .await;
                assert_eq!(reply.status, 201, "{subject}: {}", reply.text);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    let metrics = s.send(reqwest::Method::GET, "/metrics", "", None).await.text;
    assert!(
        metrics.lines().any(|l| l == format!("consentry_ledger_appends_total {}", TASKS * WRITES)),
        "appends counted:\n{metrics}"
    );
    let batch_sum = metrics
        .lines()
        .find_map(|l| l.strip_prefix("consentry_ledger_commit_batch_events_sum "))
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(batch_sum, Some((TASKS * WRITES) as f64), "every event is in one group commit:\n{metrics}");
    assert_eq!(s.check("writer-7-0", "marketing.direct", Some("email")).await["allowed"], true);
    assert_eq!(s.check("writer-7-2", "marketing.direct", Some("email")).await["reason"], "withdrawn");

    let s = Arc::into_inner(s).expect("no other handle to the server");
    let storage = s.stop().await;
    let store =
        consentry_store::open(storage.store_config()).await.expect("the stopped server released its store");
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.events_page(after, 97).await.expect("events page");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            verifier.push(event);
        }
    }
    assert_eq!(verifier.count(), (TASKS * WRITES) as u64);
    assert_eq!(verifier.first_break(), None, "the chain is unbroken");
    let head = store.ledger_head().await.expect("head");
    assert_eq!(head.events, (TASKS * WRITES) as u64);
    assert_eq!(head.head, verifier.head());
    store.close().await;
    drop(storage);
}
