//! Subject tokens: compact JWS (EdDSA, header `typ` `subject+jwt`) for one person, signed with the
//! server's current key, so any node verifies them against the keys of `/.well-known/jwks.json`.
//!
//! A token is for one use, named by its `typ` claim ([`TokenUse`]): an **API** token (the `token` of a
//! mint, and the preference centre's session) acts as the person on their own routes; a **link** token
//! (the one in a mint's `url`) only opens the preference centre, once, where it is exchanged for a session
//! of its own ([`crate::tokens::exchange_link`]); the API refuses it.
//!
//! Nothing about a token is stored, but two things every node reads from the shared store: the subject's
//! revocation (read on every use, so a revocation holds on every node once it has committed) and which
//! links were spent.
//!
//! `iat` is in whole seconds, so a revocation is a **cutoff second**: every token with `iat` at or before it
//! is refused, which keeps a token minted earlier in the revocation's own second from slipping through.
//! Cutoffs and `iat`s then work as a logical clock per subject, so that "before" and "after" a revocation
//! stay exact within one second: a token minted when the cutoff is this second or later is issued for the
//! second after the cutoff ([`mint_subject_token`]), and a revocation made when the cutoff is this second
//! or later moves it one second on ([`revocation_cutoff`]), refusing the tokens issued after the last one.

use consentry_core::proof::{Jwks, JwsError, JwsKind, Signed, SigningKey, unix_seconds, verify_jws_kind};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::random_bytes;
use serde::{Deserialize, Serialize};

use super::keys::hex_lower;
use crate::error::Result;
use crate::state::Services;

/// Shortest and longest lifetime of a subject token, in seconds.
pub(crate) const SUBJECT_TOKEN_TTL_MIN: u64 = 60;
pub(crate) const SUBJECT_TOKEN_TTL_MAX: u64 = 30 * 24 * 3600;
/// Lifetime of a subject token when the request names none: one hour.
pub(crate) const SUBJECT_TOKEN_TTL_DEFAULT: u64 = 3600;

/// What a subject token is for: its `typ` claim. Nothing else signed by the server (receipts, snapshots,
/// checkpoints) carries either, so no other signed document can pass for a token; the JWS `typ` header
/// (`subject+jwt`, [`JwsKind::SubjectToken`]) is checked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// A Bearer credential for the person's own routes; also the preference centre's session.
    Api,
    /// A preference-centre link: exchanged once for a session, never an API credential.
    Link,
}

impl TokenUse {
    const fn typ(self) -> &'static str {
        match self {
            TokenUse::Api => "consentry-subject-token/1",
            TokenUse::Link => "consentry-subject-link/1",
        }
    }

    fn from_typ(typ: &str) -> Option<Self> {
        [TokenUse::Api, TokenUse::Link].into_iter().find(|u| u.typ() == typ)
    }
}

/// The claims of a subject token.
#[derive(Debug, Serialize, Deserialize)]
struct SubjectClaims {
    typ: String,
    /// The server that issued it (its `public_url`).
    iss: String,
    sub: String,
    iat: i64,
    exp: i64,
    /// A random id: two tokens minted in one second differ, and a link is spent by it.
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
    /// The token's own id (`jti`).
    pub jti: String,
    /// When the token was issued, in whole seconds (`iat`).
    pub issued_at: Timestamp,
    pub usage: TokenUse,
}

/// A minted subject token.
#[derive(Debug)]
pub(crate) struct MintedToken {
    pub token: String,
    pub expires_at: Timestamp,
}

/// Signs a subject token of `usage` for `subject`, expiring at `expires_at` (whole seconds), with the
/// server's current key. Minted while the subject's revocation cutoff is this second or later, it is
/// issued for the second after the cutoff, so that the revocation (which refuses its whole second) does
/// not refuse it too; its expiry stays as asked.
pub(crate) async fn mint_subject_token(
    state: &Services,
    subject: &SubjectId,
    usage: TokenUse,
    expires_at: Timestamp,
    locale: Option<String>,
    now: Timestamp,
) -> Result<MintedToken> {
    let mut iat = unix_seconds(now);
    if let Some(revoked) = state.store.subject_tokens_revoked_at(subject).await? {
        iat = iat.max(unix_seconds(revoked).saturating_add(1));
    }
    let jti = hex_lower(&random_bytes::<12>()?);
    let claims = SubjectClaims {
        typ: usage.typ().to_owned(),
        iss: state.config.public_url(),
        sub: subject.as_str().to_owned(),
        iat,
        exp: unix_seconds(expires_at),
        jti,
        locale,
    };
    Ok(sign(&state.signing.current(), &claims))
}

