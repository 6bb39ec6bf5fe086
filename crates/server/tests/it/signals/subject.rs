//! `POST/GET /v1/subjects/{subject}/signals` on both backends: a TC string and a GPP string recorded
//! through the default catalogue's mapping, once, with their SHA-256 as evidence; the state given back as
//! a TC string, a GPP string and Consent Mode.

use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends};

fn tc_values(purposes: &[u8], policy: u8, created: &str) -> Value {
    json!({
        "created": created, "last_updated": created, "cmp_id": 12, "cmp_version": 3,
        "consent_language": "DE", "vendor_list_version": 140, "tcf_policy_version": policy,
        "purposes_consent": purposes, "vendor_consents": [1, 2], "disclosed_vendors": [1, 2, 3]
    })
}

async fn encode(s: &TestServer, values: Value) -> String {
    let out = s.post("/v1/signals/encode", ADMIN_KEY, &values, 200).await;
    out.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("a string").to_owned()
}

fn actions(recorded: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = recorded["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["purpose"].as_str().unwrap_or("").to_owned(),
                e["action"].as_str().unwrap_or("").to_owned(),
                e["actor"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn allowed(s: &TestServer, subject: &str, purpose: &str) -> (bool, String) {
    let d = s.post("/v1/check", ADMIN_KEY, &json!({"subject": subject, "purpose": purpose}), 200).await;
    (d["allowed"].as_bool().unwrap_or(false), d["reason"].as_str().unwrap_or("").to_owned())
}

async fn signals_as_evidence(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (_, writer) = s.create_key("cmp-bridge", &["consent:write", "consent:read"]).await;
    let path = "/v1/subjects/web-1/signals";

    // TCF 2.3: consent to measurement and audiences (7, 8, 9), not to personalised advertising (4).
    let tc = encode(&s, json!({"tcf": tc_values(&[1, 7, 8, 9], 5, "2026-11-30T10:00:00Z")})).await;
    let recorded = s.post(path, &writer, &json!({"tcf": tc, "collection_point": "web-signup"}), 201).await;
    assert_eq!(
        actions(&recorded),
        [
            ("analytics".into(), "grant".into(), "signal:tcf".into()),
            ("marketing.personalised_offers".into(), "deny".into(), "signal:tcf".into())
        ]
    );
    let evidence = format!("sha256:{}", consentry_core::signals::string_sha256(&tc));
    assert_eq!(recorded["evidence"], evidence.as_str());
    assert!(
        recorded["events"].as_array().expect("events").iter().all(|e| e["evidence"] == evidence.as_str())
    );
    // The receipt carries the evidence, in the event it proves is in the log.
    assert_eq!(
        recorded["receipt"]["payload"]["consentry"]["events"][0]["evidence"],
        evidence.as_str(),
        "{recorded}"
    );
    assert_eq!(allowed(&s, "web-1", "analytics").await, (true, "granted".into()));
    assert_eq!(allowed(&s, "web-1", "marketing.personalised_offers").await.1, "denied");

    // The same string again (the consent tool re-sends its cookie) records nothing, even after a change.
    let again = s.post(path, &writer, &json!({"tcf": tc}), 200).await;
    assert_eq!(
        (again["already_recorded"].as_bool(), again["events"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
    let history = s.get("/v1/subjects/web-1/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(2));

    // GPP: a US opt-out of sale withdraws the sharing purpose.
    let gpp = encode(
        &s,
        json!({"gpp": {"sections": {"usnat": {"sale_opt_out": 1, "mspa_covered_transaction": 2}}}}),
    )
    .await;
    let recorded = s.post(path, &writer, &json!({"gpp": gpp}), 201).await;
    assert_eq!(actions(&recorded), [("third_party.sharing".into(), "withdraw".into(), "signal:gpp".into())]);
    assert_eq!(allowed(&s, "web-1", "third_party.sharing").await.1, "withdrawn");

    // The state given back.
    let mode = s.get("/v1/subjects/web-1/signals?format=consent_mode", &writer, 200).await;
    assert_eq!(
        mode["consent_mode"],
        json!({"ad_personalization": "denied", "ad_storage": "denied", "ad_user_data": "denied", "analytics_storage": "granted"})
    );
    let back = s.get("/v1/subjects/web-1/signals?format=tcf", &writer, 200).await;
    let decoded = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": back["tcf"]}), 200).await;
    assert_eq!(decoded["tcf"]["purposes_consent"], json!([7, 8, 9]));
    assert_eq!(decoded["tcf"]["tcf_policy_version"], 5);
    let back = s.get("/v1/subjects/web-1/signals?format=gpp", &writer, 200).await;
    let decoded = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"gpp": back["gpp"]}), 200).await;
    assert_eq!(decoded["gpp"]["section_ids"], json!([2, 7]));
    assert_eq!(decoded["gpp"]["sections"]["usnat"]["sale_opt_out"], 1);
    assert_eq!(decoded["gpp"]["sections"]["tcfeuv2"]["purposes_consent"], json!([7, 8, 9]));
    s.stop().await;
}

async fn signals_refused(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let path = "/v1/subjects/web-2/signals";
    // Policy version 2 after the TCF 2.2 cut-over, and TCF 2.3 without its disclosed vendors.
    let old = encode(&s, json!({"tcf": tc_values(&[7], 2, "2026-11-30T10:00:00Z")})).await;
    let p = s.post(path, ADMIN_KEY, &json!({"tcf": old}), 422).await;
    assert_code(&p, "invalid_tc_string");
    assert_eq!(p["errors"][0]["path"], "tcf.tcf_policy_version");
    let mut values = tc_values(&[7], 5, "2026-11-30T10:00:00Z");
    values.as_object_mut().expect("object").remove("disclosed_vendors");
    let undisclosed = encode(&s, json!({"tcf": values})).await;
    let p = s.post(path, ADMIN_KEY, &json!({"tcf": undisclosed}), 422).await;
    assert_eq!(p["errors"][0]["path"], "tcf.disclosed_vendors");
    let p = s.post(path, ADMIN_KEY, &json!({"gpp": format!("DBABMA~{old}")}), 422).await;
    assert_code(&p, "invalid_gpp_string");
    assert_eq!(p["errors"][0]["path"], "gpp.sections.tcfeuv2.tcf_policy_version");
    let p = s.post(path, ADMIN_KEY, &json!({"tcf": "not a string"}), 422).await;
    assert_code(&p, "invalid_tc_string");
    let p = s
        .post(path, ADMIN_KEY, &json!({"gpp": "DBABLA~CAAAAAAAAABA.QA", "collection_point": "nowhere"}), 422)
        .await;
    assert_code(&p, "unknown_collection_point");
    s.get("/v1/subjects/web-2/signals?format=xml", ADMIN_KEY, 400).await;
    // Nothing was recorded by any of these.
    let history = s.get("/v1/subjects/web-2/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(0));
    // A person's own token may not use the route.
    let token = s.post("/v1/subjects/web-2/tokens", ADMIN_KEY, &json!({}), 201).await;
    let token = token["token"].as_str().expect("token");
    s.post(path, token, &json!({"gpp": "DBABLA~CAAAAAAAAABA.QA"}), 403).await;
    s.stop().await;
}

/// A person in an opt-out place who said nothing may be allowed (`not_opted_out`), but never consented: the
/// TC string given back for them carries no purpose or vendor consent, while Consent Mode and the GPP's US
/// section answer by the place's rules.
async fn an_opt_out_place_is_no_tcf_consent(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.put("/v1/subjects/cal-1/jurisdiction", ADMIN_KEY, &json!({"jurisdiction": "US-CA"}), 200).await;
    let offers = json!({"subject": "cal-1", "purpose": "marketing.personalised_offers"});
    let d = s.post("/v1/check", ADMIN_KEY, &offers, 200).await;
    assert_eq!((&d["allowed"], &d["reason"]), (&json!(true), &json!("not_opted_out")), "{d}");
    let back = s.get("/v1/subjects/cal-1/signals?format=tcf", ADMIN_KEY, 200).await;
    let decoded = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"tcf": back["tcf"]}), 200).await;
    assert_eq!(decoded["tcf"]["purposes_consent"], json!([]), "{decoded}");
    assert_eq!(decoded["tcf"]["vendor_consents"], json!([]), "{decoded}");
    let back = s.get("/v1/subjects/cal-1/signals?format=gpp", ADMIN_KEY, 200).await;
    let decoded = s.post("/v1/signals/decode", ADMIN_KEY, &json!({"gpp": back["gpp"]}), 200).await;
    assert_eq!(decoded["gpp"]["sections"]["tcfeuv2"]["purposes_consent"], json!([]), "{decoded}");
    s.stop().await;
}

both_backends!(signals_as_evidence, signals_refused, an_opt_out_place_is_no_tcf_consent);
