//! The group commit of ledger appends: a task takes one append job, then everything else already queued
//! (up to a bound), and commits them in one transaction that first takes the ledger lock, then reads the
//! head and places the events after it, with their receipts, outbox messages and current state, and ends
//! with `pg_notify` on [`LEDGER_CHANNEL`]. The ledger's Merkle tree grows in the same transaction: its
//! frontier is read under the lock, and each new leaf and every subtree it completes are inserted. A failing sealer drops only its own request, whose positions
//! the next request then takes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use consentry_core::ledger::GENESIS_HASH;
use consentry_core::merkle::Hash;
use consentry_core::{Action, Event, NewEvent, SubjectId, Timestamp};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::error::db;
use super::linking::{self as links, LinkJob};
use super::listener::LEDGER_CHANNEL;
use super::locks::{self, LEDGER_LOCK};
use super::outbox::OutboxColumns;
use super::pseudonyms::pseudonyms_for;
use super::rows::{EventColumns, ReceiptColumns};
use super::tlog;
use crate::common::{run_sealer, scope_key};
use crate::error::{Result, StoreError};
use crate::links::fill_slot;
use crate::model::{
    CommitObserver, Committed, ImportKeys, OutboxFilter, OutboxMessage, SealedReceipt, Sealer,
};
use crate::recent::RecentNodes;
use crate::sql::{JURISDICTION_STATE, LEDGER_HEAD_AT};

/// Most appends taken into one group. An import's batch (one append per subject; 8,192 changes by default)
/// fits in one, so it commits as one transaction: each page of the indexes keyed by pseudonym is written out
/// once per batch.
const MAX_GROUP: usize = 16_384;

pub(super) type Appended = (Vec<Event>, Option<SealedReceipt>);

pub(super) struct AppendJob {
    pub subject: SubjectId,
    pub events: Vec<NewEvent>,
    /// Set on an import: the events' ids at their source, placed at most once.
    pub import: Option<ImportKeys>,
    pub seal: Option<Sealer>,
    /// Set on a link: `events` are picked inside the commit (`links.rs`), in a group of its own.
    pub link: Option<LinkJob>,
    pub reply: oneshot::Sender<Result<Appended>>,
}

pub(super) async fn write_loop(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<AppendJob>,
    observer: Option<CommitObserver>,
    filter: OutboxFilter,
    recent: Arc<RecentNodes>,
) {
    let mut group = Vec::new();
    // A link commits in a group of its own (it reads the state the groups before it committed).
    let mut held: Option<AppendJob> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let alone = first.link.is_some();
        group.push(first);
        while !alone && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) if job.link.is_some() => {
                    held = Some(job);
                    break;
                }
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut jobs = std::mem::take(&mut group);
        let batches: Vec<Vec<NewEvent>> = jobs.iter_mut().map(|j| std::mem::take(&mut j.events)).collect();
        let seals: Vec<Option<Sealer>> = jobs.iter_mut().map(|j| j.seal.take()).collect();
        let subjects: Vec<SubjectId> = jobs.iter().map(|j| j.subject.clone()).collect();
        let imports: Vec<Option<ImportKeys>> = jobs.iter_mut().map(|j| j.import.take()).collect();
        let links: Vec<Option<LinkJob>> = jobs.iter_mut().map(|j| j.link.take()).collect();
        match commit_group(&pool, &filter, &recent, subjects, batches, seals, imports, links).await {
            Ok((outcomes, (size, root))) => {
                let placed: usize = outcomes.iter().map(|o| o.as_ref().map_or(0, |(e, _)| e.len())).sum();
                if placed > 0
                    && let Some(observer) = &observer
                {
                    observer(Committed { events: placed, size, root });
                }
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger group commit failed");
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
    }
}

/// A statement of the current state: pseudonym, purpose, scope key, stance.
type StateKey = (String, String, String, &'static str);

/// The stored order `(at, seq)` of each of `keys` the current state holds (read before the group writes it).
async fn stored_state(
    tx: &mut Transaction<'static, Postgres>,
    keys: &[&StateKey],
) -> Result<HashMap<StateKey, (i64, i64)>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (mut p, mut pu, mut sc, mut st) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (pseudonym, purpose, scope, stance) in keys {
        p.push(pseudonym.clone());
        pu.push(purpose.clone());
        sc.push(scope.clone());
        st.push(*stance);
    }
    let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT s.pseudonym, s.purpose, s.scope, s.stance, s.at, s.seq FROM consent_state s
         JOIN UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS k (pseudonym, purpose, scope, stance)
           ON s.pseudonym = k.pseudonym AND s.purpose = k.purpose AND s.scope = k.scope AND s.stance = k.stance",
    )
    .bind(p)
    .bind(pu)
    .bind(sc)
    .bind(&st)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .filter_map(|(p, pu, sc, stance, at, seq)| {
            let stance = st.iter().copied().find(|s| *s == stance)?;
            Some(((p, pu, sc, stance), (at, seq)))
        })
        .collect())
}

