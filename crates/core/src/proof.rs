//! Signed proofs: Ed25519 signing keys and their JWKs, compact JWS (RFC 7515 with RFC 8037's `EdDSA`),
//! signed checkpoints of the ledger head, and the consent receipt payload.
//!
//! Everything here is pure: callers pass the 32 secret bytes of a key and every time, nothing reads a
//! clock, a file or a random source. Ed25519 signatures are deterministic, so the same key, header and
//! payload always give the same JWS.
//!
//! A JWS made here has the protected header `{"alg":"EdDSA","kid":"<kid>","typ":"JWT"}` and the payload's
//! JSON (`serde_json`, compact), each base64url-encoded without padding. [`verify_jws`] accepts only
//! `EdDSA`, needs a `kid` that names an Ed25519 key of the given [`Jwks`], refuses a `crit` header (it
//! understands no extension) and verifies with `verify_strict` (no small-order keys, canonical `S`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::{Action, Event};
use crate::time::Timestamp;

/// The only JWS algorithm made and accepted.
pub const ALG: &str = "EdDSA";
/// `kty` of an Ed25519 JWK (RFC 8037).
pub const KTY_OKP: &str = "OKP";
/// `crv` of an Ed25519 JWK (RFC 8037).
pub const CRV_ED25519: &str = "Ed25519";
/// `typ` of the JWS made here.
pub const TYP: &str = "JWT";
/// `schema_version` of the receipts this version makes.
pub const RECEIPT_SCHEMA_VERSION: &str = "consentry-receipt/1; ISO/IEC TS 27560; Kantara CR 1.1";
/// The first `;`-separated part of [`RECEIPT_SCHEMA_VERSION`]: what readers match on.
pub const RECEIPT_SCHEMA: &str = "consentry-receipt/1";
/// `consent_type` of every receipt purpose: Consentry records explicit consent only.
pub const CONSENT_TYPE_EXPLICIT: &str = "explicit";

