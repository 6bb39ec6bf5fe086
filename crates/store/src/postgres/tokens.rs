//! Subject-token revocations and spent links on PostgreSQL: revocations under the subject's pseudonym,
//! resolved through `consentry_keystore.subject_keys`. Every node reads the same rows, so a revocation or
//! a spent link holds on all of them as soon as it commits.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::error::db;
use super::pseudonyms::pseudonyms_for;
use super::store::PostgresStore;
use crate::error::{Result, StoreError};
use crate::tokens::TokenStore;

#[async_trait]
impl TokenStore for PostgresStore {
    async fn revoke_subject_tokens(
        &self,
        subject: &SubjectId,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pseudonyms = pseudonyms_for(&mut tx, vec![subject.as_str().to_owned()]).await?;
        let p = pseudonyms
            .get(subject.as_str())
            .ok_or_else(|| StoreError::Backend("no pseudonym for the subject".into()))?;
        sqlx::query("DELETE FROM token_revocations WHERE revoked_at < $1")
            .bind(forget_before.micros())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO token_revocations (pseudonym, revoked_at) VALUES ($1, $2)
             ON CONFLICT (pseudonym) DO UPDATE
             SET revoked_at = GREATEST(token_revocations.revoked_at, EXCLUDED.revoked_at)",
        )
        .bind(p)
        .bind(at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn subject_tokens_revoked_at(&self, subject: &SubjectId) -> Result<Option<Timestamp>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT r.revoked_at FROM token_revocations r
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym WHERE k.subject = $1",
        )
        .bind(subject.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(at.map(Timestamp::from_micros))
    }

    async fn spend_link(&self, jti: &str, expires_at: Timestamp, now: Timestamp) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM spent_links WHERE expires_at < $1")
            .bind(now.micros())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // The primary key decides between concurrent spends on any node: one insert wins.
        let spent = sqlx::query(
            "INSERT INTO spent_links (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(spent == 1)
    }
}
