//! The rules for children: a table of cases (a guardian's grant, the child's own, sale and sharing,
//! coming of age, the place's age of digital consent) and property tests (a known child is never allowed
//! a sale or sharing purpose, nor a consent purpose without a guardian's grant).

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::ledger::{Action, Event, NewEvent, Scope};

const CATALOG: &str = r#"
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n}
  - {key: ads, name: Ads, basis: consent, notice: n, kinds: [targeted_advertising]}
  - {key: sale, name: Sale, basis: consent, notice: n, kinds: [sale]}
  - {key: sharing, name: Sharing, basis: consent, notice: n, sale_or_sharing: true}
  - {key: service, name: Service, basis: contract}
  - {key: resale, name: Resale, basis: legitimate_interest, kinds: [sharing]}
notices:
  - {key: n, title: N, language: en, text: Some text}
jurisdictions:
  - key: US-CA
    name: California
    age_of_digital_consent: 13
    regimes: {sale: opt_out, sharing: opt_out, targeted_advertising: opt_out}
  - {key: DE, name: Germany, age_of_digital_consent: 16}
  - {key: FR, name: France, age_of_digital_consent: 15}
  - {key: BR, name: Brazil}
"#;

/// 2026-06-01T12:00:00Z.
const NOW: i64 = 1_780_315_200_000_000;

fn date(y: i32, m: u8, d: u8) -> time::Date {
    let month = time::Month::try_from(m).expect("month");
    time::Date::from_calendar_date(y, month, d).expect("date")
}

fn engine() -> Engine {
    let engine = Engine::new();
    let catalog = Catalog::validate(CatalogDocument::from_yaml(CATALOG).expect("parses")).expect("valid");
    engine.set_catalog(&catalog).expect("fits");
    engine
}

fn event(seq: u64, purpose: &str, action: Action, actor: &str, jurisdiction: Option<&str>) -> Event {
    Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: jurisdiction.map(str::to_owned),
            purpose: purpose.into(),
            action,
            scope: Scope::default(),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: actor.into(),
            expires_at: None,
        },
        seq,
        "p".into(),
        Timestamp::from_micros(seq as i64),
        String::new(),
    )
}

fn q(purpose: &str) -> Query<'_> {
    Query { subject: "kid", purpose, category: None, channel: None, recipient: None, jurisdiction: None }
}

fn reason(e: &Engine, purpose: &str, now: i64) -> Reason {
    let d = e.check(&q(purpose), Timestamp::from_micros(now)).expect("known purpose");
    assert_eq!(d.allowed, d.reason.is_allowed());
    d.reason
}

const GUARDIAN: &str = "guardian:mum";

#[test]
fn a_child_needs_a_guardians_grant() {
    let e = engine();
    e.set_birth_date("kid", date(2014, 5, 1)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::GuardianRequired);
    // The child's own grant does not count.
    e.apply("kid", &event(1, "marketing", Action::Grant, "subject", None)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::GuardianRequired);
    // A guardian's does, for the purpose and what lies under it.
    e.apply("kid", &event(2, "marketing", Action::Grant, GUARDIAN, None)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::Granted);
    assert_eq!(reason(&e, "marketing.direct", NOW), Reason::Granted);
    // The child can always say no.
    e.apply("kid", &event(3, "marketing.direct", Action::Withdraw, "subject", None)).expect("fits");
    assert_eq!(reason(&e, "marketing.direct", NOW), Reason::Withdrawn);
    assert_eq!(reason(&e, "marketing", NOW), Reason::Granted);
    // Purposes not based on consent are as for anyone.
    assert_eq!(reason(&e, "service", NOW), Reason::BasisContract);
}

#[test]
fn sale_and_sharing_are_never_allowed_for_a_child() {
    let e = engine();
    e.set_birth_date("kid", date(2014, 5, 1)).expect("fits");
    for (seq, p) in [(1, "sale"), (2, "sharing")] {
        e.apply("kid", &event(seq, p, Action::Grant, GUARDIAN, None)).expect("fits");
        assert_eq!(reason(&e, p, NOW), Reason::ChildProtected, "{p}");
    }
    // Whatever the basis, and under an opt-out regime too.
    assert_eq!(reason(&e, "resale", NOW), Reason::ChildProtected);
    e.apply("kid", &event(3, "", Action::Locate, "key:test", Some("US-CA"))).expect("fits");
    e.set_birth_date("kid", date(2016, 5, 1)).expect("fits");
    assert_eq!(reason(&e, "sale", NOW), Reason::ChildProtected);
    // An opt-out regime does not speak for a child: a guardian must grant.
    assert_eq!(reason(&e, "ads", NOW), Reason::GuardianRequired);
}

