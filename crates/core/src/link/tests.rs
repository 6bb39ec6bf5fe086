//! The merge rule of a link: a table of the cases the rule names, and property tests over random
//! histories of both records (the survivor never allows what neither record allowed, nor past a refusal
//! at least as recent as the grant its answer rests on; a link into an empty record changes no answer).

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::engine::Decision;
use crate::ledger::ACTOR_GPC;

const CATALOG: &str = r#"
data_categories:
  - {key: user, name: User}
  - {key: user.contact, name: Contact}
  - {key: user.contact.email, name: Email}
  - {key: user.location, name: Location}
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n, channels: [email, sms], kinds: [targeted_advertising]}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n}
  - {key: marketing.insights, name: Insights, basis: legitimate_interest, channels: [email, sms]}
  - {key: analytics, name: Analytics, basis: consent, notice: n, categories: [user.contact, user.location]}
  - {key: sharing, name: Sharing, basis: consent, notice: n, sale_or_sharing: true, kinds: [sale, sharing],
     recipients: [ads, crm]}
  - {key: service, name: Service, basis: contract}
  - {key: service.tips, name: Tips, basis: consent, notice: n}
channels:
  - {key: email, name: Email}
  - {key: sms, name: SMS}
recipients:
  - {key: ads, name: Ads, kind: third_party}
  - {key: crm, name: CRM, kind: processor}
notices:
  - {key: n, title: N, language: en, text: Some text}
jurisdictions:
  - key: US-CA
    name: California
    regimes: {sale: opt_out, sharing: opt_out, targeted_advertising: opt_out}
"#;

const NOW: i64 = 1_000_000_000;

fn catalog() -> Catalog {
    Catalog::validate(CatalogDocument::from_yaml(CATALOG).expect("parses")).expect("valid")
}

fn now() -> Timestamp {
    Timestamp::from_micros(NOW)
}

/// A statement of one record: purpose, action, scope, when it was made, and its expiry.
#[derive(Debug, Clone)]
struct S {
    purpose: &'static str,
    action: Action,
    cats: Vec<&'static str>,
    chans: Vec<&'static str>,
    recs: Vec<&'static str>,
    at: i64,
    expires: Option<i64>,
    gpc: bool,
}

fn s(purpose: &'static str, action: Action, at: i64) -> S {
    S { purpose, action, cats: vec![], chans: vec![], recs: vec![], at, expires: None, gpc: false }
}

impl S {
    fn chans(mut self, c: &[&'static str]) -> Self {
        self.chans = c.to_vec();
        self
    }
    fn expires(mut self, at: i64) -> Self {
        self.expires = Some(at);
        self
    }
}

/// Places `s` at ledger position `seq` for `pseudonym`, made at `s.at` (its `occurred_at`).
fn place(seq: u64, pseudonym: &str, s: &S) -> Event {
    let list = |l: &[&str]| l.iter().map(|x| (*x).to_owned()).collect();
    Event::place(
        NewEvent {
            purpose: s.purpose.into(),
            action: s.action,
            scope: Scope::new(list(&s.cats), list(&s.chans), list(&s.recs)),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: if s.gpc { ACTOR_GPC.into() } else { "key:test".into() },
            expires_at: s.expires.map(Timestamp::from_micros),
            evidence: None,
            jurisdiction: None,
            occurred_at: Some(Timestamp::from_micros(s.at)),
        },
        seq,
        pseudonym.into(),
        Timestamp::from_micros(NOW - 1_000 + seq as i64),
        String::new(),
    )
}

/// The statements in force of a history, as the store keeps them: the latest per purpose, scope and stance.
fn current(history: &[Event]) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for e in history {
        let same = |c: &&mut Event| {
            c.purpose == e.purpose && c.scope == e.scope && c.action.stance() == e.action.stance()
        };
        match out.iter_mut().find(same) {
            Some(c) if c.order() >= e.order() => {}
            Some(c) => *c = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out.sort_by_key(|e| e.seq);
    out
}

/// Both records' histories from `(is_from, statement)` lines, placed in the order given.
fn histories(lines: &[(bool, S)]) -> (Vec<Event>, Vec<Event>) {
    let (mut into, mut from) = (Vec::new(), Vec::new());
    for (i, (is_from, s)) in lines.iter().enumerate() {
        let seq = i as u64 + 1;
        if *is_from { from.push(place(seq, "pf", s)) } else { into.push(place(seq, "pi", s)) }
    }
    (into, from)
}

/// The survivor's events after the link: its own, then the carried ones as the ledger places them.
fn linked(into: &[Event], from: &[Event]) -> (Vec<Event>, Vec<Event>) {
    linked_by(into, from, |i, f| carried(&catalog(), i, f, Places::default(), now()))
}

/// [`linked`] with the choices `pick` makes.
fn linked_by<'a>(
    into: &[Event],
    from: &'a [Event],
    pick: impl for<'b> Fn(&[Event], &'b [Event]) -> Vec<&'b Event>,
) -> (Vec<Event>, Vec<Event>) {
    let (ci, cf) = (current(into), current(from));
    let picked = pick(&ci, &cf);
    let top = into.iter().chain(from).map(|e| e.seq).max().unwrap_or(0);
    let carried: Vec<Event> = picked
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Event::place(carry(f, "link:pf"), top + 1 + i as u64, "pi".into(), now(), String::new())
        })
        .collect();
    let mut all = into.to_vec();
    all.extend(carried.iter().cloned());
    (all, carried)
}

