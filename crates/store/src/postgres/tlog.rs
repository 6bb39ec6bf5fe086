//! The ledger's Merkle tree on PostgreSQL: its complete subtrees above the leaves (`tlog_nodes`), written
//! in each append's transaction under the ledger lock (which is also what makes the frontier read there
//! current), built for a ledger that predates the tree when the store opens, and the signed checkpoints of
//! the tree. A leaf is not stored: it is the hash of its event's canonical bytes, read from the ledger.

use consentry_core::Timestamp;
use consentry_core::merkle::{Frontier, Hash, NodeId, leaf_hash};
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Row};

use super::error::db;
use super::locks::{self, LEDGER_LOCK};
use super::rows;
use crate::error::{Result, StoreError};
use crate::model::TlogCheckpoint;
use crate::recent::RecentNodes;
use crate::sql::{EVENT_COLUMNS, LEDGER_HEAD};

/// Events read per transaction when building the tree of an existing ledger.
const CATCH_UP_PAGE: i64 = 10_000;

fn hash(bytes: Vec<u8>) -> Result<Hash> {
    bytes.try_into().map_err(|_| rows::corrupt("a tree hash is not 32 bytes"))
}

/// The nodes among `ids` the tree has: a leaf from its event (leaf i is event i + 1), any other from
/// `tlog_nodes`.
pub(super) async fn nodes(conn: &mut PgConnection, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
    let (leaves, inner): (Vec<&NodeId>, Vec<&NodeId>) = ids.iter().partition(|id| id.level == 0);
    let levels: Vec<i16> = inner.iter().map(|id| i16::from(id.level)).collect();
    let indexes: Vec<i64> = inner.iter().map(|id| id.index as i64).collect();
    let found = sqlx::query(
        "SELECT n.level, n.idx, n.hash FROM tlog_nodes n
         JOIN UNNEST($1::smallint[], $2::bigint[]) AS w (level, idx) ON n.level = w.level AND n.idx = w.idx",
    )
    .bind(levels)
    .bind(indexes)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut nodes = found
        .iter()
        .map(|r| {
            let level: i16 = r.try_get(0).map_err(db)?;
            let index: i64 = r.try_get(1).map_err(db)?;
            Ok((NodeId::new(level as u8, index as u64), hash(r.try_get(2).map_err(db)?)?))
        })
        .collect::<Result<Vec<_>>>()?;
    if leaves.is_empty() {
        return Ok(nodes);
    }
    let seqs: Vec<i64> = leaves.iter().filter_map(|id| i64::try_from(id.index + 1).ok()).collect();
    let events =
        sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq = ANY($1) ORDER BY e.seq"))
            .bind(seqs)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    for row in &events {
        let e = rows::event(row)?;
        nodes.push((NodeId::new(0, e.seq - 1), leaf_hash(&e.canonical_bytes())));
    }
    Ok(nodes)
}

/// Inserts the nodes above the leaves completed by an append, in the caller's transaction.
pub(super) async fn insert_nodes(conn: &mut PgConnection, nodes: &[(NodeId, Hash)]) -> Result<()> {
    let nodes: Vec<&(NodeId, Hash)> = nodes.iter().filter(|(id, _)| id.level > 0).collect();
    if nodes.is_empty() {
        return Ok(());
    }
    let levels: Vec<i16> = nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
    let indexes: Vec<i64> = nodes.iter().map(|(id, _)| id.index as i64).collect();
    let hashes: Vec<Vec<u8>> = nodes.iter().map(|(_, h)| h.to_vec()).collect();
    sqlx::query(
        "INSERT INTO tlog_nodes (level, idx, hash)
         SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])",
    )
    .bind(levels)
    .bind(indexes)
    .bind(hashes)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The tree's frontier at `size` leaves (the ledger's length, read under the ledger lock): the nodes this
/// node committed lately from `recent`, the others read.
pub(super) async fn frontier(
    conn: &mut PgConnection,
    size: u64,
    recent: Option<&RecentNodes>,
) -> Result<Frontier> {
    let ids = Frontier::ids(size);
    let (mut found, missing) = match recent {
        Some(recent) => recent.split(&ids),
        None => (Vec::new(), ids),
    };
    if !missing.is_empty() {
        found.extend(nodes(&mut *conn, &missing).await?);
    }
    Frontier::from_nodes(size, &found)
        .ok_or_else(|| StoreError::Backend("the Merkle tree lacks a node of its frontier".into()))
}

/// Adds the leaves of every event the tree does not hold yet (a ledger written before the tree existed),
/// a page per transaction under the ledger lock, so nodes starting together build it once.
pub(super) async fn catch_up(pool: &PgPool) -> Result<()> {
    loop {
        let mut tx = pool.begin().await.map_err(db)?;
        locks::lock(&mut tx, LEDGER_LOCK).await?;
        // The tree holds the leaves under its last node of level 1 (an odd last leaf completes no stored
        // node, and is taken again).
        let size: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) * 2 FROM tlog_nodes WHERE level = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let head: Option<(i64, String)> =
            sqlx::query_as(LEDGER_HEAD).fetch_optional(&mut *tx).await.map_err(db)?;
        let Some(head) = head.map(|(seq, _)| seq as u64).filter(|&seq| seq > size as u64) else {
            tx.commit().await.map_err(db)?;
            return Ok(());
        };
        let mut tree = frontier(&mut tx, size as u64, None).await?;
        let found = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
        ))
        .bind(size)
        .bind(CATCH_UP_PAGE)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut completed = Vec::new();
        for row in &found {
            let e = rows::event(row)?;
            if e.seq != tree.size() + 1 {
                return Err(StoreError::Backend("the ledger has a gap; its tree cannot be built".into()));
            }
            tree.append(leaf_hash(&e.canonical_bytes()), &mut completed);
        }
        insert_nodes(&mut tx, &completed).await?;
        tx.commit().await.map_err(db)?;
        // Done at the ledger's head (whose odd last leaf the next count leaves out again).
        if found.is_empty() || tree.size() >= head {
            return Ok(());
        }
    }
}

fn checkpoint(r: &sqlx::postgres::PgRow) -> Result<TlogCheckpoint> {
    Ok(TlogCheckpoint {
        size: r.try_get::<i64, _>(0).map_err(db)? as u64,
        root: hash(r.try_get(1).map_err(db)?)?,
        note: r.try_get(2).map_err(db)?,
        created_at: Timestamp::from_micros(r.try_get(3).map_err(db)?),
    })
}

pub(super) async fn insert_checkpoint(pool: &PgPool, c: &TlogCheckpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(c.size as i64)
    .bind(c.root.to_vec())
    .bind(&c.note)
    .bind(c.created_at.micros())
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn latest_checkpoint(pool: &PgPool) -> Result<Option<TlogCheckpoint>> {
    let row =
        sqlx::query("SELECT size, root, note, created_at FROM tlog_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    row.as_ref().map(checkpoint).transpose()
}

pub(super) async fn recent_checkpoints(
    pool: &PgPool,
    before: u64,
    limit: u32,
) -> Result<Vec<TlogCheckpoint>> {
    let found = sqlx::query(
        "SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size < $1 ORDER BY size DESC LIMIT $2",
    )
    .bind(i64::try_from(before).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(checkpoint).collect()
}

pub(super) async fn checkpoints(pool: &PgPool, after: u64, limit: u32) -> Result<Vec<TlogCheckpoint>> {
    let found = sqlx::query(
        "SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
    )
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    found.iter().map(checkpoint).collect()
}
