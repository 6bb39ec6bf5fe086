//! The console's "Audit and keys" page: the ledger's verification (on demand), the transparency log's
//! latest signed checkpoints (a page at a time, newest first), the API keys (listed a page at a time, made
//! and revoked from the console), and the signing keys with the JWKS they publish.
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
use consentry_store::TlogCheckpoint;

/// API keys shown per page.
pub const KEYS_PER_PAGE: usize = 25;

/// Signed tree checkpoints shown per page.
pub const CHECKPOINTS_PER_PAGE: u32 = 10;

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
    /// The transparency log's latest signed checkpoints (before `?before=`), largest tree first, and the
    /// tree size to list older ones before, when there are more.
    pub checkpoints: Vec<TlogCheckpoint>,
    pub older: Option<u64>,
}

/// The page `page` (from 0) of keys, and the latest checkpoints of trees smaller than `before` (the latest
/// of all for none); `verify` runs the ledger's verification too (it reads the whole ledger, so only on
/// demand).
pub async fn page(
    services: &Services,
    caller: &ConsoleCaller,
    page: usize,
    before: Option<u64>,
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
    let mut checkpoints = services.store.recent_tlog_checkpoints(before, CHECKPOINTS_PER_PAGE + 1).await?;
    let older = (checkpoints.len() > CHECKPOINTS_PER_PAGE as usize).then(|| {
        checkpoints.truncate(CHECKPOINTS_PER_PAGE as usize);
        checkpoints.last().map_or(0, |c| c.size)
    });
    Ok(KeysPage { keys, page, more, signing, jwks, verification, grantable, checkpoints, older })
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
