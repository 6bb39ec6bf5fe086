//! What the preference centre reads beyond the core [`Store`](crate::Store): a person's own receipts.

use async_trait::async_trait;
use consentry_core::SubjectId;

use crate::{Result, StoredReceipt};

/// Reads for the preference centre. Part of every [`Store`](crate::Store).
#[async_trait]
pub trait PreferenceStore: Send + Sync {
    /// The receipts sealed for `subject`, newest first, at most `limit`. Empty for an unknown subject.
    async fn subject_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>>;
}
