//! Tests of device consent snapshots: the answers match the server's engine, versions, the grid.

use super::*;
use crate::Reason;
use crate::ledger::NewEvent;

fn event(seq: u64, purpose: &str, action: Action, channels: &[&str], expires_at: Option<i64>) -> Event {
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
            expires_at: expires_at.map(Timestamp::from_micros),
        },
        seq,
        "p".into(),
        Timestamp::from_micros(0),
        String::new(),
    )
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn snapshot(statements: &[Event], now: Timestamp) -> ConsentSnapshot {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    ConsentSnapshot::build(SnapshotInput {
        device_id: "dev_1",
        subject: "user-1",
        categories: &strings(&["user.device.telemetry"]),
        purposes: &strings(&["analytics", "service.improvement"]),
        ledger_seq: 9,
        catalog: &catalog,
        catalog_version: 1,
        statements,
        jurisdiction: None,
        child_until: None,
        issued_at: now,
        max_age_secs: 60,
    })
}

/// The snapshot's rules answer exactly as the server's engine does on the full catalogue and state.
#[test]
fn answers_match_the_servers_engine() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let later = now.micros() + 10_000_000;
    let events = [
        event(1, "analytics", Action::Grant, &["on_device"], None),
        event(2, "marketing", Action::Grant, &[], None),
        event(3, "service.improvement", Action::Object, &[], None),
        event(4, "analytics", Action::Grant, &["in_app"], Some(later)),
    ];
    let snap = snapshot(&events, now);
    assert!(snap.statements.iter().all(|s| s.purpose != "marketing"), "unrelated purposes left out");
    assert!(snap.catalog.purposes.iter().all(|p| p.key == "analytics" || p.key.starts_with("service")));
    let rules = snap.rules().expect("rules");

    let server = Engine::new();
    server.set_catalog(&Catalog::validate(CatalogDocument::default_catalog()).expect("valid")).expect("set");
    for e in &events {
        server.apply("user-1", e).expect("apply");
    }
    for at in [now, Timestamp::from_micros(later + 1)] {
        for purpose in ["analytics", "service.improvement"] {
            for channel in [None, Some("on_device"), Some("in_app")] {
                let q = Query {
                    subject: "user-1",
                    purpose,
                    category: Some("user.device.telemetry"),
                    channel,
                    recipient: None,
                    jurisdiction: None,
                };
                let expected = server.check(&q, at).expect("check");
                assert_eq!(
                    rules.decide(purpose, "user.device.telemetry", channel, at),
                    expected,
                    "{purpose} {channel:?}"
                );
            }
        }
    }
    assert!(rules.decide("analytics", "user.device.telemetry", Some("on_device"), now).allowed);
    assert!(rules.decide("analytics", "user.device.telemetry", Some("in_app"), now).allowed);
    let expired =
        rules.decide("analytics", "user.device.telemetry", Some("in_app"), Timestamp::from_micros(later));
    assert!(!expired.allowed);
    assert_eq!(
        rules.decide("service.improvement", "user.device.telemetry", None, now).reason,
        Reason::Objected
    );
}

