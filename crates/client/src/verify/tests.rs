//! Tests of receipt verification, the ledger audit and the export format, on chains and keys made here.

use consentry_core::Timestamp;
use consentry_core::ledger::{Action, Event, GENESIS_HASH, NewEvent, Scope};
use consentry_core::proof::{JwsKind, SigningKey, state_for};

use super::export::{ExportLine, parse_line};
use super::*;

fn key(kid: &str, byte: u8) -> SigningKey {
    SigningKey::from_secret(kid.to_owned(), [byte; 32])
}

fn set(keys: &[&SigningKey]) -> Jwks {
    keys.iter().map(|k| k.public_jwk()).collect()
}

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_800_000_000_000_000 + micros)
}

fn chain(n: u64) -> Vec<Event> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=n)
        .map(|seq| {
            let new = NewEvent {
                evidence: None,
                occurred_at: None,
                jurisdiction: None,
                purpose: if seq % 2 == 0 { "analytics".into() } else { "marketing.direct".into() },
                action: Action::ALL[(seq as usize) % Action::ALL.len()],
                scope: Scope::new(
                    vec!["user.contact.email".into()],
                    if seq % 3 == 0 { vec![] } else { vec!["sms".into(), "email".into()] },
                    vec!["partner.\"quoted\" é".into()],
                ),
                notice: (seq != 2).then(|| "marketing.direct".into()),
                notice_version: (seq != 2).then_some(3),
                notice_hash: (seq != 2).then(|| "ab".repeat(32)),
                collection_point: (seq % 2 == 1).then(|| "signup".into()),
                actor: "key:k1".into(),
                expires_at: (seq == 1).then(|| at(86_400_000_000)),
            };
            let e = Event::place(new, seq, format!("{seq:064x}"), at(seq as i64 * 1_000), prev.clone());
            prev.clone_from(&e.hash);
            e
        })
        .collect()
}

fn checkpoint(k: &SigningKey, events: &[Event], n: usize) -> String {
    let head = if n == 0 { GENESIS_HASH.to_owned() } else { events[n - 1].hash.clone() };
    k.sign_jws(&Checkpoint::new(n as u64, head, at(9_000_000)))
}

fn export(events: &[Event], checkpoints: &[String]) -> Vec<String> {
    events
        .iter()
        .map(export_event_line)
        .chain(checkpoints.iter().map(|c| export_checkpoint_line(c)))
        .collect()
}

fn verify(lines: &[String], jwks: &Jwks) -> ExportReport {
    let mut text = lines.join("\n");
    text.push('\n');
    verify_export(text.as_bytes(), jwks)
}

/// Asserts the first problem's line and kind.
#[track_caller]
fn fails_at(report: &ExportReport, line: u64, kind: ProblemKind) {
    assert!(!report.ok, "{report:?}");
    let p = report.first_bad.as_ref().expect("a problem");
    assert_eq!((p.line, p.kind), (line, kind), "{}", p.problem);
}

#[test]
fn export_round_trips() {
    let k = key("k1", 1);
    let events = chain(5);
    let lines = export(&events, &[checkpoint(&k, &events, 3), checkpoint(&k, &events, 5)]);
    for (line, event) in lines.iter().zip(&events) {
        match parse_line(line) {
            Ok(ExportLine::Event(parsed)) => assert_eq!(&*parsed, event),
            _ => panic!("an event line"),
        }
    }
    let report = verify(&lines, &set(&[&k]));
    assert_eq!(
        report,
        ExportReport { ok: true, events: 5, head: events[4].hash.clone(), checkpoints: 2, first_bad: None }
    );
    // CRLF line ends and a missing final line break are fine too.
    assert!(verify_export(lines.join("\r\n").as_bytes(), &set(&[&k])).ok);
}

