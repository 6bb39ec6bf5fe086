//! Objections and restrictions stand apart from the consent choice: a later grant, denial or withdrawal
//! on the same purpose and scope never takes their place, so a purpose on another legal basis that an
//! objection binds stays objected to; on a consent purpose only a later grant covering the use lifts one.

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::ledger::{Action, Event, NewEvent, Scope};

/// A consent purpose with a child on legitimate interest (insights drawn from the marketing data) and a
/// consent child, and a purpose on contract.
const CATALOG: &str = r#"
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n, channels: [email, sms]}
  - {key: marketing.insights, name: Insights, basis: legitimate_interest, channels: [email, sms]}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n, channels: [email, sms]}
  - {key: service, name: Service, basis: contract}
channels:
  - {key: email, name: Email}
  - {key: sms, name: SMS}
notices:
  - {key: n, title: N, language: en, text: Some text}
"#;

pub(super) const PURPOSES: [&str; 4] = ["marketing", "marketing.insights", "marketing.direct", "service"];
pub(super) const CHANNELS: [&str; 2] = ["email", "sms"];
pub(super) const NOW: i64 = 2_000_000_000_000_000;

/// An engine holding [`CATALOG`] (the engine image tests share it).
pub(super) fn engine() -> Engine {
    let doc = CatalogDocument::from_yaml(CATALOG).expect("parses");
    let engine = Engine::new();
    engine.set_catalog(&Catalog::validate(doc).expect("valid")).expect("fits");
    engine
}

/// One statement: purpose, action, channels, and when it took effect (its `occurred_at`: an import can
/// place an older change after a newer one).
#[derive(Debug, Clone)]
struct Line {
    purpose: usize,
    action: Action,
    channels: Vec<usize>,
    at: i64,
}

fn line(purpose: &str, action: Action, at: i64) -> Line {
    let purpose = PURPOSES.iter().position(|p| *p == purpose).expect("a test purpose");
    Line { purpose, action, channels: Vec::new(), at }
}

