//! Offline verification of Consentry's proofs: signed consent receipts and exported ledgers with their
//! signed checkpoints. Needs only the JWKS Consentry publishes; no call to Consentry is made.
//!
//! A receipt is a Kantara Consent Receipt v1.1 ([`ConsentReceipt`], `version` `KI-CR-v1.1.0`) with
//! Consentry's evidence in its `consentry` member; `docs/receipts.md` describes every member. A receipt as
//! a write answers it ([`ProvenReceipt`]) proves itself against the ledger's transparency log:
//! [`verify_proven_receipt`] checks it with the log's verifier keys (`GET /v1/tlog/vkey`), and
//! [`verify_inclusion`] and [`verify_consistency`] check RFC 9162 proofs against signed checkpoints
//! ([`open_checkpoint`]).
//!
//! # The exported-ledger format (JSON Lines)
//!
//! One JSON object per line (`\n` or `\r\n`), no blank lines. First every event, in sequence order:
//!
//! `{"type":"event","seq":..,"subject":..,"purpose":..,"action":..,"categories":[..],"channels":[..],
//! "recipients":[..],"notice":..,"notice_version":..,"notice_hash":..,"collection_point":..,"actor":..,
//! "recorded_at":..,"expires_at":..,"prev_hash":..,"hash":..}`
//!
//! (with `"evidence":..` after `hash` on an event that carries evidence, the hash of a signal's string),
//! carrying every hashed field of the event (see `consentry_core::ledger`; `subject` is the pseudonym and
//! timestamps use the ledger's exact rendering), and nothing else. Then checkpoint lines
//! `{"type":"checkpoint","jws":".."}`, each a JWS of a [`Checkpoint`] signed by a key of the JWKS.
//!
//! [`verify_export`] checks every link of the chain and every checkpoint: its signature, and that the
//! file holds the `events` events it claims with its `head` as the hash of the last of them, which finds
//! events cut off the end. The server's audit endpoint runs the same rules through [`LedgerAudit`] (or
//! [`verify_chain_with_checkpoints`]) on the events it reads from its store.

mod audit;
mod export;
mod tree;

pub use consentry_core::merkle::{ProofError, verify_consistency, verify_inclusion};
pub use consentry_core::note::{CheckpointBody, NoteError, NoteVerifier, open_checkpoint};
pub use consentry_core::proof::{
    Checkpoint, ConsentReceipt, Extension, Jwk, Jwks, JwsError, PiiController, PostalAddress,
    ReceiptCategory, ReceiptEvent, ReceiptNotice, ReceiptRecipient, Service, ServicePurpose,
};
use consentry_core::proof::{JwsKind, RECEIPT_SCHEMA_VERSION, RECEIPT_VERSION, verify_jws_kind};
pub use consentry_core::proven::{Leaf, LeafProof, ProvenError, ProvenReceipt};

pub use self::audit::{AuditProblem, AuditReport, LedgerAudit, ProblemKind, verify_chain_with_checkpoints};
pub use self::export::{
    ExportProblem, ExportReport, export_checkpoint_line, export_event_line, verify_export,
};
pub use self::tree::{TreeAudit, TreeReport};

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The JWS itself: malformed, another algorithm, unknown kid, a bad signature, or a genuine JWS of
    /// another kind (its `typ` is neither `consent-receipt+jwt` nor the legacy `JWT` or none).
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// The signature holds, but the payload is not a consent receipt of the form this version reads.
    /// Receipts Consentry issued before they followed Kantara v1.1 (`schema_version`
    /// `consentry-receipt/1`) are of this kind: the server builds every receipt it reads again in the
    /// current form, so fetch it again (`GET /v1/receipts/{id}`) to get one this verifier reads.
    #[error("the signed payload is not a consent receipt")]
    NotAReceipt,
    /// A receipt of another Kantara version or of an extension form this version does not know.
    #[error("unsupported receipt schema (expected {RECEIPT_VERSION} with {RECEIPT_SCHEMA_VERSION})")]
    UnsupportedSchema,
}

/// Verifies a receipt JWS against Consentry's JWKS and returns the receipt. Receipts signed before
/// receipts had their own `typ` (`JWT`, or none) still verify: people keep them for years.
pub fn verify_receipt(jws: &str, jwks: &Jwks) -> Result<ConsentReceipt, VerifyError> {
    let (_, payload) = verify_jws_kind(jws, jwks, JwsKind::Receipt)?;
    let receipt: ConsentReceipt = serde_json::from_slice(&payload).map_err(|_| VerifyError::NotAReceipt)?;
    if receipt.version != RECEIPT_VERSION || receipt.consentry.schema_version != RECEIPT_SCHEMA_VERSION {
        return Err(VerifyError::UnsupportedSchema);
    }
    Ok(receipt)
}

/// Verifies a receipt that proves itself (what a consent write answers, or `GET /v1/receipts/{id}`)
/// against the log `origin` with its verifier keys: the checkpoint's signature, every event's inclusion,
/// that the events are those the receipt names, and that they are about the receipt's subject. Returns
/// the receipt document and the checkpoint it was proven against.
pub fn verify_proven_receipt(
    receipt: &ProvenReceipt,
    origin: &str,
    verifiers: &[NoteVerifier],
) -> Result<(ConsentReceipt, CheckpointBody), ProvenError> {
    let checkpoint = consentry_core::proven::verify(receipt, origin, verifiers)?;
    Ok((receipt.payload.clone(), checkpoint))
}

#[cfg(test)]
mod tests;
