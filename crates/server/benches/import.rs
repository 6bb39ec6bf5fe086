//! Bulk import and export (docs/import.md): imports N changes (default 1,000,000; `CONSENTRY_BENCH_CHANGES`)
//! over N/5 subjects, written to a JSON Lines file in random order first, into a fresh embedded store and,
//! when PostgreSQL answers on loopback, a fresh database; then exports the store's history and current
//! state and reports lines/s. Reports each phase's time and the process's peak RSS (VmHWM) after each.
//! Run: `cargo bench -p consentry-server --bench import` (loopback only; skip PostgreSQL with
//! `CONSENTRY_BENCH_BACKENDS=embedded`, the export with `CONSENTRY_BENCH_EXPORT=0`). With
//! `CONSENTRY_BENCH_KEEP=DIR` the file and the stores are kept in DIR (the PostgreSQL database is then left in
//! place: its URL is in DIR), and a later run with the same N exports them again without importing: for
//! iterating on the export.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use consentry_server::Config;
use consentry_service::transfer::export::{ExportOptions, Exporter};
use consentry_service::transfer::import::{self, ImportOptions};

fn main() {
    let n: u64 =
        std::env::var("CONSENTRY_BENCH_CHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let backends = std::env::var("CONSENTRY_BENCH_BACKENDS").unwrap_or_else(|_| "embedded,postgres".into());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(n, &backends));
}

/// Peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time this process used so far (user and system, all threads), in seconds: /proc/self/stat's
/// utime and stime, in clock ticks of 1/100 s.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counted from the state (field 3).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// The 1-minute load average, as /proc/loadavg has it.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().next().unwrap_or("?").to_owned()
}

