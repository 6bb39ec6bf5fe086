//! The preference centre's reads on PostgreSQL.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use super::{PostgresStore, db};
use crate::{PreferenceStore, Result, StoredReceipt};

#[async_trait]
impl PreferenceStore for PostgresStore {
    async fn subject_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT r.id, r.jws, r.created_at FROM receipts r
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym
             WHERE k.subject = $1 ORDER BY r.last_seq DESC LIMIT $2",
        )
        .bind(subject.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, jws, created_at)| StoredReceipt {
                id,
                subject: Some(subject.clone()),
                jws,
                created_at: Timestamp::from_micros(created_at),
            })
            .collect())
    }
}
