//! API keys (admin only): create, list and revoke. A key's secret is shown once, at creation.
//!
//! Keys live in the store alone, so the CLI manages those of a store no node serves with the same
//! functions a node runs; only revocation on a node also evicts the key from that node's cache at once.

use consentry_core::Timestamp;
use consentry_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{KeyPepper, Scope, make_key};
use crate::error::{Error, Result};
use crate::state::Services;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label for people, 1 to 64 characters of letters, digits, space, `_`, `.` and `-`.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9 _.-]*[A-Za-z0-9_.-][A-Za-z0-9 _.-]*$")]
    pub name: String,
    /// The scopes the key holds, at least one.
    #[schema(value_type = Vec<crate::auth::Scope>, min_items = 1)]
    pub scopes: Vec<String>,
}

impl CreateKey {
    /// Checks the name and the scopes; returns the scopes, each once. [`create`] checks too; the CLI calls
    /// this first so that a wrong request touches no store.
    pub fn validate(&self) -> Result<Vec<Scope>> {
        let name = &self.name;
        let name_ok = !name.trim().is_empty()
            && name.chars().count() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
        if !name_ok {
            return Err(Error::validation(
                "name",
                "must be 1 to 64 characters of letters, digits, space, `_`, `.` and `-`",
            ));
        }
        if self.scopes.is_empty() {
            return Err(Error::validation("scopes", "name at least one scope"));
        }
        let mut parsed = Vec::with_capacity(self.scopes.len());
        for (i, s) in self.scopes.iter().enumerate() {
            let scope = Scope::parse(s).ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                Error::validation(
                    format!("scopes[{i}]"),
                    format!("unknown scope {s:?}; known: {}", known.join(", ")),
                )
            })?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        Ok(parsed)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The secret, shown only in this response. Send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// Creates a key in `store`, hashed under the store's own pepper (read from its key store, so the CLI and
/// every node hash alike); `by` names who asked (logged).
pub async fn create(store: &dyn Store, request: CreateKey, by: &str) -> Result<CreatedKey> {
    let scopes = request.validate()?;
    let pepper = KeyPepper::load(store).await?;
    let key = make_key(&pepper, request.name.trim(), &scopes, None)?;
    store.insert_api_key(key.record.clone()).await?;
    tracing::info!(key_id = %key.record.id, by = %by, "API key created");
    let r = key.record;
    Ok(CreatedKey {
        id: r.id,
        name: r.name,
        scopes: r.scopes,
        key: key.secret,
        created_at: r.created_at.to_string(),
    })
}

/// The active keys, never their secrets. Only the store can fail, so its error is kept whole (the CLI prints
/// it).
pub async fn list(store: &dyn Store) -> consentry_store::Result<KeyList> {
    let keys = store
        .api_keys()
        .await?
        .into_iter()
        .map(|k| KeyInfo { id: k.id, name: k.name, scopes: k.scopes, created_at: k.created_at.to_string() })
        .collect();
    Ok(KeyList { keys })
}

/// Revokes a key on a running node: in the store and, at once, in this node's cache (other nodes' caches
/// forget it within seconds). `by` names who asked (logged).
pub async fn revoke(services: &Services, id: &str, by: &str) -> Result<()> {
    revoke_stored(services.store.as_ref(), id).await?;
    services.keys.evict(id);
    tracing::info!(key_id = %id, by = %by, "API key revoked");
    Ok(())
}

/// Revokes a key in a store no node serves (the CLI): not found when no active key has the id.
pub async fn revoke_stored(store: &dyn Store, id: &str) -> Result<()> {
    if !store.revoke_api_key(id, Timestamp::now()).await? {
        return Err(Error::NotFound("key"));
    }
    Ok(())
}
