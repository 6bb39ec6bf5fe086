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

/// Seals one request's events into a receipt. [`Store::append_sealed`] calls it inside the commit, with the
/// events as placed (sequence numbers and hashes final), and stores the receipt in the same transaction. An
/// `Err` fails only that request. It runs on the store's writer, so it must be quick (a signature, not I/O).
pub type Sealer = Box<dyn FnOnce(&[Event]) -> Result<SealedReceipt, String> + Send>;

/// What a [`Sealer`] produces: the receipt's id (unique, e.g. random) and its signed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedReceipt {
    pub id: String,
    pub jws: String,
}

/// A stored receipt. `subject` comes from the key store; it is `None` once the subject was erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub id: String,
    pub subject: Option<SubjectId>,
    pub jws: String,
    pub created_at: Timestamp,
}

/// An Ed25519 signing key, kept in the key store. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub secret: [u8; 32],
    pub public: [u8; 32],
    pub created_at: Timestamp,
    /// Whether new signatures use this key; exactly one key is current once any exists.
    pub current: bool,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("secret", &"<hidden>")
            .field("public", &self.public)
            .field("created_at", &self.created_at)
            .field("current", &self.current)
            .finish()
    }
}

/// A signed statement of the ledger's head at some length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCheckpoint {
    pub events: u64,
    pub head: String,
    pub jws: String,
    pub created_at: Timestamp,
}

/// One access to a subject's data, to be logged. `route` should be the route template, never a path that
/// contains the subject id: only the subject's pseudonym may reach the data store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub subject: SubjectId,
    pub at: Timestamp,
    pub caller: String,
    pub route: String,
    pub purpose: String,
}

/// A logged access, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRecord {
    pub id: i64,
    pub at: Timestamp,
    pub caller: String,
    pub route: String,
    pub purpose: String,
}

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
    async fn append(&self, subject: &SubjectId, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        Ok(self.append_sealed(subject, events, None).await?.0)
    }
    /// [`append`](Store::append), and with `seal` a receipt: the backend calls `seal` inside the commit with
    /// the placed events and stores its receipt in the same transaction, so the receipt exists if and only
    /// if the events do. A sealer error (or panic) fails this request alone with [`StoreError::Backend`]
    /// (a receipt id already stored: [`StoreError::Conflict`] on SQLite; on PostgreSQL the whole group
    /// fails then), and the requests committed with it keep a gapless chain. No events, no sealer call,
    /// no receipt.
    async fn append_sealed(
        &self,
        subject: &SubjectId,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)>;
    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>>;
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
    /// Signing keys from the key store, oldest first (rotated-out keys stay, for verification).
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `key` and makes it the only current one, in one transaction, whatever `key.current` says.
    /// A `kid` already stored is a [`StoreError::Conflict`].
    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<()>;

    /// Stores a checkpoint of the ledger at `events` events; one already stored for `events` is kept.
    async fn insert_checkpoint(&self, events: u64, head: &str, jws: &str) -> Result<()>;
    /// Every checkpoint, ordered by `events`.
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>>;

    /// Logs accesses under the subjects' pseudonyms, creating a pseudonym key for a subject without one.
    async fn log_access(&self, entries: Vec<AccessEntry>) -> Result<()>;
    /// The subject's logged accesses with `id < before` (all when `None`), newest first, at most `limit`.
    async fn access_log(
        &self,
        subject: &SubjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>>;
    /// Adds `(subject, purpose, count, last)` to the stored check counts (`last` keeps the latest time).
    async fn add_check_counts(&self, counts: Vec<(SubjectId, String, u64, Timestamp)>) -> Result<()>;
    /// The subject's check counts as `(purpose, count, last)`, ordered by purpose.
    async fn check_counts(&self, subject: &SubjectId) -> Result<Vec<(String, u64, Timestamp)>>;

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

/// Check counts summed per subject and purpose (the latest `last` wins), in a stable order.
pub(crate) fn merge_counts(
    counts: Vec<(SubjectId, String, u64, Timestamp)>,
) -> std::collections::BTreeMap<(SubjectId, String), (u64, Timestamp)> {
    let mut merged = std::collections::BTreeMap::new();
    for (subject, purpose, n, last) in counts {
        let slot = merged.entry((subject, purpose)).or_insert((0u64, last));
        slot.0 = slot.0.saturating_add(n);
        slot.1 = slot.1.max(last);
    }
    merged
}

/// Runs a sealer, turning a panic into an error so the writer survives it.
pub(crate) fn run_sealer(seal: Sealer, events: &[Event]) -> Result<SealedReceipt> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| seal(events))) {
        Ok(Ok(receipt)) => Ok(receipt),
        Ok(Err(why)) => Err(StoreError::Backend(format!("sealing the receipt failed: {why}"))),
        Err(_) => Err(StoreError::Backend("sealing the receipt panicked".into())),
    }
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
    Ok(buf)
}
