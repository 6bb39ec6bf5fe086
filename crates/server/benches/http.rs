//! HTTP benchmark, three phases in one run on loopback:
//! 1. `POST /v1/check` on the real app (in-process, via `open` + `serve`) next to a bare axum handler
//!    that parses the same JSON, in alternating rounds under the same load;
//! 2. durable consent writes, `POST /v1/subjects/{subject}/consents`, from 64 concurrent writers;
//! 3. the store's own batched `append` path, without HTTP.
//!
//! Run with `cargo bench -p consentry-server --bench http`. The load generator is `wrk` (scripts
//! `benches/post.lua` and `benches/consents.lua`) when it is installed, otherwise an in-process HTTP/1.1
//! keep-alive client on its own thread; `CONSENTRY_BENCH_LOADGEN=inprocess` forces the latter.
//! Figures are medians over rounds; the machine is shared, so read the ratios first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use consentry_core::{Action, NewEvent, Scope, SubjectId};
use consentry_server::Config;
use consentry_store::{Store, StoreConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const COMMAND: &str = "cargo bench -p consentry-server --bench http";
/// The bootstrap admin key (40 printable characters), used as the Bearer key of every request.
const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklm";

const CHECK_CONNECTIONS: usize = 32;
const CHECK_ROUNDS: usize = 5;
const CHECK_SECS: u64 = 3;
/// Subjects granted `analytics` before the check phase.
const GRANTED: usize = 1000;

const WRITERS: usize = 64;
/// Subjects per writer; writer `w` cycles over `writer-{w*N}` .. `writer-{w*N + N-1}`.
const SUBJECTS_PER_WRITER: usize = 16;
const WRITE_ROUNDS: usize = 3;
const WRITE_SECS: u64 = 3;

const STORE_ROUNDS: usize = 3;
const STORE_EVENTS: usize = 200_000;
const STORE_BATCH: usize = 100;
const STORE_TASKS: usize = 32;

const WARMUP_SECS: u64 = 1;

const TARGET_CHECK_RATIO: f64 = 0.70;
const TARGET_CHECK_P99_MS: f64 = 2.0;
const TARGET_WRITES_PER_SEC: f64 = 50_000.0;
const TARGET_STORE_EVENTS_PER_SEC: f64 = 200_000.0;

const GRANT_BODY: &str = r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"grant"}]}"#;
const WITHDRAW_BODY: &str =
    r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"withdraw"}]}"#;

fn check_body() -> String {
    format!(
        r#"{{"subject":"{}","purpose":"analytics","category":"user.device.telemetry","channel":"in_app","recipient":"analytics_provider"}}"#,
        check_subject(42)
    )
}

fn check_subject(i: usize) -> String {
    format!("customer-{i:010}")
}

fn writer_subject(i: usize) -> String {
    format!("writer-{i:04}")
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn verdict(met: bool) -> &'static str {
    if met { "target met" } else { "target missed" }
}

fn list(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------------
// Load generation

/// What a load run sends.
#[derive(Clone, Copy)]
enum Work<'a> {
    /// The same `POST /v1/check` on every request.
    Check { body: &'a str },
    /// Consent changes, each writer cycling over its own subjects, alternating grant and withdraw.
    Writes,
}

/// The outcome of one load run.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Requests answered with a 2xx status.
    ok: u64,
    /// Socket errors, timeouts and non-2xx answers.
    errors: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

#[derive(Debug, Clone)]
enum LoadGen {
    Wrk { version: String },
    InProcess,
}

impl LoadGen {
    fn detect() -> Self {
        if std::env::var("CONSENTRY_BENCH_LOADGEN").is_ok_and(|v| v == "inprocess") {
            return LoadGen::InProcess;
        }
        match Command::new("wrk").arg("--version").output() {
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let first = text.lines().next().unwrap_or("wrk");
                let version = first.split(" Copyright").next().unwrap_or(first).trim().to_owned();
                LoadGen::Wrk { version }
            }
            Err(_) => LoadGen::InProcess,
        }
    }

    fn describe(&self) -> String {
        match self {
            LoadGen::Wrk { version } => format!("{version}, one thread (-t1), scripts in benches/*.lua"),
            LoadGen::InProcess => {
                "in-process HTTP/1.1 keep-alive client, one thread (wrk not found or CONSENTRY_BENCH_LOADGEN=inprocess)"
                    .to_owned()
            }
        }
    }

    fn run(&self, addr: SocketAddr, work: Work<'_>, connections: usize, secs: u64) -> Result<Load, String> {
        match self {
            LoadGen::Wrk { .. } => run_wrk(addr, work, connections, secs),
            LoadGen::InProcess => run_in_process(addr, work, connections, secs),
        }
    }
}

