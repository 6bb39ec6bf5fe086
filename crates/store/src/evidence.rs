//! The evidence of imported changes (the original receipt, IP address, user agent, form id): the ledger
//! event carries only `sha256:<hex>` of it; the evidence itself is kept beside the event, encrypted under
//! the subject's own data key (the vault's, see [`crate::vault`]), bound to the event's sequence number and
//! the subject's pseudonym. Erasure deletes the rows and destroys the key; a link re-seals `from`'s rows
//! under the survivor's key.

use async_trait::async_trait;
use consentry_core::SubjectId;

use crate::error::Result;
use crate::vault::Kek;

/// The evidence of one imported change: its id at the source, the `sha256:<hex>` its event carries, and
/// the evidence's bytes (compact JSON). `Debug` hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedEvidence {
    pub source_id: String,
    pub sha256: String,
    pub evidence: Vec<u8>,
}

impl std::fmt::Debug for ImportedEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedEvidence").field("source_id", &self.source_id).finish_non_exhaustive()
    }
}

/// Storage of evidence, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Stores the evidence of changes imported from `source`, per subject: each under the event the import
    /// placed for its `(source, source_id)`, when that event is the subject's and carries exactly its
    /// `sha256`, encrypted under the subject's data key. Evidence already stored for an event is kept, so a
    /// rerun of an import completes what a stopped one left out. Returns how many were stored.
    async fn put_imported_evidence(
        &self,
        kek: &Kek,
        source: &str,
        items: Vec<(SubjectId, Vec<ImportedEvidence>)>,
    ) -> Result<u64>;

    /// The evidence of `subject`'s event `seq`, decrypted; `None` when none is stored.
    async fn evidence(&self, kek: &Kek, subject: &SubjectId, seq: u64) -> Result<Option<Vec<u8>>>;

    /// Which of `seqs` (events of `subject`) have evidence stored.
    async fn evidence_held(&self, subject: &SubjectId, seqs: Vec<u64>) -> Result<Vec<u64>>;

    /// The evidence stored for the events with `after < seq <= upto`, whoever they belong to, decrypted,
    /// by sequence number: an export's page.
    async fn evidence_between(&self, kek: &Kek, after: u64, upto: u64) -> Result<Vec<(u64, Vec<u8>)>>;
}
