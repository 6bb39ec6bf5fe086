//! The ledger on the embedded store, read side: events and their chain head, the current state per
//! purpose and scope, receipts, due expiries and checkpoints. Appends are group-committed by the writer
//! (`writer.rs`).

use consentry_core::ledger::GENESIS_HASH;
use consentry_core::{Event, SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db::backend;
use super::rows;
use crate::error::Result;
use crate::model::{ExportRow, LedgerHead, StoredCheckpoint, StoredReceipt};
use crate::sql::{
    CHECKPOINTS, EVENT_COLUMNS, EXPORT_COLUMNS, EXPORT_STATE_COLUMNS, LEDGER_HEAD, PAGED_STATE_EVENT_COLUMNS,
    STATE_EVENT_COLUMNS,
};

/// A `subject` column followed by an event's columns.
fn subject_event(r: &Row<'_>) -> rusqlite::Result<(SubjectId, Event)> {
    Ok((rows::subject(r.get(0)?)?, rows::event(r, 1)?))
}

pub(super) fn ledger_head(conn: &Connection) -> rusqlite::Result<LedgerHead> {
    let head = conn
        .query_row(LEDGER_HEAD, [], |r| {
            Ok(LedgerHead { events: r.get::<_, i64>(0)? as u64, head: r.get(1)? })
        })
        .optional()?;
    Ok(head.unwrap_or_else(|| LedgerHead { events: 0, head: GENESIS_HASH.to_owned() }))
}

pub(super) fn receipt(conn: &Connection, id: &str) -> rusqlite::Result<Option<StoredReceipt>> {
    conn.prepare_cached(
        "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
         FROM receipts r
         LEFT JOIN receipt_kids rk ON rk.n = r.kid
         LEFT JOIN events e ON e.seq = r.first_seq
         LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym WHERE r.id = ?1",
    )?
    .query_row([rows::receipt_key(id)], rows::receipt)
    .optional()
}

/// The subject's events after `after`, oldest first.
pub(super) fn history(
    conn: &Connection,
    subject: &str,
    after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) AND e.seq > ?2
         ORDER BY e.seq LIMIT ?3"
    ))?;
    stmt.query_map(params![subject, after as i64, limit], |r| rows::event(r, 0))?.collect()
}

/// The subject's events before `before` (all without it), newest first.
pub(super) fn history_newest(
    conn: &Connection,
    subject: &str,
    before: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Vec<Event>> {
    let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) AND e.seq < ?2
         ORDER BY e.seq DESC LIMIT ?3"
    ))?;
    stmt.query_map(params![subject, before, limit], |r| rows::event(r, 0))?.collect()
}

/// The subject's latest event per purpose, scope and stance.
pub(super) fn current(conn: &Connection, subject: &str) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {STATE_EVENT_COLUMNS} FROM consent_state s JOIN events e ON e.seq = s.seq AND s.purpose <> ''
         WHERE s.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
         ORDER BY e.seq"
    ))?;
    stmt.query_map([subject], |r| rows::event(r, 0))?.collect()
}

/// Every subject's current statements with `seq > after`, at most `limit`; empty only at the end.
///
/// The page is cut from the state's index on `seq` before anything is joined (one row per event, read from
/// the index alone), so each page reads only its own rows: sorting the joined rows of the whole rest of the
/// state for every page made the full load quadratic. A live change's effective time is looked up only for
/// a live change ([`PAGED_STATE_EVENT_COLUMNS`]). Statements of erased subjects (no key) are
/// left out, and a page of nothing else is passed over.
pub(super) fn current_page(
    conn: &Connection,
    mut after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<(SubjectId, Event)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT k.subject, {PAGED_STATE_EVENT_COLUMNS}
         FROM (SELECT DISTINCT seq FROM consent_state WHERE seq > ?1 ORDER BY seq LIMIT ?2) s
         JOIN events e ON e.seq = s.seq
         LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
         ORDER BY s.seq"
    ))?;
    loop {
        let rows: Vec<(Option<String>, Event)> = stmt
            .query_map(params![after as i64, limit], |r| Ok((r.get(0)?, rows::event(r, 1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some((_, last)) = rows.last() else { return Ok(Vec::new()) };
        after = last.seq;
        let page: Vec<(SubjectId, Event)> = rows
            .into_iter()
            .filter_map(|(subject, event)| Some((subject?, event)))
            .map(|(subject, event)| Ok((rows::subject(subject)?, event)))
            .collect::<rusqlite::Result<_>>()?;
        if !page.is_empty() {
            return Ok(page);
        }
    }
}

pub(super) fn events_page(conn: &Connection, after: u64, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
    ))?;
    stmt.query_map(params![after as i64, limit], |r| rows::event(r, 0))?.collect()
}

/// For each pseudonym, its first statement in force (or, with `history`, event) recorded at or after
/// `since`; each a walk of the pseudonym's own rows (`consent_state`'s key, `events_by_pseudonym`).
pub(super) fn first_lines(
    conn: &Connection,
    pseudonyms: &[String],
    since: Timestamp,
    history: bool,
) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(if history {
        "SELECT min(e.seq) FROM events e WHERE e.pseudonym = ?1 AND e.recorded_at >= ?2"
    } else {
        "SELECT min(s.seq) FROM consent_state s JOIN events e ON e.seq = s.seq
         WHERE s.pseudonym = ?1 AND e.recorded_at >= ?2"
    })?;
    let mut found = Vec::with_capacity(pseudonyms.len());
    for p in pseudonyms {
        let first: Option<i64> = stmt.query_row(params![p, since.micros()], |r| r.get(0))?;
        if let Some(seq) = first {
            found.push((p.clone(), seq as u64));
        }
    }
    Ok(found)
}

