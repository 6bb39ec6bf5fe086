//! The vault on the embedded store: records (ciphertext and metadata, under pseudonyms) in `consentry.db`,
//! the wrapped data keys in `keys.db`.
//!
//! A put reads the subject's pseudonym and wrapped data key (creating both on the writer, committed to the
//! key store first, when the subject has none), encrypts in the caller's task, and hands the ciphertext to
//! the writer's group commit, which inserts it only if the data key is still the one it used, so a record
//! never lands under a key destroyed meanwhile.
//! Deleting a data key runs with `secure_delete` on the key store, so its bytes are overwritten, not left
//! in a free page.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db::backend;
use super::jobs::{Grouped, RecordJob};
use super::pseudonyms::pseudonym_for;
use super::rows;
use super::store::SqliteStore;
use crate::error::Result;
use crate::model::OutboxFilter;
use crate::sql::RECORD_COLUMNS;
use crate::vault::{
    self, Kek, NewRecord, RecordAnnouncer, RecordFilter, RecordMeta, RecordSelection, SealedPayload,
    StoredRecord, VaultStore, WrappedKey, under_pattern,
};

fn meta_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RecordMeta> {
    Ok(vault::record_meta((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
        r.get(at + 8)?,
    )))
}

/// The subject's pseudonym and wrapped data key, creating what is missing (committed before any record).
pub(super) fn ensure_key(conn: &mut Connection, subject: &str, kek: &Kek) -> Result<(String, WrappedKey)> {
    let tx = conn.transaction().map_err(backend)?;
    let now = Timestamp::now().micros();
    let p = pseudonym_for(&tx, subject)?;
    let existing: Option<(String, Vec<u8>)> = tx
        .query_row("SELECT kek_id, wrapped FROM ks.subject_data_keys WHERE subject = ?1", [subject], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    let key = match existing {
        Some((kek_id, wrapped)) => WrappedKey { kek_id, wrapped },
        None => {
            let key = WrappedKey::generate(kek, &p)?;
            tx.execute(
                "INSERT INTO ks.subject_data_keys (subject, kek_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![subject, key.kek_id, key.wrapped, now],
            )
            .map_err(backend)?;
            key
        }
    };
    tx.commit().map_err(backend)?;
    Ok((p, key))
}

fn delete_selected(
    conn: &mut Connection,
    selection: &RecordSelection,
    announce: Option<&RecordAnnouncer>,
    filter: &OutboxFilter,
) -> Result<Vec<RecordMeta>> {
    let tx = conn.transaction().map_err(backend)?;
    let mut deleted: Vec<(String, RecordMeta)> = Vec::new();
    {
        let returning = format!("RETURNING pseudonym, {}", RECORD_COLUMNS.replace("r.", ""));
        let mut collect = |stmt: &mut rusqlite::CachedStatement<'_>, args: &[&dyn rusqlite::ToSql]| {
            let rows = stmt.query_map(args, |r| Ok((r.get::<_, String>(0)?, meta_at(r, 1)?)))?;
            for row in rows {
                deleted.push(row?);
            }
            rusqlite::Result::Ok(())
        };
        match selection {
            RecordSelection::Ids { subject, ids } => {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM records WHERE id = ?1
                           AND pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?2) {returning}"
                    ))
                    .map_err(backend)?;
                for id in ids {
                    collect(&mut stmt, &[id, &subject.as_str()]).map_err(backend)?;
                }
            }
            RecordSelection::Subject { subject, category } => {
                let pattern = category.as_deref().map(under_pattern);
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM records
                         WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                           AND (?2 IS NULL OR category = ?2 OR category LIKE ?3 ESCAPE '\\') {returning}"
                    ))
                    .map_err(backend)?;
                collect(&mut stmt, &[&subject.as_str(), category, &pattern]).map_err(backend)?;
            }
            RecordSelection::Due { now, limit } => {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "DELETE FROM records WHERE id IN (
                             SELECT id FROM records INDEXED BY records_due
                             WHERE delete_after IS NOT NULL AND delete_after <= ?1
                             ORDER BY delete_after LIMIT ?2) {returning}"
                    ))
                    .map_err(backend)?;
                collect(&mut stmt, &[&now.micros(), limit]).map_err(backend)?;
            }
        }
    }
    if let Some(announcer) = announce {
        let wanted = super::outbox::wanted(&tx, filter)?;
        let now = Timestamp::now();
        for (p, meta) in &deleted {
            let m = vault::announce(announcer, meta)?;
            super::outbox::insert_messages(&tx, &wanted, p, std::slice::from_ref(&m), now)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(deleted.into_iter().map(|(_, meta)| meta).collect())
}

#[async_trait]
impl VaultStore for SqliteStore {
    async fn claim_kek(&self, kek_id: &str) -> Result<bool> {
        let kek_id = kek_id.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO ks.vault_kek (only_row, kek_id, created_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (only_row) DO NOTHING",
                params![kek_id, Timestamp::now().micros()],
            )
            .map_err(backend)?;
            let bound: String = conn
                .query_row("SELECT kek_id FROM ks.vault_kek WHERE only_row = 1", [], |r| r.get(0))
                .map_err(backend)?;
            Ok(bound == kek_id)
        })
        .await
    }

    async fn put_record(&self, kek: &Kek, record: NewRecord) -> Result<RecordMeta> {
        let subject = record.subject.as_str().to_owned();
        let lookup = subject.clone();
        let found: Option<(String, Option<String>, Option<Vec<u8>>)> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT k.pseudonym, d.kek_id, d.wrapped FROM ks.subject_keys k
                     LEFT JOIN ks.subject_data_keys d ON d.subject = k.subject WHERE k.subject = ?1",
                )?
                .query_row([lookup], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
            })
            .await?;
        let (p, key) = match found {
            Some((p, Some(kek_id), Some(wrapped))) => (p, WrappedKey { kek_id, wrapped }),
            _ => {
                let kek = kek.clone();
                self.write(move |conn| ensure_key(conn, &subject, &kek)).await?
            }
        };
        let (kek, id, size) = (kek.clone(), record.id.clone(), record.data.len());
        let (record, p, key, sealed) = vault::crypto(size, move || {
            let sealed = vault::seal_payload(&kek, &key, &p, &id, &record.data)?;
            Ok((record, p, key, sealed))
        })
        .await?;
        // Group-committed with other writes: many records, one transaction, one fsync.
        let meta = record.meta();
        let subject = record.subject.as_str().to_owned();
        drop(record);
        self.grouped(|reply| {
            Grouped::Record(Box::new(RecordJob {
                subject,
                pseudonym: p,
                wrapped: key.wrapped,
                meta: meta.clone(),
                sealed,
                outcome: None,
                reply,
            }))
        })
        .await?;
        Ok(meta)
    }

    async fn record_meta(&self, id: &str) -> Result<Option<(SubjectId, RecordMeta)>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT k.subject, {RECORD_COLUMNS} FROM records r
                 JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym WHERE r.id = ?1"
            ))?
            .query_row([id], |r| Ok((rows::subject(r.get(0)?)?, meta_at(r, 1)?)))
            .optional()
        })
        .await
    }

    async fn record(&self, kek: &Kek, id: &str) -> Result<Option<StoredRecord>> {
        let id = id.to_owned();
        type Parts = (SubjectId, String, RecordMeta, SealedPayload, WrappedKey);
        let found: Option<Parts> = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT k.subject, r.pseudonym, {RECORD_COLUMNS}, r.nonce, r.ciphertext, d.kek_id, d.wrapped
                     FROM records r
                     JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym
                     JOIN ks.subject_data_keys d ON d.subject = k.subject
                     WHERE r.id = ?1"
                ))?
                .query_row([id], |r| {
                    Ok((
                        rows::subject(r.get(0)?)?,
                        r.get(1)?,
                        meta_at(r, 2)?,
                        SealedPayload { nonce: r.get(11)?, ciphertext: r.get(12)? },
                        WrappedKey { kek_id: r.get(13)?, wrapped: r.get(14)? },
                    ))
                })
                .optional()
            })
            .await?;
        let Some((subject, p, meta, sealed, key)) = found else { return Ok(None) };
        let kek = kek.clone();
        let size = sealed.ciphertext.len();
        vault::crypto(size, move || {
            let data = vault::open_payload(&kek, &key, &p, &meta.id, &sealed)?;
            Ok(Some(StoredRecord { subject, meta, data }))
        })
        .await
    }

    async fn records(&self, subject: &SubjectId, filter: &RecordFilter) -> Result<Vec<RecordMeta>> {
        let subject = subject.as_str().to_owned();
        let f = filter.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records r
                 WHERE r.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                   AND (?2 IS NULL OR r.category = ?2 OR r.category LIKE ?3 ESCAPE '\\')
                   AND (?4 IS NULL OR r.purpose = ?4 OR r.purpose LIKE ?5 ESCAPE '\\')
                   AND (?6 IS NULL OR r.device_id = ?6)
                   AND (?7 IS NULL OR r.collected_at >= ?7)
                   AND (?8 IS NULL OR r.collected_at < ?8)
                   AND (?9 IS NULL OR r.id < ?9)
                 ORDER BY r.id DESC LIMIT ?10"
            ))?;
            stmt.query_map(
                params![
                    subject,
                    f.category,
                    f.category.as_deref().map(under_pattern),
                    f.purpose,
                    f.purpose.as_deref().map(under_pattern),
                    f.device_id,
                    f.from.map(Timestamp::micros),
                    f.until.map(Timestamp::micros),
                    f.before,
                    f.limit,
                ],
                |r| meta_at(r, 0),
            )?
            .collect()
        })
        .await
    }

    async fn holding_records(&self, subjects: &[SubjectId]) -> Result<std::collections::HashSet<SubjectId>> {
        if subjects.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let subjects = subjects.to_vec();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 1 FROM records r
                 WHERE r.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) LIMIT 1",
            )?;
            let mut holding = std::collections::HashSet::new();
            for s in subjects {
                if stmt.exists([s.as_str()])? {
                    holding.insert(s);
                }
            }
            Ok(holding)
        })
        .await
    }

    async fn delete_records(
        &self,
        selection: RecordSelection,
        announce: Option<RecordAnnouncer>,
    ) -> Result<Vec<RecordMeta>> {
        let filter = self.filter.clone();
        self.write(move |conn| delete_selected(conn, &selection, announce.as_ref(), &filter)).await
    }

    async fn delete_subject_vault(&self, subject: &SubjectId) -> Result<u64> {
        let subject = subject.as_str().to_owned();
        self.write(move |conn| {
            // Overwrite the destroyed key's bytes instead of leaving them in a free page of keys.db.
            conn.execute_batch("PRAGMA ks.secure_delete = ON").map_err(backend)?;
            let tx = conn.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "DELETE FROM records WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)",
                    [&subject],
                )
                .map_err(backend)?;
            // Identifiers, the age and evidence are sealed under the same key: they, and their index entries,
            // go with it.
            tx.execute(
                "DELETE FROM identifiers WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)",
                [&subject],
            )
            .map_err(backend)?;
            for table in ["subject_ages", "event_evidence"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)"
                    ),
                    [&subject],
                )
                .map_err(backend)?;
            }
            let keys = tx
                .execute("DELETE FROM ks.subject_data_keys WHERE subject = ?1", [&subject])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            // And move the change out of the write-ahead log, where the old page would otherwise linger.
            // Best effort: a busy reader only delays it to a later checkpoint. Only when a key went: the
            // checkpoint runs on the one writer thread, so a call that destroyed nothing must not pay it.
            if keys > 0 {
                let _ = conn.execute_batch("PRAGMA ks.wal_checkpoint(TRUNCATE)");
            }
            Ok(n as u64)
        })
        .await
    }
}
