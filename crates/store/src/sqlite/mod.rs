//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, in a data folder.
//!
//! Files: `consentry.db` (catalogue, API keys, ledger, current state, receipts, checkpoints, access log,
//! check counts, outbox, destinations, deliveries, the vault's encrypted records; pseudonyms only) and
//! `keys.db`, the key store (pseudonym keys, signing keys, destination secrets, wrapped vault data keys),
//! kept apart
//! so that a copy of the data alone cannot link the ledger's pseudonyms to people. One writer thread owns
//! the only writing connection and group-commits ledger appends with their receipts and outbox messages,
//! access-log entries and check counts (many requests, one transaction, one fsync); reads run on a small pool of read-only connections in the blocking thread pool. A lock file
//! keeps a second process from writing the same folder.

mod backup;
mod devices;
mod migrate;
mod outbox;
mod requests;
mod rows;
mod vault;
mod writer;

pub use backup::{backup, restore};

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use self::writer::{Command, Grouped, WriteJob};
use crate::sql::{
    API_KEY_COLUMNS, CATALOG_VERSION, CHECKPOINTS, DEAD_LETTERS, DESTINATION_COLUMNS, EVENT_COLUMNS,
    LEDGER_HEAD, NOTICE_COLUMNS,
};
use crate::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, CommitObserver, DeliveryOutcome, DeliveryRecord,
    DestinationPatch, DestinationRecord, EventMatcher, LedgerHead, NewDestination, NoticeVersion,
    OutboxMessage, ReplayFrom, Result, SealedReceipt, Sealer, SigningKeyRecord, Store, StoreError,
    StoredCatalog, StoredCheckpoint, StoredReceipt,
};

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

const DATA_FILE: &str = "consentry.db";
const KEYSTORE_FILE: &str = "keys.db";
const LOCK_FILE: &str = "consentry.lock";
/// Read connections kept open between reads.
const READ_POOL: usize = 8;

#[derive(Debug, Clone)]
struct Paths {
    data: PathBuf,
    keystore: PathBuf,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    paths: Paths,
    sender: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Held while the store is open; released by `close` (or drop), so another process may then open it.
    lock: Mutex<Option<File>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("data", &self.paths.data).finish_non_exhaustive()
    }
}

fn connect(paths: &Paths, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(&paths.data, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.execute("ATTACH DATABASE ?1 AS ks", [paths.keystore.to_string_lossy()])?;
    conn.execute_batch("PRAGMA ks.synchronous = FULL;")?;
    Ok(conn)
}

fn open_file_db(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!("could not switch {} to WAL mode", path.display())));
    }
    conn.execute_batch("PRAGMA synchronous = FULL;").map_err(backend)?;
    let _ = &mut conn;
    Ok(conn)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::Backend(format!("cannot restrict permissions of {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// Creates the data folder (mode 0700) and takes its lock file, refusing when another process holds it.
pub(crate) fn lock_folder(dir: &Path) -> Result<File> {
    fs::create_dir_all(dir)
        .map_err(|e| StoreError::Backend(format!("cannot create data folder {}: {e}", dir.display())))?;
    restrict_permissions(dir, 0o700)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| StoreError::Backend(format!("cannot open lock file: {e}")))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => {
            Err(StoreError::Backend(format!("cannot lock the data folder: {e}")))
        }
    }
}

