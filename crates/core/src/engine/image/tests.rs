//! An engine rebuilt from an image and the ledger's tail holds exactly what one that applied every event
//! holds, whatever the symbol numbering of either; a damaged image is refused whole.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::super::tests_stance::{CHANNELS, NOW, PURPOSES, engine};
use super::super::*;
use crate::ledger::{Action, Event, NewEvent, Scope};

const ACTORS: [&str; 3] = ["subject", "signal:gpc", "guardian:ab12"];
const PLACES: [&str; 3] = ["de", "us-ca", "fr"];

#[derive(Debug, Clone)]
struct Line {
    subject: u8,
    purpose: usize,
    action: Action,
    channels: Vec<usize>,
    actor: usize,
    place: Option<usize>,
    at: i64,
    expires: Option<i64>,
}

fn event(seq: u64, l: &Line) -> Event {
    let purpose = if l.action == Action::Locate { "" } else { PURPOSES[l.purpose] };
    let channels = if purpose == "service" || purpose.is_empty() {
        Vec::new()
    } else {
        l.channels.iter().map(|&i| CHANNELS[i].to_owned()).collect()
    };
    Event::place(
        NewEvent {
            evidence: None,
            jurisdiction: l.place.map(|p| PLACES[p].to_owned()),
            occurred_at: Some(Timestamp::from_micros(l.at)),
            purpose: purpose.into(),
            action: l.action,
            scope: Scope::new(Vec::new(), channels, Vec::new()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: ACTORS[l.actor].into(),
            expires_at: l.expires.map(Timestamp::from_micros),
        },
        seq,
        "p".into(),
        Timestamp::from_micros(l.at),
        String::new(),
    )
}

fn subject(i: u8) -> String {
    if i.is_multiple_of(2) { format!("s{i}") } else { format!("a-subject-with-an-id-longer-than-inline-{i}") }
}

fn lines() -> impl Strategy<Value = Vec<Line>> {
    let line = (
        0u8..12,
        0..PURPOSES.len(),
        prop::sample::select(Action::ALL.to_vec()),
        prop::collection::vec(0..CHANNELS.len(), 0..=2),
        0..ACTORS.len(),
        prop::option::of(0..PLACES.len()),
        0i64..1_000,
        prop::option::of(0i64..2_000),
    )
        .prop_map(|(subject, purpose, action, channels, actor, place, at, expires)| Line {
            subject,
            purpose,
            action,
            channels,
            actor,
            place,
            at: NOW - 1_000_000 + at * 1_000,
            expires: expires.map(|e| NOW - 1_000_000 + e * 1_000),
        });
    prop::collection::vec(line, 1..60)
}

fn apply(engine: &Engine, lines: &[(u64, &Line)]) {
    for (seq, l) in lines {
        engine.apply(&subject(l.subject), &event(*seq, l)).expect("fits");
    }
}

/// The image names subjects by a stand-in for their pseudonym: the id's bytes in hexadecimal.
fn pseudonym(subject: &str) -> Option<String> {
    Some(subject.bytes().map(|b| format!("{b:02x}")).collect())
}

fn unpseudonym(key: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        (0..key.len()).step_by(2).map(|i| u8::from_str_radix(key.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

fn decisions(engine: &Engine) -> Vec<Decision> {
    let mut out = Vec::new();
    for s in 0..12 {
        let subject = subject(s);
        for purpose in PURPOSES {
            for channel in [None, Some("email"), Some("sms")] {
                for jurisdiction in [None, Some("de"), Some("us-ca")] {
                    let q = Query { jurisdiction, ..Query::whole_purpose(&subject, purpose, channel) };
                    if let Ok(d) = engine.check(&q, Timestamp::from_micros(NOW)) {
                        out.push(d);
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn image_and_tail_equal_every_event(lines in lines(), cut in 0usize..60, warm in 0usize..4) {
        let seqd: Vec<(u64, &Line)> = lines.iter().enumerate().map(|(i, l)| (i as u64 + 1, l)).collect();
        let cut = cut.min(seqd.len());
        let full = engine();
        apply(&full, &seqd);

        let before = engine();
        apply(&before, &seqd[..cut]);
        let saved = before.save_image(cut as u64, pseudonym);
        prop_assert!(saved.unkeyed.is_empty());

        // A fresh engine whose symbols are numbered otherwise: a few events interned first, in reverse.
        let after = engine();
        let mut rev: Vec<(u64, &Line)> = seqd[..cut].iter().rev().take(warm).copied().collect();
        rev.reverse();
        apply(&after, &rev);
        let loaded = after.load_image(&saved.bytes, unpseudonym).expect("a sound image loads");
        prop_assert_eq!(loaded.covers, cut as u64);
        // The tail: events after the image's position, some before it again (applying is idempotent).
        apply(&after, &seqd[cut.saturating_sub(warm)..]);

        prop_assert_eq!(full.listing(), after.listing());
        prop_assert_eq!(decisions(&full), decisions(&after));
    }
}

fn sample() -> (Engine, Vec<u8>) {
    let e = engine();
    let l = |subject, purpose, action, place| Line {
        subject,
        purpose,
        action,
        channels: vec![0],
        actor: 0,
        place,
        at: NOW - 1000,
        expires: None,
    };
    apply(
        &e,
        &[
            (1, &l(0, 0, Action::Grant, Some(0))),
            (2, &l(1, 1, Action::Object, None)),
            (3, &l(2, 3, Action::Restrict, Some(1))),
        ],
    );
    let bytes = e.save_image(3, pseudonym).bytes;
    (e, bytes)
}

#[test]
fn every_damaged_byte_is_refused_and_leaves_the_engine_alone() {
    let (_, bytes) = sample();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let e = engine();
            assert!(e.load_image(&bad, unpseudonym).is_err(), "byte {i} flipped by {flip:#x} was accepted");
            assert_eq!(e.subject_count(), 0);
        }
    }
    for len in [0, 10, bytes.len() - 1] {
        assert!(engine().load_image(&bytes[..len], unpseudonym).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(engine().load_image(&longer, unpseudonym).is_err());
}

#[test]
fn another_version_is_refused_even_with_a_good_checksum() {
    let (_, bytes) = sample();
    let mut other = bytes[..bytes.len() - 32].to_vec();
    other[4..8].copy_from_slice(&(IMAGE_VERSION + 1).to_le_bytes());
    let digest = Sha256::digest(&other);
    other.extend_from_slice(&digest);
    assert_eq!(engine().load_image(&other, unpseudonym), Err(ImageError::Version(IMAGE_VERSION + 1)));
    assert_eq!(image_covers(&bytes), Ok(3));
}

#[test]
fn an_erased_subject_is_left_out_and_the_image_names_no_subject() {
    let (held, bytes) = sample();
    // The image holds the keys it was given, never the subject ids.
    let long = subject(1);
    assert!(held.contains(&long));
    assert!(!bytes.windows(long.len()).any(|w| w == long.as_bytes()));
    let e = engine();
    let loaded = e.load_image(&bytes, |k| unpseudonym(k).filter(|s| s != "s0")).expect("loads");
    assert_eq!((loaded.subjects, loaded.skipped), (2, 1));
    assert!(!e.contains("s0"));
    assert!(e.contains(&subject(1)));
}

#[test]
fn ages_stay_out_of_the_image() {
    let (e, _) = sample();
    e.set_birth_date("s0", time::macros::date!(2015 - 01 - 01)).expect("fits");
    e.set_birth_date("only-an-age", time::macros::date!(2015 - 01 - 01)).expect("fits");
    let saved = e.save_image(3, pseudonym);
    assert_eq!(saved.subjects, 3);
    let back = engine();
    back.load_image(&saved.bytes, unpseudonym).expect("loads");
    assert!(!back.contains("only-an-age"));
    assert!(back.listing()["s0"].iter().all(|s| !s.starts_with("age")));
}
