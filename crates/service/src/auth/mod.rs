//! Credentials, presented as `Authorization: Bearer <credential>`:
//!
//! - **API keys** with scopes, for services and operators. Keys are 32 random bytes, shown once, stored only
//!   as HMAC-SHA256 under the key store's pepper ([`KeyPepper`]), so a stolen data store allows no offline
//!   guessing. Looking a key up by the hash of what was presented is safe against timing attacks: the
//!   comparison happens on a hash the attacker cannot steer byte by byte. A key stored as a plain SHA-256
//!   (before the pepper) is found by that once and moved to the keyed hash. Found keys are cached for a
//!   few seconds; revocation through the API evicts at once.
//! - **Subject tokens**, for one person: a short-lived compact JWS (EdDSA) signed with the server's signing
//!   key, minted by a service through `POST /v1/subjects/{subject}/tokens`. Nothing about them is stored;
//!   they verify against the keys of `/.well-known/jwks.json`, so any node accepts them. A subject token
//!   reaches only its own subject's `/v1/subjects/{subject}/...` routes ([`Principal`]); every
//!   service-only route answers it with 403.
//! - **Device tokens** (`cdt_...`, [`DeviceCaller`]) for one paired device, made and stored like API keys
//!   but never cached: each request looks its token up in the store, so an unpaired device is refused on
//!   every node as soon as the DELETE has committed. A device acts only for its subject and its declared
//!   categories and purposes.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_core::proof::{Jwks, JwsError, JwsKind, Signed, SigningKey, unix_seconds, verify_jws_kind};
use consentry_core::snapshot::device_allows;
use consentry_core::{SubjectId, Timestamp};
use consentry_store::{DeviceRecord, Store, random_bytes};
use serde::{Deserialize, Serialize};

pub mod keys;
pub mod throttle;

pub use keys::{Caller, KeyCache, KeyPepper, Scope};
pub(crate) use keys::{hex_lower, legacy_hash, make_key};

use crate::error::{Error, Result};
use crate::state::Services;

/// Longest credential read: subject tokens carry the subject id, so they are longer than API keys.
pub const MAX_CREDENTIAL_LEN: usize = 2048;

/// Whether a credential has the shape of a compact JWS (API keys contain no dot).
fn looks_like_jws(credential: &str) -> bool {
    credential.bytes().filter(|b| *b == b'.').count() == 2
}

/// `typ` claim of a subject token; nothing else signed by the server (receipts, checkpoints) carries it,
/// so no other signed document can pass for one. Kept alongside the JWS `typ` header (`subject+jwt`,
/// [`JwsKind::SubjectToken`]), which every verifier checks first.
const SUBJECT_TOKEN_TYP: &str = "consentry-subject-token/1";
/// Shortest and longest lifetime of a subject token, in seconds.
pub(crate) const SUBJECT_TOKEN_TTL_MIN: u64 = 60;
pub(crate) const SUBJECT_TOKEN_TTL_MAX: u64 = 30 * 24 * 3600;
/// Lifetime of a subject token when the request names none: one hour.
pub(crate) const SUBJECT_TOKEN_TTL_DEFAULT: u64 = 3600;

/// The claims of a subject token.
#[derive(Debug, Serialize, Deserialize)]
struct SubjectClaims {
    typ: String,
    /// The server that issued it (its `public_url`).
    iss: String,
    sub: String,
    iat: i64,
    exp: i64,
    /// A random id, so two tokens minted in one second differ.
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locale: Option<String>,
}

/// Signed with the `typ` header `subject+jwt`: no receipt, snapshot or checkpoint passes for a token.
impl Signed for SubjectClaims {
    const KIND: JwsKind = JwsKind::SubjectToken;
}

/// A person acting for themselves with a subject token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectCaller {
    pub subject: SubjectId,
    pub expires_at: Timestamp,
    /// The language the token was minted for, if any (e.g. `de`).
    pub locale: Option<String>,
}

/// A minted subject token.
#[derive(Debug)]
pub(crate) struct MintedToken {
    pub token: String,
    pub expires_at: Timestamp,
}

/// Signs a subject token for `subject`, valid for `ttl_secs` from `now`, with the server's current key.
pub(crate) fn mint_subject_token(
    state: &Services,
    subject: &SubjectId,
    ttl_secs: u64,
    locale: Option<String>,
    now: Timestamp,
) -> Result<MintedToken> {
    let jti = hex_lower(&random_bytes::<12>()?);
    Ok(sign_subject_token(
        &state.signing.current(),
        &state.config.public_url(),
        subject,
        ttl_secs,
        locale,
        jti,
        now,
    ))
}

