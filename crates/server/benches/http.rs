//! HTTP benchmark on loopback, the embedded store and PostgreSQL side by side, in one run:
//! 0. the single-transaction floor: durable one-row transactions per second of SQLite (WAL,
//!    `synchronous=FULL`, one writer) on a file in the same filesystem as the data folders, measured for
//!    2 s at the start, then in short samples just before every timed write and append round, so each
//!    rate is compared with the floor of the moment (fsync latency here swings with other disk traffic);
//! 1. `POST /v1/check` on a node on the embedded store, a node on PostgreSQL and a bare axum handler that
//!    parses the same JSON, in rotating rounds under the same load;
//! 2. durable consent writes, `POST /v1/subjects/{subject}/consents`, from 64 concurrent writers, on the
//!    embedded node and the PostgreSQL node in alternating rounds, as rates and multiples of the floor
//!    (the PostgreSQL node's also of PostgreSQL's own one-row-per-transaction floor, sampled alike);
//! 3. the embedded store's own batched `append` path, without HTTP;
//! 4. the lag between two nodes on one PostgreSQL database: a write on node A, then `POST /v1/check` on
//!    node B until B agrees, the answer flipping on every write.
//!
//! Run with `cargo bench -p consentry-server --bench http`. The load generator is `wrk` (scripts
//! `benches/post.lua` and `benches/consents.lua`) when it is installed, otherwise an in-process HTTP/1.1
//! keep-alive client on its own thread; `CONSENTRY_BENCH_LOADGEN=inprocess` forces the latter.
//! `CONSENTRY_BENCH_SERVER_THREADS` sets the server runtime's workers (default: one per CPU).
//! `CONSENTRY_BENCH_PHASES` runs only some of phases 1-4, a comma-separated list of `checks`, `writes`,
//! `store` and `lag` (default all; the floor is always measured), e.g. `CONSENTRY_BENCH_PHASES=writes`.
//! PostgreSQL is the test server (`CONSENTRY_TEST_DATABASE_URL`, default 127.0.0.1:5432); each part gets a
//! fresh database, dropped afterwards. When it is unreachable the PostgreSQL parts print a skip notice.
//! Figures are medians over rounds; the machine is shared, so read the ratios first. The run exits 0
//! whether targets are met or not.
//!
//! This file holds the scenario's figures and runs the phases in order; `http/` holds the load generator,
//! the reference handler, the phases, the lag measurement and the report, `support/` what the benchmarks
//! share (the HTTP/1.1 client, the nodes, the floor, CPU accounting).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;
use crate::floor::FloorDb;
use crate::lag::lag_phase;
use crate::loadgen::LoadGen;
use crate::pgfloor::PgFloor;
use crate::phases::{
    WriteFloors, check_phase, create_database, prepare_subjects, start_node, store_phase, write_phase,
};
use crate::reference::start_bare;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/http1.rs"]
mod http1;
#[path = "http/lag.rs"]
mod lag;
#[path = "http/loadgen.rs"]
mod loadgen;
#[path = "support/node.rs"]
mod node;
#[path = "http/pgfloor.rs"]
mod pgfloor;
#[path = "http/phases.rs"]
mod phases;
#[path = "http/reference.rs"]
mod reference;
#[path = "http/report.rs"]
mod report;

const COMMAND: &str = "cargo bench -p consentry-server --bench http";

const CHECK_CONNECTIONS: usize = 32;
/// Rounds of the check phase; each round runs every target once, in an order rotated per round.
const CHECK_ROUNDS: usize = 6;
const CHECK_SECS: u64 = 3;
/// Subjects granted `analytics` before the check phase.
const GRANTED: usize = 1000;

const WRITERS: usize = 64;
/// Subjects per writer; writer `w` cycles over `writer-{w*N}` .. `writer-{w*N + N-1}`.
const SUBJECTS_PER_WRITER: usize = 16;
/// Rounds of the write phase; each round runs every node once, in ABBA order.
const WRITE_ROUNDS: usize = 4;
const WRITE_SECS: u64 = 3;

const STORE_ROUNDS: usize = 3;
const STORE_EVENTS: usize = 200_000;
const STORE_BATCH: usize = 100;
const STORE_TASKS: usize = 32;

const WARMUP_SECS: u64 = 1;

/// How long the first measurement of the single-transaction floor lasts.
const FLOOR_SECS: f64 = 2.0;
/// How long each floor sample before a timed write or append round lasts.
const FLOOR_SAMPLE_SECS: f64 = 0.5;

/// Writes on node A, each followed by polling node B until it agrees.
const LAG_WRITES: usize = 200;
/// Subjects the lag writes cycle over; each pass alternates grant and withdraw, so every write flips B's answer.
const LAG_SUBJECTS: usize = 8;
/// A write not seen on B within this long counts as a timeout (well over the 1 s catch-up interval).
const LAG_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole lag phase stops after this long, however many writes were done.
const LAG_BUDGET: Duration = Duration::from_secs(45);

