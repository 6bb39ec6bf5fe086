//! Versioned migrations for PostgreSQL, embedded in the binary, run at start and by `consentry migrate`.
//! An advisory lock keeps nodes that start together from migrating twice; a database from a newer build
//! is refused.

use sqlx::PgPool;

use super::error::db;
use super::locks::MIGRATION_LOCK;
use crate::error::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_proof.sql"),
    include_str!("../../migrations/postgres/0003_outbox.sql"),
    include_str!("../../migrations/postgres/0004_expiry.sql"),
    include_str!("../../migrations/postgres/0005_vault.sql"),
    include_str!("../../migrations/postgres/0006_devices.sql"),
    include_str!("../../migrations/postgres/0007_requests.sql"),
    include_str!("../../migrations/postgres/0008_key_pepper.sql"),
    include_str!("../../migrations/postgres/0009_subject_tokens.sql"),
    include_str!("../../migrations/postgres/0010_receipts_rebuilt.sql"),
    include_str!("../../migrations/postgres/0011_console.sql"),
    include_str!("../../migrations/postgres/0012_tlog.sql"),
    include_str!("../../migrations/postgres/0013_event_evidence.sql"),
    include_str!("../../migrations/postgres/0014_identifiers.sql"),
    include_str!("../../migrations/postgres/0015_notice_consents.sql"),
    include_str!("../../migrations/postgres/0016_event_jurisdiction.sql"),
    include_str!("../../migrations/postgres/0017_device_last_seen.sql"),
    include_str!("../../migrations/postgres/0018_verifications.sql"),
    include_str!("../../migrations/postgres/0019_import.sql"),
    include_str!("../../migrations/postgres/0020_console_checks.sql"),
    include_str!("../../migrations/postgres/0021_request_days.sql"),
    include_str!("../../migrations/postgres/0022_delivery_attempts.sql"),
    include_str!("../../migrations/postgres/0023_subject_links.sql"),
    include_str!("../../migrations/postgres/0024_effective_time.sql"),
    include_str!("../../migrations/postgres/0025_guardians.sql"),
    include_str!("../../migrations/postgres/0026_outbox_reach.sql"),
    include_str!("../../migrations/postgres/0027_households.sql"),
    include_str!("../../migrations/postgres/0028_coming_of_age.sql"),
    include_str!("../../migrations/postgres/0029_evidence.sql"),
    include_str!("../../migrations/postgres/0030_consent_stances.sql"),
    include_str!("../../migrations/postgres/0031_slim_outbox.sql"),
    include_str!("../../migrations/postgres/0032_engine_images.sql"),
    include_str!("../../migrations/postgres/0033_slim_receipts.sql"),
];

pub(super) fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to the current schema; returns its version.
pub(super) async fn run(pool: &PgPool) -> Result<i64> {
    let mut conn = pool.acquire().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await.map_err(db)?;
    let result = apply(&mut conn).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await;
    result
}

async fn apply(conn: &mut sqlx::PgConnection) -> Result<i64> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS consentry_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let found: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM consentry_schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let found = i64::from(found.unwrap_or(0));
    let supported = supported_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("INSERT INTO consentry_schema_migrations (version) VALUES ($1)")
            .bind(i as i32 + 1)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    if found < supported {
        // An engine image holds what the ledger made of each subject under the rules of the build that
        // wrote it; a migration may change what the stored state means (0030 brought back objections), so
        // no image taken before one is used after it.
        sqlx::query("DELETE FROM engine_images").execute(&mut *conn).await.map_err(db)?;
    }
    Ok(supported)
}
