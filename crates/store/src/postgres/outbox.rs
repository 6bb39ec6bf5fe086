//! Propagation on PostgreSQL: the outbox, destinations, fan-out and deliveries, for several nodes.
//!
//! - **Outbox ids in commit order.** Every transaction that inserts outbox rows takes `OUTBOX_LOCK` (an
//!   append takes it after the ledger lock) and holds it to its commit, so a row with a smaller id is always
//!   visible before one with a larger id. A destination's cursor therefore never passes a row that commits
//!   later.
//! - **Fan-out** locks the destination row (`FOR UPDATE`), so two nodes never fan out one range twice.
//! - **Claiming** leases rows taken with `FOR UPDATE SKIP LOCKED`; a row another node leased meanwhile is
//!   re-checked against its new version and dropped, so no delivery is handed out twice while leased.

use consentry_core::{Event, SubjectId, Timestamp};
use sqlx::{PgConnection, PgPool};

use super::error::{db, is_unique_violation};
use super::locks::{self, OUTBOX_LOCK, PRUNE_LOCK};
use super::pseudonyms::pseudonyms_for;
use crate::common::{ReplayReach, Wanted, json_list, lag_seconds};
use crate::console::AttemptTally;
use crate::error::{Result, StoreError};
use crate::model::{
    ClaimedDelivery, ClaimedEvent, DELIVERY_PENDING, DeliveryOutcome, DeliveryRecord, DestinationPatch,
    DestinationRecord, EventMatcher, NewDestination, OutboxFilter, OutboxMessage, OutboxPruned, ReplayFrom,
};
use crate::sql::{DEAD_LETTERS, DESTINATION_COLUMNS, EVENT_COLUMNS};
/// Outbox messages read per page by replay.
pub(super) const REPLAY_PAGE: i64 = 1000;

/// Columns of many outbox rows, for one multi-row insert in their order.
pub(super) struct OutboxColumns {
    filter: OutboxFilter,
    pseudonym: Vec<String>,
    event_type: Vec<String>,
    payload: Vec<String>,
    seq: Vec<Option<i64>>,
    source: Vec<Option<String>>,
    created_at: Vec<i64>,
}

/// The event types some destination wants, read under the outbox lock (which creating and changing a
/// destination take too, and which this transaction then holds to its commit): no destination can come
/// between this read and the insert that follows it.
pub(super) async fn wanted(conn: &mut PgConnection, filter: &OutboxFilter) -> Result<Wanted> {
    locks::lock(conn, OUTBOX_LOCK).await?;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT event_types FROM destinations").fetch_all(&mut *conn).await.map_err(db)?;
    Ok(Wanted::new(filter.clone(), stored))
}

impl OutboxColumns {
    /// No rows yet; `filter` decides which some destination wants when they are inserted.
    pub fn new(filter: &OutboxFilter) -> Self {
        Self {
            filter: filter.clone(),
            pseudonym: Vec::new(),
            event_type: Vec::new(),
            payload: Vec::new(),
            seq: Vec::new(),
            source: Vec::new(),
            created_at: Vec::new(),
        }
    }

    pub fn push(&mut self, pseudonym: &str, message: OutboxMessage, at: Timestamp) {
        self.pseudonym.push(pseudonym.to_owned());
        self.event_type.push(message.event_type);
        self.payload.push(message.payload);
        self.seq.push(message.event.as_ref().map(|e| e.seq as i64));
        self.source.push(message.event.map(|e| e.source));
        self.created_at.push(at.micros());
    }

    /// Takes the outbox lock and inserts the rows some destination wants, their ids in push order. The
    /// destinations are read after the lock, which their creation and changes take too: one whose
    /// creation answered before is seen, so it misses no message committed after, on any node.
    pub async fn insert(self, conn: &mut PgConnection) -> Result<()> {
        if self.pseudonym.is_empty() {
            return Ok(());
        }
        let wanted = wanted(conn, &self.filter).await?;
        self.insert_wanted(conn, &wanted).await
    }

