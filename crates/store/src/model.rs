//! The records the store keeps and hands back (keys, catalogue, ledger, receipts, access log, propagation),
//! shared by the [`Store`](crate::Store) trait and every backend.

use std::sync::Arc;

use consentry_core::catalog::CatalogDocument;
use consentry_core::{Event, SubjectId, Timestamp};
use serde::Serialize;

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

/// What one commit of ledger events did: how many events it held (for metrics) and the ledger's Merkle
/// tree head after it, which the checkpoint signer signs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The events the commit appended.
    pub events: usize,
    /// The tree's size after the commit: the ledger's length.
    pub size: u64,
    /// The tree's root at `size` leaves.
    pub root: consentry_core::merkle::Hash,
}

/// Called after every commit of ledger events, on the store's writer: it must only hand the head on (no
/// I/O, no signature).
pub type CommitObserver = Arc<dyn Fn(Committed) + Send + Sync>;

/// Seals one request's events into a receipt and the outbox messages they cause.
/// [`Store::append_sealed`](crate::Store::append_sealed) calls it inside the commit, with the events as
/// placed (sequence numbers and hashes final), and stores the receipt and the messages in the same
/// transaction. An `Err` fails only that request. It runs on the store's writer, so it must be quick (a
/// signature, not I/O). Its second argument says which event types some destination wants, as the
/// writing transaction sees the destinations (none can be created or changed before the commit): a
/// message of any other type would not be stored, so it need not be built.
pub type Sealer = Box<dyn FnOnce(&[Event], &Wants<'_>) -> Result<Sealed, String> + Send>;

/// Whether some destination wants messages of an event type (see [`Sealer`]).
pub type Wants<'a> = dyn Fn(&str) -> bool + 'a;

/// Which changes of another platform an import appends: each event's id at its `source`, in the order of
/// the events. A `(source, id)` placed once is never placed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportKeys {
    pub source: String,
    pub ids: Vec<String>,
}

/// What a [`Sealer`] produces: a receipt (or none) and the messages to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    pub receipt: Option<SealedReceipt>,
    pub outbox: Vec<OutboxMessage>,
    /// Messages each put in the outbox (after `outbox`, in this order) only when the placed event with
    /// that seq is in force once the write is applied: the latest of its purpose, scope and stance in the
    /// current state, as the writing transaction sees it (every write committed before, and those earlier
    /// in the same commit group). An import's `consent.<action>` events: a change older than what the
    /// state holds, or than a later change of the same request, is not announced as in force.
    pub in_force: Vec<(u64, OutboxMessage)>,
}

/// A message for the destinations, stored in the outbox under the subject's pseudonym. The payload must not
/// contain the subject id: the dispatcher adds it (from the key store) when sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// E.g. `consent.granted`; destinations select messages by patterns on it.
    pub event_type: String,
    /// JSON: the whole message, or, for a message about a ledger event (`event` set), only what the event
    /// cannot give again (a consent event's resulting decision).
    pub payload: String,
    /// The ledger event the message announces, for a message the dispatcher builds again from it.
    pub event: Option<OutboxEvent>,
}

impl OutboxMessage {
    /// A message stored whole.
    pub fn whole(event_type: impl Into<String>, payload: impl Into<String>) -> Self {
        Self { event_type: event_type.into(), payload: payload.into(), event: None }
    }
}

/// What an outbox row keeps of the ledger event its message announces: the event's seq (the dispatcher
/// reads the event again) and the CloudEvents `source` the message was queued with (a later change of
/// `event_source` leaves pending and replayed messages as they were).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub seq: u64,
    pub source: String,
}

/// A claimed message's ledger event: the stored reference, and the event as the ledger holds it (`None`
/// only if the ledger no longer has it, which an append-only ledger never allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    pub source: String,
    pub seq: u64,
    pub event: Option<Event>,
}

/// A sealed receipt: its id (unique, e.g. random) and what the ledger needs to build it again. Only the id,
/// the placed events' range, `catalog_version`, `issued_at` and `kid` are stored: the receipt names the
/// person, so it is built for the caller after the commit and never kept (see [`StoredReceipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedReceipt {
    pub id: String,
    /// The catalogue version the receipt was built from (its purposes', categories' and recipients' names).
    pub catalog_version: u64,
    /// When it was issued (its `iat`); stored as the receipt's `created_at`.
    pub issued_at: Timestamp,
    /// The signing key that signs it when asked for as a JWS (the same one every time).
    pub kid: String,
}

