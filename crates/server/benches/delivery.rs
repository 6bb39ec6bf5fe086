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
//!
//! This file holds the scenario's figures and runs the phases in order; `delivery/` holds the receivers,
//! the writers, the phases and the report, `support/` what the benchmarks share (the HTTP/1.1 client, the
//! nodes, the floor, CPU accounting).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use consentry_server::Config;
use consentry_service::sinks::nats::stream_name_for;
use tokio::runtime::Runtime;

use crate::floor::FloorDb;
use crate::node::start_consentry;
use crate::phases::{Env, phase, sink_phases};
use crate::receivers::{Arrivals, nats_available, nats_subscribe, start_receiver};
use crate::writers::{load, requests};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/http1.rs"]
mod http1;
#[path = "support/node.rs"]
mod node;
#[path = "delivery/phases.rs"]
mod phases;
#[path = "delivery/receivers.rs"]
mod receivers;
#[path = "delivery/report.rs"]
mod report;
#[path = "delivery/writers.rs"]
mod writers;

/// The control phase's "sink": writes at the higher rate with no destination, so the dispatcher is idle.
const NO_SINK: &str = "none";
/// A gap between two arrivals longer than this starts a new burst (about one dispatcher round each).
const BURST_GAP: Duration = Duration::from_millis(3);
const COMMAND: &str = "cargo bench -p consentry-server --bench delivery";
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

    let floor_db = FloorDb::open(&tmp.path().join("floor"))?;
    let floor = floor_db.sample(FLOOR_SECS)?;
    // The receivers and the broker listen on loopback, which a fresh install refuses as a destination.
    let config = Config {
        data: tmp.path().join("data"),
        allow_private_destinations: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
        ..Config::default()
    };
    let server = start_consentry(&server_rt, config)?;
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

    let measured = report::Measured {
        cpus,
        nats_note,
        floor,
        phases,
        unreadable: arrivals.unreadable.load(Ordering::Relaxed),
        problems,
    };
    report::print(measured, started);
    Ok(())
}

fn main() {
    // The run exits 0 whatever it measures.
    if let Err(e) = run() {
        println!("benchmark could not complete: {e}");
    }
}
