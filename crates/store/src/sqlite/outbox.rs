//! Propagation on the embedded store: destinations, fan-out from the outbox, and deliveries.
//!
//! Writes run on the writer connection (so the one process never claims a delivery twice); the matchers of
//! fan-out and replay are Rust closures that run in the caller's task, between a read of the outbox and a
//! write job. Fan-out's write moves the cursor only from the value it read (compare and set), so two
//! fan-outs of one destination never both insert the same range.

use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::{backend, is_constraint_violation};
use super::rows;
use crate::common::{ReplayReach, Wanted, json_list, lag_seconds};
use crate::console::AttemptTally;
use crate::error::{Result, StoreError};
use crate::model::{
    ClaimedDelivery, ClaimedEvent, DELIVERY_DEAD, DELIVERY_DELIVERED, DELIVERY_PENDING, DeliveryOutcome,
    DeliveryRecord, DestinationPatch, DestinationRecord, NewDestination, OutboxFilter, OutboxMessage,
    OutboxPruned,
};
use crate::sql::{DEAD_LETTERS, DESTINATION_COLUMNS, EVENT_COLUMNS};

/// Outbox messages read per page by replay.
pub(super) const REPLAY_PAGE: u32 = 1000;

pub(super) fn create_destination(conn: &mut Connection, new: &NewDestination) -> Result<()> {
    let d = &new.record;
    let tx = conn.transaction().map_err(backend)?;
    let inserted = tx.execute(
        "INSERT INTO destinations (id, name, kind, url, target, event_types, paused, flagged, cursor, origin,
            created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, (SELECT COALESCE(MAX(id), 0) FROM outbox),
            (SELECT COALESCE(MAX(id), 0) FROM outbox), ?9)",
        params![
            d.id,
            d.name,
            d.kind,
            d.url,
            d.target,
            json_list(&d.event_types),
            d.paused,
            d.flagged,
            d.created_at.micros()
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint_violation(&e) => {
            return Err(StoreError::Conflict("a destination with this id exists".into()));
        }
        Err(e) => return Err(backend(e)),
    }
    // A secret left behind by a destination whose deletion crashed half-way is replaced.
    tx.execute("DELETE FROM ks.destination_secrets WHERE destination_id = ?1", [&d.id]).map_err(backend)?;
    if let Some(secret) = &new.secret {
        tx.execute(
            "INSERT INTO ks.destination_secrets (destination_id, secret) VALUES (?1, ?2)",
            params![d.id, secret],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

/// The event types some destination wants, read on the writer connection (which also creates and changes
/// destinations, so no destination can come between this read and the insert that follows it).
pub(super) fn wanted(conn: &Connection, filter: &OutboxFilter) -> Result<Wanted> {
    let stored = conn
        .prepare_cached("SELECT event_types FROM destinations")
        .map_err(backend)?
        .query_map([], |r| r.get(0))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(backend)?;
    Ok(Wanted::new(filter.clone(), stored))
}

/// Inserts those of `messages` that some destination wants, under `pseudonym`, created `at`.
pub(super) fn insert_messages(
    conn: &Connection,
    wanted: &Wanted,
    pseudonym: &str,
    messages: &[OutboxMessage],
    at: Timestamp,
) -> Result<()> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO outbox (pseudonym, event_type, payload, seq, source, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(backend)?;
    for m in messages.iter().filter(|m| wanted.wants(&m.event_type)) {
        let (seq, source) = m.event.as_ref().map(|e| (e.seq as i64, e.source.as_str())).unzip();
        insert
            .execute(params![pseudonym, m.event_type, m.payload, seq, source, at.micros()])
            .map_err(backend)?;
    }
    Ok(())
}

/// Every destination, oldest first.
pub(super) fn destinations(conn: &Connection) -> rusqlite::Result<Vec<DestinationRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations ORDER BY created_at, id"))?;
    stmt.query_map([], rows::destination)?.collect()
}

pub(super) fn destination(conn: &Connection, id: &str) -> rusqlite::Result<Option<DestinationRecord>> {
    conn.prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ?1"))?
        .query_row([id], rows::destination)
        .optional()
}

/// The destination's signing secret, from the key store.
pub(super) fn destination_secret(conn: &Connection, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT secret FROM ks.destination_secrets WHERE destination_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

pub(super) fn update_destination(conn: &Connection, id: &str, patch: &DestinationPatch) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE destinations SET name = COALESCE(?2, name), url = COALESCE(?3, url),
                event_types = COALESCE(?4, event_types), paused = COALESCE(?5, paused)
             WHERE id = ?1",
            params![id, patch.name, patch.url, patch.event_types.as_deref().map(json_list), patch.paused],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

pub(super) fn delete_destination(conn: &mut Connection, id: &str) -> Result<bool> {
    let tx = conn.transaction().map_err(backend)?;
    tx.execute("DELETE FROM deliveries WHERE destination_id = ?1", [id]).map_err(backend)?;
    tx.execute("DELETE FROM delivery_attempts WHERE destination_id = ?1", [id]).map_err(backend)?;
    let n = tx.execute("DELETE FROM destinations WHERE id = ?1", [id]).map_err(backend)?;
    tx.execute("DELETE FROM ks.destination_secrets WHERE destination_id = ?1", [id]).map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(n > 0)
}

/// Outbox messages as `(id, event_type)`.
pub(super) type Candidates = Vec<(i64, String)>;

/// The destination's cursor and up to `limit` outbox messages after it; `None` when there is no such
/// destination.
pub(super) fn fan_out_read(
    conn: &Connection,
    id: &str,
    limit: u32,
) -> rusqlite::Result<Option<(i64, Candidates)>> {
    let tx = conn.unchecked_transaction()?;
    let cursor: Option<i64> = tx
        .prepare_cached("SELECT cursor FROM destinations WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(cursor) = cursor else { return Ok(None) };
    let messages = tx
        .prepare_cached("SELECT id, event_type FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")?
        .query_map(params![cursor, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some((cursor, messages)))
}

/// Moves the cursor from `from` to `to` and adds pending deliveries of `matched`, due `now`, in one
/// transaction; does nothing (returns false) when the cursor is no longer at `from`.
pub(super) fn fan_out_write(
    conn: &mut Connection,
    id: &str,
    from: i64,
    to: i64,
    matched: &[i64],
    now: Timestamp,
) -> Result<bool> {
    let tx = conn.transaction().map_err(backend)?;
    let moved = tx
        .execute("UPDATE destinations SET cursor = ?3 WHERE id = ?1 AND cursor = ?2", params![id, from, to])
        .map_err(backend)?;
    if moved == 0 {
        return Ok(false);
    }
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (destination_id, outbox_id, pseudonym, status, attempts, next_attempt_at)
                 SELECT ?1, id, pseudonym, 'pending', 0, ?3 FROM outbox WHERE id = ?2
                 ON CONFLICT (destination_id, outbox_id) DO NOTHING",
            )
            .map_err(backend)?;
        for outbox_id in matched {
            insert.execute(params![id, outbox_id, now.micros()]).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(true)
}

/// The due deliveries, oldest first, each only when no earlier one of its subject for its destination is
/// pending. INDEXED BY: without statistics the planner would walk the destination's whole history.
pub(super) const CLAIM_DUE: &str = "SELECT d.destination_id, d.outbox_id, k.subject, o.event_type, o.payload,
            d.attempts, o.created_at, o.seq, o.source
     FROM deliveries d
     JOIN destinations t ON t.id = d.destination_id
     JOIN outbox o ON o.id = d.outbox_id
     LEFT JOIN ks.subject_keys k ON k.pseudonym = d.pseudonym
     WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
       AND (d.leased_until IS NULL OR d.leased_until <= ?1)
       AND t.paused = 0
       AND NOT EXISTS (
           SELECT 1 FROM deliveries e INDEXED BY deliveries_pending_by_subject
           WHERE e.destination_id = d.destination_id AND e.pseudonym = d.pseudonym
             AND e.status = 'pending' AND e.outbox_id < d.outbox_id)
     ORDER BY d.outbox_id, d.destination_id
     LIMIT ?2";

/// Leases the due deliveries (see [`crate::Store::claim_deliveries`]) until `until`.
pub(super) fn claim(
    conn: &mut Connection,
    now: Timestamp,
    until: i64,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>> {
    let tx = conn.transaction().map_err(backend)?;
    let claimed = {
        let mut due = tx.prepare_cached(CLAIM_DUE).map_err(backend)?;
        let mut event_at = tx
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq = ?1"))
            .map_err(backend)?;
        let claimed = due
            .query_map(params![now.micros(), limit], |r| {
                let subject: Option<String> = r.get(2)?;
                let seq: Option<i64> = r.get(7)?;
                let event = seq
                    .map(|seq| {
                        let event = event_at.query_row([seq], |e| rows::event(e, 0)).optional()?;
                        Ok::<_, rusqlite::Error>(ClaimedEvent {
                            source: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                            seq: seq as u64,
                            event,
                        })
                    })
                    .transpose()?;
                Ok(ClaimedDelivery {
                    destination_id: r.get(0)?,
                    outbox_id: r.get(1)?,
                    subject: subject.and_then(|s| SubjectId::new(s).ok()),
                    event_type: r.get(3)?,
                    payload: r.get(4)?,
                    event,
                    attempts: r.get(5)?,
                    created_at: Timestamp::from_micros(r.get(6)?),
                })
            })
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(backend)?;
        let mut lease = tx
            .prepare_cached(
                "UPDATE deliveries SET leased_until = ?3 WHERE destination_id = ?1 AND outbox_id = ?2",
            )
            .map_err(backend)?;
        for c in &claimed {
            lease.execute(params![c.destination_id, c.outbox_id, until]).map_err(backend)?;
        }
        claimed
    };
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

pub(super) fn complete(
    conn: &mut Connection,
    id: &str,
    outbox_id: i64,
    outcome: &DeliveryOutcome,
) -> Result<()> {
    let tx = conn.transaction().map_err(backend)?;
    let mut attempts = AttemptTally::default();
    if complete_in(&tx, id, outbox_id, outcome)? {
        attempts.add(id, outcome, Timestamp::now());
    }
    add_attempts(&tx, &attempts)?;
    tx.commit().map_err(backend)
}

/// Records many outcomes in one transaction: one fsync for a whole round of deliveries.
pub(super) fn complete_many(
    conn: &mut Connection,
    outcomes: &[(String, i64, DeliveryOutcome)],
) -> Result<()> {
    let failed_at = Timestamp::now();
    let tx = conn.transaction().map_err(backend)?;
    let mut attempts = AttemptTally::default();
    for (id, outbox_id, outcome) in outcomes {
        if complete_in(&tx, id, *outbox_id, outcome)? {
            attempts.add(id, outcome, failed_at);
        }
    }
    add_attempts(&tx, &attempts)?;
    tx.commit().map_err(backend)
}

/// Adds the attempts recorded to their destination's minute buckets.
fn add_attempts(tx: &rusqlite::Transaction<'_>, attempts: &AttemptTally) -> Result<()> {
    let mut add = tx
        .prepare_cached(
            "INSERT INTO delivery_attempts (destination_id, minute, ok, failed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (destination_id, minute) DO UPDATE
             SET ok = ok + excluded.ok, failed = failed + excluded.failed",
        )
        .map_err(backend)?;
    for ((id, minute), (ok, failed)) in &attempts.0 {
        add.execute(params![id, minute, *ok as i64, *failed as i64]).map_err(backend)?;
    }
    Ok(())
}

/// Records one outcome; returns whether it applied (the delivery was still pending).
fn complete_in(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    outbox_id: i64,
    outcome: &DeliveryOutcome,
) -> Result<bool> {
    // Only a pending delivery: a late report from a worker whose lease ran out changes nothing.
    let key = "WHERE destination_id = ?1 AND outbox_id = ?2 AND status = 'pending'";
    let n = match outcome {
        DeliveryOutcome::Delivered { at } => tx
            .execute(
                &format!(
                    "UPDATE deliveries SET status = '{DELIVERY_DELIVERED}', attempts = attempts + 1,
                        delivered_at = ?3, leased_until = NULL {key}"
                ),
                params![id, outbox_id, at.micros()],
            )
            .map_err(backend)?,
        DeliveryOutcome::Retry { error, next_attempt_at } => tx
            .execute(
                &format!(
                    "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4,
                        leased_until = NULL {key}"
                ),
                params![id, outbox_id, error, next_attempt_at.micros()],
            )
            .map_err(backend)?,
        DeliveryOutcome::Dead { error } => {
            let n = tx
                .execute(
                    &format!(
                        "UPDATE deliveries SET status = '{DELIVERY_DEAD}', attempts = attempts + 1,
                            last_error = ?3, leased_until = NULL {key}"
                    ),
                    params![id, outbox_id, error],
                )
                .map_err(backend)?;
            if n > 0 {
                tx.execute("UPDATE destinations SET flagged = 1 WHERE id = ?1", [id]).map_err(backend)?;
            }
            n
        }
    };
    Ok(n > 0)
}

pub(super) fn deliveries(
    conn: &Connection,
    id: &str,
    status: Option<&str>,
    after: i64,
    limit: u32,
) -> rusqlite::Result<Vec<DeliveryRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.outbox_id, o.event_type, d.status, d.attempts, d.last_error, d.next_attempt_at,
            d.delivered_at, o.created_at
         FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
         WHERE d.destination_id = ?1 AND (?2 IS NULL OR d.status = ?2) AND d.outbox_id > ?3
         ORDER BY d.outbox_id LIMIT ?4",
    )?;
    stmt.query_map(params![id, status, after, limit], |r| {
        let status: String = r.get(2)?;
        let next: i64 = r.get(5)?;
        Ok(DeliveryRecord {
            outbox_id: r.get(0)?,
            event_type: r.get(1)?,
            next_attempt_at: (status == DELIVERY_PENDING).then_some(Timestamp::from_micros(next)),
            status,
            attempts: r.get(3)?,
            last_error: r.get(4)?,
            delivered_at: r.get::<_, Option<i64>>(6)?.map(Timestamp::from_micros),
            created_at: Timestamp::from_micros(r.get(7)?),
        })
    })?
    .collect()
}

/// One page of replay candidates: outbox messages with `after < id <= cursor` created at or after
/// `since`.
pub(super) fn replay_page(
    conn: &Connection,
    after: i64,
    cursor: i64,
    since: i64,
) -> rusqlite::Result<Candidates> {
    conn.prepare_cached(
        "SELECT id, event_type FROM outbox WHERE id > ?1 AND id <= ?2 AND created_at >= ?3 ORDER BY id LIMIT ?4",
    )?
    .query_map(params![after, cursor, since, REPLAY_PAGE], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// What a replay of the destination may reach; `None` when there is no such destination.
pub(super) fn replay_reach(conn: &Connection, id: &str) -> rusqlite::Result<Option<ReplayReach>> {
    let tx = conn.unchecked_transaction()?;
    let row: Option<(i64, i64, i64)> = tx
        .prepare_cached("SELECT cursor, origin, created_at FROM destinations WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((cursor, origin, created_at)) = row else { return Ok(None) };
    let pruned_through = pruned_through(&tx)?;
    Ok(Some(ReplayReach { cursor, origin, created_at: Timestamp::from_micros(created_at), pruned_through }))
}

/// When the first outbox message at or after `id` was created; `None` when there is none.
pub(super) fn first_at(conn: &Connection, id: i64) -> rusqlite::Result<Option<Timestamp>> {
    conn.prepare_cached("SELECT created_at FROM outbox WHERE id >= ?1 ORDER BY id LIMIT 1")?
        .query_row([id], |r| r.get(0).map(Timestamp::from_micros))
        .optional()
}

/// The highest outbox id the sweep deleted (0 before any).
fn pruned_through(conn: &Connection) -> rusqlite::Result<i64> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'outbox_pruned_through'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// One bounded step of the outbox sweep (see [`crate::Store::prune_outbox`]): looks at up to `limit`
/// messages after `after` and deletes those no destination can still need, with their deliveries.
pub(super) fn prune(
    conn: &mut Connection,
    after: i64,
    not_before: Timestamp,
    limit: u32,
) -> Result<OutboxPruned> {
    let tx = conn.transaction().map_err(backend)?;
    let (floor, origins): (Option<i64>, Option<i64>) = tx
        .query_row("SELECT MIN(cursor), MIN(origin) FROM destinations", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?;
    let destinations: Vec<String> = tx
        .prepare_cached("SELECT id FROM destinations")
        .map_err(backend)?
        .query_map([], |r| r.get(0))
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    // With no destination, no one can reach any message: every one goes.
    let (floor, origins) = (floor.unwrap_or(i64::MAX), origins.unwrap_or(i64::MAX));
    let rows: Vec<(i64, String, i64)> = tx
        .prepare_cached(
            "SELECT id, pseudonym, created_at FROM outbox WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(backend)?
        .query_map(params![after, floor, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    let mut done = rows.len() < limit as usize;
    let mut last = after;
    let mut deleted = 0;
    let mut through = 0;
    {
        let mut held = tx
            .prepare_cached(
                "SELECT 1 FROM deliveries WHERE destination_id = ?1 AND outbox_id = ?2 AND status <> 'delivered'",
            )
            .map_err(backend)?;
        let mut after_dead = tx
            .prepare_cached(
                "SELECT 1 FROM deliveries INDEXED BY deliveries_dead_by_subject
                 WHERE pseudonym = ?1 AND outbox_id < ?2 AND status = 'dead'",
            )
            .map_err(backend)?;
        let mut forget = tx
            .prepare_cached("DELETE FROM deliveries WHERE destination_id = ?1 AND outbox_id = ?2")
            .map_err(backend)?;
        let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(backend)?;
        for (id, pseudonym, created_at) in rows {
            // Messages are numbered as they are made: the first one a destination may still replay ends
            // the sweep.
            if id > origins && created_at >= not_before.micros() {
                done = true;
                break;
            }
            last = id;
            let mut keep = after_dead.exists(params![pseudonym, id]).map_err(backend)?;
            for d in &destinations {
                keep = keep || held.exists(params![d, id]).map_err(backend)?;
            }
            if keep {
                continue;
            }
            for d in &destinations {
                forget.execute(params![d, id]).map_err(backend)?;
            }
            deleted += delete.execute([id]).map_err(backend)? as u64;
            through = id;
        }
    }
    if through > 0 {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('outbox_pruned_through', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value
             WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
            [through.to_string()],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(OutboxPruned { deleted, last, done })
}

/// Makes `ids` pending again (attempts 0, due `now`) for the destination, inserting missing deliveries;
/// returns how many it touched (0 once the destination is gone).
pub(super) fn replay_write(conn: &mut Connection, id: &str, ids: &[i64], now: Timestamp) -> Result<u64> {
    let tx = conn.transaction().map_err(backend)?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM destinations WHERE id = ?1")
        .map_err(backend)?
        .exists([id])
        .map_err(backend)?;
    if !exists {
        return Ok(0);
    }
    let mut touched = 0;
    {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO deliveries (destination_id, outbox_id, pseudonym, status, attempts, next_attempt_at)
                 SELECT ?1, id, pseudonym, 'pending', 0, ?3 FROM outbox WHERE id = ?2
                 ON CONFLICT (destination_id, outbox_id) DO UPDATE SET status = 'pending', attempts = 0,
                    last_error = NULL, next_attempt_at = excluded.next_attempt_at, leased_until = NULL,
                    delivered_at = NULL",
            )
            .map_err(backend)?;
        for outbox_id in ids {
            touched += upsert.execute(params![id, outbox_id, now.micros()]).map_err(backend)? as u64;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(touched)
}

/// Makes one dead delivery pending again (attempts 0, due `now`); whether there was one. The same
/// subject's later messages to that destination that already went out (or died) are made pending too,
/// so the destination ends on the subject's latest change rather than on the replayed older one.
pub(super) fn replay_dead_letter(
    conn: &mut Connection,
    id: &str,
    outbox_id: i64,
    now: Timestamp,
) -> Result<bool> {
    let tx = conn.transaction().map_err(backend)?;
    let changed =
        tx.execute(REPLAY_DEAD_LETTER_SQLITE, params![id, outbox_id, now.micros()]).map_err(backend)?;
    if changed > 0 {
        tx.execute(REQUEUE_LATER_SQLITE, params![id, outbox_id, now.micros()]).map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(changed > 0)
}

const REPLAY_DEAD_LETTER_SQLITE: &str =
    "UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL,
        next_attempt_at = ?3, leased_until = NULL, delivered_at = NULL
     WHERE destination_id = ?1 AND outbox_id = ?2 AND status = 'dead'";

const REQUEUE_LATER_SQLITE: &str =
    "UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL,
        next_attempt_at = ?3, leased_until = NULL, delivered_at = NULL
     WHERE destination_id = ?1 AND outbox_id > ?2 AND status <> 'pending'
       AND pseudonym = (SELECT pseudonym FROM deliveries WHERE destination_id = ?1 AND outbox_id = ?2)";

/// Seconds since the oldest message still pending for a destination that is not paused was created.
pub(super) fn outbox_lag(conn: &Connection, now: Timestamp) -> rusqlite::Result<Option<f64>> {
    let oldest: Option<i64> = conn.query_row(
        "SELECT MIN(o.created_at) FROM deliveries d
         JOIN outbox o ON o.id = d.outbox_id
         JOIN destinations t ON t.id = d.destination_id
         WHERE d.status = 'pending' AND t.paused = 0",
        [],
        |r| r.get(0),
    )?;
    Ok(oldest.map(|at| lag_seconds(now, at)))
}

/// Seconds since the oldest message still pending for destination `id` was created (messages are numbered
/// as they are made, so the smallest pending one is the oldest).
pub(super) fn destination_lag(conn: &Connection, id: &str, now: Timestamp) -> rusqlite::Result<Option<f64>> {
    let oldest: Option<i64> = conn
        .prepare_cached(
            "SELECT o.created_at FROM outbox o WHERE o.id =
                (SELECT MIN(outbox_id) FROM deliveries WHERE destination_id = ?1 AND status = 'pending')",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(oldest.map(|at| lag_seconds(now, at)))
}

pub(super) fn dead_letters(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(DEAD_LETTERS, [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}
