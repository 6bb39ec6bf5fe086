//! The PostgreSQL backend, for several Consentry nodes on one database.
//!
//! - **One chain across nodes.** Each node group-commits its appends in one transaction that first takes a
//!   transaction-scoped advisory lock, then reads the head and places events after it. The lock serialises
//!   appends across nodes; the primary key on `seq` refuses any duplicate position should the lock ever be
//!   bypassed. Commits of different nodes interleave, never overlap.
//! - **Change feed.** Every append transaction ends with `pg_notify('consentry_ledger', <last seq>)`,
//!   delivered at commit. A listener task turns notifications into [`Store::change_signals`]; the server
//!   also catches up on a timer, so a missed notification delays visibility by at most that interval.
//! - **Key store.** Pseudonym and signing keys live in the schema `consentry_keystore`, apart from the
//!   data. Pseudonym keys are created with `ON CONFLICT DO NOTHING` and read back, so appends (under the
//!   ledger lock) and access logging (outside it) on any node agree on one key per subject.
//! - **Receipts** and **outbox messages** are inserted in the append transaction, after their events; see
//!   `outbox.rs` for how outbox ids keep commit order and how nodes share fan-out and deliveries.

mod devices;
mod migrate;
mod outbox;
mod requests;
mod rows;
mod vault;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use consentry_core::catalog::{CatalogDocument, notice_sha256};
use consentry_core::ledger::{GENESIS_HASH, pseudonym};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::common::{run_sealer, scope_key};
use crate::sql::{API_KEY_COLUMNS, CATALOG_VERSION, CHECKPOINTS, EVENT_COLUMNS, LEDGER_HEAD, NOTICE_COLUMNS};
use crate::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, CommitObserver, DeliveryOutcome, DeliveryRecord,
    DestinationPatch, DestinationRecord, EventMatcher, LedgerHead, NewDestination, NoticeVersion,
    OutboxMessage, ReplayFrom, Result, SealedReceipt, Sealer, SigningKeyRecord, Store, StoreError,
    StoredCatalog, StoredCheckpoint, StoredReceipt, random_bytes,
};

/// The advisory lock that serialises ledger appends across nodes ("consentry" in ASCII, truncated).
const LEDGER_LOCK: i64 = 0x636f_6e73_656e_7472;
/// The advisory lock that serialises signing-key rotations across nodes (`LEDGER_LOCK + 1` is catalogues').
const SIGNING_KEY_LOCK: i64 = LEDGER_LOCK + 2;
/// The channel on which commits announce the new ledger head.
pub const LEDGER_CHANNEL: &str = "consentry_ledger";
const MAX_GROUP: usize = 4096;

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

type Appended = (Vec<Event>, Option<SealedReceipt>);

