//! The copy of a person's data holds everything kept about them beyond their choices and records: their
//! identifiers (with their values), their stated age, the children they are a guardian of, the guardians
//! recorded for them (when, never who), their households with the devices shared there (never the other
//! members), and the evidence imported changes came with; its guide shows them in the reader's language.

use reqwest::Method;
use serde_json::{Value, json};

use super::types::unzip;
use super::{bytes, request};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, str_of};

both_backends!(the_copy_holds_what_is_known_of_the_person);

/// The files of `subject`'s access export, and its `data.json`.
async fn copy_of(s: &TestServer, subject: &str) -> (Value, String) {
    let access = request(s, subject, "access", None).await;
    let (status, archive) = bytes(s, str_of(&access["export"]["url"])).await;
    assert_eq!(status, 200);
    let files = unzip(&archive);
    let file = |name: &str| files.iter().find(|(n, _)| n == name).expect(name).1.clone();
    let data = serde_json::from_slice(&file("data.json")).expect("data.json is JSON");
    (data, String::from_utf8(file("index.html")).expect("UTF-8"))
}

async fn the_copy_holds_what_is_known_of_the_person(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let email = json!({"type": "email", "value": "  Mia.Holm@Example.org "});
    s.post("/v1/subjects/mia-4410/identifiers", ADMIN_KEY, &email, 201).await;
    s.put("/v1/subjects/mia-4410/age", ADMIN_KEY, &json!({"birth_date": "1988-07-14"}), 200).await;
    s.put("/v1/subjects/kid-2290/age", ADMIN_KEY, &json!({"birth_date": "2017-03-02"}), 200).await;
    let link = json!({"guardian": "mia-4410", "evidence": {"method": "id_check"}});
    s.post("/v1/subjects/kid-2290/guardians", ADMIN_KEY, &link, 201).await;
    let home = s.post("/v1/households", ADMIN_KEY, &json!({"name": "Holm family flat"}), 201).await;
    let home = str_of(&home["id"]).to_owned();
    for member in ["mia-4410", "ben-7731"] {
        s.post(&format!("/v1/households/{home}/members"), ADMIN_KEY, &json!({"subject": member}), 201).await;
    }
    let tv = json!({"name": "Living room TV", "kind": "tv", "categories": ["user.device.telemetry"],
                    "purposes": ["analytics"]});
    s.post(&format!("/v1/households/{home}/devices"), ADMIN_KEY, &tv, 201).await;
    let proof = json!({"form": "signup-7", "ua": "Agent/5.1"});
    let line = json!({"source_id": "x1", "subject": "mia-4410", "purpose": "marketing.direct",
                      "action": "grant", "occurred_at": "2024-02-01T09:00:00Z",
                      "notice": {"key": "marketing.direct"}, "evidence": proof});
    let report = s
        .raw(
            Method::POST,
            "/v1/import?source=old",
            ADMIN_KEY,
            "application/x-ndjson",
            format!("{line}\n"),
            200,
        )
        .await;
    assert_eq!(report["imported"], 1, "{report}");

    let (data, html) = copy_of(&s, "mia-4410").await;
    let identifiers = data["identifiers"].as_array().expect("identifiers");
    assert_eq!(identifiers.len(), 1, "{data}");
    assert_eq!(
        (&identifiers[0]["type"], &identifiers[0]["value"]),
        (&json!("email"), &json!("mia.holm@example.org")),
        "the value as stored (normalised), not masked: it is the person's own"
    );
    assert_eq!(
        (&data["age"]["birth_date"], data["age"]["stated_on"].is_string()),
        (&json!("1988-07-14"), true)
    );
    assert_eq!(data["children"].as_array().map(Vec::len), Some(1));
    assert_eq!(data["children"][0]["subject"], "kid-2290");
    assert_eq!(data["guardians"], json!([]));
    let households = data["households"].as_array().expect("households");
    assert_eq!(households.len(), 1);
    assert_eq!((&households[0]["id"], &households[0]["name"]), (&json!(home), &json!("Holm family flat")));
    assert_eq!(households[0]["devices"][0]["name"], "Living room TV");
    assert!(!data.to_string().contains("ben-7731"), "the other members stay out of it");
    let history = s.get("/v1/subjects/mia-4410/consents/history", ADMIN_KEY, 200).await;
    let imported = &history["events"][0];
    assert_eq!(data["evidence"].as_array().map(Vec::len), Some(1), "{data}");
    assert_eq!(data["evidence"][0]["evidence"], proof);
    assert_eq!(data["evidence"][0]["event"], imported["id"]);
    assert_eq!(data["evidence"][0]["sha256"], imported["evidence"], "the hash the ledger's event carries");
    for shown in ["How we recognise you", "mia.holm@example.org", "1988-07-14", "Holm family flat"] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    assert!(html.contains("Living room TV"), "{html}");

    // The child's copy: a guardian is recorded, with its date, but not who it is.
    let (data, html) = copy_of(&s, "kid-2290").await;
    assert_eq!(data["guardians"].as_array().map(Vec::len), Some(1), "{data}");
    assert!(data["guardians"][0]["since"].is_string());
    assert!(!data.to_string().contains("mia-4410"), "{data}");
    assert!(!html.contains("mia-4410"));
    assert_eq!(
        (&data["identifiers"], &data["households"], &data["evidence"]),
        (&json!([]), &json!([]), &json!([]))
    );
}
