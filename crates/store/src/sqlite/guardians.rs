//! Ages and guardians on the embedded store: the sealed age and the relations in `consentry.db`, the data
//! key that encrypts the age in `keys.db`. Writes run on the writer, so an erasure never interleaves.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::rows;
use super::store::SqliteStore;
use super::vault::ensure_key;
use crate::error::{Result, StoreError};
use crate::guardians::{GuardianAdded, GuardianLink, GuardianStore, StoredAge};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

fn pseudonym_of(conn: &Connection, subject: &str) -> Result<Option<String>> {
    conn.query_row("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1", [subject], |r| r.get(0))
        .optional()
        .map_err(backend)
}

type AgeRow = (String, String, String, Vec<u8>, Vec<u8>, Vec<u8>, i64);

fn open_row(kek: &Kek, (subject, p, kek_id, wrapped, nonce, ciphertext, at): AgeRow) -> Result<StoredAge> {
    let key = WrappedKey { kek_id, wrapped };
    let plaintext = vault::open_age(kek, &key, &p, &SealedPayload { nonce, ciphertext })?;
    let subject = SubjectId::new(subject)
        .map_err(|_| StoreError::Backend("stored data does not decode: subject id".into()))?;
    Ok(StoredAge { subject, plaintext, updated_at: Timestamp::from_micros(at) })
}

const AGE_COLUMNS: &str =
    "SELECT k.subject, a.pseudonym, d.kek_id, d.wrapped, a.nonce, a.ciphertext, a.updated_at
     FROM subject_ages a JOIN ks.subject_keys k ON k.pseudonym = a.pseudonym
     JOIN ks.subject_data_keys d ON d.subject = k.subject";

fn age_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgeRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GuardianLink> {
    let evidence: Option<Vec<u8>> = r.get(2)?;
    Ok(GuardianLink {
        child: rows::subject(r.get(0)?)?,
        guardian: rows::subject(r.get(1)?)?,
        evidence_sha256: evidence.and_then(|e| <[u8; 32]>::try_from(e).ok()),
        created_at: Timestamp::from_micros(r.get(3)?),
    })
}

const LINK_COLUMNS: &str = "SELECT c.subject, g.subject, l.evidence, l.created_at FROM guardians l
     JOIN ks.subject_keys c ON c.pseudonym = l.child JOIN ks.subject_keys g ON g.pseudonym = l.guardian";

#[async_trait]
impl GuardianStore for SqliteStore {
    async fn set_age(&self, kek: &Kek, subject: &SubjectId, plaintext: Vec<u8>, at: Timestamp) -> Result<()> {
        let (kek, subject) = (kek.clone(), subject.as_str().to_owned());
        self.write(move |conn| {
            let (p, key) = ensure_key(conn, &subject, &kek)?;
            let sealed = vault::seal_age(&kek, &key, &p, &plaintext)?;
            conn.execute(
                "INSERT INTO subject_ages (pseudonym, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pseudonym) DO UPDATE SET nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                params![p, sealed.nonce, sealed.ciphertext, at.micros()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn age(&self, kek: &Kek, subject: &SubjectId) -> Result<Option<StoredAge>> {
        let lookup = subject.as_str().to_owned();
        let row = self
            .read(move |conn| {
                conn.prepare_cached(&format!("{AGE_COLUMNS} WHERE k.subject = ?1"))?
                    .query_row([&lookup], age_row)
                    .optional()
            })
            .await?;
        row.map(|row| open_row(kek, row)).transpose()
    }

    async fn ages_since(
        &self,
        kek: &Kek,
        since: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<StoredAge>, Option<(Timestamp, String)>)> {
        let (after_at, after_p) = after.map_or((i64::MIN, String::new()), |(t, p)| (t.micros(), p));
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "{AGE_COLUMNS} WHERE a.updated_at >= ?1 AND (a.updated_at, a.pseudonym) > (?2, ?3)
                     ORDER BY a.updated_at, a.pseudonym LIMIT ?4"
                ))?
                .query_map(params![since.micros(), after_at, after_p, limit], age_row)?
                .collect::<rusqlite::Result<Vec<AgeRow>>>()
            })
            .await?;
        let last = rows.last().map(|r| (Timestamp::from_micros(r.6), r.1.clone()));
        let ages = rows.into_iter().map(|row| open_row(kek, row)).collect::<Result<Vec<_>>>()?;
        Ok((ages, last))
    }

    async fn add_guardian(&self, link: GuardianLink) -> Result<GuardianAdded> {
        self.write(move |conn| {
            let Some(child) = pseudonym_of(conn, link.child.as_str())? else {
                return Ok(GuardianAdded::UnknownChild);
            };
            let Some(guardian) = pseudonym_of(conn, link.guardian.as_str())? else {
                return Ok(GuardianAdded::UnknownGuardian);
            };
            let n = conn
                .execute(
                    "INSERT INTO guardians (child, guardian, evidence, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (child, guardian) DO NOTHING",
                    params![
                        child,
                        guardian,
                        link.evidence_sha256.map(|e| e.to_vec()),
                        link.created_at.micros()
                    ],
                )
                .map_err(backend)?;
            Ok(if n > 0 { GuardianAdded::Added } else { GuardianAdded::Existing })
        })
        .await
    }

    async fn guardians(&self, child: &SubjectId) -> Result<Vec<GuardianLink>> {
        let child = child.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "{LINK_COLUMNS} WHERE c.subject = ?1 ORDER BY l.created_at, g.subject"
            ))?
            .query_map([child], link_row)?
            .collect()
        })
        .await
    }

    async fn children(&self, guardian: &SubjectId) -> Result<Vec<GuardianLink>> {
        let guardian = guardian.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "{LINK_COLUMNS} WHERE g.subject = ?1 ORDER BY l.created_at, c.subject"
            ))?
            .query_map([guardian], link_row)?
            .collect()
        })
        .await
    }

    async fn remove_guardian(&self, child: &SubjectId, guardian: &SubjectId) -> Result<bool> {
        let (child, guardian) = (child.as_str().to_owned(), guardian.as_str().to_owned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM guardians
                     WHERE child = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                       AND guardian = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?2)",
                    params![child, guardian],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}
