//! Installation-wide state on the embedded store: the mark that it was initialised (with its first API
//! key), and the leases that keep each singleton background job with one holder.

use consentry_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::keys::insert_api_key;
use crate::error::Result;
use crate::model::ApiKey;

/// Marks the store initialised and stores `admin`, unless that was done before; returns whether it did.
pub(super) fn initialise(conn: &mut Connection, admin: &ApiKey) -> Result<bool> {
    let tx = conn.transaction().map_err(backend)?;
    let done: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'initialised_at'", [], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if done.is_some() {
        return Ok(false);
    }
    insert_api_key(&tx, admin)?;
    tx.execute("INSERT INTO meta (key, value) VALUES ('initialised_at', ?1)", [Timestamp::now().to_string()])
        .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(true)
}

/// Takes or renews the lease `name` for `holder` until `until`, unless another holder's is live at `now`.
pub(super) fn try_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<bool> {
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
}
