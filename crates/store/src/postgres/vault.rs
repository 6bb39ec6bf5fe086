//! The vault on PostgreSQL: records (ciphertext and metadata, under pseudonyms) in the data schema, the
//! wrapped data keys in `consentry_keystore`.
//!
//! A put encrypts in the caller's task and inserts in one statement that takes a share lock on the
//! subject's data-key row (and inserts nothing unless it is still the key it used). Erasure deletes the key
//! row first and then the records, so it waits for such a put and then sees its record: no record outlives
//! its key.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::error::{db, is_unique_violation};
use super::outbox::OutboxColumns;
use super::pseudonyms::pseudonyms_for;
use super::store::PostgresStore;
use crate::error::{Result, StoreError};
use crate::sql::RECORD_COLUMNS;
use crate::vault::{
    self, Kek, NewRecord, RecordAnnouncer, RecordFilter, RecordMeta, RecordRow, RecordSelection,
    SealedPayload, StoredRecord, VaultStore, WrappedKey, under_pattern,
};

pub(super) fn subject_of(text: String) -> Result<SubjectId> {
    SubjectId::new(text).map_err(|_| StoreError::Backend("stored data does not decode: subject id".into()))
}

type Returned = (String, String, Option<String>, String, String, String, i64, i64, i64, Option<i64>);

fn returned(
    (p, id, device, category, purpose, ct, size, collected, stored, due): Returned,
) -> (String, RecordMeta) {
    (p, vault::record_meta((id, device, category, purpose, ct, size, collected, stored, due)))
}

impl PostgresStore {
    /// The subject's pseudonym and wrapped data key, creating what is missing.
    pub(super) async fn ensure_key(&self, subject: &str, kek: &Kek) -> Result<(String, WrappedKey)> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pseudonyms = pseudonyms_for(&mut tx, vec![subject.to_owned()]).await?;
        let p = pseudonyms
            .get(subject)
            .cloned()
            .ok_or_else(|| StoreError::Backend("no pseudonym was created".into()))?;
        let fresh = WrappedKey::generate(kek, &p)?;
        sqlx::query(
            "INSERT INTO consentry_keystore.subject_data_keys (subject, kek_id, wrapped, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (subject) DO NOTHING",
        )
        .bind(subject)
        .bind(&fresh.kek_id)
        .bind(&fresh.wrapped)
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        // Another node may have created it first: read back the one that won.
        let (kek_id, wrapped): (String, Vec<u8>) = sqlx::query_as(
            "SELECT kek_id, wrapped FROM consentry_keystore.subject_data_keys WHERE subject = $1",
        )
        .bind(subject)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((p, WrappedKey { kek_id, wrapped }))
    }
}

#[async_trait]
impl VaultStore for PostgresStore {
    async fn claim_kek(&self, kek_id: &str) -> Result<bool> {
        sqlx::query(
            "INSERT INTO consentry_keystore.vault_kek (only_row, kek_id, created_at) VALUES (TRUE, $1, $2)
             ON CONFLICT (only_row) DO NOTHING",
        )
        .bind(kek_id)
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let bound: String = sqlx::query_scalar("SELECT kek_id FROM consentry_keystore.vault_kek")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(bound == kek_id)
    }

