//! Signed proofs: Ed25519 signing keys and their JWKs, compact JWS (RFC 7515 with RFC 8037's `EdDSA`),
//! signed checkpoints of the ledger head, and the consent receipt payload.
//!
//! Everything here is pure: callers pass the 32 secret bytes of a key and every time, nothing reads a
//! clock, a file or a random source. Ed25519 signatures are deterministic, so the same key, header and
//! payload always give the same JWS.
//!
//! A JWS made here has the protected header `{"alg":"EdDSA","kid":"<kid>","typ":"<kind>"}` and the
//! payload's JSON (`serde_json`, compact), each base64url-encoded without padding. [`verify_jws`] accepts
//! only `EdDSA`, needs a `kid` that names an Ed25519 key of the given [`Jwks`], refuses a `crit` header (it
//! understands no extension) and verifies with `verify_strict` (no small-order keys, canonical `S`).
//!
//! One key signs every kind of statement (receipts, device snapshots, checkpoints, subject tokens), so
//! each kind names itself in the `typ` header ([`JwsKind`], RFC 8725 §3.11) and [`verify_jws_kind`] refuses
//! a genuine JWS of another kind. Receipts and checkpoints signed before kinds existed (`typ` `JWT` or
//! none) are kept for years and still verify as their kind ([`JwsKind::accepts_legacy`]); the short-lived
//! kinds accept no legacy form.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::Action;
use crate::time::Timestamp;

/// The only JWS algorithm made and accepted.
pub const ALG: &str = "EdDSA";
/// `kty` of an Ed25519 JWK (RFC 8037).
pub const KTY_OKP: &str = "OKP";
/// `crv` of an Ed25519 JWK (RFC 8037).
pub const CRV_ED25519: &str = "Ed25519";
/// `typ` of the JWS made before each kind had its own (see [`JwsKind::accepts_legacy`]).
pub const LEGACY_TYP: &str = "JWT";
/// `version` of every receipt: the Kantara Consent Receipt Specification v1.1.0.
pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";
/// `consentry.schema_version` of the receipts this version makes: the form of the extension member.
pub const RECEIPT_SCHEMA_VERSION: &str = "consentry-receipt/2";
/// `consentType` of a purpose on consent: Consentry records explicit consent only.
pub const CONSENT_TYPE_EXPLICIT: &str = "EXPLICIT";
/// `consentType` of a purpose on another legal basis (contract, legitimate interest, ...), as Kantara's
/// own example writes it.
pub const CONSENT_TYPE_NONE: &str = "N/A";

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

    /// The Ed25519 key itself, for the signed statements that are not a JWS (C2SP signed notes).
    pub(crate) fn ed25519(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// The public key as a JWK, for the JWKS a verifier is given.
    pub fn public_jwk(&self) -> Jwk {
        Jwk::ed25519(self.kid.clone(), &self.public_key())
    }

    /// `payload` as JSON, signed into a compact JWS with header `{"alg":"EdDSA","kid":..,"typ":..}`, the
    /// `typ` of the payload's kind ([`Signed::KIND`]).
    pub fn sign_jws<P: Signed>(&self, payload: &P) -> String {
        self.sign_jws_as(P::KIND, payload)
    }

    /// `payload` as JSON, signed as a JWS of `kind`. For payloads of no [`Signed`] type (tests, tools).
    ///
    /// # Panics
    ///
    /// When `payload`'s `Serialize` implementation fails, which derived implementations of plain structs
    /// (every payload of this crate) never do; it would take a map with non-string keys or a custom error.
    pub fn sign_jws_as(&self, kind: JwsKind, payload: &impl Serialize) -> String {
        let payload = serde_json::to_vec(payload).expect("JWS payload serialises to JSON");
        self.sign_jws_bytes(kind.typ(), &payload)
    }

    /// Signs `payload` as it is (any bytes) into a compact JWS with this key's header and `typ`.
    pub fn sign_jws_bytes(&self, typ: &str, payload: &[u8]) -> String {
        let header = Header { alg: ALG, kid: &self.kid, typ };
        // A struct of three strings always serialises.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        sign_compact(&self.key, &header, payload)
    }
}

