//! The embedded store's handle: the folder lock, the writer thread and its queue, the pool of read-only
//! connections, and the [`Store`] trait on top of them. Each method sends its work to the writer or runs
//! it on a read connection; the SQL lives in the file of its part of the trait (`keys.rs`, `catalog.rs`,
//! `ledger.rs`, `activity.rs`, `outbox.rs`, `meta.rs`).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::merkle::{Hash, NodeId};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, oneshot};

use super::db::{self, Paths, backend};
use super::jobs::{AccessJob, AppendJob, Command, CountsJob, EnqueueJob, Grouped, WriteJob};
use super::writer::Writer;
use super::{activity, catalog, images, keys, ledger, meta, migrate, outbox, pseudonyms, readonly, tlog};
use crate::common::{lease_end, merge_counts};
use crate::error::{Result, StoreError};
use crate::model::default_outbox_filter;
use crate::model::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, CommitObserver, DeliveryOutcome, DeliveryRecord,
    DestinationPatch, DestinationRecord, EventMatcher, ExportRow, ImportKeys, LedgerHead, NewDestination,
    NoticeVersion, OutboxFilter, OutboxMessage, OutboxPruned, ReplayFrom, SealedReceipt, Sealer,
    SigningKeyRecord, StoredCatalog, StoredCheckpoint, StoredReceipt, TlogCheckpoint,
};
use crate::recent::RecentNodes;
use crate::store::Store;

/// Read connections kept open between reads, and the most reads run at once: a read waits for a pooled
/// connection rather than opening one (opening attaches the key store and parses the schema again on its
/// first statement, far more than a point read costs; a burst of 64 concurrent writes' reads opened a
/// connection each).
const READ_POOL: usize = 8;

/// Statements the writer's connection keeps prepared.
const WRITER_STATEMENTS: usize = 128;
/// Statements each read connection keeps prepared (the reads of a write's answer alone use several).
const READ_STATEMENTS: usize = 64;

/// The bulk reader's page caches (SQLite's `cache_size`, negative: in KiB): 16 MiB for the data and 32 MiB
/// for the key store. A page of the ledger looks up each event's subject in the key store by pseudonym, in
/// no order the key store is kept in; with the default 2 MiB the key store's pages were read from the file
/// again and again (a third of an export's time went into copying them). Bounded, so the export's memory
/// stays flat whatever the store's size.
const BULK_CACHE: &str = "PRAGMA main.cache_size = -16384; PRAGMA ks.cache_size = -32768;";