/// A subject's jurisdiction travels in the snapshot with its rules, so the device answers as the
/// server does (`not_opted_out` where the place lets the purpose run), and changes the snapshot's tag.
#[test]
fn the_subjects_place_decides_offline_as_on_the_server() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let purposes = strings(&["marketing.personalised_offers"]);
    let categories = strings(&["user.behavior.purchase_history"]);
    let build = |jurisdiction| {
        ConsentSnapshot::build(SnapshotInput {
            device_id: "dev_1",
            subject: "user-1",
            categories: &categories,
            purposes: &purposes,
            ledger_seq: 1,
            catalog: &catalog,
            catalog_version: 1,
            statements: &[],
            jurisdiction,
            child_until: None,
            issued_at: now,
            max_age_secs: 60,
        })
    };
    let (placed, plain) = (build(Some("US-CA")), build(None));
    assert_ne!(placed.content_tag(), plain.content_tag());
    assert_eq!(placed.catalog.jurisdictions.len(), 1);
    let server = Engine::new();
    server.set_catalog(&catalog).expect("set");
    let mut locate = event(1, "", Action::Locate, &[], None);
    locate.jurisdiction = Some("US-CA".into());
    server.apply("user-1", &locate).expect("apply");
    let q = Query {
        subject: "user-1",
        purpose: "marketing.personalised_offers",
        category: Some("user.behavior.purchase_history"),
        channel: None,
        recipient: None,
        jurisdiction: None,
    };
    let expected = server.check(&q, now).expect("check");
    assert_eq!(expected.reason, Reason::NotOptedOut);
    let rules = placed.rules().expect("rules");
    assert_eq!(rules.decide(q.purpose, "user.behavior.purchase_history", None, now), expected);
    let rules = plain.rules().expect("rules");
    assert_eq!(
        rules.decide(q.purpose, "user.behavior.purchase_history", None, now).reason,
        Reason::NoConsent
    );
    assert!(placed.decisions.iter().any(|d| d.reason == "not_opted_out"));
}

/// Questions naming a recipient answer as the server's engine does, also for a purpose that declares
/// no recipients (every one of the catalogue).
#[test]
fn recipients_answer_as_on_the_server() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let mut doc = CatalogDocument::default_catalog();
    for p in doc.purposes.iter_mut().filter(|p| p.key == "service.improvement") {
        p.recipients.clear();
    }
    let catalog = Catalog::validate(doc).expect("valid");
    let mut analytics = event(1, "analytics", Action::Grant, &[], None);
    analytics.scope = Scope::new(vec![], vec![], strings(&["brand"]));
    let events = [analytics];
    let snap = ConsentSnapshot::build(SnapshotInput {
        device_id: "dev_1",
        subject: "user-1",
        categories: &strings(&["user.device.telemetry"]),
        purposes: &strings(&["analytics", "service.improvement"]),
        ledger_seq: 1,
        catalog: &catalog,
        catalog_version: 1,
        statements: &events,
        jurisdiction: None,
        child_until: None,
        issued_at: now,
        max_age_secs: 60,
    });
    let rules = snap.rules().expect("rules");
    let server = Engine::new();
    server.set_catalog(&catalog).expect("set");
    server.apply("user-1", &events[0]).expect("apply");
    for purpose in ["analytics", "service.improvement"] {
        for recipient in [None, Some("brand"), Some("analytics_provider"), Some("ad_partners")] {
            let q = Query {
                subject: "user-1",
                purpose,
                category: Some("user.device.telemetry"),
                channel: Some("on_device"),
                recipient,
                jurisdiction: None,
            };
            let expected = server.check(&q, now).expect("check");
            let got = rules.decide_for(purpose, "user.device.telemetry", Some("on_device"), recipient, now);
            assert_eq!(got, expected, "{purpose} {recipient:?}");
        }
    }
    let d = rules.decide_for("service.improvement", "user.device.telemetry", None, Some("ad_partners"), now);
    assert_eq!(d.reason, Reason::BasisLegitimateInterest, "no recipients declared: every one");
    let d = rules.decide_for("analytics", "user.device.telemetry", None, Some("analytics_provider"), now);
    assert_eq!(d, Decision::not_covered(Dimension::Recipient, Some(1)), "the grant names the brand only");
}

#[test]
fn outside_the_declaration_is_not_covered() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let snap = snapshot(&[event(1, "analytics", Action::Grant, &[], None)], now);
    let rules = snap.rules().expect("rules");
    assert!(rules.decide("analytics", "user.device.telemetry", None, now).allowed);
    for (purpose, category, dimension) in [
        ("analytics", "user.contact.email", Dimension::Category),
        ("marketing", "user.device.telemetry", Dimension::Purpose),
    ] {
        let d = rules.decide(purpose, category, None, now);
        assert_eq!(d, Decision::not_covered(dimension, None), "{purpose} {category}");
        assert_eq!(d.reason, Reason::NotCovered);
    }
    let pigeon = rules.decide("analytics", "user.device.telemetry", Some("pigeon"), now);
    assert_eq!(pigeon, Decision::not_covered(Dimension::Channel, None));
}

