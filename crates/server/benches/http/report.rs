//! The HTTP benchmark's report: every figure of one run, read against its targets, the reference and the
//! floor of the moment.

use std::time::Instant;

use consentry_server::Config;

use crate::cpu::CpuTimes;
use crate::floor::{FLOOR_ROW_BYTES, Floor};
use crate::lag::LagResult;
use crate::loadgen::Load;
use crate::phases::{StoreResult, WriteFloors, WriteResult};
use crate::{
    CHECK_ALIKE_TOLERANCE, CHECK_CONNECTIONS, CHECK_ROUNDS, CHECK_SECS, COMMAND, FLOOR_SAMPLE_SECS,
    FLOOR_SECS, LAG_SUBJECTS, LAG_WRITES, Phases, STORE_BATCH, STORE_EVENTS, STORE_ROUNDS, STORE_TASKS,
    SUBJECTS_PER_WRITER, TARGET_CHECK_P99_MS, TARGET_CHECK_RATIO, TARGET_FLOOR_MULTIPLE, TARGET_LAG_P99_MS,
    TARGET_PG_FLOOR_MULTIPLE, TARGET_STORE_EVENTS_PER_SEC, TARGET_WRITE_P99_MS, TARGET_WRITES_PER_SEC,
    WRITE_ROUNDS, WRITE_SECS, WRITERS,
};

/// Everything one run measured.
pub struct Measured {
    pub phases: Phases,
    pub cpus: usize,
    /// The server runtime's worker threads.
    pub workers: usize,
    /// The load generator, described.
    pub loadgen: String,
    /// Why the PostgreSQL parts were skipped, when they were.
    pub skip: Option<String>,
    /// The floor measured first, before anything else of the run.
    pub floor_start: Floor,
    /// CPU busy while the start floor was measured: beyond this process's, other processes' load.
    pub background: Option<CpuTimes>,
    pub check_body_bytes: usize,
    /// The names of the nodes, one per entry of `writes` and per first entries of `checks`.
    pub nodes: Vec<&'static str>,
    /// The nodes', then the reference's names, one per entry of `checks`.
    pub targets: Vec<&'static str>,
    /// `None` when the phase was not run (`CONSENTRY_BENCH_PHASES`), like `writes` and `store`.
    pub checks: Option<Vec<Vec<Load>>>,
    pub writes: Option<Vec<WriteResult>>,
    /// The floor sampled before each write round.
    pub write_floors: WriteFloors,
    /// PostgreSQL's `synchronous_commit` and `fsync`, when its floor was sampled.
    pub pg_settings: Option<String>,
    pub store: Option<StoreResult>,
    /// `None` when PostgreSQL is unavailable or the phase was not run.
    pub lag: Option<Result<LagResult, String>>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn verdict(met: bool) -> &'static str {
    if met { "target met" } else { "target missed" }
}

fn list(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(" ")
}

