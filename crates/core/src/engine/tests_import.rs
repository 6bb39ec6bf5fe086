//! Imported changes: the current state orders changes by when they took effect (`occurred_at`, else
//! `recorded_at`), so the order a file lists them in, or when they were imported, changes nothing.

use proptest::prelude::*;

use super::*;
use crate::catalog::CatalogDocument;
use crate::ledger::{Action, Event, NewEvent, Scope};

const CATALOG: &str = r#"
purposes:
  - {key: marketing, name: Marketing, basis: consent, notice: n, channels: [email, sms]}
  - {key: marketing.direct, name: Direct, basis: consent, notice: n, channels: [email, sms]}
  - {key: analytics, name: Analytics, basis: consent, notice: n}
  - {key: service, name: Service, basis: contract}
channels:
  - {key: email, name: Email}
  - {key: sms, name: SMS}
notices:
  - {key: n, title: N, language: en, text: Some text}
"#;

const PURPOSES: [&str; 4] = ["marketing", "marketing.direct", "analytics", "service"];
const CHANNELS: [&str; 2] = ["email", "sms"];
const NOW: i64 = 2_000_000_000_000_000;

fn engine() -> Engine {
    let doc = CatalogDocument::from_yaml(CATALOG).expect("parses");
    let engine = Engine::new();
    engine.set_catalog(&Catalog::validate(doc).expect("valid")).expect("fits");
    engine
}

/// One change: purpose, action, channels, and the time it was made.
#[derive(Debug, Clone)]
struct Change {
    purpose: usize,
    action: Action,
    channels: Vec<usize>,
    at: i64,
}

fn new_event(c: &Change, occurred_at: Option<i64>) -> NewEvent {
    let purpose = PURPOSES[c.purpose];
    let channels = if purpose == "analytics" || purpose == "service" {
        Vec::new()
    } else {
        c.channels.iter().map(|&i| CHANNELS[i].to_owned()).collect()
    };
    NewEvent {
        evidence: None,
        jurisdiction: None,
        occurred_at: occurred_at.map(Timestamp::from_micros),
        purpose: purpose.into(),
        action: c.action,
        scope: Scope::new(Vec::new(), channels, Vec::new()),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: "import:test".into(),
        expires_at: None,
    }
}

fn arb_change() -> impl Strategy<Value = Change> {
    let actions = prop::sample::select(vec![
        Action::Grant,
        Action::Renew,
        Action::Deny,
        Action::Withdraw,
        Action::Object,
        Action::Restrict,
    ]);
    // Few distinct times, so that equal times (ties) happen.
    (0..PURPOSES.len(), actions, prop::collection::vec(0..CHANNELS.len(), 0..3), 0i64..8)
        .prop_map(|(purpose, action, channels, t)| Change { purpose, action, channels, at: 1_000 + t })
}

/// Every answer the engine gives `subject`, with the change it rests on (by its position in `changes`).
fn answers(e: &Engine, seq_to_change: &[usize]) -> Vec<(bool, Reason, Option<usize>)> {
    let mut out = Vec::new();
    for purpose in PURPOSES {
        for channel in [None, Some("email"), Some("sms")] {
            let channel = if purpose == "analytics" || purpose == "service" { None } else { channel };
            let q =
                Query { subject: "s", purpose, category: None, channel, recipient: None, jurisdiction: None };
            let d = e.check(&q, Timestamp::from_micros(NOW)).expect("known");
            let change = d.event_seq.map(|s| seq_to_change[s as usize - 1]);
            out.push((d.allowed, d.reason, change));
        }
    }
    out
}

proptest! {
    /// Importing changes in any file order gives the state of recording them live in the order they were
    /// made (ties in the file's order): the order of arrival does not matter.
    #[test]
    fn any_file_order_gives_the_state_of_occurred_at_order(
        changes in prop::collection::vec(arb_change(), 1..14),
        shuffle in prop::collection::vec(any::<prop::sample::Index>(), 14),
    ) {
        // The file: the changes in a random order, each placed with the next sequence number.
        let mut file: Vec<usize> = (0..changes.len()).collect();
        for (i, pick) in shuffle.iter().enumerate().take(file.len()) {
            let j = pick.index(file.len() - i) + i;
            file.swap(i, j);
        }
        let imported = engine();
        for (n, &i) in file.iter().enumerate() {
            let e = Event::place(new_event(&changes[i], Some(changes[i].at)), n as u64 + 1, "p".into(),
                Timestamp::from_micros(NOW - 5), String::new());
            imported.apply("s", &e).expect("fits");
        }
        // Recorded live, in the order they were made; equal times in the file's order.
        let mut sorted = file.clone();
        sorted.sort_by_key(|&i| changes[i].at);
        let live = engine();
        for (n, &i) in sorted.iter().enumerate() {
            let e = Event::place(new_event(&changes[i], None), n as u64 + 1, "p".into(),
                Timestamp::from_micros(changes[i].at), String::new());
            live.apply("s", &e).expect("fits");
        }
        prop_assert_eq!(answers(&imported, &file), answers(&live, &sorted));
    }
}

#[test]
fn an_old_imported_grant_never_overrides_a_later_withdrawal() {
    let e = engine();
    let withdraw = Change { purpose: 0, action: Action::Withdraw, channels: vec![], at: 0 };
    let grant = Change { purpose: 0, action: Action::Grant, channels: vec![], at: 0 };
    // Withdrawn live at t=5000; a grant made at t=1000 is imported afterwards (a higher sequence number).
    let live =
        Event::place(new_event(&withdraw, None), 1, "p".into(), Timestamp::from_micros(5_000), String::new());
    let old = Event::place(
        new_event(&grant, Some(1_000)),
        2,
        "p".into(),
        Timestamp::from_micros(9_000),
        String::new(),
    );
    e.apply("s", &live).expect("fits");
    e.apply("s", &old).expect("fits");
    let q = Query {
        subject: "s",
        purpose: "marketing",
        category: None,
        channel: None,
        recipient: None,
        jurisdiction: None,
    };
    let d = e.check(&q, Timestamp::from_micros(NOW)).expect("known");
    assert_eq!((d.allowed, d.reason, d.event_seq), (false, Reason::Withdrawn, Some(1)));
    // A grant made after the withdrawal, imported later still, does count.
    let newer = Event::place(
        new_event(&grant, Some(6_000)),
        3,
        "p".into(),
        Timestamp::from_micros(9_500),
        String::new(),
    );
    e.apply("s", &newer).expect("fits");
    let d = e.check(&q, Timestamp::from_micros(NOW)).expect("known");
    assert_eq!((d.allowed, d.reason, d.event_seq), (true, Reason::Granted, Some(3)));
    // And in the other order of arrival the answer is the same.
    let other = engine();
    for event in [&newer, &old, &live] {
        other.apply("s", event).expect("fits");
    }
    assert_eq!(other.check(&q, Timestamp::from_micros(NOW)).expect("known"), d);
}
