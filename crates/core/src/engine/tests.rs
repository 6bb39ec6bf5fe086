//! Table-driven tests of every decision rule, and property tests of their invariants.

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::ledger::{Action, Event, NewEvent, Scope};

const CATALOG: &str = r#"
data_categories:
  - {key: user, name: User}
  - {key: user.contact, name: Contact}
  - {key: user.contact.email, name: Email}
  - {key: user.contact.phone, name: Phone}
  - {key: user.location, name: Location}
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n, channels: [email, sms, push]}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n, channels: [email, sms]}
  - {key: marketing.direct.weekly, name: Weekly, basis: consent, notice: n}
  - {key: analytics, name: Analytics, basis: consent, notice: n, categories: [user.contact, user.location]}
  - {key: service, name: Service, basis: contract}
  - {key: service.improvement, name: Improvement, basis: legitimate_interest}
  - {key: sharing, name: Sharing, basis: consent, notice: n, sale_or_sharing: true, recipients: [ads, crm]}
channels:
  - {key: email, name: Email}
  - {key: sms, name: SMS}
  - {key: push, name: Push}
  - {key: voice, name: Voice}
recipients:
  - {key: ads, name: Ads, kind: third_party}
  - {key: crm, name: CRM, kind: processor}
notices:
  - {key: n, title: N, language: en, text: Some text}
"#;

const NOW: i64 = 1_000_000_000;

fn engine() -> Engine {
    let doc = CatalogDocument::from_yaml(CATALOG).expect("parses");
    let engine = Engine::new();
    engine.set_catalog(&Catalog::validate(doc).expect("valid")).expect("fits");
    engine
}

/// One history line: purpose, action, categories, channels, recipients, and expiry.
struct H<'a> {
    purpose: &'a str,
    action: Action,
    cats: &'a [&'a str],
    chans: &'a [&'a str],
    recs: &'a [&'a str],
    expires: Option<i64>,
    actor: &'a str,
}

fn h<'a>(purpose: &'a str, action: Action) -> H<'a> {
    H { purpose, action, cats: &[], chans: &[], recs: &[], expires: None, actor: "key:test" }
}

impl<'a> H<'a> {
    fn cats(mut self, c: &'a [&'a str]) -> Self {
        self.cats = c;
        self
    }
    fn chans(mut self, c: &'a [&'a str]) -> Self {
        self.chans = c;
        self
    }
    fn recs(mut self, r: &'a [&'a str]) -> Self {
        self.recs = r;
        self
    }
    fn expires(mut self, at: i64) -> Self {
        self.expires = Some(at);
        self
    }
    fn actor(mut self, a: &'a str) -> Self {
        self.actor = a;
        self
    }
}

fn event(seq: u64, line: &H<'_>) -> Event {
    let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
    Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: line.purpose.into(),
            action: line.action,
            scope: Scope::new(list(line.cats), list(line.chans), list(line.recs)),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: line.actor.into(),
            expires_at: line.expires.map(Timestamp::from_micros),
        },
        seq,
        "p".into(),
        Timestamp::from_micros(seq as i64),
        String::new(),
    )
}

fn load(history: &[H<'_>]) -> Engine {
    let e = engine();
    for (i, line) in history.iter().enumerate() {
        e.apply("s1", &event(i as u64 + 1, line)).expect("fits");
    }
    e
}

fn q<'a>(purpose: &'a str, category: Option<&'a str>, channel: Option<&'a str>) -> Query<'a> {
    Query { subject: "s1", purpose, category, channel, recipient: None, jurisdiction: None }
}