/// Prints the report of a run that began at `started`.
pub fn print(measured: Measured, started: Instant) {
    let Measured {
        phases,
        cpus,
        workers,
        loadgen,
        skip,
        floor_start,
        background,
        check_body_bytes,
        nodes,
        targets,
        checks,
        writes,
        write_floors,
        pg_settings,
        store,
        lag,
    } = measured;
    println!("consentry-server HTTP benchmark; command: {COMMAND}");
    println!("setup: loopback, {cpus} CPUs, server runtime {workers} workers; load generator: {}", loadgen);
    let defaults = Config::default();
    match &skip {
        None => println!(
            "PostgreSQL: the test server (127.0.0.1:5432 unless CONSENTRY_TEST_DATABASE_URL), a fresh database for 1-2 and one for 4; nodes with database_max_connections {}",
            defaults.database_max_connections
        ),
        Some(why) => println!("PostgreSQL: SKIPPED, {why}; its parts below are skipped"),
    }

    let floor_rates = |floors: &[Floor]| floors.iter().map(|f| f.rate).collect::<Vec<_>>();
    let w_floors = floor_rates(&write_floors.sqlite);
    let pg_floors = floor_rates(&write_floors.postgres);
    let s_floors = store.as_ref().map(|s| floor_rates(&s.floors)).unwrap_or_default();
    println!(
        "0. single-transaction floor: SQLite WAL + synchronous=FULL, 1 writer, 1 row ({FLOOR_ROW_BYTES} B) per transaction, a file in the data folders' filesystem:"
    );
    println!(
        "   at start, {FLOOR_SECS:.0} s: {:.0} tx/s (commit p50 {:.2} ms, p99 {:.2} ms); {FLOOR_SAMPLE_SECS} s samples before each write round: {} (median {:.0}), before each append round: {} (median {:.0})",
        floor_start.rate,
        floor_start.p50_ms,
        floor_start.p99_ms,
        list(&w_floors, 0),
        median(&w_floors),
        list(&s_floors, 0),
        median(&s_floors)
    );
    if let Some(bg) = background {
        println!(
            "   machine busy during the start floor: {:.2} of {cpus} CPUs (this process {:.2}); the rest is other processes' load",
            bg.machine_busy / FLOOR_SECS,
            bg.process / FLOOR_SECS
        );
    }
    match &checks {
        Some(checks) => print_checks(&nodes, &targets, checks, check_body_bytes),
        None => println!("1. POST /v1/check: not run (CONSENTRY_BENCH_PHASES)"),
    }

    match &writes {
        Some(writes) => {
            let floors = [w_floors.as_slice(), pg_floors.as_slice()];
            print_writes(&nodes, writes, floors, pg_settings.as_deref(), floor_start.rate, cpus);
        }
        None => println!("2. POST /v1/subjects/{{subject}}/consents: not run (CONSENTRY_BENCH_PHASES)"),
    }

    match &store {
        Some(store) => print_store(store, &s_floors, floor_start.rate),
        None => println!("3. embedded store append: not run (CONSENTRY_BENCH_PHASES)"),
    }

    println!(
        "4. lag between two nodes on one PostgreSQL database (catch_up_interval_ms {} default, LISTEN/NOTIFY on): up to {LAG_WRITES} writes on A flipping {LAG_SUBJECTS} subjects, B polled back to back:",
        defaults.catch_up_interval_ms
    );
    match lag {
        None if !phases.lag => println!("   not run (CONSENTRY_BENCH_PHASES)"),
        None => println!("   SKIPPED (PostgreSQL unavailable)"),
        Some(Err(e)) => println!("   could not complete: {e}"),
        Some(Ok(lag)) if lag.lags_ms.is_empty() => println!("   no write completed"),
        Some(Ok(lag)) => {
            let n = lag.lags_ms.len();
            let at = |p: f64| lag.lags_ms[((p / 100.0) * (n - 1) as f64).round() as usize];
            let p99 = at(99.0);
            println!(
                "   A's 201 -> B's first agreeing check, {n} writes{}: median {:.2} ms  p99 {p99:.2} ms  max {:.2} ms; agreed on the first poll {}/{n}; {:.1} polls per write",
                if lag.budget_hit { " (time budget ran out)" } else { "" },
                at(50.0),
                lag.lags_ms[n - 1],
                lag.first_poll,
                lag.polls as f64 / n as f64
            );
            println!("   p99 target < {TARGET_LAG_P99_MS:.0} ms: {}", verdict(p99 < TARGET_LAG_P99_MS));
        }
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
}

/// A rate against the floor sampled just before the same round, round by round; the median of those.
fn multiples(rates: &[f64], floors: &[f64]) -> (f64, Vec<f64>) {
    let per_round: Vec<f64> = rates.iter().zip(floors).map(|(r, f)| r / f).collect();
    (median(&per_round), per_round)
}

fn rate(loads: &[Load]) -> Vec<f64> {
    loads.iter().map(Load::rate).collect()
}

fn p50(loads: &[Load]) -> f64 {
    median(&loads.iter().map(|l| l.p50_ms).collect::<Vec<_>>())
}

fn p99(loads: &[Load]) -> f64 {
    median(&loads.iter().map(|l| l.p99_ms).collect::<Vec<_>>())
}

fn print_checks(nodes: &[&str], targets: &[&str], checks: &[Vec<Load>], check_body_bytes: usize) {
    let errors: u64 = checks.iter().flatten().map(|l| l.errors).sum();
    println!(
        "1. POST /v1/check, {}-byte body, Bearer key, {CHECK_CONNECTIONS} keep-alive connections, {CHECK_ROUNDS} rotating rounds x {CHECK_SECS} s per target (medians; errors {errors}):",
        check_body_bytes
    );
    for (name, loads) in targets.iter().zip(checks) {
        let rates = rate(loads);
        println!(
            "   {name:<10} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  rounds: {}",
            median(&rates),
            p50(loads),
            p99(loads),
            list(&rates, 0)
        );
    }
    let bare_loads = &checks[checks.len() - 1];
    let b_rates = rate(bare_loads);
    for (name, loads) in nodes.iter().zip(checks) {
        let rates = rate(loads);
        let ratio = median(&rates) / median(&b_rates);
        let pairs: Vec<f64> = rates.iter().zip(&b_rates).map(|(c, b)| c / b).collect();
        println!(
            "   {name}/bare {ratio:.2} (per round: {}); target >= {TARGET_CHECK_RATIO:.2}: {}; p99 {:.2} ms, target < {TARGET_CHECK_P99_MS:.1} ms: {}",
            list(&pairs, 2),
            verdict(ratio >= TARGET_CHECK_RATIO),
            p99(loads),
            verdict(p99(loads) < TARGET_CHECK_P99_MS)
        );
    }
    if nodes.len() == 2 {
        let (e_rates, p_rates) = (rate(&checks[0]), rate(&checks[1]));
        let ratio = median(&p_rates) / median(&e_rates);
        let pairs: Vec<f64> = p_rates.iter().zip(&e_rates).map(|(p, e)| p / e).collect();
        println!(
            "   postgres/embedded {ratio:.2} (per round: {}); answered from memory, so alike within {:.0}%: {}",
            list(&pairs, 2),
            CHECK_ALIKE_TOLERANCE * 100.0,
            verdict((ratio - 1.0).abs() <= CHECK_ALIKE_TOLERANCE)
        );
    } else {
        println!("   postgres: SKIPPED (PostgreSQL unavailable)");
    }
}

fn print_writes(
    nodes: &[&str],
    writes: &[WriteResult],
    [w_floors, pg_floors]: [&[f64]; 2],
    pg_settings: Option<&str>,
    start_floor: f64,
    cpus: usize,
) {
    println!(
        "2. POST /v1/subjects/{{subject}}/consents, durable, 1 change per request, {WRITERS} writers x {SUBJECTS_PER_WRITER} subjects, {WRITE_ROUNDS} ABBA rounds x {WRITE_SECS} s per node (medians):"
    );
    for (name, w) in nodes.iter().zip(writes) {
        let rates = rate(&w.rounds);
        let errors: u64 = w.rounds.iter().map(|l| l.errors).sum();
        println!(
            "   {name:<10} {:>8.0} changes/s  p50 {:.2} ms  p99 {:.2} ms  rounds: {}; commit batch {:.1} events avg ({:.0} commits); errors {errors}",
            median(&rates),
            p50(&w.rounds),
            p99(&w.rounds),
            list(&rates, 0),
            w.batch_events / w.commits.max(1.0),
            w.commits
        );
        if let Some(cpu) = w.cpu {
            let (changes, wall) =
                (w.rounds.iter().map(|l| l.ok).sum::<u64>(), w.rounds.iter().map(|l| l.secs).sum::<f64>());
            println!(
                "   {:<10} CPU: this process {:.0} us per change ({:.2} CPUs); whole machine busy {:.2} of {cpus} CPUs",
                "",
                cpu.process * 1e6 / changes.max(1) as f64,
                cpu.process / wall,
                cpu.machine_busy / wall
            );
        }
    }
    let e_write = median(&rate(&writes[0].rounds));
    let (e_multiple, e_rounds) = multiples(&rate(&writes[0].rounds), w_floors);
    println!(
        "   embedded = {e_multiple:.1}x the floor of the moment (per round: {}), {:.1}x the start floor; target >= {TARGET_FLOOR_MULTIPLE:.0}x: {}; p99 target <= {TARGET_WRITE_P99_MS:.0} ms: {}",
        list(&e_rounds, 1),
        e_write / start_floor,
        verdict(e_multiple >= TARGET_FLOOR_MULTIPLE),
        verdict(p99(&writes[0].rounds) <= TARGET_WRITE_P99_MS)
    );
    println!(
        "   embedded target >= {TARGET_WRITES_PER_SEC:.0} changes/s: {} ({:.2} of target)",
        verdict(e_write >= TARGET_WRITES_PER_SEC),
        e_write / TARGET_WRITES_PER_SEC
    );
    if let Some(w) = writes.get(1) {
        let p_write = median(&rate(&w.rounds));
        let (p_multiple, p_rounds) = multiples(&rate(&w.rounds), w_floors);
        println!(
            "   postgres = {p_multiple:.1}x the SQLite floor of the moment (per round: {}), {:.2}x embedded",
            list(&p_rounds, 1),
            p_write / e_write
        );
        let (pg_multiple, pg_rounds) = multiples(&rate(&w.rounds), pg_floors);
        println!(
            "   postgres = {pg_multiple:.1}x PostgreSQL's own floor of the moment (one connection, 1 row per transaction, {}; {FLOOR_SAMPLE_SECS} s samples before each round: {} tx/s; per round: {}); target >= {TARGET_PG_FLOOR_MULTIPLE:.0}x: {}; p99 target <= {TARGET_WRITE_P99_MS:.0} ms: {}",
            pg_settings.unwrap_or("settings unknown"),
            list(pg_floors, 0),
            list(&pg_rounds, 1),
            verdict(pg_multiple >= TARGET_PG_FLOOR_MULTIPLE),
            verdict(p99(&w.rounds) <= TARGET_WRITE_P99_MS)
        );
    } else {
        println!("   postgres: SKIPPED (PostgreSQL unavailable)");
    }
}

fn print_store(store: &StoreResult, s_floors: &[f64], start_floor: f64) {
    let s_rate = median(&store.rates);
    let s_batch = store.batch_events as f64 / store.commits.max(1) as f64;
    println!(
        "3. embedded store append: {STORE_EVENTS} events as {} appends of {STORE_BATCH} from {STORE_TASKS} tasks, {STORE_ROUNDS} rounds:",
        STORE_EVENTS / STORE_BATCH
    );
    println!(
        "   {s_rate:.0} events/s  rounds: {}; commit batch {s_batch:.0} events avg ({} commits)",
        list(&store.rates, 0),
        store.commits
    );
    let (s_multiple, s_rounds) = multiples(&store.rates, s_floors);
    println!(
        "   = {s_multiple:.0}x the floor of the moment (per round: {}), {:.0}x the start floor; target >= {TARGET_FLOOR_MULTIPLE:.0}x: {}",
        list(&s_rounds, 0),
        s_rate / start_floor,
        verdict(s_multiple >= TARGET_FLOOR_MULTIPLE)
    );
    println!(
        "   target >= {TARGET_STORE_EVENTS_PER_SEC:.0} events/s: {} ({:.2} of target)",
        verdict(s_rate >= TARGET_STORE_EVENTS_PER_SEC),
        s_rate / TARGET_STORE_EVENTS_PER_SEC
    );
}
