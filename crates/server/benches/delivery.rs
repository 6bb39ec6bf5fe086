//! Delivery latency benchmark on loopback: how long after a consent write's 201 its CloudEvent arrives
//! downstream, through the transactional outbox and the dispatcher, in one bounded run:
//! 1. at a webhook receiver (axum on 127.0.0.1:0, answering 204);
//! 2. at a NATS subscriber (a core subscription on `<prefix>.>` at nats://127.0.0.1:4222) while the
//!    dispatcher publishes to JetStream; skipped with a notice when NATS or JetStream is unreachable. The
//!    stream the sink creates, `CONSENTRY_<PREFIX>`, is deleted afterwards.
//!
//! Each sink is measured at an offered load of 100 and of 1,000 changes per second, open loop: writers
//! take numbered slots, wait for each slot's scheduled time and send then, whether or not earlier requests
//! have been answered (up to `WRITERS` in flight). Every write is one change of one subject (a pool of
//! `SUBJECTS`, each alternating grant and withdraw), and its 201 names the event id `evt_<seq>`; arrivals
//! are matched to writes by the CloudEvent `id`. Latency is from the moment the writer has read the 201 to
//! the moment the receiver has the whole event; it can be negative, since the dispatcher is woken before
//! the response is written ("early" counts those). After each phase the run waits until every event has
//! arrived, arrivals stall for `STALL`, or `DRAIN_CAP` passes; what has not arrived by then is "lost".
//!
//! First comes a control: the higher rate with no destination, so the dispatcher is idle and the write
//! path alone is measured. The server runs in-process on the embedded store in a temp dir, on a runtime of
//! its own (one worker per CPU); the writers and the receivers each run on a one-thread runtime of their
//! own, so the three do not share a scheduler. Samples of durable single-row SQLite transactions (WAL,
//! `synchronous=FULL`) in the same filesystem, one at the start and one before each phase, give the fsync
//! cost of the moment; with the CPU busy per phase (this process and the whole machine), the group commits
//! of the ledger and the bursts in which events arrive, they are there for reading the latencies.
//!
//! Run with `cargo bench -p consentry-server --bench delivery`. The run exits 0 whatever it measures.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use consentry_server::Config;
use consentry_service::sinks::nats::stream_name_for;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::http1::Client;

#[path = "support/http1.rs"]
mod http1;

/// The control phase's "sink": writes at the higher rate with no destination, so the dispatcher is idle.
const NO_SINK: &str = "none";
/// A gap between two arrivals longer than this starts a new burst (about one dispatcher round each).
const BURST_GAP: Duration = Duration::from_millis(3);
const COMMAND: &str = "cargo bench -p consentry-server --bench delivery";
/// The bootstrap admin key (40 printable characters), used as the Bearer key of every request.
const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklm";
const NATS_URL: &str = "nats://127.0.0.1:4222";
const NATS_ADDR: &str = "127.0.0.1:4222";

/// Offered loads, changes per second; each sink runs them in this order.
const RATES: [u32; 2] = [100, 1000];
/// Scheduled length of each timed phase.
const PHASE_SECS: f64 = 6.0;
/// Untimed load on a fresh destination first (the sink connects, NATS creates its stream).
const WARMUP_RATE: u32 = 100;
const WARMUP_SECS: f64 = 1.0;
/// Keep-alive connections, each with at most one request in flight.
const WRITERS: usize = 64;
/// Subjects the writes cycle over; each is granted once before any destination exists (so the timed
/// writes do not create pseudonym keys) and then alternates withdraw and grant.
const SUBJECTS: u64 = 1000;
/// A send this much after its slot's scheduled time counts as late (the load was not offered in time).
const LATE: Duration = Duration::from_millis(10);
/// After a phase's last write, the wait for arrivals ends when none came for this long...
const STALL: Duration = Duration::from_secs(5);
/// ...or after this long in all.
const DRAIN_CAP: Duration = Duration::from_secs(30);
/// The fsync sample at the start, and the one before each phase.
const FLOOR_SECS: f64 = 1.0;
const FLOOR_SAMPLE_SECS: f64 = 0.3;

