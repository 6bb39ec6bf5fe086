//! Paired devices on PostgreSQL: rows under the subject's pseudonym, resolved through
//! `consentry_keystore.subject_keys`. A device's token works on every node until the DELETE commits.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::error::{db, is_unique_violation};
use super::pseudonyms::pseudonyms_for;
use super::store::PostgresStore;
use crate::common::json_list;
use crate::devices::{DeviceRecord, DeviceStore, NewDevice, parse_list};
use crate::error::{Result, StoreError};
use crate::sql::DEVICE_COLUMNS;

const FROM: &str = "FROM devices d JOIN consentry_keystore.subject_keys k ON k.pseudonym = d.pseudonym";

fn record(r: &PgRow) -> Result<DeviceRecord> {
    let subject: String = r.try_get(1).map_err(db)?;
    Ok(DeviceRecord {
        id: r.try_get(0).map_err(db)?,
        subject: SubjectId::new(subject)
            .map_err(|e| StoreError::Backend(format!("stored subject id: {e}")))?,
        name: r.try_get(2).map_err(db)?,
        kind: r.try_get(3).map_err(db)?,
        categories: parse_list(&r.try_get::<String, _>(4).map_err(db)?),
        purposes: parse_list(&r.try_get::<String, _>(5).map_err(db)?),
        created_at: Timestamp::from_micros(r.try_get(6).map_err(db)?),
        last_seen: r.try_get::<Option<i64>, _>(7).map_err(db)?.map(Timestamp::from_micros),
    })
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn create_device(&self, device: NewDevice) -> Result<()> {
        let r = &device.record;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pseudonyms = pseudonyms_for(&mut tx, vec![r.subject.as_str().to_owned()]).await?;
        let p = pseudonyms
            .get(r.subject.as_str())
            .ok_or_else(|| StoreError::Backend("no pseudonym for the subject".into()))?;
        let inserted = sqlx::query(
            "INSERT INTO devices (id, pseudonym, name, kind, categories, purposes, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.id)
        .bind(p)
        .bind(&r.name)
        .bind(&r.kind)
        .bind(json_list(&r.categories))
        .bind(json_list(&r.purposes))
        .bind(&device.token_hash[..])
        .bind(r.created_at.micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("a device with this id exists".into()));
            }
            Err(e) => return Err(db(e)),
        }
        tx.commit().await.map_err(db)
    }

    async fn subject_devices(&self, subject: &SubjectId) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} {FROM} WHERE k.subject = $1 ORDER BY d.created_at, d.id"
        ))
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(record).collect()
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} {FROM} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(record).transpose()
    }

    async fn rehash_device_token(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
        let n = sqlx::query("UPDATE devices SET token_hash = $3 WHERE id = $1 AND token_hash = $2")
            .bind(id)
            .bind(&old[..])
            .bind(&new[..])
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} {FROM} WHERE d.token_hash = $1"))
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(record).transpose()
    }

    async fn device_seen(&self, id: &str, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE devices SET last_seen = $2 WHERE id = $1 AND (last_seen IS NULL OR last_seen < $2)",
        )
        .bind(id)
        .bind(at.micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} {FROM} WHERE d.id COLLATE \"C\" > $1 ORDER BY d.id COLLATE \"C\" LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(record).collect()
    }

    async fn delete_device(&self, subject: &SubjectId, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM devices WHERE id = $1
             AND pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $2)",
        )
        .bind(id)
        .bind(subject.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
