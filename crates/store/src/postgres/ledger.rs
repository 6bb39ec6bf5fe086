//! The ledger on PostgreSQL, read side: events and their chain head, the current state per purpose and
//! scope, receipts, due expiries and checkpoints. Appends are group-committed by `writer.rs`.

use consentry_core::ledger::GENESIS_HASH;
use consentry_core::{Event, SubjectId, Timestamp};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool, PgRow};

use super::error::db;
use super::rows;
use crate::error::Result;
use crate::model::{ExportRow, LedgerHead, StoredCheckpoint, StoredReceipt};
use crate::sql::{
    CHECKPOINTS, EVENT_COLUMNS, EXPORT_COLUMNS, EXPORT_STATE_COLUMNS, LEDGER_HEAD, PAGED_STATE_EVENT_COLUMNS,
    STATE_EVENT_COLUMNS,
};

pub(super) async fn ledger_head(pool: &PgPool) -> Result<LedgerHead> {
    let head: Option<(i64, String)> = sqlx::query_as(LEDGER_HEAD).fetch_optional(pool).await.map_err(db)?;
    Ok(head.map_or_else(
        || LedgerHead { events: 0, head: GENESIS_HASH.to_owned() },
        |(s, h)| LedgerHead { events: s as u64, head: h },
    ))
}

pub(super) async fn receipt(pool: &PgPool, id: &str) -> Result<Option<StoredReceipt>> {
    let row: Option<ReceiptRow> = sqlx::query_as(
        "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
         FROM receipts r
         LEFT JOIN receipt_kids rk ON rk.n = r.kid
         LEFT JOIN events e ON e.seq = r.first_seq
         LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    Ok(row.map(stored_receipt))
}

/// `id, subject, first_seq, last_seq, catalog_version, created_at, kid` of a receipt.
pub(super) type ReceiptRow = (String, Option<String>, i64, i64, i64, i64, Option<String>);

pub(super) fn stored_receipt(
    (id, subject, first, last, catalog, created_at, kid): ReceiptRow,
) -> StoredReceipt {
    StoredReceipt {
        id,
        subject: subject.and_then(|s| SubjectId::new(s).ok()),
        first_seq: first as u64,
        last_seq: last as u64,
        catalog_version: catalog as u64,
        created_at: Timestamp::from_micros(created_at),
        kid,
    }
}

/// The subject's events after `after`, oldest first.
pub(super) async fn history(
    pool: &PgPool,
    subject: &SubjectId,
    after: u64,
    limit: u32,
) -> Result<Vec<Event>> {
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
           AND e.seq > $2
         ORDER BY e.seq LIMIT $3"
    ))
    .bind(subject.as_str())
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::event).collect()
}

/// The subject's events before `before` (all without it), newest first.
pub(super) async fn history_newest(
    pool: &PgPool,
    subject: &SubjectId,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<Event>> {
    let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
           AND e.seq < $2
         ORDER BY e.seq DESC LIMIT $3"
    ))
    .bind(subject.as_str())
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::event).collect()
}

/// The subject's latest event per purpose, scope and stance.
pub(super) async fn current<'e>(pool: impl sqlx::PgExecutor<'e>, subject: &SubjectId) -> Result<Vec<Event>> {
    let found = sqlx::query(&format!(
        "SELECT {STATE_EVENT_COLUMNS} FROM consent_state s JOIN events e ON e.seq = s.seq AND s.purpose <> ''
         WHERE s.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
         ORDER BY e.seq"
    ))
    .bind(subject.as_str())
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::event).collect()
}

/// Every subject's current statements with `seq > after`, at most `limit`; empty only at the end.
///
/// The page is cut from the state's index on `seq` before anything is joined (one row per event, its
/// latest effective time), so each page reads only its own rows. Statements of erased subjects (no key)
/// are left out, and a page of nothing else is passed over.
pub(super) async fn current_page(
    pool: &PgPool,
    mut after: u64,
    limit: u32,
) -> Result<Vec<(SubjectId, Event)>> {
    loop {
        let found = sqlx::query(&format!(
            "SELECT k.subject, {PAGED_STATE_EVENT_COLUMNS}
             FROM (SELECT DISTINCT seq FROM consent_state WHERE seq > $1 ORDER BY seq LIMIT $2) s
             JOIN events e ON e.seq = s.seq
             LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
             ORDER BY s.seq"
        ))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?;
        let Some(last) = found.last() else { return Ok(Vec::new()) };
        after = last.try_get::<i64, _>("seq").map_err(db)? as u64;
        let mut page = Vec::with_capacity(found.len());
        for row in &found {
            if row.try_get::<Option<String>, _>("subject").map_err(db)?.is_some() {
                page.push(rows::subject_event(row)?);
            }
        }
        if !page.is_empty() {
            return Ok(page);
        }
    }
}

