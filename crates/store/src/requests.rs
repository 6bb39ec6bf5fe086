//! Data subject requests (GDPR Art. 15–21): the requests, the downstream tasks they fan out to, every
//! change of their state, and erasure by destroying the subject's pseudonym key.
//!
//! Requests refer to the subject by pseudonym, like everything in the data store; the subject id is read
//! back from the key store (and is `None` once the subject was erased). Every change of a request is kept
//! as a timestamped history row, in the same transaction as the change.

use async_trait::async_trait;
pub use consentry_core::request::{
    HistoryChange, Refusal, RequestAction, RequestKind, RequestState, RequestStatus, TaskState, TaskStatus,
};
use consentry_core::{SubjectId, Timestamp};
use serde::Serialize;

use crate::{OutboxMessage, Result, StoredReceipt};

/// A request to create, with the destinations that get a task on it and the outbox messages that announce
/// it (stored in the same transaction, under the subject's pseudonym). Its state is
/// [`consentry_core::request::receive`]'s: `received`, due one calendar month after `received_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub id: String,
    pub subject: SubjectId,
    pub kind: RequestKind,
    /// JSON.
    pub details: Option<String>,
    pub received_at: Timestamp,
    /// Destination ids, one task each.
    pub destinations: Vec<String>,
    /// Who made it (`key:<id>` or `subject`), for the history.
    pub actor: String,
    pub messages: Vec<OutboxMessage>,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    /// From the key store; `None` once the subject was erased.
    pub subject: Option<SubjectId>,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub details: Option<String>,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    /// When Consentry's own part was done (for access and portability: when the export became available).
    pub own_done_at: Option<Timestamp>,
    /// When it was completed or rejected.
    pub closed_at: Option<Timestamp>,
    /// The latest stated reason (of an extension or a rejection).
    pub reason: Option<String>,
    /// When it was found overdue (and `request.overdue` sent), once.
    pub overdue_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// How many of its tasks are still pending.
    pub pending_tasks: u32,
}

/// One downstream system's part of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestTask {
    pub destination_id: String,
    pub status: TaskStatus,
    pub note: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// One change in a request's life, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestHistoryEntry {
    pub at: Timestamp,
    pub change: HistoryChange,
    /// The request's status after the change.
    pub status: RequestStatus,
    pub actor: String,
    pub note: Option<String>,
}

/// A request with its tasks and its history (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub record: RequestRecord,
    pub tasks: Vec<RequestTask>,
    pub history: Vec<RequestHistoryEntry>,
}

impl StoredRequest {
    /// What [`consentry_core::request::next`] reads of the request.
    pub fn state(&self) -> RequestState {
        let r = &self.record;
        RequestState {
            status: r.status,
            received_at: r.received_at,
            due_at: r.due_at,
            own_done_at: r.own_done_at,
            closed_at: r.closed_at,
            reason: r.reason.clone(),
            overdue_at: r.overdue_at,
            updated_at: r.updated_at,
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskState {
                    destination_id: t.destination_id.clone(),
                    status: t.status,
                    note: t.note.clone(),
                    completed_at: t.completed_at,
                })
                .collect(),
        }
    }
}

/// What [`RequestStore::change_request`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Applied; the request as it is now (`completed` in the same change once its own part is done and no
    /// task is pending).
    Changed(Box<StoredRequest>),
    NotFound,
    /// The rules refused the change; the request is as it was.
    Refused(Refusal),
}

/// What [`RequestStore::erase_subject`] is to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectErasure {
    pub subject: SubjectId,
    pub at: Timestamp,
    /// Queued under the subject's pseudonym (only while they still have one), so that they go out naming
    /// the subject while the key exists: `subject.erased`.
    pub notices: Vec<OutboxMessage>,
}

/// What [`RequestStore::erase_subject`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectErased {
    /// Vault records deleted.
    pub records: u64,
    /// Whether the subject's data key was destroyed (`false` when there was none left).
    pub data_key: bool,
    /// The devices unpaired.
    pub devices: Vec<String>,
    /// Whether the subject still had a pseudonym key: their rows were found and the notices queued.
    pub had_key: bool,
}