/// A kind of signed statement, named by the JWS `typ` header so that one kind cannot pass for another
/// (RFC 8725 §3.11: the same key signs them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsKind {
    /// A consent receipt ([`ConsentReceipt`]): `consent-receipt+jwt`.
    Receipt,
    /// A device's consent snapshot: `device-snapshot+jwt`.
    DeviceSnapshot,
    /// A signed checkpoint of the ledger head ([`Checkpoint`]): `checkpoint+jwt`.
    Checkpoint,
    /// A subject token, a person's credential: `subject+jwt`.
    SubjectToken,
}

impl JwsKind {
    /// The `typ` header of this kind.
    pub const fn typ(self) -> &'static str {
        match self {
            JwsKind::Receipt => "consent-receipt+jwt",
            JwsKind::DeviceSnapshot => "device-snapshot+jwt",
            JwsKind::Checkpoint => "checkpoint+jwt",
            JwsKind::SubjectToken => "subject+jwt",
        }
    }

    /// Whether a JWS without this kind's `typ` (none, or [`LEGACY_TYP`]) is still taken as this kind:
    /// receipts and checkpoints, which are kept for years and were signed so before kinds existed. Never
    /// subject tokens (credentials) nor device snapshots: both expire within days, so no genuine one of
    /// the old form is still valid.
    pub const fn accepts_legacy(self) -> bool {
        matches!(self, JwsKind::Receipt | JwsKind::Checkpoint)
    }

    /// Whether a header's `typ` names this kind. `typ` is a media type: compared without regard to case,
    /// with or without `application/` (RFC 7515 §4.1.9).
    fn accepts(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return self.accepts_legacy() };
        let typ = strip_prefix_ignore_case(typ, "application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case(self.typ())
            || (self.accepts_legacy() && typ.eq_ignore_ascii_case(LEGACY_TYP))
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// A payload signed as one [`JwsKind`].
pub trait Signed: Serialize {
    const KIND: JwsKind;
}

impl Signed for ConsentReceipt {
    const KIND: JwsKind = JwsKind::Receipt;
}

impl Signed for Checkpoint {
    const KIND: JwsKind = JwsKind::Checkpoint;
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
    /// A genuine JWS, but of another kind than expected (its `typ` header, clipped; empty when absent).
    #[error("the JWS is not a {expected} (its typ is {found:?})")]
    WrongKind { expected: &'static str, found: String },
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

/// Verifies a compact JWS of `kind` against a key set: [`verify_jws`], then its `typ` header must name
/// `kind` (or be the legacy form, for the kinds that accept it).
pub fn verify_jws_kind(jws: &str, jwks: &Jwks, kind: JwsKind) -> Result<(JwsHeader, Vec<u8>), JwsError> {
    let (header, payload) = verify_jws(jws, jwks)?;
    if !kind.accepts(header.typ.as_deref()) {
        return Err(JwsError::WrongKind {
            expected: kind.typ(),
            found: header.typ.as_deref().map(clip).unwrap_or_default(),
        });
    }
    Ok((header, payload))
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
        Action::Locate => "located",
    }
}

/// A consent receipt: the payload of the JWS given to a person after consent was recorded. Its members
/// are exactly the Kantara Initiative Consent Receipt Specification v1.1.0 (`version` `KI-CR-v1.1.0`),
/// with Consentry's own evidence (ledger events and hashes, the notice's SHA-256, channels, recipients,
/// DPV terms and the ISO/IEC TS 27560 record fields) under the one extension member `consentry`.
/// `docs/receipts.md` maps every member to ISO/IEC TS 27560 and to Consentry's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentReceipt {
    /// [`RECEIPT_VERSION`].
    pub version: String,
    pub jurisdiction: String,
    /// When the consent was recorded, in whole seconds since the Unix epoch.
    pub consent_timestamp: i64,
    /// How consent was collected, e.g. `web_form`.
    pub collection_method: String,
    #[serde(rename = "consentReceiptID")]
    pub consent_receipt_id: String,
    /// The PII Controller's public key that signed the receipt: the raw Ed25519 key, base64url as in the
    /// JWK's `x` (RFC 8037). A verifier trusts the key set, never this copy (see [`Extension::kid`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The language of the notice the person was shown (absent when none was, e.g. a withdrawal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The PII principal: the brand's subject id.
    pub pii_principal_id: String,
    pub pii_controllers: Vec<PiiController>,
    pub policy_url: String,
    pub services: Vec<Service>,
    /// Whether any category covered is a special category.
    pub sensitive: bool,
    /// The names of the special categories covered.
    pub spi_cat: Vec<String>,
    /// Consentry's evidence, the one extension member.
    pub consentry: Extension,
}

/// A PII controller as Kantara names it; `address` is a schema.org `PostalAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PiiController {
    pub pii_controller: String,
    pub on_behalf: bool,
    pub contact: String,
    pub address: PostalAddress,
    pub email: String,
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_controller_url: Option<String>,
}

