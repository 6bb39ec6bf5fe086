//! Children and their guardians (GDPR Art. 8): what is known of a subject's age, the guardians recorded
//! for a child, and the rule for a known child's consent changes.
//!
//! A subject's age is a birth date or an age band ([`age`]), stored encrypted under their data key and
//! held by the engine as an assumed birth date, so that whether they are a child is decided at each check
//! from the check's time and the age of digital consent of their place (16 where none is set): a child
//! comes of age without any write. A guardian is another subject, recorded by a service key with the
//! SHA-256 of the evidence the brand holds; a guardian may not be the child, a known child, or anyone
//! the child is (directly or further up) a guardian of.
//!
//! A known child's consent changes made by the child alone (their own token, a service key without a
//! guardian actor, a signal) are refused with 403 `guardian_required` when they grant or renew a
//! consent purpose; withdrawals and objections are always taken. A guardian's changes carry the actor
//! `guardian:<their pseudonym>` ([`writes::guardian_actor`]), never their subject id.

pub mod age;
pub mod writes;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::guardians::{GuardianAdded, GuardianLink};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::error::{Error, Result};
use crate::state::Services;

/// Longest evidence accepted, as compact JSON.
const MAX_EVIDENCE_BYTES: usize = 4096;

/// A guardian to record for a child.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianIn {
    /// The guardian's subject id (someone the service knows: 404 otherwise).
    #[schema(min_length = 1, max_length = 128, example = "parent-17")]
    pub guardian: String,
    /// What shows that they are the child's guardian (a JSON object, at most 4 KiB): only its SHA-256
    /// is kept, so the brand can later show which evidence the relation rests on.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<serde_json::Value>,
}

/// One guardian relation.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuardianOut {
    pub child: String,
    pub guardian: String,
    /// `sha256:<hex>` of the evidence's canonical JSON (keys sorted, no spaces), when evidence was given.
    pub evidence: Option<String>,
    pub created_at: String,
}

impl From<GuardianLink> for GuardianOut {
    fn from(l: GuardianLink) -> Self {
        GuardianOut {
            child: l.child.as_str().to_owned(),
            guardian: l.guardian.as_str().to_owned(),
            evidence: l.evidence_sha256.map(|h| format!("sha256:{}", hex::encode(h))),
            created_at: l.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GuardianList {
    pub guardians: Vec<GuardianOut>,
}

/// `value` with every object's keys sorted, written without spaces: one byte string per JSON value.
fn canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // A string always serialises.
                out.extend(serde_json::to_vec(k).unwrap_or_default());
                out.push(b':');
                canonical(&map[k], out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// The SHA-256 of the evidence's canonical JSON; 422 naming `evidence` for anything but a small object.
pub fn evidence_hash(evidence: &serde_json::Value) -> Result<[u8; 32]> {
    if !evidence.is_object() {
        return Err(Error::validation("evidence", "must be a JSON object"));
    }
    let mut bytes = Vec::new();
    canonical(evidence, &mut bytes);
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(Error::validation(
            "evidence",
            format!("must be at most {MAX_EVIDENCE_BYTES} bytes as JSON"),
        ));
    }
    Ok(Sha256::digest(&bytes).into())
}

/// Records `body.guardian` as a guardian of `child`. Returns the relation and whether it is new. The
/// cycle check is the store's, in the write that adds the relation ([`GuardianAdded::Cycle`]).
pub async fn add(state: &Services, child: &SubjectId, body: GuardianIn) -> Result<(GuardianOut, bool)> {
    let guardian = SubjectId::new(body.guardian)
        .map_err(|e| Error::validation("guardian", format!("not a subject id: {e}")))?;
    if state.erasures.is_erased(child.as_str()) || state.erasures.is_erased(guardian.as_str()) {
        return Err(Error::SubjectErased);
    }
    if &guardian == child {
        return Err(Error::validation("guardian", "a child cannot be their own guardian"));
    }
    let evidence = body.evidence.as_ref().map(evidence_hash).transpose()?;
    if state.engine.is_child(guardian.as_str(), Timestamp::now()) {
        return Err(Error::validation("guardian", "the guardian is a known child"));
    }
    let link = GuardianLink {
        child: child.clone(),
        guardian: guardian.clone(),
        evidence_sha256: evidence,
        created_at: Timestamp::now(),
    };
    match state.store.add_guardian(link.clone()).await? {
        GuardianAdded::Added => Ok((link.into(), true)),
        GuardianAdded::Existing => {
            let stored = state.store.guardians(child).await?.into_iter().find(|l| l.guardian == guardian);
            Ok((stored.unwrap_or(link).into(), false))
        }
        GuardianAdded::UnknownChild => Err(Error::NotFound("subject")),
        GuardianAdded::UnknownGuardian => Err(Error::NotFound("guardian")),
        // Checked in the store's write, so two relations added at once cannot form a cycle together.
        GuardianAdded::Cycle => Err(Error::validation(
            "guardian",
            "the child is (directly or further up) the guardian's guardian",
        )),
    }
}

/// The guardians of `child`, oldest first; the read is in the child's access log.
pub async fn list(state: &Services, child: &SubjectId, reader: Reader<'_>) -> Result<GuardianList> {
    let guardians = state.store.guardians(child).await?;
    reader.log(&state.access, child);
    Ok(GuardianList { guardians: guardians.into_iter().map(GuardianOut::from).collect() })
}

/// Removes `guardian` from `child`'s guardians; 404 when they were none. Grants they made stay in the
/// ledger, and keep counting for the child: a guardian's consent given while they were one stands
/// until someone withdraws it.
pub async fn remove(state: &Services, child: &SubjectId, guardian: &str) -> Result<()> {
    let guardian = SubjectId::new(guardian).map_err(|_| Error::NotFound("guardian"))?;
    if state.store.remove_guardian(child, &guardian).await? {
        Ok(())
    } else {
        Err(Error::NotFound("guardian"))
    }
}

/// Whether `guardian` is a recorded guardian of `child`.
pub async fn is_guardian(state: &Services, child: &SubjectId, guardian: &SubjectId) -> Result<bool> {
    Ok(state.store.guardians(child).await?.iter().any(|l| &l.guardian == guardian))
}

/// The children `guardian` is a recorded guardian of, oldest first.
pub async fn children(state: &Services, guardian: &SubjectId) -> Result<Vec<SubjectId>> {
    Ok(state.store.children(guardian).await?.into_iter().map(|l| l.child).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_hashes_its_canonical_form() {
        let a = serde_json::json!({"method": "id_card", "checked": {"by": "desk", "at": 1}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "checked": {"at": 1, "by": "desk"}, "method": "id_card" }"#)
                .expect("json");
        assert_eq!(evidence_hash(&a).ok(), evidence_hash(&b).ok());
        let mut bytes = Vec::new();
        canonical(&a, &mut bytes);
        assert_eq!(bytes, br#"{"checked":{"at":1,"by":"desk"},"method":"id_card"}"#);
        assert!(evidence_hash(&serde_json::json!("text")).is_err());
        let big = serde_json::json!({"x": "y".repeat(5000)});
        assert_eq!(evidence_hash(&big).map_err(|e| e.code()).err(), Some("validation_failed"));
    }
}
