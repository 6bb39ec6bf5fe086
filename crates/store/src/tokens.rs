//! Subject tokens' state: when a subject's tokens were revoked, and which preference-centre links were
//! already exchanged. The tokens themselves are never stored (they are signed, and verify on any node);
//! what is stored here is what every node must agree on to refuse one.
//!
//! Revocations are kept under the subject's pseudonym, like everything in the data store; the subject id
//! is resolved through the key store, so an erased subject's revocation names no one (and their tokens are
//! refused anyway). Both tables clean themselves in passing: a revocation is dropped once no token it
//! refuses can still be alive, a spent link once it would have expired.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::error::Result;

/// Storage of subject-token revocations and spent links.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Refuses `subject`'s tokens issued at or before `at`: stores `at` under the subject's pseudonym
    /// (creating one for a subject without), keeping a later time already stored. Revocations made before
    /// `forget_before` are dropped in passing (the caller knows no token they refuse is still alive).
    async fn revoke_subject_tokens(
        &self,
        subject: &SubjectId,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<()>;

    /// When `subject`'s tokens were last revoked, if they were and it was not forgotten. One indexed
    /// look-up, made on every use of a subject token.
    async fn subject_tokens_revoked_at(&self, subject: &SubjectId) -> Result<Option<Timestamp>>;

    /// Marks the link with id `jti` spent until `expires_at`. Returns true if this call spent it, false if
    /// it was spent before (on any node): of concurrent calls for one link, exactly one gets true. Entries
    /// that expired before `now` are dropped in passing.
    async fn spend_link(&self, jti: &str, expires_at: Timestamp, now: Timestamp) -> Result<bool>;
}
