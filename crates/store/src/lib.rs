//! Consentry's storage: the [`Store`] trait every backend implements, the records it keeps, and the
//! factory that picks a backend from configuration.
//!
//! Architecture invariant: only this crate knows SQL. Callers see domain types from `consentry-core` and
//! the plain records below; a backend is chosen once, by [`open`], and passed down as `Arc<dyn Store>`.
//! Every backend passes the same [`conformance`] suite.

pub mod conformance;
pub mod postgres;
pub mod sqlite;
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use serde::Serialize;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A storage failure. Messages name no personal data, so they may be logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. an active API key with the same name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database was written by a newer Consentry and cannot be used by this one.
    #[error(
        "the database has schema version {found}, newer than the {supported} this build knows; run the newer Consentry or restore a backup"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// Another process holds the data folder.
    #[error("the data folder {0} is in use by another Consentry process; stop it first")]
    Locked(PathBuf),
    /// The store is shutting down and takes no more work.
    #[error("the store is closed")]
    Closed,
    /// Anything the backend reported; the text is for logs only, never for API responses.
    #[error("storage backend failure: {0}")]
    Backend(String),
}

/// An API key as stored: its secret only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(skip)]
    pub secret_hash: [u8; 32],
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// One version of one notice, identified by the SHA-256 of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeVersion {
    pub key: String,
    pub version: u32,
    pub sha256: String,
    pub title: String,
    pub language: String,
    pub url: Option<String>,
    pub text: String,
    pub created_at: Timestamp,
}

/// An applied catalogue version, with the current version of each of its notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCatalog {
    pub version: u64,
    pub applied_at: Timestamp,
    pub document: CatalogDocument,
    pub notices: Vec<NoticeVersion>,
}

/// The ledger's length and the hash of its last event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerHead {
    pub events: u64,
    pub head: String,
}

/// Called after every commit of ledger events with the number of events it held (for metrics).
pub type CommitObserver = Arc<dyn Fn(usize) + Send + Sync>;

/// Storage of everything Consentry keeps. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Marks the store initialised and stores `admin` as its first key, unless that was done before.
    /// Returns whether this call did it.
    async fn initialise(&self, admin: ApiKey) -> Result<bool>;

    async fn insert_api_key(&self, key: ApiKey) -> Result<()>;
    /// Active keys, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// An active key by the SHA-256 of its secret.
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>>;
    /// Revokes an active key; returns false when no active key has that id.
    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool>;

    /// The current catalogue, if one was ever applied.
    async fn catalog(&self) -> Result<Option<StoredCatalog>>;
    /// Stores `document` (already validated) as the next catalogue version. A notice whose text is
    /// unchanged keeps its version; a changed or new text gets the next version of that notice.
    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog>;
    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>>;

    /// Appends the events of one subject, atomically and durably, after the ledger's current head.
    /// Concurrent calls are group-committed; each returns once its own events are durable.
    async fn append(&self, subject: &SubjectId, events: Vec<NewEvent>) -> Result<Vec<Event>>;
    /// The subject's events after sequence number `after`, oldest first, at most `limit`.
    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>>;
    /// The subject's current state: the latest event per purpose and scope, oldest first.
    async fn current(&self, subject: &SubjectId) -> Result<Vec<Event>>;
    /// The current state of every subject, in pages ordered by event sequence number: the statements with
    /// `seq > after`, at most `limit`. Used to warm the decision engine.
    async fn current_page(&self, after: u64, limit: u32) -> Result<Vec<(SubjectId, Event)>>;
    /// Ledger events with `seq > after`, oldest first, at most `limit`, whoever they belong to.
    async fn events_page(&self, after: u64, limit: u32) -> Result<Vec<Event>>;
    async fn ledger_head(&self) -> Result<LedgerHead>;
    /// Ledger events with `seq > after` with the subject each belongs to (`None` once the link is gone),
    /// oldest first: the change feed that keeps other nodes' engines fresh.
    async fn subject_events_page(&self, after: u64, limit: u32) -> Result<Vec<(Option<SubjectId>, Event)>>;
    /// The current catalogue version, cheaply, so nodes notice another node's apply.
    async fn catalog_version(&self) -> Result<Option<u64>>;
    /// Signals (the newest ledger sequence number) when another node may have appended; `None` for a
    /// backend with a single writer, whose appends all pass through this process.
    fn change_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Finishes queued work and closes the backend. Later calls fail with [`StoreError::Closed`].
    async fn close(&self);
}

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
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// The embedded store in `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), database_url: None, max_connections: 16, commit_observer: None }
    }

    /// PostgreSQL at `url`.
    pub fn postgres(url: impl Into<String>) -> Self {
        Self {
            data_dir: PathBuf::new(),
            database_url: Some(url.into()),
            max_connections: 16,
            commit_observer: None,
        }
    }
}

/// The one place a backend is chosen.
pub async fn open(config: StoreConfig) -> Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => Ok(Arc::new(
            postgres::PostgresStore::open(url, config.max_connections, config.commit_observer).await?,
        )),
        None => Ok(Arc::new(sqlite::SqliteStore::open(&config.data_dir, config.commit_observer).await?)),
    }
}

/// A JSON array of strings, as scope lists are stored.
pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// The canonical text of a scope, the key of the current-state table.
pub(crate) fn scope_key(scope: &consentry_core::Scope) -> String {
    format!(
        "{}|{}|{}",
        json_list(&scope.categories),
        json_list(&scope.channels),
        json_list(&scope.recipients)
    )
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
    Ok(buf)
}
