//! Evidence on PostgreSQL: the sealed evidence in the data schema beside its event, the data key that
//! encrypts it in `consentry_keystore`. A row is stored only while the subject's data key is still the one it
//! was sealed under (holding a share lock on it), so an erasure, which deletes the key first, waits for it
//! and then deletes the row.

use async_trait::async_trait;
use consentry_core::SubjectId;

use super::error::db;
use super::store::PostgresStore;
use crate::error::{Result, StoreError};
use crate::evidence::{EvidenceStore, ImportedEvidence};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

type EvidenceRow = (i64, String, String, Vec<u8>, Vec<u8>, Vec<u8>);

const EVIDENCE_COLUMNS: &str = "SELECT v.seq, v.pseudonym, d.kek_id, d.wrapped, v.nonce, v.ciphertext
     FROM event_evidence v JOIN consentry_keystore.subject_keys k ON k.pseudonym = v.pseudonym
     JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject";

fn open_row(kek: &Kek, (seq, p, kek_id, wrapped, nonce, ciphertext): EvidenceRow) -> Result<(u64, Vec<u8>)> {
    let seq = seq as u64;
    let key = WrappedKey { kek_id, wrapped };
    Ok((seq, vault::open_evidence(kek, &key, &p, seq, &SealedPayload { nonce, ciphertext })?))
}

/// The subject an id names now: its survivor when a link made it an alias.
const SURVIVOR: &str = "SELECT survivor FROM consentry_keystore.subject_links WHERE subject = $1";

impl PostgresStore {
    /// Stores one subject's evidence, under the key of the subject it belongs to now: a subject linked into
    /// another (a link committed between an import's events and this write, which re-sealed only what was
    /// stored) is its survivor, so the evidence is sealed under the survivor's key and pseudonym, as the link
    /// re-sealed the rest. A link committed during the write makes it start again under the survivor: the
    /// link takes the alias's data key `FOR UPDATE` before it moves the evidence, so a row stored while it
    /// waited is moved, and one stored after it finds no key to be sealed under.
    async fn put_subject_evidence(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        source: &str,
        items: Vec<ImportedEvidence>,
    ) -> Result<u64> {
        for _ in 0..3 {
            if let Some(stored) = self.try_put_subject_evidence(kek, subject, source, &items).await? {
                return Ok(stored);
            }
        }
        Err(StoreError::Backend("evidence: the subject kept being linked while it was stored".into()))
    }

    /// One attempt of [`Self::put_subject_evidence`]; `None` when a link made the owner an alias meanwhile.
    async fn try_put_subject_evidence(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        source: &str,
        items: &[ImportedEvidence],
    ) -> Result<Option<u64>> {
        if items.is_empty() {
            return Ok(Some(0));
        }
        let survivor: Option<String> = sqlx::query_scalar(SURVIVOR)
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let owner = survivor.as_deref().unwrap_or(subject.as_str());
        // Only a subject the ledger knows (an erased one has no pseudonym left to make a key for).
        let known: Option<String> =
            sqlx::query_scalar("SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1")
                .bind(owner)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if known.is_none() {
            return Ok(Some(0));
        }
        let (p, key) = self.ensure_key(owner, kek).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut stored = 0;
        for item in items {
            // The event is the owner's own or that of an id linked into them.
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT i.seq FROM imported i JOIN events e ON e.seq = i.seq
                 WHERE i.source = $1 AND i.source_id = $2 AND e.evidence = $4
                   AND e.pseudonym IN (SELECT pseudonym FROM consentry_keystore.subject_keys
                       WHERE subject = $3
                          OR subject IN (SELECT subject FROM consentry_keystore.subject_links WHERE survivor = $3))
                   AND NOT EXISTS (SELECT 1 FROM event_evidence v WHERE v.seq = i.seq)",
            )
            .bind(source)
            .bind(&item.source_id)
            .bind(owner)
            .bind(&item.sha256)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(seq) = seq else { continue };
            let sealed = vault::seal_evidence(kek, &key, &p, seq as u64, &item.evidence)?;
            let done = sqlx::query(
                "INSERT INTO event_evidence (seq, pseudonym, nonce, ciphertext)
                 SELECT $1, $2, $3, $4
                 FROM consentry_keystore.subject_data_keys d
                 WHERE d.subject = $5 AND d.wrapped = $6
                 FOR SHARE OF d
                 ON CONFLICT (seq) DO NOTHING",
            )
            .bind(seq)
            .bind(&p)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(owner)
            .bind(&key.wrapped)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            stored += done.rows_affected();
        }
        // Holding the key's share lock, a link of the owner has either committed (it is an alias now: start
        // again under its survivor) or waits for this commit and moves what it stored.
        let linked: Option<String> =
            sqlx::query_scalar(SURVIVOR).bind(owner).fetch_optional(&mut *tx).await.map_err(db)?;
        if linked.is_some() {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(stored))
    }
}

#[async_trait]
impl EvidenceStore for PostgresStore {
    async fn put_imported_evidence(
        &self,
        kek: &Kek,
        source: &str,
        items: Vec<(SubjectId, Vec<ImportedEvidence>)>,
    ) -> Result<u64> {
        let mut stored = 0;
        for (subject, items) in items {
            stored += self.put_subject_evidence(kek, &subject, source, items).await?;
        }
        Ok(stored)
    }

    async fn evidence(&self, kek: &Kek, subject: &SubjectId, seq: u64) -> Result<Option<Vec<u8>>> {
        let row: Option<EvidenceRow> =
            sqlx::query_as(&format!("{EVIDENCE_COLUMNS} WHERE k.subject = $1 AND v.seq = $2"))
                .bind(subject.as_str())
                .bind(
                    i64::try_from(seq)
                        .map_err(|_| StoreError::Backend("sequence number too large".into()))?,
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.map(|row| open_row(kek, row).map(|(_, e)| e)).transpose()
    }

    async fn evidence_held(&self, subject: &SubjectId, seqs: Vec<u64>) -> Result<Vec<u64>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = seqs.into_iter().filter_map(|s| i64::try_from(s).ok()).collect();
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT v.seq FROM event_evidence v
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = v.pseudonym
             WHERE k.subject = $1 AND v.seq = ANY($2) ORDER BY v.seq",
        )
        .bind(subject.as_str())
        .bind(&seqs)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(held.into_iter().map(|s| s as u64).collect())
    }

    async fn evidence_between(&self, kek: &Kek, after: u64, upto: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let bound = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        let rows: Vec<EvidenceRow> =
            sqlx::query_as(&format!("{EVIDENCE_COLUMNS} WHERE v.seq > $1 AND v.seq <= $2 ORDER BY v.seq"))
                .bind(bound(after))
                .bind(bound(upto))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(|row| open_row(kek, row)).collect()
    }
}