struct AppendJob {
    subject: SubjectId,
    events: Vec<NewEvent>,
    seal: Option<Sealer>,
    reply: oneshot::Sender<Result<Appended>>,
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
        let seals: Vec<Option<Sealer>> = jobs.iter_mut().map(|j| j.seal.take()).collect();
        let subjects: Vec<SubjectId> = jobs.iter().map(|j| j.subject.clone()).collect();
        match commit_group(&pool, subjects, batches, seals).await {
            Ok(outcomes) => {
                let placed: usize = outcomes.iter().map(|o| o.as_ref().map_or(0, |(e, _)| e.len())).sum();
                if placed > 0
                    && let Some(observer) = &observer
                {
                    observer(placed);
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

/// Commits `batches[i]`, the events of `subjects[i]` sealed by `seals[i]`, as one group; returns each
/// request's outcome (a failed sealer fails its request alone).
async fn commit_group(
    pool: &PgPool,
    subjects: Vec<SubjectId>,
    batches: Vec<Vec<NewEvent>>,
    seals: Vec<Option<Sealer>>,
) -> Result<Vec<Result<Appended>>> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LEDGER_LOCK).execute(&mut *tx).await.map_err(db)?;
    let head: Option<(i64, String)> =
        sqlx::query_as(LEDGER_HEAD).fetch_optional(&mut *tx).await.map_err(db)?;
    let (mut seq, mut prev) = head.map_or((0, GENESIS_HASH.to_owned()), |(s, h)| (s as u64, h));
    let head_seq = seq;

    let pseudonyms =
        pseudonyms_for(&mut tx, subjects.iter().map(|s| s.as_str().to_owned()).collect()).await?;
    let now = Timestamp::now();
    let mut cols = rows::EventColumns::default();
    let mut receipts = rows::ReceiptColumns::default();
    let mut messages = outbox::OutboxColumns::default();
    let mut receipt_ids: HashSet<String> = HashSet::new();
    let mut state: HashMap<(String, String, String), i64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(subjects.len());
    for ((subject, batch), seal) in subjects.iter().zip(batches).zip(seals) {
        let p = &pseudonyms[subject.as_str()];
        let (start_seq, start_prev) = (seq, prev.clone());
        let mut placed = Vec::with_capacity(batch.len());
        for new in batch {
            seq += 1;
            let e = Event::place(new, seq, p.clone(), now, std::mem::take(&mut prev));
            prev = e.hash.clone();
            placed.push(e);
        }
        let sealed = match seal.map(|seal| run_sealer(seal, &placed)) {
            None => None,
            Some(Ok(s)) if s.receipt.as_ref().is_none_or(|r| receipt_ids.insert(r.id.clone())) => Some(s),
            Some(result) => {
                // Give this request's positions to the next one: the chain stays gapless.
                (seq, prev) = (start_seq, start_prev);
                let e = result.and(Err(StoreError::Conflict("a receipt with this id exists".into())));
                outcomes.push(e);
                continue;
            }
        };
        for e in &placed {
            cols.push(e);
            let key = (e.pseudonym.clone(), e.purpose.clone(), scope_key(&e.scope));
            state.insert(key, e.seq as i64);
        }
        let (receipt, outbox) = sealed.map_or((None, Vec::new()), |s| (s.receipt, s.outbox));
        if let (Some(r), Some(first), Some(last)) = (&receipt, placed.first(), placed.last()) {
            receipts.push(r, p, first.seq, last.seq, now);
        }
        for m in outbox {
            messages.push(p, m, now);
        }
        outcomes.push(Ok((placed, receipt)));
    }
    if seq > head_seq {
        cols.insert(&mut tx).await?;
        receipts.insert(&mut tx).await?;
        // Under the ledger lock (and the outbox lock), so outbox ids follow the ledger and commit order.
        messages.insert(&mut tx).await?;

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
    }
    tx.commit().await.map_err(db)?;
    Ok(outcomes)
}

/// The pseudonym of each subject, creating keys for new ones in the caller's transaction. Safe against
/// other transactions creating the same key meanwhile (appends on other nodes, access logging): a key
/// inserted concurrently wins and is read back.
async fn pseudonyms_for(
    conn: &mut PgConnection,
    mut subjects: Vec<String>,
) -> Result<HashMap<String, String>> {
    subjects.sort_unstable();
    subjects.dedup();
    let find = "SELECT subject, pseudonym FROM consentry_keystore.subject_keys WHERE subject = ANY($1)";
    let found: Vec<(String, String)> =
        sqlx::query_as(find).bind(&subjects).fetch_all(&mut *conn).await.map_err(db)?;
    let mut map: HashMap<String, String> = found.into_iter().collect();
    let (mut ns, mut np, mut nk) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        if map.contains_key(&s) {
            continue;
        }
        let key: [u8; 32] = random_bytes()?;
        np.push(pseudonym(&key, &s));
        ns.push(s);
        nk.push(key.to_vec());
    }
    if !ns.is_empty() {
        // Sorted subjects, so concurrent inserts take their locks in one order.
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO consentry_keystore.subject_keys (subject, pseudonym, pseudonym_key, created_at)
             SELECT s, p, k, $4 FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS t(s, p, k)
             ON CONFLICT (subject) DO NOTHING RETURNING subject",
        )
        .bind(&ns)
        .bind(&np)
        .bind(nk)
        .bind(Timestamp::now().micros())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        let mut raced = Vec::new();
        for (s, p) in ns.into_iter().zip(np) {
            if inserted.contains(&s) {
                map.insert(s, p);
            } else {
                raced.push(s);
            }
        }
        if !raced.is_empty() {
            let found: Vec<(String, String)> =
                sqlx::query_as(find).bind(&raced).fetch_all(&mut *conn).await.map_err(db)?;
            map.extend(found);
        }
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
        let v: Option<i64> = sqlx::query_scalar(CATALOG_VERSION).fetch_one(&self.pool).await.map_err(db)?;
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

    async fn append_sealed(
        &self,
        subject: &SubjectId,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)> {
        if events.is_empty() {
            return Ok((Vec::new(), None));
        }
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.appends.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(AppendJob { subject: subject.clone(), events, seal, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        let row: Option<(String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT r.id, k.subject, r.jws, r.created_at FROM receipts r
             LEFT JOIN consentry_keystore.subject_keys k ON k.pseudonym = r.pseudonym WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|(id, subject, jws, created_at)| StoredReceipt {
            id,
            subject: subject.and_then(|s| SubjectId::new(s).ok()),
            jws,
            created_at: Timestamp::from_micros(created_at),
        }))
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>, i64, bool)> = sqlx::query_as(
            "SELECT kid, secret, public, created_at, current FROM consentry_keystore.signing_keys
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(kid, secret, public, created_at, current)| {
                let bad = || StoreError::Backend("stored data does not decode: signing key".into());
                Ok(SigningKeyRecord {
                    kid,
                    secret: secret.try_into().map_err(|_| bad())?,
                    public: public.try_into().map_err(|_| bad())?,
                    created_at: Timestamp::from_micros(created_at),
                    current,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Two nodes rotating at once must not both end with a current key.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNING_KEY_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE consentry_keystore.signing_keys SET current = FALSE WHERE current")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let inserted = sqlx::query(
            "INSERT INTO consentry_keystore.signing_keys (kid, secret, public, created_at, current)
             VALUES ($1, $2, $3, $4, TRUE)",
        )
        .bind(&key.kid)
        .bind(&key.secret[..])
        .bind(&key.public[..])
        .bind(key.created_at.micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("a signing key with this kid exists".into()));
            }
            Err(e) => return Err(db(e)),
        }
        tx.commit().await.map_err(db)
    }

    async fn insert_checkpoint(&self, events: u64, head: &str, jws: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (events, head, jws, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (events) DO NOTHING",
        )
        .bind(events as i64)
        .bind(head)
        .bind(jws)
        .bind(Timestamp::now().micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let rows: Vec<(i64, String, String, i64)> =
            sqlx::query_as(CHECKPOINTS).fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(events, head, jws, created_at)| StoredCheckpoint {
                events: events as u64,
                head,
                jws,
                created_at: Timestamp::from_micros(created_at),
            })
            .collect())
    }

    async fn log_access(&self, entries: Vec<AccessEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn access_log(
        &self,
        subject: &SubjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>> {
        let rows: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
            "SELECT id, at, caller, route, purpose FROM access_log
             WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
               AND id < $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(subject.as_str())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
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

    async fn add_check_counts(&self, counts: Vec<(SubjectId, String, u64, Timestamp)>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let merged = crate::common::merge_counts(counts);
        let mut tx = self.pool.begin().await.map_err(db)?;
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

    async fn check_counts(&self, subject: &SubjectId) -> Result<Vec<(String, u64, Timestamp)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT purpose, count, last_at FROM check_counts
             WHERE pseudonym = (SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1)
             ORDER BY purpose",
        )
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|(p, n, last)| (p, n as u64, Timestamp::from_micros(last))).collect())
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
        rows.iter().map(rows::subject_event).collect()
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
            sqlx::query_as(LEDGER_HEAD).fetch_optional(&self.pool).await.map_err(db)?;
        Ok(head.map_or_else(
            || LedgerHead { events: 0, head: GENESIS_HASH.to_owned() },
            |(s, h)| LedgerHead { events: s as u64, head: h },
        ))
    }

    async fn enqueue(&self, subject: &SubjectId, messages: Vec<OutboxMessage>) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        outbox::enqueue(&self.pool, subject, messages).await
    }

