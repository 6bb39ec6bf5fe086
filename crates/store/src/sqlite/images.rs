//! Engine images on the embedded store: the newest image of the decision engine's state, in parts, and
//! the pseudonyms that name its entries.

use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, params};

use super::db::backend;
use crate::common::{IMAGE_PART, image_id};
use crate::error::Result;

/// Writes the image whole and deletes every one that covers no more, in one transaction.
pub(super) fn save(conn: &mut Connection, covers: u64, image: &[u8]) -> Result<()> {
    let id = image_id()?;
    let tx = conn.transaction().map_err(backend)?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO engine_images (id, covers, part, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend)?;
        let now = Timestamp::now().micros();
        for (part, data) in image.chunks(IMAGE_PART).enumerate() {
            insert.execute(params![id, covers as i64, part as i64, data, now]).map_err(backend)?;
        }
    }
    // A newer image stays; this one goes when it is older than one already stored.
    tx.execute("DELETE FROM engine_images WHERE id <> ?1 AND covers <= ?2", params![id, covers as i64])
        .map_err(backend)?;
    tx.execute(
        "DELETE FROM engine_images WHERE id = ?1 AND EXISTS (SELECT 1 FROM engine_images WHERE covers > ?2)",
        params![id, covers as i64],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// The newest image (by position covered, then time written), its parts joined.
pub(super) fn latest(conn: &Connection) -> rusqlite::Result<Option<(u64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT covers, data FROM engine_images
         WHERE id = (SELECT id FROM engine_images ORDER BY covers DESC, created_at DESC LIMIT 1)
         ORDER BY part",
    )?;
    let mut rows = stmt.query([])?;
    let mut found: Option<(u64, Vec<u8>)> = None;
    while let Some(row) = rows.next()? {
        let covers = row.get::<_, i64>(0)? as u64;
        let data: Vec<u8> = row.get(1)?;
        found.get_or_insert_with(|| (covers, Vec::new())).1.extend_from_slice(&data);
    }
    Ok(found)
}

pub(super) fn pseudonym_page(
    conn: &Connection,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<(String, SubjectId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pseudonym, subject FROM ks.subject_keys WHERE pseudonym > ?1 ORDER BY pseudonym LIMIT ?2",
    )?;
    stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, super::rows::subject(r.get(1)?)?)))?.collect()
}