const TARGET_CHECK_RATIO: f64 = 0.70;
const TARGET_CHECK_P99_MS: f64 = 2.0;
const TARGET_WRITES_PER_SEC: f64 = 50_000.0;
const TARGET_STORE_EVENTS_PER_SEC: f64 = 200_000.0;
/// Durable writes through group commit, as a multiple of the single-transaction floor.
const TARGET_FLOOR_MULTIPLE: f64 = 5.0;
/// The PostgreSQL node's durable writes, as a multiple of PostgreSQL's own single-transaction floor.
const TARGET_PG_FLOOR_MULTIPLE: f64 = 3.0;
/// The write phase's p99 latency target.
const TARGET_WRITE_P99_MS: f64 = 50.0;
/// Checks are answered from memory: the PostgreSQL node should be within this fraction of the embedded one.
const CHECK_ALIKE_TOLERANCE: f64 = 0.15;
/// Every write visible on every node within a second (the cluster's promise, `tests/it/cluster.rs`).
const TARGET_LAG_P99_MS: f64 = 1000.0;

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

/// Which of phases 1-4 this run measures.
#[derive(Clone, Copy)]
pub struct Phases {
    pub checks: bool,
    pub writes: bool,
    pub store: bool,
    pub lag: bool,
}

impl Phases {
    /// From `CONSENTRY_BENCH_PHASES` (default: all).
    fn from_env() -> Result<Self, String> {
        let Ok(list) = std::env::var("CONSENTRY_BENCH_PHASES") else {
            return Ok(Phases { checks: true, writes: true, store: true, lag: true });
        };
        let mut phases = Phases { checks: false, writes: false, store: false, lag: false };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "checks" => phases.checks = true,
                "writes" => phases.writes = true,
                "store" => phases.store = true,
                "lag" => phases.lag = true,
                other => {
                    return Err(format!(
                        "CONSENTRY_BENCH_PHASES: unknown phase {other:?} (checks, writes, store, lag)"
                    ));
                }
            }
        }
        Ok(phases)
    }
}

fn run() -> Result<(), String> {
    let started = Instant::now();
    let phases = Phases::from_env()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = match std::env::var("CONSENTRY_BENCH_SERVER_THREADS") {
        Ok(v) => v.trim().parse().map_err(|e| format!("CONSENTRY_BENCH_SERVER_THREADS={v:?}: {e}"))?,
        Err(_) => cpus,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let loadgen = LoadGen::detect();
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;

    // 0. The floor, first before anything else of this run; sampled again around the timed rounds.
    let floor_db = FloorDb::open(&tmp.path().join("floor"))?;
    let cpu0 = CpuTimes::now();
    let floor_start = floor_db.sample(FLOOR_SECS)?;
    // The floor itself is one thread mostly waiting on fsync: busy CPU beyond it is other processes'.
    let background = CpuTimes::now().zip(cpu0).map(|(c1, c0)| c1.since(c0));

    // The nodes: embedded, and PostgreSQL when reachable.
    let mut skip: Option<String> = None;
    let database = create_database(&rt).map_err(|why| skip = Some(why)).ok();
    let embedded = start_node(&rt, tmp.path().join("embedded"), None)?;
    let postgres = match &database {
        Some(db) => start_node(&rt, tmp.path().join("postgres"), Some(&db.url))
            .map_err(|e| skip = Some(format!("a node on it cannot start: {e}")))
            .ok(),
        None => None,
    };
    let mut nodes = vec![("embedded", embedded.addr)];
    if let Some(p) = &postgres {
        nodes.push(("postgres", p.addr));
    }

    // 1. Checks.
    let body = check_body();
    let mut target_names: Vec<&str> = nodes.iter().map(|(name, _)| *name).collect();
    target_names.push("bare axum");
    let checks = if phases.checks {
        for (_, addr) in &nodes {
            prepare_subjects(&rt, *addr, &body)?;
        }
        let bare = start_bare(&rt)?;
        let mut targets = nodes.clone();
        targets.push(("bare axum", bare.addr));
        let checks = check_phase(&loadgen, &targets)?;
        bare.stop(&rt);
        Some(checks)
    } else {
        None
    };

    // 2. Writes.
    let node_addrs: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();
    let (writes, write_floors, pg_settings) = if phases.writes {
        let mut pg_floor = match (&database, &postgres) {
            (Some(db), Some(_)) => Some(PgFloor::open(&rt, &db.url)?),
            _ => None,
        };
        let pg_settings = pg_floor.as_ref().map(|f| f.settings.clone());
        let (writes, floors) = write_phase(&rt, &loadgen, &node_addrs, &floor_db, pg_floor.as_mut())?;
        (Some(writes), floors, pg_settings)
    } else {
        (None, WriteFloors::default(), None)
    };
    embedded.stop(&rt);
    if let Some(p) = postgres {
        p.stop(&rt);
    }
    drop(database);

    // 3. The store's batched append.
    let store =
        if phases.store { Some(store_phase(&rt, &tmp.path().join("store"), &floor_db)?) } else { None };

    // 4. Lag between two nodes, on a database of their own.
    let lag = match (&skip, phases.lag) {
        (None, true) => {
            Some(create_database(&rt).and_then(|db| lag_phase(&rt, &db.url, &tmp.path().join("lag"))))
        }
        _ => None,
    };

    let measured = report::Measured {
        phases,
        cpus,
        workers,
        loadgen: loadgen.describe(),
        skip,
        floor_start,
        background,
        check_body_bytes: body.len(),
        nodes: nodes.iter().map(|(name, _)| *name).collect(),
        targets: target_names,
        checks,
        writes,
        write_floors,
        pg_settings,
        store,
        lag,
    };
    report::print(measured, started);
    Ok(())
}

fn main() {
    // Missed targets are reported, not failed: the run exits 0 either way.
    if let Err(e) = run() {
        println!("benchmark could not complete: {e}");
    }
}
