//! Installation-wide state on PostgreSQL: the mark that it was initialised (with its first API key), and
//! the leases that keep each singleton background job on one node.

use consentry_core::Timestamp;
use sqlx::postgres::PgPool;

use super::error::db;
use super::keys::insert_api_key;
use crate::error::Result;
use crate::model::ApiKey;

/// Marks the store initialised and stores `admin`, unless any node did that before; returns whether this
/// call did it.
pub(super) async fn initialise(pool: &PgPool, admin: &ApiKey) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let inserted = sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('initialised_at', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(Timestamp::now().to_string())
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    insert_api_key(&mut tx, admin).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Takes or renews the lease `name` for `holder` until `until`, unless another holder's is live at `now`.
pub(super) async fn try_lease(
    pool: &PgPool,
    name: &str,
    holder: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let got: Option<String> = sqlx::query_scalar(
        "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE leases.until < $4 OR leases.holder = excluded.holder
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until.micros())
    .bind(now.micros())
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    Ok(got.is_some())
}
