//! Engine images on PostgreSQL: the newest image of the decision engine's state, in parts, and the
//! pseudonyms that name its entries. Any node may write one; the newest wins.

use consentry_core::{SubjectId, Timestamp};
use sqlx::postgres::PgPool;

use super::error::db;
use crate::common::{IMAGE_PART, image_id};
use crate::error::{Result, StoreError};

/// Writes the image whole and deletes every one that covers no more, in one transaction.
pub(super) async fn save(pool: &PgPool, covers: u64, image: &[u8]) -> Result<()> {
    let id = image_id()?;
    let now = Timestamp::now().micros();
    let mut tx = pool.begin().await.map_err(db)?;
    for (part, data) in image.chunks(IMAGE_PART).enumerate() {
        sqlx::query(
            "INSERT INTO engine_images (id, covers, part, data, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(covers as i64)
        .bind(part as i32)
        .bind(data)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    // Another node's newer image stays; this one goes when it is older than one already stored.
    sqlx::query("DELETE FROM engine_images WHERE id <> $1 AND covers <= $2")
        .bind(&id)
        .bind(covers as i64)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "DELETE FROM engine_images WHERE id = $1 AND EXISTS (SELECT 1 FROM engine_images WHERE covers > $2)",
    )
    .bind(&id)
    .bind(covers as i64)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// The newest image (by position covered, then time written), its parts joined; one statement, so a
/// concurrent save never shows half of it.
pub(super) async fn latest(pool: &PgPool) -> Result<Option<(u64, Vec<u8>)>> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT covers, data FROM engine_images
         WHERE id = (SELECT id FROM engine_images ORDER BY covers DESC, created_at DESC, id LIMIT 1)
         ORDER BY part",
    )
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let Some(&(covers, _)) = rows.first() else { return Ok(None) };
    let mut bytes = Vec::with_capacity(rows.iter().map(|(_, d)| d.len()).sum());
    for (_, data) in rows {
        bytes.extend_from_slice(&data);
    }
    Ok(Some((covers as u64, bytes)))
}

pub(super) async fn pseudonym_page(
    pool: &PgPool,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, SubjectId)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT pseudonym, subject FROM consentry_keystore.subject_keys
         WHERE pseudonym > $1 ORDER BY pseudonym LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(p, s)| {
            let s = SubjectId::new(s).map_err(|e| StoreError::Backend(format!("stored subject id: {e}")))?;
            Ok((p, s))
        })
        .collect()
}
