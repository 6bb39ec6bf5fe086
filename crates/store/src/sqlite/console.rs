//! The console's sessions and rollups on the embedded store: rows in `consentry.db`, written on the writer
//! connection. A session's look-up is a write too (it marks the session used), one short transaction.

use async_trait::async_trait;
use consentry_core::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::db::backend;
use super::rows;
use super::store::SqliteStore;
use crate::console::{
    AttemptBucket, ConsoleStore, DAY_MICROS, PurposeChecks, RequestDay, RollupRow, request_days_of,
};
use crate::error::Result;
use crate::model::ApiKey;
use crate::sql::API_KEY_COLUMNS;

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        key_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        let (hash, key_id) = (token_hash.to_vec(), key_id.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO console_sessions (token_hash, key_id, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)",
                params![hash, key_id, now.micros()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn console_session(
        &self,
        token_hash: &[u8; 32],
        idle_since: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ApiKey>> {
        let hash = token_hash.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("DELETE FROM console_sessions WHERE last_seen < ?1", [idle_since.micros()])
                .map_err(backend)?;
            let key_id: Option<String> = tx
                .query_row("SELECT key_id FROM console_sessions WHERE token_hash = ?1", [&hash], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let key = match key_id {
                None => None,
                Some(id) => tx
                    .query_row(
                        &format!(
                            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND revoked_at IS NULL"
                        ),
                        [id],
                        rows::api_key,
                    )
                    .optional()
                    .map_err(backend)?,
            };
            if key.is_some() {
                tx.execute(
                    "UPDATE console_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                    params![hash, now.micros()],
                )
                .map_err(backend)?;
            } else {
                tx.execute("DELETE FROM console_sessions WHERE token_hash = ?1", [&hash]).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(key)
        })
        .await
    }

    async fn end_console_session(&self, token_hash: &[u8; 32]) -> Result<bool> {
        let hash = token_hash.to_vec();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM console_sessions WHERE token_hash = ?1", [hash])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn rollup_cursor(&self) -> Result<u64> {
        let seq: i64 = self
            .read(|conn| {
                conn.query_row("SELECT seq FROM console_rollup_cursor WHERE id = 1", [], |r| r.get(0))
            })
            .await?;
        Ok(count(seq))
    }

    async fn add_rollups(&self, from: u64, to: u64, rows: Vec<RollupRow>) -> Result<bool> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let moved = tx
                .execute(
                    "UPDATE console_rollup_cursor SET seq = ?2 WHERE id = 1 AND seq = ?1",
                    params![i64::try_from(from).unwrap_or(i64::MAX), i64::try_from(to).unwrap_or(i64::MAX)],
                )
                .map_err(backend)?;
            if moved != 1 {
                return Ok(false);
            }
            {
                let mut add = tx
                    .prepare_cached(
                        "INSERT INTO console_rollups (day, purpose, metric, count) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (day, purpose, metric) DO UPDATE SET count = count + excluded.count",
                    )
                    .map_err(backend)?;
                for r in &rows {
                    add.execute(params![
                        r.day,
                        r.purpose,
                        r.metric,
                        i64::try_from(r.count).unwrap_or(i64::MAX)
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn rollups(&self, from_day: i64, to_day: i64) -> Result<Vec<RollupRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT day, purpose, metric, count FROM console_rollups WHERE day BETWEEN ?1 AND ?2
                 ORDER BY day, purpose, metric",
            )?;
            stmt.query_map([from_day, to_day], |r| {
                Ok(RollupRow {
                    day: r.get(0)?,
                    purpose: r.get(1)?,
                    metric: r.get(2)?,
                    count: count(r.get(3)?),
                })
            })?
            .collect()
        })
        .await
    }

    async fn add_purpose_checks(&self, rows: Vec<PurposeChecks>) -> Result<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            {
                let mut add = tx
                    .prepare_cached(
                        "INSERT INTO console_checks (day, purpose, checks, denied) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (day, purpose) DO UPDATE
                         SET checks = checks + excluded.checks, denied = denied + excluded.denied",
                    )
                    .map_err(backend)?;
                for r in &rows {
                    add.execute(params![r.day, r.purpose, signed(r.checks), signed(r.denied)])
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn purpose_checks(&self, from_day: i64, to_day: i64) -> Result<Vec<PurposeChecks>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT day, purpose, checks, denied FROM console_checks WHERE day BETWEEN ?1 AND ?2
                 ORDER BY day, purpose",
            )?;
            stmt.query_map([from_day, to_day], |r| {
                Ok(PurposeChecks {
                    day: r.get(0)?,
                    purpose: r.get(1)?,
                    checks: count(r.get(2)?),
                    denied: count(r.get(3)?),
                })
            })?
            .collect()
        })
        .await
    }

    async fn request_days(&self, from_day: i64, to_day: i64) -> Result<Vec<RequestDay>> {
        let (from, to) = (from_day.saturating_mul(DAY_MICROS), (to_day + 1).saturating_mul(DAY_MICROS));
        self.read(move |conn| {
            let per_day = |sql: &str| -> rusqlite::Result<Vec<(i64, u64)>> {
                conn.prepare_cached(sql)?
                    .query_map(params![from, to, DAY_MICROS], |r| Ok((r.get(0)?, count(r.get(1)?))))?
                    .collect()
            };
            let received = per_day(
                "SELECT received_at / ?3 AS d, COUNT(*) FROM requests
                 WHERE received_at >= ?1 AND received_at < ?2 GROUP BY d ORDER BY d",
            )?;
            let completed = per_day(
                "SELECT closed_at / ?3 AS d, COUNT(*) FROM requests INDEXED BY requests_by_closed
                 WHERE closed_at >= ?1 AND closed_at < ?2 AND status = 'completed' GROUP BY d ORDER BY d",
            )?;
            let overdue = per_day(
                "SELECT overdue_at / ?3 AS d, COUNT(*) FROM requests INDEXED BY requests_by_overdue
                 WHERE overdue_at >= ?1 AND overdue_at < ?2 GROUP BY d ORDER BY d",
            )?;
            Ok(request_days_of(&received, &completed, &overdue))
        })
        .await
    }

    async fn delivery_attempts(&self, destination_id: &str, from_minute: i64) -> Result<Vec<AttemptBucket>> {
        let id = destination_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT minute, ok, failed FROM delivery_attempts WHERE destination_id = ?1 AND minute >= ?2
                 ORDER BY minute",
            )?;
            stmt.query_map(params![id, from_minute], |r| {
                Ok(AttemptBucket { minute: r.get(0)?, ok: count(r.get(1)?), failed: count(r.get(2)?) })
            })?
            .collect()
        })
        .await
    }

    async fn delivery_attempt_totals(&self, from_minute: i64) -> Result<Vec<(String, u64, u64)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT destination_id, SUM(ok), SUM(failed) FROM delivery_attempts WHERE minute >= ?1
                 GROUP BY destination_id ORDER BY destination_id",
            )?;
            stmt.query_map([from_minute], |r| Ok((r.get(0)?, count(r.get(1)?), count(r.get(2)?))))?.collect()
        })
        .await
    }

    async fn prune_delivery_attempts(&self, before_minute: i64) -> Result<u64> {
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM delivery_attempts WHERE minute < ?1", [before_minute])
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn notice_consents(&self, key: &str, version: u32, now: Timestamp) -> Result<u64> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COUNT(DISTINCT s.pseudonym) FROM events e JOIN consent_state s ON s.seq = e.seq AND s.purpose <> ''
                 WHERE e.notice = ?1 AND e.notice_version = ?2 AND e.action IN ('grant', 'renew')
                   AND (e.expires_at IS NULL OR e.expires_at > ?3)",
            )?
            .query_row(params![key, version, now.micros()], |r| r.get::<_, i64>(0))
            .map(count)
        })
        .await
    }

    async fn reset_rollups(&self) -> Result<()> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("DELETE FROM console_rollups", []).map_err(backend)?;
            tx.execute("UPDATE console_rollup_cursor SET seq = 0 WHERE id = 1", []).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }
}
