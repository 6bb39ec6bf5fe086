//! What the embedded store logs per subject besides the ledger, read side: the access log and check
//! counts. Both are written in the writer's group commits (`writer.rs`).

use consentry_core::Timestamp;
use rusqlite::{Connection, params};

use crate::model::AccessRecord;

/// The subject's accesses with `id < before`, newest first.
pub(super) fn access_log(
    conn: &Connection,
    subject: &str,
    before: i64,
    limit: u32,
) -> rusqlite::Result<Vec<AccessRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, caller, route, purpose FROM access_log
         WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) AND id < ?2
         ORDER BY id DESC LIMIT ?3",
    )?;
    stmt.query_map(params![subject, before, limit], |r| {
        Ok(AccessRecord {
            id: r.get(0)?,
            at: Timestamp::from_micros(r.get(1)?),
            caller: r.get(2)?,
            route: r.get(3)?,
            purpose: r.get(4)?,
        })
    })?
    .collect()
}

/// The subject's `(purpose, count, last)`, ordered by purpose.
pub(super) fn check_counts(
    conn: &Connection,
    subject: &str,
) -> rusqlite::Result<Vec<(String, u64, Timestamp)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT purpose, count, last_at FROM check_counts
         WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
         ORDER BY purpose",
    )?;
    stmt.query_map([subject], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, Timestamp::from_micros(r.get(2)?)))
    })?
    .collect()
}