/// A postal address with schema.org `PostalAddress` member names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    pub street_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_region: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub address_country: String,
}

/// A Kantara service and the purposes consented to for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service: String,
    pub purposes: Vec<ServicePurpose>,
}

/// One purpose of a Kantara service. The `i`-th purpose of a receipt is the `i`-th of
/// [`Extension::events`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePurpose {
    /// The purpose's name, as the catalogue shows it.
    pub purpose: String,
    /// The purpose's DPV concept (e.g. `dpv:DirectMarketing`), else its catalogue key.
    pub purpose_category: Vec<String>,
    /// [`CONSENT_TYPE_EXPLICIT`] for purposes on consent, [`CONSENT_TYPE_NONE`] for the other legal bases.
    pub consent_type: String,
    /// The names of the data categories covered.
    pub pii_category: Vec<String>,
    /// Whether the purpose is part of the core service: those whose legal basis is a contract.
    pub primary_purpose: bool,
    /// How the consent ends: the policy that says how to withdraw (`policyUrl`); the time it lapses, if
    /// any, is the event's `expires_at`.
    pub termination: String,
    pub third_party_disclosure: bool,
    /// The third parties' names, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_name: Option<String>,
}

/// Consentry's evidence in a receipt, with ISO/IEC TS 27560 names where the record has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// [`RECEIPT_SCHEMA_VERSION`]: what readers match on.
    pub schema_version: String,
    /// The kid of the signing key in the published key set (`/.well-known/jwks.json`).
    pub kid: String,
    /// RFC 3339: when the receipt was issued.
    pub issued_at: String,
    /// RFC 3339 with the ledger's precision: when the first change was recorded.
    pub consent_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<CollectionPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<ReceiptNotice>,
    pub ledger: LedgerRange,
    /// One per purpose of the receipt, in the same order.
    pub events: Vec<ReceiptEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionPoint {
    pub key: String,
    pub name: String,
}

/// The notice the person was shown (ISO/IEC TS 27560 `notice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptNotice {
    /// The catalogue key of the notice.
    pub notice_id: String,
    pub version: u32,
    /// SHA-256 (lowercase hex) of the exact notice text.
    pub sha256: String,
    pub language: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One ledger event behind a receipt purpose: the ISO/IEC TS 27560 event and purpose fields, with the
/// event's place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEvent {
    pub event_id: String,
    /// RFC 3339: when the change was recorded.
    pub event_time: String,
    /// The action recorded: `grant`, `deny`, `withdraw`, `object`, `restrict`, `renew` or `expire`.
    pub event_type: String,
    /// [`state_for`] the action: `given`, `refused`, `withdrawn`, `objected`, `restricted`, `renewed`
    /// or `expired`.
    pub event_state: String,
    /// The catalogue key of the purpose.
    pub purpose_id: String,
    /// The purpose's DPV concept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpv: Option<String>,
    /// E.g. `consent`, `contract`, `legitimate_interest`.
    pub lawful_basis: String,
    /// The data categories covered (ISO/IEC TS 27560 `pii_information`).
    pub pii_information: Vec<ReceiptCategory>,
    pub channels: Vec<String>,
    pub recipients: Vec<ReceiptRecipient>,
    /// RFC 3339: when a grant lapses unless renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub seq: u64,
    pub hash: String,
    pub prev_hash: String,
    /// What the change rests on besides the notice: `sha256:<hex>` of the IAB TCF or GPP string it was
    /// read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
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

/// The ledger positions a receipt covers and the ledger head when it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRange {
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: String,
}

#[cfg(test)]
mod tests;
