//! Opening the embedded store to read only, next to a server running on the same folder: SQLite's WAL
//! lets readers share the files with the one writer. Such an open takes no folder lock, starts no writer
//! and never migrates; it refuses a folder without a store or with a schema other than this build's.

use std::path::Path;

use rusqlite::OpenFlags;

use super::db::{self, Paths, backend};
use super::migrate;
use crate::error::{Result, StoreError};

/// Checks that `dir` holds a store of this build's schema, and returns its files.
pub(super) fn paths(dir: &Path) -> Result<Paths> {
    let paths = Paths::in_folder(dir);
    if !paths.data.is_file() || !paths.keystore.is_file() {
        return Err(StoreError::NotInitialised(dir.to_path_buf()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let keystore = rusqlite::Connection::open_with_flags(&paths.keystore, flags).map_err(backend)?;
    let data = db::connect(&paths, flags).map_err(backend)?;
    migrate::require_current(&data, &keystore)?;
    Ok(paths)
}