/// The `(source, id)` pairs among `imports` that an earlier commit placed.
async fn imported_before(
    tx: &mut Transaction<'static, Postgres>,
    imports: &[Option<ImportKeys>],
) -> Result<HashSet<(String, String)>> {
    let (mut sources, mut ids) = (Vec::new(), Vec::new());
    for keys in imports.iter().flatten() {
        for id in &keys.ids {
            sources.push(keys.source.clone());
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.source, i.source_id FROM imported i
         JOIN UNNEST($1::text[], $2::text[]) AS k (source, source_id)
           ON i.source = k.source AND i.source_id = k.source_id",
    )
    .bind(sources)
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    Ok(found.into_iter().collect())
}

/// Commits `batches[i]`, the events of `subjects[i]` sealed by `seals[i]` (and imported under
/// `imports[i]`), as one group; returns each request's outcome (a failed sealer fails its request alone)
/// and the tree's head (size, root) after it.
#[allow(clippy::too_many_arguments)]
async fn commit_group(
    pool: &PgPool,
    filter: &OutboxFilter,
    recent: &RecentNodes,
    subjects: Vec<SubjectId>,
    batches: Vec<Vec<NewEvent>>,
    seals: Vec<Option<Sealer>>,
    imports: Vec<Option<ImportKeys>>,
    mut links: Vec<Option<LinkJob>>,
) -> Result<(Vec<Result<Appended>>, (u64, Hash))> {
    let mut tx = pool.begin().await.map_err(db)?;
    locks::lock(&mut tx, LEDGER_LOCK).await?;
    let head: Option<(i64, String, i64)> =
        sqlx::query_as(LEDGER_HEAD_AT).fetch_optional(&mut *tx).await.map_err(db)?;
    let (mut seq, mut prev) =
        head.as_ref().map_or((0, GENESIS_HASH.to_owned()), |(s, h, _)| (*s as u64, h.clone()));
    // No event is recorded earlier than the one before it, whatever this node's clock says: among
    // changes recorded live, the later position is never the earlier time.
    let now = Timestamp::now().max(Timestamp::from_micros(head.map_or(0, |(_, _, at)| at)));
    let mut seen = imported_before(&mut tx, &imports).await?;
    let (mut import_sources, mut import_ids, mut import_seqs) = (Vec::new(), Vec::new(), Vec::new());
    let head_seq = seq;
    let trusted = recent_still_holds(&mut tx, recent, head_seq, &prev).await?;
    let mut tree = tlog::frontier(&mut tx, head_seq, trusted.then_some(recent)).await?;
    let mut nodes = Vec::new();

    let pseudonyms =
        pseudonyms_for(&mut tx, subjects.iter().map(|s| s.as_str().to_owned()).collect()).await?;
    // An alias takes no writes: the person lives on under the survivor.
    let aliased = links::survivors(&mut tx, &subjects).await?;
    let mut linking = None;
    let mut cols = EventColumns::default();
    let mut receipts = ReceiptColumns::default();
    let mut messages = OutboxColumns::new(filter);
    // Read under the outbox lock, held to the commit: the sealers build only the messages stored below.
    let wanted = super::outbox::wanted(&mut tx, filter).await?;
    let mut receipt_ids: HashSet<String> = HashSet::new();
    // Per current-state key (pseudonym, purpose, scope, stance), the latest statement of the group:
    // (effective time, seq).
    let mut state: HashMap<StateKey, (i64, i64)> = HashMap::new();
    // The group's outbox messages in order, each with the seq of the event it waits to be in force for.
    let mut pending: Vec<(String, OutboxMessage, Option<u64>)> = Vec::new();
    // The events those messages wait for that were in force as their request placed them (beating every
    // earlier event of the group and of their request on their statement): seq → (statement, order).
    let mut as_placed: HashMap<i64, (StateKey, (i64, i64))> = HashMap::new();
    let mut outcomes = Vec::with_capacity(subjects.len());
    for ((((subject, mut batch), mut seal), import), link) in
        subjects.iter().zip(batches).zip(seals).zip(imports).zip(links.iter_mut())
    {
        let p = &pseudonyms[subject.as_str()];
        if let Some(survivor) = aliased.get(subject.as_str()) {
            outcomes.push(Err(StoreError::Linked(survivor.clone())));
            continue;
        }
        // A link (alone in its group) picks its events here, under the ledger lock.
        if let Some(link) = link.as_mut() {
            match links::prepare(&mut tx, subject, link).await? {
                Err(refusal) => {
                    fill_slot(&link.slot, Err(refusal));
                    outcomes.push(Ok((Vec::new(), None)));
                    continue;
                }
                Ok((p_from, events)) => {
                    if events.is_empty() {
                        seal = None;
                    }
                    batch = events;
                    linking = Some((p_from, subject.clone(), p.clone()));
                }
            }
        }
        let (start_seq, start_prev) = (seq, prev.clone());
        let mut keys = Vec::new();
        if let Some(import) = &import {
            // Changes placed before (by an earlier commit, or earlier in this one) are left out.
            let mut fresh = Vec::with_capacity(batch.len());
            for (new, id) in batch.into_iter().zip(&import.ids) {
                if seen.insert((import.source.clone(), id.clone())) {
                    keys.push(id.clone());
                    fresh.push(new);
                }
            }
            if fresh.is_empty() {
                outcomes.push(Ok((Vec::new(), None)));
                continue;
            }
            batch = fresh;
        }
        let mut placed = Vec::with_capacity(batch.len());
        let mut leaves = Vec::with_capacity(batch.len());
        for new in batch {
            seq += 1;
            let (e, leaf) = Event::place_with_leaf(new, seq, p.clone(), now, std::mem::take(&mut prev));
            prev = e.hash.clone();
            placed.push(e);
            leaves.push(leaf);
        }
        let sealed = match seal.map(|seal| run_sealer(seal, &placed, &|t: &str| wanted.wants(t))) {
            None => None,
            Some(Ok(s)) if s.receipt.as_ref().is_none_or(|r| receipt_ids.insert(r.id.clone())) => Some(s),
            Some(result) => {
                // Give this request's positions to the next one: the chain stays gapless.
                (seq, prev) = (start_seq, start_prev);
                let e = result.and(Err(StoreError::Conflict("a receipt with this id exists".into())));
                outcomes.push(e);
                if let Some(import) = &import {
                    for id in &keys {
                        seen.remove(&(import.source.clone(), id.clone()));
                    }
                }
                continue;
            }
        };
        for (e, leaf) in placed.iter().zip(&leaves) {
            cols.push(e);
            tree.append(*leaf, &mut nodes);
            // A `locate` event holds no consent: only the subject's jurisdiction below.
            let order = (e.effective_at().micros(), e.seq as i64);
            let mut keep = |key: (String, String, String, &'static str)| {
                let held = state.entry(key).or_insert(order);
                *held = (*held).max(order);
            };
            if e.action != Action::Locate {
                keep((
                    e.pseudonym.clone(),
                    e.purpose.clone(),
                    scope_key(&e.scope),
                    e.action.stance().as_str(),
                ));
            }
            if e.jurisdiction.is_some() {
                let (purpose, scope) = JURISDICTION_STATE;
                keep((e.pseudonym.clone(), purpose.to_owned(), scope.to_owned(), ""));
            }
        }
        if let Some(import) = &import {
            for (id, e) in keys.into_iter().zip(&placed) {
                import_sources.push(import.source.clone());
                import_ids.push(id);
                import_seqs.push(e.seq as i64);
            }
        }
        let (receipt, outbox, in_force) =
            sealed.map_or((None, Vec::new(), Vec::new()), |s| (s.receipt, s.outbox, s.in_force));
        if let (Some(r), Some(first), Some(last)) = (&receipt, placed.first(), placed.last()) {
            receipts.push(r, first.seq, last.seq);
        }
        for (s, _) in &in_force {
            // A request's events have consecutive positions.
            let at = placed.first().and_then(|first| usize::try_from(s.checked_sub(first.seq)?).ok());
            let Some(e) = at.and_then(|i| placed.get(i)).filter(|e| e.action != Action::Locate) else {
                continue;
            };
            let key =
                (e.pseudonym.clone(), e.purpose.clone(), scope_key(&e.scope), e.action.stance().as_str());
            let order = (e.effective_at().micros(), e.seq as i64);
            if state.get(&key) == Some(&order) {
                as_placed.insert(e.seq as i64, (key, order));
            }
        }
        pending.extend(outbox.into_iter().map(|m| (p.clone(), m, None)));
        pending.extend(in_force.into_iter().map(|(seq, m)| (p.clone(), m, Some(seq))));
        outcomes.push(Ok((placed, receipt)));
    }
    // A link whose events (if any) were placed moves the rest after the inserts.
    let linking = linking.filter(|_| outcomes.first().is_some_and(Result::is_ok));
    if seq > head_seq {
        cols.insert(&mut tx).await?;
        tlog::insert_nodes(&mut tx, &nodes).await?;
        receipts.insert(&mut tx).await?;

        if !import_ids.is_empty() {
            sqlx::query(
                "INSERT INTO imported (source, source_id, seq)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])",
            )
            .bind(import_sources)
            .bind(import_ids)
            .bind(import_seqs)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        // An event in force as placed that a later request of the group replaced: whether it beat the state
        // stored before the group is read before the state is written.
        let replaced: Vec<&StateKey> = as_placed
            .values()
            .filter(|(key, order)| state.get(key) != Some(order))
            .map(|(key, _)| key)
            .collect();
        let stored = stored_state(&mut tx, &replaced).await?;
        let (mut sp, mut spu, mut ssc, mut sst, mut sseq, mut sat) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((p, purpose, scope, stance), (at, s)) in &state {
            sp.push(p.clone());
            spu.push(purpose.clone());
            ssc.push(scope.clone());
            sst.push(*stance);
            sseq.push(*s);
            sat.push(*at);
        }
        // The rows written are the statements of the group now in force (under the ledger lock, after
        // every write committed before): what an import announces as in force. The subject's place (purpose
        // '') rides on a consent event but says nothing about its consent: it is left out, as on SQLite.
        let written: HashSet<i64> = sqlx::query_scalar(
            "WITH written AS (
                 INSERT INTO consent_state (pseudonym, purpose, scope, stance, seq, at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
                 ON CONFLICT (pseudonym, purpose, scope, stance) DO UPDATE SET seq = excluded.seq, at = excluded.at
                 WHERE (excluded.at, excluded.seq) > (consent_state.at, consent_state.seq)
                 RETURNING seq, purpose
             )
             SELECT seq FROM written WHERE purpose <> ''",
        )
        .bind(sp)
        .bind(spu)
        .bind(ssc)
        .bind(sst)
        .bind(sseq)
        .bind(sat)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        // In force as placed, as the embedded store reads it after each request: beating the group's
        // earlier events (above) and the stored state, which the written rows show for the group's last
        // statements and the rows read before show for the others.
        let in_force = |s: i64| {
            as_placed.get(&s).is_some_and(|(key, order)| {
                if state.get(key) == Some(order) {
                    written.contains(&s)
                } else {
                    stored.get(key).is_none_or(|before| order > before)
                }
            })
        };
        for (p, m, waits_for) in pending {
            if waits_for.is_none_or(|s| i64::try_from(s).is_ok_and(in_force)) {
                messages.push(&p, m, now);
            }
        }
        // Under the ledger lock (and the outbox lock, held since `wanted` was read above, so the
        // destinations are not read again), so outbox ids follow the ledger and commit order.
        messages.insert_wanted(&mut tx, &wanted).await?;

        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LEDGER_CHANNEL)
            .bind(seq.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    if let (Some((p_from, into, p_into)), Some(Some(link))) = (linking, links.into_iter().next()) {
        let from = (link.from.as_str(), p_from.as_str());
        let moved = links::move_rows(&mut tx, &link.kek, from, (into.as_str(), &p_into), now).await?;
        fill_slot(&link.slot, Ok(moved));
    }
    tx.commit().await.map_err(db)?;
    recent.committed(&nodes, (seq, prev));
    Ok((outcomes, (tree.size(), tree.root())))
}

/// Whether the nodes this node committed lately still belong to the ledger (read under the ledger lock,
/// at its head `head_seq`, `head_hash`): its last commit's head is the ledger's, or still in it when other
/// nodes appended since. When the ledger no longer holds it (the database went back), they are dropped.
async fn recent_still_holds(
    tx: &mut Transaction<'static, Postgres>,
    recent: &RecentNodes,
    head_seq: u64,
    head_hash: &str,
) -> Result<bool> {
    let Some((seq, hash)) = recent.last_commit() else { return Ok(false) };
    let holds = if seq == head_seq {
        head_hash == hash
    } else if seq > head_seq {
        false
    } else {
        let at: Option<String> = sqlx::query_scalar("SELECT hash FROM events WHERE seq = $1")
            .bind(seq as i64)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db)?;
        at.as_deref() == Some(hash.as_str())
    };
    if !holds {
        recent.clear();
    }
    Ok(holds)
}
