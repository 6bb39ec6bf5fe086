//! An engine rebuilt from an image and the ledger's tail holds exactly what one that applied every event
//! holds, whatever the symbol numbering of either; a damaged image is refused whole.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::super::tests_stance::{CHANNELS, NOW, PURPOSES, engine};
use super::super::*;
use super::{DIGEST, STMT};
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

/// The image names subjects by a stand-in for their pseudonym: the SHA-256 of the id.
fn pseudonym(subject: &str) -> Option<[u8; IMAGE_KEY]> {
    Some(Sha256::digest(subject.as_bytes()).into())
}

/// The key store's stand-in: every subject the tests use (and a few never held) with its key, sorted by
/// key, less those `erased`.
fn keys(erased: &[&str]) -> Vec<([u8; IMAGE_KEY], String)> {
    let mut out: Vec<([u8; IMAGE_KEY], String)> = (0..12)
        .map(subject)
        .chain(["only-an-age".to_owned(), "never-held".to_owned()])
        .filter(|s| !erased.contains(&s.as_str()))
        .filter_map(|s| Some((pseudonym(&s)?, s)))
        .collect();
    out.sort();
    out
}

fn named(keys: &[([u8; IMAGE_KEY], String)]) -> impl Iterator<Item = (&[u8; IMAGE_KEY], &str)> {
    keys.iter().map(|(k, s)| (k, s.as_str()))
}

/// Loads `bytes` with every subject keyed.
fn load(engine: &Engine, bytes: &[u8]) -> Result<LoadedImage, ImageError> {
    engine.load_image(bytes, named(&keys(&[])))
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
    fn image_and_tail_equal_every_event(
        lines in lines(),
        cut in 0usize..60,
        warm in 0usize..4,
        page in 1usize..6,
    ) {
        let seqd: Vec<(u64, &Line)> = lines.iter().enumerate().map(|(i, l)| (i as u64 + 1, l)).collect();
        let cut = cut.min(seqd.len());
        let full = engine();
        apply(&full, &seqd);

        let before = engine();
        apply(&before, &seqd[..cut]);
        let saved = before.save_image(cut as u64, ledger_hash(cut as u64), pseudonym);
        prop_assert!(saved.unkeyed.is_empty());

        // A fresh engine whose symbols are numbered otherwise: a few events interned first, in reverse.
        let after = engine();
        let mut rev: Vec<(u64, &Line)> = seqd[..cut].iter().rev().take(warm).copied().collect();
        rev.reverse();
        apply(&after, &rev);
        // The keys come in pages of `page`, as the key store's do.
        let mut loading = after.open_image(&saved.bytes).expect("a sound image opens");
        for chunk in keys(&[]).chunks(page) {
            loading.load(named(chunk)).expect("keys in order");
        }
        let loaded = loading.finish();
        prop_assert_eq!(loaded.covers, cut as u64);
        prop_assert_eq!(loaded.ledger_hash, ledger_hash(cut as u64));
        prop_assert_eq!(loaded.subjects, saved.subjects);
        // The tail: events after the image's position, some before it again (applying is idempotent).
        apply(&after, &seqd[cut.saturating_sub(warm)..]);

        prop_assert_eq!(full.listing(), after.listing());
        prop_assert_eq!(decisions(&full), decisions(&after));
    }
}

