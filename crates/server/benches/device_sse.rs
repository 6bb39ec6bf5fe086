//! Device snapshot latency: how long after a consent write's 201 the device's fresh signed snapshot
//! arrives on its Server-Sent Events stream (`GET /v1/device/consent/stream`), on loopback, bounded.
//!
//! One server runs in-process on a runtime of its own, on the embedded store (a temp dir) and then on
//! PostgreSQL (a fresh database at 127.0.0.1:5432; skipped with a notice when unreachable). `DEVICES`
//! devices of as many subjects each hold a stream open. Closed loop: `CHANGES` times, one subject's
//! analytics consent is granted or withdrawn (alternating per subject); latency runs from the moment the
//! writer has read the 201 to the moment the reader has the whole `consent` event of that device. A change
//! whose snapshot does not arrive within `WAIT` counts as lost. Prints p50, p99, max and lost.
//!
//! Run with `cargo bench -p consentry-server --bench device_sse`. The run exits 0 whatever it measures.

use std::time::{Duration, Instant};

use consentry_server::Config;
use consentry_store::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklm";
const DEVICES: usize = 16;
const CHANGES: usize = 400;
const WAIT: Duration = Duration::from_secs(3);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> Result<Value, String> {
    let r = client.post(url).bearer_auth(ADMIN_KEY).json(body).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("status {}", r.status()));
    }
    r.json().await.map_err(|e| e.to_string())
}

/// Reads one device's stream, reporting the arrival time of each `consent` event as `(device, at)`.
async fn read_stream(
    mut response: reqwest::Response,
    device: usize,
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let mut buffer = String::new();
    while let Ok(Some(bytes)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: consent")
                && arrivals.send((device, Instant::now())).is_err()
            {
                return;
            }
        }
    }
}

async fn measure(database_url: Option<String>) -> Result<(Vec<f64>, usize), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = Config {
        data: dir.path().join("data"),
        database_url,
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let opened = consentry_server::open(config).await.map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(consentry_server::serve(opened.state, listener, stop.clone()));
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;

    let (tx, mut arrivals) = mpsc::unbounded_channel();
    for d in 0..DEVICES {
        let paired = post(
            &client,
            format!("{base}/v1/subjects/bench-{d}/devices"),
            &json!({"name": "bench", "kind": "speaker", "categories": ["user.device.telemetry"], "purposes": ["analytics"]}),
        )
        .await?;
        let token = paired["token"].as_str().ok_or("no token")?.to_owned();
        let response = client
            .get(format!("{base}/v1/device/consent/stream"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(read_stream(response, d, tx.clone()));
    }
    // The first snapshot of every stream.
    let mut first = 0;
    while first < DEVICES {
        tokio::time::timeout(WAIT, arrivals.recv())
            .await
            .map_err(|_| "no first snapshot")?
            .ok_or("closed")?;
        first += 1;
    }

    let mut latencies = Vec::with_capacity(CHANGES);
    let mut lost = 0;
    for i in 0..CHANGES {
        let d = i % DEVICES;
        let action = if (i / DEVICES).is_multiple_of(2) { "grant" } else { "withdraw" };
        let mut body = json!({"changes": [{"purpose": "analytics", "action": action}]});
        if action == "grant" {
            body["notice"] = json!("analytics");
        }
        post(&client, format!("{base}/v1/subjects/bench-{d}/consents"), &body).await?;
        let written = Instant::now();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some((device, at))) if device == d => {
                    latencies.push(at.saturating_duration_since(written).as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    stop.cancel();
    let _ = server.await;
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, lost))
}

fn report(backend: &str, result: Result<(Vec<f64>, usize), String>) {
    match result {
        Ok((l, lost)) => println!(
            "{backend:<10} {:>6} {:>8.2} {:>8.2} {:>8.2} {lost:>5}",
            l.len(),
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            l.last().copied().unwrap_or(f64::NAN)
        ),
        Err(e) => println!("{backend:<10} failed: {e}"),
    }
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return;
        }
    };
    rt.block_on(async {
        println!("consent write (201) -> fresh snapshot on the device's SSE stream; {DEVICES} streams, {CHANGES} changes, closed loop");
        println!("{:<10} {:>6} {:>8} {:>8} {:>8} {:>5}", "backend", "n", "p50 ms", "p99 ms", "max ms", "lost");
        report("embedded", measure(None).await);
        match TestDatabase::create().await {
            Some(db) => report("postgres", measure(Some(db.url.clone())).await),
            None => println!("postgres   skipped (unreachable)"),
        }
    });
}
