//! Ledger audit: walks the hash chain and the signed checkpoints, with the same code third parties use
//! (`consentry_client::verify`). A running node audits against the keys it serves; the CLI audits a store
//! no node serves against the keys stored in it.
//!
//! Only the store can fail here, and an audit is run when something looks wrong: the functions on a bare
//! store return its error whole, so the CLI can print the cause.

use consentry_client::verify::{AuditProblem, AuditReport, LedgerAudit, NoteVerifier, TreeAudit, TreeReport};
use std::collections::HashMap;

use consentry_core::merkle::{Frontier, Hash, NodeId};
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
    /// The Merkle tree rebuilt from the events, against the signed tree checkpoints and every node the
    /// store keeps.
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

/// Audits the node's ledger against the keys it publishes: the hash chain and its JWS checkpoints, then
/// the Merkle tree against the signed tree checkpoints of the log's origin and the stored nodes.
pub async fn verify(services: &Services) -> Result<AuditOut> {
    let store = services.store.as_ref();
    let mut out = audit(store, services.signing.jwks()).await?;
    let verifiers = crate::tlog::verifiers(services.tlog.origin(), &services.signing);
    let tree = audit_tree(store, services.tlog.origin(), verifiers, None).await?;
    out.ok &= tree.ok;
    out.tree = Some(tree);
    Ok(out)
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
/// every node the store keeps for proofs must be the rebuilt tree's. The log's origin is `origin`, else
/// the one the checkpoints name; `None` when there is no checkpoint to check at all. The keys are the
/// signing keys stored in `store`.
pub async fn verify_tree(
    store: &dyn Store,
    origin: Option<&str>,
    since: Option<&str>,
) -> consentry_store::Result<Option<TreeReport>> {
    let named = |note: &str| note.split('\n').next().map(str::to_owned);
    let latest = store.latest_tlog_checkpoint().await?;
    let origin = origin
        .map(str::to_owned)
        .or_else(|| latest.as_ref().and_then(|c| named(&c.note)))
        .or_else(|| since.and_then(named));
    let Some(origin) = origin else { return Ok(None) };
    let keys = store.signing_keys().await?;
    let verifiers = keys.iter().filter_map(|k| NoteVerifier::new(&origin, k.public).ok()).collect();
    audit_tree(store, &origin, verifiers, since).await.map(Some)
}

/// Audits the tree of log `origin` in `store` against its stored checkpoints, `since`, and the stored
/// nodes, with the verifier keys `verifiers`.
async fn audit_tree(
    store: &dyn Store,
    origin: &str,
    verifiers: Vec<NoteVerifier>,
    since: Option<&str>,
) -> consentry_store::Result<TreeReport> {
    let mut audit = TreeAudit::new(origin, verifiers);
    if let Some(since) = since {
        audit.push_checkpoint("the given checkpoint", since);
    }
    // Checkpoints first, then the events: the ledger only grows in between.
    let mut after = 0;
    loop {
        let page = store.tlog_checkpoints(after, PAGE).await?;
        for c in &page {
            audit.push_checkpoint(&format!("the stored checkpoint of {} events", c.size), &c.note);
        }
        let Some(last) = page.last() else { break };
        after = last.size;
        if page.len() < PAGE as usize {
            break;
        }
    }
    let mut size = 0;
    let mut completed = Vec::new();
    loop {
        let page = store.events_page(size, PAGE).await?;
        let Some(last) = page.last() else { break };
        size = last.seq;
        completed.clear();
        for e in &page {
            audit.push_event_nodes(e, &mut completed);
        }
        let ids: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
        let stored: HashMap<NodeId, Hash> = store.tlog_nodes(&ids).await?.into_iter().collect();
        if let Some((id, _)) = completed.iter().find(|(id, hash)| stored.get(id) != Some(hash)) {
            let what = if stored.contains_key(id) { "is not" } else { "is missing from" };
            audit.fail(format!(
                "the stored Merkle tree's node at level {} index {} {what} the tree of the events",
                id.level, id.index
            ));
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
    Ok(audit.finish())
}
