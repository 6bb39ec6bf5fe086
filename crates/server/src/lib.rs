//! Consentry's HTTP service.
//!
//! [`open`] (the service layer's) prepares everything a server needs (store, first-start bootstrap, a warm
//! decision engine); [`app`] builds the router, so handler tests can call it without a socket; [`serve`] runs it on a
//! listener until a shutdown token fires, draining in-flight requests within a bound. The accept loop, the
//! connection limit and the header-read and idle timeouts are in `conn`.
//!
//! Architecture invariant: this crate is the HTTP face of the service layer (`consentry-service`): the
//! JSON API under `api/` and the preference centre under `web/`. A handler or a page parses, authorises,
//! calls one service function and renders; it never writes SQL and never holds a business rule.

pub mod api;
pub mod auth;
mod client;
mod conn;
mod console;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
mod payload;
pub mod state;
pub mod web;

use std::sync::Arc;

use axum::{Router, middleware};
use consentry_service::auth::throttle::FailureLimit;
pub use consentry_service::{Config, Opened, Services, StartError, bootstrap, ensure_catalog, open};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The router with every route, middleware and limit; the failed-authentication limit applies to requests
/// that carry their peer's address (as [`serve`] adds it), read as [`client::ClientAddr`].
pub fn app(services: Services) -> Router {
    let failures = Arc::new(FailureLimit::new(&services.config));
    let proxies = Arc::new(services.config.trusted_proxies());
    api::router(AppState(services))
        .layer(middleware::from_fn_with_state(failures, auth::limit_failures))
        .layer(middleware::from_fn_with_state(proxies, client::resolve))
}

/// Serves `state` on `listener` until `shutdown` fires, then lets in-flight requests finish for at most the
/// configured bound, stops the workers and closes the store.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let drain = services.config.shutdown_timeout();
    let stop_workers = CancellationToken::new();
    let workers = consentry_service::workers::start(&services, stop_workers.clone());
    {
        // Open snapshot streams end when shutdown begins, so they do not hold up the drain.
        let (services, signal) = (services.clone(), shutdown.clone());
        tokio::spawn(async move {
            signal.cancelled().await;
            services.devices.shutting_down();
        });
    }
    let router = app(services.clone());
    let server = conn::run(listener, router, conn::Limits::of(&services.config), shutdown.clone());
    let mut server = std::pin::pin!(server);
    let result = tokio::select! {
        r = &mut server => r,
        () = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(seconds = drain.as_secs(), "in-flight requests did not finish in time; stopping anyway");
            Ok(())
        }
    };
    stop_workers.cancel();
    workers.finish(services).await;
    result
}