/// What is stored of a receipt: enough to build it again from the ledger, nothing that names the person.
/// `subject` comes from the key store; it is `None` once the subject was erased, and the receipt can no
/// longer be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub id: String,
    pub subject: Option<SubjectId>,
    /// The sequence numbers of the first and the last event it seals (the subject's events between them).
    pub first_seq: u64,
    pub last_seq: u64,
    pub catalog_version: u64,
    pub created_at: Timestamp,
    /// The key it was signed with; `None` for a receipt stored before keys were recorded.
    pub kid: Option<String>,
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

/// A signed tree head of the ledger's Merkle tree: a C2SP checkpoint (a signed note) of the tree at
/// `size` leaves, whose root is `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    pub note: String,
    pub created_at: Timestamp,
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

/// A delivery taken by [`Store::claim_deliveries`](crate::Store::claim_deliveries), leased to the caller.
/// `subject` comes from the key store (`None` once the subject was erased); never log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub destination_id: String,
    pub outbox_id: i64,
    pub subject: Option<SubjectId>,
    pub event_type: String,
    /// The stored payload: the whole message, or with `event` only what the ledger event cannot give.
    pub payload: String,
    /// For a message about a ledger event: the event, to build the message from.
    pub event: Option<ClaimedEvent>,
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

/// Selects outbox messages by event type, for [`Store::fan_out`](crate::Store::fan_out) and
/// [`Store::replay`](crate::Store::replay); it runs in the caller's process, never in SQL. (An alias, so
/// that `async_trait` keeps its argument higher-ranked.)
pub type EventMatcher = dyn Fn(&str) -> bool + Sync;

/// Whether a destination whose event-type patterns are the first argument wants messages of the type
/// given second. The store keeps an outbox message only when some destination (paused or not) wants it:
/// the service hands in the same rule its dispatcher fans out by, so nothing it would send is left out.
pub type OutboxFilter = Arc<dyn Fn(&[String], &str) -> bool + Send + Sync>;

/// The filter a store uses when none is given: `*`, a prefix pattern ending in `*`, or an exact type. It
/// keeps at least what any destination's patterns can match.
pub fn default_outbox_filter() -> OutboxFilter {
    Arc::new(|patterns: &[String], event_type: &str| {
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => p == event_type,
        })
    })
}

/// Where a [`Store::replay`](crate::Store::replay) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Outbox messages with `id >=` this.
    OutboxId(i64),
    /// Outbox messages created at or after this.
    Time(Timestamp),
}

/// What one step of [`Store::prune_outbox`](crate::Store::prune_outbox) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxPruned {
    /// Messages deleted (with their deliveries).
    pub deleted: u64,
    /// The last message looked at: the next step starts after it.
    pub last: i64,
    /// Whether the sweep reached what must stay (nothing after `last` can go yet).
    pub done: bool,
}

/// Delivery states as stored.
pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_DELIVERED: &str = "delivered";
pub const DELIVERY_DEAD: &str = "dead";

/// One event as an export writes it ([`Store::export_page`](crate::Store::export_page)): what a line of
/// the import's format holds, without what only the ledger's proof needs (hashes, actor, evidence hash),
/// with its subject and, for a subject linked into another, the survivor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// `None` once the subject was erased (the current state leaves those out).
    pub subject: Option<SubjectId>,
    /// The subject `subject` was linked into, if it was.
    pub survivor: Option<SubjectId>,
    pub seq: u64,
    pub pseudonym: String,
    pub purpose: String,
    pub action: consentry_core::Action,
    pub scope: consentry_core::Scope,
    pub notice: Option<String>,
    pub notice_version: Option<u32>,
    pub collection_point: Option<String>,
    pub recorded_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub jurisdiction: Option<String>,
    /// As [`Event::occurred_at`]; in the current state, a live change whose effective time is later than
    /// its `recorded_at` (the clock had stepped back) has that time here, as the current state orders it.
    pub occurred_at: Option<Timestamp>,
}
