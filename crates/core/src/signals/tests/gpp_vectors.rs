//! GPP strings and their values from the IAB's reference implementation and specification:
//!
//! - `IABTechLab/iabgpp-es`, commit fd0546e7b28e7e186bc27aac6375e6c10a80e47e:
//!   `modules/cmpapi/test/encoder/section/{HeaderV1,UsNat,UsCa,UsVa,UsCo,UsUt,UsCt,UspV1}.test.ts` and
//!   `modules/cmpapi/test/GppModel.test.ts`;
//! - `InteractiveAdvertisingBureau/Global-Privacy-Platform`, commit
//!   b27beb411c14d48d7fb36c09e2abdf49c20d7d8d: `Core/Consent String Specification.md` ("Header Examples").
//!
//! iabgpp-es's encode tests (`to.eql`) are taken as exact strings both ways; its decode tests that
//! only call `expect(value, message)` assert nothing there, so their values are checked here from the
//! encode tests of the same section instead.

use serde_json::{Value, json};

use crate::signals::gpp::{self, GppSection};
use crate::signals::{Place, Signal, UsSection, tcf};

fn us(id: u16, name: &'static str, values: Value, expected: &str) {
    let section = UsSection::from_json(id, name, values.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(section.encode().expect("encodes"), expected, "{name} {values}");
    let decoded = UsSection::decode(id, name, expected).unwrap_or_else(|e| panic!("{expected}: {e}"));
    assert_eq!(decoded, section, "{expected}");
}

#[test]
fn header_examples() {
    // HeaderV1.test.ts (CompressedBase64UrlEncoder pads to whole bytes) and the specification's examples
    // (padded to whole characters only): both decode.
    for (ids, written) in [(vec![], "DBAA"), (vec![2], "DBABMA"), (vec![2, 6], "DBACNYA")] {
        let sections = ids.iter().map(|&id| (id, GppSection::Opaque(String::new()))).collect();
        let text = gpp::encode(&gpp::GppString { sections }).expect("encodes");
        assert_eq!(text.split('~').next(), Some(written));
    }
    let body = |id: u16| match id {
        2 => "~CPSG_8APSG_8ANwAAAENAwCgAAAAAAAAAAAAAAAAAAAA.IAAA",
        6 => "~1YNN",
        _ => "~x",
    };
    for (header, ids) in [("DBABM", vec![2u16]), ("DBACNY", vec![2, 6]), ("DBABjw", vec![5, 6])] {
        let text = format!("{header}{}", ids.iter().map(|&id| body(id)).collect::<String>());
        let parsed = gpp::decode(&text).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(parsed.section_ids(), ids, "{header}");
    }
}

#[test]
fn usnat_vectors() {
    // UsNat.test.ts
    us(7, "usnat", json!({"mspa_covered_transaction": 1, "gpc": false}), "CAAAAAAAAABA.QA");
    us(7, "usnat", json!({"mspa_covered_transaction": 1}), "CAAAAAAAAABA");
    let all = json!({
        "sharing_notice": 1, "sale_opt_out_notice": 1, "sharing_opt_out_notice": 1,
        "targeted_advertising_opt_out_notice": 1, "sensitive_data_processing_opt_out_notice": 1,
        "sensitive_data_limit_use_notice": 1, "sale_opt_out": 1, "sharing_opt_out": 1,
        "targeted_advertising_opt_out": 1,
        "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2],
        "known_child_sensitive_data_consents": [2, 1, 0], "personal_data_consents": 1,
        "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2,
        "gpc": true
    });
    us(7, "usnat", all, "CVVVkkkkkpFY.YA");
    // Version 1 keeps 12 sensitive categories and 2 child consents; version 2 has 16 and 3.
    let ones = |n: usize| vec![1; n];
    us(
        7,
        "usnat",
        json!({"version": 1, "sensitive_data_processing": ones(12), "known_child_sensitive_data_consents": ones(2),
               "mspa_covered_transaction": 1, "gpc": false}),
        "BAAAVVVVUQA.QA",
    );
    us(
        7,
        "usnat",
        json!({"sensitive_data_processing": ones(16), "known_child_sensitive_data_consents": ones(3),
               "mspa_covered_transaction": 1, "gpc": false}),
        "CAAAVVVVVVRA.QA",
    );
    // GppModel.test.ts: "should decode DBABLA~CAAAAAAAAQRA.QA" and "...CAAAAAABEQA.QA".
    let parsed = gpp::decode("DBABLA~CAAAAAAAAQRA.QA").expect("decodes");
    let Some(GppSection::Us(nat)) = parsed.section(7) else { panic!("usnat") };
    assert_eq!(
        nat.list("sensitive_data_processing"),
        Some(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..])
    );
    assert_eq!(nat.list("known_child_sensitive_data_consents"), Some(&[0, 0, 1][..]));
    assert_eq!(nat.gpc, Some(false));
    let parsed = gpp::decode("DBABLA~CAAAAAABEQA.QA").expect("decodes");
    let Some(GppSection::Us(nat)) = parsed.section(7) else { panic!("usnat") };
    assert_eq!(
        nat.list("sensitive_data_processing"),
        Some(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0][..])
    );
    assert_eq!(nat.list("known_child_sensitive_data_consents"), Some(&[0, 1, 0][..]));
    // A 60-bit section from before usnat v2 is read with the first layout, as iabgpp-es reads it.
    let parsed = gpp::decode("DBABLA~BVQqAAAAAgA.QA").expect("decodes");
    let Some(GppSection::Us(nat)) = parsed.section(7) else { panic!("usnat") };
    assert_eq!(nat.version, 1);
    assert_eq!(nat.list("sensitive_data_processing").map(<[u8]>::len), Some(12));
}

