//! Households on PostgreSQL: the household (its label sealed), its members by pseudonym and its devices in
//! the data schema; members resolve to subjects through `consentry_keystore.subject_keys`. A member is
//! added only while the subject's key row stands (holding a share lock on it), so an erasure, which locks
//! it to delete, either waits for the insert and then deletes its row, or goes first and the insert adds
//! nothing.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::error::{db, is_foreign_key_violation, is_unique_violation};
use super::pseudonyms::pseudonyms_for;
use super::store::PostgresStore;
use super::vault::subject_of;
use crate::common::json_list;
use crate::devices::parse_list;
use crate::error::{Result, StoreError};
use crate::households::{
    AddedMember, DeletedHousehold, HouseholdDevice, HouseholdMember, HouseholdRecord, HouseholdStore,
    NewHouseholdDevice,
};
use crate::vault::{self, Kek, SealedPayload};

const DEVICE_COLUMNS: &str = "household, id, name, kind, categories, purposes, created_at";

fn device_row(r: &PgRow) -> Result<HouseholdDevice> {
    Ok(HouseholdDevice {
        household: r.try_get(0).map_err(db)?,
        id: r.try_get(1).map_err(db)?,
        name: r.try_get(2).map_err(db)?,
        kind: r.try_get(3).map_err(db)?,
        categories: parse_list(&r.try_get::<String, _>(4).map_err(db)?),
        purposes: parse_list(&r.try_get::<String, _>(5).map_err(db)?),
        created_at: Timestamp::from_micros(r.try_get(6).map_err(db)?),
    })
}

impl PostgresStore {
    async fn members(&self, household: &str) -> Result<Vec<HouseholdMember>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT k.subject, m.handle, m.added_at FROM household_members m
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = m.pseudonym
             WHERE m.household = $1 ORDER BY m.added_at, m.handle",
        )
        .bind(household)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(subject, handle, at)| {
                Ok(HouseholdMember {
                    subject: subject_of(subject)?,
                    handle,
                    added_at: Timestamp::from_micros(at),
                })
            })
            .collect()
    }

    async fn open_households(
        &self,
        kek: &Kek,
        rows: Vec<(String, Vec<u8>, Vec<u8>, i64)>,
    ) -> Result<Vec<HouseholdRecord>> {
        let mut out = Vec::with_capacity(rows.len());
        for (id, nonce, ciphertext, at) in rows {
            let name = vault::open_household_name(kek, &id, &SealedPayload { nonce, ciphertext })?;
            let members = self.members(&id).await?;
            out.push(HouseholdRecord { id, name, created_at: Timestamp::from_micros(at), members });
        }
        Ok(out)
    }
}

