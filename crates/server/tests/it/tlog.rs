//! The ledger as a transparency log over HTTP: signed C2SP checkpoints, verifier keys and consistency
//! proofs, checked by our core and by the independent Python verifier (`tests/support/verify_tlog.py`,
//! written from RFC 9162 and the C2SP specifications), with tampering refused.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::merkle;
use consentry_core::note::{CheckpointBody, NoteVerifier, open_checkpoint};
use consentry_core::proven::{self, ProvenReceipt};
use reqwest::Method;
use serde_json::{Value, json};

use crate::proof::python_has;
use crate::utils::{Backend, NO_KEY, TestServer, assert_code, both_backends, grant, withdraw};

/// The newest signed checkpoint, once it covers `size` events.
pub(crate) async fn checkpoint_covering(s: &TestServer, size: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = s.send(Method::GET, "/v1/tlog/checkpoint", NO_KEY, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.content_type().starts_with("text/plain"), "{}", reply.content_type());
        let text = reply.text.split("\n\n").next().unwrap_or("").to_owned() + "\n";
        let body = CheckpointBody::parse(&text).expect("a checkpoint body");
        if body.size >= size {
            return reply.text;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint of {size} events within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log's verifier keys and its origin (the keys' name).
pub(crate) async fn vkeys(s: &TestServer) -> (String, String) {
    let reply = s.send(Method::GET, "/v1/tlog/vkey", NO_KEY, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type().starts_with("text/plain"), "{}", reply.content_type());
    let origin = reply.text.split('+').next().expect("a name").to_owned();
    (reply.text, origin)
}

/// Runs `tests/support/verify_tlog.py` with `args`, files written from `files` (name, content) first;
/// returns whether it verified and what it printed.
pub(crate) async fn python(command: &str, files: &[(&str, &str)], extra: &[&str]) -> (bool, Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = vec![concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/verify_tlog.py").to_owned()];
    args.push(command.to_owned());
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write a file for the verifier");
        args.push(path.to_string_lossy().into_owned());
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let out = tokio::process::Command::new("python3").args(&args).output().await.expect("run python3");
    if !out.status.success() {
        return (false, json!(String::from_utf8_lossy(&out.stderr)));
    }
    (true, serde_json::from_slice(&out.stdout).expect("the verifier prints JSON"))
}

/// Checks the receipt of a 201 `out` for `subject`: by our verifier and by the independent one, and that
/// a changed event, a forged checkpoint or another person's name is refused by both.
pub(crate) async fn assert_proven(s: &TestServer, out: &Value, subject: &str) {
    let (keys, origin) = vkeys(s).await;
    let verifiers: Vec<NoteVerifier> = keys.lines().map(|l| NoteVerifier::parse(l).expect("vkey")).collect();
    let receipt = &out["receipt"];
    let parsed: ProvenReceipt = serde_json::from_value(receipt.clone()).expect("a proven receipt");
    let checkpoint = proven::verify(&parsed, &origin, &verifiers).expect("our verifier accepts the receipt");
    let events = out["events"].as_array().expect("events");
    let last = events.last().and_then(|e| e["seq"].as_u64()).expect("a seq");
    assert!(checkpoint.size >= last, "the checkpoint covers the events");
    assert_eq!(receipt["leaf"]["index"].as_u64(), events[0]["seq"].as_u64().map(|s| s - 1));
    assert_eq!(parsed.payload.pii_principal_id, subject);

    let mut changed = parsed.clone();
    let data = STANDARD.decode(&changed.leaf.data).expect("base64");
    let text = String::from_utf8(data).expect("utf-8").replacen("\"grant\"", "\"deny\"", 1).replacen(
        "\"withdraw\"",
        "\"grant\"",
        1,
    );
    changed.leaf.data = STANDARD.encode(text);
    assert!(proven::verify(&changed, &origin, &verifiers).is_err(), "a changed event verified");
    let mut forged = parsed.clone();
    let body =
        CheckpointBody::parse(&(forged.checkpoint.split("\n\n").next().unwrap_or("").to_owned() + "\n"))
            .expect("body");
    forged.checkpoint =
        forged.checkpoint.replacen(&format!("\n{}\n", body.size), &format!("\n{}\n", body.size + 1), 1);
    assert!(proven::verify(&forged, &origin, &verifiers).is_err(), "a forged checkpoint verified");
    let mut someone_else = parsed.clone();
    someone_else.payload.pii_principal_id = format!("{subject}-not");
    assert!(proven::verify(&someone_else, &origin, &verifiers).is_err(), "another person's name verified");

    if !python_has("cryptography").await {
        return;
    }
    let verify = |r: &ProvenReceipt| serde_json::to_string(r).expect("JSON");
    let genuine = receipt.to_string();
    let (ok, got) = python("receipt", &[("receipt.json", &genuine), ("vkeys", &keys)], &[&origin]).await;
    assert!(ok, "the independent verifier refused the receipt: {got}");
    assert_eq!(got["subject"], subject);
    assert_eq!(got["events"].as_array().map(Vec::len), Some(events.len()));
    for (what, bad) in
        [("a changed event", &changed), ("a forged checkpoint", &forged), ("another person", &someone_else)]
    {
        let (ok, _) =
            python("receipt", &[("receipt.json", &verify(bad)), ("vkeys", &keys)], &[&origin]).await;
        assert!(!ok, "the independent verifier accepted {what}");
    }
}

async fn record_some(s: &TestServer, subject: &str, n: usize) {
    for i in 0..n {
        let body =
            if i % 2 == 0 { grant("marketing.direct", &["email"]) } else { withdraw("marketing.direct") };
        s.record(subject, &body).await;
    }
}

async fn checkpoints_and_consistency_verify_independently(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    record_some(&s, "alice", 3).await;
    let old = checkpoint_covering(&s, 3).await;
    record_some(&s, "bob", 4).await;
    let new = checkpoint_covering(&s, 7).await;
    let (keys, origin) = vkeys(&s).await;
    assert!(origin.starts_with("consentry.invalid/"), "the default origin names the installation: {origin}");
    let verifiers: Vec<NoteVerifier> =
        keys.lines().map(|l| NoteVerifier::parse(l).expect("a verifier key")).collect();
    let old_body = open_checkpoint(&old, &origin, &verifiers).expect("our verifier opens it");
    let new_body = open_checkpoint(&new, &origin, &verifiers).expect("our verifier opens it");
    assert_eq!((old_body.size, new_body.size), (3, 7));

    let proof = s.get("/v1/tlog/consistency?from=3&to=7", NO_KEY, 200).await;
    assert_eq!((proof["from"].as_u64(), proof["to"].as_u64()), (Some(3), Some(7)));
    let hashes: Vec<merkle::Hash> = proof["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| STANDARD.decode(h.as_str().expect("text")).expect("base64").try_into().expect("32 bytes"))
        .collect();
    assert_eq!(merkle::verify_consistency(3, 7, &old_body.root, &new_body.root, &hashes), Ok(()));

    if !python_has("cryptography").await {
        return;
    }
    let proof_text = proof.to_string();
    let (ok, out) = python("checkpoint", &[("new.note", &new), ("vkeys", &keys)], &[&origin]).await;
    assert!(ok, "the independent verifier refused the checkpoint: {out}");
    assert_eq!(out["size"], 7);
    assert_eq!(out["root"], STANDARD.encode(new_body.root));
    let files = [
        ("old.note", old.as_str()),
        ("new.note", new.as_str()),
        ("proof.json", &proof_text),
        ("vkeys", &keys),
    ];
    let (ok, out) = python("consistency", &files, &[&origin]).await;
    assert!(ok, "the independent verifier refused the consistency proof: {out}");

    // A forged checkpoint: another root under the genuine signature.
    let forged = new.replacen(&STANDARD.encode(new_body.root), &STANDARD.encode(old_body.root), 1);
    assert!(open_checkpoint(&forged, &origin, &verifiers).is_err());
    let (ok, _) = python("checkpoint", &[("forged.note", &forged), ("vkeys", &keys)], &[&origin]).await;
    assert!(!ok, "a forged checkpoint verified");
    // Another log's checkpoint is not this one's.
    let (ok, _) = python("checkpoint", &[("new.note", &new), ("vkeys", &keys)], &["other.example/log"]).await;
    assert!(!ok, "a checkpoint verified for another origin");
    // A log cut back to fewer events, with its later checkpoints removed: given the earlier checkpoint,
    // whatever the log now shows is refused (smaller than what was signed before).
    let files = [
        ("old.note", new.as_str()),
        ("new.note", old.as_str()),
        ("proof.json", "{\"hashes\": []}"),
        ("vkeys", &keys),
    ];
    let (ok, _) = python("consistency", &files, &[&origin]).await;
    assert!(!ok, "a truncated log verified against an earlier checkpoint");
    // A changed event changes the tree: the proof between the genuine checkpoints no longer holds.
    let mut wrong = hashes.clone();
    wrong[0][0] ^= 1;
    assert!(merkle::verify_consistency(3, 7, &old_body.root, &new_body.root, &wrong).is_err());
    let tampered =
        json!({"hashes": wrong.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>()}).to_string();
    let files =
        [("old.note", old.as_str()), ("new.note", new.as_str()), ("proof.json", &tampered), ("vkeys", &keys)];
    let (ok, _) = python("consistency", &files, &[&origin]).await;
    assert!(!ok, "a changed proof verified");
    s.stop().await;
}

async fn consistency_queries_are_checked(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    record_some(&s, "carol", 2).await;
    for bad in ["from=a&to=2", "to=2", "from=1&to=2&x=1", "from=-1&to=2"] {
        let problem = s.get(&format!("/v1/tlog/consistency?{bad}"), NO_KEY, 400).await;
        assert_code(&problem, "invalid_query");
    }
    // Sizes the log has not reached, or the wrong way round: no such proof.
    for none in ["from=3&to=2", "from=0&to=3", "from=0&to=9223372036854775806"] {
        let problem = s.get(&format!("/v1/tlog/consistency?{none}"), NO_KEY, 404).await;
        assert_code(&problem, "not_found");
    }
    let empty = s.get("/v1/tlog/consistency?from=0&to=2", NO_KEY, 200).await;
    assert_eq!(empty["hashes"], json!([]));
    let same = s.get("/v1/tlog/consistency?from=2&to=2", NO_KEY, 200).await;
    assert_eq!(same["hashes"], json!([]));
    s.stop().await;
}

/// Each write is answered with the checkpoint of the tree its own commit made (signed at once, not stored
/// necessarily): one write after another, each receipt's checkpoint is of exactly the events so far, and
/// proves itself; the log's later checkpoint is consistent with every one of them.
async fn each_commit_is_signed_for_its_writes(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (keys, origin) = vkeys(&s).await;
    let verifiers: Vec<NoteVerifier> = keys.lines().map(|l| NoteVerifier::parse(l).expect("vkey")).collect();
    let mut heads = Vec::new();
    for i in 0..6 {
        let body = if i % 2 == 0 { grant("analytics", &[]) } else { withdraw("analytics") };
        let out = s.post("/v1/subjects/erin/consents", crate::utils::ADMIN_KEY, &body, 201).await;
        let parsed: ProvenReceipt = serde_json::from_value(out["receipt"].clone()).expect("a receipt");
        let checkpoint = proven::verify(&parsed, &origin, &verifiers).expect("the receipt verifies");
        assert_eq!(Some(checkpoint.size), out["events"][0]["seq"].as_u64(), "its own commit's tree");
        if i == 0 {
            assert_proven(&s, &out, "erin").await;
        }
        heads.push(checkpoint);
    }
    let newest = checkpoint_covering(&s, 6).await;
    let newest = open_checkpoint(&newest, &origin, &verifiers).expect("the newest checkpoint verifies");
    for old in &heads {
        let path = format!("/v1/tlog/consistency?from={}&to={}", old.size, newest.size);
        let proof = s.get(&path, NO_KEY, 200).await;
        let hashes: Vec<merkle::Hash> = proof["hashes"]
            .as_array()
            .expect("hashes")
            .iter()
            .map(|h| {
                let bytes = STANDARD.decode(h.as_str().expect("a string")).expect("base64");
                bytes.try_into().expect("32 bytes")
            })
            .collect();
        merkle::verify_consistency(old.size, newest.size, &old.root, &newest.root, &hashes)
            .expect("the log grew from the receipt's checkpoint");
    }
    s.stop().await;
}

async fn a_configured_origin_names_the_log(backend: Backend) {
    let s =
        TestServer::with_config_on(backend, |c| c.tlog_origin = Some("consent.example.com/log".into())).await;
    record_some(&s, "dora", 1).await;
    let note = checkpoint_covering(&s, 1).await;
    assert!(note.starts_with("consent.example.com/log\n1\n"), "{note}");
    assert!(note.contains("\n\n\u{2014} consent.example.com/log "), "{note}");
    let (keys, origin) = vkeys(&s).await;
    assert_eq!(origin, "consent.example.com/log");
    assert_eq!(keys.lines().count(), 1, "one key on a fresh store");
    s.stop().await;
}

both_backends!(
    checkpoints_and_consistency_verify_independently,
    consistency_queries_are_checked,
    each_commit_is_signed_for_its_writes,
    a_configured_origin_names_the_log
);
