//! Linking two subjects: one person known under two ids (an app install's anonymous id and the account it
//! signed in to). [`LinkStore::link_subjects`] moves what the store keeps of the one (`from`) to the other
//! (the survivor): identifiers and vault records, re-sealed under the survivor's data key; paired devices;
//! data subject requests; and keeps `from` as an **alias** of the survivor in the key store (it names
//! people), so that every node resolves the old id to the person, also after a restart. Consent choices
//! are merged by the service layer, in the ledger. Unlinking is not offered.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::error::Result;
use crate::vault::Kek;

/// What [`LinkStore::link_subjects`] moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovedSubject {
    pub identifiers: u64,
    pub records: u64,
    /// The ids of the devices now paired with the survivor.
    pub devices: Vec<String>,
    pub requests: u64,
}

/// Storage of links between subjects, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Moves `from`'s identifiers and vault records (re-sealed under `to`'s data key, made when missing),
    /// devices and requests to `to`, and stores `from` as an alias of `to` (aliases of `from` now name
    /// `to`): one transaction per file, the data store's first.
    async fn link_subjects(
        &self,
        kek: &Kek,
        from: &SubjectId,
        to: &SubjectId,
        at: Timestamp,
    ) -> Result<MovedSubject>;

    /// Every alias as `(old id, survivor)`.
    async fn subject_links(&self) -> Result<Vec<(SubjectId, SubjectId)>>;
}
