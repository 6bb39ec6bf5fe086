//! The writer thread: the only connection that writes, and the group commit of ledger appends.
//!
//! It takes one command, then everything else already queued (up to a bound), and runs consecutive appends
//! in one transaction: one fsync for the whole group, each caller answered once the group is durable.
//! New subjects' pseudonym keys are committed to the key store first, in their own transaction, so a crash
//! can leave an unused key behind but never a ledger event whose pseudonym has no key.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use consentry_core::catalog::{CatalogDocument, notice_sha256};
use consentry_core::ledger::{GENESIS_HASH, pseudonym};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{backend, rows};
use crate::{ApiKey, CommitObserver, Result, StoreError, StoredCatalog, random_bytes};

pub(super) type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

pub(super) struct AppendJob {
    pub subject: SubjectId,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<Vec<Event>>>,
}

pub(super) enum Command {
    Append(AppendJob),
    Write(WriteJob),
    Shutdown,
}

/// Most commands taken into one group.
const MAX_GROUP: usize = 4096;

pub(super) struct Writer {
    conn: Connection,
    observer: Option<CommitObserver>,
    head_seq: u64,
    head_hash: String,
}

impl Writer {
    pub fn new(conn: Connection, observer: Option<CommitObserver>) -> Result<Self> {
        let head = conn
            .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(backend)?;
        let (head_seq, head_hash) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        Ok(Self { conn, observer, head_seq, head_hash })
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
            let mut appends = Vec::new();
            for command in group.drain(..) {
                match command {
                    Command::Append(job) => appends.push(job),
                    Command::Write(job) => {
                        // Keep order: appends queued before this job commit first.
                        self.append_group(std::mem::take(&mut appends));
                        job(&mut self.conn);
                    }
                    Command::Shutdown => {
                        self.append_group(appends);
                        return;
                    }
                }
            }
            self.append_group(appends);
        }
    }

    fn append_group(&mut self, jobs: Vec<AppendJob>) {
        if jobs.is_empty() {
            return;
        }
        let mut jobs = jobs;
        let batches: Vec<Vec<NewEvent>> = jobs.iter_mut().map(|j| std::mem::take(&mut j.events)).collect();
        match self.commit_group(&jobs, batches) {
            Ok(results) => {
                if let Some(observer) = &self.observer {
                    observer(results.iter().map(Vec::len).sum());
                }
                for (job, events) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(events));
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

    /// Commits `batches[i]`, the events of `jobs[i]`, as one group.
    fn commit_group(&mut self, jobs: &[AppendJob], batches: Vec<Vec<NewEvent>>) -> Result<Vec<Vec<Event>>> {
        // 1. Pseudonyms, creating keys for new subjects (committed first).
        let mut pseudonyms: HashMap<&str, String> = HashMap::new();
        let mut new_keys: Vec<(&str, String, [u8; 32])> = Vec::new();
        {
            let mut find = self
                .conn
                .prepare_cached("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1")
                .map_err(backend)?;
            for job in jobs {
                let subject = job.subject.as_str();
                if pseudonyms.contains_key(subject) {
                    continue;
                }
                let found: Option<String> =
                    find.query_row([subject], |r| r.get(0)).optional().map_err(backend)?;
                let p = match found {
                    Some(p) => p,
                    None => {
                        let key: [u8; 32] = random_bytes()?;
                        let p = pseudonym(&key, subject);
                        new_keys.push((subject, p.clone(), key));
                        p
                    }
                };
                pseudonyms.insert(subject, p);
            }
        }
        if !new_keys.is_empty() {
            let tx = self.conn.transaction().map_err(backend)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO ks.subject_keys (subject, pseudonym, pseudonym_key, created_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(backend)?;
                let now = Timestamp::now().micros();
                for (subject, p, key) in &new_keys {
                    insert.execute(params![subject, p, &key[..], now]).map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
        }

        // 2. The events and the current state, in one transaction.
        let mut seq = self.head_seq;
        let mut prev = self.head_hash.clone();
        let now = Timestamp::now();
        let tx = self.conn.transaction().map_err(backend)?;
        let mut results = Vec::with_capacity(jobs.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (seq, pseudonym, purpose, action, categories, channels, recipients, notice,
                        notice_version, notice_hash, collection_point, actor, recorded_at, expires_at, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(backend)?;
            let mut state = tx
                .prepare_cached(
                    "INSERT INTO consent_state (pseudonym, purpose, scope, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (pseudonym, purpose, scope) DO UPDATE SET seq = excluded.seq
                     WHERE excluded.seq > consent_state.seq",
                )
                .map_err(backend)?;
            for (job, batch) in jobs.iter().zip(batches) {
                let p = &pseudonyms[job.subject.as_str()];
                let mut placed = Vec::with_capacity(batch.len());
                for new in batch {
                    seq += 1;
                    let e = Event::place(new, seq, p.clone(), now, prev);
                    insert
                        .execute(params![
                            e.seq as i64,
                            e.pseudonym,
                            e.purpose,
                            e.action.as_str(),
                            rows::json_list(&e.scope.categories),
                            rows::json_list(&e.scope.channels),
                            rows::json_list(&e.scope.recipients),
                            e.notice,
                            e.notice_version,
                            e.notice_hash,
                            e.collection_point,
                            e.actor,
                            e.recorded_at.micros(),
                            e.expires_at.map(Timestamp::micros),
                            e.prev_hash,
                            e.hash,
                        ])
                        .map_err(backend)?;
                    state
                        .execute(params![e.pseudonym, e.purpose, rows::scope_key(&e.scope), e.seq as i64])
                        .map_err(backend)?;
                    prev = e.hash.clone();
                    placed.push(e);
                }
                results.push(placed);
            }
        }
        tx.commit().map_err(backend)?;
        self.head_seq = seq;
        self.head_hash = prev;
        Ok(results)
    }
}

pub(super) fn insert_api_key(conn: &Connection, key: &ApiKey) -> Result<()> {
    let scopes = rows::json_list(&key.scopes);
    let result = conn.execute(
        "INSERT INTO api_keys (id, name, scopes, secret_hash, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.name,
            scopes,
            &key.secret_hash[..],
            key.created_at.micros(),
            key.revoked_at.map(Timestamp::micros)
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(StoreError::Conflict("an active API key with this name already exists".into()))
        }
        Err(e) => Err(backend(e)),
    }
}

pub(super) fn apply_catalog(conn: &mut Connection, document: &CatalogDocument) -> Result<StoredCatalog> {
    let now = Timestamp::now().micros();
    let tx = conn.transaction().map_err(backend)?;
    for notice in &document.notices {
        let sha = notice_sha256(&notice.text);
        let latest: Option<(u32, String)> = tx
            .query_row(
                "SELECT version, sha256 FROM notices WHERE key = ?1 ORDER BY version DESC LIMIT 1",
                [&notice.key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        let next = match latest {
            Some((_, old)) if old == sha => continue,
            Some((v, _)) => v + 1,
            None => 1,
        };
        tx.execute(
            "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![notice.key, next, sha, notice.title, notice.language, notice.url, notice.text, now],
        )
        .map_err(backend)?;
    }
    let json = serde_json::to_string(document).map_err(|e| StoreError::Backend(e.to_string()))?;
    tx.execute(
        "INSERT INTO catalogs (version, document, applied_at)
         VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM catalogs), ?1, ?2)",
        params![json, now],
    )
    .map_err(backend)?;
    let stored = rows::current_catalog(&tx).map_err(backend)?;
    tx.commit().map_err(backend)?;
    stored.ok_or_else(|| StoreError::Backend("catalogue vanished after insert".into()))
}
