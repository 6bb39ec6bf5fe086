//! Device consent snapshots on the server: building and signing them, and telling whether a device's
//! copy is still fresh.

use consentry_core::snapshot::{ConsentSnapshot, MemberInput, SnapshotInput};
use consentry_core::{Event, SubjectId, Timestamp};

use crate::auth::{DeviceCaller, HouseholdDeviceCaller};
use crate::error::{Error, Result};
use crate::state::Services;

/// A device reading its own snapshot: one paired with a subject, or one paired with a household.
#[derive(Debug, Clone)]
pub enum SnapshotDevice {
    Subject(DeviceCaller),
    Household(HouseholdDeviceCaller),
}

impl SnapshotDevice {
    pub fn device_id(&self) -> &str {
        match self {
            SnapshotDevice::Subject(d) => &d.device_id,
            SnapshotDevice::Household(d) => &d.device_id,
        }
    }
}

/// A signed snapshot with its tags.
#[derive(Debug, Clone)]
pub struct SignedSnapshot {
    /// The compact JWS.
    pub jws: String,
    /// What the snapshot says, without its issue time ([`ConsentSnapshot::content_tag`]).
    pub tag: String,
    pub iat: i64,
}

impl SignedSnapshot {
    /// The HTTP entity tag: the content tag and the issue time, so a revalidation can tell both.
    pub fn etag(&self) -> String {
        format!("\"{}.{}\"", self.tag, self.iat)
    }
}

/// Builds and signs the current snapshot of a subject's or a household's device; with the subjects whose
/// changes it reflects (the household's members; the one subject).
pub async fn any_snapshot(
    state: &Services,
    device: &SnapshotDevice,
) -> Result<(SignedSnapshot, Vec<SubjectId>)> {
    match device {
        SnapshotDevice::Subject(d) => Ok((snapshot(state, d).await?, vec![d.subject.clone()])),
        SnapshotDevice::Household(d) => household_snapshot(state, d).await,
    }
}

/// Builds and signs the current snapshot of a household's device: each member's statements under their
/// handle (never their subject id); the members it reflects, too. Not found once the household is gone.
pub async fn household_snapshot(
    state: &Services,
    device: &HouseholdDeviceCaller,
) -> Result<(SignedSnapshot, Vec<SubjectId>)> {
    // The head first: the statements read after it reflect at least that position.
    let ledger_seq = state.store.ledger_head().await?.events;
    let household =
        state.store.household(&state.kek, &device.household).await?.ok_or(Error::NotFound("household"))?;
    let mut statements: Vec<Vec<Event>> = Vec::with_capacity(household.members.len());
    let mut places: Vec<Option<String>> = Vec::with_capacity(household.members.len());
    for m in &household.members {
        statements.push(state.store.current(&m.subject).await?);
        places.push(state.engine.subject_jurisdiction(m.subject.as_str()));
    }
    let members: Vec<MemberInput<'_>> = household
        .members
        .iter()
        .zip(statements.iter().zip(&places))
        .map(|(m, (s, j))| MemberInput {
            handle: &m.handle,
            statements: s,
            jurisdiction: j.as_deref(),
            // A known child's own grants must not count on the household's devices either.
            child_until: state.engine.child_until(m.subject.as_str()),
        })
        .collect();
    let view = state.catalog();
    let max_age = i64::try_from(state.config.device_snapshot_max_age_secs).unwrap_or(86_400);
    let input = SnapshotInput {
        device_id: &device.device_id,
        subject: "",
        categories: &device.categories,
        purposes: &device.purposes,
        ledger_seq,
        catalog: &view.catalog,
        catalog_version: view.stored.version,
        statements: &[],
        jurisdiction: None,
        child_until: None,
        issued_at: Timestamp::now(),
        max_age_secs: max_age,
    };
    let snapshot = ConsentSnapshot::build_household(input, &household.id, &members);
    let jws = state.signing.current().sign_jws(&snapshot);
    let subjects = household.members.iter().map(|m| m.subject.clone()).collect();
    Ok((SignedSnapshot { jws, tag: snapshot.content_tag(), iat: snapshot.iat }, subjects))
}

/// Builds and signs the current snapshot for `device`.
pub async fn snapshot(state: &Services, device: &DeviceCaller) -> Result<SignedSnapshot> {
    // The head first: the statements read after it reflect at least that position.
    let ledger_seq = state.store.ledger_head().await?.events;
    let statements = state.store.current(&device.subject).await?;
    let jurisdiction = state.engine.subject_jurisdiction(device.subject.as_str());
    let view = state.catalog();
    let max_age = i64::try_from(state.config.device_snapshot_max_age_secs).unwrap_or(86_400);
    let snapshot = ConsentSnapshot::build(SnapshotInput {
        device_id: &device.device_id,
        subject: device.subject.as_str(),
        categories: &device.categories,
        purposes: &device.purposes,
        ledger_seq,
        catalog: &view.catalog,
        catalog_version: view.stored.version,
        statements: &statements,
        jurisdiction: jurisdiction.as_deref(),
        child_until: state.engine.child_until(device.subject.as_str()),
        issued_at: Timestamp::now(),
        max_age_secs: max_age,
    });
    let jws = state.signing.current().sign_jws(&snapshot);
    Ok(SignedSnapshot { jws, tag: snapshot.content_tag(), iat: snapshot.iat })
}

/// The entity tag, among those of an `If-None-Match` header, of a snapshot the caller holds that is still
/// good: the same content as `current_tag`, issued less than half its lifetime (`max_age_secs`) ago, so a
/// device always renews well before `exp`.
pub(super) fn still_fresh(
    if_none_match: &str,
    current_tag: &str,
    max_age_secs: u64,
    now: Timestamp,
) -> Option<String> {
    let half_life = i64::try_from(max_age_secs / 2).unwrap_or(i64::MAX);
    let now = consentry_core::proof::unix_seconds(now);
    if_none_match.split(',').map(str::trim).find_map(|held| {
        let (tag, iat) = held.trim_start_matches("W/").trim_matches('"').rsplit_once('.')?;
        let iat = iat.parse::<i64>().ok()?;
        (tag == current_tag && iat <= now && now - iat < half_life).then(|| format!("\"{tag}.{iat}\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_snapshot_is_fresh_while_its_content_stands_and_for_half_its_life() {
        let now = Timestamp::from_micros(1_000_000 * 1_000_000);
        let fresh = |header: &str| still_fresh(header, "abc", 100, now);
        assert_eq!(fresh("\"abc.999990\"").as_deref(), Some("\"abc.999990\""));
        assert_eq!(
            fresh("W/\"x.999999\", \"abc.999951\"").as_deref(),
            Some("\"abc.999951\""),
            "one of a list"
        );
        assert_eq!(fresh("\"abc.999950\""), None, "half its lifetime has passed: renew");
        assert_eq!(fresh("\"abd.999999\""), None, "other content");
        assert_eq!(fresh("\"abc.1000001\""), None, "issued in the future");
        assert_eq!(fresh("*"), None);
        assert_eq!(fresh("\"abc\""), None);
        assert_eq!(fresh("\"abc.x\""), None);
    }
}
