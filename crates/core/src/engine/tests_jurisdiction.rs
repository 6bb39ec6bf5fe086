//! The rules of jurisdictions: a table of cases, and property tests of the regimes (opt-out never allows
//! after an opt-out, opt-in never allows without a grant, no jurisdiction decides as before).

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::ledger::{ACTOR_GPC, Action, Event, NewEvent, Scope};

const CATALOG: &str = r#"
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n, kinds: [targeted_advertising]}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n}
  - {key: sharing, name: Sharing, basis: consent, notice: n, sale_or_sharing: true, kinds: [sale, sharing],
     recipients: [ads, crm]}
  - {key: sensitive, name: Sensitive, basis: consent, notice: n, kinds: [sale, sensitive_data]}
  - {key: service, name: Service, basis: contract, kinds: [sale]}
recipients:
  - {key: ads, name: Ads, kind: third_party}
  - {key: crm, name: CRM, kind: processor}
notices:
  - {key: n, title: N, language: en, text: Some text}
jurisdictions:
  - key: US-CA
    name: California
    age_of_digital_consent: 16
    regimes: {sale: opt_out, sharing: opt_out, targeted_advertising: opt_out, sensitive_data: opt_out}
  - key: US-VA
    name: Virginia
    regimes: {sale: opt_out, sharing: opt_out, targeted_advertising: opt_out, sensitive_data: opt_in}
  - {key: DE, name: Germany, age_of_digital_consent: 16}
"#;

const NOW: i64 = 1_000_000_000;

fn catalog(yaml: &str) -> Catalog {
    Catalog::validate(CatalogDocument::from_yaml(yaml).expect("parses")).expect("valid")
}

fn engine() -> Engine {
    let engine = Engine::new();
    engine.set_catalog(&catalog(CATALOG)).expect("fits");
    engine
}

#[derive(Clone, Copy)]
struct Line<'a> {
    purpose: &'a str,
    action: Action,
    recipients: &'a [&'a str],
    expired: bool,
    gpc: bool,
    jurisdiction: Option<&'a str>,
}

fn l(purpose: &str, action: Action) -> Line<'_> {
    Line { purpose, action, recipients: &[], expired: false, gpc: false, jurisdiction: None }
}

fn event(seq: u64, line: &Line<'_>) -> Event {
    Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: line.jurisdiction.map(str::to_owned),
            purpose: line.purpose.into(),
            action: line.action,
            scope: Scope::new(vec![], vec![], line.recipients.iter().map(|r| (*r).to_owned()).collect()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: if line.gpc { ACTOR_GPC.into() } else { "key:test".into() },
            expires_at: line.expired.then(|| Timestamp::from_micros(NOW - 10)),
        },
        seq,
        "p".into(),
        Timestamp::from_micros(seq as i64),
        String::new(),
    )
}

fn load(history: &[Line<'_>]) -> Engine {
    let e = engine();
    for (i, line) in history.iter().enumerate() {
        e.apply("s1", &event(i as u64 + 1, line)).expect("fits");
    }
    e
}

fn q<'a>(purpose: &'a str, recipient: Option<&'a str>, jurisdiction: Option<&'a str>) -> Query<'a> {
    Query { subject: "s1", purpose, category: None, channel: None, recipient, jurisdiction }
}

