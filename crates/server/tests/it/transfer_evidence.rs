//! An import line's evidence on both backends: stored only encrypted under the subject's key, shown in
//! the person's history (the API and the preference centre) with the SHA-256 its event carries, bounded in
//! size, re-sealed by a link and crypto-shredded by an erasure; and an import line naming a linked id
//! applies to the survivor.

use std::time::{Duration, Instant};

use consentry_core::SubjectId;
use consentry_store::ImportedEvidence;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::preferences::Visitor;
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, at_rest, both_backends, grant, str_of};

/// A value only the evidence holds, to look for at rest.
const NEEDLE: &str = "needle-agent-55217";

fn evidence() -> Value {
    json!({"ua": NEEDLE, "ip": "203.0.113.77", "form": {"id": "f9", "page": "/signup"}})
}

async fn import(s: &TestServer, body: &[Value]) -> Value {
    let text: String = body.iter().map(|l| format!("{l}\n")).collect();
    s.raw(Method::POST, "/v1/import?source=ot", ADMIN_KEY, "application/x-ndjson", text, 200).await
}

async fn history(s: &TestServer, subject: &str) -> Vec<Value> {
    let h = s.get(&format!("/v1/subjects/{subject}/consents/history"), ADMIN_KEY, 200).await;
    h["events"].as_array().expect("events").clone()
}

/// How many evidence rows the store holds, read straight from its tables.
async fn evidence_rows(s: &TestServer) -> i64 {
    match s.storage().database_url() {
        None => {
            let path = s.storage().data_dir().join("consentry.db");
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("open the data file");
            conn.query_row("SELECT count(*) FROM event_evidence", [], |r| r.get(0)).expect("count")
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let n = sqlx::query_scalar("SELECT count(*) FROM event_evidence")
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        }
    }
}

fn line(id: &str, subject: &str, purpose: &str, action: &str) -> Value {
    let mut l = json!({"source_id": id, "subject": subject, "purpose": purpose, "action": action,
                       "occurred_at": "2023-04-01T10:00:00Z"});
    if action == "grant" {
        l["notice"] = json!({"key": purpose});
    }
    l
}