/// Which requests [`RequestStore::requests`] lists, ordered by id (ids sort by time of receipt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub subject: Option<SubjectId>,
    pub status: Option<RequestStatus>,
    pub kind: Option<RequestKind>,
    /// Only open requests whose `due_at` is at or before this.
    pub overdue_at: Option<Timestamp>,
    /// Only requests with an id greater than this (the cursor of the previous page).
    pub after: Option<String>,
    pub limit: u32,
}

/// Storage of data subject requests and erasures.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Stores a new request (`received`, with a history row and one pending task per destination) and its
    /// outbox messages in one transaction. An id already used is a [`crate::StoreError::Conflict`].
    async fn create_request(&self, new: NewRequest) -> Result<()>;
    /// A request with its tasks and history.
    async fn request(&self, id: &str) -> Result<Option<StoredRequest>>;
    /// Requests matching `filter`, by id, at most `filter.limit`.
    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRecord>>;
    /// Applies `action` at `at` by `actor`: locks the request, loads its state, asks
    /// [`consentry_core::request::next`] and writes back what it decided (the request, the changed task,
    /// the history rows), in one transaction.
    async fn change_request(
        &self,
        id: &str,
        action: RequestAction,
        at: Timestamp,
        actor: &str,
    ) -> Result<ChangeOutcome>;
    /// Open requests received at or before `before` whose own part is not done (e.g. the process stopped
    /// half-way), oldest first, at most `limit`.
    async fn unfinished_requests(&self, before: Timestamp, limit: u32) -> Result<Vec<RequestRecord>>;
    /// Open requests due at or before `now` that were not yet marked overdue, oldest due first.
    async fn unmarked_overdue(&self, now: Timestamp, limit: u32) -> Result<Vec<RequestRecord>>;
    /// Marks an open request overdue at `at` ([`RequestAction::MarkOverdue`], by `system`) and stores
    /// `message` in the outbox, in one transaction, unless the rules refuse (not due, marked before for this
    /// deadline, closed). Returns whether this call marked it.
    async fn mark_overdue(&self, id: &str, at: Timestamp, message: OutboxMessage) -> Result<bool>;
    /// Open requests due at or before `now`, and their pending tasks.
    async fn overdue_counts(&self, now: Timestamp) -> Result<(u64, u64)>;
    /// The subject's receipts, oldest first.
    async fn subject_receipts(&self, subject: &SubjectId) -> Result<Vec<StoredReceipt>>;
    /// The subject's newest receipts, newest first, at most `limit`.
    async fn recent_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>>;

    /// The key store's secret for erasure tombstones, made on first use.
    async fn erasure_secret(&self) -> Result<[u8; 32]>;
    /// Stores an erasure tombstone (a keyed hash of the subject id, never the id), committed on its own:
    /// from then on every node refuses the subject, even if the erasure stops before it is done. Storing
    /// one again changes nothing.
    async fn add_erasure_tombstone(&self, tombstone: &str, at: Timestamp) -> Result<()>;
    /// Erases what the stores hold of the subject but their pseudonym key, in this order: the vault's
    /// records and the subject's data key (crypto-shredding), their devices, then, while they still have a
    /// pseudonym key, the erasure's notices queued under it, their receipts' rows and their requests'
    /// details. The key ([`RequestStore::destroy_subject_key`]) goes once the messages naming them have
    /// left, or the wait for them has ended.
    ///
    /// On PostgreSQL it is one transaction. On the embedded store it is two, one per file: the data
    /// store's part, then the key store's (SQLite commits attached files in WAL mode one by one, not as a
    /// set); should the process stop between them, the pseudonym key is still there and erasing again
    /// finishes the job (queueing the notices again). Every part may run again: what is gone stays gone.
    async fn erase_subject(&self, erasure: SubjectErasure) -> Result<SubjectErased>;
    /// Whether a message queued under the subject's pseudonym has not yet left: a destination has not
    /// fanned it out yet, or a delivery of it is pending (a paused destination's included). `false` once
    /// the subject has no pseudonym key.
    async fn subject_messages_pending(&self, subject: &SubjectId) -> Result<bool>;
    /// Destroys the subject's pseudonym key, the last link from the ledger, the outbox and the other rows
    /// to them (its bytes overwritten, not left in free pages or logs, on the embedded store). Messages
    /// still pending go out without the subject id. Returns whether there was a key.
    async fn destroy_subject_key(&self, subject: &SubjectId) -> Result<bool>;
    /// Every erasure tombstone.
    async fn erasure_tombstones(&self) -> Result<Vec<String>>;
}
