//! The receiving end of the delivery benchmark: a webhook endpoint and a NATS subscriber spoken directly,
//! both recording each CloudEvent's arrival time by its `evt_<seq>` id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::node::{Running, start_app};
use crate::{NATS_ADDR, NATS_URL};

#[derive(Deserialize)]
pub struct CloudEventId {
    pub id: String,
}

/// The seq of an event id `evt_<seq>`.
pub fn seq_of(id: &str) -> Option<u64> {
    id.strip_prefix("evt_")?.parse().ok()
}

/// Every event the receivers got, in arrival order, as (seq, when the whole event was in).
#[derive(Default)]
pub struct Arrivals {
    log: Mutex<Vec<(u64, Instant)>>,
    /// Bodies without a CloudEvent `id` of the form `evt_<seq>`.
    pub unreadable: AtomicU64,
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
    pub fn since(&self, from: usize) -> Vec<(u64, Instant)> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).get(from..).unwrap_or_default().to_vec()
    }

    pub fn len(&self) -> usize {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

async fn hook(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> StatusCode {
    arrivals.record(Instant::now(), &body);
    StatusCode::NO_CONTENT
}

/// The webhook receiver: `POST /hook` answers 204 and records the event.
pub fn start_receiver(rt: &Runtime, arrivals: Arc<Arrivals>) -> Result<Running, String> {
    start_app(rt, Router::new().route("/hook", post(hook)).with_state(arrivals))
}

/// A core NATS subscription on `subject`, spoken directly (async-nats' `Subscriber` is a `futures` Stream,
/// and `futures` is not a dependency of the workspace): returns once the server has confirmed it (PONG),
/// with the task that records each message's payload as an arrival.
pub async fn nats_subscribe(subject: &str, arrivals: Arc<Arrivals>) -> Result<JoinHandle<String>, String> {
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

/// Whether NATS with JetStream answers at `NATS_URL` (no stream stores `<prefix>.>` yet, the expected
/// answer); `Err` says why not.
pub async fn nats_available(prefix: &str) -> Result<async_nats::jetstream::Context, String> {
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
