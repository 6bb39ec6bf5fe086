//! Ledger audit: walks the hash chain and the signed checkpoints, with the same code third parties use
//! (`consentry_client::verify`). A running node audits against the keys it serves; the CLI audits a store
//! no node serves against the keys stored in it.
//!
//! Only the store can fail here, and an audit is run when something looks wrong: the functions on a bare
//! store return its error whole, so the CLI can print the cause.

use consentry_client::verify::{AuditProblem, AuditReport, LedgerAudit, NoteVerifier, TreeAudit, TreeReport};
use consentry_core::merkle::Frontier;
use consentry_core::proof::{Jwk, Jwks};
use consentry_store::Store;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::state::Services;

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
    pub first_bad: Option<AuditProblem>,
    /// The Merkle tree rebuilt from the events against the signed tree checkpoints (`consentry audit
    /// verify` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tree: Option<TreeReport>,
}

impl From<AuditReport> for AuditOut {
    fn from(r: AuditReport) -> Self {
        Self {
            ok: r.ok,
            events: r.events,
            head: r.head,
            checkpoints: r.checkpoints,
            first_bad: r.first_bad,
            tree: None,
        }
    }
}

/// Events read per page.
const PAGE: u32 = 5000;

/// Audits the node's ledger against the keys it publishes.
pub async fn verify(services: &Services) -> Result<AuditOut> {
    Ok(audit(services.store.as_ref(), services.signing.jwks()).await?)
}

/// Audits the ledger of a store no node serves (the CLI), against the signing keys stored in it.
pub async fn verify_store(store: &dyn Store) -> consentry_store::Result<AuditOut> {
    let keys = store.signing_keys().await?;
    let jwks = Jwks { keys: keys.iter().map(|k| Jwk::ed25519(k.kid.clone(), &k.public)).collect() };
    audit(store, &jwks).await
}

/// Audits the whole ledger in `store` against the keys in `jwks`.
pub async fn audit(store: &dyn Store, jwks: &Jwks) -> consentry_store::Result<AuditOut> {
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
                return Ok(audit.finish().into());
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    audit.end_events();
    Ok(audit.finish().into())
}

/// Audits the ledger's Merkle tree in `store` against its signed tree checkpoints (and `since`, an earlier
/// checkpoint kept elsewhere, which catches a log cut back with its later checkpoints removed): the tree
/// is rebuilt from the events, every checkpoint must sign the root of exactly its first `size` events, and
/// the store's own nodes must give the rebuilt root. The log's origin is `origin`, else the one the
/// checkpoints name; `None` when there is no checkpoint to check at all.
pub async fn verify_tree(
    store: &dyn Store,
    origin: Option<&str>,
    since: Option<&str>,
) -> consentry_store::Result<Option<TreeReport>> {
    let mut notes = Vec::new();
    loop {
        let after = notes.last().map_or(0, |c: &consentry_store::TlogCheckpoint| c.size);
        let page = store.tlog_checkpoints(after, PAGE).await?;
        let done = page.len() < PAGE as usize;
        notes.extend(page);
        if done {
            break;
        }
    }
    let named = |note: &str| note.split('\n').next().map(str::to_owned);
    let origin = origin
        .map(str::to_owned)
        .or_else(|| notes.last().and_then(|c| named(&c.note)))
        .or_else(|| since.and_then(named));
    let Some(origin) = origin else { return Ok(None) };
    let keys = store.signing_keys().await?;
    let verifiers = keys.iter().filter_map(|k| NoteVerifier::new(&origin, k.public).ok()).collect();
    let mut audit = TreeAudit::new(&origin, verifiers);
    if let Some(since) = since {
        audit.push_checkpoint("the given checkpoint", since);
    }
    for c in &notes {
        audit.push_checkpoint(&format!("the stored checkpoint of {} events", c.size), &c.note);
    }
    let mut size = 0;
    loop {
        let page = store.events_page(size, PAGE).await?;
        let Some(last) = page.last() else { break };
        size = last.seq;
        for e in &page {
            audit.push_event(e);
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    let stored = store.tlog_nodes(&Frontier::ids(size)).await?;
    match Frontier::from_nodes(size, &stored) {
        Some(tree) if tree.root() == audit.root() => {}
        Some(_) => audit.fail("the stored Merkle tree is not the tree of the events".into()),
        None => audit.fail(format!("the stored Merkle tree lacks nodes of its first {size} leaves")),
    }
    Ok(Some(audit.finish()))
}
