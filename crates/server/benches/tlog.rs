//! The transparency log's figures (issue 16, item 7), on a fresh embedded store:
//! 1. store append, batched: N events (default 1,000,000; `CONSENTRY_BENCH_EVENTS`) appended by 8 tasks in
//!    batches of 1,000 over 100,000 subjects, each commit growing the Merkle tree: events per second;
//! 2. inclusion proofs served from the stored tree: 2,000 leaves spread over the log, each proof read
//!    from the store as `GET /v1/receipts/{id}` reads it (`consentry_service::tlog::inclusions`), timed
//!    one by one: median and 99th percentile (each proof is also checked against the root);
//! 3. offline verification: every event already in memory and the signed checkpoints (one per 100,000
//!    events and one of the whole log, C2SP signed notes) checked by `consentry_client::verify::TreeAudit`,
//!    the tree rebuilt from the events' canonical bytes (median of 3), and the same audit against the
//!    store (`consentry_service::audit::verify_tree`: reading every event and checking every stored node);
//! 4. bytes at rest per consent change on SQLite (`dbstat`, indexes included, every database file of the
//!    data folder): M changes (default 100,000; `CONSENTRY_BENCH_CHANGES`) over S subjects (default 10,000;
//!    `CONSENTRY_BENCH_SUBJECTS`) recorded
//!    through the service layer as the API records them (64 concurrent writers, the node's workers
//!    running), grants and withdrawals in turn, then the node stopped; per table. Three times, side by
//!    side: with no destination (the outbox stores nothing), with one paused destination taking
//!    `consent.*` (the outbox keeps every message, as it does within `outbox_retention_secs`), and with
//!    that destination having taken every message and the outbox sweep run with no retention window.
//!    Then the same with no destination on PostgreSQL (a fresh database on the local server,
//!    `CONSENTRY_TEST_DATABASE_URL`): `pg_total_relation_size` per table (indexes and TOAST included) of
//!    the store's two schemas, after a `VACUUM`; skipped with a notice when PostgreSQL is unreachable.
//!    `CONSENTRY_BENCH_EVENTS=0` skips parts 1 to 3; `CONSENTRY_BENCH_AT_REST` picks part 4's runs (a
//!    comma-separated list of `none`, `kept`, `swept` and `postgres`; all of them by default).
//!
//! Run: `cargo bench -p consentry-server --bench tlog`. The machine is shared: read medians.

use std::sync::Arc;
use std::time::Instant;

use consentry_client::verify::{NoteVerifier, TreeAudit};
use consentry_core::merkle::{self, Frontier, leaf_hash};
use consentry_core::note::{self, CheckpointBody};
use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};
use consentry_store::{Store, StoreConfig, TlogCheckpoint};

const COMMAND: &str = "cargo bench -p consentry-server --bench tlog";
const ORIGIN: &str = "bench.consentry.invalid/log";
const TASKS: u64 = 8;
const BATCH: u64 = 1000;
const SUBJECTS: u64 = 100_000;
const PROOFS: u64 = 2000;
const CHECKPOINT_EVERY: u64 = 100_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let events = env_number("CONSENTRY_BENCH_EVENTS", 1_000_000);
    let changes = env_number("CONSENTRY_BENCH_CHANGES", 100_000);
    let subjects = env_number("CONSENTRY_BENCH_SUBJECTS", 10_000).max(1);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if events > 0 {
        rt.block_on(run(events));
    }
    let runs = std::env::var("CONSENTRY_BENCH_AT_REST").unwrap_or_else(|_| "none,kept,swept,postgres".into());
    let runs: Vec<&str> = runs.split(',').map(str::trim).collect();
    for (name, outbox) in [("none", Outbox::NoDestination), ("kept", Outbox::Kept), ("swept", Outbox::Swept)]
    {
        if runs.contains(&name) {
            rt.block_on(at_rest(changes, subjects, outbox, None));
        }
    }
    if !runs.contains(&"postgres") {
        return;
    }
    rt.block_on(async {
        if let Some(db) = consentry_store::testing::TestDatabase::create().await {
            at_rest(changes, subjects, Outbox::NoDestination, Some(&db.url)).await;
        }
    });
}

