//! The embedded store's files: where they live, how a connection to them is opened (WAL,
//! `synchronous=FULL`, the key store attached as `ks`), their permissions, the folder lock, and SQLite's
//! errors as store errors.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, StoreError};

pub(super) const DATA_FILE: &str = "consentry.db";
pub(super) const KEYSTORE_FILE: &str = "keys.db";
const LOCK_FILE: &str = "consentry.lock";

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether `e` broke a constraint (a unique key, here): the caller maps it to its own conflict.
pub(super) fn is_constraint_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// The two database files of a data folder.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub data: PathBuf,
    pub keystore: PathBuf,
}

impl Paths {
    pub fn in_folder(dir: &Path) -> Self {
        Self { data: dir.join(DATA_FILE), keystore: dir.join(KEYSTORE_FILE) }
    }
}

/// A connection to the data file with the key store attached as `ks`.
pub(super) fn connect(paths: &Paths, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(&paths.data, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // Plans never depend on the values bound: otherwise SQLite (built with STAT4) marks a statement whose
    // plan looked at a bound value (a partial index's condition, a LIKE prefix) to be compiled again at
    // every new binding, and the outbox's claim was parsed and planned anew on every call.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.execute("ATTACH DATABASE ?1 AS ks", [paths.keystore.to_string_lossy()])?;
    conn.execute_batch("PRAGMA ks.synchronous = FULL;")?;
    Ok(conn)
}

/// Page cache of the writer's connection: 64 MiB for the data file, 16 MiB for the key store (SQLite's
/// default is 2 MiB). The writer inserts into indexes keyed by pseudonym, subject and source id, whose pages
/// a large append or import touches all over; with the default cache most of them were read again from
/// the OS for each group. Only the one writer connection gets it, so memory stays bounded (read
/// connections keep the default).
const WRITER_CACHE: &str = "PRAGMA cache_size = -65536; PRAGMA ks.cache_size = -16384;";

/// The writer's connection: as [`connect`], with the larger page cache.
pub(super) fn connect_writer(paths: &Paths) -> rusqlite::Result<Connection> {
    let conn = connect(paths, OpenFlags::default())?;
    conn.execute_batch(WRITER_CACHE)?;
    Ok(conn)
}

/// One database file on its own, switched to WAL mode (for migrations).
pub(super) fn open_file_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!("could not switch {} to WAL mode", path.display())));
    }
    conn.execute_batch("PRAGMA synchronous = FULL;").map_err(backend)?;
    Ok(conn)
}

#[cfg(unix)]
pub(super) fn restrict_permissions(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::Backend(format!("cannot restrict permissions of {}: {e}", path.display())))
}

#[cfg(not(unix))]
pub(super) fn restrict_permissions(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// Creates the data folder (mode 0700) and takes its lock file, refusing when another process holds it.
pub(super) fn lock_folder(dir: &Path) -> Result<File> {
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