#[test]
fn decisions_grid_and_tag() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let a = snapshot(&[event(1, "analytics", Action::Grant, &["on_device"], None)], now);
    // analytics: overall + in_app + on_device; service.improvement: overall + in_app + on_device.
    assert_eq!(a.decisions.len(), 6);
    let on_device =
        a.decisions.iter().find(|d| d.purpose == "analytics" && d.channel.as_deref() == Some("on_device"));
    assert!(on_device.is_some_and(|d| d.allowed && d.event_id.as_deref() == Some("evt_1")));
    assert_eq!((a.iat, a.exp), (1_000_000, 1_000_060));
    let b = snapshot(&[event(1, "analytics", Action::Grant, &["on_device"], None)], now.plus_seconds(5));
    assert_eq!(a.content_tag(), b.content_tag(), "the issue time is not content");
    let c = snapshot(&[event(2, "analytics", Action::Withdraw, &[], None)], now);
    assert_ne!(a.content_tag(), c.content_tag());
    let json = serde_json::to_vec(&a).expect("json");
    let back: ConsentSnapshot = serde_json::from_slice(&json).expect("parse");
    assert_eq!(back, a);
}

/// Statements carry `at`, which a version-1 reader would ignore: the version says so, and a version
/// this code does not know is refused rather than read (an older reader refuses this one likewise).
#[test]
fn a_version_it_does_not_know_is_refused() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let snap = snapshot(&[event(1, "analytics", Action::Grant, &[], None)], now);
    assert_eq!(snap.v, 2);
    assert!(snap.statements.iter().all(|s| s.at.is_some()), "version 2 carries effective times");
    for v in [0, SNAPSHOT_VERSION_MAX + 1, u32::MAX] {
        let newer = ConsentSnapshot { v, ..snap.clone() };
        assert_eq!(newer.rules().map(|_| ()), Err(SnapshotError::Version(v)), "{v}");
    }
    // Version 1, without `at`: ordered by `seq` alone, as a version-1 reader did.
    let mut old = ConsentSnapshot { v: 1, ..snap.clone() };
    old.statements.iter_mut().for_each(|s| s.at = None);
    assert!(
        old.rules().expect("reads version 1").decide("analytics", "user.device.telemetry", None, now).allowed
    );
}

/// The reason for version 2: a grant imported late (a later `seq`, an earlier `at`) does not override
/// the withdrawal recorded since; ordered by `seq` alone, as a version-1 reader would, it would.
#[test]
fn effective_times_order_statements() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let mut withdrawn = event(1, "analytics", Action::Withdraw, &[], None);
    withdrawn.recorded_at = Timestamp::from_micros(900_000_000_000);
    let mut imported = event(2, "analytics", Action::Grant, &[], None);
    imported.recorded_at = Timestamp::from_micros(950_000_000_000);
    imported.occurred_at = Some(Timestamp::from_micros(800_000_000_000));
    let snap = snapshot(&[withdrawn, imported], now);
    let d = snap.rules().expect("rules").decide("analytics", "user.device.telemetry", None, now);
    assert_eq!((d.allowed, d.reason), (false, Reason::Withdrawn));
    let mut blind = snap.clone();
    blind.statements.iter_mut().for_each(|s| s.at = None);
    let d = blind.rules().expect("rules").decide("analytics", "user.device.telemetry", None, now);
    assert!(d.allowed, "without `at` the late import wins: why an older reader must refuse");
}

