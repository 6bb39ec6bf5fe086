//! Time to ready of a node whose store holds N subjects (default 1,000,000; `CONSENTRY_BENCH_SUBJECTS`),
//! on the embedded store: from the start of `open` until `GET /readyz` answers 200 on the node's socket.
//! Side by side, three rounds each, medians: the full load (no engine image: every subject's current state
//! read from the store) and the start from the engine image the previous node wrote at shutdown (the
//! image, then the ledger after it).
//!
//! The store is filled through the store's own appends, one subject per call, with a mix of grants,
//! withdrawals, objections and jurisdictions; 2,048 calls in flight, so the writer commits them in groups of
//! up to as many subjects per transaction (with 64 in flight a million subjects took 13 minutes to fill).
//! How the store was filled does not change what is timed: the stored ledger, current state and keys are
//! the same whatever the groups were.
//!
//! Run: `cargo bench -p consentry-server --bench startup`. The machine is shared: read medians.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use consentry_core::{Action, NewEvent, Scope, SubjectId};
use consentry_server::Config;
use consentry_store::{Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const COMMAND: &str = "cargo bench -p consentry-server --bench startup";
const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklmn";
/// Appends in flight while filling: the writer groups what is queued (up to 4,096) into one transaction.
const TASKS: u64 = 2048;
const ROUNDS: usize = 3;

fn change(i: u64) -> NewEvent {
    let (purpose, action, jurisdiction) = match i % 5 {
        0 => ("marketing.direct", Action::Grant, None),
        1 => ("marketing.direct", Action::Withdraw, Some("DE")),
        2 => ("analytics", Action::Object, None),
        3 => ("analytics", Action::Grant, Some("US-CA")),
        _ => ("service", Action::Restrict, None),
    };
    NewEvent {
        evidence: None,
        occurred_at: None,
        jurisdiction: jurisdiction.map(str::to_owned),
        purpose: purpose.into(),
        action,
        scope: Scope::new(
            vec![],
            if purpose == "marketing.direct" { vec!["email".into()] } else { vec![] },
            vec![],
        ),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: "key:bench".into(),
        expires_at: None,
    }
}

async fn fill(dir: &Path, n: u64) {
    let store: Arc<dyn Store> = consentry_store::open(StoreConfig::embedded(dir)).await.expect("open");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let subject = SubjectId::new(format!("subject-{i:08}")).expect("id");
                store.append(&subject, vec![change(i)]).await.expect("append");
                i += TASKS;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    assert_eq!(store.ledger_head().await.expect("head").events, n);
    println!("filled {n} subjects in {:.1} s", started.elapsed().as_secs_f64());
    store.close().await;
}

/// Starts a node on `dir`, waits until `/readyz` answers 200, stops it (which writes an engine image);
/// returns the seconds to ready and how the engine was loaded.
async fn time_to_ready(dir: &Path) -> (f64, bool) {
    let config = Config {
        data: dir.to_path_buf(),
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let started = Instant::now();
    let opened = consentry_server::open(config).await.expect("open");
    let open_secs = started.elapsed().as_secs_f64();
    let from_image = opened.state.image_covers.load(std::sync::atomic::Ordering::Relaxed) > 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = CancellationToken::new();
    let handle = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
    loop {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.expect("read");
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
    }
    let ready = started.elapsed().as_secs_f64();
    println!("  open {open_secs:.2} s, ready {ready:.2} s, from an image: {from_image}");
    token.cancel();
    handle.await.expect("serve task").expect("serve");
    (ready, from_image)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let n: u64 =
        std::env::var("CONSENTRY_BENCH_SUBJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    println!("consentry start-up benchmark ({n} subjects, embedded store); command: {COMMAND}");
    rt.block_on(fill(dir.path(), n));
    let (mut full, mut image) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        // No image: the full load. Its shutdown writes the image the next start reads.
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
        conn.execute("DELETE FROM engine_images", []).expect("drop images");
        drop(conn);
        let (t, from_image) = rt.block_on(time_to_ready(dir.path()));
        assert!(!from_image, "the full load ran");
        full.push(t);
        let (t, from_image) = rt.block_on(time_to_ready(dir.path()));
        assert!(from_image, "the image was read");
        image.push(t);
        println!(
            "round {round}: full load {:.2} s, from the image {:.2} s",
            full[round - 1],
            image[round - 1]
        );
    }
    let (f, i) = (median(full), median(image));
    println!(
        "time to ready, {n} subjects, median of {ROUNDS}: full load {f:.2} s, from the engine image {i:.2} s ({:.1}x faster)",
        f / i
    );
}