    async fn create_destination(&self, destination: NewDestination) -> Result<()> {
        outbox::create_destination(&self.pool, destination).await
    }

    async fn destinations(&self) -> Result<Vec<DestinationRecord>> {
        outbox::destinations(&self.pool).await
    }

    async fn destination(&self, id: &str) -> Result<Option<DestinationRecord>> {
        outbox::destination_by_id(&self.pool, id).await
    }

    async fn destination_secret(&self, id: &str) -> Result<Option<Vec<u8>>> {
        outbox::destination_secret(&self.pool, id).await
    }

    async fn update_destination(&self, id: &str, patch: DestinationPatch) -> Result<bool> {
        outbox::update_destination(&self.pool, id, patch).await
    }

    async fn delete_destination(&self, id: &str) -> Result<bool> {
        outbox::delete_destination(&self.pool, id).await
    }

    async fn fan_out(&self, destination_id: &str, matches: &EventMatcher, limit: u32) -> Result<u64> {
        outbox::fan_out(&self.pool, destination_id, matches, limit).await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        outbox::claim(&self.pool, now, crate::common::lease_end(now, lease), limit).await
    }

    async fn complete_delivery(
        &self,
        destination_id: &str,
        outbox_id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<()> {
        outbox::complete(&self.pool, destination_id, outbox_id, outcome).await
    }

    async fn complete_deliveries(&self, outcomes: Vec<(String, i64, DeliveryOutcome)>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        outbox::complete_many(&self.pool, outcomes).await
    }

    async fn deliveries(
        &self,
        destination_id: &str,
        status: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        outbox::deliveries(&self.pool, destination_id, status, after, limit).await
    }

    async fn replay(&self, destination_id: &str, from: ReplayFrom, matches: &EventMatcher) -> Result<u64> {
        outbox::replay(&self.pool, destination_id, from, matches).await
    }

    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>> {
        outbox::outbox_lag(&self.pool, now).await
    }

    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        let rows = sqlx::query(&format!(
            "SELECT k.subject, {EVENT_COLUMNS} FROM events e
             JOIN consent_state s ON s.seq = e.seq
             JOIN consentry_keystore.subject_keys k ON k.pseudonym = e.pseudonym
             WHERE e.expires_at IS NOT NULL AND e.expires_at <= $1 AND e.action IN ('grant', 'renew')
             ORDER BY e.expires_at LIMIT $2"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(rows::subject_event).collect()
    }

    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool> {
        let got: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
             WHERE leases.until < $4 OR leases.holder = excluded.holder
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until.micros())
        .bind(now.micros())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(got.is_some())
    }

    async fn dead_letters(&self) -> Result<u64> {
        outbox::dead_letters(&self.pool).await
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