fn sign_subject_token(
    key: &SigningKey,
    issuer: &str,
    subject: &SubjectId,
    ttl_secs: u64,
    locale: Option<String>,
    jti: String,
    now: Timestamp,
) -> MintedToken {
    let iat = unix_seconds(now);
    let exp = iat.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
    let claims = SubjectClaims {
        typ: SUBJECT_TOKEN_TYP.to_owned(),
        iss: issuer.to_owned(),
        sub: subject.as_str().to_owned(),
        iat,
        exp,
        jti,
        locale,
    };
    MintedToken {
        token: key.sign_jws(&claims),
        expires_at: Timestamp::from_micros(exp.saturating_mul(1_000_000)),
    }
}

/// Why a subject token was refused. The API answers every kind with 401; the preference centre words
/// its page after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a token signed by this server (bad shape, unknown key, wrong signature, not a subject token).
    Invalid,
    /// Genuine but past its `exp`.
    Expired,
}

/// Verifies a subject token against the server's keys at `now`.
pub fn verify_subject_token(
    state: &Services,
    token: &str,
    now: Timestamp,
) -> Result<SubjectCaller, TokenRejection> {
    let caller = verify_subject_token_with(state.signing.jwks(), token, now)?;
    // Erasure revokes the subject's tokens with everything else of theirs.
    if state.erasures.is_erased(caller.subject.as_str()) {
        return Err(TokenRejection::Invalid);
    }
    Ok(caller)
}

fn verify_subject_token_with(
    jwks: &Jwks,
    token: &str,
    now: Timestamp,
) -> Result<SubjectCaller, TokenRejection> {
    // The header's `typ` must be `subject+jwt`: a token of the form before kinds (`JWT`) is refused, as
    // subject tokens live at most 30 days and a credential must not be taken on its payload alone.
    let (_, payload) = verify_jws_kind(token, jwks, JwsKind::SubjectToken).map_err(|e: JwsError| {
        tracing::debug!(error = %e, "subject token refused");
        TokenRejection::Invalid
    })?;
    let claims: SubjectClaims = serde_json::from_slice(&payload).map_err(|_| TokenRejection::Invalid)?;
    // `iss` is informative only: nodes behind one address may each know themselves by another.
    if claims.typ != SUBJECT_TOKEN_TYP {
        return Err(TokenRejection::Invalid);
    }
    let subject = SubjectId::new(claims.sub).map_err(|_| TokenRejection::Invalid)?;
    if unix_seconds(now) >= claims.exp {
        return Err(TokenRejection::Expired);
    }
    Ok(SubjectCaller {
        subject,
        expires_at: Timestamp::from_micros(claims.exp.saturating_mul(1_000_000)),
        locale: claims.locale,
    })
}

/// Whoever calls: a service with an API key, a person with a subject token, or a paired device with its
/// device token.
#[derive(Debug, Clone)]
pub enum Principal {
    Service(Arc<Caller>),
    Subject(SubjectCaller),
    Device(DeviceCaller),
}

impl Principal {
    /// For the `/v1/subjects/{subject}/...` routes: a service needs `scope` (or `admin`); a subject token
    /// must be for `subject` itself.
    pub fn require_subject(&self, subject: &SubjectId, scope: Scope) -> Result<()> {
        match self {
            Principal::Service(caller) => caller.require(scope),
            Principal::Subject(s) if &s.subject == subject => Ok(()),
            Principal::Subject(_) => Err(Error::WrongPrincipal("this token is for another subject")),
            Principal::Device(_) => Err(Error::WrongPrincipal("device tokens may not use this route")),
        }
    }

    /// The actor recorded on ledger events this caller makes: `key:<id>` or `subject`.
    pub fn actor(&self) -> String {
        match self {
            Principal::Service(caller) => caller.actor(),
            Principal::Subject(_) => ACTOR_SUBJECT.to_owned(),
            Principal::Device(device) => device.actor(),
        }
    }

