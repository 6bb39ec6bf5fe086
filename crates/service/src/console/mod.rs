//! The operator console's use cases: signing in with an API key that holds a console scope, the session
//! that follows, and what its pages show ([`overview`]), from counters kept by a worker ([`rollups`]).
//!
//! A key is exchanged once for a session: a random token the browser keeps in a cookie, stored only as
//! HMAC-SHA256 under the key store's pepper, with the key it was opened with. A session ends when it was
//! idle for [`IDLE`], when its person signs out, or when its key is revoked (every node reads the same
//! row). `console:read` sees every page; acting needs `console:write` (or `admin`). What a session does is
//! recorded with the key's name as actor ([`ConsoleCaller::actor`]).

pub mod catalogue;
pub mod checks;
pub mod deliveries;
pub mod keys;
pub mod overview;
pub mod person;
pub mod requests;
pub mod rollups;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_core::Timestamp;
use consentry_store::random_bytes;

use crate::auth::{Caller, Scope};
use crate::error::{Error, Result};
use crate::state::Services;

/// How long a console session lasts without being used: eight hours, a working day.
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// The prefix of console session tokens (never an API credential: `authenticate` does not know it).
const SESSION_PREFIX: &str = "ccs_";

/// Who is signed in to the console, and whether they may act.
#[derive(Debug, Clone)]
pub struct ConsoleCaller {
    pub key_id: String,
    pub key_name: String,
    /// Holds `console:write` (or `admin`).
    pub can_act: bool,
    caller: Caller,
}

impl ConsoleCaller {
    fn from_caller(caller: Caller) -> Option<Self> {
        caller.has(Scope::ConsoleRead).then(|| Self {
            key_id: caller.key_id.clone(),
            key_name: caller.key_name.clone(),
            can_act: caller.has(Scope::ConsoleWrite),
            caller,
        })
    }

    /// 403 unless the session may act (`console:write`).
    pub fn require_write(&self) -> Result<()> {
        if self.can_act { Ok(()) } else { Err(Error::Forbidden(Scope::ConsoleWrite.as_str())) }
    }

    /// Whether the session's key holds `scope` (a key made from the console gets only scopes its maker
    /// holds).
    pub fn holds(&self, scope: Scope) -> bool {
        self.caller.has(scope)
    }

    /// The actor recorded for what this session does: the key's name.
    pub fn actor(&self) -> String {
        format!("console:{}", self.key_name)
    }
}

/// A session opened by [`sign_in`]: the token for the cookie (shown to no one else), and who it is.
pub struct SignedIn {
    pub token: String,
    pub caller: ConsoleCaller,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("caller", &self.caller).finish_non_exhaustive()
    }
}

/// Exchanges an API key for a console session: 401 for an unknown or revoked key (or anything that is not
/// an API key), 403 for a key without a console scope.
pub async fn sign_in(services: &Services, secret: &str) -> Result<SignedIn> {
    let secret = secret.trim();
    if secret.is_empty() || secret.len() > 512 || secret.starts_with(SESSION_PREFIX) {
        return Err(Error::Unauthorized);
    }
    let caller = services.keys.authenticate(services.store.as_ref(), secret).await?;
    let caller =
        ConsoleCaller::from_caller((*caller).clone()).ok_or(Error::Forbidden(Scope::ConsoleRead.as_str()))?;
    let token = format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let hash = services.keys.pepper().hash(&token);
    services.store.create_console_session(&hash, &caller.key_id, Timestamp::now()).await?;
    tracing::info!(key_id = %caller.key_id, "console: signed in");
    Ok(SignedIn { token, caller })
}

/// The session of `token`, marked used now: 401 when it is unknown, idle past [`IDLE`], signed out, or its
/// key was revoked or no longer holds a console scope.
pub async fn session(services: &Services, token: &str) -> Result<ConsoleCaller> {
    if !token.starts_with(SESSION_PREFIX) || token.len() > 128 {
        return Err(Error::Unauthorized);
    }
    let now = Timestamp::now();
    let idle_since = now.plus_micros(-i64::try_from(IDLE.as_micros()).unwrap_or(i64::MAX));
    let hash = services.keys.pepper().hash(token);
    let key = services.store.console_session(&hash, idle_since, now).await?.ok_or(Error::Unauthorized)?;
    ConsoleCaller::from_caller(Caller::from_key(&key)).ok_or(Error::Unauthorized)
}

/// Ends the session of `token` (on every node).
pub async fn sign_out(services: &Services, caller: &ConsoleCaller, token: &str) -> Result<()> {
    services.store.end_console_session(&services.keys.pepper().hash(token)).await?;
    tracing::info!(key_id = %caller.key_id, "console: signed out");
    Ok(())
}