#[track_caller]
fn check(history: &[Line<'_>], query: Query<'_>, reason: Reason, event: Option<u64>) {
    let d = load(history).check(&query, Timestamp::from_micros(NOW)).expect("known names");
    assert_eq!((d.reason, d.event_seq), (reason, event), "{query:?}");
    assert_eq!(d.allowed, reason.is_allowed());
}

#[test]
fn opt_out_allows_until_the_person_opts_out() {
    use Reason::*;
    let ca = Some("US-CA");
    check(&[], q("sharing", None, ca), NotOptedOut, None);
    check(&[], q("sharing", Some("ads"), ca), NotOptedOut, None);
    check(&[], q("sharing", None, None), NoConsent, None);
    check(&[], q("sharing", None, Some("DE")), NoConsent, None);
    check(&[l("sharing", Action::Withdraw)], q("sharing", None, ca), Withdrawn, Some(1));
    check(
        &[Line { gpc: true, ..l("sharing", Action::Withdraw) }],
        q("sharing", None, ca),
        GpcOptOut,
        Some(1),
    );
    check(&[l("sharing", Action::Deny)], q("sharing", None, ca), Denied, Some(1));
    check(&[l("sharing", Action::Object)], q("sharing", None, ca), Objected, Some(1));
    check(&[l("sharing", Action::Restrict)], q("sharing", None, ca), Restricted, Some(1));
    // Opting back in is a grant like any other.
    let again = [l("sharing", Action::Grant), l("sharing", Action::Withdraw), l("sharing", Action::Grant)];
    check(&again, q("sharing", None, ca), Granted, Some(3));
    // A lapsed grant is no opt-out.
    check(
        &[Line { expired: true, ..l("sharing", Action::Grant) }],
        q("sharing", None, ca),
        NotOptedOut,
        None,
    );
    check(
        &[Line { expired: true, ..l("sharing", Action::Grant) }],
        q("sharing", None, None),
        Expired,
        Some(1),
    );
    check(
        &[Line { expired: true, ..l("sharing", Action::Grant) }, l("sharing", Action::Expire)],
        q("sharing", None, ca),
        NotOptedOut,
        None,
    );
    // A narrower grant leaves the rest as it was: not opted out.
    let narrow = [Line { recipients: &["crm"], ..l("sharing", Action::Grant) }];
    check(&narrow, q("sharing", Some("ads"), ca), NotOptedOut, None);
    // An opt-out on one recipient: that one is denied, the other not, and the whole purpose is.
    let one = [Line { recipients: &["crm"], ..l("sharing", Action::Withdraw) }];
    check(&one, q("sharing", Some("ads"), ca), NotOptedOut, None);
    check(&one, q("sharing", Some("crm"), ca), Withdrawn, Some(1));
    check(&one, q("sharing", None, ca), Withdrawn, Some(1));
    // A parent's opt-out reaches its children.
    check(&[l("marketing", Action::Withdraw)], q("marketing", None, ca), Withdrawn, Some(1));
}

#[test]
fn regimes_follow_the_purposes_kinds() {
    use Reason::*;
    // Every kind opt-out in California; sensitive data is opt-in in Virginia.
    check(&[], q("sensitive", None, Some("US-CA")), NotOptedOut, None);
    check(&[], q("sensitive", None, Some("US-VA")), NoConsent, None);
    check(&[], q("sharing", None, Some("US-VA")), NotOptedOut, None);
    check(&[], q("marketing", None, Some("US-VA")), NotOptedOut, None);
    // A purpose without kinds is opt-in everywhere; kinds are not inherited.
    check(&[], q("marketing.direct", None, Some("US-CA")), NoConsent, None);
    // Other legal bases decide as before.
    check(&[], q("service", None, Some("US-CA")), BasisContract, None);
    check(&[l("service", Action::Object)], q("service", None, Some("US-CA")), Objected, Some(1));
}

#[test]
fn queries_outside_the_purpose_and_unknown_places_stay_refused() {
    let e = engine();
    let now = Timestamp::from_micros(NOW);
    let d = e.check(&q("sharing", None, Some("US-CA")), now).expect("known");
    assert!(d.allowed);
    assert_eq!(e.check(&q("sharing", None, Some("FR")), now), Err(QueryError::UnknownJurisdiction));
    assert_eq!(e.check(&q("sharing", None, Some("us-ca")), now), Err(QueryError::UnknownJurisdiction));
    assert_eq!(e.check(&q("nope", None, Some("US-CA")), now), Err(QueryError::UnknownPurpose));
    let outside = Query { channel: Some("email"), ..q("sharing", None, Some("US-CA")) };
    assert_eq!(e.check(&outside, now), Err(QueryError::UnknownChannel));
}

#[test]
fn a_subject_carries_the_latest_jurisdiction_set() {
    use Reason::*;
    let set = |j| Line { jurisdiction: Some(j), ..l("marketing.direct", Action::Grant) };
    check(&[set("US-CA")], q("sharing", None, None), NotOptedOut, None);
    // The check's jurisdiction wins over the subject's.
    check(&[set("US-CA")], q("sharing", None, Some("DE")), NoConsent, None);
    check(&[set("DE")], q("sharing", None, Some("US-CA")), NotOptedOut, None);
    // The latest set wins, in whatever order the events arrive.
    check(&[set("US-CA"), set("DE")], q("sharing", None, None), NoConsent, None);
    let e = engine();
    e.apply("s1", &event(2, &set("DE"))).expect("fits");
    e.apply("s1", &event(1, &set("US-CA"))).expect("fits");
    e.apply("s1", &event(2, &set("DE"))).expect("fits");
    assert_eq!(e.subject_jurisdiction("s1").as_deref(), Some("DE"));
    assert_eq!(e.subject_jurisdiction("s2"), None);
    // The subject's jurisdiction is no statement of a purpose: its event's own statement still counts.
    check(&[set("US-CA")], q("marketing.direct", None, None), Granted, Some(1));
}

#[test]
fn a_locate_event_sets_the_place_and_nothing_else() {
    let locate = |j| Line { jurisdiction: Some(j), ..l("", Action::Locate) };
    check(&[locate("US-CA")], q("sharing", None, None), Reason::NotOptedOut, None);
    check(&[locate("US-CA"), locate("DE")], q("sharing", None, None), Reason::NoConsent, None);
    let e = load(&[l("sharing", Action::Grant), locate("US-VA")]);
    assert_eq!(e.subject_jurisdiction("s1").as_deref(), Some("US-VA"));
    let d = e.check(&q("sharing", None, None), Timestamp::from_micros(NOW)).expect("known");
    assert_eq!((d.reason, d.event_seq), (Reason::Granted, Some(1)));
    // No statement of the empty purpose was made.
    assert_eq!(
        e.consent_tally(Timestamp::from_micros(NOW)).iter().filter(|t| t.purpose.is_empty()).count(),
        0
    );
}

#[test]
fn a_jurisdiction_the_catalogue_dropped_decides_by_the_default() {
    let e = load(&[Line { jurisdiction: Some("US-CA"), ..l("marketing.direct", Action::Grant) }]);
    let now = Timestamp::from_micros(NOW);
    assert_eq!(e.check(&q("sharing", None, None), now).expect("known").reason, Reason::NotOptedOut);
    let without = CATALOG.split("jurisdictions:").next().expect("a head");
    e.set_catalog(&catalog(without)).expect("fits");
    assert_eq!(e.check(&q("sharing", None, None), now).expect("known").reason, Reason::NoConsent);
    assert_eq!(e.check(&q("sharing", None, Some("US-CA")), now), Err(QueryError::UnknownJurisdiction));
    assert_eq!(e.subject_jurisdiction("s1").as_deref(), Some("US-CA"));
}

#[test]
fn check_with_sees_a_jurisdiction_being_set() {
    let e = engine();
    let now = Timestamp::from_micros(NOW);
    let extra = [event(1, &Line { jurisdiction: Some("US-CA"), ..l("marketing.direct", Action::Grant) })];
    let d = e.check_with(&q("sharing", None, None), &extra, now).expect("known");
    assert_eq!(d.reason, Reason::NotOptedOut);
    assert_eq!(e.check(&q("sharing", None, None), now).expect("known").reason, Reason::NoConsent);
}

// ---- properties -------------------------------------------------------------------------------------

const PURPOSES: [&str; 4] = ["marketing", "marketing.direct", "sharing", "sensitive"];
const NEGATIVES: [Action; 4] = [Action::Withdraw, Action::Deny, Action::Object, Action::Restrict];

type Arb = (usize, Action, bool, bool, bool);

fn arb_line() -> impl Strategy<Value = Arb> {
    (
        0..PURPOSES.len(),
        prop::sample::select(Action::ALL.to_vec()),
        any::<bool>(), // scoped to crm (sharing only)
        any::<bool>(), // expired
        any::<bool>(), // GPC
    )
}

fn line(&(p, action, scoped, expired, gpc): &Arb) -> Line<'static> {
    let recipients: &[&str] = if scoped && PURPOSES[p] == "sharing" { &["crm"] } else { &[] };
    Line { recipients, expired, gpc: gpc && action == Action::Withdraw, ..l(PURPOSES[p], action) }
}