/// The cutoff of a revocation made at `now` when the subject's cutoff was `previous`: `now`, or, when the
/// previous cutoff is this second or later, the second after it (tokens minted since then were issued for
/// that second).
pub(crate) fn revocation_cutoff(previous: Option<Timestamp>, now: Timestamp) -> Timestamp {
    match previous {
        Some(p) if unix_seconds(p) >= unix_seconds(now) => seconds(unix_seconds(p).saturating_add(1)),
        _ => now,
    }
}

fn sign(key: &SigningKey, claims: &SubjectClaims) -> MintedToken {
    MintedToken { token: key.sign_jws(claims), expires_at: seconds(claims.exp) }
}

fn seconds(unix: i64) -> Timestamp {
    Timestamp::from_micros(unix.saturating_mul(1_000_000))
}

/// Why a subject token was refused. The API answers each with 401 `unauthorized` (and [`Failed`] with
/// 500); the preference centre words its page after it.
///
/// [`Failed`]: TokenRejection::Failed
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a token signed by this server (bad shape, unknown key, wrong signature, not a subject token),
    /// or its subject was erased.
    Invalid,
    /// Genuine but past its `exp`.
    Expired,
    /// Genuine, but issued at or before the subject's tokens were revoked.
    Revoked,
    /// The revocations could not be read (logged where it happened): refused, never let through.
    Failed,
}

/// Verifies a subject token of any use at `now`: signature, kind, expiry, erasure, then revocation, read
/// from the store on every call (one indexed look-up) so that a revocation holds on every node at once.
pub async fn verify_subject_token(
    state: &Services,
    token: &str,
    now: Timestamp,
) -> Result<SubjectCaller, TokenRejection> {
    let caller = verify_signed(state.signing.jwks(), token, now)?;
    // Erasure revokes the subject's tokens with everything else of theirs.
    if state.erasures.is_erased(caller.subject.as_str()) {
        return Err(TokenRejection::Invalid);
    }
    // A token of an id since linked into another subject acts for the survivor, and goes when either's
    // tokens are revoked.
    let survivor = state.aliases.survivor(caller.subject.clone());
    let mut revoked = state.store.subject_tokens_revoked_at(&caller.subject).await;
    if survivor != caller.subject
        && let Ok(own) = revoked
    {
        revoked = state.store.subject_tokens_revoked_at(&survivor).await.map(|theirs| own.max(theirs));
    }
    if state.erasures.is_erased(survivor.as_str()) {
        return Err(TokenRejection::Invalid);
    }
    match revoked {
        Ok(Some(revoked)) if unix_seconds(caller.issued_at) <= unix_seconds(revoked) => {
            Err(TokenRejection::Revoked)
        }
        Ok(_) => Ok(SubjectCaller { subject: survivor, ..caller }),
        Err(e) => {
            tracing::error!(error = %e, "reading subject-token revocations failed; the token is refused");
            Err(TokenRejection::Failed)
        }
    }
}

