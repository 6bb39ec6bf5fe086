//! Verifications on PostgreSQL. A start takes a transaction-scoped advisory lock, so that the limits'
//! count and the insert are atomic across nodes; an attempt is counted by one conditional update.

use async_trait::async_trait;
use consentry_core::Timestamp;
use sqlx::{PgConnection, Row};

use super::error::db;
use super::locks::{VERIFICATION_LOCK, lock};
use super::store::PostgresStore;
use crate::error::{Result, StoreError};
use crate::verifications::{Attempt, Attempted, NewVerification, StartLimits, Started, VerificationStore};

/// How many starts by `column` = `value` since `since`, and when the oldest of them was made.
async fn counted(
    conn: &mut PgConnection,
    column: &str,
    value: &[u8],
    since: Timestamp,
) -> Result<(i64, Option<i64>)> {
    let sql = format!(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM verifications WHERE {column} = $1 AND created_at >= $2"
    );
    let row = sqlx::query(&sql).bind(value).bind(since.micros()).fetch_one(conn).await.map_err(db)?;
    Ok((row.try_get("n").map_err(db)?, row.try_get("oldest").map_err(db)?))
}

fn hash(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| StoreError::Backend("a verification hash is not 32 bytes".into()))
}

#[async_trait]
impl VerificationStore for PostgresStore {
    async fn start_verification(&self, v: NewVerification, limits: StartLimits) -> Result<Started> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock(&mut tx, VERIFICATION_LOCK).await?;
        sqlx::query("DELETE FROM verifications WHERE created_at < $1")
            .bind(limits.day_since.micros())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Every limit is looked at: the answer names the one that eases last.
        let mut reached = Vec::new();
        let (n, oldest) = counted(&mut tx, "identifier_index", &v.identifier_index, limits.since).await?;
        if n >= i64::from(limits.per_identifier) {
            let until = StartLimits::eases(oldest, limits.since, v.created_at);
            reached.push(Started::IdentifierLimited { until });
        }
        let (n, oldest) = counted(&mut tx, "identifier_index", &v.identifier_index, limits.day_since).await?;
        if n >= i64::from(limits.per_identifier_per_day) {
            let until = StartLimits::eases(oldest, limits.day_since, v.created_at);
            reached.push(Started::IdentifierLimited { until });
        }
        let (n, oldest) = counted(&mut tx, "client_index", &v.client_index, limits.since).await?;
        if n >= i64::from(limits.per_client) {
            let until = StartLimits::eases(oldest, limits.since, v.created_at);
            reached.push(Started::ClientLimited { until });
        }
        if !reached.is_empty() {
            return Ok(Started::refusal(reached));
        }
        sqlx::query(
            "INSERT INTO verifications
             (id, identifier_index, client_index, code_hash, attempts, created_at, expires_at)
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
        )
        .bind(&v.id)
        .bind(v.identifier_index.as_slice())
        .bind(v.client_index.as_slice())
        .bind(v.code_hash.as_slice())
        .bind(v.created_at.micros())
        .bind(v.expires_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Started::Stored)
    }

    async fn attempt_verification(&self, id: &str, now: Timestamp, max_attempts: u32) -> Result<Attempted> {
        let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let row = sqlx::query(
            "UPDATE verifications SET attempts = attempts + 1
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3
             RETURNING identifier_index, code_hash, attempts",
        )
        .bind(id)
        .bind(now.micros())
        .bind(max)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = row {
            let attempts: i32 = row.try_get("attempts").map_err(db)?;
            return Ok(Attempted::Live(Attempt {
                identifier_index: hash(row.try_get("identifier_index").map_err(db)?)?,
                code_hash: hash(row.try_get("code_hash").map_err(db)?)?,
                attempts: u32::try_from(attempts).unwrap_or(0),
            }));
        }
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM verifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(if exists.is_some() { Attempted::Ended } else { Attempted::Missing })
    }

    async fn finish_verification(&self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query("UPDATE verifications SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now.micros())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(done == 1)
    }
}
