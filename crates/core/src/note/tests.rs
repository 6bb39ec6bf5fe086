//! Signed notes against the reference vector of Go's `golang.org/x/mod/sumdb/note` (the key
//! `PeterNeumann`), and checkpoints against the C2SP tlog-checkpoint text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// The key's secret as the reference writes it: `PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 ‖ seed)>`.
const SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn reference_key() -> SigningKey {
    let bytes = STANDARD.decode(SKEY_B64).expect("base64");
    assert_eq!(bytes[0], ALG_ED25519);
    SigningKey::from_secret("peter", bytes[1..].try_into().expect("32 bytes"))
}

#[test]
fn signs_and_opens_the_reference_note() {
    let key = reference_key();
    let verifier = NoteVerifier::new("PeterNeumann", key.public_key()).expect("verifier");
    assert_eq!(verifier.vkey(), VKEY);
    assert_eq!(NoteVerifier::parse(VKEY), Ok(verifier.clone()));
    assert_eq!(sign(TEXT, "PeterNeumann", &key).expect("signed"), NOTE);
    let verifiers = [verifier];
    let (text, by) = open(NOTE, &verifiers).expect("opens");
    assert_eq!((text, by.len()), (TEXT, 1));
}

#[test]
fn refuses_changed_forged_and_unknown_notes() {
    let verifiers = [NoteVerifier::parse(VKEY).expect("vkey")];
    let changed = NOTE.replacen("cryptography", "cryptographx", 1);
    assert_eq!(open(&changed, &verifiers), Err(NoteError::BadSignature));
    // Signed by another key under the same name: its key id differs, so the known key never signed it.
    let forged = sign(TEXT, "PeterNeumann", &SigningKey::from_secret("x", [7; 32])).expect("signed");
    assert_eq!(open(&forged, &verifiers), Err(NoteError::UnknownSigner));
    assert!(open(TEXT, &verifiers).is_err());
    assert!(open(&NOTE.replace('\u{2014}', "-"), &verifiers).is_err());
    // A witness's cosignature by a key we do not know is skipped.
    let cosigned = format!("{NOTE}\u{2014} witness.example AAAAAAAA\n");
    assert!(open(&cosigned, &verifiers).is_ok());
    assert!(
        NoteVerifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err()
    );
    assert!(NoteVerifier::new("has space", [1; 32]).is_err());
    assert!(NoteVerifier::new("a+b", [1; 32]).is_err());
}

#[test]
fn checkpoints_round_trip_and_refuse_malformed_text() {
    let key = reference_key();
    let body = CheckpointBody::new("example.com/log", 8, crate::merkle::EMPTY_ROOT);
    let text = body.text();
    assert_eq!(text, "example.com/log\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
    let note = sign(&text, "example.com/log", &key).expect("signed");
    let verifiers = [NoteVerifier::new("example.com/log", key.public_key()).expect("verifier")];
    assert_eq!(open_checkpoint(&note, "example.com/log", &verifiers), Ok(body));
    assert!(open_checkpoint(&note, "other.example/log", &verifiers).is_err());
    for bad in
        ["o\n08\nAA==\n", "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "o\n1\nAA==\n", "\n1\n"]
    {
        assert!(CheckpointBody::parse(bad).is_err(), "{bad:?}");
    }
    let with_ext =
        CheckpointBody::parse("o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextra\n").expect("ext");
    assert_eq!(with_ext.extensions, vec!["extra".to_owned()]);
}