const GRANT_BODY: &str = r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"grant"}]}"#;
const WITHDRAW_BODY: &str =
    r#"{"notice":"analytics","changes":[{"purpose":"analytics","action":"withdraw"}]}"#;

fn subject(i: u64) -> String {
    format!("dlv-{i:05}")
}

/// The value at percentile `p` of `sorted`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// `later - earlier` in milliseconds, negative when `later` is the earlier one.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(earlier.duration_since(later).as_secs_f64() * 1e3),
    }
}

// ---------------------------------------------------------------------------------------------------
// Arrivals

#[derive(Deserialize)]
struct CloudEventId {
    id: String,
}

/// The seq of an event id `evt_<seq>`.
fn seq_of(id: &str) -> Option<u64> {
    id.strip_prefix("evt_")?.parse().ok()
}

/// Every event the receivers got, in arrival order, as (seq, when the whole event was in).
#[derive(Default)]
struct Arrivals {
    log: Mutex<Vec<(u64, Instant)>>,
    /// Bodies without a CloudEvent `id` of the form `evt_<seq>`.
    unreadable: AtomicU64,
}

impl Arrivals {
    fn record(&self, at: Instant, body: &[u8]) {
        match serde_json::from_slice::<CloudEventId>(body).ok().and_then(|e| seq_of(&e.id)) {
            Some(seq) => self.log.lock().unwrap_or_else(PoisonError::into_inner).push((seq, at)),
            None => {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The arrivals from index `from` on.
    fn since(&self, from: usize) -> Vec<(u64, Instant)> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).get(from..).unwrap_or_default().to_vec()
    }

    fn len(&self) -> usize {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

async fn hook(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> StatusCode {
    arrivals.record(Instant::now(), &body);
    StatusCode::NO_CONTENT
}

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn stop(self, rt: &Runtime) {
        self.token.cancel();
        let _ = rt.block_on(self.handle);
    }
}

/// The webhook receiver: `POST /hook` answers 204 and records the event.
fn start_receiver(rt: &Runtime, arrivals: Arc<Arrivals>) -> Result<Running, String> {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let signal = token.clone();
    let app = Router::new().route("/hook", post(hook)).with_state(arrivals);
    let handle = rt.spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { signal.cancelled().await }).await
    });
    Ok(Running { addr, token, handle })
}

/// A core NATS subscription on `subject`, spoken directly (async-nats' `Subscriber` is a `futures` Stream,
/// and `futures` is not a dependency of the workspace): returns once the server has confirmed it (PONG),
/// with the task that records each message's payload as an arrival.
async fn nats_subscribe(subject: &str, arrivals: Arc<Arrivals>) -> Result<JoinHandle<String>, String> {
    let io = |e: std::io::Error| format!("NATS subscriber: {e}");
    let mut stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(NATS_ADDR))
        .await
        .map_err(|_| "NATS subscriber: no connection within 2 s".to_owned())?
        .map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut buf = Vec::with_capacity(1 << 16);
    while !buf.windows(2).any(|w| w == b"\r\n") {
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err("NATS subscriber: the server closed the connection before INFO".to_owned());
        }
    }
    buf.clear();
    let hello = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"lang\":\"rust\",\"version\":\"bench\",\"protocol\":1,\"headers\":true,\"name\":\"consentry-delivery-bench\"}}\r\nSUB {subject} 1\r\nPING\r\n"
    );
    stream.write_all(hello.as_bytes()).await.map_err(io)?;
    loop {
        if tokio::time::timeout(Duration::from_secs(2), stream.read_buf(&mut buf))
            .await
            .map_err(|_| "NATS subscriber: no PONG within 2 s".to_owned())?
            .map_err(io)?
            == 0
        {
            return Err("NATS subscriber: the server closed the connection".to_owned());
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(err) = text.lines().find(|l| l.starts_with("-ERR")) {
            return Err(format!("NATS subscriber: {err}"));
        }
        if let Some(at) = text.find("PONG\r\n") {
            buf.drain(..at + 6);
            break;
        }
    }
    Ok(tokio::spawn(nats_read(stream, buf, arrivals)))
}

