//! Vault ingestion on loopback, the embedded store and PostgreSQL in one run: 16 concurrent writers, each
//! on its own keep-alive connection, `POST /v1/records` with 1 KiB payloads (base64 in JSON) for subjects
//! who granted the purpose, so every record passes the consent check, is encrypted with its subject's data
//! key and committed. Reports records per second and the latency per request (p50, p99), after a warm-up.
//! Bounded: `CONSENTRY_BENCH_SECS` seconds per backend (default 5). PostgreSQL at `127.0.0.1:5432` (or
//! `CONSENTRY_TEST_DATABASE_URL`), skipped with a notice when unreachable.
//! Run: `cargo bench -p consentry-server --bench vault`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_server::Config;
use consentry_store::testing::TestDatabase;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "support/http1.rs"]
mod http1;

const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklmn";
const WRITERS: usize = 16;
/// Subjects per writer (each request goes to the writer's next subject).
const SUBJECTS_PER_WRITER: usize = 16;
const PAYLOAD: usize = 1024;
const WARM_UP: Duration = Duration::from_secs(1);

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

fn start(rt: &Runtime, data: PathBuf, database_url: Option<&str>) -> Result<Running, String> {
    let config = Config {
        data,
        database_url: database_url.map(str::to_owned),
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let opened = rt.block_on(consentry_server::open(config)).map_err(|e| format!("open: {e}"))?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let handle = rt.spawn(consentry_server::serve(opened.state, listener, token.clone()));
    Ok(Running { addr, token, handle })
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn subject(writer: usize, i: usize) -> String {
    format!("bench-{writer:02}-{i:02}")
}

/// Grants `analytics` to every subject the writers use.
async fn grant_all(addr: SocketAddr) -> std::io::Result<()> {
    let mut client = http1::Client::connect(addr).await?;
    for w in 0..WRITERS {
        for i in 0..SUBJECTS_PER_WRITER {
            let body =
                json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]});
            let path = format!("/v1/subjects/{}/consents", subject(w, i));
            let status = client.send(&request(&path, body.to_string().as_bytes())).await?;
            assert_eq!(status, 201, "grant: {}", String::from_utf8_lossy(client.body()));
        }
    }
    Ok(())
}

/// One writer: stores records until `end`; returns the latencies (µs) of the requests begun after `measure`.
async fn writer(addr: SocketAddr, w: usize, measure: Instant, end: Instant) -> std::io::Result<Vec<u32>> {
    let mut client = http1::Client::connect(addr).await?;
    let requests: Vec<Vec<u8>> = (0..SUBJECTS_PER_WRITER)
        .map(|i| {
            let payload: Vec<u8> = (0..PAYLOAD).map(|k| ((k * 31 + i * 7 + w) % 251) as u8).collect();
            let body = json!({
                "subject": subject(w, i),
                "category": "user.device.telemetry",
                "purpose": "analytics",
                "content_type": "application/octet-stream",
                "data": STANDARD.encode(&payload),
            });
            request("/v1/records", body.to_string().as_bytes())
        })
        .collect();
    let mut latencies = Vec::new();
    let mut n = 0;
    loop {
        let began = Instant::now();
        if began >= end {
            return Ok(latencies);
        }
        let status = client.send(&requests[n % SUBJECTS_PER_WRITER]).await?;
        assert_eq!(status, 201, "store: {}", String::from_utf8_lossy(client.body()));
        if began >= measure {
            latencies.push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
        n += 1;
    }
}

struct Outcome {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    records: usize,
}

fn measure(rt: &Runtime, addr: SocketAddr, secs: u64) -> Result<Outcome, String> {
    rt.block_on(grant_all(addr)).map_err(|e| format!("grants: {e}"))?;
    let measure = Instant::now() + WARM_UP;
    let end = measure + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..WRITERS).map(|w| rt.spawn(writer(addr, w, measure, end))).collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(rt.block_on(t).map_err(|e| format!("writer: {e}"))?.map_err(|e| format!("writer: {e}"))?);
    }
    if all.is_empty() {
        return Err("no request finished".into());
    }
    all.sort_unstable();
    let at = |q: f64| f64::from(all[((all.len() - 1) as f64 * q) as usize]) / 1000.0;
    Ok(Outcome {
        per_second: all.len() as f64 / secs as f64,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        records: all.len(),
    })
}

fn database(rt: &Runtime) -> Option<TestDatabase> {
    let created = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(15), tokio::spawn(TestDatabase::create())).await
    });
    match created {
        Ok(Ok(db)) => db,
        _ => None,
    }
}

fn main() {
    let secs: u64 = std::env::var("CONSENTRY_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    println!("consentry vault ingestion benchmark; command: cargo bench -p consentry-server --bench vault");
    println!(
        "{WRITERS} concurrent writers on keep-alive loopback connections, {PAYLOAD} B payloads (base64 in JSON), \
         each checked against consent, encrypted (AES-256-GCM) and committed; {secs} s measured after a {} s warm-up",
        WARM_UP.as_secs()
    );
    let db = database(&rt);
    let backends: Vec<(&str, Option<String>)> =
        vec![("embedded", None), ("postgres", db.as_ref().map(|d| d.url.clone()))];
    for (name, url) in backends {
        if name == "postgres" && url.is_none() {
            println!("   postgres: SKIPPED (PostgreSQL unavailable)");
            continue;
        }
        let node = match start(&rt, tmp.path().join(name), url.as_deref()) {
            Ok(node) => node,
            Err(e) => {
                println!("   {name}: FAILED to start: {e}");
                continue;
            }
        };
        match measure(&rt, node.addr, secs) {
            Ok(o) => println!(
                "   {name}: {:.0} records/s ({} records), latency p50 {:.2} ms, p99 {:.2} ms",
                o.per_second, o.records, o.p50_ms, o.p99_ms
            ),
            Err(e) => println!("   {name}: FAILED: {e}"),
        }
        node.token.cancel();
        let _ = rt.block_on(node.handle);
    }
    drop(db);
}
