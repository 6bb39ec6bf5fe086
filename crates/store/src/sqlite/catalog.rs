//! The catalogue on the embedded store: applied versions (each document whole) and the notices' texts,
//! each version of a notice (one text in one language) kept and named by its SHA-256.

use consentry_core::Timestamp;
use consentry_core::catalog::{CatalogDocument, notice_sha256};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::rows;
use crate::error::{Result, StoreError};
use crate::model::{NoticeVersion, StoredCatalog};
use crate::sql::{CATALOG_VERSION, CURRENT_CATALOG, NOTICE_COLUMNS};

/// Reads the current catalogue and its notices' current versions, one per notice and language, each
/// notice's own language first.
pub(super) fn current_catalog(conn: &Connection) -> rusqlite::Result<Option<StoredCatalog>> {
    let row = conn.query_row(CURRENT_CATALOG, [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
    });
    let (version, document, applied_at) = match row {
        Ok(row) => row,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
        Err(e) => return Err(e),
    };
    let document: CatalogDocument =
        serde_json::from_str(&document).map_err(|_| rows::conversion("stored catalogue does not parse"))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE key = ?1 AND language = ?2 AND imported = 0
         ORDER BY version DESC LIMIT 1"
    ))?;
    let mut notices = Vec::with_capacity(document.notices.len());
    for n in &document.notices {
        for t in n.texts(document.language()) {
            if let Some(v) = stmt.query_row([&n.key, t.language], rows::notice).optional()? {
                notices.push(v);
            }
        }
    }
    Ok(Some(StoredCatalog {
        version: version as u64,
        applied_at: Timestamp::from_micros(applied_at),
        document,
        notices,
    }))
}

pub(super) fn catalog_version(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    conn.query_row(CATALOG_VERSION, [], |r| r.get::<_, Option<i64>>(0)).map(|v| v.map(|v| v as u64))
}

/// The document of catalogue version `version`.
pub(super) fn catalog_document(conn: &Connection, version: u64) -> rusqlite::Result<Option<CatalogDocument>> {
    let found: Option<String> = conn
        .prepare_cached("SELECT document FROM catalogs WHERE version = ?1")?
        .query_row([version as i64], |r| r.get(0))
        .optional()?;
    found
        .map(|d| serde_json::from_str(&d).map_err(|_| rows::conversion("stored catalogue does not parse")))
        .transpose()
}

pub(super) fn notice_version(
    conn: &Connection,
    key: &str,
    version: u32,
) -> rusqlite::Result<Option<NoticeVersion>> {
    conn.prepare_cached(&format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE key = ?1 AND version = ?2"))?
        .query_row(params![key, version], rows::notice)
        .optional()
}

/// Stores `document` as the next version; a notice keeps its version in a language while its text in that
/// language is unchanged, and a new or changed text gets the notice's next version.
pub(super) fn apply_catalog(conn: &mut Connection, document: &CatalogDocument) -> Result<StoredCatalog> {
    let now = Timestamp::now().micros();
    let tx = conn.transaction().map_err(backend)?;
    for notice in &document.notices {
        for t in notice.texts(document.language()) {
            let sha = notice_sha256(t.text);
            let same: Option<String> = tx
                .query_row(
                    "SELECT sha256 FROM notices WHERE key = ?1 AND language = ?2 AND imported = 0
                     ORDER BY version DESC LIMIT 1",
                    [&notice.key, t.language],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if same.as_deref() == Some(sha.as_str()) {
                continue;
            }
            // Versions count per notice across its languages: each (key, version) is one text.
            tx.execute(
                "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at)
                 VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM notices WHERE key = ?1),
                         ?2, ?3, ?4, ?5, ?6, ?7)",
                params![notice.key, sha, t.title, t.language, notice.url, t.text, now],
            )
            .map_err(backend)?;
        }
    }
    let json = serde_json::to_string(document).map_err(|e| StoreError::Backend(e.to_string()))?;
    tx.execute(
        "INSERT INTO catalogs (version, document, applied_at)
         VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM catalogs), ?1, ?2)",
        params![json, now],
    )
    .map_err(backend)?;
    let stored = current_catalog(&tx).map_err(backend)?;
    tx.commit().map_err(backend)?;
    stored.ok_or_else(|| StoreError::Backend("catalogue vanished after insert".into()))
}

/// The version of notice `key` whose text is `text`: one already stored (the catalogue's or an earlier
/// import's), else a new version marked imported, which never becomes the notice's current one.
pub(super) fn import_notice(
    conn: &mut Connection,
    key: &str,
    language: &str,
    title: &str,
    text: &str,
) -> Result<NoticeVersion> {
    let sha = notice_sha256(text);
    let tx = conn.transaction().map_err(backend)?;
    let find = |tx: &Connection| {
        tx.prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE key = ?1 AND sha256 = ?2 ORDER BY version LIMIT 1"
        ))?
        .query_row(params![key, sha], rows::notice)
        .optional()
    };
    if let Some(found) = find(&tx).map_err(backend)? {
        return Ok(found);
    }
    tx.execute(
        "INSERT INTO notices (key, version, sha256, title, language, url, text, created_at, imported)
         VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM notices WHERE key = ?1), ?2, ?3, ?4, NULL, ?5, ?6, 1)",
        params![key, sha, title, language, text, Timestamp::now().micros()],
    )
    .map_err(backend)?;
    let stored = find(&tx).map_err(backend)?;
    tx.commit().map_err(backend)?;
    stored.ok_or_else(|| StoreError::Backend("notice vanished after insert".into()))
}