/// Reads `MSG`/`HMSG` until the connection ends; answers the server's `PING`s. Returns why it stopped.
async fn nats_read(mut stream: TcpStream, mut buf: Vec<u8>, arrivals: Arc<Arrivals>) -> String {
    let mut at = Instant::now();
    loop {
        let mut start = 0;
        let mut pongs = 0;
        while let Some(eol) = buf[start..].windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[start..start + eol]).into_owned();
            let words: Vec<&str> = line.split_whitespace().collect();
            let sizes = match words.first().copied() {
                // MSG <subject> <sid> [reply-to] <#bytes>
                Some("MSG") => words.last().and_then(|n| n.parse::<usize>().ok()).map(|n| (0, n)),
                // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
                Some("HMSG") if words.len() >= 5 => {
                    let n = |i: usize| words[i].parse::<usize>().ok();
                    n(words.len() - 2).zip(n(words.len() - 1))
                }
                Some("PING") => {
                    pongs += 1;
                    start += eol + 2;
                    continue;
                }
                Some("-ERR") => return format!("the server said {line}"),
                _ => {
                    start += eol + 2;
                    continue;
                }
            };
            let Some((headers, total)) = sizes else { return format!("cannot read {line:?}") };
            let body = start + eol + 2;
            if buf.len() < body + total + 2 {
                break;
            }
            arrivals.record(at, &buf[body + headers.min(total)..body + total]);
            start = body + total + 2;
        }
        buf.drain(..start);
        for _ in 0..pongs {
            if let Err(e) = stream.write_all(b"PONG\r\n").await {
                return format!("cannot answer PING: {e}");
            }
        }
        buf.reserve(1 << 14);
        match stream.read_buf(&mut buf).await {
            Ok(0) => return "the server closed the connection".to_owned(),
            Ok(_) => at = Instant::now(),
            Err(e) => return format!("read: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The writers

#[derive(Deserialize)]
struct Recorded {
    events: Vec<CloudEventId>,
}

/// One answered write.
#[derive(Debug, Clone, Copy)]
struct Write {
    seq: u64,
    /// When its slot was due, when it was sent, when its 201 had been read.
    due: Instant,
    sent: Instant,
    done: Instant,
}

#[derive(Default)]
struct LoadResult {
    writes: Vec<Write>,
    /// Non-201 answers; the first one's text.
    errors: u64,
    first_error: Option<String>,
    start: Option<Instant>,
}

/// Each subject's grant and withdraw requests.
fn requests(addr: SocketAddr) -> Vec<[Vec<u8>; 2]> {
    let build = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    (0..SUBJECTS)
        .map(|s| {
            let path = format!("/v1/subjects/{}/consents", subject(s));
            [build(&path, GRANT_BODY), build(&path, WITHDRAW_BODY)]
        })
        .collect()
}

/// Writes slots `first .. first + count` (global numbering: slot `g` changes subject `g % SUBJECTS`, a
/// grant on even passes over the subjects and a withdrawal on odd ones), slot `k` of this run due `k / rate`
/// seconds after the start; `rate` `None` sends back to back (closed loop).
async fn load(
    addr: SocketAddr,
    requests: Arc<Vec<[Vec<u8>; 2]>>,
    first: u64,
    count: u64,
    rate: Option<f64>,
) -> Result<LoadResult, String> {
    let start = Instant::now() + Duration::from_millis(20);
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..WRITERS {
        let (next, requests) = (Arc::clone(&next), Arc::clone(&requests));
        set.spawn(async move {
            let mut client = Client::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            let mut out = LoadResult::default();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    return Ok::<_, String>(out);
                }
                let due = match rate {
                    Some(r) => start + Duration::from_secs_f64(k as f64 / r),
                    None => start,
                };
                tokio::time::sleep_until(due.into()).await;
                let g = first + k;
                let request = &requests[(g % SUBJECTS) as usize][((g / SUBJECTS) & 1) as usize];
                let sent = Instant::now();
                let status = client.send(request).await.map_err(|e| format!("write: {e}"))?;
                let done = Instant::now();
                let seq = (status == 201)
                    .then(|| serde_json::from_slice::<Recorded>(client.body()).ok())
                    .flatten()
                    .and_then(|r| r.events.first().and_then(|e| seq_of(&e.id)));
                match seq {
                    Some(seq) => out.writes.push(Write { seq, due, sent, done }),
                    None => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            let body = String::from_utf8_lossy(client.body()).into_owned();
                            out.first_error = Some(format!("{status} {body}"));
                        }
                    }
                }
            }
        });
    }
    let mut all = LoadResult { start: Some(start), ..LoadResult::default() };
    while let Some(joined) = set.join_next().await {
        let part = joined.map_err(|e| e.to_string())??;
        all.writes.extend(part.writes);
        all.errors += part.errors;
        all.first_error = all.first_error.or(part.first_error);
    }
    all.writes.sort_by_key(|w| w.seq);
    Ok(all)
}

