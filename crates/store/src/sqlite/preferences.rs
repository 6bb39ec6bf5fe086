//! The preference centre's reads on the embedded store.

use async_trait::async_trait;
use consentry_core::SubjectId;
use rusqlite::params;

use super::{SqliteStore, rows};
use crate::{PreferenceStore, Result, StoredReceipt};

#[async_trait]
impl PreferenceStore for SqliteStore {
    async fn subject_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, k.subject, r.jws, r.created_at FROM receipts r
                 JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym
                 WHERE k.subject = ?1 ORDER BY r.last_seq DESC LIMIT ?2",
            )?;
            stmt.query_map(params![subject, limit], rows::receipt)?.collect()
        })
        .await
    }
}