fn run_wrk(addr: SocketAddr, work: Work<'_>, connections: usize, secs: u64) -> Result<Load, String> {
    let benches = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--timeout", "5s"])
        .env("BENCH_KEY", ADMIN_KEY);
    match work {
        Work::Check { body } => {
            cmd.arg("-s").arg(benches.join("post.lua")).arg(format!("http://{addr}/v1/check"));
            cmd.env("BENCH_BODY", body);
        }
        Work::Writes => {
            cmd.arg("-s")
                .arg(benches.join("consents.lua"))
                .arg(format!("http://{addr}/v1/subjects/{}/consents", writer_subject(0)));
            cmd.env("BENCH_SUBJECTS", (WRITERS * SUBJECTS_PER_WRITER).to_string());
        }
    }
    let out = cmd.output().map_err(|e| format!("cannot run wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("BENCH ")).ok_or_else(|| {
        format!("wrk printed no result (status {}): {}", out.status, String::from_utf8_lossy(&out.stderr))
    })?;
    let field = |name: &str| -> Result<f64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("no {name} in wrk output {line:?}"))
    };
    let requests = field("requests")? as u64;
    let errors = field("errors")? as u64;
    Ok(Load {
        ok: requests.saturating_sub(errors),
        errors,
        secs: field("duration_us")? / 1e6,
        p50_ms: field("p50_us")? / 1e3,
        p99_ms: field("p99_us")? / 1e3,
    })
}

/// The raw requests connection `index` sends, cycled.
fn requests_for(work: Work<'_>, index: usize, addr: SocketAddr) -> Vec<Vec<u8>> {
    let build = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    match work {
        Work::Check { body } => vec![build("/v1/check", body)],
        Work::Writes => {
            let path = |k: usize| {
                format!("/v1/subjects/{}/consents", writer_subject(index * SUBJECTS_PER_WRITER + k))
            };
            let grants = (0..SUBJECTS_PER_WRITER).map(|k| build(&path(k), GRANT_BODY));
            let withdraws = (0..SUBJECTS_PER_WRITER).map(|k| build(&path(k), WITHDRAW_BODY));
            grants.chain(withdraws).collect()
        }
    }
}

/// `connections` keep-alive connections driven by one thread (like `wrk -t1`), for `secs` seconds.
fn run_in_process(addr: SocketAddr, work: Work<'_>, connections: usize, secs: u64) -> Result<Load, String> {
    let per_connection: Vec<Vec<Vec<u8>>> = (0..connections).map(|i| requests_for(work, i, addr)).collect();
    let duration = Duration::from_secs(secs);
    let thread = std::thread::spawn(move || -> Result<Load, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("load generator runtime: {e}"))?;
        rt.block_on(async move {
            let start = Instant::now();
            let deadline = start + duration;
            let mut set = JoinSet::new();
            for requests in per_connection {
                set.spawn(async move {
                    let mut client = Client::connect(addr).await?;
                    let mut latencies = Vec::with_capacity(1 << 16);
                    let mut errors = 0u64;
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let status = client.send(&requests[n % requests.len()]).await?;
                        n += 1;
                        if (200..300).contains(&status) {
                            latencies.push(sent.elapsed().as_nanos() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    Ok::<_, std::io::Error>((latencies, errors))
                });
            }
            let mut all = Vec::new();
            let mut errors = 0u64;
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok(Ok((latencies, e))) => {
                        all.extend(latencies);
                        errors += e;
                    }
                    Ok(Err(_)) | Err(_) => errors += 1,
                }
            }
            let secs = start.elapsed().as_secs_f64();
            all.sort_unstable();
            Ok(Load {
                ok: all.len() as u64,
                errors,
                secs,
                p50_ms: percentile(&all, 50.0) as f64 / 1e6,
                p99_ms: percentile(&all, 99.0) as f64 / 1e6,
            })
        })
    });
    thread.join().map_err(|_| "load generator thread panicked".to_owned())?
}

