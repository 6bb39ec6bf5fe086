//! Data subject requests and erasure on the embedded store. Writes run on the writer connection; a new
//! subject's pseudonym key is committed to the key store before the request that uses it, as appends do.
//! What a change does is decided by [`consentry_core::request`]: a change loads the request, asks
//! [`request::next`] and writes back its answer.

use std::str::FromStr;

use async_trait::async_trait;
use consentry_core::request::{self, Transition, UnknownName};
use consentry_core::{SubjectId, Timestamp};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{SqliteStore, backend};
use crate::requests::{
    ChangeOutcome, NewRequest, RequestAction, RequestFilter, RequestHistoryEntry, RequestKind, RequestRecord,
    RequestStatus, RequestStore, RequestTask, StoredRequest, SubjectErased, SubjectErasure,
};
use crate::{OutboxFilter, OutboxMessage, Result, StoreError, StoredReceipt, random_bytes};

const REQUEST_COLUMNS: &str = "r.id, k.subject, r.kind, r.status, r.details, r.received_at, r.due_at, \
     r.own_done_at, r.closed_at, r.reason, r.overdue_at, r.updated_at, \
     (SELECT COUNT(*) FROM request_tasks t WHERE t.request_id = r.id AND t.status = 'pending') AS pending_tasks";
const REQUEST_FROM: &str = "requests r LEFT JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym";

/// Column `i` as one of a closed set of names (a status, a kind, a change).
fn name<T: FromStr<Err = UnknownName>>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    text.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRecord> {
    let subject: Option<String> = r.get(1)?;
    let at = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp::from_micros))
    };
    Ok(RequestRecord {
        id: r.get(0)?,
        subject: subject.and_then(|s| SubjectId::new(s).ok()),
        kind: name::<RequestKind>(r, 2)?,
        status: name::<RequestStatus>(r, 3)?,
        details: r.get(4)?,
        received_at: Timestamp::from_micros(r.get(5)?),
        due_at: Timestamp::from_micros(r.get(6)?),
        own_done_at: at(7)?,
        closed_at: at(8)?,
        reason: r.get(9)?,
        overdue_at: at(10)?,
        updated_at: Timestamp::from_micros(r.get(11)?),
        pending_tasks: u32::try_from(r.get::<_, i64>(12)?).unwrap_or(u32::MAX),
    })
}

fn insert_outbox(
    tx: &Transaction<'_>,
    filter: &OutboxFilter,
    pseudonym: &str,
    messages: &[OutboxMessage],
    at: Timestamp,
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let wanted = super::outbox::wanted(tx, filter)?;
    super::outbox::insert_messages(tx, &wanted, pseudonym, messages, at)
}

fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<StoredRequest>> {
    let record = conn
        .prepare_cached(&format!("SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = ?1"))?
        .query_row([id], request_row)
        .optional()?;
    let Some(record) = record else { return Ok(None) };
    let tasks = conn
        .prepare_cached(
            "SELECT destination_id, status, note, created_at, completed_at FROM request_tasks
             WHERE request_id = ?1 ORDER BY created_at, destination_id",
        )?
        .query_map([id], |r| {
            Ok(RequestTask {
                destination_id: r.get(0)?,
                status: name(r, 1)?,
                note: r.get(2)?,
                created_at: Timestamp::from_micros(r.get(3)?),
                completed_at: r.get::<_, Option<i64>>(4)?.map(Timestamp::from_micros),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let history = conn
        .prepare_cached(
            "SELECT at, change, status, actor, note FROM request_events WHERE request_id = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(RequestHistoryEntry {
                at: Timestamp::from_micros(r.get(0)?),
                change: name(r, 1)?,
                status: name(r, 2)?,
                actor: r.get(3)?,
                note: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(StoredRequest { record, tasks, history }))
}

/// Writes back what [`request::next`] decided: the request's fields, the task it changed and its history
/// rows by `actor`.
fn persist(tx: &Transaction<'_>, id: &str, t: &Transition, actor: &str) -> Result<()> {
    let s = &t.state;
    tx.execute(
        "UPDATE requests SET status = ?2, due_at = ?3, own_done_at = ?4, closed_at = ?5, reason = ?6,
                overdue_at = ?7, updated_at = ?8
         WHERE id = ?1",
        params![
            id,
            s.status.as_str(),
            s.due_at.micros(),
            s.own_done_at.map(Timestamp::micros),
            s.closed_at.map(Timestamp::micros),
            s.reason,
            s.overdue_at.map(Timestamp::micros),
            s.updated_at.micros()
        ],
    )
    .map_err(backend)?;
    if let Some(task) = &t.task {
        tx.execute(
            "UPDATE request_tasks SET status = ?3, note = ?4, completed_at = ?5
             WHERE request_id = ?1 AND destination_id = ?2",
            params![
                id,
                task.destination_id,
                task.status.as_str(),
                task.note,
                task.completed_at.map(Timestamp::micros)
            ],
        )
        .map_err(backend)?;
    }
    history_rows(tx, id, t, actor)
}

fn history_rows(tx: &Transaction<'_>, id: &str, t: &Transition, actor: &str) -> Result<()> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO request_events (request_id, at, change, status, actor, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(backend)?;
    for h in &t.history {
        insert
            .execute(params![id, h.at.micros(), h.change.as_str(), h.status.as_str(), actor, h.note])
            .map_err(backend)?;
    }
    Ok(())
}

/// Loads the request, asks the rules ([`request::next`]), writes back what they decided and loads the
/// result, all within `tx`. No lock is taken: every write runs on the one writer connection, so no other
/// change of the request can come between the load and the write.
fn decide(
    tx: &Transaction<'_>,
    id: &str,
    action: RequestAction,
    at: Timestamp,
    actor: &str,
) -> Result<ChangeOutcome> {
    let Some(current) = load(tx, id).map_err(backend)? else { return Ok(ChangeOutcome::NotFound) };
    match request::next(&current.state(), action, at) {
        Ok(t) => persist(tx, id, &t, actor)?,
        Err(refusal) => return Ok(ChangeOutcome::Refused(refusal)),
    }
    let stored = load(tx, id).map_err(backend)?;
    Ok(stored.map_or(ChangeOutcome::NotFound, |r| ChangeOutcome::Changed(Box::new(r))))
}

fn change(
    conn: &mut Connection,
    id: &str,
    action: RequestAction,
    at: Timestamp,
    actor: &str,
) -> Result<ChangeOutcome> {
    let tx = conn.transaction().map_err(backend)?;
    let outcome = decide(&tx, id, action, at, actor)?;
    tx.commit().map_err(backend)?;
    Ok(outcome)
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn create_request(&self, new: NewRequest) -> Result<()> {
        let filter = self.filter.clone();
        self.write(move |conn| {
            let p = super::pseudonym_for(conn, new.subject.as_str())?;
            let created = request::receive(new.received_at, &new.destinations);
            let state = &created.state;
            let tx = conn.transaction().map_err(backend)?;
            let inserted = tx.execute(
                "INSERT INTO requests (id, pseudonym, kind, status, details, received_at, due_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.id,
                    p,
                    new.kind.as_str(),
                    state.status.as_str(),
                    new.details,
                    state.received_at.micros(),
                    state.due_at.micros(),
                    state.updated_at.micros()
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::Conflict("a request with this id exists".into()));
                }
                Err(e) => return Err(backend(e)),
            }
            for task in &state.tasks {
                tx.execute(
                    "INSERT INTO request_tasks (request_id, destination_id, status, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![new.id, task.destination_id, task.status.as_str(), new.received_at.micros()],
                )
                .map_err(backend)?;
            }
            history_rows(&tx, &new.id, &created, &new.actor)?;
            insert_outbox(&tx, &filter, &p, &new.messages, new.received_at)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn request(&self, id: &str) -> Result<Option<StoredRequest>> {
        let id = id.to_owned();
        self.read(move |conn| load(conn, &id)).await
    }

    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let f = filter.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
                 WHERE (?1 IS NULL OR r.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1))
                   AND (?2 IS NULL OR r.status = ?2) AND (?3 IS NULL OR r.kind = ?3)
                   AND (?4 IS NULL OR (r.due_at <= ?4 AND r.status IN ('received', 'in_progress')))
                   AND (?5 IS NULL OR r.id > ?5)
                 ORDER BY r.id LIMIT ?6"
            ))?;
            stmt.query_map(
                params![
                    f.subject.as_ref().map(SubjectId::as_str),
                    f.status.map(RequestStatus::as_str),
                    f.kind.map(RequestKind::as_str),
                    f.overdue_at.map(Timestamp::micros),
                    f.after,
                    f.limit
                ],
                request_row,
            )?
            .collect()
        })
        .await
    }

    async fn change_request(
        &self,
        id: &str,
        action: RequestAction,
        at: Timestamp,
        actor: &str,
    ) -> Result<ChangeOutcome> {
        let (id, actor) = (id.to_owned(), actor.to_owned());
        self.write(move |conn| change(conn, &id, action, at, &actor)).await
    }

    async fn unfinished_requests(&self, before: Timestamp, limit: u32) -> Result<Vec<RequestRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
                 WHERE r.status IN ('received', 'in_progress') AND r.own_done_at IS NULL AND r.received_at <= ?1
                 ORDER BY r.id LIMIT ?2"
            ))?;
            stmt.query_map(params![before.micros(), limit], request_row)?.collect()
        })
        .await
    }

    async fn unmarked_overdue(&self, now: Timestamp, limit: u32) -> Result<Vec<RequestRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM}
                 WHERE r.status IN ('received', 'in_progress') AND r.due_at <= ?1 AND r.overdue_at IS NULL
                 ORDER BY r.due_at, r.id LIMIT ?2"
            ))?;
            stmt.query_map(params![now.micros(), limit], request_row)?.collect()
        })
        .await
    }

    async fn mark_overdue(&self, id: &str, at: Timestamp, message: OutboxMessage) -> Result<bool> {
        let id = id.to_owned();
        let filter = self.filter.clone();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let p: Option<String> = tx
                .query_row("SELECT pseudonym FROM requests WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let Some(p) = p else { return Ok(false) };
            if !matches!(
                decide(&tx, &id, RequestAction::MarkOverdue, at, "system")?,
                ChangeOutcome::Changed(_)
            ) {
                return Ok(false);
            }
            insert_outbox(&tx, &filter, &p, std::slice::from_ref(&message), at)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn overdue_counts(&self, now: Timestamp) -> Result<(u64, u64)> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*),
                    (SELECT COUNT(*) FROM request_tasks t JOIN requests q ON q.id = t.request_id
                     WHERE t.status = 'pending' AND q.status IN ('received', 'in_progress') AND q.due_at <= ?1)
                 FROM requests WHERE status IN ('received', 'in_progress') AND due_at <= ?1",
                [now.micros()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
        })
        .await
    }

    async fn subject_receipts(&self, subject: &SubjectId) -> Result<Vec<StoredReceipt>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
                 FROM ks.subject_keys k
                 JOIN events e ON e.pseudonym = k.pseudonym
                 JOIN receipts r ON r.first_seq = e.seq
                 LEFT JOIN receipt_kids rk ON rk.n = r.kid
                 WHERE k.subject = ?1 ORDER BY r.created_at, r.id",
            )?;
            stmt.query_map([subject], super::rows::receipt)?.collect()
        })
        .await
    }

    async fn recent_receipts(&self, subject: &SubjectId, limit: u32) -> Result<Vec<StoredReceipt>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, k.subject, r.first_seq, r.last_seq, r.catalog_version, r.created_at, rk.kid
                 FROM ks.subject_keys k
                 JOIN events e ON e.pseudonym = k.pseudonym
                 JOIN receipts r ON r.first_seq = e.seq
                 LEFT JOIN receipt_kids rk ON rk.n = r.kid
                 WHERE k.subject = ?1 ORDER BY r.created_at DESC, r.id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![subject, limit], super::rows::receipt)?.collect()
        })
        .await
    }

    async fn erasure_secret(&self) -> Result<[u8; 32]> {
        let fresh: [u8; 32] = random_bytes()?;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO ks.erasure_secret (id, secret) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                [&fresh[..]],
            )
            .map_err(backend)?;
            let secret: Vec<u8> = conn
                .query_row("SELECT secret FROM ks.erasure_secret WHERE id = 1", [], |r| r.get(0))
                .map_err(backend)?;
            secret.try_into().map_err(|_| StoreError::Backend("the erasure secret is not 32 bytes".into()))
        })
        .await
    }

    async fn add_erasure_tombstone(&self, tombstone: &str, at: Timestamp) -> Result<()> {
        let tombstone = tombstone.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO erased_subjects (tombstone, erased_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![tombstone, at.micros()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn erase_subject(&self, erasure: SubjectErasure) -> Result<SubjectErased> {
        let filter = self.filter.clone();
        self.write(move |conn| {
            // What is deleted is overwritten, not left in free pages.
            conn.execute_batch("PRAGMA ks.secure_delete = ON; PRAGMA main.secure_delete = ON;")
                .map_err(backend)?;
            let erased = erase_rows(conn, &filter, &erasure);
            let _ = conn.execute_batch("PRAGMA main.secure_delete = OFF;");
            let erased = erased?;
            // And moved out of the write-ahead logs, where older page images would linger. Best effort: a
            // busy reader only delays it to a later checkpoint. Only when something went: the checkpoint
            // runs on the one writer thread, so a call that erased nothing (a resumed erasure) must not
            // pay it.
            if erased != SubjectErased::default() {
                let _ = conn.execute_batch(
                    "PRAGMA ks.wal_checkpoint(TRUNCATE); PRAGMA main.wal_checkpoint(TRUNCATE);",
                );
            }
            Ok(erased)
        })
        .await
    }

    async fn erasure_tombstones(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT tombstone FROM erased_subjects ORDER BY tombstone")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .await
    }

    async fn subject_messages_pending(&self, subject: &SubjectId) -> Result<bool> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT EXISTS (
                     SELECT 1 FROM ks.subject_keys k, destinations t
                     WHERE k.subject = ?1
                       AND (EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_pending_by_subject
                                    WHERE d.destination_id = t.id AND d.pseudonym = k.pseudonym
                                      AND d.status = 'pending')
                            OR EXISTS (SELECT 1 FROM outbox o WHERE o.id > t.cursor AND o.pseudonym = k.pseudonym)))",
            )?
            .query_row([subject], |r| r.get(0))
        })
        .await
    }

    async fn destroy_subject_key(&self, subject: &SubjectId) -> Result<bool> {
        let subject = subject.as_str().to_owned();
        self.write(move |conn| {
            // Overwritten, not left in free pages, and moved out of the write-ahead log (best effort: a busy
            // reader only delays it to a later checkpoint).
            conn.execute_batch("PRAGMA ks.secure_delete = ON").map_err(backend)?;
            let gone = conn
                .execute("DELETE FROM ks.subject_keys WHERE subject = ?1", [&subject])
                .map_err(backend)?
                > 0;
            // A link names the subject too: it goes with the key.
            conn.execute("DELETE FROM ks.subject_links WHERE subject = ?1 OR survivor = ?1", [&subject])
                .map_err(backend)?;
            if gone {
                let _ = conn.execute_batch(
                    "PRAGMA ks.wal_checkpoint(TRUNCATE); PRAGMA main.wal_checkpoint(TRUNCATE);",
                );
            }
            Ok(gone)
        })
        .await
    }
}

