//! The timed phases on one node at a time: checks against the reference, durable consent writes next to
//! the floor, and the embedded store's batched append without HTTP; with the nodes and the PostgreSQL
//! database they run on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use consentry_core::{Action, NewEvent, Scope, SubjectId};
use consentry_server::Config;
use consentry_store::testing::TestDatabase;
use consentry_store::{Committed, StoreConfig};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::cpu::CpuTimes;
use crate::floor::{Floor, FloorDb};
use crate::http1::Client;
use crate::loadgen::{Load, LoadGen, Work, requests_for};
use crate::node::{Running, commit_batch_totals, post_request, start_consentry};
use crate::pgfloor::PgFloor;
use crate::{
    CHECK_CONNECTIONS, CHECK_ROUNDS, CHECK_SECS, FLOOR_SAMPLE_SECS, GRANT_BODY, GRANTED, STORE_BATCH,
    STORE_EVENTS, STORE_ROUNDS, STORE_TASKS, WARMUP_SECS, WRITE_ROUNDS, WRITE_SECS, WRITERS, check_body,
    check_subject,
};

/// A node on the embedded store in `data`, or on PostgreSQL at `database_url` when given.
pub fn start_node(rt: &Runtime, data: PathBuf, database_url: Option<&str>) -> Result<Running, String> {
    start_consentry(rt, Config { data, database_url: database_url.map(str::to_owned), ..Config::default() })
}

/// A fresh PostgreSQL database, or why there is none. Never panics: `TestDatabase::create` may (under
/// `CONSENTRY_REQUIRE_SERVICES=1`, or when `CREATE DATABASE` fails), and this benchmark reports instead.
pub fn create_database(rt: &Runtime) -> Result<TestDatabase, String> {
    let created = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(15), tokio::spawn(TestDatabase::create())).await
    });
    match created {
        Ok(Ok(Some(db))) => Ok(db),
        Ok(Ok(None)) => Err("unreachable (see the SKIPPED line on stderr)".to_owned()),
        Ok(Err(e)) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(format!("cannot create a database: {text}"))
        }
        Ok(Err(e)) => Err(format!("cannot create a database: {e}")),
        Err(_) => Err("no answer within 15 s".to_owned()),
    }
}

/// Grants `analytics` to the check subjects, then verifies the check body is answered `allowed`.
pub fn prepare_subjects(rt: &Runtime, addr: SocketAddr, check_body: &str) -> Result<(), String> {
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
                    let request = post_request(addr, &path, GRANT_BODY);
                    let status = client.send(&request).await.map_err(|e| e.to_string())?;
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
    commit_batch_totals(&text)
}

/// Loads every target with the same check, `CHECK_ROUNDS` times, in an order rotated per round so a drift
/// in machine load does not favour one target. Returns each target's rounds.
pub fn check_phase(loadgen: &LoadGen, targets: &[(&str, SocketAddr)]) -> Result<Vec<Vec<Load>>, String> {
    let body = check_body();
    let work = Work::Check { body: &body };
    for (_, addr) in targets {
        loadgen.run(*addr, work, CHECK_CONNECTIONS, WARMUP_SECS)?;
    }
    let mut loads = vec![Vec::new(); targets.len()];
    for round in 0..CHECK_ROUNDS {
        for k in 0..targets.len() {
            let t = (round + k) % targets.len();
            loads[t].push(loadgen.run(targets[t].1, work, CHECK_CONNECTIONS, CHECK_SECS)?);
        }
    }
    Ok(loads)
}

pub struct WriteResult {
    pub rounds: Vec<Load>,
    pub batch_events: f64,
    pub commits: f64,
    /// CPU used during this node's rounds, when `/proc` could be read.
    pub cpu: Option<CpuTimes>,
}

/// The floors sampled before each write round: SQLite's, and PostgreSQL's when there is a PostgreSQL node.
#[derive(Default)]
pub struct WriteFloors {
    pub sqlite: Vec<Floor>,
    pub postgres: Vec<Floor>,
}