#[test]
fn state_vectors() {
    // UsCa.test.ts
    us(8, "usca", json!({"mspa_covered_transaction": 1, "gpc": false}), "BAAAAABA.QA");
    us(8, "usca", json!({"mspa_covered_transaction": 1}), "BAAAAABA");
    us(
        8,
        "usca",
        json!({"sale_opt_out_notice": 1, "sharing_opt_out_notice": 1, "sensitive_data_limit_use_notice": 1,
               "sale_opt_out": 1, "sharing_opt_out": 1, "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2, 1, 0],
               "known_child_sensitive_data_consents": [2, 1], "personal_data_consents": 1,
               "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2,
               "gpc": true}),
        "BVWSSSVY.YA",
    );
    // UsVa.test.ts
    us(9, "usva", json!({"mspa_covered_transaction": 1}), "BAAAABA");
    us(
        9,
        "usva",
        json!({"sharing_notice": 1, "sale_opt_out_notice": 1, "targeted_advertising_opt_out_notice": 1,
               "sale_opt_out": 1, "targeted_advertising_opt_out": 1,
               "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2, 1], "known_child_sensitive_data_consents": 1,
               "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2}),
        "BVWSSVY",
    );
    // UsCo.test.ts
    us(10, "usco", json!({"mspa_covered_transaction": 1, "gpc": false}), "BAAAAEA.QA");
    us(10, "usco", json!({"mspa_covered_transaction": 1}), "BAAAAEA");
    us(
        10,
        "usco",
        json!({"sharing_notice": 1, "sale_opt_out_notice": 1, "targeted_advertising_opt_out_notice": 1,
               "sale_opt_out": 1, "targeted_advertising_opt_out": 1,
               "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2], "known_child_sensitive_data_consents": 1,
               "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2,
               "gpc": true}),
        "BVWSSVg.YA",
    );
    // UsUt.test.ts
    us(11, "usut", json!({"mspa_covered_transaction": 1}), "BAAAAAQA");
    us(
        11,
        "usut",
        json!({"sharing_notice": 1, "sale_opt_out_notice": 1, "targeted_advertising_opt_out_notice": 1,
               "sensitive_data_processing_opt_out_notice": 1, "sale_opt_out": 1, "targeted_advertising_opt_out": 1,
               "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2, 1], "known_child_sensitive_data_consents": 1,
               "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2}),
        "BVVkklWA",
    );
    // UsCt.test.ts
    us(12, "usct", json!({"mspa_covered_transaction": 1, "gpc": false}), "BAAAAAEA.QA");
    us(12, "usct", json!({"mspa_covered_transaction": 1}), "BAAAAAEA");
    us(
        12,
        "usct",
        json!({"sharing_notice": 1, "sale_opt_out_notice": 1, "targeted_advertising_opt_out_notice": 1,
               "sale_opt_out": 1, "targeted_advertising_opt_out": 1,
               "sensitive_data_processing": [2, 1, 0, 2, 1, 0, 2, 1], "known_child_sensitive_data_consents": [2, 1, 0],
               "mspa_covered_transaction": 1, "mspa_opt_out_option_mode": 1, "mspa_service_provider_mode": 2,
               "gpc": true}),
        "BVWSSZFg.YA",
    );
}

#[test]
fn whole_strings() {
    // GppModel.test.ts "should encode tcfeuv2 sections": the exact string, from its values.
    let written = "DBABMA~CPSG_8APSG_8ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA";
    let values = json!({"sections": {"tcfeuv2": {
        "created": "2022-01-01T00:00:00Z", "last_updated": "2022-01-01T00:00:00Z", "cmp_id": 880,
        "cmp_version": 0, "consent_screen": 0, "consent_language": "EN", "vendor_list_version": 48,
        "tcf_policy_version": 2, "is_service_specific": true, "publisher_cc": "DE",
        "vendor_consents": [1, 2, 3, 4], "disclosed_vendors": [1, 2, 3, 4, 5, 100, 404], "publisher_tc": {}
    }}});
    let model = gpp::GppString::from_json(values).expect("values");
    assert_eq!(gpp::encode(&model).expect("encodes"), written);
    assert_eq!(gpp::decode(written).expect("decodes"), model);
    // "should decode uspv1 and tcfeuv2 sections"
    let parsed = gpp::decode("DBACNYA~CPSG_8APSG_8ANwAAAENAwCgAAAAAAAAAAAAAAAAAAAA.IAAA.YAAAAAAAAAAA~1YNN")
        .expect("decodes");
    assert_eq!(parsed.section_ids(), [2, 6]);
    let Some(GppSection::Tcf(tc)) = parsed.section(2) else { panic!("tcfeuv2") };
    assert_eq!((tc.cmp_id, tc.vendor_list_version, tc.tcf_policy_version), (880, 48, 2));
    assert_eq!(tc.created, tcf::Deciseconds::new(16_409_952_000).expect("time"));
    let json = parsed.to_json();
    assert_eq!(
        json["sections"]["uspv1"],
        json!({"version": 1, "notice": "Y", "opt_out_sale": "N", "lspa_covered": "N"})
    );
    // "should decode tcfeuv2 vendor consents [...]"
    for (text, consents, disclosed) in [
        (
            "DBABMA~CPSG_8APSG_8AAAAAAENAAFgAAAAAAAAAAAAAOAAAABAAAAA.IAOABgAB.YAAAAAAAAAAA",
            vec![28u16],
            vec![10u16, 11, 28],
        ),
        (
            "DBABMA~CPSG_8APSG_8AAAAAAENAAFgAAAAAAAAAAAAAOwAQAOgAAAA.IAOgBgAAgAAA.YAAAAAAAAAAA",
            vec![29],
            vec![10, 11, 29],
        ),
        (
            "DBABMA~CPSG_8APSG_8AAAAAAENAAFgAAAAAAAAAAAAFpQAwAAgCtAWkAAAAAAA.IFpQBQAAwAKAAsADoArQFpAA.YAAAAAAAAAAA",
            vec![1, 173, 722],
            vec![1, 10, 11, 29, 173, 722],
        ),
    ] {
        let parsed = gpp::decode(text).expect("decodes");
        let Some(GppSection::Tcf(tc)) = parsed.section(2) else { panic!("tcfeuv2") };
        assert_eq!(tc.vendor_consents, consents);
        assert_eq!(tc.disclosed_vendors.as_deref(), Some(disclosed.as_slice()));
        assert_eq!(gpp::encode(&parsed).expect("encodes"), text, "written back as iabgpp-es writes it");
    }
    // UspV1.test.ts and "should decode DBABTA~1YYN"
    let parsed = gpp::decode("DBABTA~1YYN").expect("decodes");
    assert_eq!(gpp::encode(&parsed).expect("encodes"), "DBABTA~1YYN");
    // The many-section string of "should decode defaults from all sections": sections this codec does not
    // read (tcfcav1, usfl and the later states) are kept as text and written back unchanged.
    let many = "DBACOcGA~CPSG_8APSG_8ANwAAAENAAFgAAAAAAAAAAAAAAAAAAAA.IAAA.YAAAAAAAAAAA~BPSG_8APSG_8AAAAAAENAACAAAAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1---~BAAAAAAAAABA.QA~BAAAAABA.QA~BAAAABA~BAAAAEA.QA~BAAAAAQA~BAAAAAEA.QA~BAAAAABA~BAAAAABA.QA~BAAAAAABAA.QA~BAAAAAQA.QA~BAAAAAABAA.QA~BAAAAAQA.QA~BAAAAAQA.QA~BAAAAABA.QA~BAAAAAAAQA.QA~BAAAAAQA.QA~BAAAAAQA.QA~BQAA.QA~BQAA.AAA~BQAA.AAA~BQAA.AAA";
    let parsed = gpp::decode(many).expect("decodes");
    assert_eq!(parsed.section_ids(), (2..=27).filter(|&i| i != 3 && i != 4).collect::<Vec<_>>());
    assert!(matches!(parsed.section(5), Some(GppSection::Opaque(_))));
    assert_eq!(parsed.to_json()["sections"]["usfl"], json!({"opaque": "BAAAAABA"}));
    let again = gpp::encode(&parsed).expect("encodes");
    assert_eq!(gpp::decode(&again).expect("decodes again"), parsed);
}

fn refused(s: &str) -> (String, String) {
    let e = gpp::decode(s).expect_err(s);
    assert_eq!((e.signal, e.code()), (Signal::Gpp, "invalid_gpp_string"));
    match e.place {
        Place::Bit { segment, .. } => (segment.into_owned(), e.reason.into_owned()),
        Place::Field(f) => panic!("decode error names a field {f}"),
    }
}

#[test]
fn refusals() {
    // GppModel.test.ts: garbage, missing sections and blank sections.
    assert_eq!(refused("z").0, "header");
    assert_eq!(refused("invalid gpp string").0, "header");
    let (segment, reason) = refused("DBACOeA~~1YNN");
    assert_eq!(segment, "header");
    assert!(reason.contains("lists 3 sections"), "{reason}");
    // UsNat.test.ts "should throw Error on garbage"
    assert_eq!(refused("DBABLA~z").0, "usnat");
    // A TC string inside names the section and the TC segment.
    assert_eq!(refused("DBABMA~BObdrPUOevsguAfDqFENCNAAAAAmeAAA").0, "tcfeuv2.core");
    // The undefined two-bit value 3, and a GPC sub-section on a section without one.
    assert_eq!(refused("DBABLA~D_______________").0, "usnat");
    let usva = gpp::encode(&gpp::GppString { sections: vec![(9, GppSection::Opaque(String::new()))] })
        .expect("header");
    assert!(refused(&format!("{usva}BAAAABA.QA")).1.contains("no GPC"));
}

#[test]
fn encode_errors_name_the_field() {
    let field = |v: Value| match gpp::GppString::from_json(v)
        .and_then(|g| gpp::encode(&g))
        .expect_err("refused")
        .place
    {
        Place::Field(f) => f.into_owned(),
        Place::Bit { .. } => unreachable!(),
    };
    assert_eq!(field(json!({"sections": {"usxx": {}}})), "sections.usxx");
    assert_eq!(
        field(json!({"sections": {"usnat": {"sale_opt_out": 3, "mspa_covered_transaction": 1}}})),
        "sections.usnat.sale_opt_out"
    );
    assert_eq!(field(json!({"sections": {"usnat": {}}})), "sections.usnat.mspa_covered_transaction");
    assert_eq!(
        field(json!({"sections": {"usva": {"gpc": true, "mspa_covered_transaction": 1}}})),
        "sections.usva.gpc"
    );
    assert_eq!(
        field(json!({"sections": {"usca": {"colour": 1, "mspa_covered_transaction": 1}}})),
        "sections.usca.colour"
    );
    assert_eq!(field(json!({"sections": {"usfl": {"sale_opt_out": 1}}})), "sections.usfl");
    assert_eq!(
        field(json!({"section_ids": [8], "sections": {"usnat": {"mspa_covered_transaction": 1}}})),
        "section_ids"
    );
    assert_eq!(
        field(json!({"sections": {"uspv1": {"notice": "X", "opt_out_sale": "N", "lspa_covered": "N"}}})),
        "sections.uspv1.notice"
    );
    assert_eq!(
        field(
            json!({"sections": {"tcfeuv2": {"created": "2022-01-01T00:00:00Z", "last_updated": "2022-01-01T00:00:00Z",
            "cmp_id": 1, "cmp_version": 1, "consent_language": "EN", "vendor_list_version": 1, "tcf_policy_version": 5,
            "vendor_consents": [0]}}})
        ),
        "sections.tcfeuv2.vendor_consents"
    );
}
