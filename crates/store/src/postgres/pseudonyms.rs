//! Subjects' pseudonyms in the key store (`consentry_keystore.subject_keys`): looked up, or created with a
//! fresh random key, in the caller's transaction. The one look-up-or-create of the PostgreSQL backend.

use std::collections::{HashMap, HashSet};

use consentry_core::Timestamp;
use consentry_core::ledger::pseudonym;
use sqlx::PgConnection;

use super::error::db;
use crate::common::random_bytes;
use crate::error::Result;

/// The pseudonym of each subject, creating keys for new ones in the caller's transaction. Safe against
/// other transactions creating the same key meanwhile (appends on other nodes, access logging): a key
/// inserted concurrently wins and is read back.
pub(super) async fn pseudonyms_for(
    conn: &mut PgConnection,
    mut subjects: Vec<String>,
) -> Result<HashMap<String, String>> {
    subjects.sort_unstable();
    subjects.dedup();
    let find = "SELECT subject, pseudonym FROM consentry_keystore.subject_keys WHERE subject = ANY($1)";
    let found: Vec<(String, String)> =
        sqlx::query_as(find).bind(&subjects).fetch_all(&mut *conn).await.map_err(db)?;
    let mut map: HashMap<String, String> = found.into_iter().collect();
    let (mut ns, mut np, mut nk) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        if map.contains_key(&s) {
            continue;
        }
        let key: [u8; 32] = random_bytes()?;
        np.push(pseudonym(&key, &s));
        ns.push(s);
        nk.push(key.to_vec());
    }
    if !ns.is_empty() {
        // Sorted subjects, so concurrent inserts take their locks in one order.
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO consentry_keystore.subject_keys (subject, pseudonym, pseudonym_key, created_at)
             SELECT s, p, k, $4 FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS t(s, p, k)
             ON CONFLICT (subject) DO NOTHING RETURNING subject",
        )
        .bind(&ns)
        .bind(&np)
        .bind(nk)
        .bind(Timestamp::now().micros())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        let mut raced = Vec::new();
        for (s, p) in ns.into_iter().zip(np) {
            if inserted.contains(&s) {
                map.insert(s, p);
            } else {
                raced.push(s);
            }
        }
        if !raced.is_empty() {
            let found: Vec<(String, String)> =
                sqlx::query_as(find).bind(&raced).fetch_all(&mut *conn).await.map_err(db)?;
            map.extend(found);
        }
    }
    Ok(map)
}

/// The key of the subject's pseudonym, when it has one.
pub(super) async fn pseudonym_key(pool: &sqlx::PgPool, subject: &str) -> Result<Option<[u8; 32]>> {
    let key: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT pseudonym_key FROM consentry_keystore.subject_keys WHERE subject = $1")
            .bind(subject)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    Ok(key.and_then(|k| k.try_into().ok()))
}