/// A stand-in for the hash of the ledger's event at `seq`.
fn ledger_hash(seq: u64) -> [u8; LEDGER_HASH] {
    Sha256::digest(seq.to_le_bytes()).into()
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
    let bytes = e.save_image(3, ledger_hash(3), pseudonym).bytes;
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
            assert!(load(&e, &bad).is_err(), "byte {i} flipped by {flip:#x} was accepted");
            assert_eq!(e.subject_count(), 0);
        }
    }
    for len in [0, 10, bytes.len() - 1] {
        assert!(load(&engine(), &bytes[..len]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(load(&engine(), &longer).is_err());
}

#[test]
fn another_version_is_refused_even_with_a_good_checksum() {
    let (_, bytes) = sample();
    let mut other = bytes[..bytes.len() - 32].to_vec();
    other[4..8].copy_from_slice(&(IMAGE_VERSION + 1).to_le_bytes());
    let digest = Sha256::digest(&other);
    other.extend_from_slice(&digest);
    assert_eq!(load(&engine(), &other), Err(ImageError::Version(IMAGE_VERSION + 1)));
    assert_eq!(image_covers(&bytes), Ok(3));
    // The ledger hash the image was made against is read back, so a loader can hold it to its ledger.
    let e = engine();
    assert_eq!(e.open_image(&bytes).expect("opens").ledger_hash(), &ledger_hash(3));
}

#[test]
fn an_erased_subject_is_left_out_and_the_image_names_no_subject() {
    let (held, bytes) = sample();
    // The image holds the keys it was given, never the subject ids.
    let long = subject(1);
    assert!(held.contains(&long));
    assert!(!bytes.windows(long.len()).any(|w| w == long.as_bytes()));
    let e = engine();
    let loaded = e.load_image(&bytes, named(&keys(&["s0"]))).expect("loads");
    assert_eq!((loaded.subjects, loaded.skipped), (2, 1));
    assert!(!e.contains("s0"));
    assert!(e.contains(&subject(1)));
}

#[test]
fn ages_stay_out_of_the_image() {
    let (e, _) = sample();
    e.set_birth_date("s0", time::macros::date!(2015 - 01 - 01)).expect("fits");
    e.set_birth_date("only-an-age", time::macros::date!(2015 - 01 - 01)).expect("fits");
    let saved = e.save_image(3, ledger_hash(3), pseudonym);
    assert_eq!(saved.subjects, 3);
    let back = engine();
    load(&back, &saved.bytes).expect("loads");
    assert!(!back.contains("only-an-age"));
    assert!(back.listing()["s0"].iter().all(|s| !s.starts_with("age")));
}

/// Where the entries of `bytes` begin, and each entry's range.
fn entries(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let e = engine();
    let opened = e.open_image(bytes).expect("opens");
    let (mut at, end) = (opened.entries.at, bytes.len() - DIGEST);
    let mut out = Vec::new();
    while at < end {
        let n = u32::from_le_bytes(bytes[at + IMAGE_KEY..at + IMAGE_KEY + 4].try_into().expect("4")) as usize;
        let next = at + IMAGE_KEY + 4 + n * STMT;
        out.push(at..next);
        at = next;
    }
    out
}

fn resealed(mut body: Vec<u8>) -> Vec<u8> {
    body.truncate(body.len() - DIGEST);
    let digest = Sha256::digest(&body);
    body.extend_from_slice(&digest);
    body
}

#[test]
fn entries_are_written_in_ascending_order_of_key() {
    let (_, bytes) = sample();
    let keys: Vec<&[u8]> =
        entries(&bytes).into_iter().map(|r| &bytes[r.start..r.start + IMAGE_KEY]).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted");
}

#[test]
fn an_image_whose_entries_are_out_of_order_or_repeated_is_refused() {
    let (_, bytes) = sample();
    let ranges = entries(&bytes);
    let (a, b) = (ranges[0].clone(), ranges[1].clone());
    // The first two entries swapped: each whole, the checksum good.
    let mut swapped = bytes[..a.start].to_vec();
    swapped.extend_from_slice(&bytes[b.clone()]);
    swapped.extend_from_slice(&bytes[a.clone()]);
    swapped.extend_from_slice(&bytes[b.end..]);
    let e = engine();
    assert_eq!(load(&e, &resealed(swapped)), Err(ImageError::Malformed));
    assert_eq!(e.subject_count(), 0);
    // The second entry under the first one's key.
    let mut repeated = bytes.clone();
    repeated.copy_within(a.start..a.start + IMAGE_KEY, b.start);
    assert_eq!(load(&engine(), &resealed(repeated)), Err(ImageError::Malformed));
}

#[test]
fn keys_out_of_order_are_refused_within_and_across_pages() {
    let (_, bytes) = sample();
    let all = keys(&[]);
    let mut backwards = all.clone();
    backwards.reverse();
    assert_eq!(engine().load_image(&bytes, named(&backwards)), Err(ImageError::Unordered));
    let e = engine();
    let mut loading = e.open_image(&bytes).expect("opens");
    loading.load(named(&all[2..])).expect("in order");
    assert_eq!(loading.load(named(&all[..2])), Err(ImageError::Unordered), "a page before the last");
    let mut loading = e.open_image(&bytes).expect("opens");
    loading.load(named(&all[..3])).expect("in order");
    assert_eq!(loading.load(named(&all[2..3])), Err(ImageError::Unordered), "a key given twice");
}

#[test]
fn erased_subjects_and_keys_without_entries_at_any_place_and_page_boundary() {
    let (held, bytes) = sample();
    let listing = held.listing();
    let in_image: Vec<String> = keys(&[]).into_iter().map(|(_, s)| s).filter(|s| held.contains(s)).collect();
    assert_eq!(in_image.len(), 3);
    // Each held subject erased in turn (the first, a middle and the last entry by key), and none; the keys
    // given in pages of every size, so that boundaries fall before, between and after entries.
    let cases = [vec![], vec![in_image[0].as_str()], vec![in_image[1].as_str()], vec![in_image[2].as_str()]];
    for erased in cases {
        let ks = keys(&erased);
        for page in 1..=ks.len() {
            let e = engine();
            let mut loading = e.open_image(&bytes).expect("opens");
            for chunk in ks.chunks(page) {
                loading.load(named(chunk)).expect("in order");
            }
            let loaded = loading.finish();
            let expected: std::collections::BTreeMap<_, _> = listing
                .iter()
                .filter(|(s, _)| !erased.contains(&s.as_str()))
                .map(|(s, l)| (s.clone(), l.clone()))
                .collect();
            assert_eq!(e.listing(), expected, "erased {erased:?}, pages of {page}");
            assert_eq!((loaded.subjects, loaded.skipped), (3 - erased.len() as u64, erased.len() as u64));
            // Keys with no entry (a subject never held, one known only by age) bring no one in.
            assert!(!e.contains("never-held") && !e.contains("only-an-age"));
        }
    }
    // No keys at all: every entry is left out.
    let e = engine();
    let loaded = e.load_image(&bytes, named(&[])).expect("loads");
    assert_eq!((loaded.subjects, loaded.skipped, e.subject_count()), (0, 3, 0));
}

#[test]
fn subjects_given_one_key_are_both_left_out() {
    let (held, _) = sample();
    let mut saved = held.save_image(3, ledger_hash(3), |s| {
        if s == "s0" || s == "s2" { Some([7; IMAGE_KEY]) } else { pseudonym(s) }
    });
    saved.unkeyed.sort();
    assert_eq!(saved.unkeyed, ["s0", "s2"]);
    assert_eq!(saved.subjects, 1);
    let e = engine();
    assert_eq!(load(&e, &saved.bytes).expect("loads").subjects, 1);
    assert!(e.contains(&subject(1)) && !e.contains("s0"));
}

#[test]
fn every_action_has_its_own_code_and_reads_back() {
    use super::{action_code, action_of};
    let codes: std::collections::BTreeSet<u8> = Action::ALL.iter().map(|&a| action_code(a)).collect();
    assert_eq!(codes.len(), Action::ALL.len(), "two actions share a code");
    for action in Action::ALL {
        assert_eq!(action_of(action_code(action)), Ok(action));
    }
    // The codes stored images hold: fixed, whatever order the actions are listed in.
    assert_eq!(
        (action_code(Action::Grant), action_code(Action::Withdraw), action_code(Action::Locate)),
        (0, 2, 7)
    );
    assert_eq!(action_of(8), Err(ImageError::Malformed));
}
