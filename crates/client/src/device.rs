//! Offline consent on a device: verify the signed snapshot the server issues (`GET /v1/device/consent`,
//! the SSE stream, or the retained MQTT message) against the server's JWKS, then decide locally.
//!
//! The decisions run on `consentry_core`'s decision engine, loaded with the snapshot's statements and
//! catalogue slice: the same code the server decides with. Once the snapshot is past its `exp`, every
//! answer is a denial. Pure: no network, no clock other than [`Timestamp::now`] (the `_at` methods take
//! the time), so it builds without the `http` feature.
//!
//! ```
//! # fn demo(jws: &str, jwks: &consentry_core::proof::Jwks) -> Result<(), consentry_client::device::DeviceConsentError> {
//! use consentry_client::DeviceConsent;
//!
//! let consent = DeviceConsent::verify_for_device_at(jws, jwks, "dev_…", consentry_core::Timestamp::now())?;
//! if consent.allowed("analytics", "user.device.telemetry", "on_device") {
//!     // send the diagnostics
//! }
//! # Ok(()) }
//! ```

use consentry_core::proof::{Jwks, JwsError, JwsKind, verify_jws_kind};
use consentry_core::snapshot::{ConsentSnapshot, SnapshotError, SnapshotRules};
use consentry_core::{Decision, Reason, Timestamp};

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceConsentError {
    /// Not signed by a key of the JWKS, not a well-formed JWS, or a genuine JWS of another kind (its `typ`
    /// header is not `device-snapshot+jwt`).
    #[error(transparent)]
    Signature(#[from] JwsError),
    /// Signed, but not a consent snapshot.
    #[error("the signed payload is not a device consent snapshot: {0}")]
    Payload(String),
    /// Past its `exp` (seconds since the Unix epoch).
    #[error("the snapshot expired at {exp}")]
    Expired { exp: i64 },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Genuine, but issued for another device (and so, maybe, another person).
    #[error("the snapshot is for another device")]
    OtherDevice,
    /// Genuine, but older than the snapshot already held: a replay would bring back a withdrawn consent.
    #[error("the snapshot reflects ledger position {got}, older than the {held} already held")]
    Older { held: u64, got: u64 },
}

/// A verified device consent snapshot, ready to answer offline.
#[derive(Debug)]
pub struct DeviceConsent {
    snapshot: ConsentSnapshot,
    rules: SnapshotRules,
}

impl DeviceConsent {
    /// Verifies `jws` against `jwks` and refuses it if it has already expired.
    pub fn verify(jws: &str, jwks: &Jwks) -> Result<Self, DeviceConsentError> {
        Self::verify_at(jws, jwks, Timestamp::now())
    }

    /// [`DeviceConsent::verify`] at time `now`.
    pub fn verify_at(jws: &str, jwks: &Jwks, now: Timestamp) -> Result<Self, DeviceConsentError> {
        let (_, payload) = verify_jws_kind(jws, jwks, JwsKind::DeviceSnapshot)?;
        let snapshot: ConsentSnapshot =
            serde_json::from_slice(&payload).map_err(|e| DeviceConsentError::Payload(e.to_string()))?;
        if is_past(snapshot.exp, now) {
            return Err(DeviceConsentError::Expired { exp: snapshot.exp });
        }
        let rules = snapshot.rules()?;
        Ok(Self { snapshot, rules })
    }

    /// [`DeviceConsent::verify_at`], and refused unless it was issued for `device_id` (the id the device got
    /// at pairing). A device should always verify this way: a genuine snapshot of another device answers
    /// for that device's person.
    pub fn verify_for_device_at(
        jws: &str,
        jwks: &Jwks,
        device_id: &str,
        now: Timestamp,
    ) -> Result<Self, DeviceConsentError> {
        let consent = Self::verify_at(jws, jwks, now)?;
        if consent.snapshot.device_id != device_id {
            return Err(DeviceConsentError::OtherDevice);
        }
        Ok(consent)
    }

    /// Takes `newer` in place of the held snapshot, unless it is for another device or reflects an older
    /// ledger position (an old snapshot replayed, e.g. by a broker, must not bring back a withdrawn
    /// consent). `newer` must already be verified.
    pub fn replace_with(&mut self, newer: DeviceConsent) -> Result<(), DeviceConsentError> {
        if newer.snapshot.device_id != self.snapshot.device_id {
            return Err(DeviceConsentError::OtherDevice);
        }
        if newer.snapshot.ledger_seq < self.snapshot.ledger_seq {
            return Err(DeviceConsentError::Older {
                held: self.snapshot.ledger_seq,
                got: newer.snapshot.ledger_seq,
            });
        }
        *self = newer;
        Ok(())
    }

    /// Whether the device may use `category` for `purpose` through `channel`, now.
    pub fn allowed(&self, purpose: &str, category: &str, channel: &str) -> bool {
        self.decide_at(purpose, category, Some(channel), Timestamp::now()).allowed
    }

    /// The decision for `purpose`, `category` and `channel` (`None`: every channel the purpose uses) at
    /// `now`, with its reason: `expired` once the snapshot is past its `exp`, `not_covered` outside what
    /// the device declared.
    pub fn decide_at(
        &self,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        self.decide_for_at(purpose, category, channel, None, now)
    }

    /// [`DeviceConsent::decide_at`] for a use by `recipient` too (`None`: every recipient the purpose has),
    /// the question `POST /v1/check` answers. On a household's device, for someone it did not recognise:
    /// the most restrictive answer across the members (an empty household allows nothing). Allocates nothing, and takes `&self` only: many threads may
    /// decide on one snapshot at once.
    pub fn decide_for_at(
        &self,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        if self.is_expired_at(now) {
            return Decision::new(Reason::Expired, None);
        }
        self.rules.decide_for(purpose, category, channel, recipient, now)
    }

    /// On a household's device: whether the member it recognised (by the `handle` the household gave
    /// them) lets it use `category` for `purpose` through `channel`, now. Someone who is not a member is
    /// allowed nothing. For someone the device does not recognise, ask [`DeviceConsent::allowed`]: on a
    /// household's snapshot it answers for every member at once (allowed only when each allows).
    pub fn check_for(&self, member: &str, purpose: &str, category: &str, channel: &str) -> bool {
        self.decide_member_at(member, purpose, category, Some(channel), None, Timestamp::now()).allowed
    }

    /// [`DeviceConsent::check_for`] with its reason, at `now`, for a use by `recipient` too (`None`: every
    /// recipient the purpose has): `expired` past the snapshot's `exp`, `no_consent` for someone who is not
    /// a member (or on a subject's device, which has no members).
    pub fn decide_member_at(
        &self,
        member: &str,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        if self.is_expired_at(now) {
            return Decision::new(Reason::Expired, None);
        }
        self.rules.decide_member(member, purpose, category, channel, recipient, now)
    }

    /// The members' handles on a household's device; empty on a subject's.
    pub fn members(&self) -> &[String] {
        self.rules.members()
    }

    /// Whether the snapshot is past its `exp` at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        is_past(self.snapshot.exp, now)
    }

    /// The verified payload: device, subject, ledger position, statements, the server's decisions.
    pub fn snapshot(&self) -> &ConsentSnapshot {
        &self.snapshot
    }
}

