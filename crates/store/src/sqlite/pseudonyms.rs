//! Subjects' pseudonyms in the key store: looked up, or created with a fresh random key, for one subject
//! or for a whole group commit. The one look-up-or-create of the embedded store.

use std::collections::HashMap;

use consentry_core::ledger::pseudonym;
use consentry_core::{SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use crate::common::random_bytes;
use crate::error::Result;

/// The subject's pseudonym, creating its key in the key store when it has none. Outside a transaction the
/// key is committed on its own, before anything that uses it (as appends do), so a crash can leave an
/// unused key but never a row whose pseudonym has no key.
pub(super) fn pseudonym_for(conn: &Connection, subject: &str) -> Result<String> {
    let found: Option<String> = conn
        .prepare_cached("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1")
        .map_err(backend)?
        .query_row([subject], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if let Some(p) = found {
        return Ok(p);
    }
    let key: [u8; 32] = random_bytes()?;
    let p = pseudonym(&key, subject);
    conn.prepare_cached(
        "INSERT INTO ks.subject_keys (subject, pseudonym, pseudonym_key, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(backend)?
    .execute(params![subject, p, &key[..], Timestamp::now().micros()])
    .map_err(backend)?;
    Ok(p)
}

/// The pseudonym of each subject (by subject id), creating keys for new ones and committing them in one
/// transaction of their own, before the group that uses them.
pub(super) fn pseudonyms<'a>(
    conn: &mut Connection,
    subjects: impl IntoIterator<Item = &'a SubjectId>,
) -> Result<HashMap<String, String>> {
    let tx = conn.transaction().map_err(backend)?;
    let mut found: HashMap<String, String> = HashMap::new();
    for subject in subjects {
        let subject = subject.as_str();
        if !found.contains_key(subject) {
            found.insert(subject.to_owned(), pseudonym_for(&tx, subject)?);
        }
    }
    tx.commit().map_err(backend)?;
    Ok(found)
}

/// The key of the subject's pseudonym, when it has one.
pub(super) fn pseudonym_key(conn: &Connection, subject: &str) -> rusqlite::Result<Option<[u8; 32]>> {
    let key: Option<Vec<u8>> = conn
        .prepare_cached("SELECT pseudonym_key FROM ks.subject_keys WHERE subject = ?1")?
        .query_row([subject], |r| r.get(0))
        .optional()?;
    Ok(key.and_then(|k| k.try_into().ok()))
}