#[async_trait]
impl HouseholdStore for PostgresStore {
    async fn create_household(&self, kek: &Kek, id: &str, name: &str, at: Timestamp) -> Result<()> {
        let sealed = vault::seal_household_name(kek, id, name)?;
        let inserted = sqlx::query(
            "INSERT INTO households (id, name_nonce, name_sealed, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(at.micros())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("a household with this id exists".into()))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn household(&self, kek: &Kek, id: &str) -> Result<Option<HouseholdRecord>> {
        let rows =
            sqlx::query_as("SELECT id, name_nonce, name_sealed, created_at FROM households WHERE id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(self.open_households(kek, rows).await?.into_iter().next())
    }

    async fn households_page(
        &self,
        kek: &Kek,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<HouseholdRecord>> {
        let rows = sqlx::query_as(
            "SELECT id, name_nonce, name_sealed, created_at FROM households WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        self.open_households(kek, rows).await
    }

    async fn rename_household(&self, kek: &Kek, id: &str, name: &str) -> Result<bool> {
        let sealed = vault::seal_household_name(kek, id, name)?;
        let n = sqlx::query("UPDATE households SET name_nonce = $2, name_sealed = $3 WHERE id = $1")
            .bind(id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_household(&self, id: &str) -> Result<Option<DeletedHousehold>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row lock first: a member or device being added waits (its foreign key check) and then
        // finds no household; one added before is committed, so the deletes below see it.
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM households WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if found.is_none() {
            return Ok(None);
        }
        let mut devices: Vec<String> =
            sqlx::query_scalar("DELETE FROM household_devices WHERE household = $1 RETURNING id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        // Exactly the memberships deleted, named by subject where their key still stands.
        let members: Vec<String> = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM household_members WHERE household = $1 RETURNING pseudonym, added_at, handle)
             SELECT k.subject FROM gone g JOIN consentry_keystore.subject_keys k ON k.pseudonym = g.pseudonym
             ORDER BY g.added_at, g.handle",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM households WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        devices.sort();
        let members = members.into_iter().map(subject_of).collect::<Result<_>>()?;
        Ok(Some(DeletedHousehold { members, devices }))
    }

    async fn add_member(
        &self,
        household: &str,
        subject: &SubjectId,
        handle: &str,
        at: Timestamp,
    ) -> Result<AddedMember> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM households WHERE id = $1")
            .bind(household)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if exists.is_none() {
            return Ok(AddedMember::NoHousehold);
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        pseudonyms_for(&mut tx, vec![subject.as_str().to_owned()]).await?;
        tx.commit().await.map_err(db)?;
        let held = || async {
            sqlx::query_scalar::<_, String>(
                "SELECT m.handle FROM household_members m
                 JOIN consentry_keystore.subject_keys k ON k.pseudonym = m.pseudonym
                 WHERE m.household = $1 AND k.subject = $2",
            )
            .bind(household)
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
        };
        if let Some(handle) = held().await? {
            return Ok(AddedMember::Existing(handle));
        }
        let inserted = sqlx::query(
            "INSERT INTO household_members (household, pseudonym, handle, added_at)
             SELECT $1, k.pseudonym, $3, $4 FROM consentry_keystore.subject_keys k
             WHERE k.subject = $2
             FOR SHARE OF k
             ON CONFLICT (household, pseudonym) DO NOTHING",
        )
        .bind(household)
        .bind(subject.as_str())
        .bind(handle)
        .bind(at.micros())
        .execute(&self.pool)
        .await;
        let inserted = match inserted {
            // The household was deleted meanwhile.
            Err(e) if is_foreign_key_violation(&e) => return Ok(AddedMember::NoHousehold),
            other => other.map_err(db)?,
        };
        if inserted.rows_affected() == 1 {
            return Ok(AddedMember::Added);
        }
        match held().await? {
            Some(handle) => Ok(AddedMember::Existing(handle)),
            // No row and no member: the subject was erased between the two statements.
            None => Err(StoreError::Conflict("the subject changed; try again".into())),
        }
    }

    async fn remove_member(&self, household: &str, subject: &SubjectId) -> Result<bool> {
        let n = sqlx::query(
            "DELETE FROM household_members WHERE household = $1
               AND pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $2)",
        )
        .bind(household)
        .bind(subject.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn subject_households(&self, subject: &SubjectId) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT m.household FROM household_members m
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = m.pseudonym
             WHERE k.subject = $1 ORDER BY m.household",
        )
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn create_household_device(&self, device: NewHouseholdDevice) -> Result<bool> {
        let d = &device.device;
        let inserted = sqlx::query(
            "INSERT INTO household_devices (id, household, name, kind, categories, purposes, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&d.id)
        .bind(&d.household)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(json_list(&d.categories))
        .bind(json_list(&d.purposes))
        .bind(&device.token_hash[..])
        .bind(d.created_at.micros())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            // The household is gone (deleted before, or meanwhile).
            Err(e) if is_foreign_key_violation(&e) => Ok(false),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("a device with this id exists".into()))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn household_devices(&self, household: &str) -> Result<Vec<HouseholdDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM household_devices WHERE household = $1 ORDER BY created_at, id"
        ))
        .bind(household)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(device_row).collect()
    }

    async fn household_device(&self, id: &str) -> Result<Option<HouseholdDevice>> {
        let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM household_devices WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(device_row).transpose()
    }

    async fn household_device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<HouseholdDevice>> {
        let row =
            sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM household_devices WHERE token_hash = $1"))
                .bind(&hash[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.as_ref().map(device_row).transpose()
    }

    async fn delete_household_device(&self, household: &str, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM household_devices WHERE id = $1 AND household = $2")
            .bind(id)
            .bind(household)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn household_devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<HouseholdDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM household_devices WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(device_row).collect()
    }
}
