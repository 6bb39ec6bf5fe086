//! Linking subjects on PostgreSQL, the part under the ledger lock. The link is an append job of the writer
//! (`writer.rs`), committed in a group of its own under the ledger lock, which every append of every node takes: inside it the link
//! reads both records' statements in force, lets the caller's merge pick the survivor's events, and once
//! they are placed moves `from`'s rows (identifiers and records re-sealed under the survivor's data key,
//! made when missing), forgets `from`'s current state and data key, and stores the alias. Every group first
//! asks [`survivors`]: an alias takes no writes.

use std::collections::HashMap;

use consentry_core::{NewEvent, SubjectId, Timestamp};
use sqlx::PgConnection;

use super::error::db;
use super::ledger;
use crate::error::{Result, StoreError};
use crate::links::{LinkMerge, LinkRead, LinkRefusal, LinkSlot, MovedSubject};
use crate::vault::{self, Kek, SealedPayload, WrappedKey};

/// A link of `from` into an append's subject; its outcome is left in `slot`.
pub(super) struct LinkJob {
    pub from: SubjectId,
    pub kek: Kek,
    pub merge: Option<LinkMerge>,
    pub slot: LinkSlot,
}

fn subject_of(text: String) -> Result<SubjectId> {
    SubjectId::new(text).map_err(|_| StoreError::Backend("stored data does not decode: subject id".into()))
}

/// The survivor of each of `subjects` that is an alias.
pub(super) async fn survivors(
    conn: &mut PgConnection,
    subjects: &[SubjectId],
) -> Result<HashMap<String, SubjectId>> {
    let ids: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT subject, survivor FROM consentry_keystore.subject_links WHERE subject = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.into_iter().map(|(a, b)| Ok((a, subject_of(b)?))).collect()
}

/// Under the ledger lock: refuses the link, or reads both records and returns `from`'s pseudonym and the
/// events the merge picks for the survivor `into` (which is no alias: its append checked).
pub(super) async fn prepare(
    conn: &mut PgConnection,
    into: &SubjectId,
    link: &mut LinkJob,
) -> Result<std::result::Result<(String, Vec<NewEvent>), LinkRefusal>> {
    if link.from == *into {
        return Ok(Err(LinkRefusal::Same));
    }
    // Held until the commit: an erasure of `from` waits for the link.
    let p_from: Option<String> = sqlx::query_scalar(
        "SELECT pseudonym FROM consentry_keystore.subject_keys WHERE subject = $1 FOR UPDATE",
    )
    .bind(link.from.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(p_from) = p_from else { return Ok(Err(LinkRefusal::FromUnknown)) };
    if !survivors(conn, std::slice::from_ref(&link.from)).await?.is_empty() {
        return Ok(Err(LinkRefusal::FromLinked));
    }
    let ours = ledger::current(&mut *conn, into).await?;
    let theirs = ledger::current(&mut *conn, &link.from).await?;
    let merge = link.merge.take().ok_or_else(|| StoreError::Backend("a link merges once".into()))?;
    let events =
        crate::links::run_merge(merge, LinkRead { into: &ours, from: &theirs, from_pseudonym: &p_from })?;
    Ok(Ok((p_from, events)))
}

async fn data_key(conn: &mut PgConnection, subject: &str) -> Result<Option<WrappedKey>> {
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT kek_id, wrapped FROM consentry_keystore.subject_data_keys WHERE subject = $1 FOR UPDATE",
    )
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    Ok(row.map(|(kek_id, wrapped)| WrappedKey { kek_id, wrapped }))
}

