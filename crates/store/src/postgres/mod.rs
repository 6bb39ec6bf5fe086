//! The PostgreSQL backend, for several Consentry nodes on one database.
//!
//! - **One chain across nodes.** Each node group-commits its appends in one transaction that first takes a
//!   transaction-scoped advisory lock, then reads the head and places events after it. The lock serialises
//!   appends across nodes; the primary key on `seq` refuses any duplicate position should the lock ever be
//!   bypassed. Commits of different nodes interleave, never overlap.
//! - **Change feed.** Every append transaction ends with `pg_notify('consentry_ledger', <last seq>)`,
//!   delivered at commit. A listener task turns notifications into [`Store::change_signals`]; the server
//!   also catches up on a timer, so a missed notification delays visibility by at most that interval.
//! - **Key store.** Pseudonym keys live in the schema `consentry_keystore`, apart from the data.

mod migrate;
mod rows;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use consentry_core::catalog::{CatalogDocument, notice_sha256};
use consentry_core::ledger::{GENESIS_HASH, pseudonym};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use self::rows::{API_KEY_COLUMNS, EVENT_COLUMNS, NOTICE_COLUMNS};
use crate::{
    ApiKey, CommitObserver, LedgerHead, NoticeVersion, Result, Store, StoreError, StoredCatalog,
    random_bytes, scope_key,
};

/// The advisory lock that serialises ledger appends across nodes ("consentry" in ASCII, truncated).
const LEDGER_LOCK: i64 = 0x636f_6e73_656e_7472;
/// The channel on which commits announce the new ledger head.
pub const LEDGER_CHANNEL: &str = "consentry_ledger";
const MAX_GROUP: usize = 4096;

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

struct AppendJob {
    subject: SubjectId,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Event>>>,
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    appends: Mutex<Option<mpsc::UnboundedSender<AppendJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    listener: Mutex<Option<JoinHandle<()>>>,
    signals: watch::Receiver<u64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, migrates (refusing a newer schema) and starts the group-commit and listener tasks.
    pub async fn open(url: &str, max_connections: u32, observer: Option<CommitObserver>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate::run(&pool).await?;

        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(pool.clone(), rx, observer));
        let (signal_tx, signals) = watch::channel(0);
        let listener = tokio::spawn(listen_loop(pool.clone(), signal_tx));
        Ok(Self {
            pool,
            appends: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            listener: Mutex::new(Some(listener)),
            signals,
        })
    }

    /// Applies the migrations to the database at `url` and returns the schema version (`consentry migrate`).
    pub async fn migrate_only(url: &str) -> Result<i64> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        let version = migrate::run(&pool).await;
        pool.close().await;
        version
    }

    pub fn schema_version() -> i64 {
        migrate::supported_version()
    }
}

