//! Ages and guardians on PostgreSQL: the sealed age and the relations in the data schema, the data key that
//! encrypts the age in `consentry_keystore`. An age is stored only while the subject's data key is still
//! the one it was sealed under (holding a share lock on it), so an erasure, which deletes the key first,
//! waits for it and then deletes the row.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::error::db;
use super::locks::{GUARDIAN_LOCK, lock};
use super::outbox::OutboxColumns;
use super::store::PostgresStore;
use super::vault::subject_of;
use crate::error::{Result, StoreError};
use crate::guardians::{GuardianAdded, GuardianLink, GuardianStore, PendingAge, StoredAge};
use crate::model::OutboxMessage;
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

type AgeRow = (String, String, String, Vec<u8>, Vec<u8>, Vec<u8>, i64, Option<i64>);

fn open_row(
    kek: &Kek,
    (subject, p, kek_id, wrapped, nonce, ciphertext, at, came): AgeRow,
) -> Result<StoredAge> {
    let key = WrappedKey { kek_id, wrapped };
    let plaintext = vault::open_age(kek, &key, &p, &SealedPayload { nonce, ciphertext })?;
    Ok(StoredAge {
        subject: subject_of(subject)?,
        plaintext,
        updated_at: Timestamp::from_micros(at),
        came_of_age_at: came.map(Timestamp::from_micros),
    })
}

const AGE_COLUMNS: &str =
    "SELECT k.subject, a.pseudonym, d.kek_id, d.wrapped, a.nonce, a.ciphertext, a.updated_at, a.came_of_age_at
     FROM subject_ages a JOIN consentry_keystore.subject_keys k ON k.pseudonym = a.pseudonym
     JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject";

const LINK_COLUMNS: &str = "SELECT c.subject, g.subject, l.evidence, l.created_at FROM guardians l
     JOIN consentry_keystore.subject_keys c ON c.pseudonym = l.child
     JOIN consentry_keystore.subject_keys g ON g.pseudonym = l.guardian";

type LinkRow = (String, String, Option<Vec<u8>>, i64);

fn link(row: LinkRow) -> Result<GuardianLink> {
    let (child, guardian, evidence, at) = row;
    Ok(GuardianLink {
        child: subject_of(child)?,
        guardian: subject_of(guardian)?,
        evidence_sha256: evidence.and_then(|e| <[u8; 32]>::try_from(e).ok()),
        created_at: Timestamp::from_micros(at),
    })
}

impl PostgresStore {
    async fn pseudonym_of(&self, subject: &SubjectId) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1")
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }
}

/// Whether the guardian (`$2`) is the child (`$1`) or someone the child is, directly or further down, a
/// guardian of: the walk down the relations from the child, over pseudonyms. `UNION` keeps each pseudonym
/// once, so the walk ends even on a cycle stored before this check existed.
const CLOSES_CYCLE: &str = "WITH RECURSIVE down(p) AS (
         SELECT CAST($1 AS TEXT) UNION SELECT l.child FROM guardians l JOIN down d ON l.guardian = d.p
     ) SELECT EXISTS (SELECT 1 FROM down WHERE p = $2)";