/// The two transactions of [`RequestStore::erase_subject`], one per file, the data store's first (its rows
/// are found by the pseudonym), then the key store's: the data key. No other write comes between them
/// (they run on the one writer connection); a stop between them leaves the data key, and erasing again
/// finishes.
fn erase_rows(
    conn: &mut Connection,
    filter: &OutboxFilter,
    erasure: &SubjectErasure,
) -> Result<SubjectErased> {
    let subject = erasure.subject.as_str();
    let mut erased = SubjectErased::default();
    let tx = conn.transaction().map_err(backend)?;
    let p: Option<String> = tx
        .query_row("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1", [subject], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if let Some(p) = &p {
        erased.records = tx.execute("DELETE FROM records WHERE pseudonym = ?1", [p]).map_err(backend)? as u64;
        tx.execute("DELETE FROM identifiers WHERE pseudonym = ?1", [p]).map_err(backend)?;
        tx.execute("DELETE FROM subject_ages WHERE pseudonym = ?1", [p]).map_err(backend)?;
        tx.execute("DELETE FROM event_evidence WHERE pseudonym = ?1", [p]).map_err(backend)?;
        tx.execute("DELETE FROM guardians WHERE child = ?1 OR guardian = ?1", [p]).map_err(backend)?;
        tx.execute("DELETE FROM household_members WHERE pseudonym = ?1", [p]).map_err(backend)?;
        erased.devices = tx
            .prepare("DELETE FROM devices WHERE pseudonym = ?1 RETURNING id")
            .map_err(backend)?
            .query_map([p], |r| r.get(0))
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)?;
        insert_outbox(&tx, filter, p, &erasure.notices, erasure.at)?;
        tx.execute("UPDATE requests SET details = NULL WHERE pseudonym = ?1", [p]).map_err(backend)?;
        // Without the subject a receipt can no longer be built: its row goes too (they keep their copies).
        // Its subject is the one of the first event it seals.
        tx.execute(
            "DELETE FROM receipts WHERE first_seq IN (SELECT seq FROM events WHERE pseudonym = ?1)",
            [p],
        )
        .map_err(backend)?;
        erased.had_key = true;
    }
    tx.commit().map_err(backend)?;

    let tx = conn.transaction().map_err(backend)?;
    erased.data_key =
        tx.execute("DELETE FROM ks.subject_data_keys WHERE subject = ?1", [subject]).map_err(backend)? > 0;
    tx.commit().map_err(backend)?;
    Ok(erased)
}
