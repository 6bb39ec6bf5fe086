//! Credentials: API keys with scopes, and device tokens, presented as `Authorization: Bearer <key>`.
//!
//! Keys are 32 random bytes, shown once, stored only as their SHA-256. Looking a key up by the hash of what
//! was presented is safe against timing attacks: the comparison happens on a hash the attacker cannot
//! steer byte by byte. Found keys are cached for a few seconds; revocation through the API evicts at once.
//!
//! Device tokens (`cdt_...`, see [`DeviceCaller`]) are made and stored the same way but never cached: each
//! request looks its token up in the store, so an unpaired device is refused on every node as soon as the
//! DELETE has committed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_core::SubjectId;
use consentry_core::snapshot::device_allows;
use consentry_store::{ApiKey, DeviceRecord, Store, random_bytes};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::Admin,
        Scope::CatalogWrite,
        Scope::ConsentWrite,
        Scope::ConsentRead,
        Scope::Check,
        Scope::RecordsWrite,
        Scope::RecordsRead,
        Scope::Dsr,
        Scope::Destinations,
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
    fn from_key(key: &ApiKey) -> Self {
        let scopes = key.scopes.iter().filter_map(|s| Scope::parse(s)).fold(0, |acc, s| acc | s.bit());
        Self { key_id: key.id.clone(), key_name: key.name.clone(), scopes }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & (scope.bit() | Scope::Admin.bit()) != 0
    }

    /// Fails with 403 unless the caller holds `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.has(scope) { Ok(()) } else { Err(ApiError::Forbidden(scope.as_str())) }
    }

    /// The actor recorded on ledger events this caller makes.
    pub fn actor(&self) -> String {
        format!("key:{}", self.key_id)
    }
}

const PREFIX: &str = "csk_";
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A freshly made key: the record to store and the secret to show once.
pub struct NewKey {
    pub record: ApiKey,
    pub secret: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("record", &self.record).finish_non_exhaustive()
    }
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a key record; with `secret` given (bootstrap), that exact value is the key.
pub fn make_key(name: &str, scopes: &[Scope], secret: Option<&str>) -> ApiResult<NewKey> {
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

fn hex_lower(bytes: &[u8]) -> String {
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
    pub async fn authenticate(&self, store: &dyn Store, secret: &str) -> ApiResult<Arc<Caller>> {
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
                Err(ApiError::Unauthorized)
            }
        }
    }

    /// Forgets a revoked key at once.
    pub fn evict(&self, key_id: &str) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).retain(|_, c| c.caller.key_id != key_id);
    }
}

impl FromRequestParts<AppState> for Arc<Caller> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or(ApiError::Unauthorized)?;
        state.keys.authenticate(state.store.as_ref(), secret).await
    }
}

/// The prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "cdt_";

