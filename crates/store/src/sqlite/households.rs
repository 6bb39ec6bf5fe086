//! Households on the embedded store: the household (its label sealed), its members by pseudonym and its
//! devices in `consentry.db`; members resolve to subjects through the key store (`ks.subject_keys`), so an
//! erased member, whose key is gone, is never read back.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::{backend, is_constraint_violation};
use super::pseudonyms::pseudonym_for;
use super::rows;
use super::store::SqliteStore;
use crate::common::json_list;
use crate::devices::parse_list;
use crate::error::{Result, StoreError};
use crate::households::{
    AddedMember, DeletedHousehold, HouseholdDevice, HouseholdMember, HouseholdRecord, HouseholdStore,
    NewHouseholdDevice,
};
use crate::vault::{self, Kek, SealedPayload};

const DEVICE_COLUMNS: &str = "household, id, name, kind, categories, purposes, created_at";

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HouseholdDevice> {
    Ok(HouseholdDevice {
        household: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        categories: parse_list(&r.get::<_, String>(4)?),
        purposes: parse_list(&r.get::<_, String>(5)?),
        created_at: Timestamp::from_micros(r.get(6)?),
    })
}

/// A household row, its label still sealed, and its members.
type Sealed = (String, SealedPayload, i64, Vec<HouseholdMember>);

fn members(conn: &Connection, household: &str) -> rusqlite::Result<Vec<HouseholdMember>> {
    conn.prepare_cached(
        "SELECT k.subject, m.handle, m.added_at FROM household_members m
         JOIN ks.subject_keys k ON k.pseudonym = m.pseudonym
         WHERE m.household = ?1 ORDER BY m.added_at, m.handle",
    )?
    .query_map([household], |r| {
        Ok(HouseholdMember {
            subject: rows::subject(r.get(0)?)?,
            handle: r.get(1)?,
            added_at: Timestamp::from_micros(r.get(2)?),
        })
    })?
    .collect()
}