/// An Ed25519 signing key with its key id. `Debug` shows the kid and public key, never the secret; the
/// secret is zeroised when the key is dropped.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("x", &URL_SAFE_NO_PAD.encode(self.public_key()))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// The key whose 32-byte Ed25519 secret (RFC 8032 seed, JWK `d`) is `secret`, published under `kid`.
    pub fn from_secret(kid: impl Into<String>, secret: [u8; 32]) -> Self {
        Self { kid: kid.into(), key: ed25519_dalek::SigningKey::from_bytes(&secret) }
    }

    /// As [`SigningKey::from_secret`], with the RFC 7638 thumbprint of the public key ([`kid_for`]) as kid.
    pub fn from_secret_with_thumbprint_kid(secret: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        Self { kid: kid_for(key.verifying_key().as_bytes()), key }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as a JWK, for the JWKS a verifier is given.
    pub fn public_jwk(&self) -> Jwk {
        Jwk::ed25519(self.kid.clone(), &self.public_key())
    }

    /// `payload` as JSON, signed into a compact JWS with header `{"alg":"EdDSA","kid":..,"typ":"JWT"}`.
    ///
    /// # Panics
    ///
    /// When `payload`'s `Serialize` implementation fails, which derived implementations of plain structs
    /// (every payload of this crate) never do; it would take a map with non-string keys or a custom error.
    pub fn sign_jws(&self, payload: &impl Serialize) -> String {
        let payload = serde_json::to_vec(payload).expect("JWS payload serialises to JSON");
        self.sign_jws_bytes(&payload)
    }

    /// Signs `payload` as it is (any bytes) into a compact JWS with this key's header.
    pub fn sign_jws_bytes(&self, payload: &[u8]) -> String {
        let header = Header { alg: ALG, kid: &self.kid, typ: TYP };
        // A struct of three strings always serialises.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        sign_compact(&self.key, &header, payload)
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// `b64(header).b64(payload).b64(signature over the first two parts)`.
fn sign_compact(key: &ed25519_dalek::SigningKey, header: &[u8], payload: &[u8]) -> String {
    let mut jws = URL_SAFE_NO_PAD.encode(header);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
    let signature = key.sign(jws.as_bytes());
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
    jws
}

/// A public key as a JSON Web Key (RFC 7517, RFC 8037): `kty` `OKP`, `crv` `Ed25519`, `x` the base64url
/// public key. `alg` and `use` may be absent in a key set read from elsewhere (they then read as empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default)]
    pub alg: String,
    #[serde(rename = "use", default)]
    pub key_use: String,
}

impl Jwk {
    /// The JWK of the Ed25519 public key `public`, for signatures (`use` `sig`, `alg` `EdDSA`).
    pub fn ed25519(kid: impl Into<String>, public: &[u8; 32]) -> Self {
        Self {
            kty: KTY_OKP.to_owned(),
            crv: CRV_ED25519.to_owned(),
            x: URL_SAFE_NO_PAD.encode(public),
            kid: kid.into(),
            alg: ALG.to_owned(),
            key_use: "sig".to_owned(),
        }
    }

    /// The public key bytes, when this is an Ed25519 key usable for `EdDSA` signatures.
    pub fn ed25519_public_key(&self) -> Option<[u8; 32]> {
        let usable = self.kty == KTY_OKP
            && self.crv == CRV_ED25519
            && (self.alg.is_empty() || self.alg == ALG)
            && (self.key_use.is_empty() || self.key_use == "sig");
        if !usable {
            return None;
        }
        URL_SAFE_NO_PAD.decode(&self.x).ok()?.try_into().ok()
    }

    /// The RFC 7638 thumbprint of this key (see [`kid_for`]), when it is an Ed25519 key.
    pub fn thumbprint(&self) -> Option<String> {
        self.ed25519_public_key().map(|x| kid_for(&x))
    }
}

/// A JSON Web Key Set (RFC 7517 §5): what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The first key with this kid.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

impl FromIterator<Jwk> for Jwks {
    fn from_iter<I: IntoIterator<Item = Jwk>>(iter: I) -> Self {
        Self { keys: iter.into_iter().collect() }
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key: base64url (no padding) of the SHA-256 of
/// `{"crv":"Ed25519","kty":"OKP","x":"<base64url public key>"}`. Consentry's default kid.
pub fn kid_for(public: &[u8; 32]) -> String {
    let members =
        format!(r#"{{"crv":"{CRV_ED25519}","kty":"{KTY_OKP}","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(members.as_bytes()))
}

/// The protected header of a verified JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// The header as read, with the members that must make us refuse the JWS.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// Why a JWS was refused. Messages hold no secret and at most a short, escaped prefix of untrusted text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts, a header that is not a JSON object with `alg` and `kid`, a `crit`
    /// header, or a signature that is not 64 bytes.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not `EdDSA` (`none` included).
    #[error("unsupported JWS algorithm {0:?}: only EdDSA is accepted")]
    WrongAlg(String),
    /// No key of the key set has the header's `kid`.
    #[error("no key with kid {0:?} in the key set")]
    UnknownKid(String),
    /// The key set's key for the header's `kid` is not a valid Ed25519 signature key.
    #[error("the key with kid {0:?} is not a usable Ed25519 public key")]
    UnusableKey(String),
    /// The signature does not verify under the key named by `kid`.
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// At most 64 characters of untrusted text, for error messages.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Verifies a compact JWS against a key set; returns its protected header and the payload bytes.
pub fn verify_jws(jws: &str, jwks: &Jwks) -> Result<(JwsHeader, Vec<u8>), JwsError> {
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("expected three dot-separated parts"));
    };
    let header_bytes =
        URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| JwsError::Malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| JwsError::Malformed("header is not a JSON object with a string alg"))?;
    if header.alg != ALG {
        return Err(JwsError::WrongAlg(clip(&header.alg)));
    }
    if header.crit.is_some() {
        return Err(JwsError::Malformed("crit header parameters are not supported"));
    }
    let Some(kid) = header.kid else {
        return Err(JwsError::Malformed("header has no kid"));
    };
    let jwk = jwks.find(&kid).ok_or_else(|| JwsError::UnknownKid(clip(&kid)))?;
    let key = jwk
        .ed25519_public_key()
        .and_then(|x| ed25519_dalek::VerifyingKey::from_bytes(&x).ok())
        .ok_or_else(|| JwsError::UnusableKey(clip(&kid)))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
        .ok_or(JwsError::Malformed("signature is not 64 base64url-encoded bytes"))?;
    let signing_input = &jws.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    key.verify_strict(signing_input, &signature).map_err(|_| JwsError::BadSignature)?;
    let payload =
        URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| JwsError::Malformed("payload is not base64url"))?;
    Ok((JwsHeader { alg: header.alg, kid: Some(kid), typ: header.typ }, payload))
}