/// What the token says, if it is a genuine, unexpired subject token of this server.
fn verify_signed(jwks: &Jwks, token: &str, now: Timestamp) -> Result<SubjectCaller, TokenRejection> {
    // The header's `typ` must be `subject+jwt`: a token of the form before kinds (`JWT`) is refused, as
    // subject tokens live at most 30 days and a credential must not be taken on its payload alone.
    let (_, payload) = verify_jws_kind(token, jwks, JwsKind::SubjectToken).map_err(|e: JwsError| {
        tracing::debug!(error = %e, "subject token refused");
        TokenRejection::Invalid
    })?;
    let claims: SubjectClaims = serde_json::from_slice(&payload).map_err(|_| TokenRejection::Invalid)?;
    // `iss` is informative only: nodes behind one address may each know themselves by another.
    let usage = TokenUse::from_typ(&claims.typ).ok_or(TokenRejection::Invalid)?;
    let subject = SubjectId::new(claims.sub).map_err(|_| TokenRejection::Invalid)?;
    if unix_seconds(now) >= claims.exp {
        return Err(TokenRejection::Expired);
    }
    Ok(SubjectCaller {
        subject,
        expires_at: seconds(claims.exp),
        locale: claims.locale,
        jti: claims.jti,
        issued_at: seconds(claims.iat),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn jwks_of(key: &SigningKey) -> Jwks {
        Jwks { keys: vec![key.public_jwk()] }
    }

    fn token_for(key: &SigningKey, subject: &str, usage: TokenUse, ttl: i64, now: Timestamp) -> String {
        let iat = unix_seconds(now);
        let claims = SubjectClaims {
            typ: usage.typ().to_owned(),
            iss: "http://x".into(),
            sub: subject.into(),
            iat,
            exp: iat + ttl,
            jti: "j".into(),
            locale: Some("de".into()),
        };
        sign(key, &claims).token
    }

    fn token(key: &SigningKey, subject: &str, ttl: i64, now: Timestamp) -> String {
        token_for(key, subject, TokenUse::Api, ttl, now)
    }

    #[test]
    fn subject_tokens_verify_until_they_expire() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let t = token(&key, "kim", 60, now);
        let who = verify_signed(&jwks_of(&key), &t, now).expect("valid");
        assert_eq!(who.subject.as_str(), "kim");
        assert_eq!(who.locale.as_deref(), Some("de"));
        assert_eq!((who.expires_at, who.issued_at), (now.plus_seconds(60), now));
        assert_eq!((who.usage, who.jti.as_str()), (TokenUse::Api, "j"));
        let later = now.plus_seconds(59);
        assert!(verify_signed(&jwks_of(&key), &t, later).is_ok());
        let expired = now.plus_seconds(60);
        assert_eq!(verify_signed(&jwks_of(&key), &t, expired), Err(TokenRejection::Expired));
    }

    #[test]
    fn revocations_and_tokens_keep_their_order_within_a_second() {
        let at = |s: i64, us: i64| Timestamp::from_micros((1_700_000_000 + s) * 1_000_000 + us);
        // Nothing before: the revocation is now.
        assert_eq!(revocation_cutoff(None, at(5, 300)), at(5, 300));
        // An old revocation: now.
        assert_eq!(revocation_cutoff(Some(at(1, 0)), at(5, 300)), at(5, 300));
        // One earlier in this second (tokens minted since were issued for the next second): one second on.
        assert_eq!(revocation_cutoff(Some(at(5, 100)), at(5, 300)), at(6, 0));
        // A cutoff already ahead (several revocations in one second, or another node's clock): after it.
        assert_eq!(revocation_cutoff(Some(at(7, 0)), at(5, 300)), at(8, 0));
    }

    #[test]
    fn a_link_says_it_is_one() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let link = token_for(&key, "kim", TokenUse::Link, 60, now);
        let who = verify_signed(&jwks_of(&key), &link, now).expect("valid");
        assert_eq!(who.usage, TokenUse::Link);
    }

    #[test]
    fn forged_and_foreign_tokens_are_invalid() {
        let key = SigningKey::from_secret_with_thumbprint_kid([7; 32]);
        let other = SigningKey::from_secret_with_thumbprint_kid([8; 32]);
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let jwks = jwks_of(&key);
        // Signed by a key the server does not have.
        let foreign = token(&other, "kim", 60, now);
        assert_eq!(verify_signed(&jwks, &foreign, now), Err(TokenRejection::Invalid));
        // The payload swapped for another subject's, the signature kept.
        let genuine = token(&key, "kim", 60, now);
        let theirs = token(&key, "alex", 60, now);
        let mut parts: Vec<&str> = genuine.split('.').collect();
        parts[1] = theirs.split('.').nth(1).expect("payload");
        assert_eq!(verify_signed(&jwks, &parts.join("."), now), Err(TokenRejection::Invalid));
        // Even under the subject-token header, claims without a subject-token `typ` claim are refused.
        let unclaimed =
            key.sign_jws_as(JwsKind::SubjectToken, &serde_json::json!({"sub": "kim", "exp": i64::MAX}));
        assert_eq!(verify_signed(&jwks, &unclaimed, now), Err(TokenRejection::Invalid));
        assert_eq!(verify_signed(&jwks, "a.b.c", now), Err(TokenRejection::Invalid));
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
            assert_eq!(verify_signed(&jwks, &other, now), Err(TokenRejection::Invalid), "{typ}");
        }
        // The header alone does not make a token either: the payload's typ claim is still checked.
        let mut claims: serde_json::Value = serde_json::from_slice(&claims).expect("json");
        claims["typ"] = "something-else".into();
        let no_claim = key.sign_jws_as(JwsKind::SubjectToken, &claims);
        assert_eq!(verify_signed(&jwks, &no_claim, now), Err(TokenRejection::Invalid));
    }
}
