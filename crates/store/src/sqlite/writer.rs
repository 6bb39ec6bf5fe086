//! The writer thread: the only connection that writes, and the group commit of ledger appends.
//!
//! It takes one command, then everything else already queued (up to a bound), and runs consecutive grouped
//! jobs (appends, access-log entries, check counts, outbox messages, vault records) in one transaction:
//! one fsync for the whole group, each caller answered once the group is durable. New subjects' pseudonym
//! keys are committed to the key store first, in their own transaction, so a crash can leave an unused key
//! behind but never a row whose pseudonym has no key. A sealed append's receipt and outbox messages are
//! inserted with its events (only the messages some destination wants, judged in the same transaction); a failing sealer drops only its own request, whose sequence numbers the next
//! request then takes. A vault record goes in only while its subject still has the data key it was sealed
//! under. The ledger's Merkle tree grows in the same transaction: the writer keeps the tree's frontier
//! and writes each new leaf and every subtree it completes (`tlog.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use consentry_core::ledger::GENESIS_HASH;
use consentry_core::merkle::Frontier;
use consentry_core::{Action, Event, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::jobs::{AccessJob, AppendJob, Appended, Command, CountsJob, EnqueueJob, Grouped, RecordJob};
use super::outbox::{insert_messages, wanted};
use super::pseudonyms::pseudonyms;
use super::rows;
use super::{linking as links, tlog};
use crate::common::{json_list, run_sealer, scope_key};
use crate::error::{Result, StoreError};
use crate::links::fill_slot;
use crate::model::{CommitObserver, Committed, OutboxFilter};
use crate::recent::RecentNodes;
use crate::sql::{JURISDICTION_STATE, LEDGER_HEAD_AT};

/// Most commands taken into one group. An import's batch (one append per subject; 8,192 changes by default)
/// fits in one, so it commits as one transaction: each page of the indexes keyed by pseudonym is written out
/// once per batch.
const MAX_GROUP: usize = 16_384;

pub(super) struct Writer {
    conn: Connection,
    observer: Option<CommitObserver>,
    head_seq: u64,
    head_hash: String,
    /// The last event's `recorded_at`: no later event is recorded earlier, even if the clock steps back.
    head_at: Timestamp,
    /// The Merkle tree of the committed ledger (its size is `head_seq`).
    tree: Frontier,
    /// Which outbox messages some destination wants.
    filter: OutboxFilter,
    /// Where each committed group's tree nodes go, for proofs that need no read.
    recent: Arc<RecentNodes>,
}

/// One append of a group, with its outcome once placed.
struct Pending {
    job: AppendJob,
    outcome: Option<Result<Appended>>,
}

impl Writer {
    pub fn new(
        mut conn: Connection,
        observer: Option<CommitObserver>,
        filter: OutboxFilter,
        recent: Arc<RecentNodes>,
    ) -> Result<Self> {
        let head = conn
            .query_row(LEDGER_HEAD_AT, [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, Timestamp::from_micros(r.get(2)?)))
            })
            .optional()
            .map_err(backend)?;
        let (head_seq, head_hash, head_at) =
            head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned(), Timestamp::from_micros(0)));
        let tree = tlog::catch_up(&mut conn, head_seq)?;
        Ok(Self { conn, observer, head_seq, head_hash, head_at, tree, filter, recent })
    }

    pub fn run(mut self, receiver: Receiver<Command>) {
        let mut group = Vec::new();
        while let Ok(first) = receiver.recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(c) => group.push(c),
                    Err(_) => break,
                }
            }
            let mut grouped = Vec::new();
            for command in group.drain(..) {
                match command {
                    Command::Grouped(job) => grouped.push(job),
                    Command::Write(job) => {
                        // Keep order: grouped jobs queued before this job commit first.
                        self.commit(std::mem::take(&mut grouped));
                        job(&mut self.conn);
                    }
                    Command::Shutdown => {
                        self.commit(grouped);
                        return;
                    }
                }
            }
            self.commit(grouped);
        }
    }

    /// Commits `jobs` as one group and answers each.
    fn commit(&mut self, jobs: Vec<Grouped>) {
        if jobs.is_empty() {
            return;
        }
        let mut appends = Vec::new();
        let mut access = Vec::new();
        let mut counts = Vec::new();
        let mut enqueued = Vec::new();
        let mut records = Vec::new();
        for job in jobs {
            match job {
                Grouped::Append(job) => appends.push(Pending { job, outcome: None }),
                Grouped::Access(job) => access.push(job),
                Grouped::Counts(job) => counts.push(job),
                Grouped::Enqueue(job) => enqueued.push(job),
                Grouped::Record(job) => records.push(job),
            }
        }
        match self.commit_group(&mut appends, &access, &counts, &enqueued, &mut records) {
            Ok(placed) => {
                if placed > 0
                    && let Some(observer) = &self.observer
                {
                    observer(Committed { events: placed, size: self.tree.size(), root: self.tree.root() });
                }
                for p in appends {
                    let outcome =
                        p.outcome.unwrap_or_else(|| Err(StoreError::Backend("append not placed".into())));
                    let _ = p.job.reply.send(outcome);
                }
                for job in access {
                    let _ = job.reply.send(Ok(()));
                }
                for job in counts {
                    let _ = job.reply.send(Ok(()));
                }
                for job in enqueued {
                    let _ = job.reply.send(Ok(()));
                }
                for job in records {
                    job.answer();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let message = e.to_string();
                for p in appends {
                    let _ = p.job.reply.send(Err(StoreError::Backend(message.clone())));
                }
                for job in access {
                    let _ = job.reply.send(Err(StoreError::Backend(message.clone())));
                }
                for job in counts {
                    let _ = job.reply.send(Err(StoreError::Backend(message.clone())));
                }
                for job in enqueued {
                    let _ = job.reply.send(Err(StoreError::Backend(message.clone())));
                }
                for job in records {
                    let _ = job.reply.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
    }

    /// Commits the group in one transaction; sets each append's outcome and returns the events placed.
    fn commit_group(
        &mut self,
        appends: &mut [Pending],
        access: &[AccessJob],
        counts: &[CountsJob],
        enqueued: &[EnqueueJob],
        records: &mut [Box<RecordJob>],
    ) -> Result<usize> {
        // 1. Pseudonyms, creating keys for new subjects (committed first).
        let subjects = appends
            .iter()
            .map(|p| &p.job.subject)
            .chain(access.iter().flat_map(|j| j.entries.iter().map(|e| &e.subject)))
            .chain(counts.iter().flat_map(|j| j.counts.keys().map(|(s, _)| s)))
            .chain(enqueued.iter().map(|j| &j.subject));
        let pseudonyms = pseudonyms(&mut self.conn, subjects)?;

        // 2. The events, receipts, outbox messages, current state, access log and counts, in one
        //    transaction. Outbox ids follow the ledger's order.
        let mut seq = self.head_seq;
        let mut prev = self.head_hash.clone();
        let mut placed_total = 0;
        let mut tree = self.tree.clone();
        let mut nodes = Vec::new();
        let now = Timestamp::now().max(self.head_at);
        let tx = self.conn.transaction().map_err(backend)?;
        {
            // Read in this transaction: destinations change only on this thread, between groups.
            let wanted = wanted(&tx, &self.filter)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (seq, pseudonym, purpose, action, categories, channels, recipients, notice,
                        notice_version, notice_hash, collection_point, actor, recorded_at, expires_at, hash, evidence,
                        jurisdiction, occurred_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(backend)?;
            let mut state = tx
                .prepare_cached(
                    "INSERT INTO consent_state (pseudonym, purpose, scope, stance, seq, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (pseudonym, purpose, scope, stance) DO UPDATE SET seq = excluded.seq, at = excluded.at
                     WHERE (excluded.at, excluded.seq) > (consent_state.at, consent_state.seq)",
                )
                .map_err(backend)?;
            let mut in_state = tx
                .prepare_cached("SELECT 1 FROM consent_state WHERE seq = ?1 AND purpose <> ''")
                .map_err(backend)?;
            // A point look-up per change on the key: cheaper than one query over a JSON list of the
            // request's ids, for the one or two changes a subject usually has in a batch.
            let mut imported_before = tx
                .prepare_cached("SELECT 1 FROM imported WHERE source = ?1 AND source_id = ?2")
                .map_err(backend)?;
            let mut imported = tx
                .prepare_cached("INSERT INTO imported (source, source_id, seq) VALUES (?1, ?2, ?3)")
                .map_err(backend)?;
            let mut receipt_exists =
                tx.prepare_cached("SELECT 1 FROM receipts WHERE id = ?1").map_err(backend)?;
            let mut receipt = tx
                .prepare_cached(
                    "INSERT INTO receipts (id, first_seq, last_seq, catalog_version, created_at, kid)
                     VALUES (?1, ?2, ?3, ?4, ?5, (SELECT n FROM receipt_kids WHERE kid = ?6))",
                )
                .map_err(backend)?;
            // Each signing key is named once; a receipt keeps its number.
            let mut receipt_kid = tx
                .prepare_cached(
                    "INSERT INTO receipt_kids (kid) SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM receipt_kids WHERE kid = ?1)",
                )
                .map_err(backend)?;
            for pending in appends.iter_mut() {
                let job = &mut pending.job;
                let p = &pseudonyms[job.subject.as_str()];
                // An alias takes no writes: the person lives on under the survivor.
                if let Some(survivor) = links::survivor_of(&tx, job.subject.as_str())? {
                    pending.outcome = Some(Err(StoreError::Linked(survivor)));
                    continue;
                }
                // A link picks its events here, from both records as this transaction sees them.
                let mut link_from = None;
                if let Some(link) = job.link.as_mut() {
                    match links::prepare(&tx, job.subject.as_str(), link)? {
                        Err(refusal) => {
                            fill_slot(&link.slot, Err(refusal));
                            pending.outcome = Some(Ok((Vec::new(), None)));
                            continue;
                        }
                        Ok((p_from, events)) => {
                            if events.is_empty() {
                                job.seal = None;
                            }
                            job.events = events;
                            link_from = Some(p_from);
                        }
                    }
                }
                let (start_seq, start_prev) = (seq, prev.clone());
                let mut events = std::mem::take(&mut job.events);
                let mut keys = Vec::new();
                if let Some(import) = &job.import {
                    // Changes placed before (by an earlier group, or earlier in this one) are left out,
                    // and an id repeated in the request is placed once.
                    let mut seen: HashSet<&str> = HashSet::new();
                    let mut fresh = Vec::with_capacity(events.len());
                    for (new, id) in events.into_iter().zip(&import.ids) {
                        if seen.insert(id)
                            && !imported_before.exists(params![import.source, id]).map_err(backend)?
                        {
                            keys.push(id.clone());
                            fresh.push(new);
                        }
                    }
                    if fresh.is_empty() {
                        pending.outcome = Some(Ok((Vec::new(), None)));
                        continue;
                    }
                    events = fresh;
                }
                let mut placed = Vec::with_capacity(events.len());
                let mut leaves = Vec::with_capacity(events.len());
                for new in events {
                    seq += 1;
                    let (e, leaf) =
                        Event::place_with_leaf(new, seq, p.clone(), now, std::mem::take(&mut prev));
                    prev = e.hash.clone();
                    placed.push(e);
                    leaves.push(leaf);
                }
                let sealed = match job.seal.take() {
                    None => None,
                    Some(seal) => {
                        let checked =
                            run_sealer(seal, &placed, &|t: &str| wanted.wants(t)).and_then(|sealed| {
                                if let Some(r) = &sealed.receipt
                                    && receipt_exists.exists([rows::receipt_key(&r.id)]).map_err(backend)?
                                {
                                    return Err(StoreError::Conflict("a receipt with this id exists".into()));
                                }
                                Ok(sealed)
                            });
                        match checked {
                            Ok(sealed) => Some(sealed),
                            Err(e) => {
                                // Give this request's positions to the next one: the chain stays gapless.
                                (seq, prev) = (start_seq, start_prev);
                                pending.outcome = Some(Err(e));
                                continue;
                            }
                        }
                    }
                };
                for (e, leaf) in placed.iter().zip(&leaves) {
                    insert
                        .execute(params![
                            e.seq as i64,
                            e.pseudonym,
                            e.purpose,
                            e.action.as_str(),
                            json_list(&e.scope.categories),
                            json_list(&e.scope.channels),
                            json_list(&e.scope.recipients),
                            e.notice,
                            e.notice_version,
                            e.notice_hash,
                            e.collection_point,
                            e.actor,
                            e.recorded_at.micros(),
                            e.expires_at.map(Timestamp::micros),
                            e.hash,
                            e.evidence,
                            e.jurisdiction,
                            e.occurred_at.map(Timestamp::micros),
                        ])
                        .map_err(backend)?;
                    // A `locate` event holds no consent: only the subject's jurisdiction below.
                    let at = e.effective_at().micros();
                    if e.action != Action::Locate {
                        let stance = e.action.stance().as_str();
                        state
                            .execute(params![
                                e.pseudonym,
                                e.purpose,
                                scope_key(&e.scope),
                                stance,
                                e.seq as i64,
                                at
                            ])
                            .map_err(backend)?;
                    }
                    if e.jurisdiction.is_some() {
                        let (purpose, scope) = JURISDICTION_STATE;
                        state
                            .execute(params![e.pseudonym, purpose, scope, "", e.seq as i64, at])
                            .map_err(backend)?;
                    }
                    tree.append(*leaf, &mut nodes);
                }
                if let Some(import) = &job.import {
                    for (id, e) in keys.iter().zip(&placed) {
                        imported.execute(params![import.source, id, e.seq as i64]).map_err(backend)?;
                    }
                }
                let (sealed, mut messages, if_in_force) =
                    sealed.map_or((None, Vec::new(), Vec::new()), |s| (s.receipt, s.outbox, s.in_force));
                // Read after this request's state was written, in the same transaction: in force as applied,
                // after every write committed before and every earlier one of this group.
                for (seq, message) in if_in_force {
                    if in_state.exists([seq as i64]).map_err(backend)? {
                        messages.push(message);
                    }
                }
                if let (Some(r), Some(first), Some(last)) = (&sealed, placed.first(), placed.last()) {
                    // Never the signed form, which names the person: the ledger builds it again.
                    let (first, last) = (first.seq as i64, last.seq as i64);
                    receipt_kid.execute([&r.kid]).map_err(backend)?;
                    receipt
                        .execute(params![
                            rows::receipt_key(&r.id),
                            first,
                            last,
                            r.catalog_version as i64,
                            r.issued_at.micros(),
                            r.kid,
                        ])
                        .map_err(backend)?;
                }
                insert_messages(&tx, &wanted, p, &messages, now)?;
                placed_total += placed.len();
                if let (Some(p_from), Some(link)) = (link_from, &job.link) {
                    let from = (link.from.as_str(), p_from.as_str());
                    let moved = links::move_rows(&tx, &link.kek, from, (job.subject.as_str(), p), now)?;
                    fill_slot(&link.slot, Ok(moved));
                }
                pending.outcome = Some(Ok((placed, sealed)));
            }
            for job in enqueued {
                let p = &pseudonyms[job.subject.as_str()];
                insert_messages(&tx, &wanted, p, &job.messages, now)?;
            }
            tlog::insert_nodes(&tx, &nodes).map_err(backend)?;
            insert_records(&tx, records)?;

            if !access.is_empty() {
                let mut log = tx
                    .prepare_cached(
                        "INSERT INTO access_log (pseudonym, at, caller, route, purpose) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(backend)?;
                for e in access.iter().flat_map(|j| &j.entries) {
                    log.execute(params![
                        pseudonyms[e.subject.as_str()],
                        e.at.micros(),
                        e.caller,
                        e.route,
                        e.purpose
                    ])
                    .map_err(backend)?;
                }
            }
            if !counts.is_empty() {
                let mut add = tx
                    .prepare_cached(
                        "INSERT INTO check_counts (pseudonym, purpose, count, last_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (pseudonym, purpose) DO UPDATE SET
                            count = check_counts.count + excluded.count,
                            last_at = MAX(check_counts.last_at, excluded.last_at)",
                    )
                    .map_err(backend)?;
                for ((subject, purpose), (n, last)) in counts.iter().flat_map(|j| &j.counts) {
                    let n = i64::try_from(*n).unwrap_or(i64::MAX);
                    add.execute(params![pseudonyms[subject.as_str()], purpose, n, last.micros()])
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().map_err(backend)?;
        self.recent.add(&nodes);
        self.head_seq = seq;
        self.head_hash = prev;
        if placed_total > 0 {
            self.head_at = now;
        }
        self.tree = tree;
        Ok(placed_total)
    }
}

/// Inserts the group's records in the writer's transaction. A record whose subject's data key changed
/// meanwhile (erasure), or whose id is taken, fails alone.
fn insert_records(tx: &Connection, jobs: &mut [Box<RecordJob>]) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut current = tx
        .prepare_cached(
            "SELECT d.wrapped FROM ks.subject_data_keys d JOIN ks.subject_keys k ON k.subject = d.subject
             WHERE d.subject = ?1 AND k.pseudonym = ?2",
        )
        .map_err(backend)?;
    let mut taken = tx.prepare_cached("SELECT 1 FROM records WHERE id = ?1").map_err(backend)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO records (id, pseudonym, device_id, category, purpose, content_type, size, collected_at,
                stored_at, delete_after, nonce, ciphertext)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(backend)?;
    for job in jobs {
        let key: Option<Vec<u8>> = current
            .query_row(params![job.subject, job.pseudonym], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if key.as_deref() != Some(&job.wrapped[..]) {
            job.outcome = Some(Err(StoreError::Conflict(
                "the subject's vault was erased while the record was stored".into(),
            )));
            continue;
        }
        let m = &job.meta;
        if taken.exists([&m.id]).map_err(backend)? {
            job.outcome = Some(Err(StoreError::Conflict("a record with this id exists".into())));
            continue;
        }
        insert
            .execute(params![
                m.id,
                job.pseudonym,
                m.device_id,
                m.category,
                m.purpose,
                m.content_type,
                i64::try_from(m.size).unwrap_or(i64::MAX),
                m.collected_at.micros(),
                m.stored_at.micros(),
                m.delete_after.map(Timestamp::micros),
                job.sealed.nonce,
                job.sealed.ciphertext,
            ])
            .map_err(backend)?;
        job.outcome = Some(Ok(()));
    }
    Ok(())
}
