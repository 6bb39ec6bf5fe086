//! Credentials, presented as `Authorization: Bearer <credential>`:
//!
//! - **API keys** with scopes, for services and operators. Keys are 32 random bytes, shown once, stored only
//!   as HMAC-SHA256 under the key store's pepper ([`KeyPepper`]), so a stolen data store allows no offline
//!   guessing. Looking a key up by the hash of what was presented is safe against timing attacks: the
//!   comparison happens on a hash the attacker cannot steer byte by byte. A key stored as a plain SHA-256
//!   (before the pepper) is found by that once and moved to the keyed hash. Found keys are cached for a
//!   few seconds; revocation through the API evicts at once.
//! - **Subject tokens**, for one person: a short-lived compact JWS (EdDSA) signed with the server's signing
//!   key, minted by a service through `POST /v1/subjects/{subject}/tokens` ([`subject`]). They verify
//!   against the keys of `/.well-known/jwks.json`, so any node accepts them; what is stored is only when
//!   the subject's tokens were last revoked (read on every use) and which links were spent. An API token
//!   reaches only its own subject's routes ([`Principal`]); every service-only route answers it with 403.
//!   A link's token is no API credential at all (401): it only opens the preference centre, once.
//! - **Device tokens** (`cdt_...`, [`DeviceCaller`]) for one paired device, made and stored like API keys
//!   but never cached: each request looks its token up in the store, so an unpaired device is refused on
//!   every node as soon as the DELETE has committed. A device acts only for its subject and its declared
//!   categories and purposes.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_core::snapshot::device_allows;
use consentry_core::{SubjectId, Timestamp};
use consentry_store::{DeviceRecord, HouseholdDevice, Store, random_bytes};

pub mod keys;
pub mod proxies;
pub mod subject;
pub mod throttle;

pub use keys::{Caller, KeyCache, KeyPepper, Scope};
pub(crate) use keys::{legacy_hash, make_key};
pub(crate) use subject::{
    SUBJECT_TOKEN_TTL_DEFAULT, SUBJECT_TOKEN_TTL_MAX, SUBJECT_TOKEN_TTL_MIN, mint_subject_token,
    revocation_cutoff,
};
pub use subject::{SubjectCaller, TokenRejection, TokenUse, verify_subject_token};

use crate::error::{Error, Result};
use crate::state::Services;

/// Longest credential read: subject tokens carry the subject id, so they are longer than API keys.
pub const MAX_CREDENTIAL_LEN: usize = 2048;

/// Whether a credential has the shape of a compact JWS (API keys contain no dot).
fn looks_like_jws(credential: &str) -> bool {
    credential.bytes().filter(|b| *b == b'.').count() == 2
}

/// Whoever calls: a service with an API key, a person with a subject token, or a paired device with its
/// device token.
#[derive(Debug, Clone)]
pub enum Principal {
    Service(Arc<Caller>),
    Subject(SubjectCaller),
    Device(DeviceCaller),
    /// A device paired with a household: it reads its snapshot and nothing else.
    Household(HouseholdDeviceCaller),
}

impl Principal {
    /// For the `/v1/subjects/{subject}/...` routes: a service needs `scope` (or `admin`); a subject token
    /// must be for `subject` itself.
    pub fn require_subject(&self, subject: &SubjectId, scope: Scope) -> Result<()> {
        match self {
            Principal::Service(caller) => caller.require(scope),
            Principal::Subject(s) if &s.subject == subject => Ok(()),
            Principal::Subject(_) => Err(Error::WrongPrincipal("this token is for another subject")),
            Principal::Device(_) | Principal::Household(_) => {
                Err(Error::WrongPrincipal("device tokens may not use this route"))
            }
        }
    }

    /// The actor recorded on ledger events this caller makes: `key:<id>` or `subject`.
    pub fn actor(&self) -> String {
        match self {
            Principal::Service(caller) => caller.actor(),
            Principal::Subject(_) => ACTOR_SUBJECT.to_owned(),
            Principal::Device(device) => device.actor(),
            Principal::Household(device) => format!("device:{}", device.device_id),
        }
    }

    pub fn service(&self) -> Option<&Caller> {
        match self {
            Principal::Service(caller) => Some(caller),
            Principal::Subject(_) | Principal::Device(_) | Principal::Household(_) => None,
        }
    }
}

/// The actor of changes a person makes themselves.
pub const ACTOR_SUBJECT: &str = "subject";

/// Authenticates a presented credential: a device token, a subject token or an API key.
pub async fn authenticate(services: &Services, credential: &str) -> Result<Principal> {
    if credential.is_empty() || credential.len() > MAX_CREDENTIAL_LEN {
        return Err(Error::Unauthorized);
    }
    if credential.starts_with(DEVICE_TOKEN_PREFIX) {
        return authenticate_device(services.store.as_ref(), services.keys.pepper(), credential).await;
    }
    if looks_like_jws(credential) {
        return match verify_subject_token(services, credential, Timestamp::now()).await {
            // A link only opens the preference centre, once; it is never an API credential, so a link
            // leaked from a mailbox or a browser's history reaches nothing here.
            Ok(caller) if caller.usage == TokenUse::Link => Err(Error::Unauthorized),
            Ok(caller) => Ok(Principal::Subject(caller)),
            // Revoked, expired or forged alike: the same 401, so nothing tells which.
            Err(TokenRejection::Invalid | TokenRejection::Expired | TokenRejection::Revoked) => {
                Err(Error::Unauthorized)
            }
            Err(TokenRejection::Failed) => Err(Error::Internal),
        };
    }
    if credential.len() > 512 {
        return Err(Error::Unauthorized);
    }
    services.keys.authenticate(services.store.as_ref(), credential).await.map(Principal::Service)
}