fn engine_of(events: &[Event]) -> Engine {
    let engine = Engine::new();
    engine.set_catalog(&catalog()).expect("fits");
    for e in events {
        engine.apply("s", e).expect("fits");
    }
    engine
}

fn ask(engine: &Engine, purpose: &str, channel: Option<&str>) -> Decision {
    let q = Query { subject: "s", purpose, category: None, channel, recipient: None, jurisdiction: None };
    engine.check(&q, now()).expect("known")
}

/// Links `from` into `into` and returns what was carried as `(purpose, action)`, and the survivor's engine.
fn link(into: &[S], from: &[S]) -> (Vec<(String, Action)>, Engine) {
    let mut lines: Vec<(bool, S)> = into.iter().map(|s| (false, s.clone())).collect();
    lines.extend(from.iter().map(|s| (true, s.clone())));
    let (i, f) = histories(&lines);
    let (all, carried) = linked(&i, &f);
    (carried.iter().map(|e| (e.purpose.clone(), e.action)).collect(), engine_of(&all))
}

fn pairs(list: &[(&str, Action)]) -> Vec<(String, Action)> {
    list.iter().map(|(p, a)| ((*p).to_owned(), *a)).collect()
}

use Action::*;

#[test]
fn choices_compare_by_their_original_time_not_the_link() {
    // The survivor withdrew at 20; an older grant of `from` (made at 10, whenever it was recorded) stays
    // behind even though the link is later than both.
    let (c, e) = link(&[s("marketing", Withdraw, 20)], &[s("marketing", Grant, 10)]);
    assert!(c.is_empty());
    assert!(!ask(&e, "marketing", None).allowed);
    // A grant made after the withdrawal wins, and keeps its own time.
    let (c, e) = link(&[s("marketing", Withdraw, 20)], &[s("marketing", Grant, 30)]);
    assert_eq!(c, pairs(&[("marketing", Grant)]));
    assert!(ask(&e, "marketing", None).allowed);
    let (i, f) = histories(&[(false, s("marketing", Withdraw, 20)), (true, s("marketing", Grant, 30))]);
    let (_, carried) = linked(&i, &f);
    assert_eq!(carried[0].occurred_at, Some(Timestamp::from_micros(30)));
    assert_eq!(carried[0].actor, "link:pf");
    // Only in `from`: carried.
    let (c, _) = link(&[], &[s("analytics", Grant, 5)]);
    assert_eq!(c, pairs(&[("analytics", Grant)]));
}

