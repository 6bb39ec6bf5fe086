//! Children and their guardians: what is known of a subject's age, stored only encrypted under the
//! subject's own data key (the vault's, see [`crate::vault`]; erasure deletes the row and destroys the
//! key), and the guardian relations between subjects (child, guardian, a SHA-256 of the evidence, when).
//! Rows name subjects only by pseudonym; reads join the key store for the ids.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::error::Result;
use crate::model::OutboxMessage;
use crate::vault::Kek;

/// A subject's age as stored: the service's own encoding of it, decrypted. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAge {
    pub subject: SubjectId,
    pub plaintext: Vec<u8>,
    pub updated_at: Timestamp,
    /// When the subject came of age as announced (`subject.came_of_age`), if they were.
    pub came_of_age_at: Option<Timestamp>,
}

impl std::fmt::Debug for StoredAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAge")
            .field("updated_at", &self.updated_at)
            .field("came_of_age_at", &self.came_of_age_at)
            .finish_non_exhaustive()
    }
}

/// A stated age still to be looked at for a coming of age (see
/// [`GuardianStore::settle_coming_of_age`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAge {
    pub subject: SubjectId,
    /// When the age was stated (its row's time): someone who was no child then never comes of age here.
    pub stated_at: Timestamp,
}

/// One guardian relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianLink {
    pub child: SubjectId,
    pub guardian: SubjectId,
    /// SHA-256 of the evidence the brand gave (its canonical JSON), if any.
    pub evidence_sha256: Option<[u8; 32]>,
    pub created_at: Timestamp,
}

/// What [`GuardianStore::add_guardian`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardianAdded {
    Added,
    /// The relation was recorded before; nothing changed.
    Existing,
    /// Nothing was ever recorded of the child (no pseudonym): nothing changed.
    UnknownChild,
    /// Nothing was ever recorded of the guardian: nothing changed.
    UnknownGuardian,
    /// The guardian is the child, or the child is (directly or further up) the guardian's guardian: the
    /// relation would close a cycle, and nothing changed.
    Cycle,
}

/// Storage of ages and guardians, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait GuardianStore: Send + Sync {
    /// Encrypts `plaintext` under the subject's data key (creating their pseudonym and data key when they
    /// have none) and stores it as their age, replacing what was stored. The age waits to be looked at for
    /// a coming of age ([`pending_ages`](Self::pending_ages)) unless one was announced for the subject.
    ///
    /// With `came_of_age` (the statement makes a known child an adult: when they came of age, and the
    /// `subject.came_of_age` message), the subject's coming of age is settled in the same transaction, as
    /// [`settle_coming_of_age`](Self::settle_coming_of_age) would: the time kept and the message queued,
    /// unless one was announced for the subject before. Returns whether this call announced it.
    async fn set_age(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        plaintext: Vec<u8>,
        at: Timestamp,
        came_of_age: Option<(Timestamp, OutboxMessage)>,
    ) -> Result<bool>;

    /// The subject's age, decrypted.
    async fn age(&self, kek: &Kek, subject: &SubjectId) -> Result<Option<StoredAge>>;

    /// The ages of those of `subjects` that have one, decrypted: a page's worth in one read.
    async fn ages_of(&self, kek: &Kek, subjects: Vec<SubjectId>) -> Result<Vec<StoredAge>>;

    /// Ages stored or changed at or after `since`, in the order (time, pseudonym) after the position
    /// `after` (a previous page's last), at most `limit`, decrypted: the engine's warm-up and the
    /// follower of other nodes' writes. Returns the page and the position of its last row.
    async fn ages_since(
        &self,
        kek: &Kek,
        since: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<StoredAge>, Option<(Timestamp, String)>)>;

    /// The stated ages still waiting to be looked at for a coming of age, stated at or before
    /// `stated_by`, in the order (time, pseudonym) after the position `after`, at most `limit`. Returns the
    /// page and the position of its last row.
    async fn pending_ages(
        &self,
        stated_by: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<PendingAge>, Option<(Timestamp, String)>)>;

    /// Ends the wait of `subject`'s age stated at `stated_at` (nothing when it was stated again since, or
    /// the wait already ended): with `announce` (when they came of age, and the `subject.came_of_age`
    /// message), the time is kept and the message queued in the same transaction, so it is queued once
    /// whatever nodes try; without, the age is simply no longer looked at. Returns whether this call ended
    /// the wait.
    async fn settle_coming_of_age(
        &self,
        subject: &SubjectId,
        stated_at: Timestamp,
        announce: Option<(Timestamp, OutboxMessage)>,
    ) -> Result<bool>;

    /// Records `guardian` as a guardian of `child`, both known subjects, unless it would close a cycle
    /// ([`GuardianAdded::Cycle`]). The check and the insert are one write, serialised with every other
    /// guardian added (on any node), so two relations added at once can never form a cycle together.
    async fn add_guardian(&self, link: GuardianLink) -> Result<GuardianAdded>;

    /// The guardians of `child`, oldest first.
    async fn guardians(&self, child: &SubjectId) -> Result<Vec<GuardianLink>>;

    /// The guardians of `child` with each one's pseudonym, oldest first: a guardian's consent changes are
    /// recorded as `guardian:<pseudonym>`, so the ledger never names them by subject id.
    async fn guardian_pseudonyms(&self, child: &SubjectId) -> Result<Vec<(SubjectId, String)>>;

    /// The children `guardian` is a guardian of, oldest first.
    async fn children(&self, guardian: &SubjectId) -> Result<Vec<GuardianLink>>;

    /// Removes the relation; false when there was none.
    async fn remove_guardian(&self, child: &SubjectId, guardian: &SubjectId) -> Result<bool>;
}
