//! Credentials on PostgreSQL: API keys (their secrets only as keyed hashes), and in `consentry_keystore`
//! the pepper that keys those hashes and the signing keys, rotated under a lock so that two nodes rotating at once end with one current key.

use consentry_core::Timestamp;
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use super::error::{db, is_unique_violation};
use super::locks::{self, SIGNING_KEY_LOCK};
use super::rows;
use crate::common::json_list;
use crate::error::{Result, StoreError};
use crate::model::{ApiKey, SigningKeyRecord};
use crate::sql::API_KEY_COLUMNS;

pub(super) async fn insert_api_key(conn: &mut PgConnection, key: &ApiKey) -> Result<()> {
    let result = sqlx::query(
        "INSERT INTO api_keys (id, name, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(json_list(&key.scopes))
    .bind(&key.secret_hash[..])
    .bind(key.created_at.micros())
    .bind(key.revoked_at.map(Timestamp::micros))
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(StoreError::Conflict("an active API key with this name already exists".into()))
        }
        Err(e) => Err(db(e)),
    }
}

/// Active keys, oldest first.
pub(super) async fn api_keys(pool: &PgPool) -> Result<Vec<ApiKey>> {
    let found = sqlx::query(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::api_key).collect()
}

pub(super) async fn api_key_by_hash(pool: &PgPool, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
    let row = sqlx::query(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(&hash[..])
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(rows::api_key).transpose()
}

pub(super) async fn rehash_api_key(pool: &PgPool, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE api_keys SET secret_hash = $3 WHERE id = $1 AND secret_hash = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(&old[..])
    .bind(&new[..])
    .execute(pool)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(n > 0)
}

/// The key store's pepper, made on first call: a fresh one is offered and the stored one read back.
pub(super) async fn key_pepper(pool: &PgPool) -> Result<[u8; 32]> {
    let fresh: [u8; 32] = crate::random_bytes()?;
    sqlx::query(
        "INSERT INTO consentry_keystore.key_pepper (id, pepper) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&fresh[..])
    .execute(pool)
    .await
    .map_err(db)?;
    let pepper: Vec<u8> = sqlx::query_scalar("SELECT pepper FROM consentry_keystore.key_pepper WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    pepper.try_into().map_err(|_| StoreError::Backend("the key pepper is not 32 bytes".into()))
}

pub(super) async fn revoke_api_key(pool: &PgPool, id: &str, at: Timestamp) -> Result<bool> {
    let n = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(at.micros())
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

/// `kid, secret, public, created_at, current`.
type SigningKeyRow = (String, Vec<u8>, Vec<u8>, i64, bool);

/// Oldest first, rotated-out keys included.
pub(super) async fn signing_keys(pool: &PgPool) -> Result<Vec<SigningKeyRecord>> {
    let found: Vec<SigningKeyRow> = sqlx::query_as(
        "SELECT kid, secret, public, created_at, current FROM consentry_keystore.signing_keys
         ORDER BY created_at, kid",
    )
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found
        .into_iter()
        .map(|(kid, secret, public, created_at, current)| {
            let bad = || rows::corrupt("signing key");
            Ok(SigningKeyRecord {
                kid,
                secret: secret.try_into().map_err(|_| bad())?,
                public: public.try_into().map_err(|_| bad())?,
                created_at: Timestamp::from_micros(created_at),
                current,
            })
        })
        .collect()
}

/// Stores `key` as the only current one, in one transaction.
pub(super) async fn add_signing_key(pool: &PgPool, key: &SigningKeyRecord) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    // Two nodes rotating at once must not both end with a current key.
    locks::lock(&mut tx, SIGNING_KEY_LOCK).await?;
    sqlx::query("UPDATE consentry_keystore.signing_keys SET current = FALSE WHERE current")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let inserted = sqlx::query(
        "INSERT INTO consentry_keystore.signing_keys (kid, secret, public, created_at, current)
         VALUES ($1, $2, $3, $4, TRUE)",
    )
    .bind(&key.kid)
    .bind(&key.secret[..])
    .bind(&key.public[..])
    .bind(key.created_at.micros())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("a signing key with this kid exists".into()));
        }
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)
}
