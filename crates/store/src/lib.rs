//! Consentry's storage: the [`Store`] trait every backend implements, the records it keeps, and the
//! factory that picks a backend from configuration.
//!
//! Architecture invariant: only this crate knows SQL. Callers see domain types from `consentry-core` and
//! the plain records below; a backend is chosen once, by [`open`], and passed down as `Arc<dyn Store>`.
//! Every backend passes the same conformance suite (`testing::conformance`, built with the `testing`
//! feature, which only tests enable).

pub mod devices;
pub mod postgres;
pub mod requests;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vault;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use serde::Serialize;

pub use crate::devices::{DeviceRecord, DeviceStore, NewDevice};

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

/// Seals one request's events into a receipt and the outbox messages they cause. [`Store::append_sealed`]
/// calls it inside the commit, with the events as placed (sequence numbers and hashes final), and stores
/// the receipt and the messages in the same transaction. An `Err` fails only that request. It runs on the
/// store's writer, so it must be quick (a signature, not I/O).
pub type Sealer = Box<dyn FnOnce(&[Event]) -> Result<Sealed, String> + Send>;

/// What a [`Sealer`] produces: a receipt (or none) and the messages to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    pub receipt: Option<SealedReceipt>,
    pub outbox: Vec<OutboxMessage>,
}

/// A message for the destinations, stored in the outbox under the subject's pseudonym. The payload must not
/// contain the subject id: the dispatcher adds it (from the key store) when sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// E.g. `consent.granted`; destinations select messages by patterns on it.
    pub event_type: String,
    /// JSON.
    pub payload: String,
}

/// A sealed receipt: its id (unique, e.g. random) and its signed form.
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

/// A destination that outbox messages propagate to. Its signing secret lives in the key store, apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationRecord {
    pub id: String,
    pub name: String,
    /// `webhook`, `nats` or `mqtt`.
    pub kind: String,
    pub url: String,
    /// The NATS subject or MQTT topic.
    pub target: Option<String>,
    /// Patterns on event types, like `consent.*`.
    pub event_types: Vec<String>,
    pub paused: bool,
    /// Set when a delivery to it went dead (a dead letter).
    pub flagged: bool,
    pub created_at: Timestamp,
}

/// A destination to create, with its webhook signing secret (kept in the key store). `Debug` hides the
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDestination {
    pub record: DestinationRecord,
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for NewDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDestination")
            .field("record", &self.record)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Changes to a destination; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub paused: Option<bool>,
}

/// A delivery taken by [`Store::claim_deliveries`], leased to the caller. `subject` comes from the key
/// store (`None` once the subject was erased); never log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub destination_id: String,
    pub outbox_id: i64,
    pub subject: Option<SubjectId>,
    pub event_type: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the outbox message was created.
    pub created_at: Timestamp,
}

/// How an attempt to deliver ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        at: Timestamp,
    },
    /// Try again at `next_attempt_at`; until then the subject's later messages to this destination wait.
    Retry {
        error: String,
        next_attempt_at: Timestamp,
    },
    /// Give up: a dead letter. Flags the destination; the subject's later messages go on.
    Dead {
        error: String,
    },
}

/// A delivery as listed: its message, state and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub outbox_id: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When it is next due; only while pending.
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// When the outbox message was created.
    pub created_at: Timestamp,
}

/// Selects outbox messages by event type, for [`Store::fan_out`] and [`Store::replay`]; it runs in the
/// caller's process, never in SQL. (An alias, so that `async_trait` keeps its argument higher-ranked.)
pub type EventMatcher = dyn Fn(&str) -> bool + Sync;

/// Where a [`Store::replay`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Outbox messages with `id >=` this.
    OutboxId(i64),
    /// Outbox messages created at or after this.
    Time(Timestamp),
}

/// Delivery states as stored.
pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_DELIVERED: &str = "delivered";
pub const DELIVERY_DEAD: &str = "dead";