/// A known child's coming of age and their guardian's statements travel in the snapshot, so a device
/// allows a child only what a guardian granted, until the day they come of age.
#[test]
fn a_child_decides_offline_as_on_the_server() {
    let now = Timestamp::from_micros(1_000_000_000_000);
    let until = Timestamp::from_micros(now.micros() + 10_000_000);
    let mut by_guardian = event(2, "service.improvement", Action::Grant, &[], None);
    by_guardian.actor = "guardian:mum".into();
    let events = [event(1, "analytics", Action::Grant, &["on_device"], None), by_guardian];
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let snap = ConsentSnapshot::build(SnapshotInput {
        child_until: Some(until),
        ..SnapshotInput {
            device_id: "dev_1",
            subject: "user-1",
            categories: &strings(&["user.device.telemetry"]),
            purposes: &strings(&["analytics", "service.improvement"]),
            ledger_seq: 9,
            catalog: &catalog,
            catalog_version: 1,
            statements: &events,
            jurisdiction: None,
            child_until: None,
            issued_at: now,
            max_age_secs: 60,
        }
    });
    assert_eq!(
        (snap.v, snap.child_until),
        (SNAPSHOT_VERSION, Some(until)),
        "version 3: a version-2 reader refuses it"
    );
    assert_ne!(snap.content_tag(), snapshot(&events, now).content_tag(), "the tag says so");
    assert!(snap.statements.iter().any(|s| s.guardian), "the guardian's statement is marked");
    let rules = snap.rules().expect("rules");
    let analytics = rules.decide("analytics", "user.device.telemetry", Some("on_device"), now);
    assert_eq!((analytics.allowed, analytics.reason), (false, Reason::GuardianRequired));
    let grid =
        snap.decisions.iter().find(|d| d.purpose == "analytics" && d.channel.as_deref() == Some("on_device"));
    assert_eq!(grid.map(|d| d.reason.as_str()), Some("guardian_required"), "the server's listed answer too");
    let later = rules.decide("analytics", "user.device.telemetry", Some("on_device"), until);
    assert_eq!((later.allowed, later.reason), (true, Reason::Granted), "of age: their own grant counts");
}

/// An objection and a later withdrawal of the same purpose and scope travel both, as version 5: a device
/// keeps the objection (insights, on legitimate interest under marketing, stays objected to), and a reader
/// that would keep one statement per purpose and scope refuses the snapshot. Without such a pair the
/// version stays 2.
#[test]
fn an_objection_and_a_later_choice_travel_apart() {
    const CATALOG: &str = r#"
data_categories:
  - {key: user, name: User}
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n}
  - {key: marketing.insights, name: Insights, basis: legitimate_interest}
notices:
  - {key: n, title: N, language: en, text: Some text}
"#;
    let now = Timestamp::from_micros(1_000_000_000_000);
    let catalog = Catalog::validate(CatalogDocument::from_yaml(CATALOG).expect("parses")).expect("valid");
    let build = |statements: &[Event]| {
        ConsentSnapshot::build(SnapshotInput {
            device_id: "dev_1",
            subject: "user-1",
            categories: &strings(&["user"]),
            purposes: &strings(&["marketing", "marketing.insights"]),
            ledger_seq: 9,
            catalog: &catalog,
            catalog_version: 1,
            statements,
            jurisdiction: None,
            child_until: None,
            issued_at: now,
            max_age_secs: 60,
        })
    };
    let both = [
        event(1, "marketing", Action::Object, &[], None),
        event(2, "marketing", Action::Withdraw, &[], None),
    ];
    let snap = build(&both);
    assert_eq!((snap.v, snap.statements.len()), (SNAPSHOT_VERSION_STANCES, 2));
    let rules = snap.rules().expect("rules");
    let d = rules.decide("marketing.insights", "user", None, now);
    assert_eq!((d.allowed, d.reason, d.event_seq), (false, Reason::Objected, Some(1)));
    assert_eq!(rules.decide("marketing", "user", None, now).reason, Reason::Withdrawn);
    let listed = snap.decisions.iter().find(|d| d.purpose == "marketing.insights").expect("listed");
    assert_eq!(listed.reason, "objected", "the listed answer too");
    // One statement per purpose and scope: the version an older reader takes.
    assert_eq!(build(&both[1..]).v, SNAPSHOT_VERSION_PLAIN);
    let apart = [event(1, "marketing", Action::Object, &["email"], None), both[1].clone()];
    assert_eq!(build(&apart).v, SNAPSHOT_VERSION_PLAIN, "another scope: an older reader keeps both");
}
