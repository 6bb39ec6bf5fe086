//! Subject tokens' use cases: a service mints a short-lived token for one person and a preference-centre
//! link; the link is exchanged once for a session; a service or the person revokes all the person's
//! tokens ("sign out everywhere").
//!
//! Minting needs its own scope (`tokens:mint`: a token acts as the person) and is written into the
//! person's access log under the minting key's name and its stated purpose; so is a revocation, under
//! whoever made it.

use consentry_core::{SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Reader, log_mint};
use crate::auth::{
    Caller, SUBJECT_TOKEN_TTL_DEFAULT, SUBJECT_TOKEN_TTL_MAX, SUBJECT_TOKEN_TTL_MIN, SubjectCaller, TokenUse,
    mint_subject_token, revocation_cutoff,
};
use crate::error::{Error, Result};
use crate::state::Services;

/// The route of a revocation, as the access log shows it when a service or the person's API token made it.
pub const REVOKE_ROUTE: &str = "DELETE /v1/subjects/{subject}/tokens";

/// How long a revocation is kept after the longest lifetime a token it refuses could have: room for nodes'
/// clocks to differ.
const REVOCATION_MARGIN_SECS: i64 = 60;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    /// Lifetime in seconds, 60 to 2592000 (30 days); default 3600.
    #[serde(default, deserialize_with = "crate::whole::optional")]
    #[schema(minimum = 60, maximum = 2592000)]
    pub ttl: Option<u64>,
    /// The language the preference centre opens in, a BCP 47 tag such as `de` or `en-GB`.
    #[serde(default)]
    #[schema(min_length = 2, max_length = 35, pattern = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    pub locale: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MintedTokenOut {
    /// A Bearer credential for this subject's own `/v1/subjects/{subject}/...` routes. Shown once; never
    /// put it in a URL.
    pub token: String,
    /// The preference-centre link for the person. It carries a token of its own, which only opens the
    /// preference centre, once (it is exchanged for a session there), and is no API credential.
    pub url: String,
    /// When the token and the link expire.
    pub expires_at: String,
}

/// Mints a subject token for `subject` and a preference-centre link with a link token of its own (same
/// lifetime), after checking the lifetime and the language asked for; the minting is logged in the
/// subject's access log under `minter`'s name with the purpose it `stated` (`X-Consentry-Purpose`).
pub async fn mint(
    services: &Services,
    minter: &Caller,
    subject: &SubjectId,
    request: MintToken,
    stated: Option<&str>,
) -> Result<MintedTokenOut> {
    let ttl = request.ttl.unwrap_or(SUBJECT_TOKEN_TTL_DEFAULT);
    if !(SUBJECT_TOKEN_TTL_MIN..=SUBJECT_TOKEN_TTL_MAX).contains(&ttl) {
        return Err(Error::validation(
            "/ttl",
            format!("must be between {SUBJECT_TOKEN_TTL_MIN} and {SUBJECT_TOKEN_TTL_MAX} seconds"),
        ));
    }
    if let Some(locale) = &request.locale
        && !is_language_tag(locale)
    {
        return Err(Error::validation("/locale", "must be a language tag such as `de` or `en-GB`"));
    }
    let minted = mint_pair(services, subject, ttl, request.locale).await?;
    log_mint(&services.access, subject, minter, stated);
    Ok(minted)
}

/// An API token for `subject` and a preference-centre link with a link token of its own, both living
/// `ttl` seconds; not logged (the caller says who minted them).
pub(crate) async fn mint_pair(
    services: &Services,
    subject: &SubjectId,
    ttl: u64,
    locale: Option<String>,
) -> Result<MintedTokenOut> {
    let now = Timestamp::now();
    let expires = now.plus_seconds(i64::try_from(ttl).unwrap_or(i64::MAX));
    let api = mint_subject_token(services, subject, TokenUse::Api, expires, locale.clone(), now).await?;
    let link = mint_subject_token(services, subject, TokenUse::Link, expires, locale, now).await?;
    let url = format!("{}/preferences?token={}", services.config.public_url(), link.token);
    Ok(MintedTokenOut { token: api.token, url, expires_at: api.expires_at.to_string() })
}

/// Revokes every subject token of `subject` issued up to now (API tokens, links, preference-centre
/// sessions), on every node as soon as it returns; logged in the subject's access log as `reader` says.
/// Refused by verification are the tokens issued in the cutoff's second or before; see
/// [`crate::auth::subject`] for how cutoffs and tokens minted in one second keep their order.
pub async fn revoke(services: &Services, subject: &SubjectId, reader: Reader<'_>) -> Result<()> {
    let now = Timestamp::now();
    let cutoff = revocation_cutoff(services.store.subject_tokens_revoked_at(subject).await?, now);
    // A token issued before a revocation lives at most the longest lifetime after it: older revocations
    // refuse nothing that could still verify.
    let longest = i64::try_from(SUBJECT_TOKEN_TTL_MAX).unwrap_or(i64::MAX) + REVOCATION_MARGIN_SECS;
    services.store.revoke_subject_tokens(subject, cutoff, now.plus_seconds(-longest)).await?;
    reader.log(&services.access, subject);
    Ok(())
}

/// What opening a preference-centre link led to.
#[derive(Debug)]
pub enum Exchanged {
    /// A fresh session token for the link's person (its own `jti`, expiring with the link); the link is
    /// spent.
    Session { token: String, expires_at: Timestamp },
    /// The link was exchanged before (on any node): it opens nothing a second time.
    Spent,
}

/// Exchanges a verified link (`link`, of either use: links minted before link tokens carried an API token)
/// for a session: spends its `jti` in the shared store (exactly one exchange wins across nodes) and
/// mints an API token for the session that expires when the link would have.
pub async fn exchange_link(services: &Services, link: &SubjectCaller) -> Result<Exchanged> {
    let now = Timestamp::now();
    if !spend_link(services, link, now).await? {
        return Ok(Exchanged::Spent);
    }
    let session =
        mint_subject_token(services, &link.subject, TokenUse::Api, link.expires_at, link.locale.clone(), now)
            .await?;
    Ok(Exchanged::Session { token: session.token, expires_at: session.expires_at })
}

/// Spends `link` without opening a session (the browser already holds one for the same person); returns
/// whether this call spent it.
pub async fn spend_link(services: &Services, link: &SubjectCaller, now: Timestamp) -> Result<bool> {
    Ok(services.store.spend_link(&link.jti, link.expires_at, now).await?)
}

/// Whether `tag` looks like a BCP 47 language tag (letters, digits and hyphens, starting with 2-3 letters).
pub(crate) fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && tag.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::is_language_tag;

    #[test]
    fn language_tags() {
        for ok in ["de", "en", "en-GB", "zh-Hant-TW", "gsw"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "d", "deutsch", "en_GB", "en-", "<b>", "en-toolongpart"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
