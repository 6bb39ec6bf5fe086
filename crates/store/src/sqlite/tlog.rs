//! The ledger's Merkle tree on the embedded store: its complete subtrees above the leaves (`tlog_nodes`),
//! written by the writer in each append's transaction, built for a ledger that predates the tree when the
//! store opens, and the signed checkpoints of the tree (`tlog_checkpoints`). A leaf is not stored: it is
//! the hash of its event's canonical bytes, read from the ledger when asked for.

use consentry_core::Timestamp;
use consentry_core::merkle::{Frontier, Hash, NodeId, leaf_hash};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db::backend;
use super::rows::{self, conversion};
use crate::error::{Result, StoreError};
use crate::model::TlogCheckpoint;
use crate::sql::EVENT_COLUMNS;

/// Events read per transaction when building the tree of an existing ledger.
const CATCH_UP_PAGE: u32 = 10_000;

fn hash(bytes: Vec<u8>) -> rusqlite::Result<Hash> {
    bytes.try_into().map_err(|_| conversion("a tree hash is not 32 bytes"))
}

/// The nodes among `ids` the tree has: a leaf from its event (leaf i is event i + 1), any other from
/// `tlog_nodes`.
pub(super) fn nodes(conn: &Connection, ids: &[NodeId]) -> rusqlite::Result<Vec<(NodeId, Hash)>> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx = ?2")?;
    let mut event = conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq = ?1"))?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if id.level == 0 {
            let Ok(seq) = i64::try_from(id.index + 1) else { continue };
            if let Some(e) = event.query_row([seq], |r| rows::event(r, 0)).optional()? {
                found.push((*id, leaf_hash(&e.canonical_bytes())));
            }
            continue;
        }
        let row =
            stmt.query_row(params![id.level, id.index as i64], |r| r.get::<_, Vec<u8>>(0)).optional()?;
        if let Some(bytes) = row {
            found.push((*id, hash(bytes)?));
        }
    }
    Ok(found)
}

/// Inserts the nodes above the leaves completed by an append, in the caller's transaction.
pub(super) fn insert_nodes(conn: &Connection, nodes: &[(NodeId, Hash)]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("INSERT INTO tlog_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
    for (id, h) in nodes.iter().filter(|(id, _)| id.level > 0) {
        stmt.execute(params![id.level, id.index as i64, &h[..]])?;
    }
    Ok(())
}

/// The tree's frontier at `size` leaves, read from the stored nodes.
fn frontier(conn: &Connection, size: u64) -> Result<Frontier> {
    let found = nodes(conn, &Frontier::ids(size)).map_err(backend)?;
    Frontier::from_nodes(size, &found)
        .ok_or_else(|| StoreError::Backend("the Merkle tree lacks a node of its frontier".into()))
}

/// Loads the tree's frontier, first adding the leaves of every event the tree does not hold yet (a ledger
/// written before the tree existed), a page per transaction so that a crash keeps what was built. The
/// tree holds the leaves under its last node of level 1 (an odd last leaf completes no stored node, and is
/// taken again).
pub(super) fn catch_up(conn: &mut Connection, ledger_len: u64) -> Result<Frontier> {
    let size: i64 = conn
        .query_row("SELECT COALESCE(MAX(idx) + 1, 0) * 2 FROM tlog_nodes WHERE level = 1", [], |r| r.get(0))
        .map_err(backend)?;
    let mut tree = frontier(conn, size as u64)?;
    while tree.size() < ledger_len {
        let tx = conn.transaction().map_err(backend)?;
        let events = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
                ))
                .map_err(backend)?;
            stmt.query_map(params![tree.size() as i64, CATCH_UP_PAGE], |r| rows::event(r, 0))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?
        };
        let mut completed = Vec::new();
        for e in &events {
            if e.seq != tree.size() + 1 {
                return Err(StoreError::Backend("the ledger has a gap; its tree cannot be built".into()));
            }
            tree.append(leaf_hash(&e.canonical_bytes()), &mut completed);
        }
        insert_nodes(&tx, &completed).map_err(backend)?;
        tx.commit().map_err(backend)?;
        if events.is_empty() {
            break;
        }
    }
    Ok(tree)
}

fn checkpoint(r: &Row<'_>) -> rusqlite::Result<TlogCheckpoint> {
    Ok(TlogCheckpoint {
        size: r.get::<_, i64>(0)? as u64,
        root: hash(r.get(1)?)?,
        note: r.get(2)?,
        created_at: Timestamp::from_micros(r.get(3)?),
    })
}

pub(super) fn insert_checkpoint(conn: &Connection, c: &TlogCheckpoint) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (size) DO NOTHING",
    )?
    .execute(params![c.size as i64, &c.root[..], c.note, c.created_at.micros()])?;
    Ok(())
}

pub(super) fn latest_checkpoint(conn: &Connection) -> rusqlite::Result<Option<TlogCheckpoint>> {
    conn.prepare_cached(
        "SELECT size, root, note, created_at FROM tlog_checkpoints ORDER BY size DESC LIMIT 1",
    )?
    .query_row([], checkpoint)
    .optional()
}

pub(super) fn recent_checkpoints(
    conn: &Connection,
    before: u64,
    limit: u32,
) -> rusqlite::Result<Vec<TlogCheckpoint>> {
    conn.prepare_cached(
        "SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size < ?1 ORDER BY size DESC LIMIT ?2",
    )?
    .query_map(params![i64::try_from(before).unwrap_or(i64::MAX), limit], checkpoint)?
    .collect()
}

pub(super) fn checkpoints(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<TlogCheckpoint>> {
    conn.prepare_cached(
        "SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size > ?1 ORDER BY size LIMIT ?2",
    )?
    .query_map(params![after as i64, limit], checkpoint)?
    .collect()
}
