//! The console's sessions and rollups on PostgreSQL. Every node reads the same rows, so signing out or
//! revoking a key ends a session on all of them at once; the cursor's compare-and-set keeps nodes from
//! counting an event twice.

use async_trait::async_trait;
use consentry_core::Timestamp;
use sqlx::Row;

use super::error::db;
use super::rows;
use super::store::PostgresStore;
use crate::console::{
    AttemptBucket, ConsoleStore, DAY_MICROS, PurposeChecks, RequestDay, RollupRow, request_days_of,
};
use crate::error::Result;
use crate::model::ApiKey;
use crate::sql::API_KEY_COLUMNS;

/// People whose current state rests on one notice version (see [`ConsoleStore::notice_consents`]).
const NOTICE_CONSENTS_PG: &str =
    "SELECT COUNT(DISTINCT s.pseudonym) FROM events e JOIN consent_state s ON s.seq = e.seq AND s.purpose <> ''
     WHERE e.notice = $1 AND e.notice_version = $2 AND e.action IN ('grant', 'renew')
       AND (e.expires_at IS NULL OR e.expires_at > $3)";

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl ConsoleStore for PostgresStore {
    async fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        key_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, key_id, created_at, last_seen) VALUES ($1, $2, $3, $3)",
        )
        .bind(&token_hash[..])
        .bind(key_id)
        .bind(now.micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn console_session(
        &self,
        token_hash: &[u8; 32],
        idle_since: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ApiKey>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM console_sessions WHERE last_seen < $1")
            .bind(idle_since.micros())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let key_id: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM console_sessions WHERE token_hash = $1")
                .bind(&token_hash[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let key = match key_id {
            None => None,
            Some(id) => {
                let row = sqlx::query(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                row.as_ref().map(rows::api_key).transpose()?
            }
        };
        let done = if key.is_some() {
            sqlx::query("UPDATE console_sessions SET last_seen = $2 WHERE token_hash = $1")
                .bind(&token_hash[..])
                .bind(now.micros())
                .execute(&mut *tx)
                .await
        } else {
            // The key was revoked: its session ends here too.
            sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
                .bind(&token_hash[..])
                .execute(&mut *tx)
                .await
        };
        done.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(key)
    }

    async fn end_console_session(&self, token_hash: &[u8; 32]) -> Result<bool> {
        let n = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(&token_hash[..])
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn rollup_cursor(&self) -> Result<u64> {
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM console_rollup_cursor WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    async fn add_rollups(&self, from: u64, to: u64, rows: Vec<RollupRow>) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row lock this update takes orders concurrent folds: the second sees the moved cursor.
        let moved = sqlx::query("UPDATE console_rollup_cursor SET seq = $2 WHERE id = 1 AND seq = $1")
            .bind(signed(from))
            .bind(signed(to))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        if !rows.is_empty() {
            let days: Vec<i64> = rows.iter().map(|r| r.day).collect();
            let purposes: Vec<&str> = rows.iter().map(|r| r.purpose.as_str()).collect();
            let metrics: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
            let counts: Vec<i64> = rows.iter().map(|r| signed(r.count)).collect();
            sqlx::query(
                "INSERT INTO console_rollups (day, purpose, metric, count)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[])
                 ON CONFLICT (day, purpose, metric) DO UPDATE SET count = console_rollups.count + EXCLUDED.count",
            )
            .bind(days)
            .bind(purposes)
            .bind(metrics)
            .bind(counts)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn rollups(&self, from_day: i64, to_day: i64) -> Result<Vec<RollupRow>> {
        let found = sqlx::query(
            "SELECT day, purpose, metric, count FROM console_rollups WHERE day BETWEEN $1 AND $2
             ORDER BY day, purpose, metric",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found
            .iter()
            .map(|r| {
                Ok(RollupRow {
                    day: r.try_get("day").map_err(db)?,
                    purpose: r.try_get("purpose").map_err(db)?,
                    metric: r.try_get("metric").map_err(db)?,
                    count: u64::try_from(r.try_get::<i64, _>("count").map_err(db)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn add_purpose_checks(&self, rows: Vec<PurposeChecks>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let days: Vec<i64> = rows.iter().map(|r| r.day).collect();
        let purposes: Vec<&str> = rows.iter().map(|r| r.purpose.as_str()).collect();
        let checks: Vec<i64> = rows.iter().map(|r| signed(r.checks)).collect();
        let denied: Vec<i64> = rows.iter().map(|r| signed(r.denied)).collect();
        // One statement: the row locks of the upsert order nodes adding to the same day and purpose.
        sqlx::query(
            "INSERT INTO console_checks (day, purpose, checks, denied)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[])
             ON CONFLICT (day, purpose) DO UPDATE
             SET checks = console_checks.checks + EXCLUDED.checks, denied = console_checks.denied + EXCLUDED.denied",
        )
        .bind(days)
        .bind(purposes)
        .bind(checks)
        .bind(denied)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn purpose_checks(&self, from_day: i64, to_day: i64) -> Result<Vec<PurposeChecks>> {
        let found = sqlx::query(
            "SELECT day, purpose, checks, denied FROM console_checks WHERE day BETWEEN $1 AND $2
             ORDER BY day, purpose",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let n = |r: &sqlx::postgres::PgRow, c: &str| -> Result<u64> {
            Ok(u64::try_from(r.try_get::<i64, _>(c).map_err(db)?).unwrap_or(0))
        };
        found
            .iter()
            .map(|r| {
                Ok(PurposeChecks {
                    day: r.try_get("day").map_err(db)?,
                    purpose: r.try_get("purpose").map_err(db)?,
                    checks: n(r, "checks")?,
                    denied: n(r, "denied")?,
                })
            })
            .collect()
    }

    async fn request_days(&self, from_day: i64, to_day: i64) -> Result<Vec<RequestDay>> {
        let (from, to) = (from_day.saturating_mul(DAY_MICROS), (to_day + 1).saturating_mul(DAY_MICROS));
        let per_day = |sql: &'static str| async move {
            let rows: Vec<(i64, i64)> = sqlx::query_as(sql)
                .bind(from)
                .bind(to)
                .bind(DAY_MICROS)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
            Ok::<_, crate::StoreError>(
                rows.into_iter().map(|(d, n)| (d, u64::try_from(n).unwrap_or(0))).collect::<Vec<_>>(),
            )
        };
        let received = per_day(
            "SELECT received_at / $3 AS d, COUNT(*) FROM requests
             WHERE received_at >= $1 AND received_at < $2 GROUP BY d ORDER BY d",
        )
        .await?;
        let completed = per_day(
            "SELECT closed_at / $3 AS d, COUNT(*) FROM requests
             WHERE closed_at >= $1 AND closed_at < $2 AND status = 'completed' GROUP BY d ORDER BY d",
        )
        .await?;
        let overdue = per_day(
            "SELECT overdue_at / $3 AS d, COUNT(*) FROM requests
             WHERE overdue_at >= $1 AND overdue_at < $2 GROUP BY d ORDER BY d",
        )
        .await?;
        Ok(request_days_of(&received, &completed, &overdue))
    }

    async fn delivery_attempts(&self, destination_id: &str, from_minute: i64) -> Result<Vec<AttemptBucket>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT minute, ok, failed FROM delivery_attempts WHERE destination_id = $1 AND minute >= $2
             ORDER BY minute",
        )
        .bind(destination_id)
        .bind(from_minute)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(minute, ok, failed)| AttemptBucket {
                minute,
                ok: u64::try_from(ok).unwrap_or(0),
                failed: u64::try_from(failed).unwrap_or(0),
            })
            .collect())
    }

    async fn delivery_attempt_totals(&self, from_minute: i64) -> Result<Vec<(String, u64, u64)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT destination_id, SUM(ok)::BIGINT, SUM(failed)::BIGINT FROM delivery_attempts
             WHERE minute >= $1 GROUP BY destination_id ORDER BY destination_id",
        )
        .bind(from_minute)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, ok, failed)| (id, u64::try_from(ok).unwrap_or(0), u64::try_from(failed).unwrap_or(0)))
            .collect())
    }

    async fn prune_delivery_attempts(&self, before_minute: i64) -> Result<u64> {
        let n = sqlx::query("DELETE FROM delivery_attempts WHERE minute < $1")
            .bind(before_minute)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n)
    }

    async fn notice_consents(&self, key: &str, version: u32, now: Timestamp) -> Result<u64> {
        let people: i64 = sqlx::query_scalar(NOTICE_CONSENTS_PG)
            .bind(key)
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .bind(now.micros())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(people).unwrap_or(0))
    }

    async fn reset_rollups(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE console_rollup_cursor SET seq = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM console_rollups").execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }
}
