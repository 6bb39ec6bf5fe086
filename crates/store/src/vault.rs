//! The personal data vault: records a device or backend collected, stored encrypted with a data key of the
//! subject's own.
//!
//! - **Envelope encryption.** Each subject has one random 256-bit data key, kept in the key store
//!   (`subject_data_keys`) wrapped by the key-encryption key ([`Kek`]) with AES-256-GCM. Payloads are
//!   encrypted with the data key (AES-256-GCM, a random 96-bit nonce per record, the record id and the
//!   subject's pseudonym as associated data, so a ciphertext moved to another row or subject does not
//!   open). Encryption and decryption happen in this process; no plaintext payload reaches a database.
//! - **A copy of the data alone reads nothing:** the data store holds only ciphertext under pseudonyms; the
//!   data keys are in the key store, and they open only with the KEK, which no database holds.
//! - **Crypto-shredding.** [`VaultStore::delete_subject_vault`] deletes a subject's records and destroys
//!   their data key, so every other copy of their ciphertext (backups included) becomes unreadable.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::common::random_bytes;
use crate::error::{Result, StoreError};
use crate::model::OutboxMessage;

/// The key-encryption key: 32 bytes that wrap every subject's data key. It never reaches a database; its
/// `Debug` output hides it and it is zeroised when dropped.
#[derive(Clone)]
pub struct Kek {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id()).finish_non_exhaustive()
    }
}

impl Kek {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self { bytes: Zeroizing::new(bytes) }
    }

    /// A fresh random KEK.
    pub fn generate() -> Result<Self> {
        Ok(Self::new(random_bytes()?))
    }

    /// The raw key, e.g. to write it to a key file.
    pub fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// A public identifier of this KEK (16 hex digits of a domain-separated SHA-256), stored with each
    /// wrapped data key so that a store opened with the wrong KEK says so instead of failing to decrypt.
    pub fn id(&self) -> String {
        let input = Zeroizing::new([b"consentry-kek-id-v1\0".as_slice(), &self.bytes[..]].concat());
        hex(&digest(&SHA256, &input).as_ref()[..8])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn crypto_error(what: &str) -> StoreError {
    StoreError::Backend(format!("vault crypto: {what}"))
}

fn aead_key(bytes: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes).map(LessSafeKey::new).map_err(|_| crypto_error("bad key length"))
}

fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
    let nonce: [u8; NONCE_LEN] = random_bytes()?;
    let mut out = Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len());
    out.extend_from_slice(plaintext);
    aead_key(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out)
        .map_err(|_| crypto_error("sealing failed"))?;
    Ok((nonce, out))
}

fn open(key: &[u8; 32], aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| crypto_error("bad nonce length"))?;
    let mut buf = ciphertext.to_vec();
    let len = aead_key(key)?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| crypto_error("a ciphertext does not open (altered, moved or under another key)"))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn key_aad(pseudonym: &str) -> Vec<u8> {
    [b"consentry-data-key-v1\0".as_slice(), pseudonym.as_bytes()].concat()
}

fn record_aad(record_id: &str, pseudonym: &str) -> Vec<u8> {
    [b"consentry-record-v1\0".as_slice(), record_id.as_bytes(), b"\0", pseudonym.as_bytes()].concat()
}

/// A subject's data key as the key store keeps it: wrapped by the KEK named by `kek_id`, bound to the
/// subject's pseudonym. `wrapped` is the 12-byte nonce followed by the ciphertext and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

impl WrappedKey {
    /// A fresh random data key for the subject with `pseudonym`, wrapped by `kek`.
    pub fn generate(kek: &Kek, pseudonym: &str) -> Result<Self> {
        let key = Zeroizing::new(random_bytes::<32>()?);
        let (nonce, sealed) = seal(kek.expose(), &key_aad(pseudonym), &key[..])?;
        Ok(Self { kek_id: kek.id(), wrapped: [&nonce[..], &sealed].concat() })
    }

    /// The data key, unwrapped with `kek`.
    pub fn unwrap_key(&self, kek: &Kek, pseudonym: &str) -> Result<Zeroizing<[u8; 32]>> {
        if self.kek_id != kek.id() {
            return Err(StoreError::Backend(format!(
                "the vault's data keys were wrapped by key-encryption key {}, not by the configured {}; \
                 configure the KEK the vault was created with (CONSENTRY_KEK or kek_file)",
                self.kek_id,
                kek.id()
            )));
        }
        if self.wrapped.len() < NONCE_LEN {
            return Err(crypto_error("wrapped key too short"));
        }
        let (nonce, sealed) = self.wrapped.split_at(NONCE_LEN);
        let plain = Zeroizing::new(open(kek.expose(), &key_aad(pseudonym), nonce, sealed)?);
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(crypto_error("unwrapped key has the wrong length"));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

/// A record's payload encrypted for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayload {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Encrypts `plaintext` for the record `record_id` of the subject with `pseudonym`.
pub fn seal_payload(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    record_id: &str,
    plaintext: &[u8],
) -> Result<SealedPayload> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    let (nonce, ciphertext) = seal(&data_key, &record_aad(record_id, pseudonym), plaintext)?;
    Ok(SealedPayload { nonce: nonce.to_vec(), ciphertext })
}

/// Decrypts a stored payload; fails when it was altered, moved to another record or subject, or sealed
/// under another key.
pub fn open_payload(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    record_id: &str,
    sealed: &SealedPayload,
) -> Result<Vec<u8>> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    open(&data_key, &record_aad(record_id, pseudonym), &sealed.nonce, &sealed.ciphertext)
}