fn event(seq: u64, l: &Line) -> Event {
    let purpose = PURPOSES[l.purpose];
    let channels = if purpose == "service" {
        Vec::new()
    } else {
        l.channels.iter().map(|&i| CHANNELS[i].to_owned()).collect()
    };
    Event::place(
        NewEvent {
            evidence: None,
            jurisdiction: None,
            occurred_at: Some(Timestamp::from_micros(l.at)),
            purpose: purpose.into(),
            action: l.action,
            scope: Scope::new(Vec::new(), channels, Vec::new()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: "key:test".into(),
            expires_at: None,
        },
        seq,
        "p".into(),
        Timestamp::from_micros(NOW - 1_000),
        String::new(),
    )
}

fn events(lines: &[Line]) -> Vec<Event> {
    lines.iter().enumerate().map(|(i, l)| event(i as u64 + 1, l)).collect()
}

fn load(events: &[Event]) -> Engine {
    let e = engine();
    for ev in events {
        e.apply("s", ev).expect("fits");
    }
    e
}

fn ask(e: &Engine, purpose: &str, channel: Option<&str>) -> Decision {
    let q = Query { subject: "s", purpose, category: None, channel, recipient: None, jurisdiction: None };
    e.check(&q, Timestamp::from_micros(NOW)).expect("known")
}

use Action::*;

/// The bug: an objection to marketing, then a withdrawal of it (the same purpose and scope). The
/// withdrawal took the objection's place, and insights (legitimate interest, under marketing) was allowed
/// again although the person had objected.
#[test]
fn a_later_withdrawal_keeps_the_objection() {
    for refusal in [Withdraw, Deny, Expire] {
        let e = load(&events(&[line("marketing", Object, 10), line("marketing", refusal, 20)]));
        let d = ask(&e, "marketing.insights", None);
        assert_eq!((d.allowed, d.reason, d.event_seq), (false, Reason::Objected, Some(1)), "{refusal:?}");
        assert!(!ask(&e, "marketing", None).allowed, "{refusal:?}");
    }
    // A restriction likewise, and the two apart from each other.
    let e = load(&events(&[line("marketing", Restrict, 10), line("marketing", Withdraw, 20)]));
    assert_eq!(ask(&e, "marketing.insights", Some("email")).reason, Reason::Restricted);
    let e = load(&events(&[line("marketing", Object, 10), line("marketing", Restrict, 20)]));
    assert_eq!(ask(&e, "marketing.insights", None).reason, Reason::Restricted, "the latest names it");
    let e = load(&events(&[line("marketing", Restrict, 10), line("marketing", Object, 20)]));
    assert_eq!(ask(&e, "marketing.insights", None).reason, Reason::Objected);
}

/// On a consent purpose a later grant covering the use lifts an objection (rule 4: a later grant wins);
/// a purpose on another basis stays objected to whatever consent is given.
#[test]
fn a_later_grant_answers_the_consent_purpose_only() {
    let e = load(&events(&[
        line("marketing", Object, 10),
        line("marketing", Withdraw, 20),
        line("marketing", Grant, 30),
    ]));
    let d = ask(&e, "marketing", None);
    assert_eq!((d.allowed, d.reason, d.event_seq), (true, Reason::Granted, Some(3)));
    assert!(ask(&e, "marketing.direct", Some("sms")).allowed);
    let d = ask(&e, "marketing.insights", None);
    assert_eq!((d.allowed, d.reason, d.event_seq), (false, Reason::Objected, Some(1)));
    // An older grant (imported late) lifts nothing.
    let e = load(&events(&[line("marketing", Object, 10), line("marketing", Grant, 5)]));
    assert_eq!(ask(&e, "marketing", None).reason, Reason::Objected);
}

// ---- properties -------------------------------------------------------------------------------------

fn arb_line() -> impl Strategy<Value = Line> {
    (
        0..PURPOSES.len(),
        prop::sample::select(vec![Grant, Renew, Deny, Withdraw, Expire, Object, Restrict]),
        prop::collection::vec(0..CHANNELS.len(), 0..2),
        0i64..20,
    )
        .prop_map(|(purpose, action, channels, at)| {
            // Only objections and restrictions apply to a purpose on another basis.
            let action = match (PURPOSES[purpose], action) {
                ("marketing.insights" | "service", Grant | Renew | Deny | Withdraw | Expire) => Object,
                (_, a) => a,
            };
            Line { purpose, action, channels, at }
        })
}

/// Whether statement `s` speaks for a query of `purpose` through `channel` (a purpose at or above it,
/// a scope that touches the query).
fn applies(s: &Event, purpose: &str, channel: Option<&str>) -> bool {
    let above = purpose == s.purpose
        || (purpose.starts_with(s.purpose.as_str())
            && purpose.as_bytes().get(s.purpose.len()) == Some(&b'.'));
    above && (s.scope.channels.is_empty() || channel.is_none_or(|c| s.scope.channels.iter().any(|x| x == c)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// After an objection or restriction that speaks for a use, the use is allowed only on a consent
    /// purpose and only on a grant later than it: no later withdrawal, denial, lapse or objection, and
    /// no older grant imported after it, makes it allowed; a purpose on another basis never is.
    #[test]
    fn an_objection_stands_until_a_later_grant(lines in prop::collection::vec(arb_line(), 0..10),
                                               order in any::<prop::sample::Index>()) {
        let evs = events(&lines);
        // Applied in any order: the state does not depend on it.
        let mut shuffled = evs.clone();
        let k = order.index(shuffled.len().max(1));
        shuffled.rotate_left(k);
        let e = load(&shuffled);
        for purpose in PURPOSES {
            for channel in std::iter::once(None).chain(CHANNELS.iter().copied().map(Some)) {
                let channel = if purpose == "service" { None } else { channel };
                let d = ask(&e, purpose, channel);
                let objections: Vec<&Event> = evs
                    .iter()
                    .filter(|s| matches!(s.action, Object | Restrict) && applies(s, purpose, channel))
                    .collect();
                if !d.allowed || objections.is_empty() {
                    continue;
                }
                prop_assert_eq!(d.reason, Reason::Granted, "{} {:?} allowed past {:?}", purpose, channel, objections);
                let g = evs.iter().find(|s| Some(s.seq) == d.event_seq).expect("rests on an event");
                for o in objections {
                    prop_assert!(g.order() > o.order(), "{} {:?}: {:?} is not later than {:?}", purpose, channel, g, o);
                }
            }
        }
    }

    /// The same told as a story: whatever came before, an objection to marketing followed by any number
    /// of refusals, lapses and grants older than it keeps insights objected to and marketing denied.
    #[test]
    fn nothing_but_a_later_grant_follows_an_objection(before in prop::collection::vec(arb_line(), 0..6),
                                                      after in prop::collection::vec(
                                                          (prop::sample::select(vec![Withdraw, Deny, Expire, Grant, Renew, Restrict]), 0..3usize, 0i64..20), 0..6)) {
        let mut lines = before;
        lines.push(line("marketing", Object, 20));
        for (action, purpose, at) in after {
            // Grants older than the objection; refusals at any time.
            let at = if action.is_positive() { at } else { at + 10 };
            let purpose = ["marketing", "marketing.direct", "marketing"][purpose];
            lines.push(line(purpose, action, at));
        }
        let e = load(&events(&lines));
        for channel in [None, Some("email"), Some("sms")] {
            let d = ask(&e, "marketing.insights", channel);
            prop_assert!(!d.allowed && matches!(d.reason, Reason::Objected | Reason::Restricted), "{:?}", d);
            prop_assert!(!ask(&e, "marketing", channel).allowed);
        }
    }
}
