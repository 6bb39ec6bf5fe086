//! Mapping between PostgreSQL rows and the store's records, and the column buffers of the group commit's
//! multi-row inserts (events, receipts).

use consentry_core::{Action, Event, Scope, SubjectId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::error::db;
use crate::common::json_list;
use crate::error::{Result, StoreError};
use crate::model::{ApiKey, ExportRow, NoticeVersion, SealedReceipt};

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored data does not decode: {what}"))
}

fn list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| corrupt("scope list"))
}

pub(super) fn event(r: &PgRow) -> Result<Event> {
    let action: String = r.try_get("action").map_err(db)?;
    let categories: String = r.try_get("categories").map_err(db)?;
    let channels: String = r.try_get("channels").map_err(db)?;
    let recipients: String = r.try_get("recipients").map_err(db)?;
    let notice_version: Option<i32> = r.try_get("notice_version").map_err(db)?;
    Ok(Event {
        evidence: r.try_get("evidence").map_err(db)?,
        jurisdiction: r.try_get("jurisdiction").map_err(db)?,
        occurred_at: r.try_get::<Option<i64>, _>("occurred_at").map_err(db)?.map(Timestamp::from_micros),
        seq: r.try_get::<i64, _>("seq").map_err(db)? as u64,
        pseudonym: r.try_get("pseudonym").map_err(db)?,
        purpose: r.try_get("purpose").map_err(db)?,
        action: Action::parse(&action).ok_or_else(|| corrupt("action"))?,
        scope: Scope {
            categories: list(&categories)?,
            channels: list(&channels)?,
            recipients: list(&recipients)?,
        },
        notice: r.try_get("notice").map_err(db)?,
        notice_version: notice_version.map(|v| v as u32),
        notice_hash: r.try_get("notice_hash").map_err(db)?,
        collection_point: r.try_get("collection_point").map_err(db)?,
        actor: r.try_get("actor").map_err(db)?,
        recorded_at: Timestamp::from_micros(r.try_get("recorded_at").map_err(db)?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at").map_err(db)?.map(Timestamp::from_micros),
        prev_hash: r.try_get("prev_hash").map_err(db)?,
        hash: r.try_get("hash").map_err(db)?,
    })
}

/// Reads an exported event from the columns of [`EXPORT_COLUMNS`](crate::sql::EXPORT_COLUMNS), by
/// position (a look-up of each column by name costs more than decoding it).
pub(super) fn export_row(r: &PgRow) -> Result<ExportRow> {
    let subject: Option<String> = r.try_get(0).map_err(db)?;
    let survivor: Option<String> = r.try_get(1).map_err(db)?;
    let action: &str = r.try_get(5).map_err(db)?;
    let notice_version: Option<i32> = r.try_get(10).map_err(db)?;
    let subject_of =
        |s: String| SubjectId::new(s).map_err(|e| StoreError::Backend(format!("stored subject id: {e}")));
    Ok(ExportRow {
        subject: subject.map(subject_of).transpose()?,
        survivor: survivor.map(subject_of).transpose()?,
        seq: r.try_get::<i64, _>(2).map_err(db)? as u64,
        pseudonym: r.try_get(3).map_err(db)?,
        purpose: r.try_get(4).map_err(db)?,
        action: Action::parse(action).ok_or_else(|| corrupt("action"))?,
        scope: Scope {
            categories: list_or_empty(r.try_get(6).map_err(db)?)?,
            channels: list_or_empty(r.try_get(7).map_err(db)?)?,
            recipients: list_or_empty(r.try_get(8).map_err(db)?)?,
        },
        notice: r.try_get(9).map_err(db)?,
        notice_version: notice_version.map(|v| v as u32),
        collection_point: r.try_get(11).map_err(db)?,
        recorded_at: Timestamp::from_micros(r.try_get(12).map_err(db)?),
        expires_at: r.try_get::<Option<i64>, _>(13).map_err(db)?.map(Timestamp::from_micros),
        jurisdiction: r.try_get(14).map_err(db)?,
        occurred_at: r.try_get::<Option<i64>, _>(15).map_err(db)?.map(Timestamp::from_micros),
    })
}

/// A scope list; the empty one, the usual one, without parsing.
fn list_or_empty(text: &str) -> Result<Vec<String>> {
    if text == "[]" { Ok(Vec::new()) } else { list(text) }
}

/// A `subject` column followed by the event's columns.
pub(super) fn subject_event(r: &PgRow) -> Result<(SubjectId, Event)> {
    let subject: String = r.try_get("subject").map_err(db)?;
    let subject =
        SubjectId::new(subject).map_err(|e| StoreError::Backend(format!("stored subject id: {e}")))?;
    Ok((subject, event(r)?))
}

/// Columns of many events, for one multi-row insert.
#[derive(Default)]
pub(super) struct EventColumns {
    seq: Vec<i64>,
    pseudonym: Vec<String>,
    purpose: Vec<String>,
    action: Vec<String>,
    categories: Vec<String>,
    channels: Vec<String>,
    recipients: Vec<String>,
    notice: Vec<Option<String>>,
    notice_version: Vec<Option<i32>>,
    notice_hash: Vec<Option<String>>,
    collection_point: Vec<Option<String>>,
    actor: Vec<String>,
    recorded_at: Vec<i64>,
    expires_at: Vec<Option<i64>>,
    hash: Vec<String>,
    evidence: Vec<Option<String>>,
    jurisdiction: Vec<Option<String>>,
    occurred_at: Vec<Option<i64>>,
}

impl EventColumns {
    pub fn push(&mut self, e: &Event) {
        self.seq.push(e.seq as i64);
        self.pseudonym.push(e.pseudonym.clone());
        self.purpose.push(e.purpose.clone());
        self.action.push(e.action.as_str().to_owned());
        self.categories.push(json_list(&e.scope.categories));
        self.channels.push(json_list(&e.scope.channels));
        self.recipients.push(json_list(&e.scope.recipients));
        self.notice.push(e.notice.clone());
        self.notice_version.push(e.notice_version.map(|v| v as i32));
        self.notice_hash.push(e.notice_hash.clone());
        self.collection_point.push(e.collection_point.clone());
        self.actor.push(e.actor.clone());
        self.recorded_at.push(e.recorded_at.micros());
        self.expires_at.push(e.expires_at.map(Timestamp::micros));
        self.hash.push(e.hash.clone());
        self.evidence.push(e.evidence.clone());
        self.jurisdiction.push(e.jurisdiction.clone());
        self.occurred_at.push(e.occurred_at.map(Timestamp::micros));
    }

    pub async fn insert(self, tx: &mut Transaction<'static, Postgres>) -> Result<()> {
        sqlx::query(
            "INSERT INTO events (seq, pseudonym, purpose, action, categories, channels, recipients, notice,
                notice_version, notice_hash, collection_point, actor, recorded_at, expires_at, hash, evidence,
                jurisdiction, occurred_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::int[], $10::text[], $11::text[], $12::text[], $13::bigint[],
                $14::bigint[], $15::text[], $16::text[], $17::text[], $18::bigint[])",
        )
        .bind(self.seq)
        .bind(self.pseudonym)
        .bind(self.purpose)
        .bind(self.action)
        .bind(self.categories)
        .bind(self.channels)
        .bind(self.recipients)
        .bind(self.notice)
        .bind(self.notice_version)
        .bind(self.notice_hash)
        .bind(self.collection_point)
        .bind(self.actor)
        .bind(self.recorded_at)
        .bind(self.expires_at)
        .bind(self.hash)
        .bind(self.evidence)
        .bind(self.jurisdiction)
        .bind(self.occurred_at)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }
}