#[test]
fn a_grant_never_passes_an_as_recent_refusal_of_the_survivor() {
    for refusal in [Withdraw, Deny, Object, Restrict] {
        // Same purpose, same instant: the refusal stays.
        let (c, e) = link(&[s("marketing", refusal, 10)], &[s("marketing", Grant, 10)]);
        assert!(c.is_empty(), "{refusal:?}");
        assert!(!ask(&e, "marketing", None).allowed);
        // An ancestor's refusal, and a descendant's.
        let (c, _) = link(&[s("marketing", refusal, 20)], &[s("marketing.direct", Grant, 10)]);
        assert!(c.is_empty(), "{refusal:?}");
        let (c, e) = link(&[s("marketing.direct", refusal, 20)], &[s("marketing", Grant, 10)]);
        assert!(c.is_empty(), "{refusal:?}");
        assert!(!ask(&e, "marketing", None).allowed);
    }
    // A GPC opt-out is a withdrawal.
    let mut gpc = s("sharing", Withdraw, 20);
    gpc.gpc = true;
    let (c, e) = link(&[gpc], &[s("sharing", Grant, 10)]);
    assert!(c.is_empty());
    assert_eq!(ask(&e, "sharing", None).reason, crate::engine::Reason::GpcOptOut);
    // An overlapping scope blocks; another channel does not.
    let (c, _) = link(&[s("marketing", Withdraw, 20).chans(&["email"])], &[s("marketing", Grant, 10)]);
    assert!(c.is_empty());
    let (c, e) =
        link(&[s("marketing", Withdraw, 20).chans(&["email"])], &[s("marketing", Grant, 10).chans(&["sms"])]);
    assert_eq!(c, pairs(&[("marketing", Grant)]));
    assert!(ask(&e, "marketing", Some("sms")).allowed);
    assert!(!ask(&e, "marketing", Some("email")).allowed);
}

#[test]
fn a_newer_refusal_of_from_narrows_the_survivor() {
    for refusal in [Withdraw, Object, Deny] {
        let (c, e) = link(&[s("marketing", Grant, 10)], &[s("marketing", refusal, 20)]);
        assert_eq!(c, pairs(&[("marketing", refusal)]), "{refusal:?}");
        assert!(!ask(&e, "marketing", None).allowed);
        // On a purpose under the grant: that purpose is refused.
        let (c, e) = link(&[s("marketing", Grant, 10)], &[s("marketing.direct", refusal, 20)]);
        assert_eq!(c.len(), 1);
        assert!(!ask(&e, "marketing.direct", None).allowed);
        assert!(ask(&e, "marketing", None).allowed);
        // An older refusal on the same purpose and scope loses to the survivor's later grant; an objection
        // stands apart from the consent choice and is carried all the same (it binds purposes on other
        // bases under marketing), while the later grant still answers for marketing itself.
        let (c, e) = link(&[s("marketing", Grant, 30)], &[s("marketing", refusal, 20)]);
        let expected = if refusal == Object { pairs(&[("marketing", Object)]) } else { Vec::new() };
        assert_eq!(c, expected, "{refusal:?}");
        assert!(ask(&e, "marketing", None).allowed);
    }
    // A tie: the refusal wins.
    let (c, e) = link(&[s("marketing", Grant, 10)], &[s("marketing", Withdraw, 10)]);
    assert_eq!(c, pairs(&[("marketing", Withdraw)]));
    assert!(!ask(&e, "marketing", None).allowed);
}

#[test]
fn lapses_are_not_carried() {
    // A lapse, and a grant past its end.
    let (c, _) = link(&[s("marketing", Grant, 10)], &[s("marketing", Expire, 20)]);
    assert!(c.is_empty());
    let (c, _) = link(&[], &[s("analytics", Grant, 20).expires(NOW - 1)]);
    assert!(c.is_empty());
    let (c, _) = link(&[], &[s("analytics", Grant, 20).expires(NOW + 1)]);
    assert_eq!(c.len(), 1);
    // A grant a lapse of `from` narrowed stays behind too: carrying it alone would allow what `from` did
    // not (direct marketing lapsed there).
    let (c, e) = link(&[], &[s("marketing", Grant, 10), s("marketing.direct", Expire, 20)]);
    assert!(c.is_empty());
    assert!(!ask(&e, "marketing.direct", None).allowed);
}

