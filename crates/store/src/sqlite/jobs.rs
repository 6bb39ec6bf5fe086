//! What the writer thread takes from its queue: single write jobs, and the jobs it commits in groups
//! (appends, outbox messages, access-log entries, check counts, vault records), each with the channel its
//! caller waits on. The store sends them; the writer runs them.

use std::collections::BTreeMap;

use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};
use crate::links::{LinkMerge, LinkSlot};
use crate::model::{AccessEntry, ImportKeys, OutboxMessage, SealedReceipt, Sealer};
use crate::vault::{Kek, RecordMeta, SealedPayload};

pub(super) enum Command {
    Grouped(Grouped),
    Write(WriteJob),
    Shutdown,
}

/// A job run alone on the writer connection, in order with the groups.
pub(super) type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Work committed in groups: many requests, one transaction, one fsync.
pub(super) enum Grouped {
    Append(AppendJob),
    Access(AccessJob),
    Counts(CountsJob),
    Enqueue(EnqueueJob),
    /// Boxed: a sealed vault record is much larger than the other jobs.
    Record(Box<RecordJob>),
}

/// Events as placed, with the receipt sealed over them.
pub(super) type Appended = (Vec<Event>, Option<SealedReceipt>);

pub(super) struct AppendJob {
    pub subject: SubjectId,
    pub events: Vec<NewEvent>,
    /// Set on an import: the events' ids at their source, placed at most once.
    pub import: Option<ImportKeys>,
    pub seal: Option<Sealer>,
    /// Set on a link: `events` are picked inside the commit (`links.rs`).
    pub link: Option<LinkJob>,
    pub reply: oneshot::Sender<Result<Appended>>,
}

/// A link of `from` into the append's subject; its outcome is left in `slot`.
pub(super) struct LinkJob {
    pub from: SubjectId,
    pub kek: Kek,
    pub merge: Option<LinkMerge>,
    pub slot: LinkSlot,
}

/// Outbox messages that no ledger event carries.
pub(super) struct EnqueueJob {
    pub subject: SubjectId,
    pub messages: Vec<OutboxMessage>,
    pub reply: oneshot::Sender<Result<()>>,
}

pub(super) struct AccessJob {
    pub entries: Vec<AccessEntry>,
    pub reply: oneshot::Sender<Result<()>>,
}

pub(super) struct CountsJob {
    /// Already summed per subject and purpose.
    pub counts: BTreeMap<(SubjectId, String), (u64, Timestamp)>,
    pub reply: oneshot::Sender<Result<()>>,
}

/// A sealed vault record waiting for the next group commit.
pub(super) struct RecordJob {
    pub subject: String,
    pub pseudonym: String,
    /// The data key it was sealed under; the insert happens only if the subject still has this one.
    pub wrapped: Vec<u8>,
    pub meta: RecordMeta,
    pub sealed: SealedPayload,
    /// Set by the group commit: a record can fail alone (its key changed, its id is taken).
    pub outcome: Option<Result<()>>,
    pub reply: oneshot::Sender<Result<()>>,
}

impl RecordJob {
    /// Answers the caller once the group committed.
    pub fn answer(self) {
        let _ = self
            .reply
            .send(self.outcome.unwrap_or_else(|| Err(StoreError::Backend("record not placed".into()))));
    }
}
