//! Subject-token revocations and spent links on the embedded store: rows in `consentry.db`, revocations
//! under the subject's pseudonym, resolved through the key store (`ks.subject_keys`). Writes run on the
//! writer connection; the look-up made on every use of a token is one read.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::db::backend;
use super::pseudonyms::pseudonym_for;
use super::store::SqliteStore;
use crate::error::Result;
use crate::tokens::TokenStore;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn revoke_subject_tokens(
        &self,
        subject: &SubjectId,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<()> {
        let subject = subject.as_str().to_owned();
        self.write(move |conn| {
            // The pseudonym's key is committed on its own first (as appends do).
            let p = pseudonym_for(conn, &subject)?;
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("DELETE FROM token_revocations WHERE revoked_at < ?1", [forget_before.micros()])
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO token_revocations (pseudonym, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT (pseudonym) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at)",
                params![p, at.micros()],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn subject_tokens_revoked_at(&self, subject: &SubjectId) -> Result<Option<Timestamp>> {
        let subject = subject.as_str().to_owned();
        let at: Option<i64> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT r.revoked_at FROM token_revocations r
                     JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym WHERE k.subject = ?1",
                )?
                .query_row([subject], |r| r.get(0))
                .optional()
            })
            .await?;
        Ok(at.map(Timestamp::from_micros))
    }

    async fn spend_link(&self, jti: &str, expires_at: Timestamp, now: Timestamp) -> Result<bool> {
        let jti = jti.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("DELETE FROM spent_links WHERE expires_at < ?1", [now.micros()]).map_err(backend)?;
            let spent = tx
                .execute(
                    "INSERT INTO spent_links (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                    params![jti, expires_at.micros()],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(spent == 1)
        })
        .await
    }
}