    /// [`Self::insert`] for a transaction that holds the outbox lock since it read `wanted` ([`wanted`]):
    /// no destination can have changed since, so the read is not made again.
    pub async fn insert_wanted(self, conn: &mut PgConnection, wanted: &Wanted) -> Result<()> {
        if self.pseudonym.is_empty() {
            return Ok(());
        }
        let keep: Vec<bool> = self.event_type.iter().map(|t| wanted.wants(t)).collect();
        if !keep.contains(&true) {
            return Ok(());
        }
        let pick =
            |v: Vec<_>| v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect::<Vec<_>>();
        let (pseudonym, event_type, payload) =
            (pick(self.pseudonym), pick(self.event_type), pick(self.payload));
        let source: Vec<Option<String>> =
            self.source.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect();
        let seq: Vec<Option<i64>> =
            self.seq.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect();
        let created_at: Vec<i64> =
            self.created_at.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect();
        sqlx::query(
            "INSERT INTO outbox (pseudonym, event_type, payload, seq, source, created_at)
             SELECT p, t, m, s, o, c
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])
                WITH ORDINALITY AS u(p, t, m, s, o, c, n)
             ORDER BY n",
        )
        .bind(pseudonym)
        .bind(event_type)
        .bind(payload)
        .bind(seq)
        .bind(source)
        .bind(created_at)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        Ok(())
    }
}

pub(super) async fn enqueue(
    pool: &PgPool,
    filter: &OutboxFilter,
    subject: &SubjectId,
    messages: Vec<OutboxMessage>,
) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    // The pseudonym first: its key insert may wait for another transaction, which must not hold us
    // waiting while we hold the outbox lock.
    let pseudonyms = pseudonyms_for(&mut tx, vec![subject.as_str().to_owned()]).await?;
    let p = &pseudonyms[subject.as_str()];
    let now = Timestamp::now();
    let mut rows = OutboxColumns::new(filter);
    for m in messages {
        rows.push(p, m, now);
    }
    rows.insert(&mut tx).await?;
    tx.commit().await.map_err(db)
}

type DestinationRow = (String, String, String, String, Option<String>, String, bool, bool, i64);

pub(super) fn destination(
    (id, name, kind, url, target, types, paused, flagged, at): DestinationRow,
) -> Result<DestinationRecord> {
    let event_types = serde_json::from_str(&types)
        .map_err(|_| StoreError::Backend("stored data does not decode: destination event types".into()))?;
    Ok(DestinationRecord {
        id,
        name,
        kind,
        url,
        target,
        event_types,
        paused,
        flagged,
        created_at: Timestamp::from_micros(at),
    })
}

pub(super) async fn destinations(pool: &PgPool) -> Result<Vec<DestinationRecord>> {
    let rows: Vec<DestinationRow> =
        sqlx::query_as(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations ORDER BY created_at, id"))
            .fetch_all(pool)
            .await
            .map_err(db)?;
    rows.into_iter().map(destination).collect()
}

pub(super) async fn destination_by_id(pool: &PgPool, id: &str) -> Result<Option<DestinationRecord>> {
    let row: Option<DestinationRow> =
        sqlx::query_as(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    row.map(destination).transpose()
}

pub(super) async fn create_destination(pool: &PgPool, new: NewDestination) -> Result<()> {
    let d = &new.record;
    let mut tx = pool.begin().await.map_err(db)?;
    // Under the outbox lock: every outbox insert that commits after this one reads this destination, and
    // every one before it committed already (its ids are below the cursor set here).
    locks::lock(&mut tx, OUTBOX_LOCK).await?;
    let inserted = sqlx::query(
        "INSERT INTO destinations (id, name, kind, url, target, event_types, paused, flagged, cursor, origin,
            created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT COALESCE(MAX(id), 0) FROM outbox),
            (SELECT COALESCE(MAX(id), 0) FROM outbox), $9)",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.kind)
    .bind(&d.url)
    .bind(&d.target)
    .bind(json_list(&d.event_types))
    .bind(d.paused)
    .bind(d.flagged)
    .bind(d.created_at.micros())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("a destination with this id exists".into()));
        }
        Err(e) => return Err(db(e)),
    }
    sqlx::query("DELETE FROM consentry_keystore.destination_secrets WHERE destination_id = $1")
        .bind(&d.id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if let Some(secret) = &new.secret {
        sqlx::query(
            "INSERT INTO consentry_keystore.destination_secrets (destination_id, secret) VALUES ($1, $2)",
        )
        .bind(&d.id)
        .bind(secret)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

pub(super) async fn destination_secret(pool: &PgPool, id: &str) -> Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT secret FROM consentry_keystore.destination_secrets WHERE destination_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)
}

