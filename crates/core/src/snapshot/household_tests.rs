//! Tests of household devices' snapshots: each member decides as on their own device, and someone the
//! device does not recognise gets the most restrictive answer across the members (a property test).

use proptest::prelude::*;

use super::*;
use crate::Reason;
use crate::ledger::NewEvent;

const PURPOSES: [&str; 3] = ["analytics", "service.improvement", "marketing"];
const ACTIONS: [Action; 5] =
    [Action::Grant, Action::Withdraw, Action::Deny, Action::Object, Action::Restrict];
const CHANNELS: [Option<&str>; 3] = [None, Some("on_device"), Some("in_app")];

fn event(seq: u64, purpose: &str, action: Action, channel: Option<&str>) -> Event {
    Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: purpose.into(),
            action,
            scope: Scope::new(vec![], channel.into_iter().map(str::to_owned).collect(), vec![]),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: "key:k".into(),
            expires_at: None,
        },
        seq,
        "p".into(),
        Timestamp::from_micros(seq.cast_signed()),
        String::new(),
    )
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn input<'a>(catalog: &'a Catalog, categories: &'a [String], purposes: &'a [String]) -> SnapshotInput<'a> {
    SnapshotInput {
        device_id: "dev_1",
        subject: "user-1",
        categories,
        purposes,
        ledger_seq: 9,
        catalog,
        catalog_version: 1,
        statements: &[],
        jurisdiction: None,
        issued_at: Timestamp::from_micros(1_000_000_000_000),
        max_age_secs: 60,
    }
}

fn now() -> Timestamp {
    Timestamp::from_micros(2_000_000_000_000)
}

#[test]
fn a_household_snapshot_carries_members_under_handles_and_needs_version_3() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let (categories, purposes) = (strings(&["user.device.telemetry"]), strings(&["analytics"]));
    let ana = [event(1, "analytics", Action::Grant, None)];
    let ben = [event(2, "analytics", Action::Withdraw, None)];
    let members = [
        MemberInput { handle: "hm_a", statements: &ana, jurisdiction: None },
        MemberInput { handle: "hm_b", statements: &ben, jurisdiction: Some("US-CA") },
    ];
    let snap = ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &members);
    assert_eq!((snap.v, snap.household.as_deref(), snap.subject.as_str()), (3, Some("hh_1"), ""));
    assert!(snap.statements.is_empty() && snap.jurisdiction.is_none());
    let json = serde_json::to_string(&snap).expect("json");
    assert!(!json.contains("user-1"), "no subject id: members go by handle");
    assert_eq!(snap.catalog.jurisdictions.len(), 1, "each member's place travels");
    let rules = snap.rules().expect("rules");
    assert_eq!(rules.members(), ["hm_a", "hm_b"]);
    let (p, c) = ("analytics", "user.device.telemetry");
    assert!(rules.decide_member("hm_a", p, c, None, None, now()).allowed);
    assert_eq!(rules.decide_member("hm_b", p, c, None, None, now()).reason, Reason::Withdrawn);
    assert_eq!(
        rules.decide_member("hm_x", p, c, None, None, now()).reason,
        Reason::NoConsent,
        "not a member"
    );
    assert_eq!(rules.decide(p, c, None, now()).reason, Reason::Withdrawn, "unrecognised: most restrictive");
    assert!(snap.decisions.iter().all(|d| !d.allowed), "the listed answers are the household's");
    // A household snapshot claiming an older version (a reader of that version would skip `members`).
    let old = ConsentSnapshot { v: SNAPSHOT_VERSION, ..snap.clone() };
    assert_eq!(old.rules().map(|_| ()), Err(SnapshotError::Version(SNAPSHOT_VERSION)));
    // No members: nothing is allowed, whatever the basis.
    let empty = ConsentSnapshot::build_household(
        input(&catalog, &categories, &strings(&["service.improvement"])),
        "hh_2",
        &[],
    );
    let d = empty.rules().expect("rules").decide("service.improvement", c, None, now());
    assert_eq!((d.allowed, d.reason), (false, Reason::NoConsent));
    assert_ne!(
        snap.content_tag(),
        ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &members[..1])
            .content_tag()
    );
}

/// One member's statements: (purpose, action, channel) triples.
fn arb_member() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
    prop::collection::vec((0..PURPOSES.len(), 0..ACTIONS.len(), 0..CHANNELS.len()), 0..5)
}

proptest! {
    /// For someone unrecognised, a household's device allows exactly when every member allows (and there
    /// is one); for a recognised member it answers as that member's own device would.
    #[test]
    fn unrecognised_means_every_member_allows(
        members in prop::collection::vec(arb_member(), 0..4),
        p in 0..PURPOSES.len(),
        ch in 0..CHANNELS.len(),
    ) {
        let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
        let (categories, purposes) = (strings(&["user.device.telemetry"]), strings(&PURPOSES));
        let mut seq = 0;
        let events: Vec<Vec<Event>> = members
            .iter()
            .map(|lines| {
                lines
                    .iter()
                    .map(|&(p, a, c)| {
                        seq += 1;
                        event(seq, PURPOSES[p], ACTIONS[a], CHANNELS[c])
                    })
                    .collect()
            })
            .collect();
        let handles: Vec<String> = (0..events.len()).map(|i| format!("hm_{i}")).collect();
        let inputs: Vec<MemberInput<'_>> = events
            .iter()
            .zip(&handles)
            .map(|(e, h)| MemberInput { handle: h, statements: e, jurisdiction: None })
            .collect();
        let snap = ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &inputs);
        let rules = snap.rules().expect("rules");
        let (purpose, category, channel) = (PURPOSES[p], "user.device.telemetry", CHANNELS[ch]);
        let mut every = !handles.is_empty();
        for (h, e) in handles.iter().zip(&events) {
            let own = ConsentSnapshot::build(SnapshotInput { statements: e, ..input(&catalog, &categories, &purposes) });
            let expected = own.rules().expect("rules").decide(purpose, category, channel, now());
            let got = rules.decide_member(h, purpose, category, channel, None, now());
            prop_assert_eq!(got, expected);
            every &= got.allowed;
        }
        let anyone = rules.decide(purpose, category, channel, now());
        prop_assert_eq!(anyone.allowed, every);
    }
}