/// Storage of everything Consentry keeps. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: requests::RequestStore + vault::VaultStore + DeviceStore + Send + Sync + 'static {
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
    /// [`append`](Store::append), and with `seal` a receipt and outbox messages: the backend calls `seal`
    /// inside the commit with the placed events and stores its receipt and messages (under the subject's
    /// pseudonym) in the same transaction, so they exist if and only if the events do. A sealer error (or panic) fails this request alone with [`StoreError::Backend`]
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

    /// Puts messages that no ledger event carries in the outbox, durably, under the subject's pseudonym
    /// (creating one for a subject without). Ordered after every message already committed.
    async fn enqueue(&self, subject: &SubjectId, messages: Vec<OutboxMessage>) -> Result<()>;

    /// Creates a destination (an `id` already used is a [`StoreError::Conflict`]) and stores its secret in
    /// the key store. It receives the outbox messages committed from now on, not older ones.
    async fn create_destination(&self, destination: NewDestination) -> Result<()>;
    /// Every destination, oldest first.
    async fn destinations(&self) -> Result<Vec<DestinationRecord>>;
    async fn destination(&self, id: &str) -> Result<Option<DestinationRecord>>;
    /// The destination's signing secret, from the key store.
    async fn destination_secret(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Applies `patch`; returns false when no destination has that id.
    async fn update_destination(&self, id: &str, patch: DestinationPatch) -> Result<bool>;
    /// Deletes the destination with its deliveries and secret; returns false when none has that id.
    async fn delete_destination(&self, id: &str) -> Result<bool>;

    /// Reads up to `limit` outbox messages after the destination's cursor, adds a pending delivery (due
    /// now) for each whose event type `matches`, and moves the cursor past all it read, atomically (never
    /// twice for one range, whichever node runs it). Returns the messages read (0: caught up, no such
    /// destination, or a concurrent fan-out of it took the range first).
    async fn fan_out(&self, destination_id: &str, matches: &EventMatcher, limit: u32) -> Result<u64>;
    /// Leases up to `limit` due deliveries (pending, `next_attempt_at <= now`, not leased, destination not
    /// paused) until `now + lease`, oldest first. A delivery waits while the same destination has an
    /// earlier pending delivery for the same subject, so each subject's messages go out in order. No other
    /// caller (task or node) gets a delivery while its lease lasts.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records an attempt: counts it, keeps its error, ends the lease. `Dead` flags the destination. A
    /// delivery no longer pending (e.g. completed by another worker after a lease ran out) is left alone.
    async fn complete_delivery(
        &self,
        destination_id: &str,
        outbox_id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<()>;
    /// [`complete_delivery`](Store::complete_delivery) for many deliveries, in one transaction.
    async fn complete_deliveries(&self, outcomes: Vec<(String, i64, DeliveryOutcome)>) -> Result<()>;
    /// The destination's deliveries with `outbox_id > after` (and the given status), by outbox id, at most
    /// `limit`.
    async fn deliveries(
        &self,
        destination_id: &str,
        status: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>>;
    /// Makes every outbox message from `from` that `matches` pending again for the destination (attempts
    /// 0, due now), adding deliveries where none were. Covers the messages fanned out to it so far (later
    /// ones reach it by fan-out). Returns how many.
    async fn replay(&self, destination_id: &str, from: ReplayFrom, matches: &EventMatcher) -> Result<u64>;
    /// Seconds since the oldest outbox message still pending for a destination that is not paused was
    /// created; `None` when nothing is pending.
    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>>;
    /// The number of dead deliveries.
    async fn dead_letters(&self) -> Result<u64>;

    /// Signals (the newest ledger sequence number) when another node may have appended; `None` for a
    /// backend with a single writer, whose appends all pass through this process.
    /// Grants and renewals still in force (the current statement for their purpose and scope) whose
    /// `expires_at` is at or before `now`, with their subjects, oldest expiry first, at most `limit`.
    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>>;
    /// Takes or renews the lease `name` for `holder` until `until`, unless another holder's lease is still
    /// live at `now`. Returns whether `holder` holds it. Keeps singleton background jobs on one node.
    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool>;
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
pub(crate) fn run_sealer(seal: Sealer, events: &[Event]) -> Result<Sealed> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| seal(events))) {
        Ok(Ok(sealed)) => Ok(sealed),
        Ok(Err(why)) => Err(StoreError::Backend(format!("sealing the receipt failed: {why}"))),
        Err(_) => Err(StoreError::Backend("sealing the receipt panicked".into())),
    }
}

/// `now + lease` in microseconds, saturating.
pub(crate) fn lease_end(now: Timestamp, lease: std::time::Duration) -> i64 {
    now.micros().saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX))
}

/// Seconds from `at` (microseconds) to `now`, never negative.
pub(crate) fn lag_seconds(now: Timestamp, at: i64) -> f64 {
    (now.micros().saturating_sub(at).max(0)) as f64 / 1e6
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
    Ok(buf)
}