pub(super) async fn update_destination(pool: &PgPool, id: &str, patch: DestinationPatch) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    // A changed filter applies to every outbox insert that commits after this answer (see
    // `create_destination`).
    if patch.event_types.is_some() {
        locks::lock(&mut tx, OUTBOX_LOCK).await?;
    }
    let n = sqlx::query(
        "UPDATE destinations SET name = COALESCE($2, name), url = COALESCE($3, url),
            event_types = COALESCE($4, event_types), paused = COALESCE($5, paused)
         WHERE id = $1",
    )
    .bind(id)
    .bind(patch.name)
    .bind(patch.url)
    .bind(patch.event_types.as_deref().map(json_list))
    .bind(patch.paused)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();
    tx.commit().await.map_err(db)?;
    Ok(n > 0)
}

pub(super) async fn delete_destination(pool: &PgPool, id: &str) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    // The row lock first: a fan-out under way finishes before its deliveries are deleted.
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM destinations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    for sql in [
        "DELETE FROM deliveries WHERE destination_id = $1",
        "DELETE FROM delivery_attempts WHERE destination_id = $1",
        "DELETE FROM destinations WHERE id = $1",
        "DELETE FROM consentry_keystore.destination_secrets WHERE destination_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(found.is_some())
}

pub(super) async fn fan_out(pool: &PgPool, id: &str, matches: &EventMatcher, limit: u32) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(db)?;
    let cursor: Option<i64> = sqlx::query_scalar("SELECT cursor FROM destinations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    let Some(cursor) = cursor else { return Ok(0) };
    let messages: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, pseudonym, event_type FROM outbox WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(cursor)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
    let Some(last) = messages.last().map(|m| m.0) else { return Ok(0) };
    let (mut ids, mut pseudonyms) = (Vec::new(), Vec::new());
    for (outbox_id, pseudonym, event_type) in &messages {
        if matches(event_type) {
            ids.push(*outbox_id);
            pseudonyms.push(pseudonym.clone());
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (destination_id, outbox_id, pseudonym, status, attempts, next_attempt_at)
             SELECT $1, o, p, 'pending', 0, $4 FROM UNNEST($2::bigint[], $3::text[]) AS u(o, p)
             ON CONFLICT (destination_id, outbox_id) DO NOTHING",
        )
        .bind(id)
        .bind(ids)
        .bind(pseudonyms)
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    sqlx::query("UPDATE destinations SET cursor = $2 WHERE id = $1")
        .bind(id)
        .bind(last)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(messages.len() as u64)
}

type ClaimedRow = (String, i64, Option<String>, String, String, i32, i64, Option<i64>, Option<String>);

pub(super) async fn claim(
    pool: &PgPool,
    now: Timestamp,
    until: i64,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>> {
    let mut rows: Vec<ClaimedRow> = sqlx::query_as(
        "WITH due AS (
             SELECT d.destination_id, d.outbox_id FROM deliveries d
             JOIN destinations t ON t.id = d.destination_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1
               AND (d.leased_until IS NULL OR d.leased_until <= $1)
               AND NOT t.paused
               AND NOT EXISTS (
                   SELECT 1 FROM deliveries e
                   WHERE e.destination_id = d.destination_id AND e.pseudonym = d.pseudonym
                     AND e.status = 'pending' AND e.outbox_id < d.outbox_id)
             ORDER BY d.outbox_id, d.destination_id
             LIMIT $3
             FOR UPDATE OF d SKIP LOCKED
         )
         UPDATE deliveries d SET leased_until = $2
         FROM due
         JOIN outbox o ON o.id = due.outbox_id
         LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = o.pseudonym
         WHERE d.destination_id = due.destination_id AND d.outbox_id = due.outbox_id
         RETURNING d.destination_id, d.outbox_id, k.subject, o.event_type, o.payload,
             d.attempts, o.created_at, o.seq, o.source",
    )
    .bind(now.micros())
    .bind(until)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    // The ledger events the claimed messages announce, read once each.
    let mut seqs: Vec<i64> = rows.iter().filter_map(|r| r.7).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let events: std::collections::HashMap<u64, Event> = if seqs.is_empty() {
        std::collections::HashMap::new()
    } else {
        let found = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq = ANY($1)"))
            .bind(&seqs)
            .fetch_all(pool)
            .await
            .map_err(db)?;
        found.iter().map(|r| super::rows::event(r).map(|e| (e.seq, e))).collect::<Result<_>>()?
    };
    Ok(rows
        .into_iter()
        .map(
            |(destination_id, outbox_id, subject, event_type, payload, attempts, created_at, seq, source)| {
                let event = seq.map(|seq| ClaimedEvent {
                    source: source.unwrap_or_default(),
                    seq: seq as u64,
                    event: events.get(&(seq as u64)).cloned(),
                });
                ClaimedDelivery {
                    destination_id,
                    outbox_id,
                    subject: subject.and_then(|s| SubjectId::new(s).ok()),
                    event_type,
                    payload,
                    event,
                    attempts: attempts.max(0) as u32,
                    created_at: Timestamp::from_micros(created_at),
                }
            },
        )
        .collect())
}

/// Records many outcomes in one transaction: one commit for a whole round of deliveries.
/// Records outcomes in one transaction, and adds the attempts that applied to their destination's minute
/// buckets (one upsert, its rows in one order on every node).
pub(super) async fn complete_many(
    pool: &PgPool,
    outcomes: Vec<(String, i64, DeliveryOutcome)>,
) -> Result<()> {
    let failed_at = Timestamp::now();
    let mut tx = pool.begin().await.map_err(db)?;
    let mut attempts = AttemptTally::default();
    for (id, outbox_id, outcome) in outcomes {
        let mut one = AttemptTally::default();
        one.add(&id, &outcome, failed_at);
        if complete(&mut *tx, &id, outbox_id, outcome).await? {
            for (key, (ok, failed)) in one.0 {
                let entry = attempts.0.entry(key).or_default();
                entry.0 += ok;
                entry.1 += failed;
            }
        }
    }
    if !attempts.0.is_empty() {
        let (mut ids, mut minutes, mut oks, mut faileds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((id, minute), (ok, failed)) in attempts.0 {
            ids.push(id);
            minutes.push(minute);
            oks.push(i64::try_from(ok).unwrap_or(i64::MAX));
            faileds.push(i64::try_from(failed).unwrap_or(i64::MAX));
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (destination_id, minute, ok, failed)
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[])
             ON CONFLICT (destination_id, minute) DO UPDATE
             SET ok = delivery_attempts.ok + EXCLUDED.ok, failed = delivery_attempts.failed + EXCLUDED.failed",
        )
        .bind(ids)
        .bind(minutes)
        .bind(oks)
        .bind(faileds)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// Records one outcome; returns whether it applied (the delivery was still pending).
async fn complete(
    pool: impl sqlx::PgExecutor<'_>,
    id: &str,
    outbox_id: i64,
    outcome: DeliveryOutcome,
) -> Result<bool> {
    // Only a pending delivery: a late report from a worker whose lease ran out changes nothing.
    let key = "WHERE destination_id = $1 AND outbox_id = $2 AND status = 'pending'";
    let done = match outcome {
        DeliveryOutcome::Delivered { at } => {
            sqlx::query(&format!(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = $3,
                    leased_until = NULL {key}"
            ))
            .bind(id)
            .bind(outbox_id)
            .bind(at.micros())
            .execute(pool)
            .await
        }
        DeliveryOutcome::Retry { error, next_attempt_at } => {
            sqlx::query(&format!(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4,
                    leased_until = NULL {key}"
            ))
            .bind(id)
            .bind(outbox_id)
            .bind(error)
            .bind(next_attempt_at.micros())
            .execute(pool)
            .await
        }
        DeliveryOutcome::Dead { error } => {
            // One statement, so the flag is set exactly when the delivery went dead (and the row the
            // destination's update touches says it did).
            sqlx::query(&format!(
                "WITH dead AS (
                     UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = $3,
                        leased_until = NULL {key}
                     RETURNING destination_id
                 )
                 UPDATE destinations SET flagged = TRUE WHERE id IN (SELECT destination_id FROM dead)"
            ))
            .bind(id)
            .bind(outbox_id)
            .bind(error)
            .execute(pool)
            .await
        }
    };
    Ok(done.map_err(db)?.rows_affected() > 0)
}

type DeliveryRow = (i64, String, String, i32, Option<String>, i64, Option<i64>, i64);

pub(super) async fn deliveries(
    pool: &PgPool,
    id: &str,
    status: Option<&str>,
    after: i64,
    limit: u32,
) -> Result<Vec<DeliveryRecord>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT d.outbox_id, o.event_type, d.status, d.attempts, d.last_error, d.next_attempt_at,
            d.delivered_at, o.created_at
         FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
         WHERE d.destination_id = $1 AND ($2::text IS NULL OR d.status = $2) AND d.outbox_id > $3
         ORDER BY d.outbox_id LIMIT $4",
    )
    .bind(id)
    .bind(status)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(outbox_id, event_type, status, attempts, last_error, next, delivered_at, created_at)| {
            DeliveryRecord {
                outbox_id,
                event_type,
                next_attempt_at: (status == DELIVERY_PENDING).then_some(Timestamp::from_micros(next)),
                status,
                attempts: attempts.max(0) as u32,
                last_error,
                delivered_at: delivered_at.map(Timestamp::from_micros),
                created_at: Timestamp::from_micros(created_at),
            }
        })
        .collect())
}

