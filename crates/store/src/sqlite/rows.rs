//! Mapping between SQLite rows and the store's records.

use consentry_core::{Action, Event, Scope, SubjectId, Timestamp};
use rusqlite::Row;
use rusqlite::types::{Value, ValueRef};

use crate::model::{ApiKey, DestinationRecord, ExportRow, NoticeVersion, SigningKeyRecord, StoredReceipt};

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

/// Reads an exported event from the columns of [`EXPORT_COLUMNS`](crate::sql::EXPORT_COLUMNS).
pub(super) fn export_row(row: &Row<'_>) -> rusqlite::Result<ExportRow> {
    let subject: Option<String> = row.get(0)?;
    let survivor: Option<String> = row.get(1)?;
    let action = row.get_ref(5)?.as_str()?;
    Ok(ExportRow {
        subject: subject.map(self::subject).transpose()?,
        survivor: survivor.map(self::subject).transpose()?,
        seq: row.get::<_, i64>(2)? as u64,
        pseudonym: row.get(3)?,
        purpose: row.get(4)?,
        action: Action::parse(action).ok_or_else(|| conversion("unknown action in ledger"))?,
        scope: Scope {
            categories: list_ref(row.get_ref(6)?)?,
            channels: list_ref(row.get_ref(7)?)?,
            recipients: list_ref(row.get_ref(8)?)?,
        },
        notice: row.get(9)?,
        notice_version: row.get(10)?,
        collection_point: row.get(11)?,
        recorded_at: Timestamp::from_micros(row.get(12)?),
        expires_at: row.get::<_, Option<i64>>(13)?.map(Timestamp::from_micros),
        jurisdiction: row.get(14)?,
        occurred_at: row.get::<_, Option<i64>>(15)?.map(Timestamp::from_micros),
    })
}

/// A list column (a JSON array of strings) read in place; the empty list, the usual one, without parsing.
fn list_ref(value: ValueRef<'_>) -> rusqlite::Result<Vec<String>> {
    let text = value.as_str()?;
    if text == "[]" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
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
        id: receipt_id(row.get_ref(0)?)?,
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

/// A receipt id as `receipts.id` keeps it: the 16 random bytes of an id of the form the service makes
/// (`rcpt_` and 32 lowercase hex digits), any other id (kept from earlier builds) as its text. Two distinct
/// ids never meet: a blob never equals a text.
pub(super) fn receipt_key(id: &str) -> Value {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    match id.strip_prefix("rcpt_") {
        Some(hex) if hex.len() == 32 && hex.bytes().all(lower_hex) => {
            let nibble = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
            Value::Blob(hex.as_bytes().chunks(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])).collect())
        }
        _ => Value::Text(id.to_owned()),
    }
}

/// A receipt id read from `receipts.id` (see [`receipt_key`]).
pub(super) fn receipt_id(stored: ValueRef<'_>) -> rusqlite::Result<String> {
    match stored {
        ValueRef::Blob(b) if b.len() == 16 => {
            Ok(format!("rcpt_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
        }
        ValueRef::Text(t) => {
            String::from_utf8(t.to_vec()).map_err(|_| conversion("a receipt id is not UTF-8"))
        }
        _ => Err(conversion("a receipt id is neither 16 bytes nor text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_read_back_as_given() {
        for id in [
            "rcpt_00ff10a9b8c7d6e5f4a3b2c1d0e9f8a7",
            "rcpt_old",
            "rcpt_00FF10A9B8C7D6E5F4A3B2C1D0E9F8A7",
            "rcp_x",
        ] {
            let key = receipt_key(id);
            let back = match &key {
                Value::Blob(b) => receipt_id(ValueRef::Blob(b)),
                Value::Text(t) => receipt_id(ValueRef::Text(t.as_bytes())),
                other => panic!("{other:?}"),
            };
            assert_eq!(back.expect("an id"), id);
        }
        assert!(
            matches!(receipt_key("rcpt_00ff10a9b8c7d6e5f4a3b2c1d0e9f8a7"), Value::Blob(b) if b.len() == 16)
        );
        assert!(matches!(receipt_key("rcpt_00FF10A9B8C7D6E5F4A3B2C1D0E9F8A7"), Value::Text(_)));
    }
}
