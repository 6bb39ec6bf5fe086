//! Children and their guardians: what is known of a subject's age, stored only encrypted under the
//! subject's own data key (the vault's, see [`crate::vault`]; erasure deletes the row and destroys the
//! key), and the guardian relations between subjects (child, guardian, a SHA-256 of the evidence, when).
//! Rows name subjects only by pseudonym; reads join the key store for the ids.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::error::Result;
use crate::vault::Kek;

/// A subject's age as stored: the service's own encoding of it, decrypted. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAge {
    pub subject: SubjectId,
    pub plaintext: Vec<u8>,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for StoredAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAge").field("updated_at", &self.updated_at).finish_non_exhaustive()
    }
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
}

/// Storage of ages and guardians, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait GuardianStore: Send + Sync {
    /// Encrypts `plaintext` under the subject's data key (creating their pseudonym and data key when they
    /// have none) and stores it as their age, replacing what was stored.
    async fn set_age(&self, kek: &Kek, subject: &SubjectId, plaintext: Vec<u8>, at: Timestamp) -> Result<()>;

    /// The subject's age, decrypted.
    async fn age(&self, kek: &Kek, subject: &SubjectId) -> Result<Option<StoredAge>>;

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

    /// Records `guardian` as a guardian of `child`, both known subjects.
    async fn add_guardian(&self, link: GuardianLink) -> Result<GuardianAdded>;

    /// The guardians of `child`, oldest first.
    async fn guardians(&self, child: &SubjectId) -> Result<Vec<GuardianLink>>;

    /// The children `guardian` is a guardian of, oldest first.
    async fn children(&self, guardian: &SubjectId) -> Result<Vec<GuardianLink>>;

    /// Removes the relation; false when there was none.
    async fn remove_guardian(&self, child: &SubjectId, guardian: &SubjectId) -> Result<bool>;
}
