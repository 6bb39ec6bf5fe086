//! Tests of signing and verification: RFC 8037 vectors, a hand-made JWS, tampering, kinds, receipts.

use super::*;
use crate::ledger::{Event, GENESIS_HASH, NewEvent, Scope};

/// RFC 8037 Appendix A.1.
const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

fn rfc_secret() -> [u8; 32] {
    b64(RFC_D).try_into().expect("32 bytes")
}

fn key(kid: &str, byte: u8) -> SigningKey {
    SigningKey::from_secret(kid.to_owned(), [byte; 32])
}

fn jwks(keys: &[&SigningKey]) -> Jwks {
    keys.iter().map(|k| k.public_jwk()).collect()
}

/// Re-encodes one part of a JWS.
fn with_part(jws: &str, index: usize, bytes: &[u8]) -> String {
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    parts[index] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// A second, independent JWS implementation: the signing input built by hand.
fn hand_made_jws(secret: &[u8; 32], header: &str, payload: &str) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(secret);
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = ed25519_dalek::Signer::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[test]
fn rfc_8037_public_key_and_thumbprint() {
    let k = SigningKey::from_secret("k", rfc_secret());
    assert_eq!(k.public_jwk().x, RFC_X);
    assert_eq!(kid_for(&k.public_key()), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(k.public_jwk().thumbprint().as_deref(), Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
    let derived = SigningKey::from_secret_with_thumbprint_kid(rfc_secret());
    assert_eq!(derived.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn rfc_8037_signature_example() {
    // RFC 8037 Appendix A.4: both our encoder and the hand-made one give the RFC's JWS exactly.
    let expected = concat!(
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.",
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    let key = ed25519_dalek::SigningKey::from_bytes(&rfc_secret());
    assert_eq!(sign_compact(&key, br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing"), expected);
    assert_eq!(hand_made_jws(&rfc_secret(), r#"{"alg":"EdDSA"}"#, "Example of Ed25519 signing"), expected);
}

#[test]
fn jwk_shape() {
    let k = SigningKey::from_secret("k1", rfc_secret());
    assert_eq!(
        serde_json::to_value(Jwks { keys: vec![k.public_jwk()] }).expect("json"),
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": "k1",
            "alg": "EdDSA", "use": "sig"}]})
    );
    // A key set from elsewhere may leave alg and use out.
    let lean: Jwks = serde_json::from_str(&format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC_X}","kid":"k1"}}]}}"#
    ))
    .expect("parses");
    assert_eq!(lean.keys[0].ed25519_public_key(), Some(k.public_key()));
}

#[test]
fn sign_and_verify_round_trip() {
    let k = key("k1", 7);
    let cp = Checkpoint::new(3, "ab".repeat(32), Timestamp::from_micros(1_700_000_000_999_999));
    assert_eq!(cp.iat, 1_700_000_000);
    assert_eq!(cp.signed_at, "2023-11-14T22:13:20.999999Z");
    let jws = k.sign_jws(&cp);
    let header_json = b64(jws.split('.').next().expect("header"));
    assert_eq!(header_json, br#"{"alg":"EdDSA","kid":"k1","typ":"checkpoint+jwt"}"#);
    let (header, payload) = verify_jws(&jws, &jwks(&[&k])).expect("verifies");
    assert_eq!(
        header,
        JwsHeader { alg: "EdDSA".into(), kid: Some("k1".into()), typ: Some("checkpoint+jwt".into()) }
    );
    assert_eq!(serde_json::from_slice::<Checkpoint>(&payload).expect("checkpoint"), cp);
    // Deterministic.
    assert_eq!(jws, k.sign_jws(&cp));
}

#[test]
fn each_kind_verifies_only_as_itself() {
    use JwsKind::*;
    let k = key("k1", 7);
    let set = jwks(&[&k]);
    let kinds = [Receipt, DeviceSnapshot, Checkpoint, SubjectToken];
    for signed in kinds {
        let jws = k.sign_jws_as(signed, &serde_json::json!({"x": 1}));
        for expected in kinds {
            let result = verify_jws_kind(&jws, &set, expected);
            if signed == expected {
                assert!(result.is_ok(), "{signed:?} verifies as itself: {result:?}");
            } else {
                assert_eq!(
                    result,
                    Err(JwsError::WrongKind { expected: expected.typ(), found: signed.typ().into() }),
                    "{signed:?} presented as {expected:?}"
                );
            }
        }
    }
    // A receipt is signed as its kind.
    let header = b64(k.sign_jws(&receipt()).split('.').next().expect("header"));
    assert_eq!(header, br#"{"alg":"EdDSA","kid":"k1","typ":"consent-receipt+jwt"}"#);
}

#[test]
fn legacy_jws_verify_only_as_long_lived_kinds() {
    let secret = [42; 32];
    let k = SigningKey::from_secret("k1", secret);
    let set = jwks(&[&k]);
    let without = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1"}"#, "{}");
    let old = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#, "{}");
    let other = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}"#, "{}");
    for legacy in [&without, &old] {
        for kind in [JwsKind::Receipt, JwsKind::Checkpoint] {
            assert!(verify_jws_kind(legacy, &set, kind).is_ok(), "{kind:?} accepts the legacy form");
            assert!(matches!(verify_jws_kind(&other, &set, kind), Err(JwsError::WrongKind { .. })));
        }
        for kind in [JwsKind::SubjectToken, JwsKind::DeviceSnapshot] {
            assert!(
                matches!(verify_jws_kind(legacy, &set, kind), Err(JwsError::WrongKind { .. })),
                "{kind:?} refuses the legacy form"
            );
        }
    }
    // typ is a media type: any case, `application/` optional.
    let long = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1","typ":"application/Subject+JWT"}"#, "{}");
    assert!(verify_jws_kind(&long, &set, JwsKind::SubjectToken).is_ok());
    // The kind is checked on genuine JWS only: a forged one is a bad signature whatever its typ.
    let forged = with_part(&k.sign_jws_as(JwsKind::Receipt, &0), 1, b"1");
    assert_eq!(verify_jws_kind(&forged, &set, JwsKind::SubjectToken), Err(JwsError::BadSignature));
}

#[test]
fn independently_made_jws_verifies() {
    let secret = [42; 32];
    let k = SigningKey::from_secret("kid-x", secret);
    let jws = hand_made_jws(&secret, r#"{"kid":"kid-x","alg":"EdDSA"}"#, r#"{"events":0}"#);
    let (header, payload) = verify_jws(&jws, &jwks(&[&k])).expect("verifies");
    assert_eq!(header.typ, None);
    assert_eq!(payload, br#"{"events":0}"#);
}

#[test]
fn tampering_is_refused() {
    let k = key("k1", 7);
    let set = jwks(&[&k]);
    let jws = k.sign_jws_as(JwsKind::Checkpoint, &serde_json::json!({"events": 1}));

    let payload = with_part(&jws, 1, br#"{"events":2}"#);
    assert_eq!(verify_jws(&payload, &set), Err(JwsError::BadSignature));

    let header = with_part(&jws, 0, br#"{"alg":"EdDSA","kid":"k1","typ":"jwt"}"#);
    assert_eq!(verify_jws(&header, &set), Err(JwsError::BadSignature));

    let mut signature = b64(jws.rsplit('.').next().expect("signature"));
    signature[5] ^= 1;
    assert_eq!(verify_jws(&with_part(&jws, 2, &signature), &set), Err(JwsError::BadSignature));
    assert!(matches!(verify_jws(&with_part(&jws, 2, &signature[..63]), &set), Err(JwsError::Malformed(_))));

    let other = key("k1", 8);
    assert_eq!(verify_jws(&other.sign_jws_as(JwsKind::Checkpoint, &1), &set), Err(JwsError::BadSignature));
    assert_eq!(
        verify_jws(&key("k2", 7).sign_jws_as(JwsKind::Checkpoint, &1), &set),
        Err(JwsError::UnknownKid("k2".into()))
    );
}

#[test]
fn other_algorithms_and_malformed_input_are_refused() {
    let secret = [7; 32];
    let k = SigningKey::from_secret("k1", secret);
    let set = jwks(&[&k]);
    let payload = URL_SAFE_NO_PAD.encode(br#"{"events":1}"#);
    let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#));
    assert_eq!(verify_jws(&none, &set), Err(JwsError::WrongAlg("none".into())));
    let hs = hand_made_jws(&secret, r#"{"alg":"HS256","kid":"k1"}"#, "{}");
    assert_eq!(verify_jws(&hs, &set), Err(JwsError::WrongAlg("HS256".into())));
    let crit = hand_made_jws(&secret, r#"{"alg":"EdDSA","kid":"k1","crit":["exp"],"exp":1}"#, "{}");
    assert!(matches!(verify_jws(&crit, &set), Err(JwsError::Malformed(_))));
    let no_kid = hand_made_jws(&secret, r#"{"alg":"EdDSA"}"#, "{}");
    assert!(matches!(verify_jws(&no_kid, &set), Err(JwsError::Malformed(_))));
    let duplicate_alg = hand_made_jws(&secret, r#"{"alg":"EdDSA","alg":"none","kid":"k1"}"#, "{}");
    assert!(matches!(verify_jws(&duplicate_alg, &set), Err(JwsError::Malformed(_))));

    let good = k.sign_jws_as(JwsKind::Checkpoint, &1);
    for bad in ["", "a.b", "a.b.c.d", &format!("{good}."), &good.replacen('.', "=.", 1)] {
        assert!(matches!(verify_jws(bad, &set), Err(JwsError::Malformed(_))), "{bad}");
    }
    // Padding is not base64url-without-padding.
    let padded = format!("{good}==");
    assert!(matches!(verify_jws(&padded, &set), Err(JwsError::Malformed(_))));

    let mut wrong_kty = k.public_jwk();
    wrong_kty.kty = "EC".into();
    let unusable = Jwks { keys: vec![wrong_kty] };
    assert_eq!(verify_jws(&good, &unusable), Err(JwsError::UnusableKey("k1".into())));
}

#[test]
fn debug_hides_the_secret() {
    let k = SigningKey::from_secret("k1", rfc_secret());
    let text = format!("{k:?}");
    assert!(text.contains("k1") && text.contains(RFC_X) && text.contains("redacted"));
    assert!(!text.contains(RFC_D));
    assert!(!text.contains(&format!("{:?}", rfc_secret())));
    assert!(!text.contains(&hex::encode(rfc_secret())));
}

#[test]
fn error_messages_clip_untrusted_text() {
    let long = "x".repeat(500);
    let text = JwsError::UnknownKid(clip(&long)).to_string();
    assert!(text.len() < 120, "{text}");
}

#[test]
fn states_cover_every_action() {
    let states: Vec<_> = Action::ALL.into_iter().map(state_for).collect();
    assert_eq!(
        states,
        ["given", "refused", "withdrawn", "objected", "restricted", "renewed", "expired", "located"]
    );
}

fn receipt() -> ConsentReceipt {
    let event = Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: "marketing.direct".into(),
            action: Action::Grant,
            scope: Scope::new(vec![], vec!["email".into()], vec![]),
            notice: Some("marketing.direct".into()),
            notice_version: Some(2),
            notice_hash: Some("cd".repeat(32)),
            collection_point: Some("signup".into()),
            actor: "subject".into(),
            expires_at: None,
        },
        1,
        "p".repeat(64),
        Timestamp::from_micros(1_700_000_000_000_000),
        GENESIS_HASH.into(),
    );
    ConsentReceipt {
        version: RECEIPT_VERSION.into(),
        jurisdiction: "EU".into(),
        consent_timestamp: unix_seconds(event.recorded_at),
        collection_method: "web_form".into(),
        consent_receipt_id: "rcpt_1".into(),
        public_key: Some(RFC_X.into()),
        language: Some("en".into()),
        pii_principal_id: "user-42".into(),
        pii_controllers: vec![PiiController {
            pii_controller: "Brand".into(),
            on_behalf: false,
            contact: "DPO".into(),
            address: PostalAddress {
                street_address: "1 Street".into(),
                postal_code: None,
                address_locality: Some("Berlin".into()),
                address_region: None,
                address_country: "DE".into(),
            },
            email: "dpo@example.com".into(),
            phone: "+49 30 1234567".into(),
            pii_controller_url: Some("https://example.com".into()),
        }],
        policy_url: "https://example.com/privacy".into(),
        services: vec![Service {
            service: "Brand".into(),
            purposes: vec![ServicePurpose {
                purpose: "Direct marketing".into(),
                purpose_category: vec!["dpv:DirectMarketing".into()],
                consent_type: CONSENT_TYPE_EXPLICIT.into(),
                pii_category: vec!["E-mail address".into()],
                primary_purpose: false,
                termination: "https://example.com/privacy".into(),
                third_party_disclosure: false,
                third_party_name: None,
            }],
        }],
        sensitive: false,
        spi_cat: vec![],
        consentry: Extension {
            schema_version: RECEIPT_SCHEMA_VERSION.into(),
            kid: "k1".into(),
            issued_at: event.recorded_at.to_string(),
            consent_time: event.recorded_at.to_string(),
            collection_point: Some(CollectionPoint { key: "signup".into(), name: "Sign-up form".into() }),
            notice: Some(ReceiptNotice {
                notice_id: "marketing.direct".into(),
                version: 2,
                sha256: "cd".repeat(32),
                language: "en".into(),
                title: "Direct marketing".into(),
                url: None,
            }),
            ledger: LedgerRange { first_seq: 1, last_seq: 1, head: event.hash.clone() },
            events: vec![ReceiptEvent {
                evidence: None,
                event_id: event.id(),
                event_time: event.recorded_at.to_string(),
                event_type: event.action.as_str().into(),
                event_state: state_for(event.action).into(),
                purpose_id: "marketing.direct".into(),
                dpv: Some("dpv:DirectMarketing".into()),
                lawful_basis: "consent".into(),
                pii_information: vec![ReceiptCategory {
                    key: "user.contact.email".into(),
                    dpv: None,
                    sensitive: false,
                }],
                channels: vec!["email".into()],
                recipients: vec![],
                expires_at: None,
                seq: event.seq,
                hash: event.hash.clone(),
                prev_hash: event.prev_hash.clone(),
            }],
        },
    }
}

#[test]
fn receipts_round_trip_through_a_jws() {
    let r = receipt();
    let value = serde_json::to_value(&r).expect("json");
    assert_eq!(value["version"], "KI-CR-v1.1.0");
    assert_eq!(value["consentReceiptID"], "rcpt_1", "Kantara's spelling, not camelCase's");
    assert_eq!(value["consentTimestamp"], 1_700_000_000);
    assert_eq!(value["piiControllers"][0]["address"]["addressCountry"], "DE");
    assert_eq!(value["services"][0]["purposes"][0]["consentType"], "EXPLICIT");
    assert_eq!(value["consentry"]["events"][0]["event_id"], "evt_1");
    assert_eq!(value["consentry"]["events"][0]["event_state"], "given");
    let purpose = value["services"][0]["purposes"][0].as_object().expect("a purpose");
    assert!(!purpose.contains_key("thirdPartyName"), "absent options are left out: {purpose:?}");
    assert!(value["consentry"]["notice"].get("url").is_none(), "absent options are left out");
    let k = key("k1", 9);
    let (_, payload) = verify_jws(&k.sign_jws(&r), &jwks(&[&k])).expect("verifies");
    assert_eq!(serde_json::from_slice::<ConsentReceipt>(&payload).expect("receipt"), r);
}
