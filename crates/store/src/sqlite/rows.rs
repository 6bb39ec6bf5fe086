//! Mapping between SQLite rows and the store's records.

use consentry_core::{Action, Event, Scope, SubjectId, Timestamp};
use rusqlite::Row;

use crate::model::{ApiKey, DestinationRecord, NoticeVersion, SigningKeyRecord, StoredReceipt};

fn list(text: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn conversion(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(what),
    )
}

/// A subject id read from a text column.
pub(super) fn subject(text: String) -> rusqlite::Result<SubjectId> {
    SubjectId::new(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// Reads an event from the columns of [`EVENT_COLUMNS`](crate::sql::EVENT_COLUMNS), starting at `at`.
pub(super) fn event(row: &Row<'_>, at: usize) -> rusqlite::Result<Event> {
    let action: String = row.get(at + 3)?;
    Ok(Event {
        seq: row.get::<_, i64>(at)? as u64,
        pseudonym: row.get(at + 1)?,
        purpose: row.get(at + 2)?,
        action: Action::parse(&action).ok_or_else(|| conversion("unknown action in ledger"))?,
        scope: Scope {
            categories: list(row.get(at + 4)?)?,
            channels: list(row.get(at + 5)?)?,
            recipients: list(row.get(at + 6)?)?,
        },
        notice: row.get(at + 7)?,
        notice_version: row.get(at + 8)?,
        notice_hash: row.get(at + 9)?,
        collection_point: row.get(at + 10)?,
        actor: row.get(at + 11)?,
        recorded_at: Timestamp::from_micros(row.get(at + 12)?),
        expires_at: row.get::<_, Option<i64>>(at + 13)?.map(Timestamp::from_micros),
        prev_hash: row.get(at + 14)?,
        hash: row.get(at + 15)?,
        evidence: row.get(at + 16)?,
        jurisdiction: row.get(at + 17)?,
        occurred_at: row.get::<_, Option<i64>>(at + 18)?.map(Timestamp::from_micros),
    })
}

pub(super) fn api_key(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let hash: Vec<u8> = row.get(3)?;
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        scopes: list(row.get(2)?)?,
        secret_hash: hash.try_into().map_err(|_| conversion("key hash is not 32 bytes"))?,
        created_at: Timestamp::from_micros(row.get(4)?),
        revoked_at: row.get::<_, Option<i64>>(5)?.map(Timestamp::from_micros),
    })
}

pub(super) fn notice(row: &Row<'_>) -> rusqlite::Result<NoticeVersion> {
    Ok(NoticeVersion {
        key: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        title: row.get(3)?,
        language: row.get(4)?,
        url: row.get(5)?,
        text: row.get(6)?,
        created_at: Timestamp::from_micros(row.get(7)?),
    })
}

/// Reads `id, subject, first_seq, last_seq, catalog_version, created_at, kid` (the subject from the key
/// store, NULL once erased).
pub(super) fn receipt(row: &Row<'_>) -> rusqlite::Result<StoredReceipt> {
    let subject: Option<String> = row.get(1)?;
    Ok(StoredReceipt {
        id: row.get(0)?,
        subject: subject.and_then(|s| SubjectId::new(s).ok()),
        first_seq: row.get::<_, i64>(2)? as u64,
        last_seq: row.get::<_, i64>(3)? as u64,
        catalog_version: row.get::<_, i64>(4)? as u64,
        created_at: Timestamp::from_micros(row.get(5)?),
        kid: row.get(6)?,
    })
}

/// Reads `kid, secret, public, created_at, current`.
pub(super) fn signing_key(row: &Row<'_>) -> rusqlite::Result<SigningKeyRecord> {
    let secret: Vec<u8> = row.get(1)?;
    let public: Vec<u8> = row.get(2)?;
    Ok(SigningKeyRecord {
        kid: row.get(0)?,
        secret: secret.try_into().map_err(|_| conversion("signing key secret is not 32 bytes"))?,
        public: public.try_into().map_err(|_| conversion("signing key public part is not 32 bytes"))?,
        created_at: Timestamp::from_micros(row.get(3)?),
        current: row.get(4)?,
    })
}

/// Reads the columns of [`DESTINATION_COLUMNS`](crate::sql::DESTINATION_COLUMNS).
pub(super) fn destination(row: &Row<'_>) -> rusqlite::Result<DestinationRecord> {
    Ok(DestinationRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: row.get(2)?,
        url: row.get(3)?,
        target: row.get(4)?,
        event_types: list(row.get(5)?)?,
        paused: row.get(6)?,
        flagged: row.get(7)?,
        created_at: Timestamp::from_micros(row.get(8)?),
    })
}