/// The bulk reader's slot.
enum Bulk {
    /// Not opened yet (or closed).
    Unmade,
    Free(Connection),
    /// In a read.
    Busy,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    paths: Paths,
    sender: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per read connection: a read holds one while it runs.
    read_slots: Arc<Semaphore>,
    /// The bulk reader: one read connection with larger page caches, for the reads that walk the whole
    /// ledger a page at a time (an export, the engine's warm-up); when busy such a read takes a connection
    /// of the pool.
    bulk: Arc<Mutex<Bulk>>,
    /// Held while the store is open; released by `close` (or drop), so another process may then open it.
    lock: Mutex<Option<File>>,
    closed: Arc<AtomicBool>,
    /// Which outbox messages some destination wants (see [`OutboxFilter`]).
    pub(super) filter: OutboxFilter,
    /// The tree nodes the writer committed lately, which proofs read without a query.
    recent: Arc<RecentNodes>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("data", &self.paths.data).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when needed) the store in `dir`, migrating it to the current schema.
    pub async fn open(dir: &Path, observer: Option<CommitObserver>) -> Result<Self> {
        Self::open_with(dir, observer, default_outbox_filter()).await
    }

    /// As [`open`](Self::open), keeping only the outbox messages some destination wants by `filter`.
    pub async fn open_with(
        dir: &Path,
        observer: Option<CommitObserver>,
        filter: OutboxFilter,
    ) -> Result<Self> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, observer, filter))
            .await
            .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))?
    }

    fn open_blocking(dir: &Path, observer: Option<CommitObserver>, filter: OutboxFilter) -> Result<Self> {
        let lock = db::lock_folder(dir)?;
        let paths = Paths::in_folder(dir);
        {
            let mut ks = db::open_file_db(&paths.keystore)?;
            migrate::keystore(&mut ks)?;
        }
        db::restrict_permissions(&paths.keystore, 0o600)?;
        {
            let mut data = db::open_file_db(&paths.data)?;
            migrate::data(&mut data)?;
            // One process owns the embedded store (the lock above): leases left by a crashed or stopped
            // predecessor are stale, and the deliveries they held can go again at once.
            data.execute("UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL", [])
                .map_err(backend)?;
        }
        db::restrict_permissions(&paths.data, 0o600)?;

        let conn = db::connect_writer(&paths).map_err(backend)?;
        // A group commit runs some twenty cached statements; rusqlite keeps 16 by default, so each group
        // evicted and prepared again the ones it needed (SQL parsed on the single writer thread).
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let (sender, receiver) = mpsc::channel();
        let recent = Arc::new(RecentNodes::new());
        let writer = Writer::new(conn, observer, filter.clone(), Arc::clone(&recent))?;
        let handle = std::thread::Builder::new()
            .name("consentry-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            paths,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(Semaphore::new(READ_POOL)),
            bulk: Arc::new(Mutex::new(Bulk::Unmade)),
            lock: Mutex::new(Some(lock)),
            closed: Arc::new(AtomicBool::new(false)),
            filter,
            recent,
        })
    }

    /// Opens the store in `dir` to read only, while a server may be writing it: no folder lock, no writer
    /// (writes answer [`StoreError::Closed`]), no migration. Refuses a folder without a store, or whose
    /// schema is older or newer than this build's.
    pub async fn open_read_only(dir: &Path) -> Result<Self> {
        let dir = dir.to_path_buf();
        let paths = tokio::task::spawn_blocking(move || readonly::paths(&dir))
            .await
            .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))??;
        Ok(Self {
            paths,
            sender: Mutex::new(None),
            writer: Mutex::new(None),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(Semaphore::new(READ_POOL)),
            bulk: Arc::new(Mutex::new(Bulk::Unmade)),
            lock: Mutex::new(None),
            closed: Arc::new(AtomicBool::new(false)),
            filter: default_outbox_filter(),
            recent: Arc::new(RecentNodes::new()),
        })
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        migrate::supported_version()
    }

    fn send(&self, command: Command) -> Result<()> {
        let guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(command).map_err(|_| StoreError::Closed)
    }

    /// Queues the job that `job` builds around its reply channel for the writer's next group commit, and
    /// waits until that group is durable.
    pub(super) async fn grouped<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T>>) -> Grouped,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Grouped(job(reply)))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `job` on the writer connection, in order with appends.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let _ = reply.send(job(conn));
        });
        self.send(Command::Write(job))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `job` on a read connection in the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read_on(false, job).await
    }

    /// Runs `job` on the bulk reader (or, while another read holds it, a connection of the pool).
    pub(super) async fn read_bulk<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read_on(true, job).await
    }

    async fn read_on<T: Send + 'static>(
        &self,
        bulk: bool,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(&self.readers);
        let slot = Arc::clone(&self.bulk);
        let paths = self.paths.clone();
        let closed = Arc::clone(&self.closed);
        // At most READ_POOL reads at once (the bulk reader's included): a read waits for a permit rather
        // than opening a connection beyond the pool.
        let permit = Arc::clone(&self.read_slots).acquire_owned().await.map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            let connect = || {
                let conn =
                    db::connect(&paths, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                        .map_err(backend)?;
                conn.set_prepared_statement_cache_capacity(READ_STATEMENTS);
                Ok(conn)
            };
            // The bulk reader when asked for and free (made on first use), else one of the pool.
            let taken = if bulk {
                let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
                match std::mem::replace(&mut *held, Bulk::Busy) {
                    Bulk::Free(conn) => Some(Ok(conn)),
                    Bulk::Unmade => Some(connect().and_then(|c| {
                        c.execute_batch(BULK_CACHE).map_err(backend)?;
                        Ok(c)
                    })),
                    Bulk::Busy => None,
                }
            } else {
                None
            };
            let (conn, is_bulk) = match taken {
                Some(Ok(conn)) => (conn, true),
                Some(Err(e)) => {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Bulk::Unmade;
                    return Err(e);
                }
                None => {
                    let pooled = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
                    (pooled.map_or_else(connect, Ok)?, false)
                }
            };
            // A job that panics must not leave the bulk reader marked busy for the store's life (every
            // later bulk read would fall back to the pool's small caches): the slot is freed, then the
            // panic goes on to the task's caller.
            let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn))) {
                Ok(out) => out.map_err(backend),
                Err(panic) => {
                    if is_bulk {
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Bulk::Unmade;
                    }
                    std::panic::resume_unwind(panic);
                }
            };
            // Kept for the next read, unless the store closed meanwhile (its files are then let go). Read
            // under the lock `close` empties the pool or the slot under, after marking the store closed.
            if is_bulk {
                let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
                *held = if closed.load(Ordering::Acquire) { Bulk::Unmade } else { Bulk::Free(conn) };
            } else {
                let mut pool = readers.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < READ_POOL && !closed.load(Ordering::Acquire) {
                    pool.push(conn);
                }
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn initialise(&self, admin: ApiKey) -> Result<bool> {
        self.write(move |conn| meta::initialise(conn, &admin)).await
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<()> {
        self.write(move |conn| keys::insert_api_key(conn, &key)).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(keys::api_keys).await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        let hash = *hash;
        self.read(move |conn| keys::api_key_by_hash(conn, &hash)).await
    }

    async fn rehash_api_key(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
        let (id, old, new) = (id.to_owned(), *old, *new);
        self.write(move |conn| keys::rehash_api_key(conn, &id, &old, &new)).await
    }

    async fn key_pepper(&self) -> Result<[u8; 32]> {
        let fresh: [u8; 32] = crate::random_bytes()?;
        self.write(move |conn| keys::key_pepper(conn, &fresh)).await
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| keys::revoke_api_key(conn, &id, at)).await
    }

    async fn catalog(&self) -> Result<Option<StoredCatalog>> {
        self.read(catalog::current_catalog).await
    }

    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog> {
        let document = document.clone();
        self.write(move |conn| catalog::apply_catalog(conn, &document)).await
    }

    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>> {
        let key = key.to_owned();
        self.read(move |conn| catalog::notice_version(conn, &key, version)).await
    }

    async fn import_notice(
        &self,
        key: &str,
        language: &str,
        title: &str,
        text: &str,
    ) -> Result<NoticeVersion> {
        let (key, language, title, text) =
            (key.to_owned(), language.to_owned(), title.to_owned(), text.to_owned());
        self.write(move |conn| catalog::import_notice(conn, &key, &language, &title, &text)).await
    }

    async fn catalog_document(&self, version: u64) -> Result<Option<CatalogDocument>> {
        self.read(move |conn| catalog::catalog_document(conn, version)).await
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
        let subject = subject.clone();
        self.grouped(|reply| {
            Grouped::Append(AppendJob { subject, events, import: None, seal, link: None, reply })
        })
        .await
    }

    async fn append_imported(
        &self,
        subject: &SubjectId,
        keys: ImportKeys,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)> {
        if events.is_empty() {
            return Ok((Vec::new(), None));
        }
        if keys.ids.len() != events.len() {
            return Err(StoreError::Backend("an import key for every event".into()));
        }
        let subject = subject.clone();
        let import = Some(keys);
        self.grouped(|reply| Grouped::Append(AppendJob { subject, events, import, seal, link: None, reply }))
            .await
    }

    async fn pseudonym_key(&self, subject: &SubjectId) -> Result<Option<[u8; 32]>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| pseudonyms::pseudonym_key(conn, &subject)).await
    }

    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        let id = id.to_owned();
        self.read(move |conn| ledger::receipt(conn, &id)).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        self.read(keys::signing_keys).await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<()> {
        self.write(move |conn| keys::add_signing_key(conn, &key)).await
    }

    async fn insert_checkpoint(&self, events: u64, head: &str, jws: &str) -> Result<()> {
        let (head, jws) = (head.to_owned(), jws.to_owned());
        self.write(move |conn| ledger::insert_checkpoint(conn, events, &head, &jws)).await
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.read(ledger::checkpoints).await
    }

    async fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
        let ids = ids.to_vec();
        self.read(move |conn| tlog::nodes(conn, &ids)).await
    }

    async fn tlog_proof_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
        let (mut found, missing) = self.recent.split(ids);
        if !missing.is_empty() {
            found.extend(self.tlog_nodes(&missing).await?);
        }
        Ok(found)
    }

    async fn insert_tlog_checkpoint(&self, checkpoint: &TlogCheckpoint) -> Result<()> {
        let checkpoint = checkpoint.clone();
        self.write(move |conn| tlog::insert_checkpoint(conn, &checkpoint).map_err(backend)).await
    }

    async fn latest_tlog_checkpoint(&self) -> Result<Option<TlogCheckpoint>> {
        self.read(tlog::latest_checkpoint).await
    }

    async fn recent_tlog_checkpoints(&self, before: Option<u64>, limit: u32) -> Result<Vec<TlogCheckpoint>> {
        let before = before.unwrap_or(u64::MAX);
        self.read(move |conn| tlog::recent_checkpoints(conn, before, limit)).await
    }

    async fn tlog_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<TlogCheckpoint>> {
        self.read(move |conn| tlog::checkpoints(conn, after, limit)).await
    }

    async fn log_access(&self, entries: Vec<AccessEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.grouped(|reply| Grouped::Access(AccessJob { entries, reply })).await
    }

    async fn access_log(
        &self,
        subject: &SubjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>> {
        let subject = subject.as_str().to_owned();
        let before = before.unwrap_or(i64::MAX);
        self.read(move |conn| activity::access_log(conn, &subject, before, limit)).await
    }

    async fn add_check_counts(&self, counts: Vec<(SubjectId, String, u64, Timestamp)>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let counts = merge_counts(counts);
        self.grouped(|reply| Grouped::Counts(CountsJob { counts, reply })).await
    }

    async fn check_counts(&self, subject: &SubjectId) -> Result<Vec<(String, u64, Timestamp)>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| activity::check_counts(conn, &subject)).await
    }

    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| ledger::history(conn, &subject, after, limit)).await
    }

    async fn history_newest(
        &self,
        subject: &SubjectId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| ledger::history_newest(conn, &subject, before, limit)).await
    }

    async fn current(&self, subject: &SubjectId) -> Result<Vec<Event>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| ledger::current(conn, &subject)).await
    }

    async fn current_page(&self, after: u64, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        self.read_bulk(move |conn| ledger::current_page(conn, after, limit)).await
    }

    async fn events_page(&self, after: u64, limit: u32) -> Result<Vec<Event>> {
        self.read(move |conn| ledger::events_page(conn, after, limit)).await
    }

    async fn save_engine_image(&self, covers: u64, image: &[u8]) -> Result<()> {
        let image = image.to_vec();
        self.write(move |conn| images::save(conn, covers, &image)).await
    }

    async fn latest_engine_image(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.read(images::latest).await
    }

    async fn pseudonym_page(&self, after: &str, limit: u32) -> Result<Vec<(String, SubjectId)>> {
        let after = after.to_owned();
        self.read(move |conn| images::pseudonym_page(conn, &after, limit)).await
    }

    async fn subject_events_page(&self, after: u64, limit: u32) -> Result<Vec<(Option<SubjectId>, Event)>> {
        self.read_bulk(move |conn| ledger::subject_events_page(conn, after, limit)).await
    }

    async fn first_lines(
        &self,
        pseudonyms: Vec<String>,
        since: Timestamp,
        history: bool,
    ) -> Result<Vec<(String, u64)>> {
        if pseudonyms.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| ledger::first_lines(conn, &pseudonyms, since, history)).await
    }

    async fn export_page(&self, after: u64, through: u64, history: bool) -> Result<Vec<ExportRow>> {
        self.read_bulk(move |conn| ledger::export_page(conn, after, through, history)).await
    }

    async fn catalog_version(&self) -> Result<Option<u64>> {
        self.read(catalog::catalog_version).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        self.read(ledger::ledger_head).await
    }

    async fn enqueue(&self, subject: &SubjectId, messages: Vec<OutboxMessage>) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let subject = subject.clone();
        self.grouped(|reply| Grouped::Enqueue(EnqueueJob { subject, messages, reply })).await
    }

    async fn create_destination(&self, destination: NewDestination) -> Result<()> {
        self.write(move |conn| outbox::create_destination(conn, &destination)).await
    }

    async fn destinations(&self) -> Result<Vec<DestinationRecord>> {
        self.read(outbox::destinations).await
    }

    async fn destination(&self, id: &str) -> Result<Option<DestinationRecord>> {
        let id = id.to_owned();
        self.read(move |conn| outbox::destination(conn, &id)).await
    }

    async fn destination_secret(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let id = id.to_owned();
        self.read(move |conn| outbox::destination_secret(conn, &id)).await
    }

    async fn update_destination(&self, id: &str, patch: DestinationPatch) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| outbox::update_destination(conn, &id, &patch)).await
    }

    async fn delete_destination(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| outbox::delete_destination(conn, &id)).await
    }

    async fn fan_out(&self, destination_id: &str, matches: &EventMatcher, limit: u32) -> Result<u64> {
        let id = destination_id.to_owned();
        let read_id = id.clone();
        let Some((cursor, messages)) =
            self.read(move |conn| outbox::fan_out_read(conn, &read_id, limit)).await?
        else {
            return Ok(0);
        };
        let Some(&(last, _)) = messages.last() else { return Ok(0) };
        let matched: Vec<i64> = messages
            .iter()
            .filter(|(_, event_type)| matches(event_type))
            .map(|(outbox_id, _)| *outbox_id)
            .collect();
        let now = Timestamp::now();
        let moved =
            self.write(move |conn| outbox::fan_out_write(conn, &id, cursor, last, &matched, now)).await?;
        // Not moved: another fan-out of this destination took the range first.
        Ok(if moved { messages.len() as u64 } else { 0 })
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let until = lease_end(now, lease);
        self.write(move |conn| outbox::claim(conn, now, until, limit)).await
    }

    async fn complete_delivery(
        &self,
        destination_id: &str,
        outbox_id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<()> {
        let id = destination_id.to_owned();
        self.write(move |conn| outbox::complete(conn, &id, outbox_id, &outcome)).await
    }

    async fn complete_deliveries(&self, outcomes: Vec<(String, i64, DeliveryOutcome)>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.write(move |conn| outbox::complete_many(conn, &outcomes)).await
    }

    async fn deliveries(
        &self,
        destination_id: &str,
        status: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let id = destination_id.to_owned();
        let status = status.map(str::to_owned);
        self.read(move |conn| outbox::deliveries(conn, &id, status.as_deref(), after, limit)).await
    }

    async fn replay(
        &self,
        destination_id: &str,
        from: ReplayFrom,
        not_before: Timestamp,
        matches: &EventMatcher,
    ) -> Result<u64> {
        let id = destination_id.to_owned();
        let read_id = id.clone();
        let Some(reach) = self.read(move |conn| outbox::replay_reach(conn, &read_id)).await? else {
            return Ok(0);
        };
        let first_at = match from {
            ReplayFrom::OutboxId(first) => self.read(move |conn| outbox::first_at(conn, first)).await?,
            ReplayFrom::Time(_) => None,
        };
        let (mut after, since) = reach.start(from, not_before, first_at)?;
        let cursor = reach.cursor;
        let mut total = 0;
        loop {
            let page = self.read(move |conn| outbox::replay_page(conn, after, cursor, since)).await?;
            let Some(&(last, _)) = page.last() else { break };
            after = last;
            let matched: Vec<i64> = page
                .iter()
                .filter(|(_, event_type)| matches(event_type))
                .map(|(outbox_id, _)| *outbox_id)
                .collect();
            if !matched.is_empty() {
                let (id, now) = (id.clone(), Timestamp::now());
                total += self.write(move |conn| outbox::replay_write(conn, &id, &matched, now)).await?;
            }
        }
        Ok(total)
    }

    async fn prune_outbox(&self, after: i64, not_before: Timestamp, limit: u32) -> Result<OutboxPruned> {
        self.write(move |conn| outbox::prune(conn, after, not_before, limit)).await
    }

    async fn replay_dead_letter(&self, destination_id: &str, outbox_id: i64, now: Timestamp) -> Result<bool> {
        let id = destination_id.to_owned();
        self.write(move |conn| outbox::replay_dead_letter(conn, &id, outbox_id, now)).await
    }

    async fn destination_lag(&self, destination_id: &str, now: Timestamp) -> Result<Option<f64>> {
        let id = destination_id.to_owned();
        self.read(move |conn| outbox::destination_lag(conn, &id, now)).await
    }

    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>> {
        self.read(move |conn| outbox::outbox_lag(conn, now)).await
    }

    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        self.read(move |conn| ledger::due_expiries(conn, now, limit)).await
    }

    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| meta::try_lease(conn, &name, &holder, until, now)).await
    }

    async fn dead_letters(&self) -> Result<u64> {
        self.read(outbox::dead_letters).await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(Command::Shutdown);
        }
        let handle = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.lock().unwrap_or_else(PoisonError::into_inner).clear();
        *self.bulk.lock().unwrap_or_else(PoisonError::into_inner) = Bulk::Unmade;
        // Unlocks the data folder even while other holders of this value (e.g. connections still draining)
        // keep it alive.
        drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_state(store: &SqliteStore) -> &'static str {
        match *store.bulk.lock().unwrap_or_else(PoisonError::into_inner) {
            Bulk::Unmade => "unmade",
            Bulk::Free(_) => "free",
            Bulk::Busy => "busy",
        }
    }

    /// SQLite (built with STAT4) compiles a statement again at each new binding when its plan looked at a
    /// bound value; the outbox's claim did, on every call, on the writer's thread. With plans that never
    /// depend on bound values it is compiled once.
    #[tokio::test]
    async fn the_outbox_claim_is_compiled_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        for i in 0..3 {
            let now = Timestamp::from_micros(1_700_000_000_000_000 + i * 1000);
            store.claim_deliveries(now, Duration::from_secs(30), 10).await.expect("claim");
        }
        let (runs, compiled_again) = store
            .write(|conn| {
                let stmt = conn.prepare_cached(outbox::CLAIM_DUE).map_err(backend)?;
                Ok((
                    stmt.get_status(rusqlite::StatementStatus::Run),
                    stmt.get_status(rusqlite::StatementStatus::RePrepare),
                ))
            })
            .await
            .expect("status");
        assert_eq!((runs, compiled_again), (3, 0));
        store.close().await;
    }

    #[tokio::test]
    async fn a_panicking_bulk_read_frees_the_bulk_reader_and_a_closed_store_keeps_no_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        store.read_bulk(|_| Ok(())).await.expect("read");
        assert_eq!(bulk_state(&store), "free");
        let panicked = store.read_bulk::<()>(|_| panic!("a bug in a row mapping")).await;
        assert!(matches!(panicked, Err(StoreError::Backend(_))), "{panicked:?}");
        assert_eq!(bulk_state(&store), "unmade", "made again by the next bulk read, not left busy");
        store.read_bulk(|_| Ok(())).await.expect("read");
        assert_eq!(bulk_state(&store), "free");
        store.read(|_| Ok(())).await.expect("read");
        store.close().await;
        assert_eq!(bulk_state(&store), "unmade");
        assert!(store.readers.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
    }
}
