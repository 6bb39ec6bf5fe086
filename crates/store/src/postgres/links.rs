//! Linking subjects on PostgreSQL: the survivor's pseudonym and data key are made first when missing; then
//! one transaction, holding `from`'s data-key row (so an erasure or a put of `from` waits), re-seals its
//! identifiers and records under the survivor's key, moves its devices and requests to the survivor's
//! pseudonym and stores the alias in the key store schema.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::error::db;
use super::store::PostgresStore;
use super::vault::subject_of;
use crate::error::Result;
use crate::links::{LinkStore, MovedSubject};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

#[async_trait]
impl LinkStore for PostgresStore {
    async fn link_subjects(
        &self,
        kek: &Kek,
        from: &SubjectId,
        to: &SubjectId,
        at: Timestamp,
    ) -> Result<MovedSubject> {
        let (p_to, key_to) = self.ensure_key(to.as_str(), kek).await?;
        let mut moved = MovedSubject::default();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let source: Option<(String, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT k.pseudonym, d.kek_id, d.wrapped FROM consentry_keystore.subject_keys k
             LEFT JOIN consentry_keystore.subject_data_keys d ON d.subject = k.subject
             WHERE k.subject = $1 FOR UPDATE OF k",
        )
        .bind(from.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some((p_from, kek_id, wrapped)) = source {
            if let (Some(kek_id), Some(wrapped)) = (kek_id, wrapped) {
                let key_from = WrappedKey { kek_id, wrapped };
                let ids: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, nonce, ciphertext FROM identifiers WHERE pseudonym = $1 FOR UPDATE",
                )
                .bind(&p_from)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                for (id, nonce, ciphertext) in ids {
                    let sealed_from = SealedPayload { nonce, ciphertext };
                    let plain = vault::open_identifier(kek, &key_from, &p_from, &id, &sealed_from)?;
                    let sealed = vault::seal_identifier(kek, &key_to, &p_to, &id, &plain)?;
                    sqlx::query(
                        "UPDATE identifiers SET pseudonym = $2, nonce = $3, ciphertext = $4 WHERE id = $1",
                    )
                    .bind(&id)
                    .bind(&p_to)
                    .bind(&sealed.nonce)
                    .bind(&sealed.ciphertext)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    moved.identifiers += 1;
                }
                let records: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, nonce, ciphertext FROM records WHERE pseudonym = $1 FOR UPDATE",
                )
                .bind(&p_from)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                for (id, nonce, ciphertext) in records {
                    let sealed_from = SealedPayload { nonce, ciphertext };
                    let plain = vault::open_payload(kek, &key_from, &p_from, &id, &sealed_from)?;
                    let sealed = vault::seal_payload(kek, &key_to, &p_to, &id, &plain)?;
                    sqlx::query(
                        "UPDATE records SET pseudonym = $2, nonce = $3, ciphertext = $4 WHERE id = $1",
                    )
                    .bind(&id)
                    .bind(&p_to)
                    .bind(&sealed.nonce)
                    .bind(&sealed.ciphertext)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    moved.records += 1;
                }
            }
            moved.devices =
                sqlx::query_scalar("UPDATE devices SET pseudonym = $2 WHERE pseudonym = $1 RETURNING id")
                    .bind(&p_from)
                    .bind(&p_to)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
            moved.requests = sqlx::query("UPDATE requests SET pseudonym = $2 WHERE pseudonym = $1")
                .bind(&p_from)
                .bind(&p_to)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
        }
        sqlx::query("UPDATE consentry_keystore.subject_links SET survivor = $2 WHERE survivor = $1")
            .bind(from.as_str())
            .bind(to.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO consentry_keystore.subject_links (subject, survivor, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (subject) DO UPDATE SET survivor = EXCLUDED.survivor, linked_at = EXCLUDED.linked_at",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(moved)
    }

    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT subject, survivor FROM consentry_keystore.subject_links ORDER BY subject")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(|(a, b)| Ok((subject_of(a)?, subject_of(b)?))).collect()
    }
}
