//! A consent message's outbox row keeps only its event's seq, its CloudEvents source and its decision; the
//! dispatcher builds the CloudEvent again from the ledger event. What it sends must be, byte for byte, what
//! earlier builds sent from the whole stored CloudEvent: for rows written now, and for rows an earlier
//! build stored whole that the upgrade (SQLite 0029, PostgreSQL 0031) converted.

use std::time::Duration;

use consentry_core::{Event, Timestamp};
use consentry_store::{DeliveryOutcome, DestinationPatch, Store};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, Storage, TestServer, both_backends, grant, paused_destination, withdraw,
};

both_backends!(consent_messages_are_sent_as_whole_stored_ones_were);

/// The whole CloudEvent an earlier build stored and sent for a consent change, transcribed from its
/// `events::consent_event`, `CloudEvent` (field order) and `CloudEvent::with_subject` (a subject not
/// erased): the decision is the one it computed when the change was made. `sent` with the subject added,
/// else as it was stored.
fn legacy(event_type: &str, source: &str, event: &Event, decision: &Value, sent: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Envelope<'a> {
        specversion: &'a str,
        id: String,
        source: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        time: String,
        datacontenttype: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        erased: Option<bool>,
        data: Value,
    }
    let mut data = json!({
        "event": {
            "id": event.id(),
            "seq": event.seq,
            "purpose": event.purpose,
            "action": event.action.as_str(),
            "categories": event.scope.categories,
            "channels": event.scope.channels,
            "recipients": event.scope.recipients,
            "notice": event.notice,
            "notice_version": event.notice_version,
            "collection_point": event.collection_point,
            "actor": event.actor,
            "recorded_at": event.recorded_at.to_string(),
            "expires_at": event.expires_at.map(|t| t.to_string()),
            "hash": event.hash,
        },
        "decision": decision,
    });
    if let Some(at) = event.occurred_at {
        data["event"]["occurred_at"] = Value::String(at.to_string());
    }
    let envelope = Envelope {
        specversion: "1.0",
        id: event.id(),
        source,
        kind: event_type,
        time: event.effective_at().to_string(),
        datacontenttype: "application/json",
        subject: sent,
        erased: None,
        data,
    };
    serde_json::to_string(&envelope).expect("JSON")
}

/// An outbox row: `(id, event type, payload, seq, source)`.
type Row = (i64, String, String, Option<i64>, Option<String>);

async fn outbox_rows(storage: &Storage) -> Vec<Row> {
    let sql = "SELECT id, event_type, payload, seq, source FROM outbox ORDER BY id";
    match storage.database_url() {
        None => {
            let conn = rusqlite::Connection::open(storage.data_dir().join("consentry.db")).expect("open");
            let mut stmt = conn.prepare(sql).expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("outbox");
            pool.close().await;
            rows
        }
    }
}

/// Runs `sql` on the stopped storage's data database.
async fn execute(storage: &Storage, sql: &str) {
    match storage.database_url() {
        None => {
            let conn = rusqlite::Connection::open(storage.data_dir().join("consentry.db")).expect("open");
            conn.execute_batch(sql).expect("execute");
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&pool).await.expect("execute");
            pool.close().await;
        }
    }
}

/// Resumes `destination`, fans out to it and sends everything it has, as the dispatcher does (one
/// subject's messages in order): the bodies the dispatcher would send, by outbox id.
async fn send_all(store: &dyn Store, destination: &str) -> Vec<(i64, String)> {
    let resume = DestinationPatch { paused: Some(false), ..Default::default() };
    assert!(store.update_destination(destination, resume).await.expect("resume"));
    while store.fan_out(destination, &|_: &str| true, 1000).await.expect("fan out") > 0 {}
    let mut sent = Vec::new();
    loop {
        let claimed =
            store.claim_deliveries(Timestamp::now(), Duration::from_secs(60), 100).await.expect("claim");
        if claimed.is_empty() {
            break;
        }
        let mut outcomes = Vec::new();
        for c in claimed {
            let event = consentry_service::events::claimed_event(&c).expect("a CloudEvent");
            sent.push((c.outbox_id, event.with_subject(c.subject.as_ref()).to_json()));
            outcomes.push((
                c.destination_id,
                c.outbox_id,
                DeliveryOutcome::Delivered { at: Timestamp::now() },
            ));
        }
        store.complete_deliveries(outcomes).await.expect("complete");
    }
    let pause = DestinationPatch { paused: Some(true), ..Default::default() };
    store.update_destination(destination, pause).await.expect("pause");
    sent.sort();
    sent
}

