//! What an import sends downstream: its history as `consent.imported` only to destinations that name that
//! type, and each change it puts in force as the usual `consent.<action>` event with the resulting
//! decision, so a destination on `consent.*` learns the state the import brought.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::receiver::Receiver;
use super::webhook;
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, str_of, withdraw};

both_backends!(imported_changes_in_force_reach_consent_destinations);

fn line(source_id: &str, subject: &str, purpose: &str, action: &str, at: &str) -> Value {
    let mut l = json!({"source_id": source_id, "subject": subject, "purpose": purpose, "action": action,
                       "occurred_at": at});
    if action == "grant" {
        l["notice"] = json!({"key": purpose});
    }
    l
}

async fn imported_changes_in_force_reach_consent_destinations(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let r = Receiver::start().await;
    webhook(&s, "all", &r.url("all"), &["consent.*"]).await;
    webhook(&s, "history", &r.url("history"), &["consent.imported"]).await;
    // Live: ana withdraws the newsletter.
    s.record("ana", &withdraw("marketing.direct")).await;
    let lines = [
        // Older than ana's live withdrawal: history only.
        line("r1", "ana", "marketing.direct", "grant", "2023-04-01T10:00:00Z"),
        // bo: granted, withdrawn, granted again (listed out of order): only the last grant is in force.
        line("r3", "bo", "analytics", "grant", "2024-06-01T00:00:00Z"),
        line("r2", "bo", "analytics", "withdraw", "2023-06-01T00:00:00Z"),
        line("r4", "bo", "analytics", "grant", "2022-06-01T00:00:00Z"),
        // cy withdraws, nothing held before: in force.
        line("r5", "cy", "marketing.direct", "withdraw", "2021-01-01T00:00:00Z"),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let report =
        s.raw(Method::POST, "/v1/import?source=ot", ADMIN_KEY, "application/x-ndjson", body, 200).await;
    assert_eq!(report["imported"].as_u64(), Some(5), "{report}");

    let history = r.wait_unique("history", 3, Duration::from_secs(10)).await;
    let mut batches: Vec<(String, usize)> = history
        .iter()
        .map(|h| h.event())
        .map(|e| {
            assert_eq!(e["type"], "consent.imported", "{e}");
            (str_of(&e["subject"]).to_owned(), e["data"]["events"].as_array().expect("events").len())
        })
        .collect();
    batches.sort();
    assert_eq!(batches, [("ana".to_owned(), 1), ("bo".to_owned(), 3), ("cy".to_owned(), 1)]);

    // ana's live withdrawal, then bo's grant of 2024 and cy's withdrawal: nothing else.
    r.wait_unique("all", 3, Duration::from_secs(10)).await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all: Vec<Value> =
        super::receiver::first_arrivals(&r.accepted("all")).iter().map(|h| h.event()).collect();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!((&all[0]["type"], &all[0]["subject"]), (&json!("consent.withdrawn"), &json!("ana")));
    let bo = all.iter().find(|e| e["subject"] == "bo").expect("bo's event");
    assert_eq!(bo["type"], "consent.granted", "{bo}");
    assert_eq!(bo["data"]["event"]["occurred_at"], "2024-06-01T00:00:00.000000Z", "{bo}");
    assert_eq!(bo["time"], "2024-06-01T00:00:00.000000Z", "the time it took effect: {bo}");
    assert_eq!(bo["data"]["event"]["actor"], "import:ot", "{bo}");
    assert_eq!(bo["data"]["decision"]["overall"]["allowed"], true, "{bo}");
    assert_eq!(bo["data"]["decision"]["overall"]["reason"], "granted", "{bo}");
    let cy = all.iter().find(|e| e["subject"] == "cy").expect("cy's event");
    assert_eq!(cy["type"], "consent.withdrawn", "{cy}");
    assert_eq!(cy["data"]["decision"]["overall"]["allowed"], false, "{cy}");
    assert!(all.iter().all(|e| e["type"] != "consent.imported"));
    s.stop().await;
}
