//! The ledger as a transparency log: its Merkle tree (RFC 9162 §2.1, kept by the store in every append's
//! transaction), signed tree heads as C2SP checkpoints, and the proofs anyone can check against them:
//! inclusion of an event, consistency between two tree sizes. `docs/ledger.md#the-transparency-log` has
//! the formats.
//!
//! Checkpoints are signed by the checkpoint worker (`workers::tlog`), never on the store's writer: it wakes
//! after each commit, signs at most every 100 ms, and stores what it signed. A write that wants a proof of
//! its events waits for the first checkpoint covering them ([`Tlog::covering`]).

pub mod head;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::Timestamp;
use consentry_core::merkle::{self, Hash};
use consentry_core::note::{self, CheckpointBody, NoteVerifier};
use consentry_store::{Store, TlogCheckpoint};
use serde::Serialize;
use utoipa::ToSchema;

pub use self::head::Tlog;
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
    Ok(store.tlog_nodes(&ids).await?.into_iter().collect())
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

/// Signs the tree at the ledger's current length unless a checkpoint of that size exists; returns the
/// newest checkpoint. Every node may sign: one stored for a size is kept, the other dropped.
pub async fn sign_head(services: &Services, last: Option<&TlogCheckpoint>) -> Result<Option<TlogCheckpoint>> {
    let size = services.store.ledger_head().await?.events;
    if last.is_some_and(|c| c.size >= size) {
        return Ok(last.cloned());
    }
    let root = root(services.store.as_ref(), size).await?;
    let body = CheckpointBody::new(services.tlog.origin(), size, root);
    let signed = note::sign(&body.text(), services.tlog.origin(), &services.signing.current())
        .map_err(|e| Error::internal(format!("the checkpoint could not be signed: {e}")))?;
    let checkpoint = TlogCheckpoint { size, root, note: signed, created_at: Timestamp::now() };
    services.store.insert_tlog_checkpoint(&checkpoint).await?;
    services.tlog.seen(&checkpoint);
    Ok(Some(checkpoint))
}

/// The newest signed checkpoint (a C2SP signed note), signing the first one on a log that has none.
pub async fn checkpoint(services: &Services) -> Result<String> {
    if let Some(c) = services.store.latest_tlog_checkpoint().await? {
        return Ok(c.note);
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