#[test]
fn a_grant_that_would_widen_past_both_records_stays_behind() {
    // `from` allowed marketing on every channel but e-mail; the survivor only on e-mail. Carrying the broad
    // grant without `from`'s e-mail withdrawal (which loses to the survivor's later e-mail grant) would
    // allow marketing on every channel at once, which neither allowed.
    let (c, e) = link(
        &[s("marketing", Grant, 30).chans(&["email"])],
        &[s("marketing", Grant, 10), s("marketing", Withdraw, 20).chans(&["email"])],
    );
    assert!(c.is_empty(), "{c:?}");
    assert!(!ask(&e, "marketing", None).allowed);
    assert!(ask(&e, "marketing", Some("email")).allowed);
    // The mirror: the survivor's e-mail withdrawal narrowed its own broad grant; replacing it by `from`'s
    // later e-mail grant would widen the survivor's broad grant to every channel.
    let (c, e) = link(
        &[s("marketing", Grant, 10), s("marketing", Withdraw, 20).chans(&["email"])],
        &[s("marketing", Grant, 30).chans(&["email"])],
    );
    assert!(c.is_empty(), "{c:?}");
    assert!(!ask(&e, "marketing", None).allowed);
    assert!(ask(&e, "marketing", Some("sms")).allowed);
}

#[test]
fn overlap_follows_the_hierarchy() {
    let scope = |c: &[&str], ch: &[&str]| {
        Scope::new(c.iter().map(|x| (*x).into()).collect(), ch.iter().map(|x| (*x).into()).collect(), vec![])
    };
    assert!(overlap(&scope(&[], &[]), &scope(&["user.location"], &["sms"])));
    assert!(overlap(&scope(&["user"], &[]), &scope(&["user.location"], &[])));
    assert!(overlap(&scope(&["user.contact.email"], &[]), &scope(&["user.contact"], &[])));
    assert!(!overlap(&scope(&["user.contact"], &[]), &scope(&["user.location"], &[])));
    assert!(!overlap(&scope(&["user.contact"], &[]), &scope(&["user.contactless"], &[])));
    assert!(!overlap(&scope(&[], &["email"]), &scope(&[], &["sms"])));
    assert!(related("marketing", "marketing.direct") && !related("marketing", "marketingx"));
}

// ---- properties -------------------------------------------------------------------------------------

const PURPOSES: [&str; 7] = [
    "marketing",
    "marketing.direct",
    "marketing.insights",
    "analytics",
    "sharing",
    "service",
    "service.tips",
];
const CATEGORIES: [&str; 4] = ["user", "user.contact", "user.contact.email", "user.location"];
const CHANNELS: [&str; 2] = ["email", "sms"];
const RECIPIENTS: [&str; 2] = ["ads", "crm"];

/// A random statement whose scope fits what its purpose declares; times from a small range, so ties occur.
fn arb_statement() -> impl Strategy<Value = S> {
    (
        prop::sample::select(PURPOSES.to_vec()),
        prop::sample::select(vec![Grant, Renew, Deny, Withdraw, Object, Restrict, Expire]),
        prop::collection::vec(prop::sample::select(CATEGORIES.to_vec()), 0..2),
        prop::collection::vec(prop::sample::select(CHANNELS.to_vec()), 0..2),
        prop::collection::vec(prop::sample::select(RECIPIENTS.to_vec()), 0..2),
        0i64..8,
        prop::option::of(prop::sample::select(vec![NOW - 5, NOW + 5, NOW + 50])),
        any::<bool>(),
    )
        .prop_map(|(purpose, action, cats, chans, recs, at, expires, gpc)| {
            let cats = match purpose {
                "analytics" => cats.into_iter().filter(|c| *c != "user").collect(),
                "marketing" | "marketing.direct" | "sharing" => vec![],
                _ => cats,
            };
            let chans = if purpose.starts_with("marketing") { chans } else { vec![] };
            let recs = if purpose == "sharing" { recs } else { vec![] };
            S { purpose, action, cats, chans, recs, at, expires, gpc: gpc && action == Withdraw }
        })
}

