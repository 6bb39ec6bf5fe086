//! The evidence a change came with (an import line's `evidence`: the original receipt, IP address, user
//! agent, form id), read back for the person's history. The event carries `sha256:<hex>` of it; the
//! evidence itself is stored encrypted under the subject's data key ([`consentry_store::EvidenceStore`]),
//! so an erasure crypto-shreds it.

use consentry_core::SubjectId;
use consentry_core::ledger::{event_id, parse_event_id};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::error::{Error, Result};
use crate::state::Services;

/// The evidence of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceOut {
    /// The event (`evt_42`).
    pub event: String,
    /// `sha256:<hex>` of the evidence as compact JSON with its keys sorted: the `evidence` the event
    /// carries in the ledger.
    pub sha256: String,
    /// The evidence as it was given.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// The evidence of `subject`'s event `id`; 404 when the event is not theirs or has none stored. The read is
/// in the subject's access log.
pub async fn read(
    state: &Services,
    subject: &SubjectId,
    id: &str,
    reader: Reader<'_>,
) -> Result<EvidenceOut> {
    let seq = parse_event_id(id).ok_or(Error::NotFound("evidence"))?;
    let bytes = state.store.evidence(&state.kek, subject, seq).await?.ok_or(Error::NotFound("evidence"))?;
    let out = EvidenceOut::new(seq, &bytes)?;
    reader.log(&state.access, subject);
    Ok(out)
}

impl EvidenceOut {
    /// The evidence of event `seq`, as stored (`bytes`, its compact JSON).
    pub fn new(seq: u64, bytes: &[u8]) -> Result<Self> {
        Ok(EvidenceOut {
            event: event_id(seq),
            sha256: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            evidence: serde_json::from_slice(bytes).map_err(Error::internal)?,
        })
    }
}

/// Which of `events` (of `subject`) have evidence stored: those whose event names one.
pub async fn held(
    state: &Services,
    subject: &SubjectId,
    events: &[consentry_core::Event],
) -> Result<Vec<u64>> {
    let named: Vec<u64> = events.iter().filter(|e| e.evidence.is_some()).map(|e| e.seq).collect();
    if named.is_empty() {
        return Ok(Vec::new());
    }
    Ok(state.store.evidence_held(subject, named).await?)
}