/// A minimal HTTP/1.1 keep-alive client: one request at a time, `Content-Length` bodies only.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the last response's body starts and the response ends, in `buf`.
    body: (usize, usize),
}

impl Client {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(8192), body: (0, 0) })
    }

    /// Sends one request and reads its response; returns the status.
    async fn send(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.buf.drain(..self.body.1);
        self.body = (0, 0);
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, head_end, length)) = parse_head(&self.buf)? {
                while self.buf.len() < head_end + length {
                    self.fill().await?;
                }
                self.body = (head_end, head_end + length);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    fn body(&self) -> &[u8] {
        &self.buf[self.body.0..self.body.1]
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.buf.reserve(4096);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// (status, end of the head, body length) once the whole head is in `buf`.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<(u16, usize, usize)>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(|_| bad("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported by this client"));
        }
    }
    Ok(Some((status, end + 4, length)))
}

// ---------------------------------------------------------------------------------------------------
// Servers

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn stop(self, rt: &Runtime) {
        self.token.cancel();
        let _ = rt.block_on(self.handle);
    }
}

fn start_consentry(rt: &Runtime, data: PathBuf) -> Result<Running, String> {
    let config = Config { data, bootstrap_admin_key: Some(ADMIN_KEY.to_owned()), ..Config::default() };
    let opened = rt.block_on(consentry_server::open(config)).map_err(|e| format!("open: {e}"))?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let handle = rt.spawn(consentry_server::serve(opened.state, listener, token.clone()));
    Ok(Running { addr, token, handle })
}

#[derive(Deserialize)]
struct BareCheck {
    subject: String,
    purpose: String,
    category: Option<String>,
    channel: Option<String>,
    recipient: Option<String>,
}

#[derive(Serialize)]
struct BareAnswer {
    allowed: bool,
    reason: &'static str,
    event_id: Option<String>,
}

/// The baseline: parse the same JSON into a small struct, answer a small JSON.
async fn bare_check(axum::Json(c): axum::Json<BareCheck>) -> axum::Json<BareAnswer> {
    let allowed = !c.subject.is_empty()
        && c.purpose == "analytics"
        && c.category.is_some()
        && c.channel.is_some()
        && c.recipient.is_some();
    axum::Json(BareAnswer { allowed, reason: "granted", event_id: Some(format!("evt_{}", c.subject.len())) })
}

fn start_bare(rt: &Runtime) -> Result<Running, String> {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let signal = token.clone();
    let app = Router::new().route("/v1/check", post(bare_check));
    let handle = rt.spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { signal.cancelled().await }).await
    });
    Ok(Running { addr, token, handle })
}

