//! C2SP signed notes (`c2sp.org/signed-note`) with Ed25519 signatures, and the transparency-log
//! checkpoints they carry (`c2sp.org/tlog-checkpoint`): what the ledger's Merkle tree heads are published
//! as, so that existing tlog tooling and witnesses can read and check them.
//!
//! A note is its text (UTF-8, ending in a newline), a blank line, and one line per signature:
//! `— <key name> <base64(key id ‖ signature)>`. A key id is the first four bytes of
//! SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key), 0x01 naming Ed25519; the signature is Ed25519 over the text.
//! A verifier key is written `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
//!
//! A checkpoint's text is `<origin>\n<tree size>\n<base64 root>\n`, optionally followed by extension lines.
//! The same Ed25519 keys sign Consentry's JWS; a note's signed text always holds a newline, which a JWS
//! signing input (base64url and dots) never does, so one cannot pass for the other.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use crate::merkle::Hash;
use crate::proof::SigningKey;

/// The signature type byte of Ed25519 in key ids and verifier keys.
pub const ALG_ED25519: u8 = 0x01;
/// What starts every signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// The most signature lines a note may carry, as the reference implementation allows.
const MAX_SIGNATURES: usize = 100;

/// Why a note, a key or a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    #[error("invalid key name: it must be non-empty, without spaces or '+'")]
    InvalidName,
    /// A signature by a known key that does not verify: the note was changed or forged.
    #[error("a signature by a known key does not verify")]
    BadSignature,
    /// No signature by any of the given keys.
    #[error("the note carries no signature by a known key")]
    UnknownSigner,
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// Whether `name` may name a key: non-empty, no Unicode whitespace, no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key that checks a note's signatures: a name and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    public: [u8; 32],
}

impl NoteVerifier {
    pub fn new(name: &str, public: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::InvalidName);
        }
        Ok(Self { name: name.to_owned(), id: key_id(name, &public), public })
    }

    /// Reads a verifier key `<name>+<hex key id>+<base64(0x01 ‖ key)>`; the key id must be the key's.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim_end_matches('\n').splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected <name>+<key id>+<key>"));
        };
        let id = hex::decode(id).map_err(|_| NoteError::MalformedKey("the key id is not hex"))?;
        let key = STANDARD.decode(key).map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
        let Some((&ALG_ED25519, public)) = key.split_first() else {
            return Err(NoteError::MalformedKey("not an Ed25519 key"));
        };
        let public: [u8; 32] = public.try_into().map_err(|_| NoteError::MalformedKey("not 32 key bytes"))?;
        let verifier = Self::new(name, public)?;
        if id != verifier.id {
            return Err(NoteError::MalformedKey("the key id is not the key's"));
        }
        Ok(verifier)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The verifier key text, `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
    pub fn vkey(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, hex::encode(self.id), STANDARD.encode(key))
    }

    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.public) else { return false };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
        key.verify_strict(text, &signature).is_ok()
    }
}

/// Checks a note's text: non-empty, ends with a newline, no control characters but newlines.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end with a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("the text holds control characters"));
    }
    Ok(())
}

/// Signs `text` as `name` with `key`: the note (text, blank line, one signature line).
pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_text(text)?;
    if !valid_name(name) {
        return Err(NoteError::InvalidName);
    }
    let signature = key.ed25519().sign(text.as_bytes());
    let mut blob = key_id(name, &key.public_key()).to_vec();
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!("{text}\n{SIG_PREFIX}{name} {}\n", STANDARD.encode(blob)))
}

/// Opens a signed note: returns its text and the verifiers whose signatures hold. Signatures by keys not
/// in `verifiers` are skipped (witnesses may cosign); one that names a known key and does not verify
/// refuses the note, and so does a note no known key signed.
pub fn open<'n, 'v>(
    note: &'n str,
    verifiers: &'v [NoteVerifier],
) -> Result<(&'n str, Vec<&'v NoteVerifier>), NoteError> {
    let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    check_text(text)?;
    if !signatures.ends_with('\n') || signatures.len() < 2 {
        return Err(NoteError::Malformed("the signature lines must end with a newline"));
    }
    let mut verified: Vec<&NoteVerifier> = Vec::new();
    for (n, line) in signatures[..signatures.len() - 1].split('\n').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        let line =
            line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed("a signature line is malformed"))?;
        let (name, blob) =
            line.split_once(' ').ok_or(NoteError::Malformed("a signature line is malformed"))?;
        if !valid_name(name) {
            return Err(NoteError::Malformed("a signature names an invalid key"));
        }
        let blob = STANDARD.decode(blob).map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::Malformed("a signature is too short"));
        }
        let (id, signature) = blob.split_at(4);
        let Some(verifier) = verifiers.iter().find(|v| v.name == name && v.id == id) else { continue };
        if !verifier.verify(text.as_bytes(), signature) {
            return Err(NoteError::BadSignature);
        }
        if !verified.contains(&verifier) {
            verified.push(verifier);
        }
    }
    if verified.is_empty() {
        return Err(NoteError::UnknownSigner);
    }
    Ok((text, verified))
}

/// The text of a checkpoint: a log's origin, its size and its root hash, and any extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBody {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl CheckpointBody {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self { origin: origin.into(), size, root, extensions: Vec::new() }
    }

    /// `<origin>\n<size>\n<base64 root>\n` and the extension lines.
    pub fn text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Reads a checkpoint's text (a note's text, without its signatures).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text.strip_suffix('\n').ok_or(NoteError::MalformedCheckpoint("no final newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(NoteError::MalformedCheckpoint("expected origin, size and root lines"));
        };
        if origin.is_empty() {
            return Err(NoteError::MalformedCheckpoint("empty origin"));
        }
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or(NoteError::MalformedCheckpoint("the size is not a decimal number"))?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| <Hash>::try_from(r).ok())
            .ok_or(NoteError::MalformedCheckpoint("the root is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::MalformedCheckpoint("an empty extension line"));
        }
        Ok(Self { origin: origin.to_owned(), size, root, extensions })
    }
}

/// Opens a signed checkpoint of the log `origin`: its signature by one of `verifiers`, then its text.
pub fn open_checkpoint(
    note: &str,
    origin: &str,
    verifiers: &[NoteVerifier],
) -> Result<CheckpointBody, NoteError> {
    let (text, _) = open(note, verifiers)?;
    let body = CheckpointBody::parse(text)?;
    if body.origin != origin {
        return Err(NoteError::MalformedCheckpoint("the checkpoint is of another log"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
