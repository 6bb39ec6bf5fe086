//! The store's one error type, and its `Result`.

use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A storage failure. Messages name no personal data, so they may be logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. an active API key with the same name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database was written by a newer Consentry and cannot be used by this one.
    #[error(
        "the database has schema version {found}, newer than the {supported} this build knows; run the newer Consentry or restore a backup"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// A read-only open found a database older than this build; only a writing open migrates it.
    #[error(
        "the database has schema version {found}, older than the {supported} this build reads; start `consentry serve` of this version once to migrate it"
    )]
    SchemaTooOld { found: i64, supported: i64 },
    /// A read-only open found no store to read.
    #[error("there is no Consentry store in {0}; run `consentry init` first")]
    NotInitialised(PathBuf),
    /// Another process holds the data folder.
    #[error("the data folder {0} is in use by another Consentry process; stop it first")]
    Locked(PathBuf),
    /// The store is shutting down and takes no more work.
    #[error("the store is closed")]
    Closed,
    /// An append named an id linked into another subject (an alias), which takes no writes: the survivor
    /// (never shown: it names a person).
    #[error("the subject was linked into another subject")]
    Linked(consentry_core::SubjectId),
    /// A replay asked for outbox messages from before the destination was created or older than the outbox
    /// keeps (the message says which); nothing was queued.
    #[error("{0}")]
    OutOfReach(String),
    /// Anything the backend reported; the text is for logs only, never for API responses.
    #[error("storage backend failure: {0}")]
    Backend(String),
}