fn arb_lines() -> impl Strategy<Value = Vec<(bool, S)>> {
    prop::collection::vec((any::<bool>(), arb_statement()), 0..10)
}

/// Histories where refusals and grants meet: few purposes (one line of the hierarchy, with a purpose on
/// legitimate interest under a consent one, and one on contract), one channel or none, four instants, and
/// only explicit choices (a lapse is never carried). Most cases end with an allowed answer next to a
/// refusal of one of the records.
fn arb_meeting_lines() -> impl Strategy<Value = Vec<(bool, S)>> {
    const MEETING: [&str; 4] = ["marketing", "marketing.direct", "marketing.insights", "service"];
    let statement = (
        prop::sample::select(MEETING.to_vec()),
        prop::sample::select(vec![Grant, Grant, Withdraw, Deny, Object, Restrict]),
        any::<bool>(),
        0i64..4,
        any::<bool>(),
    )
        .prop_map(|(purpose, action, email, at, gpc)| {
            // Only an objection or a restriction speaks to a purpose on another basis.
            let action = match (purpose, action) {
                ("marketing.insights" | "service", Object | Grant | Deny) => Object,
                ("marketing.insights" | "service", _) => Restrict,
                (_, a) => a,
            };
            let chans = if email && purpose != "service" { vec!["email"] } else { vec![] };
            S { chans, gpc: gpc && action == Withdraw, ..s(purpose, action, at) }
        });
    prop::collection::vec((any::<bool>(), statement), 2..8)
}

