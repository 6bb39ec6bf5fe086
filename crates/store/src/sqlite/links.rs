//! Linking subjects on the embedded store: [`LinkStore`] sends the link to the writer as an append job; what
//! it does inside the group's transaction is in `linking.rs`.

use async_trait::async_trait;
use consentry_core::SubjectId;
use rusqlite::OptionalExtension;

use super::jobs::{AppendJob, Grouped, LinkJob};
use super::rows;
use super::store::SqliteStore;
use crate::error::{Result, StoreError};
use crate::links::{LinkPlan, LinkRefusal, LinkSlot, LinkStore, LinkedSubjects, take_slot};

#[async_trait]
impl LinkStore for SqliteStore {
    async fn link_subjects(
        &self,
        into: &SubjectId,
        plan: LinkPlan,
    ) -> Result<std::result::Result<LinkedSubjects, LinkRefusal>> {
        let slot = LinkSlot::default();
        let link = LinkJob { from: plan.from, kek: plan.kek, merge: Some(plan.merge), slot: slot.clone() };
        let subject = into.clone();
        let (events, sealed) = self
            .grouped(|reply| {
                Grouped::Append(AppendJob {
                    subject,
                    events: Vec::new(),
                    import: None,
                    seal: plan.seal,
                    link: Some(link),
                    reply,
                })
            })
            .await?;
        match take_slot(&slot) {
            Some(Ok(moved)) => Ok(Ok(LinkedSubjects { events, sealed, moved })),
            Some(Err(refusal)) => Ok(Err(refusal)),
            None => Err(StoreError::Backend("the link was not made".into())),
        }
    }

    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT subject, survivor FROM ks.subject_links ORDER BY subject")?;
            stmt.query_map([], |r| Ok((rows::subject(r.get(0)?)?, rows::subject(r.get(1)?)?)))?.collect()
        })
        .await
    }

    async fn survivors_among(&self, subjects: Vec<SubjectId>) -> Result<Vec<(SubjectId, SubjectId)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT survivor FROM ks.subject_links WHERE subject = ?1")?;
            let mut found = Vec::new();
            for subject in subjects {
                let survivor: Option<String> = stmt.query_row([subject.as_str()], |r| r.get(0)).optional()?;
                if let Some(survivor) = survivor {
                    found.push((subject, rows::subject(survivor)?));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn aliases_of(&self, survivor: &SubjectId) -> Result<Vec<SubjectId>> {
        let survivor = survivor.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT subject FROM ks.subject_links WHERE survivor = ?1 ORDER BY subject",
            )?;
            stmt.query_map([&survivor], |r| rows::subject(r.get(0)?))?.collect()
        })
        .await
    }
}