impl SqliteStore {
    /// Opens (creating when needed) the store in `dir`, migrating it to the current schema.
    pub async fn open(dir: &Path, observer: Option<CommitObserver>) -> Result<Self> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, observer))
            .await
            .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))?
    }

    fn open_blocking(dir: &Path, observer: Option<CommitObserver>) -> Result<Self> {
        let lock = lock_folder(dir)?;
        let paths = Paths { data: dir.join(DATA_FILE), keystore: dir.join(KEYSTORE_FILE) };
        {
            let mut ks = open_file_db(&paths.keystore)?;
            migrate::keystore(&mut ks)?;
        }
        restrict_permissions(&paths.keystore, 0o600)?;
        {
            let mut data = open_file_db(&paths.data)?;
            migrate::data(&mut data)?;
            // One process owns the embedded store (the lock above): leases left by a crashed or stopped
            // predecessor are stale, and the deliveries they held can go again at once.
            data.execute("UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL", [])
                .map_err(backend)?;
        }
        restrict_permissions(&paths.data, 0o600)?;

        let conn = connect(&paths, OpenFlags::default()).map_err(backend)?;
        let (sender, receiver) = mpsc::channel();
        let writer = writer::Writer::new(conn, observer)?;
        let handle = std::thread::Builder::new()
            .name("consentry-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            paths,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            readers: Arc::new(Mutex::new(Vec::new())),
            lock: Mutex::new(Some(lock)),
            closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
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

    /// Runs `job` on the writer connection, in order with appends.
    async fn write<T: Send + 'static>(
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
    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(&self.readers);
        let paths = self.paths.clone();
        let closed = Arc::clone(&self.closed);
        tokio::task::spawn_blocking(move || {
            if closed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            let pooled = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(c) => c,
                None => connect(&paths, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(backend)?,
            };
            let out = job(&conn).map_err(backend);
            let mut pool = readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < READ_POOL {
                pool.push(conn);
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
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let done: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'initialised_at'", [], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if done.is_some() {
                return Ok(false);
            }
            writer::insert_api_key(&tx, &admin)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('initialised_at', ?1)",
                [Timestamp::now().to_string()],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<()> {
        self.write(move |conn| writer::insert_api_key(conn, &key)).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
            ))?;
            stmt.query_map([], rows::api_key)?.collect()
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        let hash = *hash;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL"
            ))?
            .query_row([&hash[..]], rows::api_key)
            .optional()
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, at.micros()],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn catalog(&self) -> Result<Option<StoredCatalog>> {
        self.read(rows::current_catalog).await
    }

    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog> {
        let document = document.clone();
        self.write(move |conn| writer::apply_catalog(conn, &document)).await
    }

    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {NOTICE_COLUMNS} FROM notices WHERE key = ?1 AND version = ?2"
            ))?
            .query_row(params![key, version], rows::notice)
            .optional()
        })
        .await
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
        let job = writer::AppendJob { subject: subject.clone(), events, seal, reply };
        self.send(Command::Grouped(Grouped::Append(job)))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT r.id, k.subject, r.jws, r.created_at FROM receipts r
                 LEFT JOIN ks.subject_keys k ON k.pseudonym = r.pseudonym WHERE r.id = ?1",
            )?
            .query_row([id], rows::receipt)
            .optional()
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT kid, secret, public, created_at, current FROM ks.signing_keys ORDER BY created_at, kid",
            )?;
            stmt.query_map([], rows::signing_key)?.collect()
        })
        .await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute("UPDATE ks.signing_keys SET current = 0 WHERE current = 1", []).map_err(backend)?;
            let inserted = tx.execute(
                "INSERT INTO ks.signing_keys (kid, secret, public, created_at, current) VALUES (?1, ?2, ?3, ?4, 1)",
                params![key.kid, &key.secret[..], &key.public[..], key.created_at.micros()],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::Conflict("a signing key with this kid exists".into()));
                }
                Err(e) => return Err(backend(e)),
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn insert_checkpoint(&self, events: u64, head: &str, jws: &str) -> Result<()> {
        let (head, jws) = (head.to_owned(), jws.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO checkpoints (events, head, jws, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (events) DO NOTHING",
                params![events as i64, head, jws, Timestamp::now().micros()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(CHECKPOINTS)?;
            stmt.query_map([], |r| {
                Ok(StoredCheckpoint {
                    events: r.get::<_, i64>(0)? as u64,
                    head: r.get(1)?,
                    jws: r.get(2)?,
                    created_at: Timestamp::from_micros(r.get(3)?),
                })
            })?
            .collect()
        })
        .await
    }

    async fn log_access(&self, entries: Vec<AccessEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Grouped(Grouped::Access(writer::AccessJob { entries, reply })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn access_log(
        &self,
        subject: &SubjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>> {
        let subject = subject.as_str().to_owned();
        let before = before.unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, caller, route, purpose FROM access_log
                 WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) AND id < ?2
                 ORDER BY id DESC LIMIT ?3",
            )?;
            stmt.query_map(params![subject, before, limit], |r| {
                Ok(AccessRecord {
                    id: r.get(0)?,
                    at: Timestamp::from_micros(r.get(1)?),
                    caller: r.get(2)?,
                    route: r.get(3)?,
                    purpose: r.get(4)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn add_check_counts(&self, counts: Vec<(SubjectId, String, u64, Timestamp)>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        let job = writer::CountsJob { counts: crate::common::merge_counts(counts), reply };
        self.send(Command::Grouped(Grouped::Counts(job)))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn check_counts(&self, subject: &SubjectId) -> Result<Vec<(String, u64, Timestamp)>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT purpose, count, last_at FROM check_counts
                 WHERE pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                 ORDER BY purpose",
            )?;
            stmt.query_map([subject], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, Timestamp::from_micros(r.get(2)?)))
            })?
            .collect()
        })
        .await
    }

    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e
                 WHERE e.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1) AND e.seq > ?2
                 ORDER BY e.seq LIMIT ?3"
            ))?;
            stmt.query_map(params![subject, after as i64, limit], |r| rows::event(r, 0))?.collect()
        })
        .await
    }

    async fn current(&self, subject: &SubjectId) -> Result<Vec<Event>> {
        let subject = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM consent_state s JOIN events e ON e.seq = s.seq
                 WHERE s.pseudonym = (SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1)
                 ORDER BY e.seq"
            ))?;
            stmt.query_map([subject], |r| rows::event(r, 0))?.collect()
        })
        .await
    }

    async fn current_page(&self, after: u64, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT k.subject, {EVENT_COLUMNS} FROM consent_state s
                 JOIN events e ON e.seq = s.seq
                 JOIN ks.subject_keys k ON k.pseudonym = s.pseudonym
                 WHERE s.seq > ?1 ORDER BY s.seq LIMIT ?2"
            ))?;
            stmt.query_map(params![after as i64, limit], |r| {
                let subject: String = r.get(0)?;
                let subject = SubjectId::new(subject).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok((subject, rows::event(r, 1)?))
            })?
            .collect()
        })
        .await
    }

    async fn events_page(&self, after: u64, limit: u32) -> Result<Vec<Event>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
            ))?;
            stmt.query_map(params![after as i64, limit], |r| rows::event(r, 0))?.collect()
        })
        .await
    }

    async fn subject_events_page(&self, after: u64, limit: u32) -> Result<Vec<(Option<SubjectId>, Event)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT k.subject, {EVENT_COLUMNS} FROM events e
                 LEFT JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
                 WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
            ))?;
            stmt.query_map(params![after as i64, limit], |r| {
                let subject: Option<String> = r.get(0)?;
                Ok((subject.and_then(|s| SubjectId::new(s).ok()), rows::event(r, 1)?))
            })?
            .collect()
        })
        .await
    }

    async fn catalog_version(&self) -> Result<Option<u64>> {
        self.read(|conn| {
            conn.query_row(CATALOG_VERSION, [], |r| r.get::<_, Option<i64>>(0)).map(|v| v.map(|v| v as u64))
        })
        .await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        self.read(|conn| {
            conn.query_row(LEDGER_HEAD, [], |r| {
                Ok(LedgerHead { events: r.get::<_, i64>(0)? as u64, head: r.get(1)? })
            })
            .optional()
            .map(|head| {
                head.unwrap_or_else(|| LedgerHead {
                    events: 0,
                    head: consentry_core::ledger::GENESIS_HASH.to_owned(),
                })
            })
        })
        .await
    }

    async fn enqueue(&self, subject: &SubjectId, messages: Vec<OutboxMessage>) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        let job = writer::EnqueueJob { subject: subject.clone(), messages, reply };
        self.send(Command::Grouped(Grouped::Enqueue(job)))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn create_destination(&self, destination: NewDestination) -> Result<()> {
        self.write(move |conn| outbox::create_destination(conn, &destination)).await
    }

    async fn destinations(&self) -> Result<Vec<DestinationRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DESTINATION_COLUMNS} FROM destinations ORDER BY created_at, id"
            ))?;
            stmt.query_map([], rows::destination)?.collect()
        })
        .await
    }

    async fn destination(&self, id: &str) -> Result<Option<DestinationRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ?1"))?
                .query_row([id], rows::destination)
                .optional()
        })
        .await
    }

    async fn destination_secret(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT secret FROM ks.destination_secrets WHERE destination_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
        .await
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
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let until = crate::common::lease_end(now, lease);
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

    async fn replay(&self, destination_id: &str, from: ReplayFrom, matches: &EventMatcher) -> Result<u64> {
        let id = destination_id.to_owned();
        let read_id = id.clone();
        let cursor: Option<i64> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT cursor FROM destinations WHERE id = ?1")?
                    .query_row([read_id], |r| r.get(0))
                    .optional()
            })
            .await?;
        let Some(cursor) = cursor else { return Ok(0) };
        let (mut after, since) = match from {
            ReplayFrom::OutboxId(first) => (first.saturating_sub(1), i64::MIN),
            ReplayFrom::Time(t) => (0, t.micros()),
        };
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

    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>> {
        let oldest: Option<i64> = self
            .read(|conn| {
                conn.query_row(
                    "SELECT MIN(o.created_at) FROM deliveries d
                     JOIN outbox o ON o.id = d.outbox_id
                     JOIN destinations t ON t.id = d.destination_id
                     WHERE d.status = 'pending' AND t.paused = 0",
                    [],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(oldest.map(|at| crate::common::lag_seconds(now, at)))
    }

    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT k.subject, {EVENT_COLUMNS} FROM events e INDEXED BY events_expiring
                 JOIN consent_state s ON s.seq = e.seq
                 JOIN ks.subject_keys k ON k.pseudonym = e.pseudonym
                 WHERE e.expires_at IS NOT NULL AND e.expires_at <= ?1 AND e.action IN ('grant', 'renew')
                 ORDER BY e.expires_at LIMIT ?2"
            ))?;
            stmt.query_map(params![now.micros(), limit], |r| {
                let subject: String = r.get(0)?;
                let subject = SubjectId::new(subject).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok((subject, rows::event(r, 1)?))
            })?
            .collect()
        })
        .await
    }

    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| {
            let got: Option<String> = conn
                .query_row(
                    "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.until < ?4 OR leases.holder = excluded.holder
                     RETURNING holder",
                    params![name, holder, until.micros(), now.micros()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(got.is_some())
        })
        .await
    }

    async fn dead_letters(&self) -> Result<u64> {
        self.read(|conn| conn.query_row(DEAD_LETTERS, [], |r| r.get::<_, i64>(0))).await.map(|n| n as u64)
    }

    async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(Command::Shutdown);
        }
        let handle = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.lock().unwrap_or_else(PoisonError::into_inner).clear();
        // Unlocks the data folder even while other holders of this value (e.g. connections still draining)
        // keep it alive.
        drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

/// The subject's pseudonym, creating its key in the key store when it has none. Outside a transaction the
/// key is committed on its own, before anything that uses it (as appends do), so a crash can leave an
/// unused key but never a row whose pseudonym has no key.
pub(super) fn pseudonym_for(conn: &Connection, subject: &str) -> Result<String> {
    let found: Option<String> = conn
        .prepare_cached("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1")
        .map_err(backend)?
        .query_row([subject], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if let Some(p) = found {
        return Ok(p);
    }
    let key: [u8; 32] = crate::random_bytes()?;
    let p = consentry_core::ledger::pseudonym(&key, subject);
    conn.execute(
        "INSERT INTO ks.subject_keys (subject, pseudonym, pseudonym_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![subject, p, &key[..], Timestamp::now().micros()],
    )
    .map_err(backend)?;
    Ok(p)
}