/// The prefix of device tokens.
const DEVICE_TOKEN_PREFIX: &str = "cdt_";

/// A new device token and its hash to store (HMAC-SHA256 under `pepper`); the token is shown once.
pub fn make_device_token(pepper: &KeyPepper) -> Result<(String, [u8; 32])> {
    let token = format!("{DEVICE_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let hash = pepper.hash(&token);
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
    pub(crate) fn from_record(device: DeviceRecord) -> Self {
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
    pub fn require(&self, category: &str, purpose: &str) -> Result<()> {
        if self.allows(category, purpose) {
            Ok(())
        } else {
            Err(Error::DeviceForbidden(format!(
                "this device did not declare data category {category:?} for purpose {purpose:?}"
            )))
        }
    }

    /// 403 unless `subject` is the device's own.
    pub fn require_subject(&self, subject: &str) -> Result<()> {
        if self.subject.as_str() == subject {
            Ok(())
        } else {
            Err(Error::DeviceForbidden("a device acts only for the subject it is paired with".into()))
        }
    }

    /// The actor recorded for what this device does.
    pub fn actor(&self) -> String {
        format!("device:{}", self.device_id)
    }
}

/// How stale a device's "last seen" may get before a use of its token writes it again: a write at most
/// once a minute per device, not one per request.
const SEEN_EVERY_SECS: i64 = 60;

/// A device paired with a household: it acts for no one person and reads only its own snapshot, which
/// carries every member's statements.
#[derive(Debug, Clone)]
pub struct HouseholdDeviceCaller {
    pub device_id: String,
    pub household: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
}

impl HouseholdDeviceCaller {
    pub(crate) fn from_record(device: HouseholdDevice) -> Self {
        Self {
            device_id: device.id,
            household: device.household,
            categories: device.categories,
            purposes: device.purposes,
        }
    }
}

/// Marks `device` seen now when its last sighting is older than [`SEEN_EVERY_SECS`]. A failure to write it
/// is logged and does not refuse the device.
async fn seen(store: &dyn Store, device: &DeviceRecord) {
    let now = Timestamp::now();
    let stale = device.last_seen.is_none_or(|at| at.micros() < now.plus_seconds(-SEEN_EVERY_SECS).micros());
    if stale && let Err(e) = store.device_seen(&device.id, now).await {
        tracing::warn!(device_id = %device.id, error = %e, "a device's last sighting was not stored");
    }
}

/// Authenticates a device token, a subject's device's or a household's: 401 for anything else, an unknown
/// token or an unpaired device. A device paired before the pepper (its token stored as a plain SHA-256) is
/// found by that once and moved to the keyed hash, like API keys (household devices came after it).
async fn authenticate_device(store: &dyn Store, pepper: &KeyPepper, token: &str) -> Result<Principal> {
    if !token.starts_with(DEVICE_TOKEN_PREFIX) {
        return Err(Error::Unauthorized);
    }
    let keyed = pepper.hash(token);
    if let Some(device) = store.device_by_token_hash(&keyed).await? {
        seen(store, &device).await;
        return Ok(Principal::Device(DeviceCaller::from_record(device)));
    }
    if let Some(device) = store.household_device_by_token_hash(&keyed).await? {
        return Ok(Principal::Household(HouseholdDeviceCaller::from_record(device)));
    }
    let legacy = legacy_hash(token);
    match store.device_by_token_hash(&legacy).await? {
        Some(device) => {
            if store.rehash_device_token(&device.id, &legacy, &keyed).await? {
                tracing::info!(device_id = %device.id, "device token hash moved to the keyed hash");
            }
            seen(store, &device).await;
            Ok(Principal::Device(DeviceCaller::from_record(device)))
        }
        None => Err(Error::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use consentry_store::ApiKey;

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
        assert!(device.require_subject("user-2").is_err());
        let pepper = KeyPepper::new([5; 32]);
        let (token, hash) = make_device_token(&pepper).expect("token");
        assert!(token.starts_with(DEVICE_TOKEN_PREFIX) && token.len() > 40);
        assert_eq!(hash, pepper.hash(&token));
        assert_ne!(hash, legacy_hash(&token), "not a plain SHA-256");
    }

    #[test]
    fn made_keys_are_random_and_stored_hashed() {
        let pepper = KeyPepper::new([5; 32]);
        let a = make_key(&pepper, "a", &[Scope::Check], None).expect("key");
        let b = make_key(&pepper, "b", &[Scope::Check], None).expect("key");
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(keys::PREFIX) && a.secret.len() > 40);
        assert_eq!(a.record.secret_hash, pepper.hash(&a.secret));
        assert_ne!(a.record.secret_hash, legacy_hash(&a.secret), "not a plain SHA-256");
        let given = "given-secret-given-secret-given-secret";
        let fixed = make_key(&pepper, "c", &[Scope::Admin], Some(given)).expect("key");
        assert_eq!(fixed.secret, given);
        // Another store's pepper stores another hash for the same secret.
        let other = make_key(&KeyPepper::new([6; 32]), "c", &[Scope::Admin], Some(given)).expect("key");
        assert_ne!(fixed.record.secret_hash, other.record.secret_hash);
        assert_eq!(format!("{pepper:?}"), "KeyPepper(..)", "never shown");
    }
}