fn identifier_aad(identifier_id: &str, pseudonym: &str) -> Vec<u8> {
    [b"consentry-identifier-v1\0".as_slice(), identifier_id.as_bytes(), b"\0", pseudonym.as_bytes()].concat()
}

/// Encrypts an identifier's value under the subject's data key, bound to the identifier's id and the
/// subject's pseudonym (a domain of its own, so a record's ciphertext never opens as an identifier).
pub fn seal_identifier(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    identifier_id: &str,
    value: &[u8],
) -> Result<SealedPayload> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    let (nonce, ciphertext) = seal(&data_key, &identifier_aad(identifier_id, pseudonym), value)?;
    Ok(SealedPayload { nonce: nonce.to_vec(), ciphertext })
}

/// Decrypts an identifier's value sealed by [`seal_identifier`].
pub fn open_identifier(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    identifier_id: &str,
    sealed: &SealedPayload,
) -> Result<Vec<u8>> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    open(&data_key, &identifier_aad(identifier_id, pseudonym), &sealed.nonce, &sealed.ciphertext)
}

fn age_aad(pseudonym: &str) -> Vec<u8> {
    [b"consentry-age-v1\0".as_slice(), pseudonym.as_bytes()].concat()
}

/// Encrypts what is known of a subject's age under their data key, bound to their pseudonym (a domain of
/// its own).
pub fn seal_age(kek: &Kek, key: &WrappedKey, pseudonym: &str, value: &[u8]) -> Result<SealedPayload> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    let (nonce, ciphertext) = seal(&data_key, &age_aad(pseudonym), value)?;
    Ok(SealedPayload { nonce: nonce.to_vec(), ciphertext })
}

/// Decrypts an age sealed by [`seal_age`].
pub fn open_age(kek: &Kek, key: &WrappedKey, pseudonym: &str, sealed: &SealedPayload) -> Result<Vec<u8>> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    open(&data_key, &age_aad(pseudonym), &sealed.nonce, &sealed.ciphertext)
}

fn evidence_aad(seq: u64, pseudonym: &str) -> Vec<u8> {
    [b"consentry-evidence-v1\0".as_slice(), &seq.to_be_bytes(), b"\0", pseudonym.as_bytes()].concat()
}

/// Encrypts the evidence of ledger event `seq` under the subject's data key, bound to the event and the
/// subject's pseudonym (a domain of its own).
pub fn seal_evidence(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    seq: u64,
    evidence: &[u8],
) -> Result<SealedPayload> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    let (nonce, ciphertext) = seal(&data_key, &evidence_aad(seq, pseudonym), evidence)?;
    Ok(SealedPayload { nonce: nonce.to_vec(), ciphertext })
}

/// Decrypts evidence sealed by [`seal_evidence`].
pub fn open_evidence(
    kek: &Kek,
    key: &WrappedKey,
    pseudonym: &str,
    seq: u64,
    sealed: &SealedPayload,
) -> Result<Vec<u8>> {
    let data_key = key.unwrap_key(kek, pseudonym)?;
    open(&data_key, &evidence_aad(seq, pseudonym), &sealed.nonce, &sealed.ciphertext)
}

fn household_aad(household: &str) -> Vec<u8> {
    [b"consentry-household-name-v1\0".as_slice(), household.as_bytes()].concat()
}

/// Encrypts a household's label under the KEK itself (a household has no data key of its own), bound to
/// the household's id, in a domain of its own.
pub fn seal_household_name(kek: &Kek, household: &str, name: &str) -> Result<SealedPayload> {
    let (nonce, ciphertext) = seal(kek.expose(), &household_aad(household), name.as_bytes())?;
    Ok(SealedPayload { nonce: nonce.to_vec(), ciphertext })
}

/// Decrypts a household's label sealed by [`seal_household_name`].
pub fn open_household_name(kek: &Kek, household: &str, sealed: &SealedPayload) -> Result<String> {
    let plain = open(kek.expose(), &household_aad(household), &sealed.nonce, &sealed.ciphertext)?;
    String::from_utf8(plain).map_err(|_| crypto_error("a household's label is not UTF-8"))
}

