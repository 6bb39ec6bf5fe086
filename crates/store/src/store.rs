//! The [`Store`] trait: everything Consentry keeps, as one interface every backend implements.

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::merkle::{Hash, NodeId};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};

use crate::console::ConsoleStore;
use crate::devices::DeviceStore;
use crate::error::Result;
#[cfg(doc)]
use crate::error::StoreError;
use crate::evidence::EvidenceStore;
use crate::guardians::GuardianStore;
use crate::households::HouseholdStore;
use crate::identifiers::IdentifierStore;
use crate::links::LinkStore;
use crate::model::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, DeliveryOutcome, DeliveryRecord, DestinationPatch,
    DestinationRecord, EventMatcher, ExportRow, ImportKeys, LedgerHead, NewDestination, NoticeVersion,
    OutboxMessage, OutboxPruned, ReplayFrom, SealedReceipt, Sealer, SigningKeyRecord, StoredCatalog,
    StoredCheckpoint, StoredReceipt, TlogCheckpoint,
};
use crate::requests::RequestStore;
use crate::tokens::TokenStore;
use crate::vault::VaultStore;
use crate::verifications::VerificationStore;

/// Storage of everything Consentry keeps. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store:
    RequestStore
    + VaultStore
    + DeviceStore
    + TokenStore
    + ConsoleStore
    + IdentifierStore
    + HouseholdStore
    + VerificationStore
    + LinkStore
    + GuardianStore
    + EvidenceStore
    + Send
    + Sync
    + 'static
{
    /// Marks the store initialised and stores `admin` as its first key, unless that was done before.
    /// Returns whether this call did it.
    async fn initialise(&self, admin: ApiKey) -> Result<bool>;

    async fn insert_api_key(&self, key: ApiKey) -> Result<()>;
    /// Active keys, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// An active key by the stored hash of its secret (HMAC-SHA256 under [`key_pepper`](Store::key_pepper);
    /// keys stored before that hold a plain SHA-256 until they are next used).
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>>;
    /// Replaces the stored hash of active key `id`, if it is still `old` (a legacy SHA-256 becoming the
    /// keyed hash on first use); returns whether it did.
    async fn rehash_api_key(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool>;
    /// The secret that keys the stored hashes of API keys and device tokens: 32 random bytes in the key
    /// store (never the data store), made on first call and the same for every node ever after.
    async fn key_pepper(&self) -> Result<[u8; 32]>;
    /// Revokes an active key; returns false when no active key has that id.
    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool>;

    /// The current catalogue, if one was ever applied.
    async fn catalog(&self) -> Result<Option<StoredCatalog>>;
    /// Stores `document` (already validated) as the next catalogue version. A notice whose text is
    /// unchanged keeps its version; a changed or new text gets the next version of that notice.
    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog>;
    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>>;
    /// The version of notice `key` whose text is `text`: one already stored (the catalogue's or an earlier
    /// import's), else a new version marked imported. An imported version is named by the events that
    /// rest on it but never becomes the notice's current version.
    async fn import_notice(
        &self,
        key: &str,
        language: &str,
        title: &str,
        text: &str,
    ) -> Result<NoticeVersion>;
    /// The document of catalogue version `version`, as applied (receipts are built again from it).
    async fn catalog_document(&self, version: u64) -> Result<Option<CatalogDocument>>;

    /// Appends the events of one subject, atomically and durably, after the ledger's current head.
    /// Concurrent calls are group-committed; each returns once its own events are durable.
    async fn append(&self, subject: &SubjectId, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        Ok(self.append_sealed(subject, events, None).await?.0)
    }
    /// [`append`](Store::append), and with `seal` a receipt and outbox messages: the backend calls `seal`
    /// inside the commit with the placed events and stores its receipt and messages (under the subject's
    /// pseudonym) in the same transaction, so they exist if and only if the events do. A sealer error (or
    /// panic) fails this request alone with [`StoreError::Backend`] (a receipt id already stored:
    /// [`StoreError::Conflict`] on SQLite; on PostgreSQL the whole group fails then), and the requests
    /// committed with it keep a gapless chain. No events, no sealer call, no receipt. Of the receipt only
    /// what builds it again is stored ([`StoredReceipt`]), its `created_at` being its `issued_at`.
    async fn append_sealed(
        &self,
        subject: &SubjectId,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)>;
    /// [`append_sealed`](Store::append_sealed) for changes imported from another platform: `keys.ids[i]`
    /// is the id of `events[i]` at `keys.source`. A change whose `(source, id)` an earlier append placed
    /// (or an earlier one of the same call) is left out; the others are placed with their keys, in the
    /// same transaction. Returns the events placed (none when every change was placed before; then the
    /// sealer is not called). `keys.ids` must be as long as `events`.
    async fn append_imported(
        &self,
        subject: &SubjectId,
        keys: ImportKeys,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)>;
    /// The key of the subject's pseudonym (from the key store): the opening a receipt gives the person, so
    /// that HMAC-SHA256(key, subject id) shows the ledger's pseudonym is theirs. `None` for a subject
    /// without one, or erased (erasure destroys it).
    async fn pseudonym_key(&self, subject: &SubjectId) -> Result<Option<[u8; 32]>>;
    /// What is stored of receipt `id`; its subject is `None` once they were erased.
    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>>;
    /// The subject's events after sequence number `after`, oldest first, at most `limit`.
    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>>;
    /// The subject's events before sequence number `before` (all of them without it), newest first, at
    /// most `limit`: a history read backwards a page at a time.
    async fn history_newest(
        &self,
        subject: &SubjectId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Event>>;
    /// The subject's current state: the latest event per purpose, scope and stance
    /// ([`Action::stance`](consentry_core::Action::stance)), oldest first.
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
    /// For each of `pseudonyms`, the first event recorded at or after `since` (the earliest `seq`): of its
    /// statements in force ([`current_page`](Self::current_page)), or with `history` of all its events. An
    /// export pages through the ledger and writes a subject's age and identifiers on that line, without
    /// remembering whom it has written.
    async fn first_lines(
        &self,
        pseudonyms: Vec<String>,
        since: Timestamp,
        history: bool,
    ) -> Result<Vec<(String, u64)>>;
    /// A page of an export: the ledger's positions `after < seq <= through`, oldest first; with `history`
    /// every event there (erased subjects' with no subject), else the statements in force among them
    /// (erased subjects' left out, and none at all in a stretch where nothing is in force); each with its
    /// subject's survivor when the subject was linked into another, read in the same statement. Pages are
    /// cut by position, not by count, so that an export can read several at once (the ledger has no gaps:
    /// a page of the history holds every position up to the ledger's end).
    async fn export_page(&self, after: u64, through: u64, history: bool) -> Result<Vec<ExportRow>>;
    /// How many pages of an export are best read at once, besides the one being written: on SQLite one
    /// (the bulk reader's caches; a second read at once goes to a connection with small ones, and costs
    /// more than it gives on two cores), on PostgreSQL three (each read is a server process of its own,
    /// and a third hides the round trips of the other two).
    fn export_reads(&self) -> usize {
        1
    }
    /// Stores an image of the decision engine's state that holds every event up to `covers`, in place of
    /// every older one, whole or not at all. Any node may write one; readers take the newest.
    async fn save_engine_image(&self, covers: u64, image: &[u8]) -> Result<()>;
    /// The newest stored engine image: the position it covers and its bytes.
    async fn latest_engine_image(&self) -> Result<Option<(u64, Vec<u8>)>>;
    /// Subjects' pseudonyms with their ids, ordered by pseudonym, those after `after`, at most `limit`:
    /// what names an engine image's entries (erased subjects have none).
    async fn pseudonym_page(&self, after: &str, limit: u32) -> Result<Vec<(String, SubjectId)>>;
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

    /// The stored nodes of the ledger's Merkle tree among `ids`, in no particular order. Leaf `i` is event
    /// `i + 1`; only complete subtrees are stored, each written with the events that complete it, so the
    /// tree always has the ledger's length.
    async fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>>;
    /// The same nodes for a proof: those this store committed lately from memory, the rest as
    /// [`tlog_nodes`](Store::tlog_nodes) reads them. An audit reads with `tlog_nodes`, which checks what is
    /// at rest.
    async fn tlog_proof_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
        self.tlog_nodes(ids).await
    }
    /// Stores a signed checkpoint of the tree; one already stored for its size is kept.
    async fn insert_tlog_checkpoint(&self, checkpoint: &TlogCheckpoint) -> Result<()>;
    /// The checkpoint of the largest tree signed so far.
    async fn latest_tlog_checkpoint(&self) -> Result<Option<TlogCheckpoint>>;
    /// Checkpoints of trees larger than `after` leaves, smallest first, at most `limit`.
    async fn tlog_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<TlogCheckpoint>>;
    /// Checkpoints of trees smaller than `before` leaves (any, for none), largest first, at most `limit`:
    /// the latest ones, a page at a time.
    async fn recent_tlog_checkpoints(&self, before: Option<u64>, limit: u32) -> Result<Vec<TlogCheckpoint>>;

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
    /// (creating one for a subject without). Ordered after every message already committed. Like every
    /// outbox insert (with ledger events, requests, erasures, vault deletions), it keeps only the messages
    /// some destination wants by the store's [`OutboxFilter`](crate::OutboxFilter), judged against the
    /// destinations as they are when it commits: a destination whose creation answered before sees every
    /// message committed after.
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
    /// ones reach it by fan-out), never one written before the destination was created. A start before
    /// the destination's creation, before `not_before` (the outbox's retention window), or at a message
    /// the sweep may have deleted is [`StoreError::OutOfReach`](crate::StoreError::OutOfReach), and
    /// nothing is queued. Returns how many.
    async fn replay(
        &self,
        destination_id: &str,
        from: ReplayFrom,
        not_before: Timestamp,
        matches: &EventMatcher,
    ) -> Result<u64>;
    /// One bounded step of the outbox sweep: looks at up to `limit` messages after id `after` and deletes,
    /// with their deliveries, each that every destination's fan-out has passed, that no destination still
    /// has pending or dead-lettered (nor, for its subject, an earlier dead letter, which a replay would
    /// send again with the subject's later messages), and that no destination can replay any more:
    /// written before every destination was created, or before `not_before`. Stops at the first message
    /// still within reach.
    async fn prune_outbox(&self, after: i64, not_before: Timestamp, limit: u32) -> Result<OutboxPruned>;
    /// Makes the dead delivery of outbox message `outbox_id` to the destination pending again (attempts 0,
    /// due `now`), with the same subject's later deliveries to it that are no longer pending, so the
    /// destination still ends on the subject's latest change; returns whether there was such a dead letter.
    async fn replay_dead_letter(&self, destination_id: &str, outbox_id: i64, now: Timestamp) -> Result<bool>;
    /// Seconds since the oldest outbox message still pending for a destination that is not paused was
    /// created; `None` when nothing is pending.
    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>>;
    /// Seconds since the oldest outbox message still pending for destination `destination_id` (paused or
    /// not) was created; `None` when nothing is pending for it. Reads its pending deliveries' index.
    async fn destination_lag(&self, destination_id: &str, now: Timestamp) -> Result<Option<f64>>;
    /// The number of dead deliveries.
    async fn dead_letters(&self) -> Result<u64>;

    /// Grants and renewals still in force (the current statement for their purpose and scope) whose
    /// `expires_at` is at or before `now`, with their subjects, oldest expiry first, at most `limit`.
    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>>;
    /// Takes or renews the lease `name` for `holder` until `until`, unless another holder's lease is still
    /// live at `now`. Returns whether `holder` holds it. Keeps singleton background jobs on one node.
    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool>;
    /// Signals (the newest ledger sequence number) when another node may have appended; `None` for a
    /// backend with a single writer, whose appends all pass through this process.
    fn change_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Finishes queued work and closes the backend. Later calls fail with [`StoreError::Closed`].
    async fn close(&self);
}