fn batch(k0: u64) -> Vec<NewEvent> {
    (0..BATCH)
        .map(|k| NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: "marketing.direct".into(),
            action: if (k0 + k).is_multiple_of(2) { Action::Grant } else { Action::Withdraw },
            scope: Scope::new(vec![], vec!["email".into()], vec![]),
            notice: Some("marketing.direct".into()),
            notice_version: Some(1),
            notice_hash: Some("ab".repeat(32)),
            collection_point: Some("web-signup".into()),
            actor: "key:bench".into(),
            expires_at: None,
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(n: u64) {
    let n = n.max(BATCH) / BATCH * BATCH;
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = consentry_store::open(StoreConfig::embedded(dir.path())).await.expect("open");
    println!("consentry transparency-log benchmark; command: {COMMAND}");

    // 1. Batched appends.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i * BATCH < n {
                let subject = SubjectId::new(format!("subject-{:07}", i % SUBJECTS)).expect("id");
                store.append(&subject, batch(i * BATCH)).await.expect("append");
                i += TASKS;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let fill = started.elapsed().as_secs_f64();
    let size = store.ledger_head().await.expect("head").events;
    assert_eq!(size, n, "every event placed");
    println!(
        "1. store append, batched ({TASKS} tasks, {BATCH} events a call, tree grown in each commit): {n} events in {fill:.1} s = {:.0} events/s",
        n as f64 / fill
    );

    // 2. Inclusion proofs from the stored tree.
    let root = consentry_service::tlog::root(store.as_ref(), size).await.expect("root");
    let mut times = Vec::with_capacity(PROOFS as usize);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..PROOFS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let proofs = consentry_service::tlog::inclusions(store.as_ref(), std::iter::once(index), size)
            .await
            .expect("proof");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let events = store.events_page(index, 1).await.expect("event");
        let leaf = leaf_hash(&events[0].canonical_bytes());
        merkle::verify_inclusion(index, size, &leaf, &proofs[0], &root).expect("the proof holds");
    }
    println!(
        "2. inclusion proof of one of {size} events from the store: median {:.3} ms, p99 {:.3} ms over {PROOFS} random leaves",
        median(times.clone()),
        percentile(&times, 0.99)
    );

    // 3. Offline verification: the events in memory, checkpoints signed every 100,000 events.
    let signing = consentry_service::signing::Signing::load_or_create(store.as_ref()).await.expect("key");
    let key = signing.current();
    let public = key.public_key();
    let mut events: Vec<Event> = Vec::with_capacity(size as usize);
    while (events.len() as u64) < size {
        let page = store.events_page(events.len() as u64, 10_000).await.expect("page");
        events.extend(page);
    }
    let mut tree = Frontier::empty();
    let mut notes = Vec::new();
    for e in &events {
        tree.append(leaf_hash(&e.canonical_bytes()), &mut Vec::new());
        if tree.size().is_multiple_of(CHECKPOINT_EVERY) || tree.size() == size {
            let body = CheckpointBody::new(ORIGIN, tree.size(), tree.root());
            let signed = note::sign(&body.text(), ORIGIN, &key).expect("sign");
            let c = TlogCheckpoint {
                size: tree.size(),
                root: tree.root(),
                note: signed,
                created_at: Timestamp::now(),
            };
            store.insert_tlog_checkpoint(&c).await.expect("store the checkpoint");
            notes.push(c.note);
        }
    }
    let mut offline = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut audit = TreeAudit::new(ORIGIN, vec![NoteVerifier::new(ORIGIN, public).expect("verifier")]);
        for note in &notes {
            audit.push_checkpoint("checkpoint", note);
        }
        for e in &events {
            audit.push_event(e);
        }
        let report = audit.finish();
        offline.push(t.elapsed().as_secs_f64());
        assert!(report.ok && report.checkpoints == notes.len() as u64, "the log verifies: {report:?}");
    }
    drop(events);
    println!(
        "3. offline verification of {size} events in memory against {} signed checkpoints (rebuild the tree from the canonical bytes, check every signature and root): median {:.2} s over 3 runs = {:.0} events/s",
        notes.len(),
        median(offline.clone()),
        size as f64 / median(offline)
    );
    let t = Instant::now();
    let report = consentry_service::audit::verify_tree(store.as_ref(), Some(ORIGIN), None)
        .await
        .expect("audit")
        .expect("a report");
    let stored = t.elapsed();
    assert!(report.ok, "the stored log verifies: {report:?}");
    println!(
        "   the same against the store (read every event, check every checkpoint and every stored tree node): {:.2} s",
        stored.as_secs_f64()
    );
    store.close().await;
}

const WRITERS: u64 = 64;
const GRANT: &str = r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"grant"}]}"#;
const WITHDRAW: &str = r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"withdraw"}]}"#;

/// What part 4 does with the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outbox {
    /// No destination: no message is stored.
    NoDestination,
    /// One paused destination taking `consent.*`: every message is stored and kept.
    Kept,
    /// That destination took every message, then the sweep ran with no retention window.
    Swept,
}

/// A paused webhook destination taking `consent.*` (paused: the bench sends nothing).
fn bench_destination() -> consentry_store::NewDestination {
    consentry_store::NewDestination {
        record: consentry_store::DestinationRecord {
            id: "dst_bench".into(),
            name: "bench".into(),
            kind: "webhook".into(),
            url: "https://example.com/hook".into(),
            target: None,
            event_types: vec!["consent.*".into()],
            paused: true,
            flagged: false,
            created_at: Timestamp::now(),
        },
        secret: Some(b"bench-secret".to_vec()),
    }
}