/// A record to store. `data` is the plaintext payload; it is encrypted before it reaches the database.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Unique; see [`new_record_id`].
    pub id: String,
    pub subject: SubjectId,
    pub device_id: Option<String>,
    pub category: String,
    pub purpose: String,
    pub content_type: String,
    pub collected_at: Timestamp,
    pub stored_at: Timestamp,
    /// When the retention sweeper deletes it; `None`: kept until deleted.
    pub delete_after: Option<Timestamp>,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for NewRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRecord")
            .field("id", &self.id)
            .field("category", &self.category)
            .field("purpose", &self.purpose)
            .field("size", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl NewRecord {
    /// The metadata the store keeps in the clear.
    pub fn meta(&self) -> RecordMeta {
        RecordMeta {
            id: self.id.clone(),
            device_id: self.device_id.clone(),
            category: self.category.clone(),
            purpose: self.purpose.clone(),
            content_type: self.content_type.clone(),
            size: self.data.len() as u64,
            collected_at: self.collected_at,
            stored_at: self.stored_at,
            delete_after: self.delete_after,
        }
    }
}

/// A fresh record id: `rec_`, the storage time (so ids sort by it) and 64 random bits, in hex.
pub fn new_record_id(stored_at: Timestamp) -> Result<String> {
    let micros = u64::try_from(stored_at.micros()).unwrap_or(0);
    Ok(format!("rec_{micros:016x}{}", hex(&random_bytes::<8>()?)))
}

/// What the store keeps of a record in the clear (everything but the payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordMeta {
    pub id: String,
    pub device_id: Option<String>,
    pub category: String,
    pub purpose: String,
    pub content_type: String,
    /// The payload's size in bytes (before encryption).
    pub size: u64,
    pub collected_at: Timestamp,
    pub stored_at: Timestamp,
    pub delete_after: Option<Timestamp>,
}

/// A record read back with its payload. `subject` comes from the key store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub subject: SubjectId,
    pub meta: RecordMeta,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord").field("meta", &self.meta).finish_non_exhaustive()
    }
}

/// Which of a subject's records [`VaultStore::records`] lists. Newest (by id) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// This category and the categories under it.
    pub category: Option<String>,
    /// This purpose and the purposes under it.
    pub purpose: Option<String>,
    pub device_id: Option<String>,
    /// Collected at or after.
    pub from: Option<Timestamp>,
    /// Collected before.
    pub until: Option<Timestamp>,
    /// Only records with an id below this one (the last id of the previous page).
    pub before: Option<String>,
    pub limit: u32,
}

/// Which records [`VaultStore::delete_records`] deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSelection {
    /// These records, if they are the subject's.
    Ids { subject: SubjectId, ids: Vec<String> },
    /// The subject's records of this category and those under it (all, when `None`).
    Subject { subject: SubjectId, category: Option<String> },
    /// Up to `limit` records whose `delete_after` is at or before `now`, soonest first (any subject).
    Due { now: Timestamp, limit: u32 },
}

/// Makes the outbox message announcing one deleted record (e.g. a `record.deleted` CloudEvent, without the
/// subject id). The store stores it under the record's pseudonym in the deleting transaction, so the
/// announcement exists if and only if the deletion does. It runs inside the store's transaction: keep it
/// quick, no I/O.
pub type RecordAnnouncer = Box<dyn Fn(&RecordMeta) -> OutboxMessage + Send>;

/// Storage of the vault, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Binds the vault to `kek_id` on first use; afterwards, returns whether `kek_id` is the KEK it is
    /// bound to. A node configured with another KEK than the vault's must not start.
    async fn claim_kek(&self, kek_id: &str) -> Result<bool>;

    /// Encrypts and stores a record under the subject's pseudonym, creating the pseudonym and the
    /// subject's data key when the subject has none. An id already used is a [`StoreError::Conflict`].
    async fn put_record(&self, kek: &Kek, record: NewRecord) -> Result<RecordMeta>;

    /// A record's metadata and owner, without its payload.
    async fn record_meta(&self, id: &str) -> Result<Option<(SubjectId, RecordMeta)>>;

    /// A record with its decrypted payload; `None` when there is no such record (or its subject's data
    /// key is gone).
    async fn record(&self, kek: &Kek, id: &str) -> Result<Option<StoredRecord>>;

    /// The subject's records that `filter` selects, newest first, at most `filter.limit`.
    async fn records(&self, subject: &SubjectId, filter: &RecordFilter) -> Result<Vec<RecordMeta>>;

    /// Which of `subjects` hold at least one record: one look-up for many subjects (an import's batch of
    /// withdrawals), before [`records`](Self::records) is asked for those that do.
    async fn holding_records(&self, subjects: &[SubjectId]) -> Result<std::collections::HashSet<SubjectId>>;

    /// Deletes the selected records and, with `announce`, puts one outbox message per deleted record in
    /// the same transaction. Returns the deleted records.
    async fn delete_records(
        &self,
        selection: RecordSelection,
        announce: Option<RecordAnnouncer>,
    ) -> Result<Vec<RecordMeta>>;

    /// Deletes every record and identifier of the subject (identifiers are sealed under the same key) and
    /// destroys their data key (crypto-shredding): whatever ciphertext of theirs survives elsewhere can no
    /// longer be read. Returns how many records it deleted.
    async fn delete_subject_vault(&self, subject: &SubjectId) -> Result<u64>;
}

