//! The ledger as a transparency log: its Merkle tree (RFC 9162 §2.1, kept by the store in every append's
//! transaction), signed tree heads as C2SP checkpoints, and the proofs anyone can check against them:
//! inclusion of an event, consistency between two tree sizes. `docs/ledger.md#the-transparency-log` has
//! the formats.
//!
//! Checkpoints are signed by the checkpoint worker (`workers::tlog`), never on the store's writer: the
//! writer hands on each commit group's tree head ([`Heads`]), the worker signs it at once and the writes
//! of that group, waiting for the first checkpoint covering their events ([`Tlog::covering`]), get it. Every
//! signed checkpoint verifies on its own and consistency proofs start from any size, so only some are
//! stored: at most one every 100 ms, and the newest always within that.

pub mod head;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::Timestamp;
use consentry_core::merkle::{self, Hash};
use consentry_core::note::{self, CheckpointBody, NoteVerifier};
use consentry_store::{Store, TlogCheckpoint};
use serde::Serialize;
use utoipa::ToSchema;

pub use self::head::{Heads, Tlog, TreeHead};
use crate::error::{Error, Result};
use crate::signing::Signing;
use crate::state::Services;

/// The verifier keys of the log: one per signing key, under the log's origin.
pub fn verifiers(origin: &str, signing: &Signing) -> Vec<NoteVerifier> {
    signing.all().iter().filter_map(|k| NoteVerifier::new(origin, k.public_key()).ok()).collect()
}

