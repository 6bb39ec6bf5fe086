//! Online backup and restore of the embedded store.
//!
//! A backup is a folder with a consistent copy of each file, taken with `VACUUM INTO` while the server
//! runs. The ledger is copied before the key store: keys are committed before the events that use them, so
//! every pseudonym in the copied ledger has its key in the (later) key-store copy.

use std::fs;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::db::{DATA_FILE, KEYSTORE_FILE, backend, lock_folder, restrict_permissions};
use crate::error::{Result, StoreError};

fn io(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

/// Copies the store in `dir` into the new or empty folder `out`, online.
pub fn backup(dir: &Path, out: &Path) -> Result<()> {
    if !dir.join(DATA_FILE).exists() || !dir.join(KEYSTORE_FILE).exists() {
        return Err(StoreError::Backend(format!("{} holds no Consentry store", dir.display())));
    }
    if out.exists() && fs::read_dir(out).map_err(|e| io("cannot read the backup folder", e))?.next().is_some()
    {
        return Err(StoreError::Backend(format!("{} exists and is not empty", out.display())));
    }
    fs::create_dir_all(out).map_err(|e| io("cannot create the backup folder", e))?;
    restrict_permissions(out, 0o700)?;
    for file in [DATA_FILE, KEYSTORE_FILE] {
        let conn =
            Connection::open_with_flags(dir.join(file), OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(backend)?;
        let target = out.join(file);
        conn.execute("VACUUM INTO ?1", [target.to_string_lossy()]).map_err(backend)?;
        restrict_permissions(&target, 0o600)?;
    }
    Ok(())
}

/// Replaces the store in `dir` with the backup in `backup`. Refuses while a server holds `dir`.
pub fn restore(backup: &Path, dir: &Path) -> Result<()> {
    for file in [DATA_FILE, KEYSTORE_FILE] {
        let conn = Connection::open_with_flags(backup.join(file), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(backend)?;
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(backend)?;
        if ok != "ok" {
            return Err(StoreError::Backend(format!("the backup's {file} fails its integrity check")));
        }
    }
    let lock = lock_folder(dir)?;
    for file in [DATA_FILE, KEYSTORE_FILE] {
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.join(format!("{file}{suffix}"));
            if path.exists() {
                fs::remove_file(&path).map_err(|e| io("cannot remove the old store", e))?;
            }
        }
        let target = dir.join(file);
        fs::copy(backup.join(file), &target).map_err(|e| io("cannot copy the backup", e))?;
        restrict_permissions(&target, 0o600)?;
    }
    drop(lock);
    Ok(())
}
