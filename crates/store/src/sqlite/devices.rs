//! Paired devices on the embedded store: rows in `consentry.db` under the subject's pseudonym, resolved
//! through the key store (`ks.subject_keys`).

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::db::{backend, is_constraint_violation};
use super::pseudonyms::pseudonym_for;
use super::store::SqliteStore;
use crate::common::json_list;
use crate::devices::{DeviceRecord, DeviceStore, NewDevice, parse_list};
use crate::error::{Result, StoreError};
use crate::sql::DEVICE_COLUMNS;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    let subject: String = r.get(1)?;
    let subject = SubjectId::new(subject).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(DeviceRecord {
        id: r.get(0)?,
        subject,
        name: r.get(2)?,
        kind: r.get(3)?,
        categories: parse_list(&r.get::<_, String>(4)?),
        purposes: parse_list(&r.get::<_, String>(5)?),
        created_at: Timestamp::from_micros(r.get(6)?),
        last_seen: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_micros),
    })
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn create_device(&self, device: NewDevice) -> Result<()> {
        self.write(move |conn| {
            let p = pseudonym_for(conn, device.record.subject.as_str())?;
            let r = &device.record;
            let inserted = conn.execute(
                "INSERT INTO devices (id, pseudonym, name, kind, categories, purposes, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    r.id,
                    p,
                    r.name,
                    r.kind,
                    json_list(&r.categories),
                    json_list(&r.purposes),
                    &device.token_hash[..],
                    r.created_at.micros()
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_constraint_violation(&e) => {
                    Err(StoreError::Conflict("a device with this id exists".into()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn subject_devices(&self, subject: &SubjectId) -> Result<Vec<DeviceRecord>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d JOIN ks.subject_keys k ON k.pseudonym = d.pseudonym
                 WHERE k.subject = ?1 ORDER BY d.created_at, d.id"
            ))?;
            stmt.query_map([subject], row)?.collect()
        })
        .await
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d JOIN ks.subject_keys k ON k.pseudonym = d.pseudonym
                 WHERE d.id = ?1"
            ))?
            .query_row([id], row)
            .optional()
        })
        .await
    }

    async fn rehash_device_token(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
        let (id, old, new) = (id.to_owned(), *old, *new);
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE devices SET token_hash = ?3 WHERE id = ?1 AND token_hash = ?2",
                    params![id, &old[..], &new[..]],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<DeviceRecord>> {
        let hash = *hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d JOIN ks.subject_keys k ON k.pseudonym = d.pseudonym
                 WHERE d.token_hash = ?1"
            ))?
            .query_row([&hash[..]], row)
            .optional()
        })
        .await
    }

    async fn device_seen(&self, id: &str, at: Timestamp) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE devices SET last_seen = ?2 WHERE id = ?1 AND (last_seen IS NULL OR last_seen < ?2)",
                params![id, at.micros()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<DeviceRecord>> {
        let after = after.unwrap_or("").to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d JOIN ks.subject_keys k ON k.pseudonym = d.pseudonym
                 WHERE d.id > ?1 ORDER BY d.id LIMIT ?2"
            ))?;
            stmt.query_map(params![after, limit], row)?.collect()
        })
        .await
    }

    async fn delete_device(&self, subject: &SubjectId, id: &str) -> Result<bool> {
        let (subject, id) = (subject.as_str().to_owned(), id.to_owned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM devices WHERE id = ?1
                     AND pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?2)",
                    params![id, subject],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}