// ---------------------------------------------------------------------------------------------------
// Phases

/// How the wait for arrivals after a phase ended.
#[derive(Debug, Clone, Copy)]
enum DrainEnd {
    /// Everything arrived, this long after the last 201.
    Complete(Duration),
    /// Nothing arrived for `STALL`.
    Stalled,
    /// `DRAIN_CAP` passed while events were still arriving.
    Capped,
    /// No destination: nothing to wait for.
    NotExpected,
}

struct PhaseResult {
    sink: &'static str,
    rate: u32,
    load: LoadResult,
    /// Arrivals of this phase's events (duplicates included), and of others (strays).
    arrivals: Vec<(u64, Instant)>,
    strays: usize,
    drain: DrainEnd,
    /// (events, commits) of the ledger's group commits during the phase.
    commits: (f64, f64),
    /// Durable single-row transactions per second just before the phase.
    floor: f64,
    /// CPUs busy on average over the writes and the wait: (this process, the whole machine).
    cpu: Option<(f64, f64)>,
}

/// Offers `count` writes at `rate`, then waits for their arrivals when a destination gets them.
fn phase(
    env: &Env,
    sink: &'static str,
    rate: u32,
    secs: f64,
    first: &mut u64,
) -> Result<PhaseResult, String> {
    let expected = sink != NO_SINK;
    let count = (f64::from(rate) * secs).round() as u64;
    let floor = env.floor.sample(FLOOR_SAMPLE_SECS)?.0;
    let from = env.arrivals.len();
    let before = commit_batches(env)?;
    let (cpu0, wall0) = (cpu_times(), Instant::now());
    let load = env.clients.block_on(load(
        env.server.addr,
        Arc::clone(&env.requests),
        *first,
        count,
        Some(f64::from(rate)),
    ))?;
    *first += count;
    let mut missing: HashSet<u64> = load.writes.iter().map(|w| w.seq).collect();
    let last_done = load.writes.iter().map(|w| w.done).max().unwrap_or_else(Instant::now);
    let (mut seen, mut last_progress) = (from, Instant::now());
    let drain = loop {
        if !expected {
            break DrainEnd::NotExpected;
        }
        let new = env.arrivals.since(seen);
        seen += new.len();
        if !new.is_empty() {
            last_progress = Instant::now();
        }
        for (seq, _) in &new {
            missing.remove(seq);
        }
        if missing.is_empty() {
            let at = env.arrivals.since(from).iter().map(|(_, t)| *t).max().unwrap_or(last_done);
            break DrainEnd::Complete(at.saturating_duration_since(last_done));
        }
        if last_progress.elapsed() > STALL {
            break DrainEnd::Stalled;
        }
        if last_done.elapsed() > DRAIN_CAP {
            break DrainEnd::Capped;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_times().zip(cpu0).map(|((p1, m1), (p0, m0))| ((p1 - p0) / wall, (m1 - m0) / wall));
    let after = commit_batches(env)?;
    let ours: HashSet<u64> = load.writes.iter().map(|w| w.seq).collect();
    let (arrivals, strays): (Vec<_>, Vec<_>) =
        env.arrivals.since(from).into_iter().partition(|(seq, _)| ours.contains(seq));
    Ok(PhaseResult {
        sink,
        rate,
        load,
        arrivals,
        strays: strays.len(),
        drain,
        commits: (after.0 - before.0, after.1 - before.1),
        floor,
        cpu,
    })
}

/// The figures of one phase.
struct Summary {
    writes: usize,
    achieved: f64,
    p50: f64,
    p99: f64,
    max: f64,
    lost: usize,
    duplicates: usize,
    early: usize,
    write_p99: f64,
    late: usize,
    /// Runs of arrivals without a gap over `BURST_GAP`.
    bursts: usize,
}

fn summarise(p: &PhaseResult) -> Summary {
    let mut first: HashMap<u64, Instant> = HashMap::new();
    for (seq, at) in &p.arrivals {
        first.entry(*seq).and_modify(|t| *t = (*t).min(*at)).or_insert(*at);
    }
    let mut latencies: Vec<f64> =
        p.load.writes.iter().filter_map(|w| first.get(&w.seq).map(|at| signed_ms(*at, w.done))).collect();
    latencies.sort_by(f64::total_cmp);
    let mut write_ms: Vec<f64> = p.load.writes.iter().map(|w| signed_ms(w.done, w.sent)).collect();
    write_ms.sort_by(f64::total_cmp);
    let span = match (p.load.start, p.load.writes.iter().map(|w| w.done).max()) {
        (Some(s), Some(e)) => e.saturating_duration_since(s).as_secs_f64(),
        _ => f64::NAN,
    };
    let mut times: Vec<Instant> = p.arrivals.iter().map(|(_, t)| *t).collect();
    times.sort_unstable();
    let bursts = times.windows(2).filter(|w| w[1].saturating_duration_since(w[0]) > BURST_GAP).count()
        + usize::from(!times.is_empty());
    Summary {
        bursts,
        writes: p.load.writes.len(),
        achieved: p.load.writes.len() as f64 / span,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(f64::NAN),
        lost: p.load.writes.len() - first.len(),
        duplicates: p.arrivals.len() - first.len(),
        early: latencies.iter().filter(|l| **l < 0.0).count(),
        write_p99: percentile(&write_ms, 99.0),
        late: p.load.writes.iter().filter(|w| w.sent.saturating_duration_since(w.due) > LATE).count(),
    }
}

/// CPU seconds so far: this process (all threads) and the whole machine's busy time (all CPUs), from
/// `/proc` (clock ticks of 1/100 s); `None` where it cannot be read.
fn cpu_times() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    let process = (ticks(14)? + ticks(15)?) / 100.0;
    let all = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> =
        all.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal.
    let total: f64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3)? + cpu.get(4)?;
    Some((process, (total - idle) / 100.0))
}