/// Grants `analytics` to the check subjects, then verifies the check body is answered `allowed`.
fn prepare_subjects(rt: &Runtime, addr: SocketAddr, check_body: &str) -> Result<(), String> {
    rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for _ in 0..8 {
            let next = Arc::clone(&next);
            set.spawn(async move {
                let mut client = Client::connect(addr).await.map_err(|e| e.to_string())?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= GRANTED {
                        return Ok::<_, String>(());
                    }
                    let path = format!("/v1/subjects/{}/consents", check_subject(i));
                    let request = format!(
                        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{GRANT_BODY}",
                        GRANT_BODY.len()
                    );
                    let status = client.send(request.as_bytes()).await.map_err(|e| e.to_string())?;
                    if status != 201 {
                        let body = String::from_utf8_lossy(client.body()).into_owned();
                        return Err(format!("grant for subject {i}: status {status}: {body}"));
                    }
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| e.to_string())??;
        }
        let mut client = Client::connect(addr).await.map_err(|e| e.to_string())?;
        let request = requests_for(Work::Check { body: check_body }, 0, addr).remove(0);
        let status = client.send(&request).await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(client.body()).into_owned();
        if status != 200 || !body.contains(r#""allowed":true"#) {
            return Err(format!("the check answered {status} {body}, expected allowed"));
        }
        Ok(())
    })
}

/// (sum, count) of `consentry_ledger_commit_batch_events` from `/metrics`.
fn commit_batches(rt: &Runtime, addr: SocketAddr) -> Result<(f64, f64), String> {
    let text = rt.block_on(async {
        let mut client = Client::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let status = client.send(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(client.body()).into_owned();
        if status == 200 { Ok(body) } else { Err(format!("/metrics answered {status}")) }
    })?;
    let value = |name: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/metrics has no {name}"))
    };
    Ok((
        value("consentry_ledger_commit_batch_events_sum")?,
        value("consentry_ledger_commit_batch_events_count")?,
    ))
}

// ---------------------------------------------------------------------------------------------------
// Phases

struct CheckResult {
    consentry: Vec<Load>,
    bare: Vec<Load>,
    body_len: usize,
}

fn check_phase(rt: &Runtime, loadgen: &LoadGen, app: &Running) -> Result<CheckResult, String> {
    let body = check_body();
    prepare_subjects(rt, app.addr, &body)?;
    let bare = start_bare(rt)?;
    let work = Work::Check { body: &body };
    loadgen.run(app.addr, work, CHECK_CONNECTIONS, WARMUP_SECS)?;
    loadgen.run(bare.addr, work, CHECK_CONNECTIONS, WARMUP_SECS)?;
    let mut result = CheckResult { consentry: Vec::new(), bare: Vec::new(), body_len: body.len() };
    for round in 0..CHECK_ROUNDS {
        // ABBA order, so a drift in machine load does not favour one side.
        let consentry_first = round % 2 == 0;
        for side in 0..2 {
            if (side == 0) == consentry_first {
                result.consentry.push(loadgen.run(app.addr, work, CHECK_CONNECTIONS, CHECK_SECS)?);
            } else {
                result.bare.push(loadgen.run(bare.addr, work, CHECK_CONNECTIONS, CHECK_SECS)?);
            }
        }
    }
    bare.stop(rt);
    Ok(result)
}

struct WriteResult {
    rounds: Vec<Load>,
    batch_events: f64,
    commits: f64,
}

fn write_phase(rt: &Runtime, loadgen: &LoadGen, app: &Running) -> Result<WriteResult, String> {
    // The warm-up creates every writer subject's pseudonym key, so rounds measure steady-state writes.
    loadgen.run(app.addr, Work::Writes, WRITERS, WARMUP_SECS)?;
    let (sum0, count0) = commit_batches(rt, app.addr)?;
    let mut rounds = Vec::new();
    for _ in 0..WRITE_ROUNDS {
        rounds.push(loadgen.run(app.addr, Work::Writes, WRITERS, WRITE_SECS)?);
    }
    let (sum1, count1) = commit_batches(rt, app.addr)?;
    Ok(WriteResult { rounds, batch_events: sum1 - sum0, commits: count1 - count0 })
}

struct StoreResult {
    /// Events per second, per timed round.
    rates: Vec<f64>,
    batch_events: u64,
    commits: u64,
}

