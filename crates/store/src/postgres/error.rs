//! PostgreSQL's errors as store errors, and the tests for a unique violation (mapped to a conflict by each
//! caller, with its own message) and a foreign key violation (a row's parent deleted meanwhile).

use crate::error::StoreError;

pub(super) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