#[async_trait]
impl GuardianStore for PostgresStore {
    async fn set_age(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        plaintext: Vec<u8>,
        at: Timestamp,
        came_of_age: Option<(Timestamp, OutboxMessage)>,
    ) -> Result<bool> {
        let (p, key) = self.ensure_key(subject.as_str(), kek).await?;
        let sealed = vault::seal_age(kek, &key, &p, &plaintext)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "INSERT INTO subject_ages (pseudonym, nonce, ciphertext, updated_at)
             SELECT $1, $2, $3, $4
             FROM consentry_keystore.subject_data_keys d
             WHERE d.subject = $5 AND d.wrapped = $6
             FOR SHARE OF d
             ON CONFLICT (pseudonym) DO UPDATE SET nonce = excluded.nonce,
                 ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
                 coming_of_age_pending = subject_ages.came_of_age_at IS NULL",
        )
        .bind(&p)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(at.micros())
        .bind(subject.as_str())
        .bind(&key.wrapped)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            // The data key went (an erasure) between sealing and storing.
            return Err(StoreError::Conflict("the subject's data key changed; try again".into()));
        }
        let Some((came, message)) = came_of_age else {
            tx.commit().await.map_err(db)?;
            return Ok(false);
        };
        // The row (locked by the upsert) first, the outbox lock (in the insert) last, as an erasure.
        let n = sqlx::query(
            "UPDATE subject_ages SET coming_of_age_pending = FALSE, came_of_age_at = $2
             WHERE pseudonym = $1 AND came_of_age_at IS NULL",
        )
        .bind(&p)
        .bind(came.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if n > 0 {
            let mut outbox = OutboxColumns::new(&self.filter);
            outbox.push(&p, message, Timestamp::now());
            outbox.insert(&mut tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn age(&self, kek: &Kek, subject: &SubjectId) -> Result<Option<StoredAge>> {
        let row: Option<AgeRow> = sqlx::query_as(&format!("{AGE_COLUMNS} WHERE k.subject = $1"))
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| open_row(kek, row)).transpose()
    }

    async fn ages_of(&self, kek: &Kek, subjects: Vec<SubjectId>) -> Result<Vec<StoredAge>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
        let rows: Vec<AgeRow> = sqlx::query_as(&format!("{AGE_COLUMNS} WHERE k.subject = ANY($1)"))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(|row| open_row(kek, row)).collect()
    }

    async fn ages_since(
        &self,
        kek: &Kek,
        since: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<StoredAge>, Option<(Timestamp, String)>)> {
        let (after_at, after_p) = after.map_or((i64::MIN, String::new()), |(t, p)| (t.micros(), p));
        let rows: Vec<AgeRow> = sqlx::query_as(&format!(
            "{AGE_COLUMNS} WHERE a.updated_at >= $1 AND (a.updated_at, a.pseudonym) > ($2, $3)
             ORDER BY a.updated_at, a.pseudonym LIMIT $4"
        ))
        .bind(since.micros())
        .bind(after_at)
        .bind(after_p)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let last = rows.last().map(|r| (Timestamp::from_micros(r.6), r.1.clone()));
        let ages = rows.into_iter().map(|row| open_row(kek, row)).collect::<Result<Vec<_>>>()?;
        Ok((ages, last))
    }

    async fn pending_ages(
        &self,
        stated_by: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<PendingAge>, Option<(Timestamp, String)>)> {
        let (after_at, after_p) = after.map_or((i64::MIN, String::new()), |(t, p)| (t.micros(), p));
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT k.subject, a.pseudonym, a.updated_at
             FROM subject_ages a JOIN consentry_keystore.subject_keys k ON k.pseudonym = a.pseudonym
             WHERE a.coming_of_age_pending AND a.updated_at <= $1 AND (a.updated_at, a.pseudonym) > ($2, $3)
             ORDER BY a.updated_at, a.pseudonym LIMIT $4",
        )
        .bind(stated_by.micros())
        .bind(after_at)
        .bind(after_p)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let last = rows.last().map(|(_, p, at)| (Timestamp::from_micros(*at), p.clone()));
        let pending = rows
            .into_iter()
            .map(|(s, _, at)| {
                Ok(PendingAge { subject: subject_of(s)?, stated_at: Timestamp::from_micros(at) })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((pending, last))
    }

    async fn settle_coming_of_age(
        &self,
        subject: &SubjectId,
        stated_at: Timestamp,
        announce: Option<(Timestamp, OutboxMessage)>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row first, the outbox lock (in the insert) last, in the order an erasure takes them.
        let settled: Option<String> = sqlx::query_scalar(
            "UPDATE subject_ages SET coming_of_age_pending = FALSE, came_of_age_at = $3
             WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
               AND coming_of_age_pending AND updated_at = $2
             RETURNING pseudonym",
        )
        .bind(subject.as_str())
        .bind(stated_at.micros())
        .bind(announce.as_ref().map(|(at, _)| at.micros()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(p) = settled else { return Ok(false) };
        if let Some((_, message)) = announce {
            let mut outbox = OutboxColumns::new(&self.filter);
            outbox.push(&p, message, Timestamp::now());
            outbox.insert(&mut tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn add_guardian(&self, link: GuardianLink) -> Result<GuardianAdded> {
        let Some(child) = self.pseudonym_of(&link.child).await? else {
            return Ok(GuardianAdded::UnknownChild);
        };
        let Some(guardian) = self.pseudonym_of(&link.guardian).await? else {
            return Ok(GuardianAdded::UnknownGuardian);
        };
        // Every node's adds take one lock, so the walk below sees every relation committed before this
        // one (read committed: each statement's snapshot starts after the lock was granted).
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock(&mut tx, GUARDIAN_LOCK).await?;
        let closes: bool = sqlx::query_scalar(CLOSES_CYCLE)
            .bind(&child)
            .bind(&guardian)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if closes {
            return Ok(GuardianAdded::Cycle);
        }
        let n = sqlx::query(
            "INSERT INTO guardians (child, guardian, evidence, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (child, guardian) DO NOTHING",
        )
        .bind(child)
        .bind(guardian)
        .bind(link.evidence_sha256.map(|e| e.to_vec()))
        .bind(link.created_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(if n > 0 { GuardianAdded::Added } else { GuardianAdded::Existing })
    }

    async fn guardians(&self, child: &SubjectId) -> Result<Vec<GuardianLink>> {
        let rows: Vec<LinkRow> =
            sqlx::query_as(&format!("{LINK_COLUMNS} WHERE c.subject = $1 ORDER BY l.created_at, g.subject"))
                .bind(child.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(link).collect()
    }

    async fn guardian_pseudonyms(&self, child: &SubjectId) -> Result<Vec<(SubjectId, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT g.subject, l.guardian FROM guardians l
             JOIN consentry_keystore.subject_keys c ON c.pseudonym = l.child
             JOIN consentry_keystore.subject_keys g ON g.pseudonym = l.guardian
             WHERE c.subject = $1 ORDER BY l.created_at, g.subject",
        )
        .bind(child.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(|(g, p)| Ok((subject_of(g)?, p))).collect()
    }

    async fn children(&self, guardian: &SubjectId) -> Result<Vec<GuardianLink>> {
        let rows: Vec<LinkRow> =
            sqlx::query_as(&format!("{LINK_COLUMNS} WHERE g.subject = $1 ORDER BY l.created_at, c.subject"))
                .bind(guardian.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(link).collect()
    }

    async fn remove_guardian(&self, child: &SubjectId, guardian: &SubjectId) -> Result<bool> {
        let n = sqlx::query(
            "DELETE FROM guardians
             WHERE child = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
               AND guardian = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $2)",
        )
        .bind(child.as_str())
        .bind(guardian.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n > 0)
    }
}