/// Checks `query` against `history` and compares reason and the 1-based event the answer rests on.
#[track_caller]
fn check(history: &[H<'_>], query: Query<'_>, reason: Reason, event: Option<u64>) {
    let d = load(history).check(&query, Timestamp::from_micros(NOW)).expect("known names");
    let allowed = matches!(
        reason,
        Reason::Granted
            | Reason::BasisContract
            | Reason::BasisLegitimateInterest
            | Reason::BasisLegalObligation
            | Reason::BasisVitalInterest
            | Reason::BasisPublicTask
    );
    assert_eq!((d.allowed, d.reason, d.event_seq), (allowed, reason, event), "{query:?}");
    assert_eq!(d.not_covered, None, "{query:?}");
}

/// Checks that `query` against `history` is `not_covered` in `dimension`, resting on `event`.
#[track_caller]
fn uncovered(history: &[H<'_>], query: Query<'_>, dimension: Dimension, event: Option<u64>) {
    let d = load(history).check(&query, Timestamp::from_micros(NOW)).expect("known names");
    assert_eq!(d, Decision::not_covered(dimension, event), "{query:?}");
    assert!(!d.allowed);
}

use Action::*;
use Reason::*;

#[test]
fn default_deny() {
    check(&[], q("marketing.direct", None, None), NoConsent, None);
    check(&[h("analytics", Grant)], q("marketing.direct", None, None), NoConsent, None);
}

#[test]
fn grant_and_withdraw() {
    check(&[h("marketing.direct", Grant)], q("marketing.direct", None, None), Granted, Some(1));
    check(
        &[h("marketing.direct", Grant), h("marketing.direct", Withdraw)],
        q("marketing.direct", None, None),
        Withdrawn,
        Some(2),
    );
    check(
        &[h("marketing.direct", Withdraw), h("marketing.direct", Grant)],
        q("marketing.direct", None, None),
        Granted,
        Some(2),
    );
    check(&[h("marketing.direct", Deny)], q("marketing.direct", None, None), Denied, Some(1));
    check(&[h("marketing.direct", Renew)], q("marketing.direct", None, None), Granted, Some(1));
}

#[test]
fn parent_purpose_covers_children() {
    check(&[h("marketing", Grant)], q("marketing.direct", None, None), Granted, Some(1));
    check(&[h("marketing", Grant)], q("marketing.direct.weekly", None, None), Granted, Some(1));
    check(&[h("marketing.direct", Grant)], q("marketing", None, None), NoConsent, None);
}

#[test]
fn child_negative_wins_over_parent_grant_whenever_given() {
    check(
        &[h("marketing", Grant), h("marketing.direct", Withdraw)],
        q("marketing.direct", None, None),
        Withdrawn,
        Some(2),
    );
    check(
        &[h("marketing.direct", Deny), h("marketing", Grant)],
        q("marketing.direct", None, None),
        Denied,
        Some(1),
    );
    // The sibling stays granted.
    check(
        &[h("marketing", Grant), h("marketing.direct.weekly", Withdraw)],
        q("marketing.direct", None, None),
        Granted,
        Some(1),
    );
}

#[test]
fn later_parent_withdraw_wins_over_child_grant() {
    check(
        &[h("marketing.direct", Grant), h("marketing", Withdraw)],
        q("marketing.direct", None, None),
        Withdrawn,
        Some(2),
    );
    // An earlier parent withdraw is overridden by a later, more specific grant.
    check(
        &[h("marketing", Withdraw), h("marketing.direct", Grant)],
        q("marketing.direct", None, None),
        Granted,
        Some(2),
    );
}

#[test]
fn channel_scopes() {
    let email = [h("marketing.direct", Grant).chans(&["email"])];
    check(&email, q("marketing.direct", None, Some("email")), Granted, Some(1));
    uncovered(&email, q("marketing.direct", None, Some("sms")), Dimension::Channel, Some(1));
    // A query without a channel asks about every channel: a grant for e-mail alone does not cover it.
    uncovered(&email, q("marketing.direct", None, None), Dimension::Channel, Some(1));

    let both_then_sms_out = [
        h("marketing.direct", Grant).chans(&["email", "sms"]),
        h("marketing.direct", Withdraw).chans(&["sms"]),
    ];
    check(&both_then_sms_out, q("marketing.direct", None, Some("email")), Granted, Some(1));
    check(&both_then_sms_out, q("marketing.direct", None, Some("sms")), Withdrawn, Some(2));

    // An unscoped later withdraw takes everything back.
    let all_out = [h("marketing.direct", Grant).chans(&["email"]), h("marketing.direct", Withdraw)];
    check(&all_out, q("marketing.direct", None, Some("email")), Withdrawn, Some(2));

    // A withdraw of sms only does not touch e-mail under an unscoped grant...
    let unscoped = [h("marketing.direct", Grant), h("marketing.direct", Withdraw).chans(&["sms"])];
    check(&unscoped, q("marketing.direct", None, Some("email")), Granted, Some(1));
    check(&unscoped, q("marketing.direct", None, Some("sms")), Withdrawn, Some(2));
    // ...but a query about all channels is touched by it.
    check(&unscoped, q("marketing.direct", None, None), Withdrawn, Some(2));

    // A narrower withdraw wins over a later broader grant; a grant of the same scope lifts it.
    let narrower = [h("marketing.direct", Withdraw).chans(&["sms"]), h("marketing.direct", Grant)];
    check(&narrower, q("marketing.direct", None, Some("sms")), Withdrawn, Some(1));
    check(&narrower, q("marketing.direct", None, Some("email")), Granted, Some(2));
    let relifted =
        [h("marketing.direct", Withdraw).chans(&["sms"]), h("marketing.direct", Grant).chans(&["sms"])];
    check(&relifted, q("marketing.direct", None, Some("sms")), Granted, Some(2));
}

#[test]
fn category_scopes_follow_the_hierarchy() {
    let contact = [h("analytics", Grant).cats(&["user.contact"])];
    check(&contact, q("analytics", Some("user.contact.email"), None), Granted, Some(1));
    check(&contact, q("analytics", Some("user.contact"), None), Granted, Some(1));
    uncovered(&contact, q("analytics", Some("user.location"), None), Dimension::Category, Some(1));

    let email_only = [h("analytics", Grant).cats(&["user.contact.email"])];
    uncovered(&email_only, q("analytics", Some("user.contact"), None), Dimension::Category, Some(1));

    // A more specific deny wins over a broader grant, given before or after.
    for history in [
        [h("analytics", Grant).cats(&["user.contact"]), h("analytics", Deny).cats(&["user.contact.email"])],
        [h("analytics", Deny).cats(&["user.contact.email"]), h("analytics", Grant).cats(&["user.contact"])],
    ] {
        let deny_seq = if history[0].action == Deny { 1 } else { 2 };
        let grant_seq = 3 - deny_seq;
        check(&history, q("analytics", Some("user.contact.email"), None), Denied, Some(deny_seq));
        check(&history, q("analytics", Some("user.contact.phone"), None), Granted, Some(grant_seq));
        // Asking about all contact data overlaps the denied e-mail.
        check(&history, q("analytics", Some("user.contact"), None), Denied, Some(deny_seq));
    }
}

#[test]
fn recipients() {
    let crm = [h("sharing", Grant).recs(&["crm"])];
    let query = |r| Query { recipient: Some(r), ..q("sharing", None, None) };
    check(&crm, query("crm"), Granted, Some(1));
    uncovered(&crm, query("ads"), Dimension::Recipient, Some(1));
}

#[test]
fn expiry() {
    let lapsed = [h("marketing.direct", Grant).expires(NOW - 1)];
    check(&lapsed, q("marketing.direct", None, None), Expired, Some(1));
    let live = [h("marketing.direct", Grant).expires(NOW + 1)];
    check(&live, q("marketing.direct", None, None), Granted, Some(1));
    let renewed =
        [h("marketing.direct", Grant).expires(NOW - 1), h("marketing.direct", Renew).expires(NOW + 5)];
    check(&renewed, q("marketing.direct", None, None), Granted, Some(2));
    let expired_event = [h("marketing.direct", Grant), h("marketing.direct", Expire)];
    check(&expired_event, q("marketing.direct", None, None), Expired, Some(2));
}

#[test]
fn declared_scope_of_the_purpose() {
    let all = [h("marketing.direct", Grant)];
    uncovered(&all, q("marketing.direct", None, Some("push")), Dimension::Channel, None);
    check(&all, q("analytics", Some("user.contact"), None), NoConsent, None);
    uncovered(&[h("analytics", Grant)], q("analytics", Some("user"), None), Dimension::Category, None);
    // Several dimensions outside what the purpose declares: the first of category, channel, recipient.
    let outside_twice = Query { recipient: Some("ads"), ..q("marketing.direct", Some("user"), Some("push")) };
    uncovered(&all, outside_twice, Dimension::Channel, None);
    let sharing = Query { recipient: Some("ads"), ..q("sharing", None, Some("email")) };
    uncovered(&[h("sharing", Grant).chans(&["sms"]).recs(&["crm"])], sharing, Dimension::Channel, Some(1));
    // A grant scoped in two dimensions the query leaves open: the category is named first.
    let scoped = [h("analytics", Grant).cats(&["user.contact"]).recs(&["crm"])];
    uncovered(&scoped, q("analytics", None, None), Dimension::Category, Some(1));
}

#[test]
fn other_bases() {
    check(&[], q("service", None, None), BasisContract, None);
    check(&[], q("service.improvement", None, None), BasisLegitimateInterest, None);
    check(&[h("service.improvement", Object)], q("service.improvement", None, None), Objected, Some(1));
    check(&[h("service", Restrict)], q("service.improvement", None, None), Restricted, Some(1));
    check(&[h("service.improvement", Object)], q("service", None, None), BasisContract, None);
    check(&[h("marketing.direct", Object)], q("marketing.direct", None, None), Objected, Some(1));
}

#[test]
fn gpc_opt_out() {
    check(
        &[h("sharing", Grant), h("sharing", Withdraw).actor(crate::ledger::ACTOR_GPC)],
        q("sharing", None, None),
        GpcOptOut,
        Some(2),
    );
    assert_eq!(engine().sale_or_sharing_purposes(), vec!["sharing".to_owned()]);
}

#[test]
fn unknown_names_are_errors_not_denials() {
    let e = engine();
    let now = Timestamp::from_micros(NOW);
    assert_eq!(e.check(&q("nope", None, None), now), Err(QueryError::UnknownPurpose));
    assert_eq!(e.check(&q("analytics", Some("user.nope"), None), now), Err(QueryError::UnknownCategory));
    assert_eq!(e.check(&q("marketing", None, Some("fax")), now), Err(QueryError::UnknownChannel));
    let rq = Query { recipient: Some("nobody"), ..q("sharing", None, None) };
    assert_eq!(e.check(&rq, now), Err(QueryError::UnknownRecipient));
}

#[test]
fn apply_is_idempotent_and_commutative() {
    let lines = [h("marketing.direct", Grant), h("marketing.direct", Withdraw), h("marketing", Grant)];
    let events: Vec<Event> = lines.iter().enumerate().map(|(i, l)| event(i as u64 + 1, l)).collect();
    let forward = engine();
    let backward = engine();
    for e in &events {
        forward.apply("s1", e).expect("fits");
    }
    for e in events.iter().rev().chain(events.iter()) {
        backward.apply("s1", e).expect("fits");
    }
    let now = Timestamp::from_micros(NOW);
    for purpose in ["marketing", "marketing.direct", "marketing.direct.weekly"] {
        let query = q(purpose, None, None);
        assert_eq!(forward.check(&query, now), backward.check(&query, now), "{purpose}");
    }
}

#[test]
fn statement_stays_small() {
    assert_eq!(std::mem::size_of::<Stmt>(), 32);
}

// ---- properties -------------------------------------------------------------------------------------

const PURPOSES: [&str; 4] = ["marketing", "marketing.direct", "marketing.direct.weekly", "analytics"];
const CHANNELS: [&str; 3] = ["email", "sms", "push"];

fn arb_line() -> impl Strategy<Value = (usize, Action, Vec<usize>, bool)> {
    (
        0..PURPOSES.len(),
        prop::sample::select(Action::ALL.to_vec()),
        prop::collection::vec(0..CHANNELS.len(), 0..3),
        any::<bool>(),
    )
}

fn build(lines: &[(usize, Action, Vec<usize>, bool)]) -> Engine {
    let e = engine();
    for (i, (p, action, chans, expired)) in lines.iter().enumerate() {
        let chans: Vec<&str> = chans.iter().map(|&c| CHANNELS[c]).collect();
        // analytics declares no channels, so channel scopes there stay empty.
        let chans: &[&str] = if PURPOSES[*p] == "analytics" { &[] } else { &chans };
        let mut line = h(PURPOSES[*p], *action).chans(chans);
        if *expired {
            line = line.expires(NOW - 10);
        }
        e.apply("s1", &event(i as u64 + 1, &line)).expect("fits");
    }
    e
}

proptest! {
    /// For any history, a later unscoped withdraw of a purpose denies it, whatever the query.
    #[test]
    fn later_withdraw_denies(lines in prop::collection::vec(arb_line(), 0..12), p in 0..PURPOSES.len(),
                             child in any::<bool>(), ch in prop::option::of(0..CHANNELS.len())) {
        let mut lines = lines;
        lines.push((p, Action::Withdraw, vec![], false));
        let e = build(&lines);
        // The purpose itself, or a purpose under it.
        let queried = if child {
            PURPOSES.iter().copied().find(|k| k.starts_with(PURPOSES[p]) && *k != PURPOSES[p]).unwrap_or(PURPOSES[p])
        } else {
            PURPOSES[p]
        };
        let channel = if queried == "analytics" { None } else { ch.map(|c| CHANNELS[c]) };
        let d = e.check(&q(queried, None, channel), Timestamp::from_micros(NOW)).expect("known");
        prop_assert!(!d.allowed, "{:?}", d);
    }

    /// A live unscoped grant on a parent covers every child that is not separately denied.
    #[test]
    fn parent_grant_covers_children(lines in prop::collection::vec(arb_line(), 0..12)) {
        let mut lines = lines;
        lines.push((0, Action::Grant, vec![], false));
        let e = build(&lines);
        let now = Timestamp::from_micros(NOW);
        for child in ["marketing.direct", "marketing.direct.weekly"] {
            // "Separately denied": a negative statement on the child's own purpose chain below `marketing`,
            // or one on `marketing` narrowed to the queried channel (more specific than the grant).
            let separately_denied = lines.iter().any(|(p, a, chans, _)| {
                !a.is_positive()
                    && child.starts_with(PURPOSES[*p])
                    && (PURPOSES[*p] != "marketing" || chans.iter().any(|&c| CHANNELS[c] == "email"))
            });
            let d = e.check(&q(child, None, Some("email")), now).expect("known");
            if !separately_denied {
                prop_assert!(d.allowed, "{} {:?}", child, d);
            }
        }
    }

    /// A consent purpose is never allowed without a live grant that covers the query.
    #[test]
    fn never_allowed_without_covering_grant(lines in prop::collection::vec(arb_line(), 0..12),
                                            p in 0..PURPOSES.len(), ch in prop::option::of(0..CHANNELS.len())) {
        let e = build(&lines);
        let queried = PURPOSES[p];
        let channel = if queried == "analytics" { None } else { ch.map(|c| CHANNELS[c]) };
        let d = e.check(&q(queried, None, channel), Timestamp::from_micros(NOW)).expect("known");
        if d.allowed {
            let seq = d.event_seq.expect("a grant is named") as usize;
            let (gp, action, gch, expired) = &lines[seq - 1];
            prop_assert!(action.is_positive() && !expired);
            prop_assert!(queried.starts_with(PURPOSES[*gp]));
            let covers = gch.is_empty() || PURPOSES[*gp] == "analytics"
                || channel.is_some_and(|c| gch.iter().any(|&i| CHANNELS[i] == c));
            prop_assert!(covers);
        }
    }
}

proptest! {
    /// `not_covered` names a dimension, and nothing else does; `allowed` always follows the reason.
    #[test]
    fn not_covered_names_a_dimension(lines in prop::collection::vec(arb_line(), 0..12), p in 0..PURPOSES.len(),
                                     cat in prop::option::of(prop::sample::select(CATEGORIES.to_vec())),
                                     ch in prop::option::of(0..CHANNELS.len())) {
        let e = build(&lines);
        let query = q(PURPOSES[p], cat, ch.map(|c| CHANNELS[c]));
        let d = e.check(&query, Timestamp::from_micros(NOW)).expect("known");
        prop_assert_eq!(d.reason == Reason::NotCovered, d.not_covered.is_some(), "{:?}", d);
        prop_assert_eq!(d.allowed, d.reason.is_allowed(), "{:?}", d);
    }
}

const CATEGORIES: [&str; 5] =
    ["user", "user.contact", "user.contact.email", "user.contact.phone", "user.location"];

#[test]
fn reasons_know_their_place() {
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i, "{r:?}");
    }
}