/// Events with `seq > after` and their subjects (`None` once erased).
pub(super) fn subject_events_page(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<(Option<SubjectId>, Event)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT k.subject, {EVENT_COLUMNS} FROM events e
         LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
         WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
    ))?;
    stmt.query_map(params![after as i64, limit], |r| {
        let subject: Option<String> = r.get(0)?;
        Ok((subject.and_then(|s| SubjectId::new(s).ok()), rows::event(r, 1)?))
    })?
    .collect()
}

/// A page of an export (see [`Store::export_page`](crate::Store::export_page)): the events at positions
/// `after < seq <= through` (a range of the primary key), or the statements in force among them (a range
/// of the state's index on `seq`, from the index alone).
pub(super) fn export_page(
    conn: &Connection,
    after: u64,
    through: u64,
    history: bool,
) -> rusqlite::Result<Vec<ExportRow>> {
    let mut stmt = conn.prepare_cached(&if history {
        format!(
            "SELECT {EXPORT_COLUMNS} FROM events e
             LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
             LEFT JOIN ks.subject_links l ON l.subject = k.subject
             WHERE e.seq > ?1 AND e.seq <= ?2 ORDER BY e.seq"
        )
    } else {
        format!(
            "SELECT {EXPORT_STATE_COLUMNS}
             FROM (SELECT DISTINCT seq FROM consent_state WHERE seq > ?1 AND seq <= ?2) s
             JOIN events e ON e.seq = s.seq
             LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
             LEFT JOIN ks.subject_links l ON l.subject = k.subject
             ORDER BY s.seq"
        )
    })?;
    let rows = stmt.query_map(params![after as i64, through as i64], rows::export_row)?;
    // The current state leaves erased subjects out.
    rows.filter(|r| history || r.as_ref().map_or(true, |r| r.subject.is_some())).collect()
}

/// Grants and renewals still in force whose expiry is at or before `now`.
pub(super) fn due_expiries(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> rusqlite::Result<Vec<(SubjectId, Event)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT k.subject, {STATE_EVENT_COLUMNS} FROM events e INDEXED BY events_expiring
         JOIN consent_state s ON s.seq = e.seq AND s.purpose <> ''
         JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
         WHERE e.expires_at IS NOT NULL AND e.expires_at <= ?1 AND e.action IN ('grant', 'renew')
         ORDER BY e.expires_at LIMIT ?2"
    ))?;
    stmt.query_map(params![now.micros(), limit], subject_event)?.collect()
}

/// Stores a checkpoint; one already stored for `events` is kept.
pub(super) fn insert_checkpoint(conn: &Connection, events: u64, head: &str, jws: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO checkpoints (events, head, jws, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (events) DO NOTHING",
        params![events as i64, head, jws, Timestamp::now().micros()],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) fn checkpoints(conn: &Connection) -> rusqlite::Result<Vec<StoredCheckpoint>> {
    let mut stmt = conn.prepare_cached(CHECKPOINTS)?;
    stmt.query_map([], |r| {
        Ok(StoredCheckpoint {
            events: r.get::<_, i64>(0)? as u64,
            head: r.get(1)?,
            jws: r.get(2)?,
            created_at: Timestamp::from_micros(r.get(3)?),
        })
    })?
    .collect()
}