#[test]
fn a_child_comes_of_age_on_their_birthday_without_a_write() {
    let e = engine();
    // Sixteen on 2026-06-02 (the default age): a child on the 1st, of age on the 2nd at midnight UTC.
    e.set_birth_date("kid", date(2010, 6, 2)).expect("fits");
    e.apply("kid", &event(1, "marketing", Action::Grant, "subject", None)).expect("fits");
    assert!(e.is_child("kid", Timestamp::from_micros(NOW)));
    assert_eq!(reason(&e, "marketing", NOW), Reason::GuardianRequired);
    let birthday = 1_780_358_400_000_000; // 2026-06-02T00:00:00Z
    assert_eq!(e.child_until("kid"), Some(Timestamp::from_micros(birthday)));
    assert_eq!(reason(&e, "marketing", birthday - 1), Reason::GuardianRequired);
    assert_eq!(reason(&e, "marketing", birthday), Reason::Granted);
    assert!(!e.is_child("kid", Timestamp::from_micros(birthday)));
    assert_eq!(reason(&e, "sale", birthday), Reason::NoConsent);
}

#[test]
fn the_place_sets_the_age_of_digital_consent() {
    let e = engine();
    // Fourteen at NOW: a child in Germany (16), France (15) and by default; not in California (13).
    e.set_birth_date("kid", date(2012, 1, 1)).expect("fits");
    e.apply("kid", &event(1, "marketing", Action::Grant, "subject", None)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::GuardianRequired);
    for (seq, place, child) in [(2, "DE", true), (3, "FR", true), (4, "US-CA", false), (5, "BR", true)] {
        e.apply("kid", &event(seq, "", Action::Locate, "key:test", Some(place))).expect("fits");
        assert_eq!(e.is_child("kid", Timestamp::from_micros(NOW)), child, "{place}");
        let expected = if child { Reason::GuardianRequired } else { Reason::Granted };
        assert_eq!(reason(&e, "marketing", NOW), expected, "{place}");
    }
    // A check naming a place with a higher age makes them a child there.
    let mut query = q("marketing");
    query.jurisdiction = Some("DE");
    let d = e.check(&query, Timestamp::from_micros(NOW)).expect("known");
    assert_eq!(d.reason, Reason::GuardianRequired);
    // A check naming a place with a lower age never lifts the protection their own place gives.
    e.apply("kid", &event(6, "", Action::Locate, "key:test", Some("DE"))).expect("fits");
    query.jurisdiction = Some("US-CA");
    let d = e.check(&query, Timestamp::from_micros(NOW)).expect("known");
    assert_eq!((d.allowed, d.reason), (false, Reason::GuardianRequired));
    let mut sale = q("sale");
    sale.jurisdiction = Some("US-CA");
    let d = e.check(&sale, Timestamp::from_micros(NOW)).expect("known");
    assert_eq!((d.allowed, d.reason), (false, Reason::ChildProtected));
}

#[test]
fn born_on_29_february_comes_of_age_on_1_march() {
    let e = engine();
    e.set_birth_date("kid", date(2012, 2, 29)).expect("fits");
    // 2028 is a leap year: of age on 2028-02-29 with 16.
    let until = e.child_until("kid").expect("known age");
    assert_eq!(until.to_offset().date(), date(2028, 2, 29));
    e.set_birth_date("kid", date(2008, 2, 29)).expect("fits");
    assert_eq!(e.child_until("kid").expect("known").to_offset().date(), date(2024, 2, 29));
    e.set_birth_date("kid", date(2011, 2, 28)).expect("fits");
    e.set_birth_date("kid", date(2012, 2, 29)).expect("fits");
    e.apply("kid", &event(1, "", Action::Locate, "key:test", Some("FR"))).expect("fits");
    // 15 years later, 2027, has no 29 February.
    assert_eq!(e.child_until("kid").expect("known").to_offset().date(), date(2027, 3, 1));
}

