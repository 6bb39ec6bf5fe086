//! Consentry's storage: the [`Store`] trait every backend implements, the records it keeps, and the
//! factory that picks a backend from configuration.
//!
//! Architecture invariant: only this crate knows SQL. Callers see domain types from `consentry-core` and
//! the plain records re-exported here; a backend is chosen once, by [`open`], and passed down as
//! `Arc<dyn Store>`. Every backend passes the same conformance suite (`testing::conformance`, built with
//! the `testing` feature, which only tests enable).
//!
//! This file is the crate's map and its factory, nothing else. The library's modules import one another
//! downwards, never through the re-exports below: `error`, then `model`, `common`, `recent` and `sql`, then the traits
//! (`store`, `vault`, `devices`, `requests`, `tokens`, `console`), then the backends (`sqlite`, `postgres`). The
//! suites under `testing` use the re-exports, as any caller does.

mod common;
pub mod console;
pub mod devices;
mod error;
pub mod evidence;
pub mod guardians;
pub mod households;
pub mod identifiers;
pub mod links;
mod model;
pub mod postgres;
mod recent;
pub mod requests;
mod sql;
pub mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod vault;
pub mod verifications;

use std::path::PathBuf;
use std::sync::Arc;

pub use crate::common::random_bytes;
pub use crate::console::{AttemptBucket, ConsoleStore, PurposeChecks, RequestDay, RollupRow, minute_of};
pub use crate::devices::{DeviceRecord, DeviceStore, NewDevice};
pub use crate::error::{Result, StoreError};
pub use crate::evidence::{EvidenceStore, ImportedEvidence};
pub use crate::guardians::GuardianStore;
pub use crate::households::{
    AddedMember, DeletedHousehold, HouseholdDevice, HouseholdMember, HouseholdRecord, HouseholdStore,
    NewHouseholdDevice,
};
pub use crate::identifiers::IdentifierStore;
pub use crate::links::{LinkPlan, LinkRead, LinkRefusal, LinkStore, LinkedSubjects, MovedSubject};
pub use crate::model::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, ClaimedEvent, CommitObserver, Committed,
    DELIVERY_DEAD, DELIVERY_DELIVERED, DELIVERY_PENDING, DeliveryOutcome, DeliveryRecord, DestinationPatch,
    DestinationRecord, EventMatcher, ExportRow, ImportKeys, LedgerHead, NewDestination, NoticeVersion,
    OutboxEvent, OutboxFilter, OutboxMessage, OutboxPruned, ReplayFrom, Sealed, SealedReceipt, Sealer,
    SigningKeyRecord, StoredCatalog, StoredCheckpoint, StoredReceipt, TlogCheckpoint, Wants,
    default_outbox_filter,
};
pub use crate::store::Store;
pub use crate::tokens::TokenStore;
pub use crate::verifications::VerificationStore;

/// Where and how to open the store.
#[derive(Clone)]
pub struct StoreConfig {
    /// The data folder of the embedded store.
    pub data_dir: PathBuf,
    /// A `postgres://` URL: use PostgreSQL instead of the embedded store.
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub max_connections: u32,
    pub commit_observer: Option<CommitObserver>,
    /// Which outbox messages some destination wants; [`default_outbox_filter`] when `None`.
    pub outbox_filter: Option<OutboxFilter>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// The embedded store in `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            max_connections: 16,
            commit_observer: None,
            outbox_filter: None,
        }
    }

    /// PostgreSQL at `url`.
    pub fn postgres(url: impl Into<String>) -> Self {
        Self {
            data_dir: PathBuf::new(),
            database_url: Some(url.into()),
            max_connections: 16,
            commit_observer: None,
            outbox_filter: None,
        }
    }
}

/// The one place a backend is chosen.
pub async fn open(config: StoreConfig) -> Result<Arc<dyn Store>> {
    let filter = config.outbox_filter.unwrap_or_else(default_outbox_filter);
    match &config.database_url {
        Some(url) => Ok(Arc::new(
            postgres::PostgresStore::open_with(url, config.max_connections, config.commit_observer, filter)
                .await?,
        )),
        None => Ok(Arc::new(
            sqlite::SqliteStore::open_with(&config.data_dir, config.commit_observer, filter).await?,
        )),
    }
}

/// Opens the store to read only. The embedded store is opened beside a server that may be writing it
/// (no folder lock, no writer, no migration: a schema other than this build's is refused); PostgreSQL,
/// which any number of processes share, is opened as [`open`] does.
pub async fn open_read_only(config: StoreConfig) -> Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(_) => open(config).await,
        None => Ok(Arc::new(sqlite::SqliteStore::open_read_only(&config.data_dir).await?)),
    }
}
