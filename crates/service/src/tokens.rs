//! Subject tokens for the preference centre: a service mints a short-lived token for one person, and a
//! link that carries it. Minting needs its own scope (`tokens:mint`: a token acts as the person) and is
//! written into the person's access log under the minting key's name and its stated purpose.

use consentry_core::{SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::log_mint;
use crate::auth::{
    Caller, SUBJECT_TOKEN_TTL_DEFAULT, SUBJECT_TOKEN_TTL_MAX, SUBJECT_TOKEN_TTL_MIN, mint_subject_token,
};
use crate::error::{Error, Result};
use crate::state::Services;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    /// Lifetime in seconds, 60 to 2592000 (30 days); default 3600.
    #[serde(default)]
    pub ttl: Option<u64>,
    /// The language the preference centre opens in, a BCP 47 tag such as `de` or `en-GB`.
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MintedTokenOut {
    /// A Bearer credential for this subject's own `/v1/subjects/{subject}/...` routes. Shown once.
    pub token: String,
    /// The preference-centre link carrying the token.
    pub url: String,
    pub expires_at: String,
}

/// Mints a subject token for `subject` and the preference-centre link that carries it, after checking the
/// lifetime and the language asked for; the minting is logged in the subject's access log under
/// `minter`'s name with the purpose it `stated` (`X-Consentry-Purpose`).
pub fn mint(
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
    let minted = mint_subject_token(services, subject, ttl, request.locale, Timestamp::now())?;
    log_mint(&services.access, subject, minter, stated);
    let url = format!("{}/preferences?token={}", services.config.public_url(), minted.token);
    Ok(MintedTokenOut { token: minted.token, url, expires_at: minted.expires_at.to_string() })
}

/// Whether `tag` looks like a BCP 47 language tag (letters, digits and hyphens, starting with 2-3 letters).
fn is_language_tag(tag: &str) -> bool {
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