/// Re-seals the rows of `table` (`identifiers` or `records`) of `p_from` under `p_into`'s key.
async fn reseal(
    conn: &mut PgConnection,
    kek: &Kek,
    table: &str,
    (key_from, p_from): (&WrappedKey, &str),
    (key_into, p_into): (&WrappedKey, &str),
) -> Result<u64> {
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as(&format!("SELECT id, nonce, ciphertext FROM {table} WHERE pseudonym = $1 FOR UPDATE"))
            .bind(p_from)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    let mut moved = 0;
    for (id, nonce, ciphertext) in rows {
        let sealed_from = SealedPayload { nonce, ciphertext };
        let sealed = if table == "identifiers" {
            let plain = vault::open_identifier(kek, key_from, p_from, &id, &sealed_from)?;
            vault::seal_identifier(kek, key_into, p_into, &id, &plain)?
        } else {
            let plain = vault::open_payload(kek, key_from, p_from, &id, &sealed_from)?;
            vault::seal_payload(kek, key_into, p_into, &id, &plain)?
        };
        sqlx::query(&format!("UPDATE {table} SET pseudonym = $2, nonce = $3, ciphertext = $4 WHERE id = $1"))
            .bind(&id)
            .bind(p_into)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        moved += 1;
    }
    Ok(moved)
}

/// Re-seals the evidence of `p_from`'s events under `p_into`'s key (each stays bound to its event).
async fn reseal_evidence(
    conn: &mut PgConnection,
    kek: &Kek,
    (key_from, p_from): (&WrappedKey, &str),
    (key_into, p_into): (&WrappedKey, &str),
) -> Result<()> {
    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT seq, nonce, ciphertext FROM event_evidence WHERE pseudonym = $1 FOR UPDATE")
            .bind(p_from)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
    for (seq, nonce, ciphertext) in rows {
        let plain =
            vault::open_evidence(kek, key_from, p_from, seq as u64, &SealedPayload { nonce, ciphertext })?;
        let sealed = vault::seal_evidence(kek, key_into, p_into, seq as u64, &plain)?;
        sqlx::query("UPDATE event_evidence SET pseudonym = $2, nonce = $3, ciphertext = $4 WHERE seq = $1")
            .bind(seq)
            .bind(p_into)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Under the ledger lock, after the carried events were placed: moves what `from` (pseudonym `p_from`)
/// has to `into` (pseudonym `p_into`) and stores the alias.
pub(super) async fn move_rows(
    conn: &mut PgConnection,
    kek: &Kek,
    (from, p_from): (&str, &str),
    (into, p_into): (&str, &str),
    at: Timestamp,
) -> Result<MovedSubject> {
    let mut moved = MovedSubject::default();
    if let Some(key_from) = data_key(conn, from).await? {
        let key_into = match data_key(conn, into).await? {
            Some(key) => key,
            None => {
                let key = WrappedKey::generate(kek, p_into)?;
                sqlx::query(
                    "INSERT INTO consentry_keystore.subject_data_keys (subject, kek_id, wrapped, created_at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(into)
                .bind(&key.kek_id)
                .bind(&key.wrapped)
                .bind(at.micros())
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                key
            }
        };
        let (f, i) = ((&key_from, p_from), (&key_into, p_into));
        moved.identifiers = reseal(conn, kek, "identifiers", f, i).await?;
        moved.records = reseal(conn, kek, "records", f, i).await?;
        reseal_evidence(conn, kek, f, i).await?;
        // Nothing is sealed under it any more.
        sqlx::query("DELETE FROM consentry_keystore.subject_data_keys WHERE subject = $1")
            .bind(from)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    moved.devices = sqlx::query_scalar("UPDATE devices SET pseudonym = $2 WHERE pseudonym = $1 RETURNING id")
        .bind(p_from)
        .bind(p_into)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    moved.requests = sqlx::query("UPDATE requests SET pseudonym = $2 WHERE pseudonym = $1")
        .bind(p_from)
        .bind(p_into)
        .execute(&mut *conn)
        .await
        .map_err(db)?
        .rows_affected();
    // `from`'s statements answer no check under its own id any more.
    sqlx::query("DELETE FROM consent_state WHERE pseudonym = $1")
        .bind(p_from)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let aliases: Vec<String> = sqlx::query_scalar(
        "UPDATE consentry_keystore.subject_links SET survivor = $2 WHERE survivor = $1 RETURNING subject",
    )
    .bind(from)
    .bind(into)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    moved.aliases = aliases.into_iter().map(subject_of).collect::<Result<_>>()?;
    sqlx::query(
        "INSERT INTO consentry_keystore.subject_links (subject, survivor, linked_at) VALUES ($1, $2, $3)",
    )
    .bind(from)
    .bind(into)
    .bind(at.micros())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(moved)
}