/// The payload of a signed checkpoint: the ledger held `events` events and the last one's hash was `head`
/// (`head` is the genesis hash for an empty ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub events: u64,
    pub head: String,
    /// RFC 3339, in [`Timestamp`]'s rendering.
    pub signed_at: String,
    /// `signed_at` in whole seconds since the Unix epoch (JWT `iat`).
    pub iat: i64,
}

impl Checkpoint {
    pub fn new(events: u64, head: impl Into<String>, signed_at: Timestamp) -> Self {
        Self { events, head: head.into(), signed_at: signed_at.to_string(), iat: unix_seconds(signed_at) }
    }
}

/// Whole seconds since the Unix epoch (rounded down), for JWT `iat`.
pub fn unix_seconds(t: Timestamp) -> i64 {
    t.micros().div_euclid(1_000_000)
}

/// The receipt `state` for the action a ledger event records.
pub fn state_for(action: Action) -> &'static str {
    match action {
        Action::Grant => "given",
        Action::Deny => "refused",
        Action::Withdraw => "withdrawn",
        Action::Object => "objected",
        Action::Restrict => "restricted",
        Action::Renew => "renewed",
        Action::Expire => "expired",
    }
}

/// A consent receipt: the payload of the JWS given to a person after consent was recorded. Shaped after
/// ISO/IEC TS 27560 (consent record information structure) and the Kantara Consent Receipt 1.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentReceipt {
    /// [`RECEIPT_SCHEMA_VERSION`].
    pub schema_version: String,
    pub receipt_id: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// RFC 3339: when the consent was recorded.
    pub consent_timestamp: String,
    pub jurisdiction: String,
    /// The PII principal: the brand's subject id.
    pub pii_principal_id: String,
    pub pii_controllers: Vec<PiiController>,
    /// How consent was collected, e.g. `web_form`.
    pub collection_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<CollectionPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<ReceiptNotice>,
    /// Whether any category covered is a special category (Kantara `sensitive`).
    pub sensitive: bool,
    /// The special categories covered (Kantara `spiCat`).
    pub spi_categories: Vec<String>,
    pub purposes: Vec<ReceiptPurpose>,
    pub ledger: LedgerRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiController {
    pub name: String,
    pub contact: String,
    pub address: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionPoint {
    pub key: String,
    pub name: String,
}

/// The notice the person was shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptNotice {
    pub key: String,
    pub version: u32,
    /// SHA-256 (lowercase hex) of the exact notice text.
    pub sha256: String,
    pub language: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One purpose's consent statement, with the ledger event that records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPurpose {
    /// The catalogue key of the purpose.
    pub purpose: String,
    pub name: String,
    /// W3C Data Privacy Vocabulary concept, e.g. `dpv:Marketing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpv: Option<String>,
    pub legal_basis: String,
    /// [`CONSENT_TYPE_EXPLICIT`].
    pub consent_type: String,
    /// [`state_for`] of the event's action: `given`, `refused`, `withdrawn`, `objected`, `restricted`,
    /// `renewed` or `expired`.
    pub state: String,
    pub categories: Vec<ReceiptCategory>,
    pub channels: Vec<String>,
    pub recipients: Vec<ReceiptRecipient>,
    pub third_party_disclosure: bool,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub event: ReceiptEvent,
    /// RFC 3339.
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCategory {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpv: Option<String>,
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecipient {
    pub key: String,
    pub name: String,
    /// E.g. `processor`, `controller`, `third_party`.
    pub kind: String,
}

/// The ledger event behind a receipt purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEvent {
    pub id: String,
    pub seq: u64,
    pub hash: String,
    pub prev_hash: String,
}

impl From<&Event> for ReceiptEvent {
    fn from(event: &Event) -> Self {
        Self { id: event.id(), seq: event.seq, hash: event.hash.clone(), prev_hash: event.prev_hash.clone() }
    }
}

/// The ledger positions a receipt covers and the ledger head when it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRange {
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{GENESIS_HASH, NewEvent, Scope};

    /// RFC 8037 Appendix A.1.
    const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    fn rfc_secret() -> [u8; 32] {
        b64(RFC_D).try_into().expect("32 bytes")
    }

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey::from_secret(kid.to_owned(), [byte; 32])
    }

    fn jwks(keys: &[&SigningKey]) -> Jwks {
        keys.iter().map(|k| k.public_jwk()).collect()
    }

    /// Re-encodes one part of a JWS.
    fn with_part(jws: &str, index: usize, bytes: &[u8]) -> String {
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        parts[index] = URL_SAFE_NO_PAD.encode(bytes);
        parts.join(".")
    }

    /// A second, independent JWS implementation: the signing input built by hand.
    fn hand_made_jws(secret: &[u8; 32], header: &str, payload: &str) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(secret);
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = ed25519_dalek::Signer::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    #[test]
    fn rfc_8037_public_key_and_thumbprint() {
        let k = SigningKey::from_secret("k", rfc_secret());
        assert_eq!(k.public_jwk().x, RFC_X);
        assert_eq!(kid_for(&k.public_key()), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(
            k.public_jwk().thumbprint().as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        let derived = SigningKey::from_secret_with_thumbprint_kid(rfc_secret());
        assert_eq!(derived.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn rfc_8037_signature_example() {
        // RFC 8037 Appendix A.4: both our encoder and the hand-made one give the RFC's JWS exactly.
        let expected = concat!(
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.",
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        let key = ed25519_dalek::SigningKey::from_bytes(&rfc_secret());
        assert_eq!(sign_compact(&key, br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing"), expected);
        assert_eq!(
            hand_made_jws(&rfc_secret(), r#"{"alg":"EdDSA"}"#, "Example of Ed25519 signing"),
            expected
        );
    }

    #[test]
    fn jwk_shape() {
        let k = SigningKey::from_secret("k1", rfc_secret());
        assert_eq!(
            serde_json::to_value(Jwks { keys: vec![k.public_jwk()] }).expect("json"),
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": "k1",
                "alg": "EdDSA", "use": "sig"}]})
        );
        // A key set from elsewhere may leave alg and use out.
        let lean: Jwks = serde_json::from_str(&format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC_X}","kid":"k1"}}]}}"#
        ))
        .expect("parses");
        assert_eq!(lean.keys[0].ed25519_public_key(), Some(k.public_key()));
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key("k1", 7);
        let cp = Checkpoint::new(3, "ab".repeat(32), Timestamp::from_micros(1_700_000_000_999_999));
        assert_eq!(cp.iat, 1_700_000_000);
        assert_eq!(cp.signed_at, "2023-11-14T22:13:20.999999Z");
        let jws = k.sign_jws(&cp);
        let header_json = b64(jws.split('.').next().expect("header"));
        assert_eq!(header_json, br#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#);
        let (header, payload) = verify_jws(&jws, &jwks(&[&k])).expect("verifies");
        assert_eq!(
            header,
            JwsHeader { alg: "EdDSA".into(), kid: Some("k1".into()), typ: Some("JWT".into()) }
        );
        assert_eq!(serde_json::from_slice::<Checkpoint>(&payload).expect("checkpoint"), cp);
        // Deterministic.
        assert_eq!(jws, k.sign_jws(&cp));
    }

    #[test]
    fn independently_made_jws_verifies() {
        let secret = [42; 32];
        let k = SigningKey::from_secret("kid-x", secret);
        let jws = hand_made_jws(&secret, r#"{"kid":"kid-x","alg":"EdDSA"}"#, r#"{"events":0}"#);
        let (header, payload) = verify_jws(&jws, &jwks(&[&k])).expect("verifies");
        assert_eq!(header.typ, None);
        assert_eq!(payload, br#"{"events":0}"#);
    }

    #[test]
    fn tampering_is_refused() {
        let k = key("k1", 7);
        let set = jwks(&[&k]);
        let jws = k.sign_jws(&serde_json::json!({"events": 1}));

        let payload = with_part(&jws, 1, br#"{"events":2}"#);
        assert_eq!(verify_jws(&payload, &set), Err(JwsError::BadSignature));

        let header = with_part(&jws, 0, br#"{"alg":"EdDSA","kid":"k1","typ":"jwt"}"#);
        assert_eq!(verify_jws(&header, &set), Err(JwsError::BadSignature));

        let mut signature = b64(jws.rsplit('.').next().expect("signature"));
        signature[5] ^= 1;
        assert_eq!(verify_jws(&with_part(&jws, 2, &signature), &set), Err(JwsError::BadSignature));
        assert!(matches!(
            verify_jws(&with_part(&jws, 2, &signature[..63]), &set),
            Err(JwsError::Malformed(_))
        ));

        let other = key("k1", 8);
        assert_eq!(verify_jws(&other.sign_jws(&1), &set), Err(JwsError::BadSignature));
        assert_eq!(verify_jws(&key("k2", 7).sign_jws(&1), &set), Err(JwsError::UnknownKid("k2".into())));
    }

    #[test]
    fn other_algorithms_and_malformed_input_are_refused() {
        let secret = [7; 32];
        let k = SigningKey::from_secret("k1", secret);
        let set = jwks(&[&k]);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"events":1}"#);
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#));
        assert_eq!(verify_jws(&none, &set), Err(JwsError::WrongAlg("none".into())));
        let hs = hand_made_jws(&secret, r#"{"alg":"HS256","kid":"k1"}"#, "{}");
        assert_eq!(verify_jws(&hs, &set), Err(JwsError::WrongAlg("HS256".into())));
        let crit = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1","crit":["exp"],"exp":1}"#, "{}");
        assert!(matches!(verify_jws(&crit, &set), Err(JwsError::Malformed(_))));
        let no_kid = hand_made_jws(&secret, r#"{"alg":"EdDSA"}"#, "{}");
        assert!(matches!(verify_jws(&no_kid, &set), Err(JwsError::Malformed(_))));
        let duplicate_alg = hand_made_jws(&secret, r#"{"alg":"EdDSA","alg":"none","kid":"k1"}"#, "{}");
        assert!(matches!(verify_jws(&duplicate_alg, &set), Err(JwsError::Malformed(_))));

        let good = k.sign_jws(&1);
        for bad in ["", "a.b", "a.b.c.d", &format!("{good}."), &good.replacen('.', "=.", 1)] {
            assert!(matches!(verify_jws(bad, &set), Err(JwsError::Malformed(_))), "{bad}");
        }
        // Padding is not base64url-without-padding.
        let padded = format!("{good}==");
        assert!(matches!(verify_jws(&padded, &set), Err(JwsError::Malformed(_))));

        let mut wrong_kty = k.public_jwk();
        wrong_kty.kty = "EC".into();
        let unusable = Jwks { keys: vec![wrong_kty] };
        assert_eq!(verify_jws(&good, &unusable), Err(JwsError::UnusableKey("k1".into())));
    }

    #[test]
    fn debug_hides_the_secret() {
        let k = SigningKey::from_secret("k1", rfc_secret());
        let text = format!("{k:?}");
        assert!(text.contains("k1") && text.contains(RFC_X) && text.contains("redacted"));
        assert!(!text.contains(RFC_D));
        assert!(!text.contains(&format!("{:?}", rfc_secret())));
        assert!(!text.contains(&hex::encode(rfc_secret())));
    }

    #[test]
    fn error_messages_clip_untrusted_text() {
        let long = "x".repeat(500);
        let text = JwsError::UnknownKid(clip(&long)).to_string();
        assert!(text.len() < 120, "{text}");
    }

    #[test]
    fn states_cover_every_action() {
        let states: Vec<_> = Action::ALL.into_iter().map(state_for).collect();
        assert_eq!(states, ["given", "refused", "withdrawn", "objected", "restricted", "renewed", "expired"]);
    }

    fn receipt() -> ConsentReceipt {
        let event = Event::place(
            NewEvent {
                purpose: "marketing.direct".into(),
                action: Action::Grant,
                scope: Scope::new(vec![], vec!["email".into()], vec![]),
                notice: Some("marketing.direct".into()),
                notice_version: Some(2),
                notice_hash: Some("cd".repeat(32)),
                collection_point: Some("signup".into()),
                actor: "subject".into(),
                expires_at: None,
            },
            1,
            "p".repeat(64),
            Timestamp::from_micros(1_700_000_000_000_000),
            GENESIS_HASH.into(),
        );
        ConsentReceipt {
            schema_version: RECEIPT_SCHEMA_VERSION.into(),
            receipt_id: "rcpt_1".into(),
            iat: 1_700_000_000,
            consent_timestamp: event.recorded_at.to_string(),
            jurisdiction: "EU".into(),
            pii_principal_id: "user-42".into(),
            pii_controllers: vec![PiiController {
                name: "Brand".into(),
                contact: "DPO".into(),
                address: "1 Street".into(),
                email: "dpo@example.com".into(),
                phone: None,
                url: Some("https://example.com".into()),
            }],
            collection_method: "web_form".into(),
            collection_point: Some(CollectionPoint { key: "signup".into(), name: "Sign-up form".into() }),
            notice: Some(ReceiptNotice {
                key: "marketing.direct".into(),
                version: 2,
                sha256: "cd".repeat(32),
                language: "en".into(),
                title: "Direct marketing".into(),
                url: None,
            }),
            sensitive: false,
            spi_categories: vec![],
            purposes: vec![ReceiptPurpose {
                purpose: "marketing.direct".into(),
                name: "Direct marketing".into(),
                dpv: Some("dpv:DirectMarketing".into()),
                legal_basis: "consent".into(),
                consent_type: CONSENT_TYPE_EXPLICIT.into(),
                state: state_for(event.action).into(),
                categories: vec![ReceiptCategory {
                    key: "user.contact.email".into(),
                    dpv: None,
                    sensitive: false,
                }],
                channels: vec!["email".into()],
                recipients: vec![],
                third_party_disclosure: false,
                expires_at: None,
                event: ReceiptEvent::from(&event),
                recorded_at: event.recorded_at.to_string(),
            }],
            ledger: LedgerRange { first_seq: 1, last_seq: 1, head: event.hash.clone() },
        }
    }

    #[test]
    fn receipts_round_trip_through_a_jws() {
        let r = receipt();
        let value = serde_json::to_value(&r).expect("json");
        assert_eq!(value["purposes"][0]["event"]["id"], "evt_1");
        assert_eq!(value["purposes"][0]["state"], "given");
        assert!(value["notice"].get("url").is_none(), "absent options are left out");
        let k = key("k1", 9);
        let (_, payload) = verify_jws(&k.sign_jws(&r), &jwks(&[&k])).expect("verifies");
        assert_eq!(serde_json::from_slice::<ConsentReceipt>(&payload).expect("receipt"), r);
    }
}
