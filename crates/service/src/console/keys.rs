//! The console's "Audit and keys" page: the ledger's verification (on demand), the API keys (listed a page
//! at a time, made and revoked from the console), and the signing keys with the JWKS they publish.
//!
//! A key made from the console gets only scopes its maker's key holds (an `admin` key holds all), so the
//! console never hands out more than the person signed in has.

use consentry_core::Timestamp;
use serde::Serialize;

use super::ConsoleCaller;
use crate::audit::{self, AuditOut};
use crate::auth::Scope;
use crate::error::{Error, Result};
use crate::keys::{self, CreateKey, CreatedKey, KeyInfo};
use crate::state::Services;

/// API keys shown per page.
pub const KEYS_PER_PAGE: usize = 25;

/// A signing key as the console shows it (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub created_at: Timestamp,
    pub current: bool,
}

/// What the page shows.
#[derive(Debug)]
pub struct KeysPage {
    /// The active keys of this page (oldest first), and whether more follow.
    pub keys: Vec<KeyInfo>,
    pub page: usize,
    pub more: bool,
    pub signing: Vec<SigningKeyInfo>,
    /// The JWKS `/.well-known/jwks.json` serves, pretty-printed.
    pub jwks: String,
    /// The ledger's verification, when asked for.
    pub verification: Option<AuditOut>,
    /// The scopes the signed-in key may give a new key.
    pub grantable: Vec<Scope>,
}

/// The page `page` (from 0) of keys; `verify` runs the ledger's verification too (it reads the whole
/// ledger, so only on demand).
pub async fn page(
    services: &Services,
    caller: &ConsoleCaller,
    page: usize,
    verify: bool,
) -> Result<KeysPage> {
    let all = keys::list(services.store.as_ref()).await?.keys;
    let start = page.saturating_mul(KEYS_PER_PAGE).min(all.len());
    let more = all.len() > start + KEYS_PER_PAGE;
    let keys = all.into_iter().skip(start).take(KEYS_PER_PAGE).collect();
    let signing = services
        .store
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| SigningKeyInfo { kid: k.kid, created_at: k.created_at, current: k.current })
        .collect();
    let jwks = serde_json::to_string_pretty(services.signing.jwks()).map_err(|_| Error::Internal)?;
    let verification = if verify { Some(audit::verify(services).await?) } else { None };
    let grantable = Scope::ALL.into_iter().filter(|s| caller.holds(*s)).collect();
    Ok(KeysPage { keys, page, more, signing, jwks, verification, grantable })
}

/// Makes a key named `name` with `scopes`, each of which the caller's key must hold; the secret is in the
/// answer, once. Needs `console:write`.
pub async fn create(
    services: &Services,
    caller: &ConsoleCaller,
    name: &str,
    scopes: Vec<String>,
) -> Result<CreatedKey> {
    caller.require_write()?;
    let request = CreateKey { name: name.to_owned(), scopes };
    for scope in request.validate()? {
        if !caller.holds(scope) {
            return Err(Error::validation("scopes", format!("your key does not hold {:?}", scope.as_str())));
        }
    }
    keys::create(services.store.as_ref(), request, &caller.actor()).await
}

/// Revokes the key `id` (its console sessions end with it). Needs `console:write`.
pub async fn revoke(services: &Services, caller: &ConsoleCaller, id: &str) -> Result<()> {
    caller.require_write()?;
    keys::revoke(services, id, &caller.actor()).await
}