// ---------------------------------------------------------------------------------------------------
// The server and its API

/// Everything a phase needs.
struct Env {
    server: Running,
    /// The writers' runtime (one thread); also used for API calls.
    clients: Runtime,
    http: reqwest::Client,
    requests: Arc<Vec<[Vec<u8>; 2]>>,
    arrivals: Arc<Arrivals>,
    floor: Floor,
}

fn start_consentry(rt: &Runtime, data: &Path) -> Result<Running, String> {
    let config = Config {
        data: data.to_owned(),
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

/// `POST /v1/destinations` with `body`; returns the new destination's id.
fn create_destination(env: &Env, body: serde_json::Value) -> Result<String, String> {
    let url = format!("http://{}/v1/destinations", env.server.addr);
    env.clients.block_on(async {
        let response = env
            .http
            .post(url)
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("create destination: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("create destination: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("create destination answered {status}: {text}"));
        }
        let out: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        out.get("id").and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| format!("no id in {text}"))
    })
}

fn delete_destination(env: &Env, id: &str) -> Result<(), String> {
    let url = format!("http://{}/v1/destinations/{id}", env.server.addr);
    env.clients.block_on(async {
        let response = env
            .http
            .delete(url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .map_err(|e| format!("delete destination: {e}"))?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(()),
            s => Err(format!("delete destination answered {s}")),
        }
    })
}

