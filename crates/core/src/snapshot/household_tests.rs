//! Tests of household devices' snapshots: each member decides as on their own device, and someone the
//! device does not recognise gets the most restrictive answer across the members (a property test).

use proptest::prelude::*;

use super::*;
use crate::Reason;
use crate::ledger::NewEvent;

const PURPOSES: [&str; 4] = ["analytics", "service.improvement", "marketing", "third_party"];
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
        child_until: None,
        issued_at: Timestamp::from_micros(1_000_000_000_000),
        max_age_secs: 60,
    }
}

fn now() -> Timestamp {
    Timestamp::from_micros(2_000_000_000_000)
}

#[test]
fn a_household_snapshot_carries_members_under_handles_and_needs_version_4() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let (categories, purposes) = (strings(&["user.device.telemetry"]), strings(&["analytics"]));
    let ana = [event(1, "analytics", Action::Grant, None)];
    let ben = [event(2, "analytics", Action::Withdraw, None)];
    let members = [
        MemberInput { handle: "hm_a", statements: &ana, jurisdiction: None, child_until: None },
        MemberInput { handle: "hm_b", statements: &ben, jurisdiction: Some("US-CA"), child_until: None },
    ];
    let snap = ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &members);
    assert_eq!(
        (snap.v, snap.household.as_deref(), snap.subject.as_str()),
        (HOUSEHOLD_SNAPSHOT_VERSION, Some("hh_1"), "")
    );
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
    // A household snapshot claiming an older version (a reader of that version would skip `members`, or
    // a member's `child_until`), and one newer than this code knows: refused, so nothing is allowed.
    for v in [SNAPSHOT_VERSION_PLAIN, SNAPSHOT_VERSION, SNAPSHOT_VERSION_MAX + 1] {
        let other = ConsentSnapshot { v, ..snap.clone() };
        assert_eq!(other.rules().map(|_| ()), Err(SnapshotError::Version(v)));
    }
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

/// A known child in a household: their own grant does not count, neither when the device recognises them
/// nor in the answer for someone unrecognised (even when every other member granted); a guardian's grant
/// does, and sale or sharing is never allowed for them. Once they come of age their own grant counts.
#[test]
fn a_child_members_own_grant_does_not_allow() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let categories = strings(&["user.behavior.purchase_history"]);
    let purposes = strings(&["analytics", "marketing", "third_party"]);
    let until = Timestamp::from_micros(now().micros() + 10_000_000);
    let adult = [
        event(1, "analytics", Action::Grant, None),
        event(2, "marketing", Action::Grant, None),
        event(3, "third_party", Action::Grant, None),
    ];
    let mut by_guardian = event(6, "marketing", Action::Grant, None);
    by_guardian.actor = "guardian:mum".into();
    let child = [
        event(4, "analytics", Action::Grant, None),
        event(5, "third_party", Action::Grant, None),
        by_guardian,
    ];
    let members = [
        MemberInput { handle: "hm_a", statements: &adult, jurisdiction: None, child_until: None },
        MemberInput { handle: "hm_c", statements: &child, jurisdiction: None, child_until: Some(until) },
    ];
    let snap = ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &members);
    assert_eq!(snap.v, HOUSEHOLD_SNAPSHOT_VERSION);
    assert_eq!(snap.members[1].child_until, Some(until), "the member's childhood travels");
    assert!(snap.members[1].statements.iter().any(|s| s.guardian), "the guardian's grant is marked");
    let rules = snap.rules().expect("rules");
    let c = "user.behavior.purchase_history";
    for p in ["analytics", "marketing", "third_party"] {
        assert!(rules.decide_member("hm_a", p, c, None, None, now()).allowed, "{p}: the adult granted");
    }
    let own = rules.decide_member("hm_c", "analytics", c, None, None, now());
    assert_eq!((own.allowed, own.reason), (false, Reason::GuardianRequired), "the child's own grant");
    let anyone = rules.decide("analytics", c, None, now());
    assert_eq!((anyone.allowed, anyone.reason), (false, Reason::GuardianRequired), "most restrictive");
    let sale = rules.decide_member("hm_c", "third_party", c, None, None, now());
    assert_eq!((sale.allowed, sale.reason), (false, Reason::ChildProtected));
    assert!(!rules.decide("third_party", c, None, now()).allowed);
    assert!(rules.decide_member("hm_c", "marketing", c, None, None, now()).allowed, "a guardian's grant");
    assert!(rules.decide("marketing", c, None, now()).allowed, "every member allows marketing");
    let listed = snap.decisions.iter().find(|d| d.purpose == "analytics" && d.channel.is_none());
    assert_eq!(listed.map(|d| d.allowed), Some(false), "the server's listed answer too");
    // Of age: their own grant counts again.
    assert!(rules.decide_member("hm_c", "analytics", c, None, None, until).allowed);
    assert!(rules.decide("analytics", c, None, until).allowed);
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
        members in prop::collection::vec((arb_member(), any::<bool>(), any::<bool>()), 0..4),
        p in 0..PURPOSES.len(),
        ch in 0..CHANNELS.len(),
    ) {
        let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
        let (categories, purposes) = (strings(&["user.behavior.purchase_history"]), strings(&PURPOSES));
        let mut seq = 0;
        // A member may be a known child (until after `now`), whose statements may be a guardian's.
        let until = Timestamp::from_micros(now().micros() + 1);
        let events: Vec<Vec<Event>> = members
            .iter()
            .map(|(lines, _, by_guardian)| {
                lines
                    .iter()
                    .map(|&(p, a, c)| {
                        seq += 1;
                        let mut e = event(seq, PURPOSES[p], ACTIONS[a], CHANNELS[c]);
                        if *by_guardian {
                            e.actor = "guardian:g".into();
                        }
                        e
                    })
                    .collect()
            })
            .collect();
        let childhood: Vec<Option<Timestamp>> =
            members.iter().map(|(_, child, _)| child.then_some(until)).collect();
        let handles: Vec<String> = (0..events.len()).map(|i| format!("hm_{i}")).collect();
        let inputs: Vec<MemberInput<'_>> = events
            .iter()
            .zip(&handles)
            .zip(&childhood)
            .map(|((e, h), &child_until)| MemberInput { handle: h, statements: e, jurisdiction: None, child_until })
            .collect();
        let snap = ConsentSnapshot::build_household(input(&catalog, &categories, &purposes), "hh_1", &inputs);
        let rules = snap.rules().expect("rules");
        let (purpose, category, channel) = (PURPOSES[p], "user.behavior.purchase_history", CHANNELS[ch]);
        let mut every = !handles.is_empty();
        for ((h, e), &child_until) in handles.iter().zip(&events).zip(&childhood) {
            let own = ConsentSnapshot::build(SnapshotInput {
                statements: e,
                child_until,
                ..input(&catalog, &categories, &purposes)
            });
            let expected = own.rules().expect("rules").decide(purpose, category, channel, now());
            let got = rules.decide_member(h, purpose, category, channel, None, now());
            prop_assert_eq!(got, expected);
            every &= got.allowed;
        }
        let anyone = rules.decide(purpose, category, channel, now());
        prop_assert_eq!(anyone.allowed, every);
    }
}