pub(super) async fn replay(
    pool: &PgPool,
    id: &str,
    from: ReplayFrom,
    not_before: Timestamp,
    matches: &EventMatcher,
) -> Result<u64> {
    let mut conn = pool.acquire().await.map_err(db)?;
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT cursor, origin, created_at FROM destinations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some((cursor, origin, created_at)) = row else { return Ok(0) };
    let reach = ReplayReach {
        cursor,
        origin,
        created_at: Timestamp::from_micros(created_at),
        pruned_through: pruned_through(&mut conn).await?,
    };
    let first_at = match from {
        ReplayFrom::OutboxId(first) => {
            sqlx::query_scalar::<_, i64>("SELECT created_at FROM outbox WHERE id >= $1 ORDER BY id LIMIT 1")
                .bind(first)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .map(Timestamp::from_micros)
        }
        ReplayFrom::Time(_) => None,
    };
    drop(conn);
    let (mut after, since) = reach.start(from, not_before, first_at)?;
    let mut total = 0;
    loop {
        let page: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, event_type FROM outbox WHERE id > $1 AND id <= $2 AND created_at >= $3
             ORDER BY id LIMIT $4",
        )
        .bind(after)
        .bind(cursor)
        .bind(since)
        .bind(REPLAY_PAGE)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        let Some(&(last, _)) = page.last() else { break };
        after = last;
        let ids: Vec<i64> = page.iter().filter(|(_, t)| matches(t)).map(|(i, _)| *i).collect();
        if ids.is_empty() {
            continue;
        }
        let mut tx = pool.begin().await.map_err(db)?;
        // Never beside a sweep: what this makes pending again, the sweep then keeps.
        locks::lock(&mut tx, PRUNE_LOCK).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM destinations WHERE id = $1 FOR KEY SHARE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if exists.is_none() {
            return Ok(total);
        }
        // Rows up to the cursor only: fan-out, which inserts after it, never races with this upsert.
        total += sqlx::query(
            "INSERT INTO deliveries (destination_id, outbox_id, pseudonym, status, attempts, next_attempt_at)
             SELECT $1, o.id, o.pseudonym, 'pending', 0, $3 FROM outbox o WHERE o.id = ANY($2)
             ON CONFLICT (destination_id, outbox_id) DO UPDATE SET status = 'pending', attempts = 0,
                last_error = NULL, next_attempt_at = excluded.next_attempt_at, leased_until = NULL,
                delivered_at = NULL",
        )
        .bind(id)
        .bind(ids)
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
    }
    Ok(total)
}