/// Writes `n` changes over `n / 5` subjects in a shuffled order (a fixed xorshift, so runs compare).
fn write_file(path: &std::path::Path, n: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("file"));
    let subjects = (n / 5).max(1);
    let purposes = ["marketing.direct", "analytics", "marketing.personalised_offers", "third_party.sharing"];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let subject = x % subjects;
        let purpose = purposes[(x >> 20) as usize % purposes.len()];
        let grant = !(x >> 30).is_multiple_of(3);
        let day = 1 + (x >> 40) % 28;
        let month = 1 + (x >> 50) % 12;
        let notice = if grant { format!(r#","notice":{{"key":"{purpose}"}}"#) } else { String::new() };
        writeln!(
            out,
            r#"{{"source_id":"b{i}","subject":"subject-{subject:07}","purpose":"{purpose}","action":"{}","occurred_at":"2023-{month:02}-{day:02}T10:00:00Z"{notice}}}"#,
            if grant { "grant" } else { "withdraw" }
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

async fn run(n: u64, backends: &str) {
    let temp = tempfile::tempdir().expect("temp dir");
    let keep = std::env::var_os("CONSENTRY_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir).expect("bench folder");
    let dir = Dir(dir);
    let file = dir.path().join("changes.jsonl");
    if kept(keep.as_deref(), "file", n).is_none() {
        write_file(&file, n);
        mark(keep.as_deref(), "file", n, "");
    }
    println!("consentry import benchmark; command: cargo bench -p consentry-server --bench import");
    // Wall-clock figures: other work on the machine slows them; the process's CPU time is printed too.
    println!(
        "machine: {} cores; load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "input: {n} changes over {} subjects, {:.0} MiB of JSON Lines in random order; peak RSS after writing it: {:.0} MiB",
        (n / 5).max(1),
        std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1048576.0,
        peak_rss_mib()
    );
    if backends.contains("embedded") {
        let mut config = Config { data: dir.path().join("data"), ..Config::default() };
        config.bootstrap_admin_key = Some("bench-admin-key-0123456789-abcdefghijklm".into());
        if kept(keep.as_deref(), "embedded", n).is_some() {
            export_kept(config, "embedded (SQLite)").await;
        } else {
            one(config, &file, n, "embedded (SQLite)").await;
            mark(keep.as_deref(), "embedded", n, "");
        }
    }
    if backends.contains("postgres") {
        if let Some(url) = kept(keep.as_deref(), "postgres", n) {
            let mut config = Config { data: dir.path().join("pg"), ..Config::default() };
            config.database_url = Some(url);
            export_kept(config, "PostgreSQL").await;
            return;
        }
        match consentry_store::testing::TestDatabase::create().await {
            Some(db) => {
                let mut config = Config { data: dir.path().join("pg"), ..Config::default() };
                config.database_url = Some(db.url.clone());
                config.bootstrap_admin_key = Some("bench-admin-key-0123456789-abcdefghijklm".into());
                one(config, &file, n, "PostgreSQL").await;
                if keep.is_some() {
                    mark(keep.as_deref(), "postgres", n, &db.url);
                    // Kept for the next run: dropping it would drop the database.
                    std::mem::forget(db);
                }
            }
            None => println!("PostgreSQL: not reachable on loopback, skipped"),
        }
    }
}

/// The bench's folder: a temporary one (removed with `temp`) or the kept one.
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// What a kept folder says about `what` for N changes: written (and, for PostgreSQL, the database's URL),
/// or `None` (also without a kept folder).
fn kept(keep: Option<&std::path::Path>, what: &str, n: u64) -> Option<String> {
    std::fs::read_to_string(keep?.join(format!("{what}-{n}.done"))).ok()
}

/// Notes in the kept folder (if any) that `what` is written for N changes.
fn mark(keep: Option<&std::path::Path>, what: &str, n: u64, note: &str) {
    if let Some(dir) = keep {
        std::fs::write(dir.join(format!("{what}-{n}.done")), note).expect("note in the kept folder");
    }
}

/// Exports a store a run before this one imported.
async fn export_kept(config: Config, name: &str) {
    println!("{name}: the store imported by an earlier run (CONSENTRY_BENCH_KEEP)");
    let opened = consentry_server::open(config).await.expect("open");
    export(&opened.state, name).await;
    opened.state.store.close().await;
}

/// The issue's import target in changes per second: 1,000,000 changes in 60 s (embedded) or 180 s
/// (PostgreSQL).
fn import_target(name: &str) -> f64 {
    if name.starts_with("PostgreSQL") { 1_000_000.0 / 180.0 } else { 1_000_000.0 / 60.0 }
}

async fn one(config: Config, file: &std::path::Path, n: u64, name: &str) {
    let opened = consentry_server::open(config).await.expect("open");
    let state = opened.state;
    let path = file.to_owned();
    let open = || {
        let path = path.clone();
        async move { Ok(tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::open(path).await?)) }
    };
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let report = import::run(&state, &ImportOptions::new("bench"), open, &mut ()).await.expect("import");
    let (took, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert_eq!(report.imported + report.skipped, n, "every line imported: {report:?}");
    println!(
        "{name}: import {} changes in {took:.1} s = {:.0} changes/s (target >= {:.0}; CPU {cpu:.1} s); {} subjects in the engine; peak RSS {:.0} MiB (target < 300)",
        report.imported,
        report.imported as f64 / took,
        import_target(name),
        state.engine.subject_count(),
        peak_rss_mib()
    );
    // `CONSENTRY_BENCH_EXPORT=0` measures the import alone.
    if std::env::var("CONSENTRY_BENCH_EXPORT").map_or(true, |v| v != "0") {
        export(&state, name).await;
    }
    state.store.close().await;
}

/// Exports the store's history, then its current state, and reports each.
async fn export(state: &consentry_server::Services, name: &str) {
    for history in [true, false] {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let mut exporter =
            Exporter::new(Arc::clone(&state.store), ExportOptions { history, ..ExportOptions::default() });
        let mut bytes = 0u64;
        while let Some(page) = exporter.next_page().await.expect("export") {
            bytes += page.len() as u64;
        }
        let lines = exporter.lines();
        let (took, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "{name}: export {} {lines} lines ({:.0} MiB) in {took:.2} s = {:.0} lines/s (target >= 200000; CPU {cpu:.2} s); peak RSS {:.0} MiB",
            if history { "--history" } else { "(current state)" },
            bytes as f64 / 1048576.0,
            lines as f64 / took,
            peak_rss_mib()
        );
    }
}
