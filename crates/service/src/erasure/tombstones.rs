//! Erased subjects, as this node knows them: tombstones, each the HMAC-SHA256 of a subject id under a
//! secret kept in the key store, never the id itself. They survive restarts (in the store) and reach other
//! nodes (the follower reloads them and makes its engine forget the subjects). The shared state holds them;
//! this module imports nothing of the service, so that imports no use case that imports it back.
//!
//! Checking costs nothing while no subject was ever erased; after that, only subjects the engine does not
//! hold pay one HMAC (an erased subject is never in the engine).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use consentry_store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// A tombstone: HMAC-SHA256 of a subject id (stored as lowercase hex).
pub type Tombstone = [u8; 32];

/// The tombstones and the secret that keys them. Empty until [`Erasures::load`].
#[derive(Default)]
pub struct Erasures {
    /// The HMAC keyed once with the secret: each tombstone then costs two SHA-256 blocks, not four.
    mac: OnceLock<HmacSha256>,
    tombstones: RwLock<HashSet<Tombstone>>,
    /// Whether any subject was ever erased: until then checks skip every look-up.
    any: AtomicBool,
}

impl std::fmt::Debug for Erasures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasures").finish_non_exhaustive()
    }
}

fn parse(text: &str) -> Option<Tombstone> {
    hex::decode(text).ok()?.try_into().ok()
}

impl Erasures {
    /// Loads the secret (made on first use) and every tombstone; returns the tombstones not known before.
    pub async fn load(&self, store: &dyn Store) -> Result<Vec<Tombstone>, StoreError> {
        if self.mac.get().is_none() {
            let secret = store.erasure_secret().await?;
            let mac = HmacSha256::new_from_slice(&secret)
                .map_err(|_| StoreError::Backend("the erasure secret cannot key an HMAC".into()))?;
            let _ = self.mac.set(mac);
        }
        let all = store.erasure_tombstones().await?;
        let mut known = self.tombstones.write().unwrap_or_else(PoisonError::into_inner);
        let new: Vec<Tombstone> = all.iter().filter_map(|t| parse(t)).filter(|t| known.insert(*t)).collect();
        self.any.store(!known.is_empty(), Ordering::Release);
        Ok(new)
    }

    fn mac(&self, subject: &str) -> Option<Tombstone> {
        let mut mac = self.mac.get()?.clone();
        mac.update(subject.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// The tombstone of `subject` as stored (hex); `None` before [`Erasures::load`].
    pub fn tombstone(&self, subject: &str) -> Option<String> {
        self.mac(subject).map(hex::encode)
    }

    /// Remembers an erasure made here.
    pub fn insert(&self, tombstone: &str) {
        if let Some(t) = parse(tombstone) {
            self.tombstones.write().unwrap_or_else(PoisonError::into_inner).insert(t);
            self.any.store(true, Ordering::Release);
        }
    }

    /// Whether any subject was ever erased (cheap).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Whether `subject` was erased.
    pub fn is_erased(&self, subject: &str) -> bool {
        if !self.any() {
            return false;
        }
        let Some(t) = self.mac(subject) else { return false };
        self.tombstones.read().unwrap_or_else(PoisonError::into_inner).contains(&t)
    }

    /// Whether any of `tombstones` is `subject`'s.
    pub fn matches_any(&self, subject: &str, tombstones: &HashSet<Tombstone>) -> bool {
        self.mac(subject).is_some_and(|t| tombstones.contains(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_keyed_hashes_of_the_id() {
        let secret = [7u8; 32];
        let erasures = Erasures::default();
        let _ = erasures.mac.set(HmacSha256::new_from_slice(&secret).expect("key"));
        let t = erasures.tombstone("ann").expect("keyed");
        assert_eq!(t, consentry_core::ledger::pseudonym(&secret, "ann"), "the stored form is the hex HMAC");
        assert!(!t.contains("ann"));
        assert!(!erasures.any() && !erasures.is_erased("ann"));
        erasures.insert(&t);
        assert!(erasures.any() && erasures.is_erased("ann"));
        assert!(!erasures.is_erased("bob"));
    }
}