    pub fn service(&self) -> Option<&Caller> {
        match self {
            Principal::Service(caller) => Some(caller),
            Principal::Subject(_) | Principal::Device(_) => None,
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
        return authenticate_device(services.store.as_ref(), services.keys.pepper(), credential)
            .await
            .map(Principal::Device);
    }
    if looks_like_jws(credential) {
        return verify_subject_token(services, credential, Timestamp::now())
            .map(Principal::Subject)
            .map_err(|_| Error::Unauthorized);
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

/// Authenticates a device token: 401 for anything else, an unknown token or an unpaired device. A device
/// paired before the pepper (its token stored as a plain SHA-256) is found by that once and moved to the
/// keyed hash, like API keys.
async fn authenticate_device(store: &dyn Store, pepper: &KeyPepper, token: &str) -> Result<DeviceCaller> {
    if !token.starts_with(DEVICE_TOKEN_PREFIX) {
        return Err(Error::Unauthorized);
    }
    let keyed = pepper.hash(token);
    if let Some(device) = store.device_by_token_hash(&keyed).await? {
        return Ok(DeviceCaller::from_record(device));
    }
    let legacy = legacy_hash(token);
    match store.device_by_token_hash(&legacy).await? {
        Some(device) => {
            if store.rehash_device_token(&device.id, &legacy, &keyed).await? {
                tracing::info!(device_id = %device.id, "device token hash moved to the keyed hash");
            }
            Ok(DeviceCaller::from_record(device))
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

    fn jwks_of(key: &SigningKey) -> Jwks {
        Jwks { keys: vec![key.public_jwk()] }
    }

    fn token(key: &SigningKey, subject: &str, ttl: u64, now: Timestamp) -> String {
        let subject = SubjectId::new(subject).expect("id");
        sign_subject_token(key, "http://x", &subject, ttl, Some("de".into()), "j".into(), now).token
    }

    #[test]
    fn subject_tokens_verify_until_they_expire() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let t = token(&key, "kim", 60, now);
        let who = verify_subject_token_with(&jwks_of(&key), &t, now).expect("valid");
        assert_eq!(who.subject.as_str(), "kim");
        assert_eq!(who.locale.as_deref(), Some("de"));
        assert_eq!(who.expires_at, now.plus_seconds(60));
        let later = now.plus_seconds(59);
        assert!(verify_subject_token_with(&jwks_of(&key), &t, later).is_ok());
        let expired = now.plus_seconds(60);
        assert_eq!(verify_subject_token_with(&jwks_of(&key), &t, expired), Err(TokenRejection::Expired));
    }

    #[test]
    fn forged_and_foreign_tokens_are_invalid() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let other = SigningKey::from_secret_with_thumbprint_kid([8; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let jwks = jwks_of(&key);
        // Signed by a key the server does not have.
        let foreign = token(&other, "kim", 60, now);
        assert_eq!(verify_subject_token_with(&jwks, &foreign, now), Err(TokenRejection::Invalid));
        // The payload swapped for another subject's, the signature kept.
        let genuine = token(&key, "kim", 60, now);
        let theirs = token(&key, "alex", 60, now);
        let mut parts: Vec<&str> = genuine.split('.').collect();
        parts[1] = theirs.split('.').nth(1).expect("payload");
        assert_eq!(verify_subject_token_with(&jwks, &parts.join("."), now), Err(TokenRejection::Invalid));
        // Even under the subject-token header, claims without the subject-token `typ` claim are refused.
        let unclaimed =
            key.sign_jws_as(JwsKind::SubjectToken, &serde_json::json!({"sub": "kim", "exp": i64::MAX}));
        assert_eq!(verify_subject_token_with(&jwks, &unclaimed, now), Err(TokenRejection::Invalid));
        assert_eq!(verify_subject_token_with(&jwks, "a.b.c", now), Err(TokenRejection::Invalid));
    }

    #[test]
    fn only_a_jws_of_the_subject_token_kind_is_a_token() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let jwks = jwks_of(&key);
        let genuine = token(&key, "kim", 60, now);
        let header = URL_SAFE_NO_PAD.decode(genuine.split('.').next().expect("header")).expect("b64");
        let header: serde_json::Value = serde_json::from_slice(&header).expect("json");
        assert_eq!(header["typ"], "subject+jwt");
        // The very claims of a token, typ claim and all, signed as a receipt, a snapshot, a checkpoint or
        // in the form before kinds: none is a token.
        let claims = URL_SAFE_NO_PAD.decode(genuine.split('.').nth(1).expect("payload")).expect("b64");
        for typ in [JwsKind::Receipt.typ(), JwsKind::DeviceSnapshot.typ(), JwsKind::Checkpoint.typ(), "JWT"] {
            let other = key.sign_jws_bytes(typ, &claims);
            assert_eq!(verify_subject_token_with(&jwks, &other, now), Err(TokenRejection::Invalid), "{typ}");
        }
        // The header alone does not make a token either: the payload's typ claim is still checked.
        let mut claims: serde_json::Value = serde_json::from_slice(&claims).expect("json");
        claims["typ"] = "something-else".into();
        let no_claim = key.sign_jws_as(JwsKind::SubjectToken, &claims);
        assert_eq!(verify_subject_token_with(&jwks, &no_claim, now), Err(TokenRejection::Invalid));
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
