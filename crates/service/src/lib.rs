//! Consentry's use cases, under every face: the HTTP API and the preference centre (`consentry-server`),
//! the CLI (`consentry`) and the background workers.
//!
//! Each use case is a function taking the shared [`Services`] and a typed input, returning a typed output
//! or an [`Error`] with a stable code. Nothing here knows HTTP: the faces parse and authorise, call one
//! function here, and render what it returns. [`open`] prepares everything a node needs (store, keys, a
//! warm decision engine); [`workers::start`] runs the background jobs.
//!
//! Architecture invariant: this crate calls `consentry-store` and `consentry-core`, never a face above it;
//! it writes no SQL (the store's job) and re-implements no decision rule (the core's).

pub mod access;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod check;
pub mod config;
pub mod consents;
pub mod console;
pub mod destinations;
pub mod devices;
pub mod egress;
pub mod erasure;
pub mod error;
pub mod events;
pub mod evidence;
pub mod export;
pub mod gpc;
pub mod guardians;
pub mod households;
pub mod identifiers;
pub mod images;
pub mod jurisdiction;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod preferences;
pub mod receipts;
pub mod records;
pub mod requests;
pub mod schema;
pub mod signals;
pub mod signing;
pub mod sinks;
pub mod state;
pub mod tlog;
pub mod tokens;
pub mod transfer;
pub mod vault;
pub mod verification;
pub mod whole;
pub mod workers;

use std::sync::Arc;

use consentry_core::catalog::{Catalog, CatalogDocument};
use consentry_core::{Engine, Timestamp};
use consentry_store::{Store, StoreConfig, StoreError};

pub use crate::config::Config;
pub use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Metrics;
pub use crate::state::{CatalogView, Services};

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
    pub state: Services,
    /// The admin key made on this first start, to be shown once; `None` on later starts or when it came
    /// from `CONSENTRY_BOOTSTRAP_ADMIN_KEY`.
    pub generated_admin_key: Option<String>,
}

/// Opens the store named by `config`, bootstraps a fresh one and loads the decision engine.
pub async fn open(config: Config) -> Result<Opened, StartError> {
    let metrics = Arc::new(Metrics::new());
    let batch = metrics.commit_batch.clone();
    // Hands each commit's tree head to the checkpoint signer; the writer only swaps a value.
    let heads = tlog::Heads::default();
    let committed = heads.clone();
    let store = consentry_store::open(StoreConfig {
        data_dir: config.data.clone(),
        database_url: config.database_url.clone(),
        max_connections: config.database_max_connections,
        commit_observer: Some(Arc::new(move |c: consentry_store::Committed| {
            batch.observe(c.events as f64);
            committed.committed(&c);
        })),
        // The dispatcher's own rule: the outbox keeps exactly what some destination's fan-out would take.
        outbox_filter: Some(Arc::new(|patterns: &[String], event_type: &str| {
            workers::dispatcher::type_matches(patterns, event_type)
        })),
    })
    .await?;
    let kek = match vault::load_kek(config.kek.as_deref(), &config.kek_path()) {
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
    let warmed = images::warm(store.as_ref(), &engine, ledger_position).await?;
    tracing::info!(?warmed, subjects = engine.subject_count(), "decision engine loaded");
    if config.checkpoint_interval_secs.is_some() {
        tracing::warn!(
            "checkpoint_interval_secs has no effect any more: the ledger's checkpoints are the transparency \
             log's, signed after each commit group; remove the setting"
        );
    }
    metrics.subjects.set(engine.subject_count() as i64);
    let signing = signing::Signing::load_or_create(store.as_ref()).await?;
    let mut config = config;
    if config.event_source.is_none() || config.tlog_origin.is_none() {
        // The erasure secret: made once per store on first start, shared by every node, kept for good.
        let secret = store.erasure_secret().await?;
        config.event_source.get_or_insert_with(|| events::installation_source(&secret));
        config.tlog_origin.get_or_insert_with(|| events::installation_origin(&secret));
    }
    let log = tlog::Tlog::new(config.tlog_origin.clone().unwrap_or_default(), heads);
    // The key pepper: made once per store in its key store, loaded once here, never logged.
    let pepper = auth::KeyPepper::new(store.key_pepper().await?);
    let state = Services::new(store, engine, metrics, config, view, signing, kek, pepper, log);
    state.erasures.load(state.store.as_ref()).await?;
    // Ages after the ledger: the engine then knows every known child before the first check.
    let ages = guardians::age::load_since(&state, Timestamp::from_micros(0))
        .await
        .map_err(|e| StartError::Other(format!("loading subjects' ages: {e}")))?;
    state.ages_read.store(ages.map_or(0, Timestamp::micros), std::sync::atomic::Ordering::Relaxed);
    state.aliases.load(state.store.as_ref()).await?;
    // Linked records keep no state of their own: an image's tail may have brought some back.
    if matches!(warmed, images::Warmed::Image { .. }) {
        state.engine.forget_where(|subject| state.aliases.resolve(subject).is_some());
    }
    // The ledger still holds an erasure that stopped before its pseudonym key went (the request sweep
    // finishes it later): its tombstone, stored first, keeps the subject out of the engine from the start.
    if state.erasures.any() {
        state.engine.forget_where(|subject| state.erasures.is_erased(subject));
        state.metrics.subjects.set(state.engine.subject_count() as i64);
    }
    state.followed.store(ledger_position, std::sync::atomic::Ordering::Relaxed);
    state.image_cursor.store(ledger_position, std::sync::atomic::Ordering::Relaxed);
    if let images::Warmed::Image { covers, .. } = warmed {
        state.image_covers.store(covers, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Opened { state, generated_admin_key })
}

/// On a fresh store, creates the admin key (hashed under the store's pepper); returns it when it was
/// generated here.
pub async fn bootstrap(store: &dyn Store, given: Option<&str>) -> Result<Option<String>, StartError> {
    let pepper = store.key_pepper().await.map(auth::KeyPepper::new)?;
    let key = auth::make_key(&pepper, "admin", &[auth::Scope::Admin], given)
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

/// Page size of a list: `limit` (default 100), which must lie between 1 and `max`.
pub fn page_limit(limit: Option<u32>, max: u32) -> Result<u32> {
    let limit = limit.unwrap_or(100);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::InvalidQuery(format!("limit must be between 1 and {max}")))
    }
}