#[test]
fn event_lines_have_the_documented_fields_in_order() {
    let events = chain(1);
    let line = export_event_line(&events[0]);
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
        .expect("object")
        .keys()
        .cloned()
        .collect();
    let mut expected = vec![
        "type",
        "seq",
        "subject",
        "purpose",
        "action",
        "categories",
        "channels",
        "recipients",
        "notice",
        "notice_version",
        "notice_hash",
        "collection_point",
        "actor",
        "recorded_at",
        "expires_at",
        "prev_hash",
        "hash",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert!(line.starts_with(r#"{"type":"event","seq":1,"subject":"#), "{line}");
    assert_eq!(export_checkpoint_line("a.b.c"), r#"{"type":"checkpoint","jws":"a.b.c"}"#);
}

#[test]
fn empty_ledgers() {
    let k = key("k1", 1);
    let jwks = set(&[&k]);
    let report = verify_export(&b""[..], &jwks);
    assert!(report.ok && report.events == 0 && report.checkpoints == 0 && report.head == GENESIS_HASH);
    let report = verify(&export(&[], &[checkpoint(&k, &[], 0)]), &jwks);
    assert!(report.ok && report.checkpoints == 1, "{report:?}");
}

/// An export whose first event was changed (its hash left as it was).
fn changed_first(events: &[Event], k: &SigningKey) -> Vec<String> {
    let mut lines = export(events, &[checkpoint(k, events, events.len())]);
    lines[0] = export_event_line(&Event { actor: "subject".into(), ..events[0].clone() });
    lines
}

#[test]
fn changed_removed_reordered_and_inserted_events_are_found() {
    let k = key("k1", 1);
    let jwks = set(&[&k]);
    let events = chain(5);
    let good = export(&events, &[checkpoint(&k, &events, 5)]);

    let mut changed = good.clone();
    changed[2] = export_event_line(&Event { actor: "subject".into(), ..events[2].clone() });
    fails_at(&verify(&changed, &jwks), 3, ProblemKind::HashMismatch);
    assert_eq!(verify(&changed, &jwks).first_bad.expect("bad").seq, Some(3));

    let mut removed = good.clone();
    removed.remove(1);
    fails_at(&verify(&removed, &jwks), 2, ProblemKind::SequenceGap);

    let mut reordered = good.clone();
    reordered.swap(2, 3);
    fails_at(&verify(&reordered, &jwks), 3, ProblemKind::SequenceGap);

    let mut duplicated = good.clone();
    duplicated.insert(2, good[1].clone());
    fails_at(&verify(&duplicated, &jwks), 3, ProblemKind::SequenceGap);

    // A forged event placed (and hashed) at the position of event 3 breaks the next link.
    let mut forged_chain = events.clone();
    forged_chain[2] = Event { actor: "subject".into(), ..events[2].clone() };
    forged_chain[2].hash = forged_chain[2].compute_hash();
    let forged = export(&forged_chain, &[checkpoint(&k, &events, 5)]);
    fails_at(&verify(&forged, &jwks), 4, ProblemKind::PrevHashMismatch);
    // The same with the next event's prev_hash rewritten too (as a store that derives prev_hash from the
    // row before reads it back): the break shows at event 4, and its message says it may lie before.
    let mut hidden_chain = forged_chain.clone();
    hidden_chain[3].prev_hash.clone_from(&forged_chain[2].hash);
    let hidden = verify(&export(&hidden_chain, &[checkpoint(&k, &events, 5)]), &jwks);
    fails_at(&hidden, 4, ProblemKind::HashMismatch);
    let problem = hidden.first_bad.expect("bad").problem;
    assert!(problem.contains("event 4") && problem.contains("the one before it was changed"), "{problem}");
    let first = verify(&changed_first(&events, &k), &jwks).first_bad.expect("bad").problem;
    assert!(!first.contains("the one before it"), "event 1 has none before it: {first}");

    // An event inserted and every later one re-placed: the chain holds, the checkpoint does not.
    let mut rebuilt = events[..2].to_vec();
    for e in events[2..].iter().cloned() {
        let (seq, prev) = (rebuilt.len() as u64 + 1, rebuilt.last().expect("event").hash.clone());
        rebuilt.push(Event { seq, prev_hash: prev, ..e });
        let last = rebuilt.last_mut().expect("event");
        last.hash = last.compute_hash();
        if seq == 3 {
            let copy = Event { seq: 4, prev_hash: last.hash.clone(), ..last.clone() };
            rebuilt.push(copy);
            let last = rebuilt.last_mut().expect("event");
            last.hash = last.compute_hash();
        }
    }
    let mut inserted = export(&rebuilt, &[checkpoint(&k, &events, 5)]);
    fails_at(&verify(&inserted, &jwks), 7, ProblemKind::HeadMismatch);
    inserted.pop();
    assert!(verify(&inserted, &jwks).ok, "without a checkpoint a rebuilt chain cannot be told apart");
}

#[test]
fn malformed_lines_are_found() {
    let k = key("k1", 1);
    let jwks = set(&[&k]);
    let events = chain(3);
    let good = export(&events, &[checkpoint(&k, &events, 3)]);
    let with = |index: usize, line: &str| {
        let mut lines = good.clone();
        lines[index] = line.to_owned();
        verify(&lines, &jwks)
    };
    fails_at(&with(1, "not json"), 2, ProblemKind::Malformed);
    fails_at(&with(1, ""), 2, ProblemKind::Malformed);
    fails_at(&with(1, r#"{"type":"note"}"#), 2, ProblemKind::Malformed);
    fails_at(&with(1, &good[1].replacen('{', r#"{"subject_id":"alice","#, 1)), 2, ProblemKind::Malformed);
    fails_at(&with(1, &good[1].replace(r#","hash":"#, r#","hash":"x","hash":"#)), 2, ProblemKind::Malformed);
    fails_at(&with(1, &good[1].replacen(r#""actor":"key:k1","#, "", 1)), 2, ProblemKind::Malformed);
    let non_canonical_time = events[1].recorded_at.to_string().replace(".002000Z", ".002Z");
    let line = good[1].replace(&events[1].recorded_at.to_string(), &non_canonical_time);
    assert_ne!(line, good[1]);
    fails_at(&with(1, &line), 2, ProblemKind::Malformed);
    fails_at(&with(3, r#"{"type":"checkpoint","jws":"a.b.c","extra":1}"#), 4, ProblemKind::Malformed);

    let mut not_utf8 = good.join("\n").into_bytes();
    not_utf8.splice(0..0, [b'{', 0xff, b'\n']);
    fails_at(&verify_export(&not_utf8[..], &jwks), 1, ProblemKind::Malformed);

    let mut late_event = good.clone();
    late_event.push(good[2].clone());
    fails_at(&verify(&late_event, &jwks), 5, ProblemKind::Malformed);
}

#[test]
fn bad_checkpoints_are_found() {
    let (k1, stranger) = (key("k1", 1), key("k9", 9));
    let jwks = set(&[&k1]);
    let events = chain(3);
    let forged_key = key("k1", 2);
    let forged = export(&events, &[checkpoint(&k1, &events, 2), checkpoint(&forged_key, &events, 3)]);
    fails_at(&verify(&forged, &jwks), 5, ProblemKind::BadCheckpoint);
    let unknown = export(&events, &[checkpoint(&stranger, &events, 3)]);
    let report = verify(&unknown, &jwks);
    fails_at(&report, 4, ProblemKind::BadCheckpoint);
    assert!(report.first_bad.expect("bad").problem.contains("kid"));
    let not_a_checkpoint =
        export(&events, &[k1.sign_jws_as(JwsKind::Checkpoint, &serde_json::json!({"hello": 1}))]);
    fails_at(&verify(&not_a_checkpoint, &jwks), 4, ProblemKind::BadCheckpoint);
    let garbage = export(&events, &["x.y.z".to_owned()]);
    fails_at(&verify(&garbage, &jwks), 4, ProblemKind::BadCheckpoint);
}

#[test]
fn events_cut_off_the_end_are_found() {
    let k = key("k1", 1);
    let jwks = set(&[&k]);
    let events = chain(5);
    let checkpoints = [checkpoint(&k, &events, 2), checkpoint(&k, &events, 5)];

    // The last two events removed: the second checkpoint counts more events than there are.
    let cut = export(&events[..3], &checkpoints);
    let report = verify(&cut, &jwks);
    fails_at(&report, 5, ProblemKind::Truncated);
    assert_eq!((report.events, report.checkpoints), (3, 1));
    assert_eq!(report.first_bad.expect("bad").seq, Some(4));

    // Everything removed but the checkpoints.
    fails_at(&verify(&export(&[], &checkpoints), &jwks), 1, ProblemKind::Truncated);

    // A checkpoint whose head is not the hash of event `events` of this file.
    let other = k.sign_jws(&Checkpoint::new(4, events[4].hash.clone(), at(0)));
    fails_at(&verify(&export(&events, &[other]), &jwks), 6, ProblemKind::HeadMismatch);
}

#[test]
fn rotated_keys_both_verify() {
    let (old, new) = (key("2026-01", 1), key("2026-07", 2));
    let events = chain(4);
    let lines = export(&events, &[checkpoint(&old, &events, 2), checkpoint(&new, &events, 4)]);
    let report = verify(&lines, &set(&[&old, &new]));
    assert!(report.ok && report.checkpoints == 2, "{report:?}");
    // A verifier that only has the new key cannot vouch for the old checkpoint.
    fails_at(&verify(&lines, &set(&[&new])), 5, ProblemKind::BadCheckpoint);
    // Nor one with only the old key for the new one.
    fails_at(&verify(&lines, &set(&[&old])), 6, ProblemKind::BadCheckpoint);
}

#[test]
fn chain_with_checkpoints_first() {
    let (old, new) = (key("a", 1), key("b", 2));
    let jwks = set(&[&old, &new]);
    let events = chain(6);
    let checkpoints =
        vec![checkpoint(&old, &events, 0), checkpoint(&old, &events, 3), checkpoint(&new, &events, 6)];
    let report = verify_chain_with_checkpoints(&events, &checkpoints, &jwks);
    assert!(report.ok && report.events == 6 && report.checkpoints == 3, "{report:?}");
    assert_eq!(report.head, events[5].hash);

    let report = verify_chain_with_checkpoints(&events[..5], &checkpoints, &jwks);
    let p = report.first_bad.expect("cut off");
    assert_eq!((p.kind, p.checkpoint_index, p.line, p.seq), (ProblemKind::Truncated, Some(2), None, Some(6)));

    let mut changed = events.clone();
    changed[3].actor = "subject".into();
    let p = verify_chain_with_checkpoints(changed, &checkpoints, &jwks).first_bad.expect("changed");
    assert_eq!((p.kind, p.event_index, p.seq), (ProblemKind::HashMismatch, Some(3), Some(4)));

    let wrong_head = vec![old.sign_jws(&Checkpoint::new(3, events[3].hash.clone(), at(0)))];
    let p = verify_chain_with_checkpoints(&events, &wrong_head, &jwks).first_bad.expect("head");
    assert_eq!((p.kind, p.checkpoint_index, p.seq), (ProblemKind::HeadMismatch, Some(0), Some(3)));

    let none: [&str; 0] = [];
    assert!(verify_chain_with_checkpoints(Vec::<Event>::new(), none, &jwks).ok);
}

#[test]
fn checkpoints_after_events_need_kept_hashes() {
    let k = key("k1", 1);
    let jwks = set(&[&k]);
    let events = chain(4);
    let mut kept = LedgerAudit::new(&jwks);
    let mut forgetful = LedgerAudit::new(&jwks).without_hash_history();
    for e in &events {
        assert!(kept.push_event(e, None) && forgetful.push_event(e, None));
    }
    for n in [0, 4, 2] {
        assert!(kept.push_checkpoint(&checkpoint(&k, &events, n), None));
    }
    assert!(kept.finish().ok);
    assert!(forgetful.push_checkpoint(&checkpoint(&k, &events, 4), None));
    assert!(!forgetful.push_checkpoint(&checkpoint(&k, &events, 2), None));
    assert_eq!(forgetful.finish().first_bad.expect("bad").kind, ProblemKind::Malformed);
}

#[test]
fn audit_reports_serialise() {
    let events = chain(2);
    let jwks = Jwks::default();
    let report = verify_chain_with_checkpoints(&events[1..], ["x"; 0], &jwks);
    assert_eq!(
        serde_json::to_value(&report).expect("json"),
        serde_json::json!({"ok": false, "events": 0, "head": GENESIS_HASH, "checkpoints": 0,
            "first_bad": {"line": null, "event_index": 0, "checkpoint_index": null, "seq": 2,
                "kind": "sequence_gap", "problem": "expected event 1, found event 2"}})
    );
}

fn receipt(k: &SigningKey) -> (ConsentReceipt, String) {
    let events = chain(1);
    let receipt: ConsentReceipt = serde_json::from_value(serde_json::json!({
        "version": "KI-CR-v1.1.0", "jurisdiction": "EU", "consentTimestamp": 1_800_000_000,
        "collectionMethod": "web_form", "consentReceiptID": "rcpt_1", "language": "en",
        "piiPrincipalId": "user-42",
        "piiControllers": [{"piiController": "Brand", "onBehalf": false, "contact": "DPO",
            "address": {"streetAddress": "1 Street", "addressCountry": "DE"}, "email": "dpo@example.com",
            "phone": "+49 30 1234567"}],
        "policyUrl": "https://example.com/privacy",
        "services": [{"service": "Brand", "purposes": [{"purpose": "Direct marketing",
            "purposeCategory": ["dpv:DirectMarketing"], "consentType": "EXPLICIT",
            "piiCategory": ["E-mail address"], "primaryPurpose": false,
            "termination": "https://example.com/privacy", "thirdPartyDisclosure": true,
            "thirdPartyName": "Partner"}]}],
        "sensitive": false, "spiCat": [],
        "consentry": {"schema_version": consentry_core::proof::RECEIPT_SCHEMA_VERSION, "kid": "k1",
            "issued_at": events[0].recorded_at, "consent_time": events[0].recorded_at,
            "ledger": {"first_seq": 1, "last_seq": 1, "head": events[0].hash},
            "events": [{"event_id": "evt_1", "event_time": events[0].recorded_at, "event_type": "grant",
                "event_state": state_for(events[0].action), "purpose_id": "marketing.direct",
                "lawful_basis": "consent",
                "pii_information": [{"key": "user.contact.email", "sensitive": false}],
                "channels": ["email"], "recipients": [{"key": "partner", "name": "Partner", "kind": "third_party"}],
                "seq": 1, "hash": events[0].hash, "prev_hash": GENESIS_HASH}]}
    }))
    .expect("a receipt");
    let jws = k.sign_jws(&receipt);
    (receipt, jws)
}

#[test]
fn receipts_verify() {
    let k = key("k1", 1);
    let (receipt, jws) = receipt(&k);
    assert_eq!(verify_receipt(&jws, &set(&[&k])), Ok(receipt.clone()));
    assert_eq!(
        verify_receipt(&jws, &set(&[&key("k2", 1)])),
        Err(VerifyError::Jws(JwsError::UnknownKid("k1".into())))
    );
    assert_eq!(verify_receipt(&jws, &set(&[&key("k1", 2)])), Err(VerifyError::Jws(JwsError::BadSignature)));
    let other_version = k.sign_jws(&ConsentReceipt { version: "KI-CR-v1.0.0".into(), ..receipt.clone() });
    assert_eq!(verify_receipt(&other_version, &set(&[&k])), Err(VerifyError::UnsupportedSchema));
    let mut other_extension = receipt.clone();
    other_extension.consentry.schema_version = "consentry-receipt/3".into();
    let other_extension = k.sign_jws(&other_extension);
    assert_eq!(verify_receipt(&other_extension, &set(&[&k])), Err(VerifyError::UnsupportedSchema));
    // A receipt of the form before Kantara v1.1 verifies as a JWS but is no receipt of this form.
    let old_form = k.sign_jws_as(
        JwsKind::Receipt,
        &serde_json::json!({"schema_version": "consentry-receipt/1; ISO/IEC TS 27560; Kantara CR 1.1",
            "receipt_id": "rcpt_1", "iat": 1_800_000_000, "pii_principal_id": "user-42"}),
    );
    assert_eq!(verify_receipt(&old_form, &set(&[&k])), Err(VerifyError::NotAReceipt));
    let checkpoint = k.sign_jws(&Checkpoint::new(0, GENESIS_HASH, at(0)));
    assert_eq!(
        verify_receipt(&checkpoint, &set(&[&k])),
        Err(VerifyError::Jws(JwsError::WrongKind {
            expected: "consent-receipt+jwt",
            found: "checkpoint+jwt".into()
        }))
    );
    let not_a_receipt = k.sign_jws_as(JwsKind::Receipt, &Checkpoint::new(0, GENESIS_HASH, at(0)));
    assert_eq!(verify_receipt(&not_a_receipt, &set(&[&k])), Err(VerifyError::NotAReceipt));
}

#[test]
fn only_a_jws_of_the_receipt_kind_or_the_legacy_form_is_a_receipt() {
    let k = key("k1", 1);
    let (receipt, _) = receipt(&k);
    let payload = serde_json::to_vec(&receipt).expect("json");
    // The very payload of a receipt, genuinely signed as a subject token, a snapshot or a checkpoint.
    for kind in [JwsKind::SubjectToken, JwsKind::DeviceSnapshot, JwsKind::Checkpoint] {
        let jws = k.sign_jws_bytes(kind.typ(), &payload);
        assert_eq!(
            verify_receipt(&jws, &set(&[&k])),
            Err(VerifyError::Jws(JwsError::WrongKind {
                expected: "consent-receipt+jwt",
                found: kind.typ().into()
            })),
            "{kind:?}"
        );
    }
    // A receipt issued before receipts had their own typ still verifies.
    let legacy = k.sign_jws_bytes("JWT", &payload);
    assert_eq!(verify_receipt(&legacy, &set(&[&k])), Ok(receipt));
}

#[test]
fn only_a_jws_of_the_checkpoint_kind_or_the_legacy_form_is_a_checkpoint() {
    let k = key("k1", 1);
    let events = chain(3);
    let payload = serde_json::to_vec(&Checkpoint::new(3, events[2].hash.clone(), at(0))).expect("json");
    for kind in [JwsKind::Receipt, JwsKind::SubjectToken, JwsKind::DeviceSnapshot] {
        let report = verify(&export(&events, &[k.sign_jws_bytes(kind.typ(), &payload)]), &set(&[&k]));
        fails_at(&report, 4, ProblemKind::BadCheckpoint);
        assert!(report.first_bad.expect("bad").problem.contains("not a checkpoint+jwt"), "{kind:?}");
    }
    // Checkpoints stored before checkpoints had their own typ keep verifying.
    let report = verify(&export(&events, &[k.sign_jws_bytes("JWT", &payload)]), &set(&[&k]));
    assert!(report.ok, "{report:?}");
}
