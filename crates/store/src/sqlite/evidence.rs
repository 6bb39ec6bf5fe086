//! Evidence on the embedded store: the sealed evidence in `consentry.db` beside its event, the data key that
//! encrypts it in `keys.db`. Writes run on the writer, so an erasure or a link never interleaves; one that
//! ran between an import's events and their evidence made the subject an alias, and the evidence goes to
//! the survivor.

use async_trait::async_trait;
use consentry_core::SubjectId;
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::store::SqliteStore;
use super::vault::ensure_key;
use crate::error::Result;
use crate::evidence::{EvidenceStore, ImportedEvidence};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

type EvidenceRow = (i64, String, String, Vec<u8>, Vec<u8>, Vec<u8>);

const EVIDENCE_COLUMNS: &str = "SELECT v.seq, v.pseudonym, d.kek_id, d.wrapped, v.nonce, v.ciphertext
     FROM event_evidence v JOIN ks.subject_keys k ON k.pseudonym = v.pseudonym
     JOIN ks.subject_data_keys d ON d.subject = k.subject";

fn evidence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EvidenceRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn open_row(kek: &Kek, (seq, p, kek_id, wrapped, nonce, ciphertext): EvidenceRow) -> Result<(u64, Vec<u8>)> {
    let seq = seq as u64;
    let key = WrappedKey { kek_id, wrapped };
    Ok((seq, vault::open_evidence(kek, &key, &p, seq, &SealedPayload { nonce, ciphertext })?))
}

/// The events a subject's evidence may belong to: their own and those of every id linked into them (an
/// import's events written under an id that a link made an alias before its evidence was stored).
const OWNED_BY: &str = "SELECT pseudonym FROM ks.subject_keys
     WHERE subject = ?1 OR subject IN (SELECT subject FROM ks.subject_links WHERE survivor = ?1)";

/// Stores one subject's evidence, in one transaction, under the key of the subject it belongs to now: a
/// subject linked into another (a link that ran on the writer between an import's events and this write,
/// and re-sealed only what was stored) is its survivor, so the evidence is sealed under the survivor's
/// key and pseudonym, as the link re-sealed the rest, and never under a key made again for the alias.
fn put_subject(
    conn: &mut Connection,
    kek: &Kek,
    source: &str,
    subject: &str,
    items: Vec<ImportedEvidence>,
) -> Result<u64> {
    let owner = match super::linking::survivor_of(conn, subject)? {
        Some(survivor) => survivor.as_str().to_owned(),
        None => subject.to_owned(),
    };
    // Only a subject the ledger knows (an erased one has no pseudonym left to make a key for).
    let known: Option<String> = conn
        .query_row("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1", [&owner], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if known.is_none() {
        return Ok(0);
    }
    let (p, key) = ensure_key(conn, &owner, kek)?;
    let tx = conn.transaction().map_err(backend)?;
    let mut stored = 0;
    for item in items {
        let seq: Option<i64> = tx
            .prepare_cached(&format!(
                "SELECT i.seq FROM imported i JOIN events e ON e.seq = i.seq
                 WHERE i.source = ?2 AND i.source_id = ?3 AND e.evidence = ?4 AND e.pseudonym IN ({OWNED_BY})
                   AND NOT EXISTS (SELECT 1 FROM event_evidence v WHERE v.seq = i.seq)"
            ))
            .map_err(backend)?
            .query_row(params![owner, source, item.source_id, item.sha256], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        let Some(seq) = seq else { continue };
        let sealed = vault::seal_evidence(kek, &key, &p, seq as u64, &item.evidence)?;
        stored += tx
            .prepare_cached(
                "INSERT INTO event_evidence (seq, pseudonym, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (seq) DO NOTHING",
            )
            .map_err(backend)?
            .execute(params![seq, p, sealed.nonce, sealed.ciphertext])
            .map_err(backend)? as u64;
    }
    tx.commit().map_err(backend)?;
    Ok(stored)
}

#[async_trait]
impl EvidenceStore for SqliteStore {
    async fn put_imported_evidence(
        &self,
        kek: &Kek,
        source: &str,
        items: Vec<(SubjectId, Vec<ImportedEvidence>)>,
    ) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let (kek, source) = (kek.clone(), source.to_owned());
        self.write(move |conn| {
            let mut stored = 0;
            for (subject, items) in items {
                stored += put_subject(conn, &kek, &source, subject.as_str(), items)?;
            }
            Ok(stored)
        })
        .await
    }

    async fn evidence(&self, kek: &Kek, subject: &SubjectId, seq: u64) -> Result<Option<Vec<u8>>> {
        let lookup = subject.as_str().to_owned();
        let row = self
            .read(move |conn| {
                conn.prepare_cached(&format!("{EVIDENCE_COLUMNS} WHERE k.subject = ?1 AND v.seq = ?2"))?
                    .query_row(params![lookup, seq as i64], evidence_row)
                    .optional()
            })
            .await?;
        row.map(|row| open_row(kek, row).map(|(_, e)| e)).transpose()
    }

    async fn evidence_held(&self, subject: &SubjectId, seqs: Vec<u64>) -> Result<Vec<u64>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let lookup = subject.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 1 FROM event_evidence v JOIN ks.subject_keys k ON k.pseudonym = v.pseudonym
                 WHERE k.subject = ?1 AND v.seq = ?2",
            )?;
            let mut held = Vec::new();
            for seq in seqs {
                if stmt.query_row(params![lookup, seq as i64], |_| Ok(())).optional()?.is_some() {
                    held.push(seq);
                }
            }
            Ok(held)
        })
        .await
    }

    async fn evidence_between(&self, kek: &Kek, after: u64, upto: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let rows = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "{EVIDENCE_COLUMNS} WHERE v.seq > ?1 AND v.seq <= ?2 ORDER BY v.seq"
                ))?
                .query_map(params![after as i64, upto as i64], evidence_row)?
                .collect::<rusqlite::Result<Vec<EvidenceRow>>>()
            })
            .await?;
        rows.into_iter().map(|row| open_row(kek, row)).collect()
    }
}
