//! Versioned migrations of the embedded store, embedded in the binary and tracked by `PRAGMA user_version`.

use rusqlite::Connection;

use super::db::backend;
use crate::error::{Result, StoreError};

/// Migrations of the data file, in order; index + 1 is the schema version each one produces.
const DATA: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_proof.sql"),
    include_str!("../../migrations/sqlite/0003_outbox.sql"),
    include_str!("../../migrations/sqlite/0004_expiry.sql"),
    include_str!("../../migrations/sqlite/0005_vault.sql"),
    include_str!("../../migrations/sqlite/0006_devices.sql"),
    include_str!("../../migrations/sqlite/0007_requests.sql"),
    include_str!("../../migrations/sqlite/0008_subject_tokens.sql"),
    include_str!("../../migrations/sqlite/0009_receipts_rebuilt.sql"),
    include_str!("../../migrations/sqlite/0010_console.sql"),
    include_str!("../../migrations/sqlite/0011_tlog.sql"),
    include_str!("../../migrations/sqlite/0012_event_evidence.sql"),
    include_str!("../../migrations/sqlite/0013_identifiers.sql"),
    include_str!("../../migrations/sqlite/0014_notice_consents.sql"),
    include_str!("../../migrations/sqlite/0015_event_jurisdiction.sql"),
    include_str!("../../migrations/sqlite/0016_device_last_seen.sql"),
    include_str!("../../migrations/sqlite/0017_verifications.sql"),
    include_str!("../../migrations/sqlite/0018_import.sql"),
    include_str!("../../migrations/sqlite/0019_console_checks.sql"),
    include_str!("../../migrations/sqlite/0020_request_days.sql"),
    include_str!("../../migrations/sqlite/0021_delivery_attempts.sql"),
    include_str!("../../migrations/sqlite/0022_effective_time.sql"),
    include_str!("../../migrations/sqlite/0023_guardians.sql"),
    include_str!("../../migrations/sqlite/0024_outbox_reach.sql"),
    include_str!("../../migrations/sqlite/0025_households.sql"),
    include_str!("../../migrations/sqlite/0026_coming_of_age.sql"),
    include_str!("../../migrations/sqlite/0027_evidence.sql"),
    include_str!("../../migrations/sqlite/0028_consent_stances.sql"),
    include_str!("../../migrations/sqlite/0029_slim_outbox.sql"),
    include_str!("../../migrations/sqlite/0030_engine_images.sql"),
    include_str!("../../migrations/sqlite/0031_slim_receipts.sql"),
];
/// Migrations of the key-store file.
const KEYSTORE: &[&str] = &[
    include_str!("../../migrations/sqlite/keystore_0001_init.sql"),
    include_str!("../../migrations/sqlite/keystore_0002_signing.sql"),
    include_str!("../../migrations/sqlite/keystore_0003_destinations.sql"),
    include_str!("../../migrations/sqlite/keystore_0004_vault.sql"),
    include_str!("../../migrations/sqlite/keystore_0005_erasure.sql"),
    include_str!("../../migrations/sqlite/keystore_0006_key_pepper.sql"),
    include_str!("../../migrations/sqlite/keystore_0007_no_erasure_notices.sql"),
    include_str!("../../migrations/sqlite/keystore_0008_subject_links.sql"),
];

pub(super) fn data(conn: &mut Connection) -> Result<()> {
    if run(conn, DATA)? > 0 {
        // An engine image holds what the ledger made of each subject under the rules of the build that
        // wrote it; a migration may change what the stored state means (0028 brought back objections), so
        // no image taken before one is used after it.
        conn.execute("DELETE FROM engine_images", []).map_err(backend)?;
    }
    Ok(())
}

pub(super) fn keystore(conn: &mut Connection) -> Result<()> {
    run(conn, KEYSTORE).map(drop)
}

/// Applies the missing migrations, each in its own transaction; refuses a database from a newer build.
/// Returns how many it applied.
fn run(conn: &mut Connection, migrations: &[&str]) -> Result<usize> {
    let supported = migrations.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(migrations.len() - found as usize)
}

/// Refuses, without changing anything, a data file and a key store whose schema is not the one this
/// build reads (a read-only open never migrates).
pub(super) fn require_current(data: &Connection, keystore: &Connection) -> Result<()> {
    for (conn, migrations) in [(data, DATA), (keystore, KEYSTORE)] {
        let supported = migrations.len() as i64;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(StoreError::SchemaTooOld { found, supported });
        }
    }
    Ok(())
}

pub(super) fn supported_version() -> i64 {
    DATA.len() as i64
}