/// The highest outbox id the sweep deleted (0 before any).
async fn pruned_through(conn: &mut PgConnection) -> Result<i64> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'outbox_pruned_through'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// One bounded step of the outbox sweep (see [`crate::Store::prune_outbox`]), in one transaction under
/// the prune lock (which replays take too, so nothing a replay makes pending is deleted).
pub(super) async fn prune(
    pool: &PgPool,
    after: i64,
    not_before: Timestamp,
    limit: u32,
) -> Result<OutboxPruned> {
    let mut tx = pool.begin().await.map_err(db)?;
    locks::lock(&mut tx, PRUNE_LOCK).await?;
    let (floor, origins): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(cursor), MIN(origin) FROM destinations")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
    // With no destination, no one can reach any message: every one goes.
    let (floor, origins) = (floor.unwrap_or(i64::MAX), origins.unwrap_or(i64::MAX));
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, created_at FROM outbox WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3")
            .bind(after)
            .bind(floor)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
    let mut done = rows.len() < limit as usize;
    let (mut last, mut candidates) = (after, Vec::new());
    for (id, created_at) in rows {
        // Messages are numbered as they are made: the first one a destination may still replay ends
        // the sweep.
        if id > origins && created_at >= not_before.micros() {
            done = true;
            break;
        }
        last = id;
        candidates.push(id);
    }
    let gone: Vec<i64> = if candidates.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "SELECT o.id FROM outbox o WHERE o.id = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM destinations t JOIN deliveries d ON d.destination_id = t.id
                               WHERE d.outbox_id = o.id AND d.status <> 'delivered')
               AND NOT EXISTS (SELECT 1 FROM deliveries e
                               WHERE e.status = 'dead' AND e.pseudonym = o.pseudonym AND e.outbox_id < o.id)",
        )
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
    };
    if !gone.is_empty() {
        sqlx::query(
            "DELETE FROM deliveries WHERE destination_id IN (SELECT id FROM destinations) AND outbox_id = ANY($1)",
        )
        .bind(&gone)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&gone)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let through = gone.iter().max().copied().unwrap_or(0);
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('outbox_pruned_through', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value
             WHERE excluded.value::bigint > meta.value::bigint",
        )
        .bind(through.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(OutboxPruned { deleted: gone.len() as u64, last, done })
}

