//! Ages and guardians on the embedded store: the sealed age and the relations in `consentry.db`, the data
//! key that encrypts the age in `keys.db`. Writes run on the writer, so an erasure never interleaves.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::outbox::{insert_messages, wanted};
use super::rows;
use super::store::SqliteStore;
use super::vault::ensure_key;
use crate::error::{Result, StoreError};
use crate::guardians::{GuardianAdded, GuardianLink, GuardianStore, PendingAge, StoredAge};
use crate::model::OutboxMessage;
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

fn pseudonym_of(conn: &Connection, subject: &str) -> Result<Option<String>> {
    conn.query_row("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1", [subject], |r| r.get(0))
        .optional()
        .map_err(backend)
}

type AgeRow = (String, String, String, Vec<u8>, Vec<u8>, Vec<u8>, i64, Option<i64>);

fn open_row(
    kek: &Kek,
    (subject, p, kek_id, wrapped, nonce, ciphertext, at, came): AgeRow,
) -> Result<StoredAge> {
    let key = WrappedKey { kek_id, wrapped };
    let plaintext = vault::open_age(kek, &key, &p, &SealedPayload { nonce, ciphertext })?;
    let subject = SubjectId::new(subject)
        .map_err(|_| StoreError::Backend("stored data does not decode: subject id".into()))?;
    Ok(StoredAge {
        subject,
        plaintext,
        updated_at: Timestamp::from_micros(at),
        came_of_age_at: came.map(Timestamp::from_micros),
    })
}

const AGE_COLUMNS: &str =
    "SELECT k.subject, a.pseudonym, d.kek_id, d.wrapped, a.nonce, a.ciphertext, a.updated_at, a.came_of_age_at
     FROM subject_ages a JOIN ks.subject_keys k ON k.pseudonym = a.pseudonym
     JOIN ks.subject_data_keys d ON d.subject = k.subject";

fn age_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgeRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
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

/// Whether the guardian (`?2`) is the child (`?1`) or someone the child is, directly or further down, a
/// guardian of: the walk down the relations from the child, over pseudonyms. `UNION` keeps each pseudonym
/// once, so the walk ends even on a cycle stored before this check existed.
const CLOSES_CYCLE: &str = "WITH RECURSIVE down(p) AS (
         SELECT ?1 UNION SELECT l.child FROM guardians l JOIN down d ON l.guardian = d.p
     ) SELECT EXISTS (SELECT 1 FROM down WHERE p = ?2)";

#[async_trait]
impl GuardianStore for SqliteStore {
    async fn set_age(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        plaintext: Vec<u8>,
        at: Timestamp,
        came_of_age: Option<(Timestamp, OutboxMessage)>,
    ) -> Result<bool> {
        let (kek, subject, filter) = (kek.clone(), subject.as_str().to_owned(), self.filter.clone());
        self.write(move |conn| {
            let (p, key) = ensure_key(conn, &subject, &kek)?;
            let sealed = vault::seal_age(&kek, &key, &p, &plaintext)?;
            let tx = conn.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO subject_ages (pseudonym, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pseudonym) DO UPDATE SET nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
                     coming_of_age_pending = subject_ages.came_of_age_at IS NULL",
                params![p, sealed.nonce, sealed.ciphertext, at.micros()],
            )
            .map_err(backend)?;
            let announced = match came_of_age {
                None => false,
                Some((came, message)) => {
                    let n = tx
                        .execute(
                            "UPDATE subject_ages SET coming_of_age_pending = 0, came_of_age_at = ?2
                             WHERE pseudonym = ?1 AND came_of_age_at IS NULL",
                            params![p, came.micros()],
                        )
                        .map_err(backend)?;
                    if n > 0 {
                        let wanted = wanted(&tx, &filter)?;
                        insert_messages(&tx, &wanted, &p, std::slice::from_ref(&message), Timestamp::now())?;
                    }
                    n > 0
                }
            };
            tx.commit().map_err(backend)?;
            Ok(announced)
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

    async fn ages_of(&self, kek: &Kek, subjects: Vec<SubjectId>) -> Result<Vec<StoredAge>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!("{AGE_COLUMNS} WHERE k.subject = ?1"))?;
                let mut found = Vec::new();
                for subject in &subjects {
                    if let Some(row) = stmt.query_row([subject.as_str()], age_row).optional()? {
                        found.push(row);
                    }
                }
                Ok(found)
            })
            .await?;
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

    async fn pending_ages(
        &self,
        stated_by: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: u32,
    ) -> Result<(Vec<PendingAge>, Option<(Timestamp, String)>)> {
        let (after_at, after_p) = after.map_or((i64::MIN, String::new()), |(t, p)| (t.micros(), p));
        let rows: Vec<(String, String, i64)> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT k.subject, a.pseudonym, a.updated_at
                     FROM subject_ages a JOIN ks.subject_keys k ON k.pseudonym = a.pseudonym
                     WHERE a.coming_of_age_pending = 1 AND a.updated_at <= ?1
                       AND (a.updated_at, a.pseudonym) > (?2, ?3)
                     ORDER BY a.updated_at, a.pseudonym LIMIT ?4",
                )?
                .query_map(params![stated_by.micros(), after_at, after_p, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .await?;
        let last = rows.last().map(|(_, p, at)| (Timestamp::from_micros(*at), p.clone()));
        let pending = rows
            .into_iter()
            .map(|(s, _, at)| {
                let subject = SubjectId::new(s)
                    .map_err(|_| StoreError::Backend("stored data does not decode: subject id".into()))?;
                Ok(PendingAge { subject, stated_at: Timestamp::from_micros(at) })
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
        let (subject, filter) = (subject.as_str().to_owned(), self.filter.clone());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let settled: Option<String> = tx
                .query_row(
                    "UPDATE subject_ages SET coming_of_age_pending = 0, came_of_age_at = ?3
                     WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                       AND coming_of_age_pending = 1 AND updated_at = ?2
                     RETURNING pseudonym",
                    params![subject, stated_at.micros(), announce.as_ref().map(|(at, _)| at.micros())],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(p) = settled else { return Ok(false) };
            if let Some((_, message)) = announce {
                let wanted = wanted(&tx, &filter)?;
                insert_messages(&tx, &wanted, &p, std::slice::from_ref(&message), Timestamp::now())?;
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn add_guardian(&self, link: GuardianLink) -> Result<GuardianAdded> {
        self.write(move |conn| {
            let Some(child) = pseudonym_of(conn, link.child.as_str())? else {
                return Ok(GuardianAdded::UnknownChild);
            };
            let Some(guardian) = pseudonym_of(conn, link.guardian.as_str())? else {
                return Ok(GuardianAdded::UnknownGuardian);
            };
            // On the writer: no other relation is added between this check and the insert.
            let closes: bool =
                conn.query_row(CLOSES_CYCLE, params![child, guardian], |r| r.get(0)).map_err(backend)?;
            if closes {
                return Ok(GuardianAdded::Cycle);
            }
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

    async fn guardian_pseudonyms(&self, child: &SubjectId) -> Result<Vec<(SubjectId, String)>> {
        let child = child.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT g.subject, l.guardian FROM guardians l
                 JOIN ks.subject_keys c ON c.pseudonym = l.child
                 JOIN ks.subject_keys g ON g.pseudonym = l.guardian
                 WHERE c.subject = ?1 ORDER BY l.created_at, g.subject",
            )?
            .query_map([child], |r| Ok((rows::subject(r.get(0)?)?, r.get(1)?)))?
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
