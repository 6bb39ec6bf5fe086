//! The state every handler shares, passed in (never global): store, engine, catalogue, keys, metrics.

use std::ops::Deref;
use std::sync::{Arc, PoisonError, RwLock};

use consentry_core::catalog::Catalog;
use consentry_core::{Engine, Event, SubjectId};
use consentry_store::vault::Kek;
use consentry_store::{Store, StoredCatalog};

use crate::access::log::AccessLog;
use crate::auth::keys::{KeyCache, KeyPepper};
use crate::config::Config;
use crate::devices::broadcast::DeviceHub;
use crate::metrics::Metrics;
use crate::signing::Signing;
use crate::tlog::head::Tlog;

/// The current catalogue: as stored (with version and notice versions) and validated for look-ups.
#[derive(Debug)]
pub struct CatalogView {
    pub stored: StoredCatalog,
    pub catalog: Catalog,
}

#[derive(Clone)]
pub struct Services(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub keys: KeyCache,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    pub signing: Signing,
    /// The ledger's transparency log: origin, checkpoint signer wake-up, newest signed size.
    pub tlog: Tlog,
    pub access: AccessLog,
    /// Checks per purpose (and denied) since the last flush into the console's day counters.
    pub purpose_checks: crate::console::checks::CheckCounter,
    /// Erased subjects' tombstones.
    pub erasures: crate::erasure::tombstones::Erasures,
    /// Ids linked into another subject: old id → survivor.
    pub aliases: crate::links::aliases::Aliases,
    /// The vault's key-encryption key.
    pub kek: Kek,
    /// A random id of this process, for names that must differ between nodes (e.g. MQTT client ids).
    pub node_id: String,
    /// Wakes the delivery dispatcher after a write, so events leave without waiting for its timer.
    pub dispatch_wake: Arc<tokio::sync::Notify>,
    /// Tells device snapshot streams and the MQTT publisher which subjects changed.
    pub devices: DeviceHub,
    catalog: RwLock<Arc<CatalogView>>,
    /// The ledger position the engine was loaded at; the follower continues from there.
    pub followed: std::sync::atomic::AtomicU64,
    /// Every ledger event up to this position is applied to the engine (by the load at start, or by the
    /// image writer reading the ledger): where the image writer's next read starts.
    pub image_cursor: std::sync::atomic::AtomicU64,
    /// The ledger position the newest engine image this node loaded or wrote covers (0: none).
    pub image_covers: std::sync::atomic::AtomicU64,
    /// Set when a committed event could not be applied to the engine: the engine then lacks part of the
    /// ledger, and no engine image is written from it (the next start's full load rebuilds it whole).
    pub engine_incomplete: std::sync::atomic::AtomicBool,
    /// The latest change time (microseconds) of the subjects' ages the engine was loaded with; the
    /// follower reads other nodes' changes from a little before it.
    pub ages_read: std::sync::atomic::AtomicI64,
    /// Serialises catalogue applies so the engine and the view change together.
    pub catalog_apply: tokio::sync::Mutex<()>,
    /// Serialises recording Global Privacy Control signals, so concurrent first requests record it once.
    pub gpc_lock: tokio::sync::Mutex<()>,
    /// Sends verification codes by mail; `None` without `smtp_url`.
    pub mailer: Option<crate::verification::mail::Mailer>,
    /// Sends verification codes by SMS; `None` without `sms_webhook_url`.
    pub sms: Option<crate::verification::sms::SmsSender>,
}

impl Deref for Services {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    #[allow(clippy::too_many_arguments)] // each is one part of the shared state, loaded by `open`
    pub fn new(
        store: Arc<dyn Store>,
        engine: Engine,
        metrics: Arc<Metrics>,
        config: Config,
        catalog: CatalogView,
        signing: Signing,
        kek: Kek,
        pepper: KeyPepper,
        tlog: Tlog,
    ) -> Self {
        let mailer = match (&config.smtp_url, &config.smtp_from) {
            (Some(url), Some(from)) => crate::verification::mail::Mailer::new(url, from)
                .inspect_err(|e| tracing::error!(error = %e, "smtp_url: no mail can be sent"))
                .ok(),
            _ => None,
        };
        if mailer.is_none() {
            tracing::info!("no smtp_url: verifications of people by e-mail are unavailable (503)");
        }
        let sms = match (&config.sms_webhook_url, &config.sms_webhook_secret) {
            (Some(url), Some(secret)) => {
                // Validated when the configuration was loaded.
                let policy = crate::egress::AddressPolicy::parse(&config.allow_private_destinations)
                    .unwrap_or_default();
                let timeout = std::time::Duration::from_secs(config.webhook_timeout_secs);
                crate::verification::sms::SmsSender::new(url, secret, timeout, policy)
                    .inspect_err(|e| tracing::error!(error = %e, "sms_webhook_url: no SMS can be sent"))
                    .ok()
            }
            _ => None,
        };
        Self(Arc::new(Inner {
            store,
            engine,
            keys: KeyCache::new(pepper),
            metrics,
            config,
            signing,
            tlog,
            access: AccessLog::default(),
            purpose_checks: crate::console::checks::CheckCounter::default(),
            erasures: crate::erasure::tombstones::Erasures::default(),
            aliases: crate::links::aliases::Aliases::default(),
            kek,
            dispatch_wake: Arc::new(tokio::sync::Notify::new()),
            devices: DeviceHub::default(),
            node_id: consentry_store::random_bytes::<4>()
                .map_or_else(|_| "node".to_owned(), |b| b.iter().map(|x| format!("{x:02x}")).collect()),
            catalog: RwLock::new(Arc::new(catalog)),
            followed: std::sync::atomic::AtomicU64::new(0),
            image_cursor: std::sync::atomic::AtomicU64::new(0),
            image_covers: std::sync::atomic::AtomicU64::new(0),
            engine_incomplete: std::sync::atomic::AtomicBool::new(false),
            ages_read: std::sync::atomic::AtomicI64::new(0),
            catalog_apply: tokio::sync::Mutex::new(()),
            gpc_lock: tokio::sync::Mutex::new(()),
            mailer,
            sms,
        }))
    }

    /// Applies committed events of `subject` to the engine (every write path and the follower go through
    /// here). An erased subject, or one whose erasure has begun (its tombstone is set while its key still
    /// exists), is never in the engine: the check path consults tombstones only for subjects the engine
    /// does not hold, so applying their events would let checks answer from their consent again.
    pub fn apply_committed(&self, subject: &SubjectId, events: &[Event]) {
        if self.erasures.is_erased(subject.as_str()) {
            self.engine.forget(subject.as_str());
            return;
        }
        for e in events {
            if let Err(err) = self.engine.apply(subject.as_str(), e) {
                // The event is durable; the engine is rebuilt whole from the store on the next start, and
                // no image is taken of it until then.
                self.engine_incomplete.store(true, std::sync::atomic::Ordering::Release);
                tracing::error!(error = %err, seq = e.seq, "could not apply a committed event to the engine");
            }
        }
        // An erasure that began while the events were applied takes them out again.
        if self.erasures.is_erased(subject.as_str()) {
            self.engine.forget(subject.as_str());
        }
    }

    pub fn catalog(&self) -> Arc<CatalogView> {
        Arc::clone(&self.catalog.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set_catalog(&self, view: CatalogView) {
        *self.catalog.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(view);
    }
}
