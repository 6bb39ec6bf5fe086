//! Linking subjects on the embedded store, the part inside the writer's transaction (`writer.rs`): inside
//! the group's transaction it reads both records' statements in force, lets the caller's merge pick the
//! survivor's events, and once they are placed moves `from`'s rows here (identifiers, records and
//! evidence re-sealed under the survivor's data key, made when missing), forgets `from`'s current state
//! and data key, and stores the alias. Every append first asks [`survivor_of`]: an alias takes no writes.

use consentry_core::{NewEvent, SubjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::backend;
use super::jobs::LinkJob;
use super::{ledger, rows};
use crate::error::{Result, StoreError};
use crate::links::{LinkRead, LinkRefusal, MovedSubject};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

/// The survivor `subject` is an alias of, if it is one.
pub(super) fn survivor_of(conn: &Connection, subject: &str) -> Result<Option<SubjectId>> {
    let found: Option<String> = conn
        .prepare_cached("SELECT survivor FROM ks.subject_links WHERE subject = ?1")
        .map_err(backend)?
        .query_row([subject], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    found.map(|s| rows::subject(s).map_err(backend)).transpose()
}

/// Inside the group's transaction: refuses the link, or reads both records and returns `from`'s pseudonym
/// and the events the merge picks for the survivor `into` (which is no alias: its append checked).
pub(super) fn prepare(
    conn: &Connection,
    into: &str,
    link: &mut LinkJob,
) -> Result<std::result::Result<(String, Vec<NewEvent>), LinkRefusal>> {
    let from = link.from.as_str();
    if from == into {
        return Ok(Err(LinkRefusal::Same));
    }
    let p_from: Option<String> = conn
        .prepare_cached("SELECT pseudonym FROM ks.subject_keys WHERE subject = ?1")
        .map_err(backend)?
        .query_row([from], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    let Some(p_from) = p_from else { return Ok(Err(LinkRefusal::FromUnknown)) };
    if survivor_of(conn, from)?.is_some() {
        return Ok(Err(LinkRefusal::FromLinked));
    }
    let ours = ledger::current(conn, into).map_err(backend)?;
    let theirs = ledger::current(conn, from).map_err(backend)?;
    let merge = link.merge.take().ok_or_else(|| StoreError::Backend("a link merges once".into()))?;
    let events =
        crate::links::run_merge(merge, LinkRead { into: &ours, from: &theirs, from_pseudonym: &p_from })?;
    Ok(Ok((p_from, events)))
}

type Sealed = Vec<(String, Vec<u8>, Vec<u8>)>;

fn sealed_rows(conn: &Connection, sql: &str, p: &str) -> Result<Sealed> {
    let mut stmt = conn.prepare(sql).map_err(backend)?;
    let rows = stmt.query_map([p], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(backend)?;
    rows.collect::<rusqlite::Result<Sealed>>().map_err(backend)
}

fn data_key(conn: &Connection, subject: &str) -> Result<Option<WrappedKey>> {
    conn.query_row("SELECT kek_id, wrapped FROM ks.subject_data_keys WHERE subject = ?1", [subject], |r| {
        Ok(WrappedKey { kek_id: r.get(0)?, wrapped: r.get(1)? })
    })
    .optional()
    .map_err(backend)
}

/// Inside the group's transaction, after the carried events were placed: moves what `from` (pseudonym
/// `p_from`) has to `into` (pseudonym `p_into`) and stores the alias.
pub(super) fn move_rows(
    conn: &Connection,
    kek: &Kek,
    (from, p_from): (&str, &str),
    (into, p_into): (&str, &str),
    at: Timestamp,
) -> Result<MovedSubject> {
    let mut moved = MovedSubject::default();
    if let Some(key_from) = data_key(conn, from)? {
        let key_into = match data_key(conn, into)? {
            Some(key) => key,
            None => {
                let key = WrappedKey::generate(kek, p_into)?;
                conn.execute(
                    "INSERT INTO ks.subject_data_keys (subject, kek_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![into, key.kek_id, key.wrapped, at.micros()],
                )
                .map_err(backend)?;
                key
            }
        };
        let ids =
            sealed_rows(conn, "SELECT id, nonce, ciphertext FROM identifiers WHERE pseudonym = ?1", p_from)?;
        for (id, nonce, ciphertext) in ids {
            let plain =
                vault::open_identifier(kek, &key_from, p_from, &id, &SealedPayload { nonce, ciphertext })?;
            let sealed = vault::seal_identifier(kek, &key_into, p_into, &id, &plain)?;
            conn.execute(
                "UPDATE identifiers SET pseudonym = ?2, nonce = ?3, ciphertext = ?4 WHERE id = ?1",
                params![id, p_into, sealed.nonce, sealed.ciphertext],
            )
            .map_err(backend)?;
            moved.identifiers += 1;
        }
        let records =
            sealed_rows(conn, "SELECT id, nonce, ciphertext FROM records WHERE pseudonym = ?1", p_from)?;
        for (id, nonce, ciphertext) in records {
            let plain =
                vault::open_payload(kek, &key_from, p_from, &id, &SealedPayload { nonce, ciphertext })?;
            let sealed = vault::seal_payload(kek, &key_into, p_into, &id, &plain)?;
            conn.execute(
                "UPDATE records SET pseudonym = ?2, nonce = ?3, ciphertext = ?4 WHERE id = ?1",
                params![id, p_into, sealed.nonce, sealed.ciphertext],
            )
            .map_err(backend)?;
            moved.records += 1;
        }
        let evidence = sealed_rows(
            conn,
            "SELECT CAST(seq AS TEXT), nonce, ciphertext FROM event_evidence WHERE pseudonym = ?1",
            p_from,
        )?;
        for (seq, nonce, ciphertext) in evidence {
            let seq: u64 = seq.parse().map_err(|_| StoreError::Backend("an evidence row's seq".into()))?;
            let plain =
                vault::open_evidence(kek, &key_from, p_from, seq, &SealedPayload { nonce, ciphertext })?;
            let sealed = vault::seal_evidence(kek, &key_into, p_into, seq, &plain)?;
            conn.execute(
                "UPDATE event_evidence SET pseudonym = ?2, nonce = ?3, ciphertext = ?4 WHERE seq = ?1",
                params![seq as i64, p_into, sealed.nonce, sealed.ciphertext],
            )
            .map_err(backend)?;
        }
        // Nothing is sealed under it any more; a record of `from` still on its way is refused.
        conn.execute("DELETE FROM ks.subject_data_keys WHERE subject = ?1", [from]).map_err(backend)?;
    }
    moved.devices = conn
        .prepare("UPDATE devices SET pseudonym = ?2 WHERE pseudonym = ?1 RETURNING id")
        .map_err(backend)?
        .query_map([p_from, p_into], |r| r.get(0))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(backend)?;
    moved.requests = conn
        .execute("UPDATE requests SET pseudonym = ?2 WHERE pseudonym = ?1", [p_from, p_into])
        .map_err(backend)? as u64;
    // `from`'s statements answer no check under its own id any more.
    conn.execute("DELETE FROM consent_state WHERE pseudonym = ?1", [p_from]).map_err(backend)?;
    moved.aliases = conn
        .prepare("UPDATE ks.subject_links SET survivor = ?2 WHERE survivor = ?1 RETURNING subject")
        .map_err(backend)?
        .query_map([from, into], |r| rows::subject(r.get(0)?))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<SubjectId>>>()
        .map_err(backend)?;
    conn.execute(
        "INSERT INTO ks.subject_links (subject, survivor, linked_at) VALUES (?1, ?2, ?3)",
        params![from, into, at.micros()],
    )
    .map_err(backend)?;
    Ok(moved)
}
