//! Verifications on the embedded store: rows in `consentry.db`. Every write runs on the writer connection,
//! one transaction each, so the limits' count and the insert, and an attempt's check and count, are atomic.

use async_trait::async_trait;
use consentry_core::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};

use super::db::backend;
use super::store::SqliteStore;
use crate::error::{Result, StoreError};
use crate::verifications::{Attempt, Attempted, NewVerification, StartLimits, Started, VerificationStore};

/// How many starts by `column` = `value` since `since`, and when the oldest of them was made.
fn counted(tx: &Transaction<'_>, column: &str, value: &[u8], since: Timestamp) -> Result<(u32, Option<i64>)> {
    let sql = format!(
        "SELECT COUNT(*), MIN(created_at) FROM verifications WHERE {column} = ?1 AND created_at >= ?2"
    );
    tx.query_row(&sql, params![value, since.micros()], |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, Option<i64>>(1)?))
    })
    .map_err(backend)
}

fn hash(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| StoreError::Backend("a verification hash is not 32 bytes".into()))
}

#[async_trait]
impl VerificationStore for SqliteStore {
    async fn start_verification(&self, v: NewVerification, limits: StartLimits) -> Result<Started> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("DELETE FROM verifications WHERE created_at < ?1", [limits.day_since.micros()])
                .map_err(backend)?;
            // Every limit is looked at: the answer names the one that eases last.
            let mut reached = Vec::new();
            let (n, oldest) = counted(&tx, "identifier_index", &v.identifier_index, limits.since)?;
            if n >= limits.per_identifier {
                let until = StartLimits::eases(oldest, limits.since, v.created_at);
                reached.push(Started::IdentifierLimited { until });
            }
            let (n, oldest) = counted(&tx, "identifier_index", &v.identifier_index, limits.day_since)?;
            if n >= limits.per_identifier_per_day {
                let until = StartLimits::eases(oldest, limits.day_since, v.created_at);
                reached.push(Started::IdentifierLimited { until });
            }
            let (n, oldest) = counted(&tx, "client_index", &v.client_index, limits.since)?;
            if n >= limits.per_client {
                let until = StartLimits::eases(oldest, limits.since, v.created_at);
                reached.push(Started::ClientLimited { until });
            }
            if !reached.is_empty() {
                return Ok(Started::refusal(reached));
            }
            tx.execute(
                "INSERT INTO verifications
                 (id, identifier_index, client_index, code_hash, attempts, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
                params![
                    v.id,
                    v.identifier_index.as_slice(),
                    v.client_index.as_slice(),
                    v.code_hash.as_slice(),
                    v.created_at.micros(),
                    v.expires_at.micros()
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Started::Stored)
        })
        .await
    }

    async fn attempt_verification(&self, id: &str, now: Timestamp, max_attempts: u32) -> Result<Attempted> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let counted = tx
                .execute(
                    "UPDATE verifications SET attempts = attempts + 1
                     WHERE id = ?1 AND used_at IS NULL AND expires_at > ?2 AND attempts < ?3",
                    params![id, now.micros(), max_attempts],
                )
                .map_err(backend)?;
            let row = tx
                .query_row(
                    "SELECT identifier_index, code_hash, attempts FROM verifications WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, u32>(2)?)),
                )
                .optional()
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(match (row, counted) {
                (None, _) => Attempted::Missing,
                (Some(_), 0) => Attempted::Ended,
                (Some((identifier, code, attempts)), _) => Attempted::Live(Attempt {
                    identifier_index: hash(identifier)?,
                    code_hash: hash(code)?,
                    attempts,
                }),
            })
        })
        .await
    }

    async fn finish_verification(&self, id: &str, now: Timestamp) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let done = conn
                .execute(
                    "UPDATE verifications SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
                    params![id, now.micros()],
                )
                .map_err(backend)?;
            Ok(done == 1)
        })
        .await
    }
}
