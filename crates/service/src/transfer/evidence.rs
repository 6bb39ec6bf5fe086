//! The evidence an imported change came with (the original receipt, IP address, user agent, form id): its
//! event carries `sha256:<hex>` of it, and the evidence itself is kept encrypted under the subject's data
//! key beside the event ([`consentry_store::EvidenceStore`]), so that the person's history can show it and an
//! erasure crypto-shreds it. At most
//! [`MAX_EVIDENCE`](super::line::MAX_EVIDENCE) bytes of compact JSON a change.

use consentry_core::SubjectId;
use consentry_store::ImportedEvidence;

use super::line::Checked;
use crate::error::Result;
use crate::state::Services;

/// The evidence `changes` carry, for [`store`].
pub fn of<'a>(changes: impl Iterator<Item = &'a Checked>) -> Vec<ImportedEvidence> {
    changes
        .filter_map(|c| {
            let (sha256, evidence) = c.evidence.as_ref()?;
            Some(ImportedEvidence {
                source_id: c.source_id.clone(),
                sha256: sha256.clone(),
                evidence: evidence.clone(),
            })
        })
        .collect()
}

/// Stores the evidence of a batch's changes just written from `source`, per subject: those placed now,
/// and those placed by an earlier run that stopped before their evidence was stored (the store keeps what
/// it holds, and stores only evidence whose hash the event carries).
pub async fn store(
    state: &Services,
    source: &str,
    items: Vec<(SubjectId, Vec<ImportedEvidence>)>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    state.store.put_imported_evidence(&state.kek, source, items).await?;
    Ok(())
}