/// Columns of many receipts, for one multi-row insert.
#[derive(Default)]
pub(super) struct ReceiptColumns {
    id: Vec<String>,
    first_seq: Vec<i64>,
    last_seq: Vec<i64>,
    catalog_version: Vec<i64>,
    created_at: Vec<i64>,
    kid: Vec<String>,
}

impl ReceiptColumns {
    /// What is stored of `r` (never its signed form, which names the person).
    pub fn push(&mut self, r: &SealedReceipt, first_seq: u64, last_seq: u64) {
        self.id.push(r.id.clone());
        self.first_seq.push(first_seq as i64);
        self.last_seq.push(last_seq as i64);
        self.catalog_version.push(r.catalog_version as i64);
        self.created_at.push(r.issued_at.micros());
        self.kid.push(r.kid.clone());
    }

    pub async fn insert(self, tx: &mut Transaction<'static, Postgres>) -> Result<()> {
        if self.id.is_empty() {
            return Ok(());
        }
        // Each signing key is named once; a receipt keeps its number. A key already named takes no new
        // number (the identity is not drawn for it).
        sqlx::query(
            "INSERT INTO receipt_kids (kid)
             SELECT DISTINCT k FROM UNNEST($1::text[]) AS k
             WHERE NOT EXISTS (SELECT 1 FROM receipt_kids WHERE kid = k)
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&self.kid)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        let expected = self.id.len() as u64;
        let stored = sqlx::query(
            "INSERT INTO receipts (id, first_seq, last_seq, catalog_version, created_at, kid)
             SELECT r.id, r.first_seq, r.last_seq, r.catalog_version, r.created_at, k.n
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
                 AS r (id, first_seq, last_seq, catalog_version, created_at, kid)
             JOIN receipt_kids k ON k.kid = r.kid",
        )
        .bind(self.id)
        .bind(self.first_seq)
        .bind(self.last_seq)
        .bind(self.catalog_version)
        .bind(self.created_at)
        .bind(self.kid)
        .execute(&mut **tx)
        .await
        .map_err(db)?
        .rows_affected();
        if stored != expected {
            return Err(StoreError::Backend(format!("{stored} of {expected} receipts stored")));
        }
        Ok(())
    }
}

pub(super) fn api_key(r: &PgRow) -> Result<ApiKey> {
    let scopes: String = r.try_get("scopes").map_err(db)?;
    let hash: Vec<u8> = r.try_get("secret_hash").map_err(db)?;
    Ok(ApiKey {
        id: r.try_get("id").map_err(db)?,
        name: r.try_get("name").map_err(db)?,
        scopes: list(&scopes)?,
        secret_hash: hash.try_into().map_err(|_| corrupt("key hash"))?,
        created_at: Timestamp::from_micros(r.try_get("created_at").map_err(db)?),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at").map_err(db)?.map(Timestamp::from_micros),
    })
}

pub(super) fn notice(r: &PgRow) -> Result<NoticeVersion> {
    Ok(NoticeVersion {
        key: r.try_get("key").map_err(db)?,
        version: r.try_get::<i32, _>("version").map_err(db)? as u32,
        sha256: r.try_get("sha256").map_err(db)?,
        title: r.try_get("title").map_err(db)?,
        language: r.try_get("language").map_err(db)?,
        url: r.try_get("url").map_err(db)?,
        text: r.try_get("text").map_err(db)?,
        created_at: Timestamp::from_micros(r.try_get("created_at").map_err(db)?),
    })
}
