//! Credentials on the embedded store: API keys (their secrets only as keyed hashes), and in the key store
//! the signing keys and the pepper that keys those hashes.

use consentry_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::db::{backend, is_constraint_violation};
use super::rows;
use crate::common::json_list;
use crate::error::{Result, StoreError};
use crate::model::{ApiKey, SigningKeyRecord};
use crate::sql::API_KEY_COLUMNS;

pub(super) fn insert_api_key(conn: &Connection, key: &ApiKey) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO api_keys (id, name, scopes, secret_hash, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.name,
            json_list(&key.scopes),
            &key.secret_hash[..],
            key.created_at.micros(),
            key.revoked_at.map(Timestamp::micros)
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_constraint_violation(&e) => {
            Err(StoreError::Conflict("an active API key with this name already exists".into()))
        }
        Err(e) => Err(backend(e)),
    }
}

/// Active keys, oldest first.
pub(super) fn api_keys(conn: &Connection) -> rusqlite::Result<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
    ))?;
    stmt.query_map([], rows::api_key)?.collect()
}

pub(super) fn api_key_by_hash(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Option<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL"
    ))?
    .query_row([&hash[..]], rows::api_key)
    .optional()
}

pub(super) fn rehash_api_key(conn: &Connection, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE api_keys SET secret_hash = ?3 WHERE id = ?1 AND secret_hash = ?2 AND revoked_at IS NULL",
            params![id, &old[..], &new[..]],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

/// The key store's pepper, made on first call: a fresh one is offered and the stored one read back.
pub(super) fn key_pepper(conn: &Connection, fresh: &[u8; 32]) -> Result<[u8; 32]> {
    conn.execute(
        "INSERT INTO ks.key_pepper (id, pepper) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
        [&fresh[..]],
    )
    .map_err(backend)?;
    let pepper: Vec<u8> =
        conn.query_row("SELECT pepper FROM ks.key_pepper WHERE id = 1", [], |r| r.get(0)).map_err(backend)?;
    pepper.try_into().map_err(|_| StoreError::Backend("the key pepper is not 32 bytes".into()))
}

pub(super) fn revoke_api_key(conn: &Connection, id: &str, at: Timestamp) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at.micros()],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

/// Oldest first, rotated-out keys included.
pub(super) fn signing_keys(conn: &Connection) -> rusqlite::Result<Vec<SigningKeyRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, secret, public, created_at, current FROM ks.signing_keys ORDER BY created_at, kid",
    )?;
    stmt.query_map([], rows::signing_key)?.collect()
}

/// Stores `key` as the only current one, in one transaction.
pub(super) fn add_signing_key(conn: &mut Connection, key: &SigningKeyRecord) -> Result<()> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute("UPDATE ks.signing_keys SET current = 0 WHERE current = 1", []).map_err(backend)?;
    let inserted = tx.execute(
        "INSERT INTO ks.signing_keys (kid, secret, public, created_at, current) VALUES (?1, ?2, ?3, ?4, 1)",
        params![key.kid, &key.secret[..], &key.public[..], key.created_at.micros()],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint_violation(&e) => {
            return Err(StoreError::Conflict("a signing key with this kid exists".into()));
        }
        Err(e) => return Err(backend(e)),
    }
    tx.commit().map_err(backend)
}
