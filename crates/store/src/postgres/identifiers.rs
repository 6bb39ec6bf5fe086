//! Identifiers on PostgreSQL: blind index, ciphertext and pseudonym in the data schema, the data key that
//! encrypts the value in `consentry_keystore`. The blind index is the primary key, so of two nodes adding
//! the same identifier at once one wins; an add inserts only while the subject's data key is still the one
//! it sealed under (holding a share lock on it), so an erasure, which deletes the key first, waits for it
//! and then deletes its row.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::error::{db, is_unique_violation};
use super::store::PostgresStore;
use super::vault::subject_of;
use crate::error::{Result, StoreError};
use crate::identifiers::{AddedIdentifier, IdentifierStore, NewIdentifier, StoredIdentifier};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

impl PostgresStore {
    /// Who holds `blind_index`: the stored row's pseudonym, id and creation time.
    async fn identifier_owner(&self, blind_index: &[u8; 32]) -> Result<Option<(String, String, i64)>> {
        sqlx::query_as("SELECT pseudonym, id, created_at FROM identifiers WHERE blind_index = $1")
            .bind(&blind_index[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }
}

#[async_trait]
impl IdentifierStore for PostgresStore {
    async fn add_identifier(&self, kek: &Kek, identifier: NewIdentifier) -> Result<AddedIdentifier> {
        let NewIdentifier { id, subject, kind, blind_index, value, created_at } = identifier;
        let (p, key) = self.ensure_key(subject.as_str(), kek).await?;
        let judge = |owner: Option<(String, String, i64)>| match owner {
            Some((owner, existing, at)) if owner == p => {
                Some(AddedIdentifier::Existing { id: existing, created_at: Timestamp::from_micros(at) })
            }
            Some(_) => Some(AddedIdentifier::Taken),
            None => None,
        };
        if let Some(answer) = judge(self.identifier_owner(&blind_index).await?) {
            return Ok(answer);
        }
        let sealed = vault::seal_identifier(kek, &key, &p, &id, value.as_bytes())?;
        let inserted = sqlx::query(
            "INSERT INTO identifiers (blind_index, id, pseudonym, kind, nonce, ciphertext, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7
             FROM consentry_keystore.subject_data_keys d
             WHERE d.subject = $8 AND d.wrapped = $9
             FOR SHARE OF d
             ON CONFLICT (blind_index) DO NOTHING",
        )
        .bind(&blind_index[..])
        .bind(&id)
        .bind(&p)
        .bind(&kind)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(created_at.micros())
        .bind(subject.as_str())
        .bind(&key.wrapped)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(done) if done.rows_affected() == 1 => Ok(AddedIdentifier::Added),
            Ok(_) => match judge(self.identifier_owner(&blind_index).await?) {
                Some(answer) => Ok(answer),
                // No row and no conflict: the data key went (an erasure) between sealing and inserting.
                None => Err(StoreError::Conflict("the subject's data key changed; try again".into())),
            },
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("an identifier with this id exists".into()))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn identifiers(&self, kek: &Kek, subject: &SubjectId) -> Result<Vec<StoredIdentifier>> {
        let key: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT k.pseudonym, d.kek_id, d.wrapped FROM consentry_keystore.subject_keys k
             JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject WHERE k.subject = $1",
        )
        .bind(subject.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some((p, kek_id, wrapped)) = key else { return Ok(Vec::new()) };
        let key = WrappedKey { kek_id, wrapped };
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT id, kind, nonce, ciphertext, created_at FROM identifiers
             WHERE pseudonym = $1 ORDER BY created_at, id",
        )
        .bind(&p)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
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
        let n = sqlx::query(
            "DELETE FROM identifiers WHERE id = $1
               AND pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $2)",
        )
        .bind(id)
        .bind(subject.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn subject_by_identifier(&self, blind_index: &[u8; 32]) -> Result<Option<SubjectId>> {
        let subject: Option<String> = sqlx::query_scalar(
            "SELECT k.subject FROM identifiers i
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = i.pseudonym WHERE i.blind_index = $1",
        )
        .bind(&blind_index[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        subject.map(subject_of).transpose()
    }
}
