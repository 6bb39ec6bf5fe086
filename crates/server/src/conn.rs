//! The accept loop and the life of each connection: a global connection limit, the header-read and idle
//! timeouts, the peer address for handlers, and the graceful close at shutdown.
//!
//! `axum::serve` has no timeouts and no connection limit, so connections are served here with hyper's
//! HTTP/1 connection directly. The timeouts follow Go's `net/http` server, not hyper's
//! `header_read_timeout` (whose timer also runs while a kept-alive connection waits, so it would close
//! every idle connection after the header timeout):
//!
//! - a new connection has `header_read_timeout` to send its first complete request head, and a kept-alive
//!   one the same from the first byte of its next request; one that sends nothing or part of a head is
//!   closed;
//! - a kept-alive connection with no request in flight is closed after `idle_timeout` without a byte;
//! - while a response is in flight nothing is timed (a handler may take long, an event stream lasts) except
//!   a client that stopped reading: a write blocked for `idle_timeout` closes the connection.
//!
//! A watchdog per connection reads what its connection does from a few atomics ([`Watch`]) that the I/O
//! wrapper ([`Tracked`]) and the request guard ([`Busy`]) keep current, and drops the connection when its
//! deadline has passed. It looks on a tick of a quarter of the shorter timeout (so a timeout is kept
//! within a quarter of itself), never on each request: a request costs the connection no wake-up and no
//! timer of its own, which kept checks about 12% slower than behind `axum::serve`. The connection limit is a semaphore: while every permit is taken no connection is
//! accepted, so the kernel's backlog pushes back; at shutdown, waiting for every permit is waiting for
//! every connection to finish.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use consentry_service::Config;

/// How often, at most, the log says that the connection limit was reached.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A moment without a time in [`Watch`].
const NEVER: u64 = u64::MAX;

/// The limits of [`run`], from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(config: &Config) -> Self {
        Self {
            header_read: config.header_read_timeout(),
            idle: config.idle_timeout(),
            max_connections: config.max_connections,
        }
    }
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` fires; then closes
/// each connection once its request in flight is answered, and returns when all are closed.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    // At most a million (the configuration's bound), well within a semaphore's and a u32's range.
    let permits = u32::try_from(limits.max_connections.clamp(1, 1_000_000)).unwrap_or(1_000_000);
    let slots = Arc::new(Semaphore::new(permits as usize));
    let mut warned: Option<Instant> = None;
    loop {
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection limit is reached; new connections wait in the listen backlog"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    permit = Arc::clone(&slots).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit until it is closed.
    let _all = slots.acquire_many(permits).await;
    Ok(())
}

/// A failed accept: a connection reset before it was taken is the client's business; anything else
/// (out of file descriptors, above all) is logged and waited out, as the next accept would fail alike.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind as K;
    if matches!(e.kind(), K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, times out, or (at shutdown) has answered its request in flight.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Tracked { inner: stream, watch: Arc::clone(&watch) });
    let requests = Arc::clone(&watch);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = Busy::start(Arc::clone(&requests));
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            std::future::poll_fn(|cx| <Router as Service<Request<Body>>>::poll_ready(&mut router, cx))
                .await?;
            let response = router.call(request).await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(Guarded { body, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Timed by the watchdog below instead (see the module's header).
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    let mut tick = tokio::time::interval(tick_of(limits));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "a connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if watch.deadline(limits).is_some_and(|at| watch.start.elapsed() >= at) {
                    tracing::debug!("closing a connection that timed out");
                    return;
                }
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// How often a connection's watchdog looks: a quarter of the shorter timeout, at least 10 ms.
fn tick_of(limits: Limits) -> Duration {
    (limits.header_read.min(limits.idle) / 4).max(Duration::from_millis(10))
}

/// What a connection is doing, in milliseconds since it was accepted ([`NEVER`]: not now).
#[derive(Debug)]
struct Watch {
    start: Instant,
    /// Requests whose response is not yet fully handed to the connection.
    in_flight: AtomicUsize,
    /// Since when a request head has been awaited with bytes of it (or since the accept).
    head_since: AtomicU64,
    /// Since when no request has been in flight.
    idle_since: AtomicU64,
    /// Since when a write has waited for the client to read.
    write_blocked_since: AtomicU64,
}

impl Watch {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            // A new connection's first head is timed from the accept.
            head_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(NEVER),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// When the connection is to be closed, as things stand (`None`: not while this lasts).
    fn deadline(&self, limits: Limits) -> Option<Duration> {
        let after = |since: u64, limit: Duration| Duration::from_millis(since) + limit;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            let blocked = self.write_blocked_since.load(Ordering::Acquire);
            return (blocked != NEVER).then(|| after(blocked, limits.idle));
        }
        match self.head_since.load(Ordering::Acquire) {
            NEVER => Some(after(self.idle_since.load(Ordering::Acquire), limits.idle)),
            since => Some(after(since, limits.header_read)),
        }
    }

    /// Bytes arrived: between requests, they begin the next head, which the header timeout now times.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Acquire) == NEVER {
            let _ = self.head_since.compare_exchange(NEVER, self.now(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// A write waits for the client (`blocked`), or went through.
    fn wrote(&self, blocked: bool) {
        if !blocked {
            if self.write_blocked_since.load(Ordering::Acquire) != NEVER {
                self.write_blocked_since.store(NEVER, Ordering::Release);
            }
        } else if self.write_blocked_since.load(Ordering::Acquire) == NEVER {
            let now = self.now();
            let _ =
                self.write_blocked_since.compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

/// A request in flight, from its head until its response body is handed over (or dropped).
struct Busy(Arc<Watch>);

impl Busy {
    fn start(watch: Arc<Watch>) -> Self {
        watch.in_flight.fetch_add(1, Ordering::AcqRel);
        watch.head_since.store(NEVER, Ordering::Release);
        Self(watch)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now(), Ordering::Release);
        }
    }
}

/// A response body that keeps its request counted as in flight until it is sent.
struct Guarded {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, telling its [`Watch`] when bytes arrive and when writes wait.
struct Tracked {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch.wrote(polled.is_pending());
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch.wrote(polled.is_pending());
        polled
    }
}
