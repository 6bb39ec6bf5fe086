//! Identifiers on the embedded store: blind index, ciphertext and pseudonym in `consentry.db`, the data key
//! that encrypts the value in `keys.db`. An add runs on the writer: the subject's pseudonym and data key
//! are made (and committed) first when missing, the value is sealed, and the row inserted unless its blind
//! index is stored; an erasure, on the same writer, never interleaves with it.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::db::{backend, is_constraint_violation};
use super::rows;
use super::store::SqliteStore;
use super::vault::ensure_key;
use crate::error::{Result, StoreError};
use crate::identifiers::{AddedIdentifier, IdentifierStore, NewIdentifier, StoredIdentifier};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

#[async_trait]
impl IdentifierStore for SqliteStore {
    async fn add_identifier(&self, kek: &Kek, identifier: NewIdentifier) -> Result<AddedIdentifier> {
        let kek = kek.clone();
        self.write(move |conn| {
            let NewIdentifier { id, subject, kind, blind_index, value, created_at } = identifier;
            let owner: Option<(String, String, i64)> = conn
                .query_row(
                    "SELECT i.pseudonym, i.id, i.created_at FROM identifiers i WHERE i.blind_index = ?1",
                    [&blind_index[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            let (p, key) = ensure_key(conn, subject.as_str(), &kek)?;
            if let Some((owner, existing, at)) = owner {
                return Ok(if owner == p {
                    AddedIdentifier::Existing { id: existing, created_at: Timestamp::from_micros(at) }
                } else {
                    AddedIdentifier::Taken
                });
            }
            let sealed = vault::seal_identifier(&kek, &key, &p, &id, value.as_bytes())?;
            let inserted = conn.execute(
                "INSERT INTO identifiers (blind_index, id, pseudonym, kind, nonce, ciphertext, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![&blind_index[..], id, p, kind, sealed.nonce, sealed.ciphertext, created_at.micros()],
            );
            match inserted {
                Ok(_) => Ok(AddedIdentifier::Added),
                Err(e) if is_constraint_violation(&e) => {
                    Err(StoreError::Conflict("an identifier with this id exists".into()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn identifiers(&self, kek: &Kek, subject: &SubjectId) -> Result<Vec<StoredIdentifier>> {
        let lookup = subject.as_str().to_owned();
        type Row = (String, String, Vec<u8>, Vec<u8>, i64);
        let found: Option<(String, WrappedKey, Vec<Row>)> = self
            .read(move |conn| {
                let key: Option<(String, String, Vec<u8>)> = conn
                    .prepare_cached(
                        "SELECT k.pseudonym, d.kek_id, d.wrapped FROM ks.subject_keys k
                         JOIN ks.subject_data_keys d ON d.subject = k.subject WHERE k.subject = ?1",
                    )?
                    .query_row([&lookup], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let Some((p, kek_id, wrapped)) = key else { return Ok(None) };
                let rows = conn
                    .prepare_cached(
                        "SELECT id, kind, nonce, ciphertext, created_at FROM identifiers
                         WHERE pseudonym = ?1 ORDER BY created_at, id",
                    )?
                    .query_map([&p], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<rusqlite::Result<Vec<Row>>>()?;
                Ok(Some((p, WrappedKey { kek_id, wrapped }, rows)))
            })
            .await?;
        let Some((p, key, rows)) = found else { return Ok(Vec::new()) };
        rows.into_iter()
            .map(|(id, kind, nonce, ciphertext, at)| {
                let plain = vault::open_identifier(kek, &key, &p, &id, &SealedPayload { nonce, ciphertext })?;
                let value = String::from_utf8(plain)
                    .map_err(|_| StoreError::Backend("a stored identifier is not UTF-8".into()))?;
                Ok(StoredIdentifier { id, kind, value, created_at: Timestamp::from_micros(at) })
            })
            .collect()
    }

    async fn delete_identifier(&self, subject: &SubjectId, id: &str) -> Result<bool> {
        let (subject, id) = (subject.as_str().to_owned(), id.to_owned());
        self.write(move |conn| {
            // The index entry goes with the row; overwritten, not left in a free page.
            conn.execute_batch("PRAGMA main.secure_delete = ON").map_err(backend)?;
            let n = conn.execute(
                "DELETE FROM identifiers WHERE id = ?1
                   AND pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?2)",
                params![id, subject],
            );
            let _ = conn.execute_batch("PRAGMA main.secure_delete = OFF");
            Ok(n.map_err(backend)? > 0)
        })
        .await
    }

    async fn subject_by_identifier(&self, blind_index: &[u8; 32]) -> Result<Option<SubjectId>> {
        let blind_index = blind_index.to_vec();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT k.subject FROM identifiers i JOIN ks.subject_keys k ON k.pseudonym = i.pseudonym
                 WHERE i.blind_index = ?1",
            )?
            .query_row([blind_index], |r| rows::subject(r.get(0)?))
            .optional()
        })
        .await
    }
}