/// (sum, count) of `consentry_ledger_commit_batch_events` from `/metrics`.
fn commit_batches(env: &Env) -> Result<(f64, f64), String> {
    let url = format!("http://{}/metrics", env.server.addr);
    let text = env.clients.block_on(async {
        let response = env.http.get(url).send().await.map_err(|e| format!("/metrics: {e}"))?;
        response.text().await.map_err(|e| format!("/metrics: {e}"))
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

/// Warm-up on the fresh destination, then the timed phases; the destination is deleted at the end.
fn sink_phases(
    env: &Env,
    sink: &'static str,
    destination: serde_json::Value,
    first: &mut u64,
) -> Result<Vec<PhaseResult>, String> {
    let id = create_destination(env, destination)?;
    let mut run = || -> Result<Vec<PhaseResult>, String> {
        let warm = phase(env, sink, WARMUP_RATE, WARMUP_SECS, first)?;
        let s = summarise(&warm);
        if s.lost > 0 {
            return Err(format!(
                "{} of {} warm-up events did not arrive ({:?})",
                s.lost, s.writes, warm.drain
            ));
        }
        RATES.iter().map(|rate| phase(env, sink, *rate, PHASE_SECS, first)).collect()
    };
    let result = run();
    let deleted = delete_destination(env, &id);
    let phases = result?;
    deleted?;
    Ok(phases)
}

/// Whether NATS with JetStream answers at `NATS_URL` (no stream stores `<prefix>.>` yet, the expected
/// answer); `Err` says why not.
async fn nats_available(prefix: &str) -> Result<async_nats::jetstream::Context, String> {
    use async_nats::jetstream::context::GetStreamByNameErrorKind;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(NATS_URL)
        .await
        .map_err(|e| format!("cannot connect to {NATS_URL}: {}", e.kind()))?;
    let js = async_nats::jetstream::new(client);
    match tokio::time::timeout(Duration::from_secs(3), js.stream_by_subject(format!("{prefix}.>"))).await {
        Err(_) => Err("JetStream did not answer within 3 s".to_owned()),
        Ok(Err(e)) if matches!(e.kind(), GetStreamByNameErrorKind::NotFound) => Ok(js),
        Ok(Err(e)) => Err(format!("JetStream is not available: {e}")),
        Ok(Ok(name)) => Err(format!("the stream {name} already stores {prefix}.>")),
    }
}

/// A SQLite database (WAL, `synchronous=FULL`) in the data folder's filesystem, for samples of durable
/// single-row transactions per second: the fsync cost of the moment.
struct Floor {
    conn: rusqlite::Connection,
}

impl Floor {
    fn open(dir: &Path) -> Result<Self, String> {
        let sql = |e: rusqlite::Error| format!("floor: {e}");
        std::fs::create_dir_all(dir).map_err(|e| format!("floor folder: {e}"))?;
        let conn = rusqlite::Connection::open(dir.join("floor.sqlite")).map_err(sql)?;
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        conn.execute_batch("PRAGMA synchronous = FULL; CREATE TABLE rows (id INTEGER PRIMARY KEY, p BLOB);")
            .map_err(sql)?;
        Ok(Self { conn })
    }

    /// (transactions per second, commit p50 in ms) over `secs`.
    fn sample(&self, secs: f64) -> Result<(f64, f64), String> {
        let sql = |e: rusqlite::Error| format!("floor: {e}");
        let mut insert = self.conn.prepare_cached("INSERT INTO rows (p) VALUES (?1)").map_err(sql)?;
        let payload = vec![0x5a_u8; 320];
        let mut commits = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < secs {
            let t = Instant::now();
            insert.execute([&payload]).map_err(sql)?;
            commits.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let rate = commits.len() as f64 / start.elapsed().as_secs_f64();
        commits.sort_by(f64::total_cmp);
        Ok((rate, percentile(&commits, 50.0)))
    }
}

// ---------------------------------------------------------------------------------------------------

fn runtime(threads: usize, name: &str) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("{name} runtime: {e}"))
}

fn run() -> Result<(), String> {
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let server_rt = runtime(cpus, "server")?;
    let clients = runtime(1, "writers")?;
    let receivers = runtime(1, "receivers")?;
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;

    let floor_db = Floor::open(&tmp.path().join("floor"))?;
    let floor = floor_db.sample(FLOOR_SECS)?;
    let server = start_consentry(&server_rt, &tmp.path().join("data"))?;
    let arrivals = Arc::new(Arrivals::default());
    let receiver = start_receiver(&receivers, Arc::clone(&arrivals))?;
    let env = Env {
        requests: Arc::new(requests(server.addr)),
        server,
        clients,
        http: reqwest::Client::new(),
        arrivals: Arc::clone(&arrivals),
        floor: floor_db,
    };

    // Every subject granted once, before any destination exists: the timed writes create no keys.
    let pre = env.clients.block_on(load(env.server.addr, Arc::clone(&env.requests), 0, SUBJECTS, None))?;
    if pre.errors > 0 {
        return Err(format!("preparing the subjects: {}", pre.first_error.unwrap_or_default()));
    }
    let mut first = SUBJECTS;

    // The control: the higher rate with no destination, the dispatcher idle.
    let mut phases = vec![phase(&env, NO_SINK, RATES[RATES.len() - 1], PHASE_SECS, &mut first)?];
    let webhook = serde_json::json!({
        "name": "bench webhook", "kind": "webhook",
        "url": format!("http://{}/hook", receiver.addr), "event_types": ["consent.*"],
    });
    let webhook_result = sink_phases(&env, "webhook", webhook, &mut first);
    let mut problems = Vec::new();
    match webhook_result {
        Ok(p) => phases.extend(p),
        Err(e) => problems.push(format!("webhook: could not complete: {e}")),
    }

    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
            ^ std::process::id();
    let prefix = format!("cbench.delivery{nonce:08x}");
    let stream = stream_name_for(&prefix);
    let mut nats_note = format!("NATS: {NATS_URL}, prefix {prefix}, stream {stream}");
    match receivers.block_on(nats_available(&prefix)) {
        Err(why) => nats_note = format!("NATS: SKIPPED, {why}"),
        Ok(js) => {
            let subscribed =
                receivers.block_on(nats_subscribe(&format!("{prefix}.>"), Arc::clone(&arrivals)));
            match subscribed {
                Err(why) => nats_note = format!("NATS: SKIPPED, {why}"),
                Ok(reader) => {
                    let nats = serde_json::json!({
                        "name": "bench nats", "kind": "nats", "url": NATS_URL,
                        "subject": prefix, "event_types": ["consent.*"],
                    });
                    match sink_phases(&env, "nats", nats, &mut first) {
                        Ok(p) => phases.extend(p),
                        Err(e) => problems.push(format!("nats: could not complete: {e}")),
                    }
                    reader.abort();
                    let deleted = receivers.block_on(js.delete_stream(&stream));
                    nats_note.push_str(match deleted {
                        Ok(_) => " (deleted afterwards)",
                        Err(_) => " (could not be deleted; it may not have been created)",
                    });
                }
            }
        }
    }
    let Env { server, .. } = env;
    server.stop(&server_rt);
    receiver.stop(&receivers);

    // The report.
    println!("consentry-server delivery benchmark; command: {COMMAND}");
    println!(
        "setup: loopback, {cpus} CPUs; server in-process on the embedded store (temp dir), runtime {cpus} workers; {WRITERS} open-loop writers on 1 thread; receivers on 1 thread; {SUBJECTS} subjects, 1 change per write, alternating grant/withdraw; {PHASE_SECS:.0} s per phase after a {WARMUP_SECS:.0} s warm-up per destination"
    );
    println!("{nats_note}");
    println!("fsync floor: {:.0} durable single-row SQLite tx/s, commit p50 {:.2} ms", floor.0, floor.1);
    println!(
        "latency = writer has read the 201 -> receiver has the event (matched by CloudEvent id); lost = not arrived when the wait ended"
    );
    println!(
        "{:<7} {:>7} {:>8} {:>5} {:>7} {:>7} {:>7} {:>4} {:>3} {:>5} {:>7} {:>5} {:>7} {:>5} {:>6} {:>5} {:>7} {:>9}  drain",
        "sink",
        "offered",
        "achieved",
        "writes",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup",
        "early",
        "w99 ms",
        "late",
        "commits",
        "ev/c",
        "bursts",
        "ev/b",
        "fsync/s",
        "cpu p/m"
    );
    for p in &phases {
        let s = summarise(p);
        let drain = match p.drain {
            DrainEnd::Complete(d) => format!("complete {:.0} ms after the last 201", d.as_secs_f64() * 1e3),
            DrainEnd::Stalled => format!("stalled ({} s without an arrival)", STALL.as_secs()),
            DrainEnd::Capped => format!("cut at {} s, still arriving", DRAIN_CAP.as_secs()),
            DrainEnd::NotExpected => "no destination (control)".to_owned(),
        };
        let delivery = if p.sink == NO_SINK {
            format!("{:>7} {:>7} {:>7} {:>4} {:>3} {:>5}", "-", "-", "-", "-", "-", "-")
        } else {
            format!(
                "{:>7.2} {:>7.2} {:>7.2} {:>4} {:>3} {:>5}",
                s.p50, s.p99, s.max, s.lost, s.duplicates, s.early
            )
        };
        println!(
            "{:<7} {:>5}/s {:>6.1}/s {:>6} {delivery} {:>7.2} {:>5} {:>7.0} {:>5.1} {:>6} {:>5.1} {:>7.0} {:>9}  {drain}",
            p.sink,
            p.rate,
            s.achieved,
            s.writes,
            s.write_p99,
            s.late,
            p.commits.1,
            p.commits.0 / p.commits.1.max(1.0),
            s.bursts,
            p.arrivals.len() as f64 / s.bursts.max(1) as f64,
            p.floor,
            p.cpu.map_or_else(|| "-".to_owned(), |(p, m)| format!("{p:.2}/{m:.2}")),
        );
        if p.load.errors > 0 || p.strays > 0 {
            println!(
                "        write errors {} (first: {}); arrivals of other events {}",
                p.load.errors,
                p.load.first_error.as_deref().unwrap_or("-"),
                p.strays
            );
        }
    }
    println!(
        "columns: w99 = write (request -> 201) p99; late = sends > {} ms behind schedule; commits, ev/c = ledger group commits in the phase, events per commit; bursts, ev/b = runs of arrivals without a {} ms gap (~ dispatcher rounds), events per run; fsync/s = the floor sampled just before the phase; cpu p/m = CPUs busy in this process / the whole machine",
        LATE.as_millis(),
        BURST_GAP.as_millis()
    );
    let unreadable = arrivals.unreadable.load(Ordering::Relaxed);
    if unreadable > 0 {
        println!("{unreadable} received bodies had no evt_<seq> id");
    }
    for p in &problems {
        println!("{p}");
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    // The run exits 0 whatever it measures.
    if let Err(e) = run() {
        println!("benchmark could not complete: {e}");
    }
}
