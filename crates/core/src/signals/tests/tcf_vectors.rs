//! TC strings and their values from the IAB's reference implementations and specification:
//!
//! - `InteractiveAdvertisingBureau/iabtcf-java`, commit 1bc03e64eb873a427dea52b3a1ae0d7c7ccfd1b3:
//!   `iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java`,
//!   `iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringDecoderTest.java`,
//!   `iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV1Test.java`,
//!   `iabtcf-encoder/src/test/java/com/iabtcf/encoder/TCStringV2EncoderTest.java`;
//! - `InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework`, commit
//!   10b489eae0d5328e07241001520d984e15afb59a: `TCFv2/IAB Tech Lab - Consent string and vendor list
//!   formats v2.md` (the example string of "TC String Format").

use base64::Engine as _;

use crate::signals::tcf::{self, Deciseconds};
use crate::signals::{Place, PublisherRestriction, Signal};

fn at(rfc3339: &str) -> Deciseconds {
    let t =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).expect("time");
    Deciseconds::from_offset(t).expect("in range")
}

/// What iabtcf-java's `base64FromBitString` does: bits packed into bytes, then base64url with padding.
fn from_bits(bits: &str) -> String {
    let bytes: Vec<u8> = bits
        .as_bytes()
        .chunks(8)
        .map(|c| c.iter().enumerate().fold(0u8, |b, (i, &d)| b | (u8::from(d == b'1') << (7 - i))))
        .collect();
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// Decodes, checks that encoding gives a string that decodes to the same values.
fn decode(s: &str) -> tcf::TcString {
    let tc = tcf::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let again = tcf::encode(&tc).expect("encodes");
    assert_eq!(tcf::decode(&again).expect("decodes again"), tc, "{s} round trip via {again}");
    tc
}

#[test]
fn java_v2_core_fields() {
    // TCStringV2Test.testCanConstructTCModelFromBase64String
    let tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    assert_eq!(tc.version, 2);
    assert_eq!(tc.created, at("2020-01-26T17:01:00Z"));
    assert_eq!(tc.last_updated, at("2021-02-02T17:01:00Z"));
    assert_eq!((tc.cmp_id, tc.cmp_version, tc.consent_screen), (675, 2, 1));
    assert_eq!((tc.vendor_list_version, tc.tcf_policy_version), (15, 2));
    assert_eq!((tc.consent_language.as_str(), tc.publisher_cc.as_str()), ("EN", "AA"));
    assert!(!tc.is_service_specific);
    assert!(tc.purpose_one_treatment);
    assert!(!tc.use_non_standard_texts);
    assert_eq!(tc.special_feature_opt_ins, [1]);
    assert_eq!(tc.purposes_consent, [2, 10]);
    assert_eq!(tc.purposes_li_transparency, [2, 9]);
    let json = serde_json::to_value(&tc).expect("json");
    assert_eq!(json["created"], "2020-01-26T17:01:00Z");
    let tenth = Deciseconds::new(tc.created.get() + 5).expect("in range");
    assert_eq!(serde_json::to_value(tenth).expect("json"), "2020-01-26T17:01:00.5Z");
}

#[test]
fn java_v2_bit_field_vendors() {
    // TCStringV2Test.testConstructConsentsFromBitFields
    let tc = decode("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA");
    assert_eq!(tc.purposes_consent, [3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(tc.vendor_consents, [23, 37, 47, 48, 53, 65, 98]);
    assert_eq!(tc.vendor_li, [37, 47, 48, 53, 65, 98, 129]);
}

#[test]
fn java_v2_disclosed_allowed_and_publisher_segments() {
    // TCStringV2Test.testCanParseDisclosedAndAllowedVendors and testCanParseAllParts
    let core = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA";
    let tc = decode(&format!("{core}.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA"));
    assert_eq!(tc.allowed_vendors.as_deref(), Some(&[12, 23, 37, 47, 48, 53][..]));
    assert_eq!(tc.disclosed_vendors.as_deref(), Some(&[23, 37, 47, 48, 53, 65, 98, 129][..]));
    let tc = decode(&format!("{core}.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg="));
    assert_eq!(tc.publisher_tc.expect("publisher segment").pub_purposes_consent.len(), 1);
}

#[test]
fn java_v2_range_vendors() {
    // TCStringV2Test.testCanParseRangeEncodedVendorLegitimateInterests and testRange
    assert_eq!(decode("COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA").vendor_li, [128]);
    let disclosed = "IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw";
    let two = decode(&format!("COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.{disclosed}"));
    assert_eq!(two.vendor_consents, [702, 703]);
    let one = decode(&format!("COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA.{disclosed}"));
    assert_eq!(one.vendor_consents, [703]);
    // TCStringV2Test.testPurposesConsent
    let tc = decode("COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA");
    assert!(tc.purposes_consent.starts_with(&[1, 2]));
    // TCStringV2EncoderTest.testToTCString and TCStringDecoderTest
    decode("CPA9dwAPA9dwAKjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    decode(&format!("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.{disclosed}"));
}

#[test]
fn java_v2_publisher_restrictions() {
    // TCStringV2Test.testPublisherRestrictions, the bit string as written there.
    let bits = [
        "0000100011101011100",
        "1000000000000001010",
        "0000001110101110010",
        "0000000000000101000",
        "0000110011111000000",
        "0000000000000000100",
        "0011010000000011110",
        "0001000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "0000000000000000000",
        "000000000011",
        "000001",
        "01",
        "000000000000",
        "000010",
        "00",
        "000000000000",
        "000011",
        "10",
        "000000000000",
        "0",
    ]
    .concat();
    let tc = decode(&from_bits(&bits));
    let pr = |purpose, restriction_type| PublisherRestriction { purpose, restriction_type, vendors: vec![] };
    assert_eq!(tc.publisher_restrictions, [pr(1, 1), pr(2, 0), pr(3, 2)]);
}

#[test]
fn java_v2_publisher_purposes() {
    // TCStringV2Test.testPublisherPurposes
    let segment =
        ["011", "100000000000000000000000", "000000000000000000000001", "000010", "01", "11", "000"].concat();
    let tc = decode(&format!("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.{}", from_bits(&segment)));
    let p = tc.publisher_tc.expect("publisher segment");
    assert_eq!(p.pub_purposes_consent, [1]);
    assert_eq!(p.pub_purposes_li, [24]);
    assert_eq!(p.custom_purposes_consent, [2]);
    assert_eq!(p.custom_purposes_li, [1, 2]);
}

#[test]
fn specification_example() {
    // "TC String Format" in the TCF v2 specification (a TCF 2.3 string with disclosed vendors).
    let tc = decode("CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA");
    assert_eq!(tc.cmp_id, 880);
    assert!(tc.disclosed_vendors.as_ref().is_some_and(|d| !d.is_empty()));
    assert!(tc.publisher_tc.is_some());
}

fn refused(s: &str) -> (String, usize, String) {
    let e = tcf::decode(s).expect_err(s);
    assert_eq!(e.signal, Signal::Tcf);
    assert_eq!(e.code(), "invalid_tc_string");
    match e.place {
        Place::Bit { segment, offset } => (segment.into_owned(), offset, e.reason.into_owned()),
        Place::Field(f) => panic!("decode error names a field {f}"),
    }
}

#[test]
fn refusals_name_segment_and_offset() {
    // TCStringV1Test: a v1 string is refused, never read as v2.
    let (segment, offset, reason) = refused("BObdrPUOevsguAfDqFENCNAAAAAmeAAA");
    assert_eq!((segment.as_str(), offset), ("core", 0));
    assert!(reason.contains("v1"), "{reason}");
    // TCStringDecoderTest.testReadBeyondBuffer and testStrict: strings that end inside the core.
    let (_, offset, reason) = refused("Bg");
    assert_eq!(offset, 0);
    assert!(reason.contains("v1"));
    let (segment, offset, reason) = refused("CA==");
    assert_eq!((segment.as_str(), offset), ("core", 6));
    assert!(reason.contains("created"), "{reason}");
    // TCStringDecoderTest.shouldFailIfANonSupportedVersionIsPassed: byte 13 is version 3.
    let (_, _, reason) = refused("DQ==");
    assert!(reason.contains("version 3"), "{reason}");
    // TCStringV2Test.testDefaultSegmentType: iabtcf-java ignores a segment of type 0; it is not a
    // segment the specification defines, so it is refused here rather than silently dropped.
    let (segment, _, reason) = refused("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA.AA==");
    assert_eq!(segment, "segment 2");
    assert!(reason.contains("unknown segment type 0"), "{reason}");
    // Not base64url.
    let (_, offset, _) = refused("COtybn4PA_zT4K!");
    assert_eq!(offset, 14 * 6);
    // A bit field shorter than its maximum vendor id: the core above, cut after MaxVendorId.
    let (segment, offset, reason) = refused("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgA");
    assert_eq!(segment, "core");
    assert_eq!(offset, 230);
    assert!(reason.contains("shorter than its maximum vendor id"), "{reason}");
    // Segments repeated.
    let core = "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA";
    let (_, _, reason) = refused(&format!("{core}.IBAgAAAgAIAwgAgAAAAEAAAACA.IBAgAAAgAIAwgAgAAAAEAAAACA"));
    assert!(reason.contains("twice"), "{reason}");
    refused("");
}

#[test]
fn policy_checks() {
    // Policy version 2, not service-specific: decodable, but no evidence under the policies.
    let mut tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    let field = |tc: &tcf::TcString| match tc.check_policy().expect_err("refused").place {
        Place::Field(f) => f.into_owned(),
        Place::Bit { .. } => unreachable!("policy errors name fields"),
    };
    assert_eq!(field(&tc), "is_service_specific");
    tc.is_service_specific = true;
    tc.check_policy().expect("policy 2 before the TCF 2.2 cut-over");
    tc.created = at("2024-01-01T00:00:00Z");
    assert_eq!(field(&tc), "tcf_policy_version");
    tc.tcf_policy_version = 4;
    tc.check_policy().expect("TCF 2.2");
    tc.tcf_policy_version = 5;
    assert_eq!(field(&tc), "disclosed_vendors");
    tc.disclosed_vendors = Some(vec![1]);
    tc.check_policy().expect("TCF 2.3");
    tc.tcf_policy_version = 6;
    assert_eq!(field(&tc), "tcf_policy_version");
}

#[test]
fn encode_refuses_values_out_of_range() {
    let base = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    let check = |edit: &dyn Fn(&mut tcf::TcString), field: &str| {
        let mut tc = base.clone();
        edit(&mut tc);
        let e = tcf::encode(&tc).expect_err(field);
        assert_eq!(e.place, Place::Field(field.to_owned().into()), "{e}");
    };
    check(&|tc| tc.vendor_consents = vec![0, 3], "vendor_consents");
    check(&|tc| tc.purposes_consent = vec![25], "purposes_consent");
    check(&|tc| tc.special_feature_opt_ins = vec![13], "special_feature_opt_ins");
    check(&|tc| tc.consent_language = "E".into(), "consent_language");
    check(&|tc| tc.consent_language = "E1".into(), "consent_language");
    check(&|tc| tc.cmp_id = 4096, "cmp_id");
    check(&|tc| tc.version = 1, "version");
    check(
        &|tc| {
            tc.publisher_restrictions =
                vec![PublisherRestriction { purpose: 25, restriction_type: 0, vendors: vec![] }]
        },
        "publisher_restrictions.purpose",
    );
    check(
        &|tc| {
            tc.publisher_restrictions =
                vec![PublisherRestriction { purpose: 2, restriction_type: 3, vendors: vec![] }]
        },
        "publisher_restrictions.restriction_type",
    );
    check(
        &|tc| {
            tc.publisher_tc =
                Some(tcf::PublisherTc { custom_purposes_consent: vec![1], ..Default::default() })
        },
        "publisher_tc.custom_purposes_consent",
    );
    // Lower-case codes and unsorted sets are normalised, not refused.
    let mut tc = base.clone();
    tc.consent_language = "de".into();
    tc.vendor_consents = vec![9, 3, 3];
    let back = tcf::decode(&tcf::encode(&tc).expect("encodes")).expect("decodes");
    assert_eq!((back.consent_language.as_str(), back.vendor_consents), ("DE", vec![3, 9]));
}