/// Payloads from this size on are encrypted and decrypted on the blocking pool, not on an async worker.
const LARGE_PAYLOAD: usize = 64 * 1024;

/// Runs crypto work `f` on `size` bytes: inline when small, on the blocking pool when large.
pub(crate) async fn crypto<T: Send + 'static>(
    size: usize,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if size < LARGE_PAYLOAD {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("crypto task failed: {e}")))?
}

/// The columns of [`RECORD_COLUMNS`](crate::sql::RECORD_COLUMNS), as read.
pub(crate) type RecordRow = (String, Option<String>, String, String, String, i64, i64, i64, Option<i64>);

pub(crate) fn record_meta(
    (id, device_id, category, purpose, content_type, size, collected, stored, due): RecordRow,
) -> RecordMeta {
    RecordMeta {
        id,
        device_id,
        category,
        purpose,
        content_type,
        size: u64::try_from(size).unwrap_or(0),
        collected_at: Timestamp::from_micros(collected),
        stored_at: Timestamp::from_micros(stored),
        delete_after: due.map(Timestamp::from_micros),
    }
}

/// Runs an announcer, turning a panic into an error so that a store's writer survives it.
pub(crate) fn announce(announcer: &RecordAnnouncer, meta: &RecordMeta) -> Result<OutboxMessage> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| announcer(meta)))
        .map_err(|_| StoreError::Backend("announcing a deleted record panicked".into()))
}

/// `key` LIKE-escaped, for "this key or under it" matches: `key = ? OR key LIKE ? ESCAPE '\'`.
pub(crate) fn under_pattern(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 3);
    for c in key.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(".%");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_open_only_where_they_were_sealed() {
        let kek = Kek::generate().expect("kek");
        let key = WrappedKey::generate(&kek, "p1").expect("key");
        let sealed = seal_payload(&kek, &key, "p1", "rec_1", b"hello vault").expect("seal");
        assert!(!sealed.ciphertext.windows(5).any(|w| w == b"hello"), "no plaintext in the ciphertext");
        assert_eq!(open_payload(&kek, &key, "p1", "rec_1", &sealed).expect("open"), b"hello vault");
        // Another record id, another pseudonym, another KEK, an altered byte: nothing opens.
        assert!(open_payload(&kek, &key, "p1", "rec_2", &sealed).is_err());
        assert!(open_payload(&kek, &key, "p2", "rec_1", &sealed).is_err());
        // An identifier's domain is its own.
        let id = seal_identifier(&kek, &key, "p1", "rec_1", b"ana@example.com").expect("seal");
        assert_eq!(open_identifier(&kek, &key, "p1", "rec_1", &id).expect("open"), b"ana@example.com");
        assert!(open_payload(&kek, &key, "p1", "rec_1", &id).is_err());
        assert!(open_identifier(&kek, &key, "p1", "rec_1", &sealed).is_err());
        let other = Kek::generate().expect("kek");
        let err = open_payload(&other, &key, "p1", "rec_1", &sealed).expect_err("other kek");
        assert!(err.to_string().contains("key-encryption key"), "{err}");
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(open_payload(&kek, &key, "p1", "rec_1", &altered).is_err());
        // A data key moved to another subject does not unwrap.
        assert!(key.unwrap_key(&kek, "p2").is_err());
    }

    #[test]
    fn fresh_nonces_and_keys() {
        let kek = Kek::generate().expect("kek");
        let key = WrappedKey::generate(&kek, "p").expect("key");
        let a = seal_payload(&kek, &key, "p", "r", b"same").expect("seal");
        let b = seal_payload(&kek, &key, "p", "r", b"same").expect("seal");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(WrappedKey::generate(&kek, "p").expect("key").wrapped, key.wrapped);
        assert_eq!(kek.id().len(), 16);
        assert!(!format!("{kek:?}").contains(&hex(kek.expose())), "Debug hides the key");
    }

    #[test]
    fn like_patterns_escape() {
        assert_eq!(under_pattern("user.contact"), "user.contact.%");
        assert_eq!(under_pattern("a_b%"), "a\\_b\\%.%");
    }
}
