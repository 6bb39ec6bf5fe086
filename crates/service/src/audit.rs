//! `/v1/audit/verify`: walks the hash chain and the signed checkpoints, with the same code third parties
//! use (`consentry_client::verify`).

use consentry_client::verify::{AuditReport, LedgerAudit};

use consentry_store::Store;

use serde::Serialize;

use utoipa::ToSchema;

/// The outcome of a ledger audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub ok: bool,
    /// Events that verified, in order.
    pub events: u64,
    /// Hash of the last event that verified.
    pub head: String,
    /// Signed checkpoints that verified.
    pub checkpoints: u64,
    /// The first problem: `{seq, kind, problem, ...}`; `null` when the ledger is intact.
    #[schema(value_type = Option<Object>)]
    pub first_bad: Option<consentry_client::verify::AuditProblem>,
}

pub const PAGE: u32 = 5000;

/// Audits the whole ledger in `store` against the keys in `jwks`.
pub async fn audit(
    store: &dyn Store,
    jwks: &consentry_core::proof::Jwks,
) -> consentry_store::Result<AuditReport> {
    // Checkpoints first, then the events: the ledger only grows in between, so every checkpoint read is
    // covered by the events read after it.
    let checkpoints = store.checkpoints().await?;
    let mut audit = LedgerAudit::new(jwks).without_hash_history();
    for c in &checkpoints {
        audit.push_checkpoint(&c.jws, None);
    }
    let mut after = 0;
    loop {
        let page = store.events_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if !audit.push_event(e, None) {
                return Ok(audit.finish());
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    audit.end_events();
    Ok(audit.finish())
}
