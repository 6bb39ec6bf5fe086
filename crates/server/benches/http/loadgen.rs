//! The load generator of the HTTP benchmark: `wrk` in another process when it is installed (scripts
//! `benches/post.lua` and `benches/consents.lua`), otherwise an HTTP/1.1 keep-alive client on a thread
//! and runtime of its own; both report the same [`Load`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::http1::Client;
use crate::node::{ADMIN_KEY, post_request};
use crate::{GRANT_BODY, SUBJECTS_PER_WRITER, WITHDRAW_BODY, WRITERS, writer_subject};

/// What a load run sends.
#[derive(Clone, Copy)]
pub enum Work<'a> {
    /// The same `POST /v1/check` on every request.
    Check { body: &'a str },
    /// Consent changes, each writer cycling over its own subjects, alternating grant and withdraw.
    Writes,
}

/// The outcome of one load run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Socket errors, timeouts and non-2xx answers.
    pub errors: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

#[derive(Debug, Clone)]
pub enum LoadGen {
    Wrk { version: String },
    InProcess,
}

impl LoadGen {
    pub fn detect() -> Self {
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

    pub fn describe(&self) -> String {
        match self {
            LoadGen::Wrk { version } => format!("{version}, one thread (-t1), scripts in benches/*.lua"),
            LoadGen::InProcess => {
                "in-process HTTP/1.1 keep-alive client, one thread (wrk not found or CONSENTRY_BENCH_LOADGEN=inprocess)"
                    .to_owned()
            }
        }
    }

    pub fn run(
        &self,
        addr: SocketAddr,
        work: Work<'_>,
        connections: usize,
        secs: u64,
    ) -> Result<Load, String> {
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
pub fn requests_for(work: Work<'_>, index: usize, addr: SocketAddr) -> Vec<Vec<u8>> {
    match work {
        Work::Check { body } => vec![post_request(addr, "/v1/check", body)],
        Work::Writes => {
            let path = |k: usize| {
                format!("/v1/subjects/{}/consents", writer_subject(index * SUBJECTS_PER_WRITER + k))
            };
            let grants = (0..SUBJECTS_PER_WRITER).map(|k| post_request(addr, &path(k), GRANT_BODY));
            let withdraws = (0..SUBJECTS_PER_WRITER).map(|k| post_request(addr, &path(k), WITHDRAW_BODY));
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

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}
