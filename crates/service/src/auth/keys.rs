//! API keys: their scopes, the caller a key makes, making keys (stored only as HMAC-SHA256 of the secret
//! under the key store's pepper, [`KeyPepper`]) and the short cache of keys seen recently. A part of the
//! shared state ([`KeyCache`]), so it uses no other part of the service layer.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_store::{ApiKey, Store, random_bytes};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// What a key may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "catalog:write")]
    CatalogWrite,
    #[serde(rename = "consent:write")]
    ConsentWrite,
    #[serde(rename = "consent:read")]
    ConsentRead,
    #[serde(rename = "check")]
    Check,
    #[serde(rename = "records:write")]
    RecordsWrite,
    #[serde(rename = "records:read")]
    RecordsRead,
    #[serde(rename = "dsr")]
    Dsr,
    #[serde(rename = "destinations")]
    Destinations,
    /// Minting subject tokens (`POST /v1/subjects/{subject}/tokens`): a token acts as the person.
    #[serde(rename = "tokens:mint")]
    TokensMint,
    /// Pairing and unpairing devices; pairing also needs the scopes the device's token exercises.
    #[serde(rename = "devices:write")]
    DevicesWrite,
    /// Reading `/metrics` when it is not public (see the `metrics_public` setting).
    #[serde(rename = "metrics")]
    Metrics,
    /// Signing in to the operator console (`/console`) and seeing every page of it, acting on nothing.
    #[serde(rename = "console:read")]
    ConsoleRead,
    /// Signing in to the operator console and acting there (extending requests, replaying deliveries,
    /// applying a catalogue, managing keys); implies `console:read`.
    #[serde(rename = "console:write")]
    ConsoleWrite,
    /// Seeing identifiers' values (e-mail addresses, phone numbers) unmasked, and finding a subject by one.
    #[serde(rename = "identifiers:read")]
    IdentifiersRead,
    /// Attaching identifiers to subjects and removing them.
    #[serde(rename = "identifiers:write")]
    IdentifiersWrite,
    /// Importing consent changes from another platform (`POST /v1/import`).
    #[serde(rename = "import:write")]
    ImportWrite,
    /// Exporting every subject's consents (`GET /v1/export/consents`).
    #[serde(rename = "export:read")]
    ExportRead,
}

impl Scope {
    pub const ALL: [Scope; 18] = [
        Scope::Admin,
        Scope::CatalogWrite,
        Scope::ConsentWrite,
        Scope::ConsentRead,
        Scope::Check,
        Scope::RecordsWrite,
        Scope::RecordsRead,
        Scope::Dsr,
        Scope::Destinations,
        Scope::TokensMint,
        Scope::DevicesWrite,
        Scope::Metrics,
        Scope::ConsoleRead,
        Scope::ConsoleWrite,
        Scope::IdentifiersRead,
        Scope::IdentifiersWrite,
        Scope::ImportWrite,
        Scope::ExportRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::CatalogWrite => "catalog:write",
            Scope::ConsentWrite => "consent:write",
            Scope::ConsentRead => "consent:read",
            Scope::Check => "check",
            Scope::RecordsWrite => "records:write",
            Scope::RecordsRead => "records:read",
            Scope::Dsr => "dsr",
            Scope::Destinations => "destinations",
            Scope::TokensMint => "tokens:mint",
            Scope::DevicesWrite => "devices:write",
            Scope::Metrics => "metrics",
            Scope::ConsoleRead => "console:read",
            Scope::ConsoleWrite => "console:write",
            Scope::IdentifiersRead => "identifiers:read",
            Scope::IdentifiersWrite => "identifiers:write",
            Scope::ImportWrite => "import:write",
            Scope::ExportRead => "export:read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub key_name: String,
    scopes: u32,
}

impl Caller {
    pub(crate) fn from_key(key: &ApiKey) -> Self {
        let scopes = key.scopes.iter().filter_map(|s| Scope::parse(s)).fold(0, |acc, s| acc | s.bit());
        Self { key_id: key.id.clone(), key_name: key.name.clone(), scopes }
    }

    pub(crate) fn has(&self, scope: Scope) -> bool {
        let implied = if scope == Scope::ConsoleRead { Scope::ConsoleWrite.bit() } else { 0 };
        self.scopes & (scope.bit() | implied | Scope::Admin.bit()) != 0
    }

    /// Fails with 403 unless the caller holds `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.has(scope) { Ok(()) } else { Err(Error::Forbidden(scope.as_str())) }
    }

    /// The actor recorded on ledger events this caller makes.
    pub fn actor(&self) -> String {
        format!("key:{}", self.key_id)
    }
}

