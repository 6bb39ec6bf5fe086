//! A consent receipt that proves itself: the receipt document, the ledger events it records as the leaves
//! of the ledger's Merkle tree with their inclusion proofs, the signed checkpoint of that tree, and the
//! opening of the subject's pseudonym. Nothing of it is signed per request: one checkpoint signature
//! covers every event up to its size.
//!
//! [`verify`] checks, with the log's verifier keys only: the checkpoint's signature and origin; each leaf's
//! inclusion proof against the checkpoint's root; that each leaf is the event the receipt names (its
//! SHA-256 is the event's `hash`, its place the event's `seq`, its purpose and action those named); and
//! that each event's pseudonym is HMAC-SHA256 of the receipt's subject id under the opened key, so the
//! events are about that person. The key is destroyed when the person is erased; copies they keep stay
//! verifiable, the server's copy is gone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::ledger::pseudonym;
use crate::merkle::{self, Hash};
use crate::note::{self, CheckpointBody, NoteVerifier};
use crate::proof::ConsentReceipt;

/// A ledger event as a leaf of the tree: its 0-based index (the event's `seq` − 1) and its canonical
/// bytes (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    pub index: u64,
    pub data: String,
}

/// A further leaf of a receipt, with its own inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafProof {
    pub index: u64,
    pub data: String,
    pub inclusion_proof: Vec<String>,
}

/// A receipt with the proof that its events are in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenReceipt {
    pub id: String,
    /// The receipt document (Kantara CR v1.1 with the `consentry` member).
    pub payload: ConsentReceipt,
    /// The first event the receipt records.
    pub leaf: Leaf,
    /// The RFC 9162 audit path of `leaf` to the root of `checkpoint` (base64 hashes).
    pub inclusion_proof: Vec<String>,
    /// The request's further events, when it made several changes, each with its proof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_leaves: Vec<LeafProof>,
    /// The C2SP signed checkpoint (signed note text) the proofs lead to.
    pub checkpoint: String,
    /// The opening of the subject's pseudonym: base64 of the per-subject key, so that
    /// HMAC-SHA256(key, subject id) is the pseudonym in every leaf.
    pub subject_key: String,
}

/// Why a proven receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenError {
    #[error(transparent)]
    Checkpoint(#[from] note::NoteError),
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    #[error("an inclusion proof does not lead to the checkpoint's root: {0}")]
    NotIncluded(merkle::ProofError),
    #[error("a leaf is not the event the receipt names")]
    WrongEvent,
    #[error("the events are not about the receipt's subject")]
    WrongSubject,
}

fn hashes(proof: &[String]) -> Result<Vec<Hash>, ProvenError> {
    proof
        .iter()
        .map(|h| STANDARD.decode(h).ok().and_then(|b| Hash::try_from(b).ok()))
        .collect::<Option<Vec<_>>>()
        .ok_or(ProvenError::Malformed("a proof hash is not 32 bytes of base64"))
}

/// The fields of a leaf's canonical bytes a receipt is checked against.
#[derive(Deserialize)]
struct LeafEvent {
    seq: u64,
    subject: String,
    purpose: String,
    action: String,
}

/// Verifies a proven receipt of the log `origin` with its verifier keys; returns the checkpoint it was
/// proven against.
pub fn verify(
    receipt: &ProvenReceipt,
    origin: &str,
    verifiers: &[NoteVerifier],
) -> Result<CheckpointBody, ProvenError> {
    let checkpoint = note::open_checkpoint(&receipt.checkpoint, origin, verifiers)?;
    let key: [u8; 32] = STANDARD
        .decode(&receipt.subject_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(ProvenError::Malformed("subject_key is not 32 bytes of base64"))?;
    let expected = pseudonym(&key, &receipt.payload.pii_principal_id);
    let first = LeafProof {
        index: receipt.leaf.index,
        data: receipt.leaf.data.clone(),
        inclusion_proof: receipt.inclusion_proof.clone(),
    };
    let leaves: Vec<&LeafProof> = std::iter::once(&first).chain(&receipt.other_leaves).collect();
    let named = &receipt.payload.consentry.events;
    if named.len() != leaves.len() {
        return Err(ProvenError::Malformed("the receipt proves another number of events than it names"));
    }
    for (leaf, claim) in leaves.into_iter().zip(named) {
        let data =
            STANDARD.decode(&leaf.data).map_err(|_| ProvenError::Malformed("leaf data is not base64"))?;
        let proof = hashes(&leaf.inclusion_proof)?;
        merkle::verify_inclusion(
            leaf.index,
            checkpoint.size,
            &merkle::leaf_hash(&data),
            &proof,
            &checkpoint.root,
        )
        .map_err(ProvenError::NotIncluded)?;
        let event: LeafEvent =
            serde_json::from_slice(&data).map_err(|_| ProvenError::Malformed("leaf data is not an event"))?;
        let same = hex::encode(sha2::Sha256::digest(&data)) == claim.hash
            && event.seq == claim.seq
            && event.seq == leaf.index + 1
            && event.purpose == claim.purpose_id
            && event.action == claim.event_type;
        if !same {
            return Err(ProvenError::WrongEvent);
        }
        if event.subject != expected {
            return Err(ProvenError::WrongSubject);
        }
    }
    Ok(checkpoint)
}