/// For each pseudonym, its first statement in force (or, with `history`, event) recorded at or after
/// `since`.
pub(super) async fn first_lines(
    pool: &PgPool,
    pseudonyms: &[String],
    since: Timestamp,
    history: bool,
) -> Result<Vec<(String, u64)>> {
    let sql = if history {
        "SELECT e.pseudonym, min(e.seq) FROM events e
         WHERE e.pseudonym = ANY($1) AND e.recorded_at >= $2 GROUP BY e.pseudonym"
    } else {
        "SELECT s.pseudonym, min(s.seq) FROM consent_state s JOIN events e ON e.seq = s.seq
         WHERE s.pseudonym = ANY($1) AND e.recorded_at >= $2 GROUP BY s.pseudonym"
    };
    let found: Vec<(String, i64)> =
        sqlx::query_as(sql).bind(pseudonyms).bind(since.micros()).fetch_all(pool).await.map_err(db)?;
    Ok(found.into_iter().map(|(p, seq)| (p, seq as u64)).collect())
}

/// Events with `seq > after` and their subjects (`None` once erased).
pub(super) async fn subject_events_page(
    pool: &PgPool,
    after: u64,
    limit: u32,
) -> Result<Vec<(Option<SubjectId>, Event)>> {
    let found = sqlx::query(&format!(
        "SELECT k.subject, {EVENT_COLUMNS} FROM events e
         LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
         WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
    ))
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found
        .iter()
        .map(|r| {
            let subject: Option<String> = r.try_get("subject").map_err(db)?;
            Ok((subject.and_then(|s| SubjectId::new(s).ok()), rows::event(r)?))
        })
        .collect()
}

/// A page of an export (see [`Store::export_page`](crate::Store::export_page)): the events at positions
/// `after < seq <= through` (a range of the primary key), or the statements in force among them (a range
/// of the state's index on `seq`).
///
/// A page is a few thousand rows, each found by index: it is read in a transaction that keeps PostgreSQL
/// to that plan (no hash or merge joins, no JIT compilation, no parallel workers). With missing or stale
/// statistics (after a bulk import, before autovacuum's analyse), or planned once for any range, it
/// hashed the whole key store for each page (77 ms instead of 25), or planned a page for much of the
/// table and compiled it (600 ms instead of 50).
pub(super) async fn export_page(
    pool: &PgPool,
    after: u64,
    through: u64,
    history: bool,
) -> Result<Vec<ExportRow>> {
    let sql = if history {
        format!(
            "SELECT {EXPORT_COLUMNS} FROM events e
             LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
             LEFT JOIN consentry_keystore.subject_links l ON l.subject = k.subject
             WHERE e.seq > $1 AND e.seq <= $2 ORDER BY e.seq"
        )
    } else {
        format!(
            "SELECT {EXPORT_STATE_COLUMNS}
             FROM (SELECT DISTINCT seq FROM consent_state WHERE seq > $1 AND seq <= $2) AS s
             JOIN events e ON e.seq = s.seq
             LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
             LEFT JOIN consentry_keystore.subject_links l ON l.subject = k.subject
             ORDER BY s.seq"
        )
    };
    let mut tx = pool.begin().await.map_err(db)?;
    let found = export_rows(&mut tx, &sql, after, through).await?;
    tx.commit().await.map_err(db)?;
    // The current state leaves erased subjects out.
    let rows = found.iter().map(rows::export_row);
    rows.filter(|r| history || r.as_ref().map_or(true, |r| r.subject.is_some())).collect()
}

/// [`export_page`]'s read, on the connection of its transaction.
async fn export_rows(conn: &mut PgConnection, sql: &str, after: u64, through: u64) -> Result<Vec<PgRow>> {
    // `SET LOCAL` each, in one statement.
    sqlx::query(
        "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
                set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query(sql).bind(after as i64).bind(through as i64).fetch_all(&mut *conn).await.map_err(db)
}

pub(super) async fn events_page(pool: &PgPool, after: u64, limit: u32) -> Result<Vec<Event>> {
    let found = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
    ))
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::event).collect()
}

/// Grants and renewals still in force whose expiry is at or before `now`.
pub(super) async fn due_expiries(
    pool: &PgPool,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(SubjectId, Event)>> {
    let found = sqlx::query(&format!(
        "SELECT k.subject, {STATE_EVENT_COLUMNS} FROM events e
         JOIN consent_state s ON s.seq = e.seq AND s.purpose <> ''
         JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
         WHERE e.expires_at IS NOT NULL AND e.expires_at <= $1 AND e.action IN ('grant', 'renew')
         ORDER BY e.expires_at LIMIT $2"
    ))
    .bind(now.micros())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(rows::subject_event).collect()
}

/// Stores a checkpoint; one already stored for `events` is kept.
pub(super) async fn insert_checkpoint(pool: &PgPool, events: u64, head: &str, jws: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO checkpoints (events, head, jws, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (events) DO NOTHING",
    )
    .bind(events as i64)
    .bind(head)
    .bind(jws)
    .bind(Timestamp::now().micros())
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn checkpoints(pool: &PgPool) -> Result<Vec<StoredCheckpoint>> {
    let found: Vec<(i64, String, String, i64)> =
        sqlx::query_as(CHECKPOINTS).fetch_all(pool).await.map_err(db)?;
    Ok(found
        .into_iter()
        .map(|(events, head, jws, created_at)| StoredCheckpoint {
            events: events as u64,
            head,
            jws,
            created_at: Timestamp::from_micros(created_at),
        })
        .collect())
}
