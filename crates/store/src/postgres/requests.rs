//! Data subject requests and erasure on PostgreSQL. A change locks the request row (`FOR UPDATE`), so
//! nodes changing one request at once apply their changes one after the other, loads it, asks
//! [`consentry_core::request::next`] what the change does and writes that back; outbox rows go in through
//! the outbox lock like every other message.

use std::str::FromStr;

use async_trait::async_trait;
use consentry_core::request::{self, Transition, UnknownName};
use consentry_core::{SubjectId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::outbox::OutboxColumns;
use super::{PostgresStore, db};
use crate::requests::{
    ChangeOutcome, NewRequest, RequestAction, RequestFilter, RequestHistoryEntry, RequestKind, RequestRecord,
    RequestStatus, RequestStore, RequestTask, StoredRequest, SubjectErased, SubjectErasure,
};
use crate::{OutboxMessage, Result, StoreError, StoredReceipt, random_bytes};

const REQUEST_COLUMNS: &str = "r.id, k.subject, r.kind, r.status, r.details, r.received_at, r.due_at, \
     r.own_done_at, r.closed_at, r.reason, r.overdue_at, r.updated_at, \
     (SELECT COUNT(*) FROM request_tasks t WHERE t.request_id = r.id AND t.status = 'pending') AS pending_tasks";
const REQUEST_FROM: &str =
    "requests r LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym";

/// One of a closed set of names (a status, a kind, a change) as stored.
fn name<T: FromStr<Err = UnknownName>>(text: &str) -> Result<T> {
    text.parse().map_err(|e: UnknownName| StoreError::Backend(format!("stored data does not decode: {e}")))
}

fn request_row(r: &PgRow) -> Result<RequestRecord> {
    let subject: Option<String> = r.try_get("subject").map_err(db)?;
    let at = |column: &str| -> Result<Option<Timestamp>> {
        Ok(r.try_get::<Option<i64>, _>(column).map_err(db)?.map(Timestamp::from_micros))
    };
    Ok(RequestRecord {
        id: r.try_get("id").map_err(db)?,
        subject: subject.and_then(|s| SubjectId::new(s).ok()),
        kind: name(r.try_get("kind").map_err(db)?)?,
        status: name(r.try_get("status").map_err(db)?)?,
        details: r.try_get("details").map_err(db)?,
        received_at: Timestamp::from_micros(r.try_get("received_at").map_err(db)?),
        due_at: Timestamp::from_micros(r.try_get("due_at").map_err(db)?),
        own_done_at: at("own_done_at")?,
        closed_at: at("closed_at")?,
        reason: r.try_get("reason").map_err(db)?,
        overdue_at: at("overdue_at")?,
        updated_at: Timestamp::from_micros(r.try_get("updated_at").map_err(db)?),
        pending_tasks: u32::try_from(r.try_get::<i64, _>("pending_tasks").map_err(db)?).unwrap_or(u32::MAX),
    })
}

/// `destination_id, status, note, created_at, completed_at`.
type TaskRow = (String, String, Option<String>, i64, Option<i64>);

/// `at, change, status, actor, note`.
type HistoryRow = (i64, String, String, String, Option<String>);

async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<StoredRequest>> {
    let row = sqlx::query(&format!("SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let record = request_row(&row)?;
    let tasks: Vec<TaskRow> = sqlx::query_as(
        "SELECT destination_id, status, note, created_at, completed_at FROM request_tasks
         WHERE request_id = $1 ORDER BY created_at, destination_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT at, change, status, actor, note FROM request_events WHERE request_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let tasks = tasks
        .into_iter()
        .map(|(destination_id, status, note, created_at, completed_at)| {
            Ok(RequestTask {
                destination_id,
                status: name(&status)?,
                note,
                created_at: Timestamp::from_micros(created_at),
                completed_at: completed_at.map(Timestamp::from_micros),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let history = history
        .into_iter()
        .map(|(at, change, status, actor, note)| {
            Ok(RequestHistoryEntry {
                at: Timestamp::from_micros(at),
                change: name(&change)?,
                status: name(&status)?,
                actor,
                note,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(StoredRequest { record, tasks, history }))
}

/// Writes back what [`request::next`] decided: the request's fields, the task it changed and its history
/// rows by `actor`.
async fn persist(conn: &mut PgConnection, id: &str, t: &Transition, actor: &str) -> Result<()> {
    let s = &t.state;
    sqlx::query(
        "UPDATE requests SET status = $2, due_at = $3, own_done_at = $4, closed_at = $5, reason = $6,
                overdue_at = $7, updated_at = $8
         WHERE id = $1",
    )
    .bind(id)
    .bind(s.status.as_str())
    .bind(s.due_at.micros())
    .bind(s.own_done_at.map(Timestamp::micros))
    .bind(s.closed_at.map(Timestamp::micros))
    .bind(&s.reason)
    .bind(s.overdue_at.map(Timestamp::micros))
    .bind(s.updated_at.micros())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if let Some(task) = &t.task {
        sqlx::query(
            "UPDATE request_tasks SET status = $3, note = $4, completed_at = $5
             WHERE request_id = $1 AND destination_id = $2",
        )
        .bind(id)
        .bind(&task.destination_id)
        .bind(task.status.as_str())
        .bind(&task.note)
        .bind(task.completed_at.map(Timestamp::micros))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    history_rows(conn, id, t, actor).await
}

async fn history_rows(conn: &mut PgConnection, id: &str, t: &Transition, actor: &str) -> Result<()> {
    // One statement, the rows in the order given (their ids keep the history's order).
    let (mut at, mut change, mut status, mut note) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for h in &t.history {
        at.push(h.at.micros());
        change.push(h.change.as_str());
        status.push(h.status.as_str());
        note.push(h.note.clone());
    }
    sqlx::query(
        "INSERT INTO request_events (request_id, at, change, status, actor, note)
         SELECT $1, a, c, s, $2, n FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
            WITH ORDINALITY AS u(a, c, s, n, i)
         ORDER BY i",
    )
    .bind(id)
    .bind(actor)
    .bind(at)
    .bind(change)
    .bind(status)
    .bind(note)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Locks the request row (`FOR UPDATE`: changes of one request from several nodes apply one after the
/// other), loads it, asks the rules ([`request::next`]) and writes back what they decided, within the
/// caller's transaction. Returns the request's pseudonym with the outcome.
async fn decide(
    conn: &mut PgConnection,
    id: &str,
    action: RequestAction,
    at: Timestamp,
    actor: &str,
) -> Result<(Option<String>, ChangeOutcome)> {
    let pseudonym: Option<String> =
        sqlx::query_scalar("SELECT pseudonym FROM requests WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some(current) = load(conn, id).await? else { return Ok((pseudonym, ChangeOutcome::NotFound)) };
    match request::next(&current.state(), action, at) {
        Ok(t) => persist(conn, id, &t, actor).await?,
        Err(refusal) => return Ok((pseudonym, ChangeOutcome::Refused(refusal))),
    }
    let stored = load(conn, id).await?;
    Ok((pseudonym, stored.map_or(ChangeOutcome::NotFound, |r| ChangeOutcome::Changed(Box::new(r)))))
}

#[async_trait]
impl RequestStore for PostgresStore {
    async fn create_request(&self, new: NewRequest) -> Result<()> {
        let created = request::receive(new.received_at, &new.destinations);
        let state = &created.state;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pseudonyms = super::pseudonyms_for(&mut tx, vec![new.subject.as_str().to_owned()]).await?;
        let p = &pseudonyms[new.subject.as_str()];
        let inserted = sqlx::query(
            "INSERT INTO requests (id, pseudonym, kind, status, details, received_at, due_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.id)
        .bind(p)
        .bind(new.kind.as_str())
        .bind(state.status.as_str())
        .bind(&new.details)
        .bind(state.received_at.micros())
        .bind(state.due_at.micros())
        .bind(state.updated_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict("a request with this id exists".into()));
        }
        let destinations: Vec<&str> = state.tasks.iter().map(|t| t.destination_id.as_str()).collect();
        let statuses: Vec<&str> = state.tasks.iter().map(|t| t.status.as_str()).collect();
        sqlx::query(
            "INSERT INTO request_tasks (request_id, destination_id, status, created_at)
             SELECT $1, d, s, $4 FROM UNNEST($2::text[], $3::text[]) AS u(d, s)",
        )
        .bind(&new.id)
        .bind(destinations)
        .bind(statuses)
        .bind(new.received_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        history_rows(&mut tx, &new.id, &created, &new.actor).await?;
        let mut outbox = OutboxColumns::new(&self.filter);
        for m in new.messages {
            outbox.push(p, m, new.received_at);
        }
        outbox.insert(&mut tx).await?;
        tx.commit().await.map_err(db)
    }

    async fn request(&self, id: &str) -> Result<Option<StoredRequest>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        load(&mut conn, id).await
    }

    async fn requests(&self, f: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
             WHERE ($1::text IS NULL OR r.pseudonym =
                     (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1))
               AND ($2::text IS NULL OR r.status = $2) AND ($3::text IS NULL OR r.kind = $3)
               AND ($4::bigint IS NULL OR (r.due_at <= $4 AND r.status IN ('received', 'in_progress')))
               AND ($5::text IS NULL OR r.id > $5)
             ORDER BY r.id LIMIT $6"
        ))
        .bind(f.subject.as_ref().map(SubjectId::as_str))
        .bind(f.status.map(RequestStatus::as_str))
        .bind(f.kind.map(RequestKind::as_str))
        .bind(f.overdue_at.map(Timestamp::micros))
        .bind(&f.after)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(request_row).collect()
    }

    async fn change_request(
        &self,
        id: &str,
        action: RequestAction,
        at: Timestamp,
        actor: &str,
    ) -> Result<ChangeOutcome> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let (_, outcome) = decide(&mut tx, id, action, at, actor).await?;
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    async fn unfinished_requests(&self, before: Timestamp, limit: u32) -> Result<Vec<RequestRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
             WHERE r.status IN ('received', 'in_progress') AND r.own_done_at IS NULL AND r.received_at <= $1
             ORDER BY r.id LIMIT $2"
        ))
        .bind(before.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(request_row).collect()
    }

    async fn unmarked_overdue(&self, now: Timestamp, limit: u32) -> Result<Vec<RequestRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
             WHERE r.status IN ('received', 'in_progress') AND r.due_at <= $1 AND r.overdue_at IS NULL
             ORDER BY r.due_at, r.id LIMIT $2"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(request_row).collect()
    }

    async fn mark_overdue(&self, id: &str, at: Timestamp, message: OutboxMessage) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let (pseudonym, outcome) = decide(&mut tx, id, RequestAction::MarkOverdue, at, "system").await?;
        let (Some(p), ChangeOutcome::Changed(_)) = (pseudonym, outcome) else { return Ok(false) };
        let mut outbox = OutboxColumns::new(&self.filter);
        outbox.push(&p, message, at);
        outbox.insert(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn overdue_counts(&self, now: Timestamp) -> Result<(u64, u64)> {
        let (requests, tasks): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                (SELECT COUNT(*) FROM request_tasks t JOIN requests q ON q.id = t.request_id
                 WHERE t.status = 'pending' AND q.status IN ('received', 'in_progress') AND q.due_at <= $1)
             FROM requests WHERE status IN ('received', 'in_progress') AND due_at <= $1",
        )
        .bind(now.micros())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok((requests as u64, tasks as u64))
    }

    async fn subject_receipts(&self, subject: &SubjectId) -> Result<Vec<StoredReceipt>> {
        let rows: Vec<super::ledger::ReceiptRow> = sqlx::query_as(
            "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
             FROM consentry_keystore.subject_keys k
             JOIN events e ON e.pseudonym = k.pseudonym
             JOIN receipts r ON r.first_seq = e.seq
             LEFT JOIN receipt_kids rk ON rk.n = r.kid
             WHERE k.subject = $1 ORDER BY r.created_at, r.id",
        )
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(super::ledger::stored_receipt).collect())
    }

    async fn recent_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>> {
        let rows: Vec<super::ledger::ReceiptRow> = sqlx::query_as(
            "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
             FROM consentry_keystore.subject_keys k
             JOIN events e ON e.pseudonym = k.pseudonym
             JOIN receipts r ON r.first_seq = e.seq
             LEFT JOIN receipt_kids rk ON rk.n = r.kid
             WHERE k.subject = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2",
        )
        .bind(subject.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(super::ledger::stored_receipt).collect())
    }

    async fn erasure_secret(&self) -> Result<[u8; 32]> {
        let fresh: [u8; 32] = random_bytes()?;
        sqlx::query(
            "INSERT INTO consentry_keystore.erasure_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&fresh[..])
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let secret: Vec<u8> =
            sqlx::query_scalar("SELECT secret FROM consentry_keystore.erasure_secret WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        secret.try_into().map_err(|_| StoreError::Backend("the erasure secret is not 32 bytes".into()))
    }

    async fn add_erasure_tombstone(&self, tombstone: &str, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO erased_subjects (tombstone, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tombstone)
        .bind(at.micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn erase_subject(&self, erasure: SubjectErasure) -> Result<SubjectErased> {
        let subject = erasure.subject.as_str();
        let mut erased = SubjectErased::default();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The data key first: a put holding it (a share lock) commits before this goes on, and its record
        // is then seen, and deleted, below.
        erased.data_key = sqlx::query("DELETE FROM consentry_keystore.subject_data_keys WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        let p: Option<String> = sqlx::query_scalar(
            "SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1 FOR UPDATE",
        )
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(p) = &p {
            erased.records = sqlx::query("DELETE FROM records WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            sqlx::query("DELETE FROM identifiers WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM subject_ages WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM event_evidence WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM guardians WHERE child = $1 OR guardian = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM household_members WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            erased.devices = sqlx::query_scalar("DELETE FROM devices WHERE pseudonym = $1 RETURNING id")
                .bind(p)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("UPDATE requests SET details = NULL WHERE pseudonym = $1")
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            // Without the subject a receipt can no longer be built: its row goes too (they keep their copies).
            // Its subject is the one of the first event it seals.
            sqlx::query(
                "DELETE FROM receipts WHERE first_seq IN (SELECT seq FROM events WHERE pseudonym = $1)",
            )
            .bind(p)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            // The notices last: the outbox lock is held from here to the commit.
            let mut outbox = OutboxColumns::new(&self.filter);
            for m in erasure.notices {
                outbox.push(p, m, erasure.at);
            }
            outbox.insert(&mut tx).await?;
            erased.had_key = true;
        }
        tx.commit().await.map_err(db)?;
        Ok(erased)
    }

    async fn erasure_tombstones(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT tombstone FROM erased_subjects ORDER BY tombstone")
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn subject_messages_pending(&self, subject: &SubjectId) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (
                 SELECT 1 FROM consentry_keystore.subject_keys k, destinations t
                 WHERE k.subject = $1
                   AND (EXISTS (SELECT 1 FROM deliveries d
                                WHERE d.destination_id = t.id AND d.pseudonym = k.pseudonym
                                  AND d.status = 'pending')
                        OR EXISTS (SELECT 1 FROM outbox o WHERE o.id > t.cursor AND o.pseudonym = k.pseudonym)))",
        )
        .bind(subject.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn destroy_subject_key(&self, subject: &SubjectId) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone = sqlx::query("DELETE FROM consentry_keystore.subject_keys WHERE subject = $1")
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // A link names the subject too: it goes with the key.
        sqlx::query("DELETE FROM consentry_keystore.subject_links WHERE subject = $1 OR survivor = $1")
            .bind(subject.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(gone.rows_affected() > 0)
    }
}
