//! The lag between two nodes on one PostgreSQL database: a write on node A, then `POST /v1/check` on node B
//! back to back until B agrees, the answer flipping on every write.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use consentry_server::Config;
use tokio::runtime::Runtime;

use crate::http1::Client;
use crate::node::{post_request, start_consentry};
use crate::{GRANT_BODY, LAG_BUDGET, LAG_SUBJECTS, LAG_TIMEOUT, LAG_WRITES, WITHDRAW_BODY};

#[derive(Default)]
pub struct LagResult {
    /// Milliseconds from A's 201 to B's first agreeing answer, one per write, sorted.
    pub lags_ms: Vec<f64>,
    /// Writes B already agreed with on the first poll.
    pub first_poll: usize,
    /// Checks sent to B in all.
    pub polls: u64,
    /// Whether `LAG_BUDGET` ran out before `LAG_WRITES` writes.
    pub budget_hit: bool,
}

/// Whether a check answer says allowed.
fn answer_allowed(body: &[u8]) -> Result<bool, String> {
    let text = String::from_utf8_lossy(body);
    if text.contains(r#""allowed":true"#) {
        Ok(true)
    } else if text.contains(r#""allowed":false"#) {
        Ok(false)
    } else {
        Err(format!("a check answered {text}"))
    }
}

/// Two nodes on the database at `url`: writes on A, checks on B.
pub fn lag_phase(rt: &Runtime, url: &str, data: &Path) -> Result<LagResult, String> {
    // Nodes of one deployment share the vault's key-encryption key (a node with another refuses to start).
    let kek = data.join("kek");
    let node = |name: &str| {
        let config = Config {
            data: data.join(name),
            database_url: Some(url.to_owned()),
            kek_file: Some(kek.clone()),
            ..Config::default()
        };
        start_consentry(rt, config)
    };
    let a = node("a")?;
    let b = node("b")?;
    let result = measure_lag(a.addr, b.addr);
    a.stop(rt);
    b.stop(rt);
    result
}

/// The lag client, on its own thread and runtime like an outside client: one keep-alive connection to each
/// node; after every write on A it polls B back to back until B's answer agrees.
fn measure_lag(a: SocketAddr, b: SocketAddr) -> Result<LagResult, String> {
    let thread = std::thread::spawn(move || -> Result<LagResult, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("lag client runtime: {e}"))?;
        rt.block_on(async move {
            let io = |e: std::io::Error| format!("lag client: {e}");
            let subject = |s: usize| format!("lag-{s}");
            let writes: Vec<[Vec<u8>; 2]> = (0..LAG_SUBJECTS)
                .map(|s| {
                    let path = format!("/v1/subjects/{}/consents", subject(s));
                    [post_request(a, &path, GRANT_BODY), post_request(a, &path, WITHDRAW_BODY)]
                })
                .collect();
            let checks: Vec<Vec<u8>> = (0..LAG_SUBJECTS)
                .map(|s| {
                    let body = format!(r#"{{"subject":"{}","purpose":"analytics"}}"#, subject(s));
                    post_request(b, "/v1/check", &body)
                })
                .collect();
            let mut writer = Client::connect(a).await.map_err(io)?;
            let mut reader = Client::connect(b).await.map_err(io)?;
            let mut result = LagResult::default();
            let phase = Instant::now();
            for i in 0..LAG_WRITES {
                if phase.elapsed() > LAG_BUDGET {
                    result.budget_hit = true;
                    break;
                }
                let s = i % LAG_SUBJECTS;
                let grant = (i / LAG_SUBJECTS) & 1 == 0;
                let status = writer.send(&writes[s][usize::from(!grant)]).await.map_err(io)?;
                if status != 201 {
                    let body = String::from_utf8_lossy(writer.body()).into_owned();
                    return Err(format!("a write on node A answered {status} {body}"));
                }
                let written = Instant::now();
                let mut polls = 0u64;
                loop {
                    let status = reader.send(&checks[s]).await.map_err(io)?;
                    polls += 1;
                    if status != 200 {
                        let body = String::from_utf8_lossy(reader.body()).into_owned();
                        return Err(format!("a check on node B answered {status} {body}"));
                    }
                    if answer_allowed(reader.body())? == grant {
                        result.lags_ms.push(written.elapsed().as_secs_f64() * 1e3);
                        result.first_poll += usize::from(polls == 1);
                        break;
                    }
                    if written.elapsed() > LAG_TIMEOUT {
                        return Err(format!(
                            "node B did not agree within {} s after write {i}",
                            LAG_TIMEOUT.as_secs()
                        ));
                    }
                }
                result.polls += polls;
            }
            result.lags_ms.sort_by(f64::total_cmp);
            Ok(result)
        })
    });
    thread.join().map_err(|_| "lag client thread panicked".to_owned())?
}
