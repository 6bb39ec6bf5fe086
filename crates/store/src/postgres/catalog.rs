//! The catalogue on PostgreSQL: applied versions (each document whole) and the notices' texts, each
//! version of a notice (one text in one language) kept and named by its SHA-256. Applies are serialised across nodes by a lock.

use consentry_core::Timestamp;
use consentry_core::catalog::{CatalogDocument, notice_sha256};
use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use super::error::db;
use super::locks::{self, CATALOG_LOCK};
use super::rows;
use crate::error::{Result, StoreError};
use crate::model::{NoticeVersion, StoredCatalog};
use crate::sql::{CATALOG_VERSION, CURRENT_CATALOG, NOTICE_COLUMNS};

/// Reads the current catalogue and its notices' current versions, in the document's order.
pub(super) async fn current_catalog(conn: &mut PgConnection) -> Result<Option<StoredCatalog>> {
    let row: Option<(i64, String, i64)> =
        sqlx::query_as(CURRENT_CATALOG).fetch_optional(&mut *conn).await.map_err(db)?;
    let Some((version, document, applied_at)) = row else { return Ok(None) };
    let document: CatalogDocument =
        serde_json::from_str(&document).map_err(|_| rows::corrupt("catalogue"))?;
    // One text per notice and language, in the document's order (each notice's own language first).
    let wanted: Vec<(String, String)> = document
        .notices
        .iter()
        .flat_map(|n| {
            n.texts(document.language()).into_iter().map(|t| (n.key.clone(), t.language.to_owned()))
        })
        .collect();
    let keys: Vec<String> = wanted.iter().map(|(k, _)| k.clone()).collect();
    let languages: Vec<String> = wanted.iter().map(|(_, l)| l.clone()).collect();
    let found = sqlx::query(&format!(
        "SELECT DISTINCT ON (key, language) {NOTICE_COLUMNS} FROM notices
         WHERE (key, language) IN (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])) AND NOT imported
         ORDER BY key, language, version DESC"
    ))
    .bind(&keys)
    .bind(&languages)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut latest: Vec<NoticeVersion> = found.iter().map(rows::notice).collect::<Result<_>>()?;
    latest.sort_by_key(|n| wanted.iter().position(|(k, l)| *k == n.key && *l == n.language));
    Ok(Some(StoredCatalog {
        version: version as u64,
        applied_at: Timestamp::from_micros(applied_at),
        document,
        notices: latest,
    }))
}

pub(super) async fn catalog_version(pool: &PgPool) -> Result<Option<u64>> {
    let v: Option<i64> = sqlx::query_scalar(CATALOG_VERSION).fetch_one(pool).await.map_err(db)?;
    Ok(v.map(|v| v as u64))
}

/// The document of catalogue version `version`.
pub(super) async fn catalog_document(pool: &PgPool, version: u64) -> Result<Option<CatalogDocument>> {
    let found: Option<String> = sqlx::query_scalar("SELECT document FROM catalogs WHERE version = $1")
        .bind(version as i64)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    found.map(|d| serde_json::from_str(&d).map_err(|_| rows::corrupt("catalogue"))).transpose()
}

pub(super) async fn notice_version(pool: &PgPool, key: &str, version: u32) -> Result<Option<NoticeVersion>> {
    let row = sqlx::query(&format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE key = $1 AND version = $2"))
        .bind(key)
        .bind(version as i32)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(rows::notice).transpose()
}

/// Stores `document` as the next version; a notice keeps its version in a language while its text in that
/// language is unchanged, and a new or changed text gets the notice's next version.
pub(super) async fn apply_catalog(pool: &PgPool, document: &CatalogDocument) -> Result<StoredCatalog> {
    let now = Timestamp::now().micros();
    let mut tx = pool.begin().await.map_err(db)?;
    // Serialise catalogue applies across nodes, like ledger appends.
    locks::lock(&mut tx, CATALOG_LOCK).await?;
    for notice in &document.notices {
        for t in notice.texts(document.language()) {
            let sha = notice_sha256(t.text);
            let same: Option<String> = sqlx::query_scalar(
                "SELECT sha256 FROM notices WHERE key = $1 AND language = $2 AND NOT imported
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(&notice.key)
            .bind(t.language)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if same.as_deref() == Some(sha.as_str()) {
                continue;
            }
            // Versions count per notice across its languages: each (key, version) is one text.
            sqlx::query(
                "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at)
                 VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM notices WHERE key = $1),
                         $2, $3, $4, $5, $6, $7)",
            )
            .bind(&notice.key)
            .bind(&sha)
            .bind(t.title)
            .bind(t.language)
            .bind(&notice.url)
            .bind(t.text)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
    }
    let json = serde_json::to_string(document).map_err(|e| StoreError::Backend(e.to_string()))?;
    sqlx::query(
        "INSERT INTO catalogs (version, document, applied_at)
         VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM catalogs), $1, $2)",
    )
    .bind(json)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let stored = current_catalog(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    stored.ok_or_else(|| StoreError::Backend("catalogue vanished after insert".into()))
}

/// The version of notice `key` whose text is `text`: one already stored (the catalogue's or an earlier
/// import's), else a new version marked imported, which never becomes the notice's current one. Under the
/// catalogue lock, so versions stay unique across nodes.
pub(super) async fn import_notice(
    pool: &PgPool,
    key: &str,
    language: &str,
    title: &str,
    text: &str,
) -> Result<NoticeVersion> {
    let sha = notice_sha256(text);
    let mut tx = pool.begin().await.map_err(db)?;
    locks::lock(&mut tx, CATALOG_LOCK).await?;
    let find = format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE key = $1 AND sha256 = $2 ORDER BY version LIMIT 1"
    );
    let found = sqlx::query(&find).bind(key).bind(&sha).fetch_optional(&mut *tx).await.map_err(db)?;
    if let Some(row) = found {
        return rows::notice(&row);
    }
    sqlx::query(
        "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at, imported)
         VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM notices WHERE key = $1), $2, $3, $4, NULL, $5,
                 $6, true)",
    )
    .bind(key)
    .bind(&sha)
    .bind(title)
    .bind(language)
    .bind(text)
    .bind(Timestamp::now().micros())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let row = sqlx::query(&find).bind(key).bind(&sha).fetch_one(&mut *tx).await.map_err(db)?;
    let stored = rows::notice(&row)?;
    tx.commit().await.map_err(db)?;
    Ok(stored)
}