/// Every use of the catalogue (every purpose with each category, channel, recipient and jurisdiction or
/// none) at every instant an answer can change, whether or not the purpose declares it.
fn every_use(
    events: &[Event],
    mut f: impl FnMut(Query<'static>, Timestamp) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let opt =
        |l: &[&'static str]| std::iter::once(None).chain(l.iter().copied().map(Some)).collect::<Vec<_>>();
    let mut times = vec![NOW, NOW + 1_000_000];
    for x in events.iter().filter_map(|e| e.expires_at) {
        times.extend([x.micros() - 1, x.micros(), x.micros() + 1]);
    }
    for t in times.into_iter().filter(|&t| t >= NOW) {
        for purpose in PURPOSES {
            for category in opt(&CATEGORIES) {
                for channel in opt(&CHANNELS) {
                    for recipient in opt(&RECIPIENTS) {
                        for jurisdiction in [None, Some("US-CA")] {
                            let q =
                                Query { subject: "s", purpose, category, channel, recipient, jurisdiction };
                            f(q, Timestamp::from_micros(t))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fails when the survivor after the link (`all`) allows, at some time, a use neither record allowed.
fn neither_allowed_stays_denied(into: &[Event], from: &[Event], all: &[Event]) -> Result<(), TestCaseError> {
    let (e_into, e_from, e_after) = (engine_of(into), engine_of(from), engine_of(all));
    every_use(all, |q, t| {
        let Ok(after) = e_after.check(&q, t) else { return Ok(()) };
        if after.allowed {
            let before = e_into.check(&q, t).map(|d| d.allowed).unwrap_or(false)
                || e_from.check(&q, t).map(|d| d.allowed).unwrap_or(false);
            prop_assert!(before, "{:?} at {:?}: {:?}", q, t, after);
        }
        Ok(())
    })
}

fn refusal(e: &Event) -> bool {
    matches!(e.action, Withdraw | Deny | Object | Restrict)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// After a link the survivor never allows a use neither record allowed, at any time.
    #[test]
    fn never_allows_what_neither_allowed(lines in arb_lines()) {
        let (into, from) = histories(&lines);
        let (all, _) = linked(&into, &from);
        neither_allowed_stays_denied(&into, &from, &all)?;
    }

    /// The same of the rules alone, without the gate that checks their result: the gate is a second
    /// line, not what makes the rule safe.
    #[test]
    fn the_rules_alone_never_allow_what_neither_allowed(lines in arb_lines()) {
        let (into, from) = histories(&lines);
        let (all, _) = linked_by(&into, &from, |i, f| candidates(i, f, now()));
        neither_allowed_stays_denied(&into, &from, &all)?;
    }

    /// After a link no use is allowed past a refusal of either record that is still the latest choice on
    /// its own purpose, scope and stance: an answer resting on a grant only past refusals older than that
    /// grant (a tie between the records goes to the refusal), and an answer resting on no grant (a purpose
    /// on another basis, a place's opt-out) past none that applies to the use.
    #[test]
    fn never_allows_past_a_newer_refusal(lines in arb_meeting_lines()) {
        let (into, from) = histories(&lines);
        let (all, carried) = linked(&into, &from);
        let e_after = engine_of(&all);
        let (ci, cf) = (current(&into), current(&from));
        let both: Vec<(bool, &Event)> = ci.iter().map(|e| (false, e)).chain(cf.iter().map(|e| (true, e))).collect();
        // A refusal still the latest on its purpose, scope and stance across both records.
        let standing: Vec<(bool, &Event)> = both.iter().copied().filter(|(o, n)| {
            refusal(n) && !both.iter().any(|(o2, m)| {
                *o2 != *o && m.purpose == n.purpose && m.scope == n.scope
                    && m.action.stance() == n.action.stance()
                    && (m.effective_at() > n.effective_at()
                        || (m.effective_at() == n.effective_at() && !m.action.is_positive()))
            })
        }).collect();
        let mut pairs: std::collections::HashMap<(u64, u64), Engine> = std::collections::HashMap::new();
        let mut alone: std::collections::HashMap<u64, Engine> = std::collections::HashMap::new();
        every_use(&all, |q, t| {
            let Ok(d) = e_after.check(&q, t) else { return Ok(()) };
            if !d.allowed {
                return Ok(());
            }
            let Some(seq) = d.event_seq.filter(|_| d.reason == crate::engine::Reason::Granted) else {
                // Allowed without a grant: no standing refusal of either record may apply to the use.
                for (_, n) in &standing {
                    let only = alone.entry(n.seq).or_insert_with(|| engine_of(&[(*n).clone()]));
                    let only = only.check(&q, t).expect("known");
                    prop_assert!(only.allowed, "{:?} allowed ({:?}) past {:?}", q, d.reason, n);
                }
                return Ok(());
            };
            let g = all.iter().find(|e| e.seq == seq).expect("rests on an event");
            let g_from = carried.iter().any(|c| c.seq == seq);
            for (n_from, n) in &standing {
                let as_recent = n.effective_at() > g.effective_at()
                    || (n.effective_at() == g.effective_at() && (*n_from != g_from || n.seq > g.seq));
                if !as_recent {
                    continue;
                }
                let pair = pairs.entry((g.seq, n.seq)).or_insert_with(|| {
                    let mut g1 = g.clone();
                    g1.seq = 1;
                    let mut n2 = (*n).clone();
                    n2.seq = 2;
                    engine_of(&[g1, n2])
                });
                let pair = pair.check(&q, t).expect("known");
                prop_assert!(pair.allowed, "{:?} rests on {:?} past {:?}", q, g, n);
            }
            Ok(())
        })?;
    }

    /// A link into a record that said nothing changes no answer of `from`'s, when `from` holds no lapse.
    #[test]
    fn into_an_empty_record_keeps_every_answer(lines in arb_lines()) {
        let lines: Vec<(bool, S)> = lines.into_iter().filter(|(_, s)| s.action != Expire).map(|(_, s)| (true, s)).collect();
        let (into, from) = histories(&lines);
        let (all, _) = linked(&into, &from);
        let live: Vec<Event> = current(&from).into_iter().filter(|e| !(e.action.is_positive() && e.expires_at.is_some_and(|x| x <= now()))).collect();
        let (e_from, e_after) = (engine_of(&live), engine_of(&all));
        every_use(&all, |q, t| {
            prop_assert_eq!(e_from.check(&q, t).map(|d| d.allowed), e_after.check(&q, t).map(|d| d.allowed), "{:?}", q);
            Ok(())
        })?;
    }
}