fn store_events(template: &NewEvent, round: usize, i: usize) -> Vec<NewEvent> {
    (0..STORE_BATCH)
        .map(|k| {
            let mut e = template.clone();
            e.action = if (round + i + k) % 2 == 0 { Action::Grant } else { Action::Withdraw };
            e
        })
        .collect()
}

fn store_phase(rt: &Runtime, dir: &Path) -> Result<StoreResult, String> {
    let events = Arc::new(AtomicU64::new(0));
    let commits = Arc::new(AtomicU64::new(0));
    let (e, c) = (Arc::clone(&events), Arc::clone(&commits));
    let store = rt
        .block_on(consentry_store::open(StoreConfig {
            data_dir: dir.to_path_buf(),
            commit_observer: Some(Arc::new(move |n| {
                e.fetch_add(n as u64, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
            })),
        }))
        .map_err(|e| format!("store open: {e}"))?;
    let template = NewEvent {
        purpose: "analytics".to_owned(),
        action: Action::Grant,
        scope: Scope::default(),
        notice: Some("analytics".to_owned()),
        notice_version: Some(1),
        notice_hash: Some("ab".repeat(32)),
        collection_point: None,
        actor: "key:key_0123456789abcdef".to_owned(),
        expires_at: None,
    };
    let subjects: Vec<SubjectId> = (0..STORE_TASKS)
        .map(|t| SubjectId::new(format!("store-{t:02}")))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let appends = STORE_EVENTS / STORE_BATCH;
    let mut rates = Vec::new();
    let (mut events0, mut commits0) = (0, 0);
    // Round 0 is the warm-up (it also creates the subjects' pseudonym keys).
    for round in 0..=STORE_ROUNDS {
        if round == 1 {
            events0 = events.load(Ordering::Relaxed);
            commits0 = commits.load(Ordering::Relaxed);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let placed = rt.block_on(async {
            let mut set = JoinSet::new();
            for subject in &subjects {
                let (store, next, subject, template) =
                    (Arc::clone(&store), Arc::clone(&next), subject.clone(), template.clone());
                set.spawn(async move {
                    let mut placed = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= appends {
                            return Ok::<_, String>(placed);
                        }
                        let batch = store_events(&template, round, i);
                        placed += store.append(&subject, batch).await.map_err(|e| e.to_string())?.len();
                    }
                });
            }
            let mut placed = 0;
            while let Some(joined) = set.join_next().await {
                placed += joined.map_err(|e| e.to_string())??;
            }
            Ok::<_, String>(placed)
        })?;
        let secs = start.elapsed().as_secs_f64();
        if placed != STORE_EVENTS {
            return Err(format!("the store placed {placed} events, expected {STORE_EVENTS}"));
        }
        if round > 0 {
            rates.push(placed as f64 / secs);
        }
    }
    rt.block_on(store.close());
    Ok(StoreResult {
        rates,
        batch_events: events.load(Ordering::Relaxed) - events0,
        commits: commits.load(Ordering::Relaxed) - commits0,
    })
}

// ---------------------------------------------------------------------------------------------------

fn run() -> Result<(), String> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let loadgen = LoadGen::detect();
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;

    let app = start_consentry(&rt, tmp.path().join("http"))?;
    let check = check_phase(&rt, &loadgen, &app)?;
    let writes = write_phase(&rt, &loadgen, &app)?;
    app.stop(&rt);
    let store = store_phase(&rt, &tmp.path().join("store"))?;

    println!("consentry-server HTTP benchmark; command: {COMMAND}");
    println!(
        "setup: loopback, {workers} CPUs, server runtime {workers} workers; load generator: {}",
        loadgen.describe()
    );

    let rate = |loads: &[Load]| loads.iter().map(Load::rate).collect::<Vec<_>>();
    let (c_rates, b_rates) = (rate(&check.consentry), rate(&check.bare));
    let (c_rate, b_rate) = (median(&c_rates), median(&b_rates));
    let ratio = c_rate / b_rate;
    let pair_ratios: Vec<f64> = c_rates.iter().zip(&b_rates).map(|(c, b)| c / b).collect();
    let c_p50 = median(&check.consentry.iter().map(|l| l.p50_ms).collect::<Vec<_>>());
    let c_p99 = median(&check.consentry.iter().map(|l| l.p99_ms).collect::<Vec<_>>());
    let b_p99 = median(&check.bare.iter().map(|l| l.p99_ms).collect::<Vec<_>>());
    let errors: u64 = check.consentry.iter().chain(&check.bare).map(|l| l.errors).sum();
    println!(
        "1. POST /v1/check, {}-byte body, Bearer key, {CHECK_CONNECTIONS} keep-alive connections, {CHECK_ROUNDS} alternating rounds x {CHECK_SECS} s (medians; errors {errors}):",
        check.body_len
    );
    println!(
        "   consentry {c_rate:>8.0} req/s  p50 {c_p50:.2} ms  p99 {c_p99:.2} ms  rounds: {}",
        list(&c_rates, 0)
    );
    println!(
        "   bare axum {b_rate:>8.0} req/s              p99 {b_p99:.2} ms  rounds: {}",
        list(&b_rates, 0)
    );
    println!(
        "   ratio consentry/bare {ratio:.2} (per round: {}); target >= {TARGET_CHECK_RATIO:.2}: {}",
        list(&pair_ratios, 2),
        verdict(ratio >= TARGET_CHECK_RATIO)
    );
    println!(
        "   consentry p99 {c_p99:.2} ms; target < {TARGET_CHECK_P99_MS:.1} ms: {}",
        verdict(c_p99 < TARGET_CHECK_P99_MS)
    );

    let w_rates = rate(&writes.rounds);
    let w_rate = median(&w_rates);
    let w_p50 = median(&writes.rounds.iter().map(|l| l.p50_ms).collect::<Vec<_>>());
    let w_p99 = median(&writes.rounds.iter().map(|l| l.p99_ms).collect::<Vec<_>>());
    let w_errors: u64 = writes.rounds.iter().map(|l| l.errors).sum();
    let batch = writes.batch_events / writes.commits.max(1.0);
    println!(
        "2. POST /v1/subjects/{{subject}}/consents, 1 change per request, {WRITERS} writers x {SUBJECTS_PER_WRITER} subjects, {WRITE_ROUNDS} rounds x {WRITE_SECS} s (errors {w_errors}):"
    );
    println!(
        "   {w_rate:.0} changes/s  p50 {w_p50:.2} ms  p99 {w_p99:.2} ms  rounds: {}; commit batch {batch:.1} events avg ({:.0} commits)",
        list(&w_rates, 0),
        writes.commits
    );
    println!(
        "   target >= {TARGET_WRITES_PER_SEC:.0} changes/s: {} ({:.2} of target)",
        verdict(w_rate >= TARGET_WRITES_PER_SEC),
        w_rate / TARGET_WRITES_PER_SEC
    );

    let s_rate = median(&store.rates);
    let s_batch = store.batch_events as f64 / store.commits.max(1) as f64;
    println!(
        "3. store append: {STORE_EVENTS} events as {} appends of {STORE_BATCH} from {STORE_TASKS} tasks, {STORE_ROUNDS} rounds:",
        STORE_EVENTS / STORE_BATCH
    );
    println!(
        "   {s_rate:.0} events/s  rounds: {}; commit batch {s_batch:.0} events avg ({} commits)",
        list(&store.rates, 0),
        store.commits
    );
    println!(
        "   target >= {TARGET_STORE_EVENTS_PER_SEC:.0} events/s: {} ({:.2} of target)",
        verdict(s_rate >= TARGET_STORE_EVENTS_PER_SEC),
        s_rate / TARGET_STORE_EVENTS_PER_SEC
    );
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    // Missed targets are reported, not failed: the run exits 0 either way.
    if let Err(e) = run() {
        println!("benchmark could not complete: {e}");
    }
}
