//! Linking subjects on PostgreSQL: [`LinkStore`] sends the link to the writer as an append job; what it
//! does under the ledger lock is in `linking.rs`.

use async_trait::async_trait;
use consentry_core::SubjectId;
use tokio::sync::oneshot;

use super::error::db;
use super::linking::LinkJob;
use super::store::PostgresStore;
use super::vault::subject_of;
use super::writer::AppendJob;
use crate::error::{Result, StoreError};
use crate::links::{LinkPlan, LinkRefusal, LinkSlot, LinkStore, LinkedSubjects, take_slot};

#[async_trait]
impl LinkStore for PostgresStore {
    async fn link_subjects(
        &self,
        into: &SubjectId,
        plan: LinkPlan,
    ) -> Result<std::result::Result<LinkedSubjects, LinkRefusal>> {
        let slot = LinkSlot::default();
        let link = LinkJob { from: plan.from, kek: plan.kek, merge: Some(plan.merge), slot: slot.clone() };
        let (reply, rx) = oneshot::channel();
        let job = AppendJob {
            subject: into.clone(),
            events: Vec::new(),
            import: None,
            seal: plan.seal,
            link: Some(link),
            reply,
        };
        self.send_append(job)?;
        let (events, sealed) = rx.await.map_err(|_| StoreError::Closed)??;
        match take_slot(&slot) {
            Some(Ok(moved)) => Ok(Ok(LinkedSubjects { events, sealed, moved })),
            Some(Err(refusal)) => Ok(Err(refusal)),
            None => Err(StoreError::Backend("the link was not made".into())),
        }
    }

    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT subject, survivor FROM consentry_keystore.subject_links ORDER BY subject")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(|(a, b)| Ok((subject_of(a)?, subject_of(b)?))).collect()
    }

    async fn survivors_among(&self, subjects: Vec<SubjectId>) -> Result<Vec<(SubjectId, SubjectId)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT subject, survivor FROM consentry_keystore.subject_links WHERE subject = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found.into_iter().map(|(a, s)| Ok((subject_of(a)?, subject_of(s)?))).collect()
    }

    async fn aliases_of(&self, survivor: &SubjectId) -> Result<Vec<SubjectId>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT subject FROM consentry_keystore.subject_links WHERE survivor = $1 ORDER BY subject",
        )
        .bind(survivor.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(subject_of).collect()
    }
}