async fn consent_messages_are_sent_as_whole_stored_ones_were(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    // Two paused destinations: the first takes the messages as written now, the second after the upgrade.
    paused_destination(&s, &["consent.*"]).await;
    paused_destination(&s, &["consent.*"]).await;
    // One request, two changes: each message's decision takes both into account.
    let mut two = grant("marketing.direct", &["email"]);
    let changes = two["changes"].as_array_mut().expect("changes");
    changes.push(json!({"purpose": "marketing.direct", "action": "deny", "channels": ["sms"]}));
    s.record("ann", &two).await;
    s.record("ann", &withdraw("marketing.direct")).await;
    s.record("bo", &grant("analytics", &[])).await;
    // An imported change in force: its `occurred_at` and `time` are when it took effect.
    let line = json!({"source_id": "x1", "subject": "cy", "purpose": "analytics", "action": "grant",
                      "occurred_at": "2024-06-01T00:00:00Z", "notice": {"key": "analytics"}});
    let report = s
        .raw(
            Method::POST,
            "/v1/import?source=ot",
            ADMIN_KEY,
            "application/x-ndjson",
            format!("{line}\n"),
            200,
        )
        .await;
    assert_eq!(report["imported"].as_u64(), Some(1), "{report}");
    let storage = s.stop().await;

    let rows = outbox_rows(&storage).await;
    assert_eq!(rows.len(), 5, "one slim row per consent change: {rows:?}");
    let store = consentry_store::open(storage.store_config()).await.expect("open the store");
    let events = store.events_page(0, 100).await.expect("the ledger");
    let destinations = store.destinations().await.expect("destinations");
    // ann's request placed events 1 and 2, her withdrawal 3, bo's grant 4, cy's import 5.
    let names: std::collections::HashMap<&str, &str> = [(1, "ann"), (4, "bo"), (5, "cy")]
        .into_iter()
        .map(|(seq, name)| (events[seq - 1].pseudonym.as_str(), name))
        .collect();
    let subject_of = |seq: u64| names[events[seq as usize - 1].pseudonym.as_str()];
    // As earlier builds stored and sent them: the same event, source and decision.
    let mut expected = Vec::new();
    let mut whole = Vec::new();
    for (id, event_type, decision, seq, source) in &rows {
        let (seq, source) = (seq.expect("a seq") as u64, source.as_deref().expect("a source"));
        assert!(source.starts_with("urn:consentry:"), "{source}");
        let decided: Value = serde_json::from_str(decision).expect("the decision is JSON");
        let keys: Vec<&String> = decided.as_object().expect("an object").keys().collect();
        assert_eq!(keys.len(), 2, "only the decisions, no copy of the event: {decided}");
        let event = events.iter().find(|e| e.seq == seq).expect("its ledger event");
        // The decision as it was stored whole: for the event's purpose.
        let decision = json!({"purpose": event.purpose, "overall": decided["overall"],
                              "channels": decided["channels"]});
        expected.push((*id, legacy(event_type, source, event, &decision, Some(subject_of(seq)))));
        whole.push((*id, legacy(event_type, source, event, &decision, None)));
    }
    assert_eq!(send_all(store.as_ref(), &destinations[0].id).await, expected, "built again byte for byte");
    // The decisions are the ones made when each change was recorded.
    let granted: Value = serde_json::from_str(&expected[0].1).expect("JSON");
    // The grant by e-mail with the same request's denial by SMS: not allowed overall, allowed by e-mail.
    assert_eq!(granted["data"]["decision"]["overall"]["reason"], "denied", "{granted}");
    assert_eq!(granted["data"]["decision"]["channels"][0]["channel"], "email", "{granted}");
    assert_eq!(granted["data"]["decision"]["channels"][0]["allowed"], true, "{granted}");
    let imported: Value = serde_json::from_str(&expected[4].1).expect("JSON");
    assert_eq!(imported["time"], "2024-06-01T00:00:00.000000Z", "{imported}");
    store.close().await;

    // As an earlier build left them: the whole CloudEvent in `payload`, no seq nor source column.
    let mut downgrade = String::new();
    for (id, payload) in &whole {
        let payload = payload.replace('\'', "''");
        downgrade.push_str(&format!("UPDATE outbox SET payload = '{payload}' WHERE id = {id};\n"));
    }
    match storage.database_url() {
        None => downgrade.push_str(&format!(
            "{}
             ALTER TABLE outbox DROP COLUMN seq; ALTER TABLE outbox DROP COLUMN source;
             DROP TABLE engine_images;
             PRAGMA user_version = {};",
            consentry_store::testing::downgrade::SQLITE_BEFORE_SLIM_RECEIPTS,
            // Before the slim outbox (0029), the engine images (0030) and the slim receipts (0031).
            consentry_store::sqlite::SqliteStore::schema_version() - 3
        )),
        Some(_) => downgrade.push_str(&format!(
            "{}
             ALTER TABLE outbox DROP COLUMN seq, DROP COLUMN source;
             DROP TABLE engine_images;
             DELETE FROM consentry_schema_migrations WHERE version >= {};",
            consentry_store::testing::downgrade::POSTGRES_BEFORE_SLIM_RECEIPTS,
            // Before the slim outbox (0031), the engine images (0032) and the slim receipts (0033).
            consentry_store::postgres::PostgresStore::schema_version() - 2
        )),
    }
    execute(&storage, &downgrade).await;
    let store = consentry_store::open(storage.store_config()).await.expect("upgrade the store");
    let converted = outbox_rows(&storage).await;
    assert_eq!(
        converted.iter().map(|r| (r.0, r.3, r.4.clone())).collect::<Vec<_>>(),
        rows.iter().map(|r| (r.0, r.3, r.4.clone())).collect::<Vec<_>>(),
        "the upgrade finds each message's event and source"
    );
    assert_eq!(
        send_all(store.as_ref(), &destinations[1].id).await,
        expected,
        "converted rows: the same bytes"
    );
    store.close().await;
}
