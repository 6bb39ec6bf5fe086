//! What PostgreSQL logs per subject besides the ledger: the access log and check counts, each written in
//! one multi-row statement under the subjects' pseudonyms.

use consentry_core::{SubjectId, Timestamp};
use sqlx::postgres::PgPool;

use super::error::db;
use super::pseudonyms::pseudonyms_for;
use crate::common::merge_counts;
use crate::error::Result;
use crate::model::{AccessEntry, AccessRecord};

/// Logs accesses in their order, creating pseudonym keys for subjects without.
pub(super) async fn log_access(pool: &PgPool, entries: Vec<AccessEntry>) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    let subjects = entries.iter().map(|e| e.subject.as_str().to_owned()).collect();
    let pseudonyms = pseudonyms_for(&mut tx, subjects).await?;
    let (mut p, mut at, mut caller, mut route, mut purpose) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in entries {
        p.push(pseudonyms[e.subject.as_str()].clone());
        at.push(e.at.micros());
        caller.push(e.caller);
        route.push(e.route);
        purpose.push(e.purpose);
    }
    sqlx::query(
        "INSERT INTO access_log (pseudonym, at, caller, route, purpose)
         SELECT p, a, c, r, u FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
            WITH ORDINALITY AS t(p, a, c, r, u, n)
         ORDER BY n",
    )
    .bind(p)
    .bind(at)
    .bind(caller)
    .bind(route)
    .bind(purpose)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// The subject's accesses with `id < before`, newest first.
pub(super) async fn access_log(
    pool: &PgPool,
    subject: &SubjectId,
    before: i64,
    limit: u32,
) -> Result<Vec<AccessRecord>> {
    let found: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, at, caller, route, purpose FROM access_log
         WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
           AND id < $2
         ORDER BY id DESC LIMIT $3",
    )
    .bind(subject.as_str())
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(found
        .into_iter()
        .map(|(id, at, caller, route, purpose)| AccessRecord {
            id,
            at: Timestamp::from_micros(at),
            caller,
            route,
            purpose,
        })
        .collect())
}

/// Adds the counts, summed per subject and purpose first.
pub(super) async fn add_check_counts(
    pool: &PgPool,
    counts: Vec<(SubjectId, String, u64, Timestamp)>,
) -> Result<()> {
    let merged = merge_counts(counts);
    let mut tx = pool.begin().await.map_err(db)?;
    let subjects = merged.keys().map(|(s, _)| s.as_str().to_owned()).collect();
    let pseudonyms = pseudonyms_for(&mut tx, subjects).await?;
    // One row per (pseudonym, purpose), sorted so that concurrent upserts lock rows in one order.
    let mut rows: Vec<(String, String, i64, i64)> = merged
        .into_iter()
        .map(|((s, purpose), (n, last))| {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            (pseudonyms[s.as_str()].clone(), purpose, n, last.micros())
        })
        .collect();
    rows.sort_unstable();
    let (mut p, mut purpose, mut n, mut last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d) in rows {
        p.push(a);
        purpose.push(b);
        n.push(c);
        last.push(d);
    }
    sqlx::query(
        "INSERT INTO check_counts (pseudonym, purpose, count, last_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
         ON CONFLICT (pseudonym, purpose) DO UPDATE SET
            count = check_counts.count + excluded.count,
            last_at = GREATEST(check_counts.last_at, excluded.last_at)",
    )
    .bind(p)
    .bind(purpose)
    .bind(n)
    .bind(last)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// The subject's `(purpose, count, last)`, ordered by purpose.
pub(super) async fn check_counts(
    pool: &PgPool,
    subject: &SubjectId,
) -> Result<Vec<(String, u64, Timestamp)>> {
    let found: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT purpose, count, last_at FROM check_counts
         WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
         ORDER BY purpose",
    )
    .bind(subject.as_str())
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(found.into_iter().map(|(p, n, last)| (p, n as u64, Timestamp::from_micros(last))).collect())
}