/// The verifier keys (`<origin>+<key id>+<key>`), one per line: the current key first, then the keys it
/// replaced, which still verify older checkpoints.
pub fn vkeys(services: &Services) -> String {
    let origin = services.tlog.origin();
    let current = services.signing.current();
    let mut lines: Vec<String> = Vec::new();
    if let Ok(v) = NoteVerifier::new(origin, current.public_key()) {
        lines.push(v.vkey());
    }
    for v in verifiers(origin, &services.signing) {
        let line = v.vkey();
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Reads the stored nodes a proof needs, in one read.
async fn fetch(store: &dyn Store, ids: Vec<merkle::NodeId>) -> Result<HashMap<merkle::NodeId, Hash>> {
    Ok(store.tlog_proof_nodes(&ids).await?.into_iter().collect())
}

fn proof_error(e: merkle::ProofError) -> Error {
    match e {
        merkle::ProofError::Invalid(why) => Error::InvalidQuery(why.to_owned()),
        other => Error::internal(format!("a Merkle proof could not be made: {other}")),
    }
}

/// The root of the tree at `size` leaves (at most the ledger's length).
pub async fn root(store: &dyn Store, size: u64) -> Result<Hash> {
    let nodes = fetch(store, merkle::Frontier::ids(size)).await?;
    merkle::root(size, |id| nodes.get(&id).copied()).map_err(proof_error)
}

/// The inclusion proofs of leaves `indexes` in the tree of `size` leaves, every node read at once.
pub async fn inclusions(
    store: &dyn Store,
    indexes: impl Iterator<Item = u64> + Clone,
    size: u64,
) -> Result<Vec<Vec<Hash>>> {
    let mut ids: Vec<merkle::NodeId> =
        indexes.clone().flat_map(|i| merkle::inclusion_nodes(i, size)).collect();
    ids.sort_unstable();
    ids.dedup();
    let nodes = fetch(store, ids).await?;
    indexes
        .map(|i| merkle::inclusion_proof(i, size, |id| nodes.get(&id).copied()).map_err(proof_error))
        .collect()
}

/// Signs the tree head `head` as a checkpoint and notes it as this node's newest (waking the writes
/// waiting for it); the checkpoint worker stores it later, at most one every 100 ms.
pub(crate) fn sign(services: &Services, head: TreeHead) -> Result<Arc<TlogCheckpoint>> {
    let body = CheckpointBody::new(services.tlog.origin(), head.size, head.root);
    let signed = note::sign(&body.text(), services.tlog.origin(), &services.signing.current())
        .map_err(|e| Error::internal(format!("the checkpoint could not be signed: {e}")))?;
    let checkpoint =
        TlogCheckpoint { size: head.size, root: head.root, note: signed, created_at: Timestamp::now() };
    services.tlog.seen(&checkpoint);
    Ok(services.tlog.newest().unwrap_or_else(|| Arc::new(checkpoint)))
}

/// Signs the tree at the ledger's current length (read from the store: what every node appended) unless
/// `last` covers it; returns the newest checkpoint, not stored.
pub(crate) async fn sign_current(
    services: &Services,
    last: Option<&TlogCheckpoint>,
) -> Result<Option<Arc<TlogCheckpoint>>> {
    let size = services.store.ledger_head().await?.events;
    if let Some(last) = last.filter(|c| c.size >= size) {
        return Ok(Some(Arc::new(last.clone())));
    }
    let root = root(services.store.as_ref(), size).await?;
    sign(services, TreeHead { size, root }).map(Some)
}

/// Signs the tree at the ledger's current length unless `last` covers it, and stores what it signed;
/// returns the newest checkpoint. Every node may sign: one stored for a size is kept, the other dropped.
pub async fn sign_head(services: &Services, last: Option<&TlogCheckpoint>) -> Result<Option<TlogCheckpoint>> {
    let newest = sign_current(services, last).await?;
    if let Some(c) = &newest
        && last.is_none_or(|l| c.size > l.size)
    {
        services.store.insert_tlog_checkpoint(c).await?;
    }
    Ok(newest.map(|c| c.as_ref().clone()))
}

/// Stores this node's newest signed checkpoint unless the store holds one as large, then signs and stores
/// the ledger's head if that is larger still (at shutdown, so the final head is stored).
pub async fn settle(services: &Services) -> Result<()> {
    let mut latest = services.store.latest_tlog_checkpoint().await?;
    if let Some(newest) = services.tlog.newest()
        && latest.as_ref().is_none_or(|l| newest.size > l.size)
    {
        services.store.insert_tlog_checkpoint(&newest).await?;
        latest = Some(newest.as_ref().clone());
    }
    sign_head(services, latest.as_ref()).await?;
    Ok(())
}

/// The newest signed checkpoint (a C2SP signed note): this node's or the store's, whichever is larger,
/// signing the first one on a log that has none.
pub async fn checkpoint(services: &Services) -> Result<String> {
    let stored = services.store.latest_tlog_checkpoint().await?;
    let newest = services.tlog.newest();
    match (stored, newest) {
        (Some(s), Some(n)) if n.size > s.size => return Ok(n.note.clone()),
        (Some(s), _) => return Ok(s.note),
        (None, Some(n)) => return Ok(n.note.clone()),
        (None, None) => {}
    }
    let signed = sign_head(services, None).await?;
    signed.map(|c| c.note).ok_or_else(|| Error::internal("no checkpoint was signed"))
}

/// Which consistency proof: between the trees of `from` and `to` leaves.
#[derive(Debug, Clone, Copy)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: u64,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyOut {
    pub from: u64,
    pub to: u64,
    /// The proof's hashes, base64 (standard alphabet), in the order RFC 9162 §2.1.4 gives.
    pub hashes: Vec<String>,
}

/// The consistency proof between two sizes of the tree: not found unless `from` ≤ `to` ≤ the log's size.
pub async fn consistency(services: &Services, query: ConsistencyQuery) -> Result<ConsistencyOut> {
    let ConsistencyQuery { from, to } = query;
    // No tree of `to` leaves exists yet, or none of `from` inside it: there is no such proof (404, as for
    // any resource that does not exist; the sizes themselves are well-formed).
    let size = services.store.ledger_head().await?.events;
    if from > to || to > size {
        return Err(Error::NotFound("tree size"));
    }
    let nodes = fetch(services.store.as_ref(), merkle::consistency_nodes(from, to)).await?;
    let proof = merkle::consistency_proof(from, to, |id| nodes.get(&id).copied()).map_err(proof_error)?;
    Ok(ConsistencyOut { from, to, hashes: proof.iter().map(|h| STANDARD.encode(h)).collect() })
}
