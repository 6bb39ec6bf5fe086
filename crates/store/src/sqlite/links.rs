//! Linking subjects on the embedded store: on the writer, the survivor's pseudonym and data key are made
//! (and committed) first when missing; then one transaction re-seals `from`'s identifiers and records
//! under the survivor's key, moves its devices and requests to the survivor's pseudonym and stores the
//! alias in the key store.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::rows;
use super::store::SqliteStore;
use super::vault::ensure_key;
use crate::error::Result;
use crate::links::{LinkStore, MovedSubject};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

type Sealed = Vec<(String, Vec<u8>, Vec<u8>)>;

fn sealed_rows(conn: &Connection, sql: &str, p: &str) -> Result<Sealed> {
    let mut stmt = conn.prepare(sql).map_err(backend)?;
    let rows = stmt.query_map([p], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(backend)?;
    rows.collect::<rusqlite::Result<Sealed>>().map_err(backend)
}

fn move_rows(conn: &mut Connection, kek: &Kek, from: &str, to: &str, at: Timestamp) -> Result<MovedSubject> {
    let mut moved = MovedSubject::default();
    let source: Option<(String, Option<String>, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT k.pseudonym, d.kek_id, d.wrapped FROM ks.subject_keys k
             LEFT JOIN ks.subject_data_keys d ON d.subject = k.subject WHERE k.subject = ?1",
            [from],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?;
    let (p_to, key_to) = ensure_key(conn, to, kek)?;
    let tx = conn.transaction().map_err(backend)?;
    if let Some((p_from, kek_id, wrapped)) = source {
        if let (Some(kek_id), Some(wrapped)) = (kek_id, wrapped) {
            let key_from = WrappedKey { kek_id, wrapped };
            let ids = sealed_rows(
                &tx,
                "SELECT id, nonce, ciphertext FROM identifiers WHERE pseudonym = ?1",
                &p_from,
            )?;
            for (id, nonce, ciphertext) in ids {
                let plain = vault::open_identifier(
                    kek,
                    &key_from,
                    &p_from,
                    &id,
                    &SealedPayload { nonce, ciphertext },
                )?;
                let sealed = vault::seal_identifier(kek, &key_to, &p_to, &id, &plain)?;
                tx.execute(
                    "UPDATE identifiers SET pseudonym = ?2, nonce = ?3, ciphertext = ?4 WHERE id = ?1",
                    params![id, p_to, sealed.nonce, sealed.ciphertext],
                )
                .map_err(backend)?;
                moved.identifiers += 1;
            }
            let records =
                sealed_rows(&tx, "SELECT id, nonce, ciphertext FROM records WHERE pseudonym = ?1", &p_from)?;
            for (id, nonce, ciphertext) in records {
                let plain =
                    vault::open_payload(kek, &key_from, &p_from, &id, &SealedPayload { nonce, ciphertext })?;
                let sealed = vault::seal_payload(kek, &key_to, &p_to, &id, &plain)?;
                tx.execute(
                    "UPDATE records SET pseudonym = ?2, nonce = ?3, ciphertext = ?4 WHERE id = ?1",
                    params![id, p_to, sealed.nonce, sealed.ciphertext],
                )
                .map_err(backend)?;
                moved.records += 1;
            }
        }
        moved.devices = tx
            .prepare("UPDATE devices SET pseudonym = ?2 WHERE pseudonym = ?1 RETURNING id")
            .map_err(backend)?
            .query_map([&p_from, &p_to], |r| r.get(0))
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)?;
        moved.requests = tx
            .execute("UPDATE requests SET pseudonym = ?2 WHERE pseudonym = ?1", [&p_from, &p_to])
            .map_err(backend)? as u64;
    }
    tx.execute("UPDATE ks.subject_links SET survivor = ?2 WHERE survivor = ?1", [from, to])
        .map_err(backend)?;
    tx.execute(
        "INSERT INTO ks.subject_links (subject, survivor, linked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (subject) DO UPDATE SET survivor = excluded.survivor, linked_at = excluded.linked_at",
        params![from, to, at.micros()],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(moved)
}

#[async_trait]
impl LinkStore for SqliteStore {
    async fn link_subjects(
        &self,
        kek: &Kek,
        from: &SubjectId,
        to: &SubjectId,
        at: Timestamp,
    ) -> Result<MovedSubject> {
        let (kek, from, to) = (kek.clone(), from.as_str().to_owned(), to.as_str().to_owned());
        self.write(move |conn| move_rows(conn, &kek, &from, &to, at)).await
    }

    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT subject, survivor FROM ks.subject_links ORDER BY subject")?;
            stmt.query_map([], |r| Ok((rows::subject(r.get(0)?)?, rows::subject(r.get(1)?)?)))?.collect()
        })
        .await
    }
}
