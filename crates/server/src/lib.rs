//! Consentry's HTTP service.
//!
//! [`open`] prepares everything a server needs (store, first-start bootstrap, a warm decision engine);
//! [`app`] builds the router, so handler tests can call it without a socket; [`serve`] runs it on a
//! listener until a shutdown token fires, draining in-flight requests within a bound.
//!
//! Architecture invariant: this crate is the only one that knows HTTP and the API's JSON shapes; it
//! never writes SQL (that is the store's job) and never re-implements a decision rule (the core's).

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod devices;
pub mod error;
pub mod events;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod receipts;
pub mod signing;
pub mod sinks;
pub mod state;
pub mod vault;
pub mod workers;

use std::sync::Arc;

use axum::Router;
use consentry_core::Engine;
use consentry_core::catalog::{Catalog, CatalogDocument};
use consentry_store::{Store, StoreConfig, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::{AppState, CatalogView};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the stored catalogue is not valid ({0} problems); apply a corrected one with `consentry catalog apply`"
    )]
    StoredCatalog(usize),
    #[error("{0}")]
    Other(String),
}

/// A prepared service.
pub struct Opened {
    pub state: AppState,
    /// The admin key made on this first start, to be shown once; `None` on later starts or when it came
    /// from `CONSENTRY_BOOTSTRAP_ADMIN_KEY`.
    pub generated_admin_key: Option<String>,
}

/// Opens the store named by `config`, bootstraps a fresh one and loads the decision engine.
pub async fn open(config: Config) -> Result<Opened, StartError> {
    let metrics = Arc::new(Metrics::new());
    let batch = metrics.commit_batch.clone();
    let store = consentry_store::open(StoreConfig {
        data_dir: config.data.clone(),
        database_url: config.database_url.clone(),
        max_connections: config.database_max_connections,
        commit_observer: Some(Arc::new(move |n| batch.observe(n as f64))),
    })
    .await?;
    let kek = match vault::load_kek(&config) {
        Ok(kek) => kek,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    if !store.claim_kek(&kek.id()).await? {
        store.close().await;
        return Err(StartError::Other(format!(
            "the vault's key-encryption key (id {}) is not the one this store's vault was started with; \
             configure that one (CONSENTRY_KEK or kek_file)",
            kek.id()
        )));
    }
    let generated_admin_key = bootstrap(store.as_ref(), config.bootstrap_admin_key.as_deref()).await?;
    let view = ensure_catalog(store.as_ref()).await?;
    let engine = Engine::new();
    engine.set_catalog(&view.catalog).map_err(|e| StartError::Other(e.to_string()))?;
    // Read the head before loading: what other nodes append meanwhile is caught up by the follower.
    let ledger_position = store.ledger_head().await?.events;
    warm(store.as_ref(), &engine).await?;
    metrics.subjects.set(engine.subject_count() as i64);
    let signing = signing::Signing::load_or_create(store.as_ref()).await?;
    let state = AppState::new(store, engine, metrics, config, view, signing, kek);
    state.followed.store(ledger_position, std::sync::atomic::Ordering::Relaxed);
    Ok(Opened { state, generated_admin_key })
}

/// On a fresh store, creates the admin key; returns it when it was generated here.
pub async fn bootstrap(store: &dyn Store, given: Option<&str>) -> Result<Option<String>, StartError> {
    let key = auth::make_key("admin", &[auth::Scope::Admin], given)
        .map_err(|e| StartError::Other(format!("cannot make the admin key: {e}")))?;
    let created = store.initialise(key.record).await?;
    Ok((created && given.is_none()).then_some(key.secret))
}

/// Installs the default catalogue on a store that has none; returns the current one.
pub async fn ensure_catalog(store: &dyn Store) -> Result<CatalogView, StartError> {
    let stored = match store.catalog().await? {
        Some(stored) => stored,
        None => store.apply_catalog(&CatalogDocument::default_catalog()).await?,
    };
    let catalog =
        Catalog::validate(stored.document.clone()).map_err(|p| StartError::StoredCatalog(p.len()))?;
    Ok(CatalogView { stored, catalog })
}

/// Loads every subject's current state into the engine.
async fn warm(store: &dyn Store, engine: &Engine) -> Result<(), StartError> {
    let mut after = 0;
    loop {
        let page = store.current_page(after, 10_000).await?;
        let Some((_, last)) = page.last() else { return Ok(()) };
        after = last.seq;
        for (subject, event) in &page {
            engine.apply(subject.as_str(), event).map_err(|e| StartError::Other(e.to_string()))?;
        }
    }
}

/// The router with every route, middleware and limit.
pub fn app(state: AppState) -> Router {
    api::router(state)
}

/// Serves `state` on `listener` until `shutdown` fires, then lets in-flight requests finish for at most the
/// configured bound, stops the workers and closes the store.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let drain = state.config.shutdown_timeout();
    let stop_workers = CancellationToken::new();
    let from = state.followed.load(std::sync::atomic::Ordering::Relaxed);
    let follower = tokio::spawn(workers::follower::run(state.clone(), from, stop_workers.clone()));
    let checkpoints = tokio::spawn(workers::checkpoints::run(state.clone(), stop_workers.clone()));
    let expiry = tokio::spawn(workers::expiry::run(state.clone(), stop_workers.clone()));
    let retention = tokio::spawn(workers::retention::run(state.clone(), stop_workers.clone()));
    let dispatcher = tokio::spawn(workers::dispatcher::run(
        state.clone(),
        Arc::clone(&state.dispatch_wake),
        stop_workers.clone(),
    ));
    let device_mqtt = tokio::spawn(workers::device_mqtt::run(state.clone(), stop_workers.clone()));
    let access = {
        let (state, stop) = (state.clone(), stop_workers.clone());
        tokio::spawn(async move { state.access.run(state.store.as_ref(), stop).await })
    };
    let store = Arc::clone(&state.store);
    let last_state = state.clone();
    let router_state = state.clone();
    let router = app(state);
    let signal = shutdown.clone();
    {
        // Open snapshot streams end when shutdown begins, so they do not hold up the drain.
        let (state, signal) = (router_state.clone(), shutdown.clone());
        tokio::spawn(async move {
            signal.cancelled().await;
            state.devices.shutting_down();
        });
    }
    let server =
        axum::serve(listener, router).with_graceful_shutdown(async move { signal.cancelled().await });
    let mut server = std::pin::pin!(server.into_future());
    let result = tokio::select! {
        r = &mut server => r,
        () = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(seconds = drain.as_secs(), "in-flight requests did not finish in time; stopping anyway");
            Ok(())
        }
    };
    stop_workers.cancel();
    let _ = follower.await;
    let _ = checkpoints.await;
    let _ = dispatcher.await;
    let _ = expiry.await;
    let _ = retention.await;
    let _ = device_mqtt.await;
    let _ = access.await;
    // A last checkpoint, so the final head is signed.
    let last = last_state.store.checkpoints().await.ok().and_then(|c| c.last().map(|c| c.events));
    if let Err(e) = workers::checkpoints::take(&last_state, last).await {
        tracing::warn!(error = %e, "the shutdown checkpoint failed");
    }
    drop(last_state);
    store.close().await;
    result
}