pub(crate) const PREFIX: &str = "csk_";
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A freshly made key: the record to store and the secret to show once.
pub(crate) struct NewKey {
    pub record: ApiKey,
    pub secret: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("record", &self.record).finish_non_exhaustive()
    }
}

/// The server secret that keys the stored hashes of API keys and device tokens: 32 random bytes made once
/// per store in its key store ([`Store::key_pepper`]), never in the data store. Stored hashes are
/// `HMAC-SHA256(pepper, secret)`, so a copy of the data store alone does not allow guessing secrets (the
/// bootstrap admin key is chosen by an operator) offline. `Debug` hides it; it is never logged.
#[derive(Clone)]
pub struct KeyPepper([u8; 32]);

impl KeyPepper {
    pub fn new(pepper: [u8; 32]) -> Self {
        Self(pepper)
    }

    /// The store's pepper, made on the first call for that store.
    pub async fn load(store: &dyn Store) -> Result<Self> {
        Ok(Self(store.key_pepper().await?))
    }

    /// The hash stored for `secret`: HMAC-SHA256 under the pepper.
    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A key of its own for `purpose`, derived from the pepper (HMAC-SHA256 of a label no key secret can
    /// be: it starts with a NUL byte), so it lives where the pepper does, in the key store.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(b"\0consentry-derived-key-v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for KeyPepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPepper(..)")
    }
}

/// The plain SHA-256 that stores made before the pepper hold: looked up only when the keyed hash is not
/// found, and then replaced by the keyed hash (see [`KeyCache::authenticate`]).
pub(crate) fn legacy_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a key record hashed under `pepper`; with `secret` given (bootstrap), that exact value is the key.
pub(crate) fn make_key(
    pepper: &KeyPepper,
    name: &str,
    scopes: &[Scope],
    secret: Option<&str>,
) -> Result<NewKey> {
    let secret = match secret {
        Some(s) => s.to_owned(),
        None => format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)),
    };
    let id = format!("key_{}", hex_lower(&random_bytes::<8>()?));
    Ok(NewKey {
        record: ApiKey {
            id,
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            secret_hash: pepper.hash(&secret),
            created_at: consentry_core::Timestamp::now(),
            revoked_at: None,
        },
        secret,
    })
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The active key stored under the legacy SHA-256 of `secret`, moved to the keyed hash `keyed`.
async fn upgrade_legacy_key(store: &dyn Store, secret: &str, keyed: &[u8; 32]) -> Result<Option<ApiKey>> {
    let legacy = legacy_hash(secret);
    let Some(mut key) = store.api_key_by_hash(&legacy).await? else { return Ok(None) };
    if store.rehash_api_key(&key.id, &legacy, keyed).await? {
        tracing::info!(key_id = %key.id, "API key hash moved to the keyed hash");
    }
    key.secret_hash = *keyed;
    Ok(Some(key))
}

struct Cached {
    caller: Arc<Caller>,
    fetched: Instant,
}

/// Recently seen keys by keyed secret hash, and the pepper that keys them (loaded once at start).
pub struct KeyCache {
    pepper: KeyPepper,
    entries: RwLock<HashMap<[u8; 32], Cached>>,
}

impl KeyCache {
    pub fn new(pepper: KeyPepper) -> Self {
        Self { pepper, entries: RwLock::default() }
    }

    /// The store's pepper, for hashing new keys and device tokens.
    pub fn pepper(&self) -> &KeyPepper {
        &self.pepper
    }

    /// Finds the active key with this secret: by its keyed hash, else (a key stored before the pepper) by
    /// its plain SHA-256, whose stored hash is then replaced by the keyed one, so every key moves on its
    /// first use and each look-up stays one indexed query. Hashes are compared only by those look-ups and
    /// the cache's map, on HMAC outputs an attacker cannot steer byte by byte.
    pub(crate) async fn authenticate(&self, store: &dyn Store, secret: &str) -> Result<Arc<Caller>> {
        let hash = self.pepper.hash(secret);
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = entries.get(&hash).filter(|c| c.fetched.elapsed() < CACHE_TTL) {
                return Ok(Arc::clone(&c.caller));
            }
        }
        let found = match store.api_key_by_hash(&hash).await? {
            Some(key) => Some(key),
            None => upgrade_legacy_key(store, secret, &hash).await?,
        };
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match found {
            Some(key) => {
                let caller = Arc::new(Caller::from_key(&key));
                entries.insert(hash, Cached { caller: Arc::clone(&caller), fetched: Instant::now() });
                Ok(caller)
            }
            None => {
                entries.remove(&hash);
                Err(Error::Unauthorized)
            }
        }
    }

    /// Forgets a revoked key at once.
    pub(crate) fn evict(&self, key_id: &str) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).retain(|_, c| c.caller.key_id != key_id);
    }
}