/// Makes one dead delivery pending again (attempts 0, due `now`); whether there was one. The same
/// subject's later messages to that destination that already went out (or died) are made pending too,
/// so the destination ends on the subject's latest change rather than on the replayed older one.
pub(super) async fn replay_dead_letter(
    pool: &PgPool,
    id: &str,
    outbox_id: i64,
    now: Timestamp,
) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let pseudonym: Option<String> = sqlx::query_scalar(
        "UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = $3,
            leased_until = NULL, delivered_at = NULL
         WHERE destination_id = $1 AND outbox_id = $2 AND status = 'dead'
         RETURNING pseudonym",
    )
    .bind(id)
    .bind(outbox_id)
    .bind(now.micros())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(pseudonym) = pseudonym else { return Ok(false) };
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = $4,
            leased_until = NULL, delivered_at = NULL
         WHERE destination_id = $1 AND outbox_id > $2 AND pseudonym = $3 AND status <> 'pending'",
    )
    .bind(id)
    .bind(outbox_id)
    .bind(pseudonym)
    .bind(now.micros())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn outbox_lag(pool: &PgPool, now: Timestamp) -> Result<Option<f64>> {
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(o.created_at) FROM deliveries d
         JOIN outbox o ON o.id = d.outbox_id
         JOIN destinations t ON t.id = d.destination_id
         WHERE d.status = 'pending' AND NOT t.paused",
    )
    .fetch_one(pool)
    .await
    .map_err(db)?;
    Ok(oldest.map(|at| lag_seconds(now, at)))
}

/// Seconds since the oldest message still pending for destination `id` was created (messages are numbered
/// as they are made, so the smallest pending one is the oldest).
pub(super) async fn destination_lag(pool: &PgPool, id: &str, now: Timestamp) -> Result<Option<f64>> {
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT o.created_at FROM outbox o WHERE o.id =
            (SELECT MIN(outbox_id) FROM deliveries WHERE destination_id = $1 AND status = 'pending')",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    Ok(oldest.map(|at| lag_seconds(now, at)))
}

pub(super) async fn dead_letters(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(DEAD_LETTERS).fetch_one(pool).await.map_err(db)?;
    Ok(n as u64)
}