fn is_past(exp: i64, now: Timestamp) -> bool {
    consentry_core::proof::unix_seconds(now) >= exp
}

#[cfg(test)]
mod tests {
    use consentry_core::catalog::{Catalog, CatalogDocument};
    use consentry_core::ledger::NewEvent;
    use consentry_core::proof::SigningKey;
    use consentry_core::snapshot::SnapshotInput;
    use consentry_core::{Action, Event, Scope};

    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_secret_with_thumbprint_kid([byte; 32])
    }

    fn jwks(key: &SigningKey) -> Jwks {
        Jwks { keys: vec![key.public_jwk()] }
    }

    fn grant(seq: u64, purpose: &str, action: Action, channels: &[&str]) -> Event {
        Event::place(
            NewEvent {
                evidence: None,
                occurred_at: None,
                jurisdiction: None,
                purpose: purpose.into(),
                action,
                scope: Scope::new(vec![], channels.iter().map(|c| (*c).to_owned()).collect(), vec![]),
                notice: None,
                notice_version: None,
                notice_hash: None,
                collection_point: None,
                actor: "key:k".into(),
                expires_at: None,
            },
            seq,
            "p".into(),
            Timestamp::from_micros(0),
            String::new(),
        )
    }

    fn snapshot(statements: &[Event]) -> ConsentSnapshot {
        snapshot_of("dev_1", 2, statements)
    }

    fn snapshot_of(device_id: &str, ledger_seq: u64, statements: &[Event]) -> ConsentSnapshot {
        let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
        ConsentSnapshot::build(SnapshotInput {
            device_id,
            subject: "user-1",
            categories: &["user.device.telemetry".to_owned()],
            purposes: &["analytics".to_owned()],
            ledger_seq,
            catalog: &catalog,
            catalog_version: 1,
            statements,
            jurisdiction: None,
            child_until: None,
            issued_at: Timestamp::from_micros(NOW),
            max_age_secs: 3600,
        })
    }

    fn at(seconds_after: i64) -> Timestamp {
        Timestamp::from_micros(NOW + seconds_after * 1_000_000)
    }

    #[test]
    fn a_good_snapshot_answers_offline() {
        let k = key(1);
        let jws = k.sign_jws(&snapshot(&[grant(1, "analytics", Action::Grant, &["on_device"])]));
        let consent = DeviceConsent::verify_at(&jws, &jwks(&k), at(0)).expect("verifies");
        assert_eq!(consent.snapshot().device_id, "dev_1");
        assert!(consent.decide_at("analytics", "user.device.telemetry", Some("on_device"), at(10)).allowed);
        let in_app = consent.decide_at("analytics", "user.device.telemetry", Some("in_app"), at(10));
        assert!(!in_app.allowed, "the grant names on_device only");
        let undeclared = consent.decide_at("marketing", "user.contact.email", Some("email"), at(10));
        assert_eq!((undeclared.allowed, undeclared.reason), (false, Reason::NotCovered));
        // The withdrawal in a later snapshot takes it away.
        let jws = k.sign_jws(&snapshot(&[
            grant(1, "analytics", Action::Grant, &["on_device"]),
            grant(2, "analytics", Action::Withdraw, &[]),
        ]));
        let consent = DeviceConsent::verify_at(&jws, &jwks(&k), at(0)).expect("verifies");
        let d = consent.decide_at("analytics", "user.device.telemetry", Some("on_device"), at(10));
        assert_eq!((d.allowed, d.reason), (false, Reason::Withdrawn));
    }

    #[test]
    fn an_expired_snapshot_is_refused_and_denies() {
        let k = key(1);
        let jws = k.sign_jws(&snapshot(&[grant(1, "analytics", Action::Grant, &[])]));
        let err = DeviceConsent::verify_at(&jws, &jwks(&k), at(3600)).expect_err("expired");
        assert_eq!(err, DeviceConsentError::Expired { exp: at(3600).micros() / 1_000_000 });
        // Verified while fresh, then held past exp: every answer is a denial.
        let consent = DeviceConsent::verify_at(&jws, &jwks(&k), at(0)).expect("fresh");
        assert!(consent.decide_at("analytics", "user.device.telemetry", Some("on_device"), at(3599)).allowed);
        let late = consent.decide_at("analytics", "user.device.telemetry", Some("on_device"), at(3600));
        assert_eq!((late.allowed, late.reason), (false, Reason::Expired));
        assert!(consent.is_expired_at(at(3600)));
    }

    #[test]
    fn a_forged_snapshot_is_refused() {
        let k = key(1);
        let denied = k.sign_jws(&snapshot(&[grant(1, "analytics", Action::Withdraw, &[])]));
        // Swap in a payload that grants, keeping the header and signature.
        let granted = k.sign_jws(&snapshot(&[grant(1, "analytics", Action::Grant, &[])]));
        let parts: Vec<&str> = denied.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], granted.split('.').nth(1).expect("payload"), parts[2]);
        let err = DeviceConsent::verify_at(&forged, &jwks(&k), at(0)).expect_err("forged");
        assert_eq!(err, DeviceConsentError::Signature(JwsError::BadSignature));
        // A signed payload that is not a snapshot.
        let other = k.sign_jws_as(JwsKind::DeviceSnapshot, &serde_json::json!({"events": 3, "head": "ab"}));
        assert!(matches!(
            DeviceConsent::verify_at(&other, &jwks(&k), at(0)),
            Err(DeviceConsentError::Payload(_))
        ));
        assert!(matches!(
            DeviceConsent::verify_at("a.b", &jwks(&k), at(0)),
            Err(DeviceConsentError::Signature(_))
        ));
    }

    #[test]
    fn only_a_jws_of_the_snapshot_kind_is_a_snapshot() {
        let k = key(1);
        let granted = snapshot(&[grant(1, "analytics", Action::Grant, &[])]);
        let payload = serde_json::to_vec(&granted).expect("json");
        // The very payload of a snapshot, genuinely signed, but as another kind or in the old form with
        // no kind: the server never issued it as a snapshot.
        for typ in [JwsKind::Receipt.typ(), JwsKind::Checkpoint.typ(), JwsKind::SubjectToken.typ(), "JWT"] {
            let jws = k.sign_jws_bytes(typ, &payload);
            let err = DeviceConsent::verify_at(&jws, &jwks(&k), at(0)).expect_err(typ);
            assert!(matches!(err, DeviceConsentError::Signature(JwsError::WrongKind { .. })), "{typ}: {err}");
        }
        // A genuine receipt presented as a snapshot.
        let receipt = k.sign_jws_as(JwsKind::Receipt, &serde_json::json!({"receipt_id": "rcpt_1"}));
        let err = DeviceConsent::verify_at(&receipt, &jwks(&k), at(0)).expect_err("a receipt");
        assert!(matches!(err, DeviceConsentError::Signature(JwsError::WrongKind { .. })), "{err}");
        assert!(DeviceConsent::verify_at(&k.sign_jws(&granted), &jwks(&k), at(0)).is_ok());
    }

    /// A household's device decides for the member it recognised, and for anyone else by what every
    /// member allows; past `exp`, nothing.
    #[test]
    fn a_household_device_decides_per_member_and_for_anyone() {
        use consentry_core::snapshot::MemberInput;
        let k = key(1);
        let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
        let ana = [grant(1, "analytics", Action::Grant, &["on_device"])];
        let ben = [grant(2, "analytics", Action::Withdraw, &[])];
        let input = SnapshotInput {
            device_id: "dev_1",
            subject: "",
            categories: &["user.device.telemetry".to_owned()],
            purposes: &["analytics".to_owned()],
            ledger_seq: 2,
            catalog: &catalog,
            catalog_version: 1,
            statements: &[],
            jurisdiction: None,
            child_until: None,
            issued_at: Timestamp::from_micros(NOW),
            max_age_secs: 3600,
        };
        let members = [
            MemberInput { handle: "hm_a", statements: &ana, jurisdiction: None, child_until: None },
            MemberInput { handle: "hm_b", statements: &ben, jurisdiction: None, child_until: None },
        ];
        let jws = k.sign_jws(&ConsentSnapshot::build_household(input, "hh_1", &members));
        let consent = DeviceConsent::verify_for_device_at(&jws, &jwks(&k), "dev_1", at(0)).expect("verifies");
        assert_eq!(consent.members(), ["hm_a", "hm_b"]);
        let (p, c) = ("analytics", "user.device.telemetry");
        assert!(consent.decide_member_at("hm_a", p, c, Some("on_device"), None, at(1)).allowed);
        let ben = consent.decide_member_at("hm_b", p, c, Some("on_device"), None, at(1));
        assert_eq!((ben.allowed, ben.reason), (false, Reason::Withdrawn));
        let stranger = consent.decide_member_at("user-1", p, c, Some("on_device"), None, at(1));
        assert_eq!((stranger.allowed, stranger.reason), (false, Reason::NoConsent));
        let anyone = consent.decide_at(p, c, Some("on_device"), at(1));
        assert_eq!((anyone.allowed, anyone.reason), (false, Reason::Withdrawn), "the most restrictive");
        let late = consent.decide_member_at("hm_a", p, c, Some("on_device"), None, at(3600));
        assert_eq!((late.allowed, late.reason), (false, Reason::Expired));
        // With ben gone, anyone gets ana's answer.
        let jws = k.sign_jws(&ConsentSnapshot::build_household(input, "hh_1", &members[..1]));
        let consent = DeviceConsent::verify_for_device_at(&jws, &jwks(&k), "dev_1", at(0)).expect("verifies");
        assert!(consent.decide_at(p, c, Some("on_device"), at(1)).allowed);
    }

    /// A genuine snapshot of a version this client does not know (a newer server's, whose fields it might
    /// misread) is refused, so the device decides nothing from it: with no snapshot it denies.
    #[test]
    fn a_newer_version_is_refused() {
        let k = key(1);
        let granted = snapshot(&[grant(1, "analytics", Action::Grant, &[])]);
        let newer =
            ConsentSnapshot { v: consentry_core::snapshot::SNAPSHOT_VERSION_MAX + 1, ..granted.clone() };
        let err = DeviceConsent::verify_at(&k.sign_jws(&newer), &jwks(&k), at(0)).expect_err("newer");
        assert_eq!(err, DeviceConsentError::Snapshot(SnapshotError::Version(newer.v)));
        assert!(DeviceConsent::verify_at(&k.sign_jws(&granted), &jwks(&k), at(0)).is_ok());
    }

    #[test]
    fn a_snapshot_signed_with_another_key_is_refused() {
        let (server, attacker) = (key(1), key(2));
        let jws = attacker.sign_jws(&snapshot(&[grant(1, "analytics", Action::Grant, &[])]));
        let err = DeviceConsent::verify_at(&jws, &jwks(&server), at(0)).expect_err("wrong key");
        assert!(matches!(err, DeviceConsentError::Signature(JwsError::UnknownKid(_))), "{err}");
        // The attacker reusing the server's kid: the signature does not verify under the server's key.
        let impostor = SigningKey::from_secret(server.kid(), [2; 32]);
        let jws = impostor.sign_jws(&snapshot(&[grant(1, "analytics", Action::Grant, &[])]));
        let err = DeviceConsent::verify_at(&jws, &jwks(&server), at(0)).expect_err("wrong key");
        assert_eq!(err, DeviceConsentError::Signature(JwsError::BadSignature));
    }

    #[test]
    fn another_devices_or_an_older_snapshot_is_refused() {
        let k = key(1);
        let granted = [grant(1, "analytics", Action::Grant, &[])];
        let withdrawn =
            [grant(1, "analytics", Action::Grant, &[]), grant(2, "analytics", Action::Withdraw, &[])];
        let theirs = k.sign_jws(&snapshot_of("dev_2", 1, &granted));
        let err =
            DeviceConsent::verify_for_device_at(&theirs, &jwks(&k), "dev_1", at(0)).expect_err("theirs");
        assert_eq!(err, DeviceConsentError::OtherDevice);
        let old = k.sign_jws(&snapshot_of("dev_1", 1, &granted));
        let new = k.sign_jws(&snapshot_of("dev_1", 2, &withdrawn));
        let mut held = DeviceConsent::verify_for_device_at(&new, &jwks(&k), "dev_1", at(0)).expect("mine");
        // The old snapshot, replayed: genuine and unexpired, but it would bring the grant back.
        let replayed = DeviceConsent::verify_for_device_at(&old, &jwks(&k), "dev_1", at(1)).expect("genuine");
        assert_eq!(held.replace_with(replayed), Err(DeviceConsentError::Older { held: 2, got: 1 }));
        assert!(!held.decide_at("analytics", "user.device.telemetry", Some("on_device"), at(2)).allowed);
        let other = DeviceConsent::verify_at(&theirs, &jwks(&k), at(1)).expect("genuine");
        assert_eq!(held.replace_with(other), Err(DeviceConsentError::OtherDevice));
        let same = DeviceConsent::verify_for_device_at(&new, &jwks(&k), "dev_1", at(1)).expect("mine");
        assert_eq!(held.replace_with(same), Ok(()));
    }
}