fn build(lines: &[Arb]) -> Engine {
    let e = engine();
    for (i, a) in lines.iter().enumerate() {
        e.apply("s1", &event(i as u64 + 1, &line(a))).expect("fits");
    }
    e
}

proptest! {
    /// Under opt-out, an opt-out (withdraw, deny, object, restrict, GPC) of the purpose or one above it,
    /// not followed by a grant, always denies.
    #[test]
    fn opt_out_never_allows_after_an_opt_out(lines in prop::collection::vec(arb_line(), 0..12),
                                             p in 0..PURPOSES.len(), n in 0..NEGATIVES.len(), gpc: bool,
                                             jurisdiction in prop::sample::select(vec!["US-CA", "US-VA"])) {
        let mut lines = lines;
        lines.push((p, NEGATIVES[n], false, false, gpc));
        let e = build(&lines);
        let queried = PURPOSES[p];
        for j in [Some(jurisdiction), None] {
            let d = e.check(&q(queried, None, j), Timestamp::from_micros(NOW)).expect("known");
            prop_assert!(!d.allowed, "{:?}", d);
        }
    }

    /// Under opt-in (a place listing no opt-out, or a kind it keeps opt-in), nothing is allowed without a
    /// live covering grant.
    #[test]
    fn opt_in_never_allows_without_a_grant(lines in prop::collection::vec(arb_line(), 0..12),
                                           p in 0..PURPOSES.len(), ads: bool) {
        let e = build(&lines);
        let recipient = (ads && PURPOSES[p] == "sharing").then_some("ads");
        let now = Timestamp::from_micros(NOW);
        let mut asked = vec![q(PURPOSES[p], recipient, Some("DE"))];
        if PURPOSES[p] == "sensitive" {
            asked.push(q(PURPOSES[p], recipient, Some("US-VA")));
        }
        for query in asked {
            let d = e.check(&query, now).expect("known");
            if d.allowed {
                prop_assert_eq!(d.reason, Reason::Granted);
                let (_, action, _, expired, _) = lines[d.event_seq.expect("a grant") as usize - 1];
                prop_assert!(action.is_positive() && !expired);
            }
        }
    }

    /// Without a jurisdiction the answer is exactly the one an opt-in place gives, and an opt-out place
    /// changes only answers that rested on no opt-out (`no_consent`, `expired`, `not_covered`): to
    /// `not_opted_out`, or to the opt-out a lapse (`expire`) had hidden.
    #[test]
    fn no_jurisdiction_decides_as_before(lines in prop::collection::vec(arb_line(), 0..12),
                                         p in 0..PURPOSES.len(), ads: bool) {
        let e = build(&lines);
        let recipient = (ads && PURPOSES[p] == "sharing").then_some("ads");
        let now = Timestamp::from_micros(NOW);
        let before = e.check(&q(PURPOSES[p], recipient, None), now).expect("known");
        prop_assert_eq!(e.check(&q(PURPOSES[p], recipient, Some("DE")), now).expect("known"), before);
        let ca = e.check(&q(PURPOSES[p], recipient, Some("US-CA")), now).expect("known");
        if ca != before {
            prop_assert!(matches!(before.reason, Reason::NoConsent | Reason::Expired | Reason::NotCovered),
                         "{:?}", before);
            let hidden = before.reason == Reason::Expired && !ca.allowed;
            prop_assert!(ca == Decision::new(Reason::NotOptedOut, None) || hidden, "{:?}", ca);
        }
    }
}