/// A new device token and the SHA-256 to store; the token is shown once.
pub fn make_device_token() -> ApiResult<(String, [u8; 32])> {
    let token = format!("{DEVICE_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let hash = hash_secret(&token);
    Ok((token, hash))
}

/// A paired device calling with its token. It acts only for its subject and only for the data categories
/// and purposes it declared (and those under them).
#[derive(Debug, Clone)]
pub struct DeviceCaller {
    pub device_id: String,
    pub subject: SubjectId,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
}

impl DeviceCaller {
    pub fn from_record(device: DeviceRecord) -> Self {
        Self {
            device_id: device.id,
            subject: device.subject,
            categories: device.categories,
            purposes: device.purposes,
        }
    }

    /// Whether the device declared `category` and `purpose` (or one above each).
    pub fn allows(&self, category: &str, purpose: &str) -> bool {
        device_allows(&self.categories, &self.purposes, category, purpose)
    }

    /// 403 unless the device declared `category` and `purpose`.
    pub fn require(&self, category: &str, purpose: &str) -> ApiResult<()> {
        if self.allows(category, purpose) {
            Ok(())
        } else {
            Err(ApiError::DeviceForbidden(format!(
                "this device did not declare data category {category:?} for purpose {purpose:?}"
            )))
        }
    }

    /// 403 unless `subject` is the device's own.
    pub fn require_subject(&self, subject: &SubjectId) -> ApiResult<()> {
        if &self.subject == subject {
            Ok(())
        } else {
            Err(ApiError::DeviceForbidden("a device acts only for the subject it is paired with".into()))
        }
    }

    /// The actor recorded for what this device does.
    pub fn actor(&self) -> String {
        format!("device:{}", self.device_id)
    }
}

/// The bearer credential of a request.
fn bearer(parts: &Parts) -> ApiResult<&str> {
    let header = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
    let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or(ApiError::Unauthorized)
}

/// Authenticates a device token: 401 for anything else, an unknown token or an unpaired device.
pub async fn authenticate_device(store: &dyn Store, token: &str) -> ApiResult<DeviceCaller> {
    if !token.starts_with(DEVICE_TOKEN_PREFIX) {
        return Err(ApiError::Unauthorized);
    }
    match store.device_by_token_hash(&hash_secret(token)).await? {
        Some(device) => Ok(DeviceCaller::from_record(device)),
        None => Err(ApiError::Unauthorized),
    }
}

impl FromRequestParts<AppState> for DeviceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate_device(state.store.as_ref(), bearer(parts)?).await
    }
}

/// The caller of a route that both services and devices may call (`POST /v1/check`): a device token
/// (`cdt_...`) makes a [`DeviceCaller`], anything else is looked up as an API key.
#[derive(Debug, Clone)]
pub enum ServiceOrDevice {
    Service(Arc<Caller>),
    Device(DeviceCaller),
}

impl FromRequestParts<AppState> for ServiceOrDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if token.starts_with(DEVICE_TOKEN_PREFIX) {
            Ok(Self::Device(authenticate_device(state.store.as_ref(), token).await?))
        } else {
            Ok(Self::Service(state.keys.authenticate(state.store.as_ref(), token).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_admin() {
        let key = |scopes: &[&str]| ApiKey {
            id: "key_1".into(),
            name: "n".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            secret_hash: [0; 32],
            created_at: consentry_core::Timestamp::now(),
            revoked_at: None,
        };
        let checker = Caller::from_key(&key(&["check"]));
        assert!(checker.has(Scope::Check));
        assert!(!checker.has(Scope::ConsentWrite));
        let admin = Caller::from_key(&key(&["admin"]));
        assert!(Scope::ALL.iter().all(|s| admin.has(*s)));
    }

    #[test]
    fn device_callers_keep_to_their_declaration() {
        let device = DeviceCaller {
            device_id: "dev_1".into(),
            subject: SubjectId::new("user-1").expect("id"),
            categories: vec!["user.biometric".into()],
            purposes: vec!["service.provision".into()],
        };
        assert!(device.allows("user.biometric.voice", "service.provision"));
        assert!(!device.allows("user.contact.email", "service.provision"));
        assert!(!device.allows("user.biometric.voice", "service"));
        assert!(!device.allows("user.biometric", "marketing"));
        assert!(device.require_subject(&SubjectId::new("user-2").expect("id")).is_err());
        let (token, hash) = make_device_token().expect("token");
        assert!(token.starts_with(DEVICE_TOKEN_PREFIX) && token.len() > 40);
        assert_eq!(hash, hash_secret(&token));
    }

    #[test]
    fn made_keys_are_random_and_stored_hashed() {
        let a = make_key("a", &[Scope::Check], None).expect("key");
        let b = make_key("b", &[Scope::Check], None).expect("key");
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(PREFIX) && a.secret.len() > 40);
        assert_eq!(a.record.secret_hash, hash_secret(&a.secret));
        let fixed =
            make_key("c", &[Scope::Admin], Some("given-secret-given-secret-given-secret")).expect("key");
        assert_eq!(fixed.secret, "given-secret-given-secret-given-secret");
    }
}
