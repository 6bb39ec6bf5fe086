//! The server's Ed25519 signing keys: made on first start, kept in the key store, rotated with
//! `consentry keys rotate-signing`, published at `/.well-known/jwks.json`. Secrets never leave the server.

use std::sync::Arc;

use consentry_core::Timestamp;
use consentry_core::proof::{Jwk, Jwks, SigningKey};
use consentry_store::{Result, SigningKeyRecord, Store, random_bytes};
use sha2::{Digest, Sha256};

/// The key that signs now, and every key a verifier may need.
#[derive(Debug, Clone)]
pub struct Signing {
    current: Arc<SigningKey>,
    /// Every loaded key, by `kid`: a receipt built again is signed with the key that signed it.
    all: Arc<Vec<Arc<SigningKey>>>,
    jwks: Arc<Jwks>,
    /// Keys the preference centre's form tokens are made with; see [`Signing::form_key`].
    form_key: Arc<[u8; 32]>,
}

impl Signing {
    /// Loads the stored keys, making the first one when there is none.
    pub async fn load_or_create(store: &dyn Store) -> Result<Self> {
        let mut keys = store.signing_keys().await?;
        if keys.is_empty() {
            store.add_signing_key(new_key_record()?).await?;
            keys = store.signing_keys().await?;
        }
        Ok(Self::from_records(&keys))
    }

    fn from_records(keys: &[SigningKeyRecord]) -> Self {
        let jwks = Jwks { keys: keys.iter().map(|k| Jwk::ed25519(k.kid.clone(), &k.public)).collect() };
        // Exactly one key is current once any exists; should a store ever report none, use the newest.
        let current = keys.iter().find(|k| k.current).or_else(|| keys.last());
        let current = current.map_or_else(
            || SigningKey::from_secret_with_thumbprint_kid([0; 32]),
            |k| SigningKey::from_secret(k.kid.clone(), k.secret),
        );
        // Derived from the oldest key, which rotation never changes, so every node of a cluster derives the
        // same one whichever key is current on it.
        let root = keys.first().map_or([0; 32], |k| k.secret);
        let mut derive = Sha256::new();
        derive.update(b"consentry preference-centre form key v1\0");
        derive.update(root);
        let form_key = Arc::new(derive.finalize().into());
        let all = keys.iter().map(|k| Arc::new(SigningKey::from_secret(k.kid.clone(), k.secret))).collect();
        Self { current: Arc::new(current), all: Arc::new(all), jwks: Arc::new(jwks), form_key }
    }

    /// A secret for keyed hashes that must verify on every node (the preference centre's CSRF tokens). It is
    /// derived from the signing secrets, never shown, and never a signing key itself.
    pub fn form_key(&self) -> &[u8; 32] {
        &self.form_key
    }

    pub fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// Every loaded key, oldest first.
    pub fn all(&self) -> &[Arc<SigningKey>] {
        &self.all
    }

    /// The loaded key `kid`, if this node has it.
    pub fn key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.all.iter().find(|k| k.kid() == kid).cloned()
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }
}

/// A fresh key, its `kid` the RFC 7638 thumbprint of its public key.
pub fn new_key_record() -> Result<SigningKeyRecord> {
    let secret = random_bytes::<32>()?;
    let key = SigningKey::from_secret_with_thumbprint_kid(secret);
    Ok(SigningKeyRecord {
        kid: key.kid().to_owned(),
        secret,
        public: key.public_key(),
        created_at: Timestamp::now(),
        current: true,
    })
}

/// Makes a new current key; old keys stay for verification. Returns the new key's id.
pub async fn rotate(store: &dyn Store) -> Result<String> {
    let record = new_key_record()?;
    let kid = record.kid.clone();
    store.add_signing_key(record).await?;
    Ok(kid)
}