/// Loads every node with the same writers, `WRITE_ROUNDS` times in ABBA order, each round preceded by a
/// floor sample of SQLite and, when given, of PostgreSQL (returned too); the other nodes stay idle
/// meanwhile, so each node's commit-batch counters cover its own rounds.
pub fn write_phase(
    rt: &Runtime,
    loadgen: &LoadGen,
    nodes: &[SocketAddr],
    floor: &FloorDb,
    mut pg_floor: Option<&mut PgFloor>,
) -> Result<(Vec<WriteResult>, WriteFloors), String> {
    // The warm-up creates every writer subject's pseudonym key, so rounds measure steady-state writes.
    for addr in nodes {
        loadgen.run(*addr, Work::Writes, WRITERS, WARMUP_SECS)?;
    }
    let before = nodes.iter().map(|a| commit_batches(rt, *a)).collect::<Result<Vec<_>, _>>()?;
    let mut rounds = vec![Vec::new(); nodes.len()];
    let mut floors = WriteFloors::default();
    let mut cpu = vec![Some(CpuTimes::default()); nodes.len()];
    for round in 0..WRITE_ROUNDS {
        floors.sqlite.push(floor.sample(FLOOR_SAMPLE_SECS)?);
        if let Some(pg) = pg_floor.as_deref_mut() {
            floors.postgres.push(pg.sample(rt, FLOOR_SAMPLE_SECS)?);
        }
        for k in 0..nodes.len() {
            let n = if round & 1 == 0 { k } else { nodes.len() - 1 - k };
            let cpu0 = CpuTimes::now();
            rounds[n].push(loadgen.run(nodes[n], Work::Writes, WRITERS, WRITE_SECS)?);
            cpu[n] = match (cpu[n], cpu0, CpuTimes::now()) {
                (Some(mut sum), Some(c0), Some(c1)) => {
                    sum += c1.since(c0);
                    Some(sum)
                }
                _ => None,
            };
        }
    }
    let mut results = Vec::new();
    for (((addr, rounds), (sum0, count0)), cpu) in nodes.iter().zip(rounds).zip(before).zip(cpu) {
        let (sum1, count1) = commit_batches(rt, *addr)?;
        results.push(WriteResult { rounds, batch_events: sum1 - sum0, commits: count1 - count0, cpu });
    }
    Ok((results, floors))
}

pub struct StoreResult {
    /// Events per second, per timed round.
    pub rates: Vec<f64>,
    /// The floor sample taken just before each timed round.
    pub floors: Vec<Floor>,
    pub batch_events: u64,
    pub commits: u64,
}

fn store_events(template: &NewEvent, round: usize, i: usize) -> Vec<NewEvent> {
    (0..STORE_BATCH)
        .map(|k| {
            let mut e = template.clone();
            e.action = if (round + i + k) & 1 == 0 { Action::Grant } else { Action::Withdraw };
            e
        })
        .collect()
}

/// The embedded store's own batched `append` in `dir`, `STORE_ROUNDS` timed rounds after a warm-up, each
/// preceded by a floor sample.
pub fn store_phase(rt: &Runtime, dir: &Path, floor: &FloorDb) -> Result<StoreResult, String> {
    let events = Arc::new(AtomicU64::new(0));
    let commits = Arc::new(AtomicU64::new(0));
    let (e, c) = (Arc::clone(&events), Arc::clone(&commits));
    let store = rt
        .block_on(consentry_store::open(StoreConfig {
            commit_observer: Some(Arc::new(move |n: Committed| {
                e.fetch_add(n.events as u64, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
            })),
            ..StoreConfig::embedded(dir)
        }))
        .map_err(|e| format!("store open: {e}"))?;
    let template = NewEvent {
        evidence: None,
        occurred_at: None,
        jurisdiction: None,
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
    let mut floors = Vec::new();
    let (mut events0, mut commits0) = (0, 0);
    // Round 0 is the warm-up (it also creates the subjects' pseudonym keys).
    for round in 0..=STORE_ROUNDS {
        if round == 1 {
            events0 = events.load(Ordering::Relaxed);
            commits0 = commits.load(Ordering::Relaxed);
        }
        if round > 0 {
            floors.push(floor.sample(FLOOR_SAMPLE_SECS)?);
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
        floors,
        batch_events: events.load(Ordering::Relaxed) - events0,
        commits: commits.load(Ordering::Relaxed) - commits0,
    })
}