#[test]
fn tally_counts_each_subject_once_per_consent_purpose() {
    let e = engine();
    let apply = |subject: &str, seq: u64, line: H<'_>| e.apply(subject, &event(seq, &line)).expect("fits");
    apply("granted", 1, h("marketing", Grant));
    apply("withdrawn", 2, h("marketing", Grant));
    apply("withdrawn", 3, h("marketing", Withdraw));
    apply("email-only", 4, h("marketing", Grant).chans(&["email"]));
    apply("lapsed", 5, h("marketing", Grant).expires(NOW - 1));
    apply("other", 6, h("analytics", Grant));
    let before = e.generation();
    let tally = e.consent_tally(Timestamp::from_micros(NOW));
    assert_eq!(e.generation(), before, "counting changes nothing");
    let purposes: Vec<&str> = tally.iter().map(|t| t.purpose.as_str()).collect();
    // Consent purposes only: not `service` (contract) nor `service.improvement` (legitimate interest).
    assert_eq!(
        purposes,
        ["marketing", "marketing.direct", "marketing.direct.weekly", "analytics", "sharing"]
    );
    let count = |purpose: &str, reason: Reason| {
        tally.iter().find(|t| t.purpose == purpose).expect("tallied").counts[reason.index()]
    };
    for purpose in ["marketing", "marketing.direct"] {
        assert_eq!(count(purpose, Granted), 1, "{purpose}");
        assert_eq!(count(purpose, Withdrawn), 1, "{purpose}");
        assert_eq!(count(purpose, NotCovered), 1, "{purpose}");
        assert_eq!(count(purpose, Expired), 1, "{purpose}");
        assert_eq!(count(purpose, NoConsent), 1, "{purpose}");
    }
    assert_eq!((count("analytics", Granted), count("analytics", NoConsent)), (1, 4));
    for t in &tally {
        assert_eq!(t.counts.iter().sum::<u64>(), 5, "every subject once: {}", t.purpose);
    }
    e.forget("granted");
    assert!(e.generation() > before);
    let after = e.consent_tally(Timestamp::from_micros(NOW));
    assert_eq!(after[0].counts[Granted.index()], 0);
}

#[test]
fn check_with_previews_a_change_without_applying_it() {
    let e = load(&[h("marketing.direct", Grant)]);
    let now = Timestamp::from_micros(NOW);
    let query = q("marketing.direct", None, None);
    let withdraw = event(2, &h("marketing.direct", Withdraw));
    let preview = e.check_with(&query, std::slice::from_ref(&withdraw), now).expect("known");
    assert_eq!((preview.allowed, preview.reason, preview.event_seq), (false, Withdrawn, Some(2)));
    // The engine itself is unchanged until the event is applied.
    assert_eq!(e.check(&query, now).expect("known").reason, Granted);
    e.apply("s1", &withdraw).expect("fits");
    assert_eq!(e.check(&query, now).expect("known"), preview);
    // A new subject's first grant.
    let fresh = Query { subject: "new", ..query };
    let grant = event(3, &h("marketing", Grant));
    let d = e.check_with(&fresh, std::slice::from_ref(&grant), now).expect("known");
    assert_eq!((d.allowed, d.event_seq), (true, Some(3)));
}
