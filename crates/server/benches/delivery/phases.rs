//! One phase of the delivery benchmark (writes offered at a rate, then the wait for their arrivals), its
//! figures, and the destination each sink's phases run against.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::cpu::CpuTimes;
use crate::floor::FloorDb;
use crate::node::{ADMIN_KEY, Running, commit_batch_totals};
use crate::receivers::Arrivals;
use crate::writers::{LoadResult, load};
use crate::{
    BURST_GAP, DRAIN_CAP, FLOOR_SAMPLE_SECS, LATE, NO_SINK, PHASE_SECS, RATES, STALL, WARMUP_RATE,
    WARMUP_SECS,
};

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

/// How the wait for arrivals after a phase ended.
#[derive(Debug, Clone, Copy)]
pub enum DrainEnd {
    /// Everything arrived, this long after the last 201.
    Complete(Duration),
    /// Nothing arrived for `STALL`.
    Stalled,
    /// `DRAIN_CAP` passed while events were still arriving.
    Capped,
    /// No destination: nothing to wait for.
    NotExpected,
}

pub struct PhaseResult {
    pub sink: &'static str,
    pub rate: u32,
    pub load: LoadResult,
    /// Arrivals of this phase's events (duplicates included), and of others (strays).
    pub arrivals: Vec<(u64, Instant)>,
    pub strays: usize,
    pub drain: DrainEnd,
    /// (events, commits) of the ledger's group commits during the phase.
    pub commits: (f64, f64),
    /// Durable single-row transactions per second just before the phase.
    pub floor: f64,
    /// CPUs busy on average over the writes and the wait: (this process, the whole machine).
    pub cpu: Option<(f64, f64)>,
}

/// Offers `count` writes at `rate`, then waits for their arrivals when a destination gets them.
pub fn phase(
    env: &Env,
    sink: &'static str,
    rate: u32,
    secs: f64,
    first: &mut u64,
) -> Result<PhaseResult, String> {
    let expected = sink != NO_SINK;
    let count = (f64::from(rate) * secs).round() as u64;
    let floor = env.floor.sample(FLOOR_SAMPLE_SECS)?.rate;
    let from = env.arrivals.len();
    let before = commit_batches(env)?;
    let (cpu0, wall0) = (CpuTimes::now(), Instant::now());
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
    let cpu = CpuTimes::now().zip(cpu0).map(|(c1, c0)| {
        let used = c1.since(c0);
        (used.process / wall, used.machine_busy / wall)
    });
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
pub struct Summary {
    pub writes: usize,
    pub achieved: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub lost: usize,
    pub duplicates: usize,
    pub early: usize,
    pub write_p99: f64,
    pub late: usize,
    /// Runs of arrivals without a gap over `BURST_GAP`.
    pub bursts: usize,
}

pub fn summarise(p: &PhaseResult) -> Summary {
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

/// Everything a phase needs.
pub struct Env {
    pub server: Running,
    /// The writers' runtime (one thread); also used for API calls.
    pub clients: Runtime,
    pub http: reqwest::Client,
    pub requests: Arc<Vec<[Vec<u8>; 2]>>,
    pub arrivals: Arc<Arrivals>,
    pub floor: FloorDb,
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
    commit_batch_totals(&text)
}

/// Warm-up on the fresh destination, then the timed phases; the destination is deleted at the end.
pub fn sink_phases(
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
