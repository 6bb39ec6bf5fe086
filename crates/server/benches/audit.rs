//! Time to verify the whole ledger (`GET /v1/audit/verify`, `consentry audit verify --data`): appends N
//! events (default 1,000,000; `CONSENTRY_BENCH_EVENTS`) to a fresh embedded store with one signed
//! checkpoint, then runs the same audit the server runs, three times, and reports the median.
//! Run: `cargo bench -p consentry-server --bench audit`.

use std::sync::Arc;
use std::time::Instant;

use consentry_core::proof::{Checkpoint, Jwks, SigningKey};
use consentry_core::{Action, NewEvent, Scope, SubjectId, Timestamp};
use consentry_store::{Store, StoreConfig};

fn main() {
    let events: u64 =
        std::env::var("CONSENTRY_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(events));
}

async fn run(n: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = consentry_store::open(StoreConfig::embedded(dir.path())).await.expect("open");
    let started = Instant::now();
    let per_call = 1000u64;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i * per_call < n {
                let subject = SubjectId::new(format!("subject-{:07}", i % 100_000)).expect("id");
                let batch = (0..per_call.min(n - i * per_call))
                    .map(|k| NewEvent {
                        evidence: None,
                        occurred_at: None,
                        jurisdiction: None,
                        purpose: "marketing.direct".into(),
                        action: if k % 2 == 0 { Action::Grant } else { Action::Withdraw },
                        scope: Scope::new(vec![], vec!["email".into()], vec![]),
                        notice: Some("marketing.direct".into()),
                        notice_version: Some(1),
                        notice_hash: Some("ab".repeat(32)),
                        collection_point: Some("web-signup".into()),
                        actor: "key:bench".into(),
                        expires_at: None,
                    })
                    .collect();
                store.append(&subject, batch).await.expect("append");
                i += 8;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let fill = started.elapsed();
    let head = store.ledger_head().await.expect("head");
    let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
    let jws = key.sign_jws(&Checkpoint::new(head.events, head.head.clone(), Timestamp::now()));
    store.insert_checkpoint(head.events, &head.head, &jws).await.expect("checkpoint");
    let jwks = Jwks { keys: vec![key.public_jwk()] };

    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let report = consentry_service::audit::audit(store.as_ref(), &jwks).await.expect("audit");
        times.push(t.elapsed().as_secs_f64());
        assert!(report.ok && report.events == n, "the chain verifies: {report:?}");
    }
    times.sort_by(f64::total_cmp);
    println!("consentry audit benchmark; command: cargo bench -p consentry-server --bench audit");
    println!(
        "ledger: {n} events appended in {:.1} s ({:.0} events/s), one signed checkpoint",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64()
    );
    println!(
        "verify (read every event from SQLite, recompute every hash, check links and the checkpoint): median {:.2} s over 3 runs (min {:.2}, max {:.2}) = {:.0} events/s",
        times[1],
        times[0],
        times[2],
        n as f64 / times[1]
    );
    store.close().await;
}
