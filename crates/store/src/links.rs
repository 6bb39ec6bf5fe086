//! Linking two subjects: one person known under two ids (an app install's anonymous id and the account it
//! signed in to). [`LinkStore::link_subjects`] does the whole link in the write that orders every ledger
//! append (the embedded store's writer, PostgreSQL's ledger lock): it reads both records' statements in
//! force there, so no consent write of either id can slip between the read and the merge; appends the
//! choices the caller's merge picks as the survivor's events; forgets `from`'s current state; moves its
//! identifiers and vault records (re-sealed under the survivor's data key), devices and data subject
//! requests; and keeps `from` as an **alias** of the survivor in the key store (it names people). From then
//! on an append for `from` is refused with [`StoreError::Linked`](crate::StoreError::Linked), naming the
//! survivor. Unlinking is not offered.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use consentry_core::{Event, NewEvent, SubjectId};

use crate::error::Result;
use crate::model::{SealedReceipt, Sealer};
use crate::vault::Kek;

/// What a merge reads, inside the link's write.
#[derive(Debug)]
pub struct LinkRead<'a> {
    /// The survivor's statements in force (the latest per purpose and scope).
    pub into: &'a [Event],
    /// Those of `from`.
    pub from: &'a [Event],
    /// `from`'s pseudonym, which a carried choice's actor names.
    pub from_pseudonym: &'a str,
}

/// Picks the survivor's new events from both records' statements. It runs inside the write, so it must be
/// quick and pure (no I/O).
pub type LinkMerge = Box<dyn FnOnce(LinkRead<'_>) -> Vec<NewEvent> + Send>;

/// A link of `from` into the survivor.
pub struct LinkPlan {
    pub from: SubjectId,
    /// To open `from`'s identifiers and records and seal them again under the survivor's data key.
    pub kek: Kek,
    pub merge: LinkMerge,
    /// Seals the carried events (a receipt, outbox messages), as for any append; not called when the merge
    /// carries nothing.
    pub seal: Option<Sealer>,
}

/// Why a link was not made. (A survivor that is itself an alias fails as any append for an alias does,
/// with [`StoreError::Linked`](crate::StoreError::Linked) naming its survivor.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRefusal {
    /// `from` is the survivor itself.
    Same,
    /// The store knows nothing of `from` (it never had a pseudonym, or it was erased).
    FromUnknown,
    /// `from` is already an alias of a subject.
    FromLinked,
}

/// What [`LinkStore::link_subjects`] moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovedSubject {
    pub identifiers: u64,
    pub records: u64,
    /// The ids of the devices now paired with the survivor.
    pub devices: Vec<String>,
    pub requests: u64,
    /// Ids that were aliases of `from` and now name the survivor.
    pub aliases: Vec<SubjectId>,
}

/// A link made: the survivor's new events, their receipt, and what moved.
#[derive(Debug)]
pub struct LinkedSubjects {
    pub events: Vec<Event>,
    pub sealed: Option<SealedReceipt>,
    pub moved: MovedSubject,
}

/// Where a backend's writer leaves a link's outcome for its caller (set inside the transaction, read once
/// it committed).
pub(crate) type LinkSlot = Arc<Mutex<Option<std::result::Result<MovedSubject, LinkRefusal>>>>;

pub(crate) fn take_slot(slot: &LinkSlot) -> Option<std::result::Result<MovedSubject, LinkRefusal>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

pub(crate) fn fill_slot(slot: &LinkSlot, outcome: std::result::Result<MovedSubject, LinkRefusal>) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
}

/// Storage of links between subjects, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Links `plan.from` into `into` (see the module documentation), atomically with the carried events on
    /// the ledger. A refusal changes nothing.
    async fn link_subjects(
        &self,
        into: &SubjectId,
        plan: LinkPlan,
    ) -> Result<std::result::Result<LinkedSubjects, LinkRefusal>>;

    /// Every alias as `(old id, survivor)`.
    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>>;

    /// The aliases of `survivor`.
    async fn aliases_of(&self, survivor: &SubjectId) -> Result<Vec<SubjectId>>;

    /// Those of `subjects` that are aliases, as `(old id, survivor)`: a page's worth, where
    /// [`subject_links`](Self::subject_links) reads them all.
    async fn survivors_among(&self, subjects: Vec<SubjectId>) -> Result<Vec<(SubjectId, SubjectId)>>;
}

/// Runs a link's merge inside the writer's transaction: a merge that panics fails its link, not the
/// writer (which every other write waits on), as `run_sealer` does for a receipt.
pub(crate) fn run_merge(merge: LinkMerge, read: LinkRead<'_>) -> Result<Vec<NewEvent>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| merge(read)))
        .map_err(|_| crate::error::StoreError::Backend("merging the linked records panicked".into()))
}