fn households(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<Sealed>> {
    let found: Vec<(String, Vec<u8>, Vec<u8>, i64)> = conn
        .prepare_cached(sql)?
        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    found
        .into_iter()
        .map(|(id, nonce, ciphertext, at)| {
            let members = members(conn, &id)?;
            Ok((id, SealedPayload { nonce, ciphertext }, at, members))
        })
        .collect()
}

fn open(kek: &Kek, (id, sealed, at, members): Sealed) -> Result<HouseholdRecord> {
    let name = vault::open_household_name(kek, &id, &sealed)?;
    Ok(HouseholdRecord { id, name, created_at: Timestamp::from_micros(at), members })
}

#[async_trait]
impl HouseholdStore for SqliteStore {
    async fn create_household(&self, kek: &Kek, id: &str, name: &str, at: Timestamp) -> Result<()> {
        let sealed = vault::seal_household_name(kek, id, name)?;
        let id = id.to_owned();
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO households (id, name_nonce, name_sealed, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, sealed.nonce, sealed.ciphertext, at.micros()],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_constraint_violation(&e) => {
                    Err(StoreError::Conflict("a household with this id exists".into()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn household(&self, kek: &Kek, id: &str) -> Result<Option<HouseholdRecord>> {
        let id = id.to_owned();
        let found = self
            .read(move |conn| {
                households(
                    conn,
                    "SELECT id, name_nonce, name_sealed, created_at FROM households WHERE id = ?1",
                    [id],
                )
            })
            .await?;
        found.into_iter().next().map(|h| open(kek, h)).transpose()
    }

    async fn households_page(
        &self,
        kek: &Kek,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<HouseholdRecord>> {
        let after = after.unwrap_or("").to_owned();
        let found = self
            .read(move |conn| {
                households(
                    conn,
                    "SELECT id, name_nonce, name_sealed, created_at FROM households WHERE id > ?1
                     ORDER BY id LIMIT ?2",
                    params![after, limit],
                )
            })
            .await?;
        found.into_iter().map(|h| open(kek, h)).collect()
    }

    async fn rename_household(&self, kek: &Kek, id: &str, name: &str) -> Result<bool> {
        let sealed = vault::seal_household_name(kek, id, name)?;
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE households SET name_nonce = ?2, name_sealed = ?3 WHERE id = ?1",
                    params![id, sealed.nonce, sealed.ciphertext],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_household(&self, id: &str) -> Result<Option<DeletedHousehold>> {
        let id = id.to_owned();
        self.write(move |conn| {
            // On the writer: nothing is added or removed between these reads and the deletes.
            let tx = conn.transaction().map_err(backend)?;
            let devices: Vec<String> = tx
                .prepare_cached("SELECT id FROM household_devices WHERE household = ?1 ORDER BY id")
                .and_then(|mut s| s.query_map([&id], |r| r.get(0))?.collect())
                .map_err(backend)?;
            let members = members(&tx, &id).map_err(backend)?.into_iter().map(|m| m.subject).collect();
            tx.execute("DELETE FROM household_devices WHERE household = ?1", [&id]).map_err(backend)?;
            tx.execute("DELETE FROM household_members WHERE household = ?1", [&id]).map_err(backend)?;
            let n = tx.execute("DELETE FROM households WHERE id = ?1", [&id]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok((n > 0).then_some(DeletedHousehold { members, devices }))
        })
        .await
    }

    async fn add_member(
        &self,
        household: &str,
        subject: &SubjectId,
        handle: &str,
        at: Timestamp,
    ) -> Result<AddedMember> {
        let (household, subject, handle) =
            (household.to_owned(), subject.as_str().to_owned(), handle.to_owned());
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM households WHERE id = ?1", [&household], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if exists.is_none() {
                return Ok(AddedMember::NoHousehold);
            }
            let p = pseudonym_for(conn, &subject)?;
            let held: Option<String> = conn
                .query_row(
                    "SELECT handle FROM household_members WHERE household = ?1 AND pseudonym = ?2",
                    [&household, &p],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(handle) = held {
                return Ok(AddedMember::Existing(handle));
            }
            conn.execute(
                "INSERT INTO household_members (household, pseudonym, handle, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![household, p, handle, at.micros()],
            )
            .map_err(backend)?;
            Ok(AddedMember::Added)
        })
        .await
    }

    async fn remove_member(&self, household: &str, subject: &SubjectId) -> Result<bool> {
        let (household, subject) = (household.to_owned(), subject.as_str().to_owned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM household_members WHERE household = ?1
                       AND pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?2)",
                    params![household, subject],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn subject_households(&self, subject: &SubjectId) -> Result<Vec<String>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT m.household FROM household_members m JOIN ks.subject_keys k ON k.pseudonym = m.pseudonym
                 WHERE k.subject = ?1 ORDER BY m.household",
            )?
            .query_map([subject], |r| r.get(0))?
            .collect()
        })
        .await
    }

    async fn create_household_device(&self, device: NewHouseholdDevice) -> Result<bool> {
        self.write(move |conn| {
            let d = &device.device;
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM households WHERE id = ?1", [&d.household], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if exists.is_none() {
                return Ok(false);
            }
            let inserted = conn.execute(
                "INSERT INTO household_devices (id, household, name, kind, categories, purposes, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    d.id,
                    d.household,
                    d.name,
                    d.kind,
                    json_list(&d.categories),
                    json_list(&d.purposes),
                    &device.token_hash[..],
                    d.created_at.micros()
                ],
            );
            match inserted {
                Ok(_) => Ok(true),
                Err(e) if is_constraint_violation(&e) => {
                    Err(StoreError::Conflict("a device with this id exists".into()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn household_devices(&self, household: &str) -> Result<Vec<HouseholdDevice>> {
        let household = household.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM household_devices WHERE household = ?1 ORDER BY created_at, id"
            ))?
            .query_map([household], device_row)?
            .collect()
        })
        .await
    }

    async fn household_device(&self, id: &str) -> Result<Option<HouseholdDevice>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM household_devices WHERE id = ?1"))?
                .query_row([id], device_row)
                .optional()
        })
        .await
    }

    async fn household_device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<HouseholdDevice>> {
        let hash = *hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM household_devices WHERE token_hash = ?1"
            ))?
            .query_row([&hash[..]], device_row)
            .optional()
        })
        .await
    }

    async fn delete_household_device(&self, household: &str, id: &str) -> Result<bool> {
        let (household, id) = (household.to_owned(), id.to_owned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM household_devices WHERE id = ?1 AND household = ?2",
                    params![id, household],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn household_devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<HouseholdDevice>> {
        let after = after.unwrap_or("").to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM household_devices WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![after, limit], device_row)?
            .collect()
        })
        .await
    }
}