    async fn put_record(&self, kek: &Kek, record: NewRecord) -> Result<RecordMeta> {
        let subject = record.subject.as_str().to_owned();
        let found: Option<(String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT k.pseudonym, d.kek_id, d.wrapped FROM consentry_keystore.subject_keys k
             LEFT JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject WHERE k.subject = $1",
        )
        .bind(&subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let (p, key) = match found {
            Some((p, Some(kek_id), Some(wrapped))) => (p, WrappedKey { kek_id, wrapped }),
            _ => self.ensure_key(&subject, kek).await?,
        };
        let (kek, id, size) = (kek.clone(), record.id.clone(), record.data.len());
        let (record, p, key, sealed) = vault::crypto(size, move || {
            let sealed = vault::seal_payload(&kek, &key, &p, &id, &record.data)?;
            Ok((record, p, key, sealed))
        })
        .await?;

        // One statement: the row is inserted only while the subject's data key is still the one it was
        // sealed under, and the share lock on that key row holds off an erasure until the insert commits.
        let inserted = sqlx::query(
            "INSERT INTO records (id, pseudonym, device_id, category, purpose, content_type, size, collected_at,
                stored_at, delete_after, nonce, ciphertext)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
             FROM consentry_keystore.subject_data_keys d
             JOIN consentry_keystore.subject_keys k ON k.subject = d.subject
             WHERE d.subject = $13 AND k.pseudonym = $2 AND d.wrapped = $14
             FOR SHARE OF d",
        )
        .bind(&record.id)
        .bind(&p)
        .bind(&record.device_id)
        .bind(&record.category)
        .bind(&record.purpose)
        .bind(&record.content_type)
        .bind(record.data.len() as i64)
        .bind(record.collected_at.micros())
        .bind(record.stored_at.micros())
        .bind(record.delete_after.map(Timestamp::micros))
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(&subject)
        .bind(&key.wrapped)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => {
                return Err(StoreError::Conflict(
                    "the subject's vault was erased while the record was stored".into(),
                ));
            }
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("a record with this id exists".into()));
            }
            Err(e) => return Err(db(e)),
        }
        Ok(record.meta())
    }

    async fn record_meta(&self, id: &str) -> Result<Option<(SubjectId, RecordMeta)>> {
        let row: Option<Returned> = sqlx::query_as(&format!(
            "SELECT k.subject, {RECORD_COLUMNS} FROM records r
                 JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let (subject, meta) = returned(row);
        Ok(Some((subject_of(subject)?, meta)))
    }

    async fn record(&self, kek: &Kek, id: &str) -> Result<Option<StoredRecord>> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            Vec<u8>,
            Vec<u8>,
            String,
            Vec<u8>,
        );
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT k.subject, r.pseudonym, {RECORD_COLUMNS}, r.nonce, r.ciphertext, d.kek_id, d.wrapped
             FROM records r
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym
             JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject
             WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some((
            subject,
            p,
            rid,
            device,
            category,
            purpose,
            ct,
            size,
            collected,
            stored,
            due,
            nonce,
            ciphertext,
            kek_id,
            wrapped,
        )) = row
        else {
            return Ok(None);
        };
        let subject = subject_of(subject)?;
        let row: RecordRow = (rid, device, category, purpose, ct, size, collected, stored, due);
        let meta = vault::record_meta(row);
        let (kek, key, sealed) =
            (kek.clone(), WrappedKey { kek_id, wrapped }, SealedPayload { nonce, ciphertext });
        vault::crypto(sealed.ciphertext.len(), move || {
            let data = vault::open_payload(&kek, &key, &p, &meta.id, &sealed)?;
            Ok(Some(StoredRecord { subject, meta, data }))
        })
        .await
    }

    async fn records(&self, subject: &SubjectId, f: &RecordFilter) -> Result<Vec<RecordMeta>> {
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r
             WHERE r.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
               AND ($2::text IS NULL OR r.category = $2 OR r.category LIKE $3 ESCAPE '\\')
               AND ($4::text IS NULL OR r.purpose = $4 OR r.purpose LIKE $5 ESCAPE '\\')
               AND ($6::text IS NULL OR r.device_id = $6)
               AND ($7::bigint IS NULL OR r.collected_at >= $7)
               AND ($8::bigint IS NULL OR r.collected_at < $8)
               AND ($9::text IS NULL OR r.id < $9)
             ORDER BY r.id DESC LIMIT $10"
        ))
        .bind(subject.as_str())
        .bind(&f.category)
        .bind(f.category.as_deref().map(under_pattern))
        .bind(&f.purpose)
        .bind(f.purpose.as_deref().map(under_pattern))
        .bind(&f.device_id)
        .bind(f.from.map(Timestamp::micros))
        .bind(f.until.map(Timestamp::micros))
        .bind(&f.before)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(vault::record_meta).collect())
    }

    async fn holding_records(&self, subjects: &[SubjectId]) -> Result<std::collections::HashSet<SubjectId>> {
        if subjects.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let names: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT k.subject FROM consentry_keystore.subject_keys k
             WHERE k.subject = ANY($1) AND EXISTS (SELECT 1 FROM records r WHERE r.pseudonym = k.pseudonym)",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found.into_iter().map(subject_of).collect()
    }

    async fn delete_records(
        &self,
        selection: RecordSelection,
        announce: Option<RecordAnnouncer>,
    ) -> Result<Vec<RecordMeta>> {
        let returning = format!("RETURNING pseudonym, {}", RECORD_COLUMNS.replace("r.", ""));
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows: Vec<Returned> = match &selection {
            RecordSelection::Ids { subject, ids } => sqlx::query_as(&format!(
                "DELETE FROM records WHERE id = ANY($1)
                   AND pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $2)
                 {returning}"
            ))
            .bind(ids)
            .bind(subject.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?,
            RecordSelection::Subject { subject, category } => sqlx::query_as(&format!(
                "DELETE FROM records
                 WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
                   AND ($2::text IS NULL OR category = $2 OR category LIKE $3 ESCAPE '\\')
                 {returning}"
            ))
            .bind(subject.as_str())
            .bind(category)
            .bind(category.as_deref().map(under_pattern))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?,
            RecordSelection::Due { now, limit } => sqlx::query_as(&format!(
                "DELETE FROM records WHERE id IN (
                     SELECT id FROM records WHERE delete_after IS NOT NULL AND delete_after <= $1
                     ORDER BY delete_after LIMIT $2 FOR UPDATE SKIP LOCKED)
                 {returning}"
            ))
            .bind(now.micros())
            .bind(i64::from(*limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?,
        };
        let deleted: Vec<(String, RecordMeta)> = rows.into_iter().map(returned).collect();
        if let Some(announcer) = &announce {
            let now = Timestamp::now();
            let mut messages = OutboxColumns::new(&self.filter);
            for (p, meta) in &deleted {
                messages.push(p, vault::announce(announcer, meta)?, now);
            }
            // Takes the outbox lock until the commit, like every outbox insert.
            messages.insert(&mut tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted.into_iter().map(|(_, meta)| meta).collect())
    }

    async fn delete_subject_vault(&self, subject: &SubjectId) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The key first: a put holding it (share lock) commits before this goes on, and its record is then
        // seen, and deleted, by the statement below.
        sqlx::query("DELETE FROM consentry_keystore.subject_data_keys WHERE subject = $1")
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let n = sqlx::query(
            "DELETE FROM records
             WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)",
        )
        .bind(subject.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        // Identifiers, the age and evidence are sealed under the same key: they, and their index entries, go
        // with it.
        sqlx::query(
            "DELETE FROM identifiers
             WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)",
        )
        .bind(subject.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for table in ["subject_ages", "event_evidence"] {
            sqlx::query(&format!(
                "DELETE FROM {table}
                 WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)"
            ))
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