#[test]
fn an_adult_and_a_subject_of_unknown_age_decide_as_before() {
    let e = engine();
    e.set_birth_date("kid", date(1990, 1, 1)).expect("fits");
    e.apply("kid", &event(1, "marketing", Action::Grant, "subject", None)).expect("fits");
    e.apply("kid", &event(2, "sale", Action::Grant, "subject", None)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::Granted);
    assert_eq!(reason(&e, "sale", NOW), Reason::Granted);
    let other = Query { subject: "other", ..q("marketing") };
    assert_eq!(e.check(&other, Timestamp::from_micros(NOW)).expect("known").reason, Reason::NoConsent);
}

#[test]
fn a_fixed_coming_of_age_decides_on_a_device() {
    let e = engine();
    e.set_child_until("kid", Timestamp::from_micros(NOW + 1)).expect("fits");
    e.apply("kid", &event(1, "marketing", Action::Grant, "subject", None)).expect("fits");
    assert_eq!(reason(&e, "marketing", NOW), Reason::GuardianRequired);
    assert_eq!(reason(&e, "marketing", NOW + 1), Reason::Granted);
    // Forgetting the subject forgets the age.
    e.forget("kid");
    assert_eq!(e.child_until("kid"), None);
}

type Arb = (u8, u8, bool);

fn arb_line() -> impl Strategy<Value = Arb> {
    (0u8..7, 0u8..6, any::<bool>())
}

const PURPOSES: [&str; 7] = ["marketing", "marketing.direct", "ads", "sale", "sharing", "service", "resale"];
const ACTIONS: [Action; 6] =
    [Action::Grant, Action::Renew, Action::Withdraw, Action::Deny, Action::Object, Action::Restrict];

fn build(lines: &[Arb], place: Option<&str>) -> Engine {
    let e = engine();
    e.set_birth_date("kid", date(2015, 3, 3)).expect("fits");
    if let Some(place) = place {
        e.apply("kid", &event(100, "", Action::Locate, "key:test", Some(place))).expect("fits");
    }
    for (i, &(p, a, guardian)) in lines.iter().enumerate() {
        let actor = if guardian { GUARDIAN } else { "subject" };
        let purpose = PURPOSES[usize::from(p)];
        let action = ACTIONS[usize::from(a)];
        // Only what the catalogue allows for the purpose's basis reaches the engine; the rest is harmless.
        let _ = e.apply("kid", &event(i as u64 + 1, purpose, action, actor, None));
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_child_is_never_allowed_sale_or_sharing(lines in prop::collection::vec(arb_line(), 0..12),
                                                 place in prop::option::of(prop::sample::select(vec!["US-CA", "DE", "FR", "BR"])),
                                                 purpose in prop::sample::select(vec!["sale", "sharing", "resale"])) {
        let e = build(&lines, place);
        // Eleven at NOW: a child everywhere in the catalogue.
        let d = e.check(&q(purpose), Timestamp::from_micros(NOW)).expect("known");
        prop_assert!(!d.allowed);
        prop_assert_eq!(d.reason, Reason::ChildProtected);
    }

    #[test]
    fn a_child_is_never_allowed_a_consent_purpose_without_a_guardians_grant(
        lines in prop::collection::vec(arb_line(), 0..12),
        place in prop::option::of(prop::sample::select(vec!["US-CA", "DE", "FR", "BR"])),
        purpose in prop::sample::select(vec!["marketing", "marketing.direct", "ads"])) {
        let e = build(&lines, place);
        let d = e.check(&q(purpose), Timestamp::from_micros(NOW)).expect("known");
        let by_guardian = lines.iter().any(|&(p, a, g)| {
            let on = PURPOSES[usize::from(p)];
            g && ACTIONS[usize::from(a)].is_positive() && (on == purpose || purpose.starts_with(&format!("{on}.")))
        });
        if !by_guardian {
            prop_assert!(!d.allowed);
            prop_assert_eq!(d.reason, Reason::GuardianRequired);
        }
        // Once of age, the child's own grants count again: the same history decides as for an adult.
        let adult = Timestamp::from_micros(e.child_until("kid").expect("age").micros());
        let later = e.check(&q(purpose), adult).expect("known");
        prop_assert_ne!(later.reason, Reason::GuardianRequired);
    }
}
