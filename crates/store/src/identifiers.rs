//! People's identifiers (an e-mail address, a phone number, an account number, a device serial, ...): each
//! value stored only encrypted under the subject's own data key (the vault's, see [`crate::vault`]), and
//! found by a **blind index**: an HMAC-SHA256 of its type and normalised value under a server key that
//! lives in the key store, computed by the caller. The data store holds the blind index, the ciphertext and
//! the pseudonym, so a copy of it alone names no one and reveals no value; erasure deletes the rows (and
//! their index entries) and destroys the data key.
//!
//! The blind index is the primary key: an identifier belongs to one subject at a time.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::common::random_bytes;
use crate::error::Result;
use crate::vault::Kek;

/// An identifier to store. `value` is the normalised plaintext; it is encrypted before it reaches the
/// database. `Debug` shows neither the value nor the index.
#[derive(Clone, PartialEq, Eq)]
pub struct NewIdentifier {
    /// Unique; see [`new_identifier_id`].
    pub id: String,
    pub subject: SubjectId,
    /// Its type (`email`, `phone`, ...).
    pub kind: String,
    /// HMAC-SHA256 of the type and the normalised value under the server's index key.
    pub blind_index: [u8; 32],
    pub value: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for NewIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIdentifier")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// An identifier read back, its value decrypted. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredIdentifier {
    pub id: String,
    pub kind: String,
    pub value: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for StoredIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredIdentifier")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What [`IdentifierStore::add_identifier`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddedIdentifier {
    /// Stored as given.
    Added,
    /// The subject already had it: nothing changed; the stored one's id and creation time.
    Existing { id: String, created_at: Timestamp },
    /// Another subject has it: nothing changed.
    Taken,
}

/// A fresh identifier id: `idn_` and 64 random bits in hex.
pub fn new_identifier_id() -> Result<String> {
    Ok(format!("idn_{}", random_bytes::<8>()?.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Storage of identifiers, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait IdentifierStore: Send + Sync {
    /// Encrypts the value under the subject's data key (creating their pseudonym and data key when they
    /// have none) and stores it with its blind index, unless that index is already stored.
    async fn add_identifier(&self, kek: &Kek, identifier: NewIdentifier) -> Result<AddedIdentifier>;

    /// The subject's identifiers, decrypted, oldest first.
    async fn identifiers(&self, kek: &Kek, subject: &SubjectId) -> Result<Vec<StoredIdentifier>>;

    /// Deletes the subject's identifier `id` with its index entry; false when the subject has no such one.
    async fn delete_identifier(&self, subject: &SubjectId, id: &str) -> Result<bool>;

    /// The subject holding the identifier with this blind index (one indexed look-up).
    async fn subject_by_identifier(&self, blind_index: &[u8; 32]) -> Result<Option<SubjectId>>;
}
