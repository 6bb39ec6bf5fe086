//! API keys: their scopes, the caller a key makes, making keys (stored only as a SHA-256 of the secret)
//! and the short cache of keys seen recently. A part of the shared state ([`KeyCache`]), so it uses no
//! other part of the service layer.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_store::{ApiKey, Store, random_bytes};
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
}

impl Scope {
    pub const ALL: [Scope; 12] = [
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
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub key_name: String,
    scopes: u16,
}

impl Caller {
    pub(crate) fn from_key(key: &ApiKey) -> Self {
        let scopes = key.scopes.iter().filter_map(|s| Scope::parse(s)).fold(0, |acc, s| acc | s.bit());
        Self { key_id: key.id.clone(), key_name: key.name.clone(), scopes }
    }

    pub(crate) fn has(&self, scope: Scope) -> bool {
        self.scopes & (scope.bit() | Scope::Admin.bit()) != 0
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

pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a key record; with `secret` given (bootstrap), that exact value is the key.
pub(crate) fn make_key(name: &str, scopes: &[Scope], secret: Option<&str>) -> Result<NewKey> {
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
            secret_hash: hash_secret(&secret),
            created_at: consentry_core::Timestamp::now(),
            revoked_at: None,
        },
        secret,
    })
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Cached {
    caller: Arc<Caller>,
    fetched: Instant,
}

/// Recently seen keys by secret hash.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<[u8; 32], Cached>>,
}

impl KeyCache {
    pub(crate) async fn authenticate(&self, store: &dyn Store, secret: &str) -> Result<Arc<Caller>> {
        let hash = hash_secret(secret);
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = entries.get(&hash).filter(|c| c.fetched.elapsed() < CACHE_TTL) {
                return Ok(Arc::clone(&c.caller));
            }
        }
        let found = store.api_key_by_hash(&hash).await?;
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