async fn evidence_is_sealed_shown_and_shredded(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut with = line("e1", "eva", "marketing.direct", "grant");
    with["evidence"] = evidence();
    let mut big = line("e3", "eva", "analytics", "grant");
    big["evidence"] = json!({"receipt": "x".repeat(16 * 1024)});
    let report = import(&s, &[with.clone(), line("e2", "eva", "analytics", "withdraw"), big]).await;
    assert_eq!((report["imported"].as_u64(), report["failed"].as_u64()), (Some(2), Some(1)), "{report}");
    assert_eq!(report["errors"][0]["reason"], "evidence_too_large", "{report}");
    assert_eq!(report["errors"][0]["line"], 3);

    // The history says which event has its evidence stored; it reads back as given, and its SHA-256
    // (compact JSON, keys sorted) is the one the event carries.
    let events = history(&s, "eva").await;
    let stored: Vec<&Value> = events.iter().filter(|e| e["evidence_stored"] == true).collect();
    assert_eq!(stored.len(), 1, "{events:?}");
    let (id, hash) = (str_of(&stored[0]["id"]).to_owned(), str_of(&stored[0]["evidence"]).to_owned());
    let path = format!("/v1/subjects/eva/consents/history/{id}/evidence");
    let read = s.get(&path, ADMIN_KEY, 200).await;
    assert_eq!(read["evidence"], evidence());
    assert_eq!(read["sha256"], hash.as_str());
    let canonical = br#"{"form":{"id":"f9","page":"/signup"},"ip":"203.0.113.77","ua":"needle-agent-55217"}"#;
    let hex: String = Sha256::digest(canonical).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hash, format!("sha256:{hex}"));
    let other = events.iter().find(|e| e["evidence_stored"] != true).expect("an event without");
    let none = format!("/v1/subjects/eva/consents/history/{}/evidence", str_of(&other["id"]));
    assert_code(&s.get(&none, ADMIN_KEY, 404).await, "not_found");
    assert_code(
        &s.get("/v1/subjects/eva/consents/history/evt_x/evidence", ADMIN_KEY, 404).await,
        "not_found",
    );
    // Another subject's event is as absent as none; a caller without `consent:read` may not read it.
    assert_code(&s.get(&path.replace("/eva/", "/zed/"), ADMIN_KEY, 404).await, "not_found");
    let (_, writer) = s.create_key("writer", &["consent:write"]).await;
    s.get(&path, &writer, 403).await;

    // The person reads it with their own token, and on their page.
    let minted = s.post("/v1/subjects/eva/tokens", ADMIN_KEY, &json!({}), 201).await;
    assert_eq!(s.get(&path, str_of(&minted["token"]), 200).await["evidence"], evidence());
    let other = s.post("/v1/subjects/zed/tokens", ADMIN_KEY, &json!({}), 201).await;
    s.get(&path, str_of(&other["token"]), 403).await;
    let url = str_of(&minted["url"]);
    let (_, token) = url.split_once("/preferences?token=").expect("a link");
    let mut v = Visitor::new(&s);
    let page = v.open_link(token).await;
    let link = format!("/preferences/history/{id}/evidence");
    assert!(page.text.contains(&link), "the history links the evidence");
    let shown: Value = serde_json::from_slice(&v.bytes(&link).await).expect("JSON");
    assert_eq!(shown, evidence());
    assert_eq!(v.get(&none.replace("/v1/subjects/eva/consents", "/preferences")).await.status, 404);

    // Nothing at rest holds it in plain text; a rerun keeps it, once.
    assert!(at_rest(&s, &[NEEDLE.as_bytes().to_vec()]).await.is_empty(), "the evidence is sealed");
    let again = import(&s, &[with]).await;
    assert_eq!(again["skipped"].as_u64(), Some(1), "{again}");
    assert_eq!(evidence_rows(&s).await, 1);

    // Erasure crypto-shreds it: the rows go with the key.
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "eva", "type": "erasure"}), 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while evidence_rows(&s).await > 0 {
        assert!(Instant::now() < deadline, "the erasure did not remove the evidence within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(at_rest(&s, &[NEEDLE.as_bytes().to_vec()]).await.is_empty());
    s.stop().await;
}

async fn an_import_line_naming_an_alias_is_the_survivors(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ivy", &grant("marketing.direct", &["email"])).await;
    let mut early = line("a1", "jo", "analytics", "withdraw");
    early["evidence"] = json!({"form": "early"});
    assert_eq!(import(&s, &[early]).await["imported"].as_u64(), Some(1));
    s.post("/v1/subjects/ivy/links", ADMIN_KEY, &json!({"from": "jo"}), 200).await;
    // A line under the old id is the survivor's, as an API call under it would be.
    let mut late = line("a2", "jo", "marketing.direct", "withdraw");
    late["evidence"] = json!({"form": "late"});
    let report = import(&s, &[late]).await;
    assert_eq!((report["imported"].as_u64(), report["failed"].as_u64()), (Some(1), Some(0)), "{report}");
    let events = history(&s, "ivy").await;
    let imported = events.iter().find(|e| e["actor"] == "import:ot").expect("the survivor's event");
    assert_eq!(imported["subject"], "ivy");
    let path = format!("/v1/subjects/ivy/consents/history/{}/evidence", str_of(&imported["id"]));
    assert_eq!(s.get(&path, ADMIN_KEY, 200).await["evidence"], json!({"form": "late"}));
    // Its withdrawal is from 2023, older than ivy's live grant: the grant holds, as ordering says.
    let d = s.check("ivy", "marketing.direct", Some("email")).await;
    assert_eq!(d["allowed"], true, "{d}");
    // The early event's evidence was re-sealed under ivy's key: the old record's key is gone, and it reads.
    let all = s.state.store.evidence_between(&s.state.kek, 0, i64::MAX as u64).await.expect("read");
    let found: Vec<Value> = all.iter().map(|(_, e)| serde_json::from_slice(e).expect("JSON")).collect();
    assert_eq!(found, [json!({"form": "early"}), json!({"form": "late"})]);
    s.stop().await;
}

/// Forgets every stored evidence row, as if the import's evidence write had not happened yet (it runs
/// after the batch's events, in a write of its own).
async fn forget_evidence(s: &TestServer) {
    match s.storage().database_url() {
        None => {
            let path = s.storage().data_dir().join("consentry.db");
            let conn = rusqlite::Connection::open(&path).expect("open the data file");
            conn.busy_timeout(Duration::from_secs(10)).expect("timeout");
            conn.execute("DELETE FROM event_evidence", []).expect("delete");
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::query("DELETE FROM event_evidence").execute(&pool).await.expect("delete");
            pool.close().await;
        }
    }
}

/// A link that runs between an import's events and their evidence write (or a run that stopped there and
/// resumes after the link): the evidence is sealed under the survivor's key, and reads as the survivor's,
/// never under a key made again for the old id.
async fn evidence_written_after_a_link_is_the_survivors(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ivy", &grant("marketing.direct", &["email"])).await;
    let mut raced = line("r1", "jo", "analytics", "withdraw");
    raced["evidence"] = json!({"form": "raced"});
    assert_eq!(import(&s, std::slice::from_ref(&raced)).await["imported"].as_u64(), Some(1));
    let event = history(&s, "jo").await.into_iter().find(|e| e["actor"] == "import:ot").expect("jo's event");
    let (id, hash) = (str_of(&event["id"]).to_owned(), str_of(&event["evidence"]).to_owned());
    forget_evidence(&s).await;
    s.post("/v1/subjects/ivy/links", ADMIN_KEY, &json!({"from": "jo"}), 200).await;
    // The import's evidence write, for the subject its events were written under (jo, before the link).
    let item =
        ImportedEvidence { source_id: "r1".into(), sha256: hash, evidence: br#"{"form":"raced"}"#.to_vec() };
    let jo = SubjectId::new("jo").expect("an id");
    let stored = s.state.store.put_imported_evidence(&s.state.kek, "ot", vec![(jo, vec![item])]).await;
    assert_eq!(stored.expect("stored"), 1);
    let path = format!("/v1/subjects/ivy/consents/history/{id}/evidence");
    assert_eq!(s.get(&path, ADMIN_KEY, 200).await["evidence"], json!({"form": "raced"}));
    // A run that stopped before its evidence and resumes after the link: the line names jo, now ivy.
    forget_evidence(&s).await;
    let report = import(&s, &[raced]).await;
    assert_eq!(report["skipped"].as_u64(), Some(1), "{report}");
    assert_eq!(s.get(&path, ADMIN_KEY, 200).await["evidence"], json!({"form": "raced"}));
    assert_eq!(evidence_rows(&s).await, 1);
    s.stop().await;
}

both_backends!(
    evidence_is_sealed_shown_and_shredded,
    an_import_line_naming_an_alias_is_the_survivors,
    evidence_written_after_a_link_is_the_survivors
);
