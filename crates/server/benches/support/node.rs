//! Servers the benchmarks run in their own process on 127.0.0.1:0 (a Consentry node, or a plain axum app
//! as a receiver or a reference), the requests they send it, and the `/metrics` figures they read back.

use std::net::SocketAddr;

use axum::Router;
use consentry_server::Config;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The bootstrap admin key (40 printable characters), used as the Bearer key of every request.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklm";

/// A server task and the token that stops it.
pub struct Running {
    pub addr: SocketAddr,
    token: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Cancels the server and waits until it has drained.
    pub fn stop(self, rt: &Runtime) {
        self.token.cancel();
        let _ = rt.block_on(self.handle);
    }
}

/// A Consentry node with `config` (its admin key set to [`ADMIN_KEY`]), served on `rt`.
pub fn start_consentry(rt: &Runtime, config: Config) -> Result<Running, String> {
    let config = Config { bootstrap_admin_key: Some(ADMIN_KEY.to_owned()), ..config };
    let opened = rt.block_on(consentry_server::open(config)).map_err(|e| format!("open: {e}"))?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let handle = rt.spawn(consentry_server::serve(opened.state, listener, token.clone()));
    Ok(Running { addr, token, handle })
}

/// A plain axum `app` served on `rt` until stopped.
pub fn start_app(rt: &Runtime, app: Router) -> Result<Running, String> {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let token = CancellationToken::new();
    let signal = token.clone();
    let handle = rt.spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { signal.cancelled().await }).await
    });
    Ok(Running { addr, token, handle })
}

/// The bytes of a keep-alive `POST path` of a JSON `body` to the server at `addr`, with the admin key.
pub fn post_request(addr: SocketAddr, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// (sum, count) of `consentry_ledger_commit_batch_events` in a `/metrics` text: with two readings, the
/// events per group commit in between.
pub fn commit_batch_totals(metrics: &str) -> Result<(f64, f64), String> {
    let value = |name: &str| -> Result<f64, String> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/metrics has no {name}"))
    };
    Ok((
        value("consentry_ledger_commit_batch_events_sum")?,
        value("consentry_ledger_commit_batch_events_count")?,
    ))
}
