//! `POST /v1/signals/decode` and `/encode`: the IAB's vectors through the API (the codec's own tests hold
//! the full set, with the files they come from), and 4xx problems naming the field for bad input.

use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, TestServer, assert_code};

/// iabgpp-es `GppModel.test.ts`, "should encode tcfeuv2 sections" (IABTechLab/iabgpp-es).
const GPP_TCF: &str = "DBABMA~CPSG_8APSG_8ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA";
/// iabtcf-java `TCStringV2Test.testCanParseDisclosedAndAllowedVendors` (InteractiveAdvertisingBureau/iabtcf-java).
const TC: &str = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA";

fn problem_path(p: &Value) -> &str {
    p["errors"][0]["path"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_and_encode_round_trip() {
    let s = TestServer::with_config(|_| {}).await;
    let (_, key) = s.create_key("reader", &["consent:read"]).await;

    let tcf = s.post("/v1/signals/decode", &key, &json!({"tcf": TC}), 200).await;
    let values = &tcf["tcf"];
    assert_eq!(values["version"], 2);
    assert_eq!(values["purposes_consent"], json!([3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(values["vendor_consents"], json!([23, 37, 47, 48, 53, 65, 98]));
    assert_eq!(values["vendor_li"], json!([37, 47, 48, 53, 65, 98, 129]));
    assert_eq!(values["allowed_vendors"], json!([12, 23, 37, 47, 48, 53]));
    assert_eq!(values["disclosed_vendors"], json!([23, 37, 47, 48, 53, 65, 98, 129]));
    assert_eq!(values["publisher_restrictions"], json!([]));
    // Times in UTC, to the tenth of a second as encoded.
    assert!(values["created"].as_str().is_some_and(|t| t.starts_with("20") && t.ends_with('Z')), "{values}");
    let encoded = s.post("/v1/signals/encode", &key, &json!({"tcf": values}), 200).await;
    let again = s.post("/v1/signals/decode", &key, &json!({"tcf": encoded["tcf"]}), 200).await;
    assert_eq!(again["tcf"], *values);

    let gpp = s.post("/v1/signals/decode", &key, &json!({"gpp": GPP_TCF}), 200).await;
    assert_eq!(gpp["gpp"]["section_ids"], json!([2]));
    let tc = &gpp["gpp"]["sections"]["tcfeuv2"];
    assert_eq!((tc["cmp_id"].as_u64(), tc["publisher_cc"].as_str()), (Some(880), Some("DE")));
    assert_eq!(tc["disclosed_vendors"], json!([1, 2, 3, 4, 5, 100, 404]));
    let encoded = s.post("/v1/signals/encode", &key, &json!({"gpp": gpp["gpp"]}), 200).await;
    assert_eq!(encoded["gpp"], GPP_TCF, "iabgpp-es writes the same string");

    let us = json!({"gpp": {"sections": {
        "usnat": {"sale_opt_out": 1, "sharing_opt_out": 1, "targeted_advertising_opt_out": 2, "mspa_covered_transaction": 1, "gpc": true},
        "usca": {"sale_opt_out": 1, "mspa_covered_transaction": 2},
        "uspv1": {"notice": "Y", "opt_out_sale": "Y", "lspa_covered": "N"},
        "usfl": {"opaque": "BAAAAABA"}
    }}});
    let encoded = s.post("/v1/signals/encode", &key, &us, 200).await;
    let decoded = s.post("/v1/signals/decode", &key, &json!({"gpp": encoded["gpp"]}), 200).await;
    assert_eq!(decoded["gpp"]["section_ids"], json!([6, 7, 8, 13]));
    let nat = &decoded["gpp"]["sections"]["usnat"];
    assert_eq!(
        (nat["sale_opt_out"].as_u64(), nat["gpc"].as_bool(), nat["version"].as_u64()),
        (Some(1), Some(true), Some(2))
    );
    assert_eq!(nat["sensitive_data_processing"].as_array().map(Vec::len), Some(16));
    assert_eq!(decoded["gpp"]["sections"]["usfl"], json!({"opaque": "BAAAAABA"}));
    assert_eq!(decoded["gpp"]["sections"]["uspv1"]["opt_out_sale"], "Y");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_problem_naming_the_field() {
    let s = TestServer::with_config(|_| {}).await;
    // A TCF v1 string (iabtcf-java TCStringV1Test): refused, never read as v2.
    let p = s
        .post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": "BObdrPUOevsguAfDqFENCNAAAAAmeAAA"}), 422)
        .await;
    assert_code(&p, "invalid_tc_string");
    assert_eq!(problem_path(&p), "tcf");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("segment core, bit 0")), "{p}");
    // A bit field shorter than its declared maximum vendor id.
    let p = s
        .post(
            "/v1/signals/decode",
            ADMIN_KEY,
            &json!({"tcf": "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgA"}),
            422,
        )
        .await;
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("bit 230") && d.contains("maximum vendor id")),
        "{p}"
    );
    let p = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"gpp": "DBACOeA~~1YNN"}), 422).await;
    assert_code(&p, "invalid_gpp_string");
    assert_eq!(problem_path(&p), "gpp");
    let p = s
        .post(
            "/v1/signals/decode",
            ADMIN_KEY,
            &json!({"gpp": "DBABMA~BObdrPUOevsguAfDqFENCNAAAAAmeAAA"}),
            422,
        )
        .await;
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("tcfeuv2.core")), "{p}");
    let p = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": "x", "gpp": "y"}), 422).await;
    assert_code(&p, "validation_failed");
    s.post("/v1/signals/decode", ADMIN_KEY, &json!({}), 422).await;
    s.post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": 5}), 422).await;

    let tc = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": TC}), 200).await["tcf"].clone();
    let with = |field: &str, value: Value| {
        let mut v = tc.clone();
        v[field] = value;
        json!({"tcf": v})
    };
    for (body, path) in [
        (with("vendor_consents", json!([0, 4])), "tcf.vendor_consents"),
        (with("purposes_consent", json!([25])), "tcf.purposes_consent"),
        (with("consent_language", json!("ENG")), "tcf.consent_language"),
        (with("cmp_id", json!("seven")), "tcf.cmp_id"),
        (with("cmp_id", json!(5000)), "tcf.cmp_id"),
        (with("created", json!("yesterday")), "tcf.created"),
        (
            with("publisher_restrictions", json!([{"purpose": 30, "restriction_type": 0, "vendors": []}])),
            "tcf.publisher_restrictions.purpose",
        ),
        (with("colour", json!(1)), "tcf.colour"),
    ] {
        let p = s.post("/v1/signals/encode", ADMIN_KEY, &body, 422).await;
        assert_code(&p, "invalid_tc_string");
        assert_eq!(problem_path(&p), path, "{p}");
    }
    for (body, path) in [
        (json!({"gpp": {"sections": {"usxx": {}}}}), "gpp.sections.usxx"),
        (
            json!({"gpp": {"sections": {"usnat": {"sale_opt_out": 4, "mspa_covered_transaction": 1}}}}),
            "gpp.sections.usnat.sale_opt_out",
        ),
        (
            json!({"gpp": {"section_ids": [99], "sections": {"usnat": {"mspa_covered_transaction": 1}}}}),
            "gpp.section_ids",
        ),
        (json!({"gpp": {"sections": {"section_99": {"sale_opt_out": 1}}}}), "gpp.sections.section_99"),
    ] {
        let p = s.post("/v1/signals/encode", ADMIN_KEY, &body, 422).await;
        assert_code(&p, "invalid_gpp_string");
        assert_eq!(problem_path(&p), path, "{p}");
    }
    // A key without consent:read may not use the codec.
    let (_, key) = s.create_key("checker", &["check"]).await;
    s.post("/v1/signals/decode", &key, &json!({"tcf": TC}), 403).await;
    s.stop().await;
}