async fn write_loop(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<AppendJob>,
    observer: Option<CommitObserver>,
) {
    let mut group = Vec::new();
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut jobs = std::mem::take(&mut group);
        let batches: Vec<Vec<NewEvent>> = jobs.iter_mut().map(|j| std::mem::take(&mut j.events)).collect();
        match commit_group(&pool, &jobs, batches).await {
            Ok(results) => {
                if let Some(observer) = &observer {
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
}

/// Commits `batches[i]`, the events of `jobs[i]`, as one group.
async fn commit_group(
    pool: &PgPool,
    jobs: &[AppendJob],
    batches: Vec<Vec<NewEvent>>,
) -> Result<Vec<Vec<Event>>> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LEDGER_LOCK).execute(&mut *tx).await.map_err(db)?;
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    let (mut seq, mut prev) = head.map_or((0, GENESIS_HASH.to_owned()), |(s, h)| (s as u64, h));

    let pseudonyms = pseudonyms_for(&mut tx, jobs).await?;
    let now = Timestamp::now();
    let mut cols = rows::EventColumns::default();
    let mut state: HashMap<(String, String, String), i64> = HashMap::new();
    let mut results = Vec::with_capacity(jobs.len());
    for (job, batch) in jobs.iter().zip(batches) {
        let p = &pseudonyms[job.subject.as_str()];
        let mut placed = Vec::with_capacity(batch.len());
        for new in batch {
            seq += 1;
            let e = Event::place(new, seq, p.clone(), now, prev);
            cols.push(&e);
            let key = (e.pseudonym.clone(), e.purpose.clone(), scope_key(&e.scope));
            state.insert(key, e.seq as i64);
            prev = e.hash.clone();
            placed.push(e);
        }
        results.push(placed);
    }
    cols.insert(&mut tx).await?;

    let (mut sp, mut spu, mut ssc, mut sseq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((p, purpose, scope), s) in state {
        sp.push(p);
        spu.push(purpose);
        ssc.push(scope);
        sseq.push(s);
    }
    sqlx::query(
        "INSERT INTO consent_state (pseudonym, purpose, scope, seq)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])
         ON CONFLICT (pseudonym, purpose, scope) DO UPDATE SET seq = excluded.seq
         WHERE excluded.seq > consent_state.seq",
    )
    .bind(sp)
    .bind(spu)
    .bind(ssc)
    .bind(sseq)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(LEDGER_CHANNEL)
        .bind(seq.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(results)
}

/// The pseudonym of every subject in `jobs`, creating keys for new ones inside the append transaction
/// (after the advisory lock, so two nodes never create two keys for one subject).
async fn pseudonyms_for(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[AppendJob],
) -> Result<HashMap<String, String>> {
    let mut subjects: Vec<String> = jobs.iter().map(|j| j.subject.as_str().to_owned()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let found: Vec<(String, String)> = sqlx::query_as(
        "SELECT subject, pseudonym FROM consentry_keystore.subject_keys WHERE subject = ANY($1)",
    )
    .bind(&subjects)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let mut map: HashMap<String, String> = found.into_iter().collect();
    let (mut ns, mut np, mut nk) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        if map.contains_key(&s) {
            continue;
        }
        let key: [u8; 32] = random_bytes()?;
        let p = pseudonym(&key, &s);
        ns.push(s.clone());
        np.push(p.clone());
        nk.push(key.to_vec());
        map.insert(s, p);
    }
    if !ns.is_empty() {
        sqlx::query(
            "INSERT INTO consentry_keystore.subject_keys (subject, pseudonym, pseudonym_key, created_at)
             SELECT s, p, k, $4 FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS t(s, p, k)",
        )
        .bind(ns)
        .bind(np)
        .bind(nk)
        .bind(Timestamp::now().micros())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(map)
}

async fn listen_loop(pool: PgPool, signals: watch::Sender<u64>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(LEDGER_CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN for ledger changes; retrying");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(n) => {
                                if let Ok(seq) = n.payload().parse::<u64>() {
                                    signals.send_if_modified(|cur| {
                                        let newer = seq > *cur;
                                        if newer {
                                            *cur = seq;
                                        }
                                        newer
                                    });
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "ledger change listener lost its connection; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect the ledger change listener; retrying"),
        }
        if signals.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl Store for PostgresStore {
    async fn initialise(&self, admin: ApiKey) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('initialised_at', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(Timestamp::now().to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        rows::insert_api_key(&mut tx, &admin).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        rows::insert_api_key(&mut conn, &key).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(&hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(rows::api_key).transpose()
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        let n = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at.micros())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn catalog(&self) -> Result<Option<StoredCatalog>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        rows::current_catalog(&mut conn).await
    }

    async fn catalog_version(&self) -> Result<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM catalogs")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(v.map(|v| v as u64))
    }

    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog> {
        let now = Timestamp::now().micros();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Serialise catalogue applies across nodes, like ledger appends.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LEDGER_LOCK + 1)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for notice in &document.notices {
            let sha = notice_sha256(&notice.text);
            let latest: Option<(i32, String)> = sqlx::query_as(
                "SELECT version, sha256 FROM notices WHERE key = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(&notice.key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let next = match latest {
                Some((_, old)) if old == sha => continue,
                Some((v, _)) => v + 1,
                None => 1,
            };
            sqlx::query(
                "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&notice.key)
            .bind(next)
            .bind(&sha)
            .bind(&notice.title)
            .bind(&notice.language)
            .bind(&notice.url)
            .bind(&notice.text)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        let json = serde_json::to_string(document).map_err(|e| StoreError::Backend(e.to_string()))?;
        sqlx::query(
            "INSERT INTO catalogs (version, document, applied_at)
             VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM catalogs), $1, $2)",
        )
        .bind(json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let stored = rows::current_catalog(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        stored.ok_or_else(|| StoreError::Backend("catalogue vanished after insert".into()))
    }

    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>> {
        let row =
            sqlx::query(&format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE key = $1 AND version = $2"))
                .bind(key)
                .bind(version as i32)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.as_ref().map(rows::notice).transpose()
    }

    async fn append(&self, subject: &SubjectId, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.appends.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(AppendJob { subject: subject.clone(), events, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e
             WHERE e.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
               AND e.seq > $2
             ORDER BY e.seq LIMIT $3"
        ))
        .bind(subject.as_str())
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(rows::event).collect()
    }

    async fn current(&self, subject: &SubjectId) -> Result<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM consent_state s JOIN events e ON e.seq = s.seq
             WHERE s.pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
             ORDER BY e.seq"
        ))
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(rows::event).collect()
    }

    async fn current_page(&self, after: u64, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        let rows = sqlx::query(&format!(
            "SELECT k.subject, {EVENT_COLUMNS} FROM consent_state s
             JOIN events e ON e.seq = s.seq
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = s.pseudonym
             WHERE s.seq > $1 ORDER BY s.seq LIMIT $2"
        ))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let subject: String = r.try_get("subject").map_err(db)?;
                let subject = SubjectId::new(subject)
                    .map_err(|e| StoreError::Backend(format!("stored subject id: {e}")))?;
                Ok((subject, rows::event(r)?))
            })
            .collect()
    }

    async fn subject_events_page(&self, after: u64, limit: u32) -> Result<Vec<(Option<SubjectId>, Event)>> {
        let rows = sqlx::query(&format!(
            "SELECT k.subject, {EVENT_COLUMNS} FROM events e
             LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
             WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
        ))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let subject: Option<String> = r.try_get("subject").map_err(db)?;
                Ok((subject.and_then(|s| SubjectId::new(s).ok()), rows::event(r)?))
            })
            .collect()
    }

    async fn events_page(&self, after: u64, limit: u32) -> Result<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
        ))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(rows::event).collect()
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(head.map_or_else(
            || LedgerHead { events: 0, head: GENESIS_HASH.to_owned() },
            |(s, h)| LedgerHead { events: s as u64, head: h },
        ))
    }

    fn change_signals(&self) -> Option<watch::Receiver<u64>> {
        Some(self.signals.clone())
    }

    async fn close(&self) {
        let sender = self.appends.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(sender);
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer {
            // The writer finishes the queued groups once every sender is gone.
            let _ = writer.await;
        }
        let listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(listener) = listener {
            listener.abort();
        }
        self.pool.close().await;
    }
}