/// Marks every message the destination holds delivered (fan-out, claim, complete, as the dispatcher does
/// without sending), then runs the outbox sweep to its end with no retention window.
async fn take_all_and_sweep(dir: &std::path::Path) {
    let store = consentry_store::open(StoreConfig::embedded(dir)).await.expect("reopen the store");
    let resume = consentry_store::DestinationPatch { paused: Some(false), ..Default::default() };
    store.update_destination("dst_bench", resume).await.expect("resume");
    while store.fan_out("dst_bench", &|_: &str| true, 5000).await.expect("fan out") > 0 {}
    let lease = std::time::Duration::from_secs(600);
    loop {
        let claimed = store.claim_deliveries(Timestamp::now(), lease, 5000).await.expect("claim");
        if claimed.is_empty() {
            break;
        }
        let done = consentry_store::DeliveryOutcome::Delivered { at: Timestamp::now() };
        let outcomes =
            claimed.iter().map(|c| (c.destination_id.clone(), c.outbox_id, done.clone())).collect();
        store.complete_deliveries(outcomes).await.expect("complete");
    }
    let (mut after, now) = (0, Timestamp::now());
    loop {
        let step = store.prune_outbox(after, now, 1000).await.expect("sweep");
        if step.done {
            break;
        }
        after = step.last;
    }
    store.close().await;
}

/// Part 4: records `m` consent changes through the service layer, stops the node and measures the data
/// folder's databases with `dbstat`, or the PostgreSQL database at `database_url`.
async fn at_rest(m: u64, subjects: u64, outbox: Outbox, database_url: Option<&str>) {
    use consentry_service::consents::{RecordConsents, record_changes};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = consentry_server::Config {
        data: dir.path().to_path_buf(),
        database_url: database_url.map(str::to_owned),
        ..consentry_server::Config::default()
    };
    let state = consentry_server::open(config).await.expect("open the node").state;
    if outbox != Outbox::NoDestination {
        state.store.create_destination(bench_destination()).await.expect("a destination");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let workers = consentry_service::workers::start(&state, stop.clone());
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (state, next) = (state.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= m {
                    return;
                }
                let subject = SubjectId::new(format!("person-{:05}", i % subjects)).expect("id");
                let body = if (i / subjects).is_multiple_of(2) { GRANT } else { WITHDRAW };
                let body: RecordConsents = serde_json::from_str(body).expect("a request");
                record_changes(&state, &subject, body, "key:bench").await.expect("recorded");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    workers.finish(state).await;
    if outbox == Outbox::Swept {
        take_all_and_sweep(dir.path()).await;
    }
    if let Some(url) = database_url {
        return pg_at_rest(url, m, subjects, m as f64 / secs).await;
    }
    let mut tables: Vec<(String, i64)> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the data folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .collect();
    files.sort();
    for file in &files {
        let conn = rusqlite::Connection::open(file).expect("open a database file");
        let mut stmt = conn
            .prepare(
                "SELECT COALESCE(s.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d
                 LEFT JOIN sqlite_schema s ON s.name = d.name GROUP BY 1 ORDER BY 2 DESC",
            )
            .expect("dbstat");
        let prefix = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned();
        let rows = stmt
            .query_map([], |r| Ok((format!("{prefix}.{}", r.get::<_, String>(0)?), r.get::<_, i64>(1)?)))
            .expect("query");
        tables.extend(rows.map(|r| r.expect("a row")));
    }
    let total: i64 = tables.iter().map(|(_, b)| b).sum();
    println!(
        "4. at rest on SQLite after {m} consent changes over {subjects} subjects, outbox {outbox:?} (recorded at {:.0} changes/s through the service layer, {WRITERS} writers): {total} bytes = {:.0} bytes per change (dbstat, indexes included)",
        m as f64 / secs,
        total as f64 / m as f64
    );
    tables.sort_by_key(|t| std::cmp::Reverse(t.1));
    for (name, bytes) in tables.iter().filter(|(_, b)| *b * 100 >= total) {
        println!("   {name}: {:.0} bytes per change", *bytes as f64 / m as f64);
    }
}

/// Part 4 on PostgreSQL: `pg_total_relation_size` of every table of the store's schemas.
async fn pg_at_rest(url: &str, m: u64, subjects: u64, rate: f64) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql("VACUUM").execute(&mut conn).await.expect("vacuum");
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname IN ('public', 'consentry_keystore') ORDER BY 2 DESC",
    )
    .fetch_all(&mut conn)
    .await
    .expect("sizes");
    let _ = conn.close().await;
    let total: i64 = tables.iter().map(|(_, b)| b).sum();
    println!(
        "4. at rest on PostgreSQL after {m} consent changes over {subjects} subjects, outbox NoDestination (recorded at {rate:.0} changes/s through the service layer, {WRITERS} writers): {total} bytes = {:.0} bytes per change (pg_total_relation_size, indexes included)",
        total as f64 / m as f64
    );
    for (name, bytes) in tables.iter().filter(|(_, b)| *b * 100 >= total) {
        println!("   {name}: {:.0} bytes per change", *bytes as f64 / m as f64);
    }
}
