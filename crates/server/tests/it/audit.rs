//! The ledger audit over HTTP (`GET /v1/audit/verify`): the hash chain and its JWS checkpoints, and the
//! Merkle tree rebuilt from the events against the signed tree checkpoints and every node the store keeps;
//! tampering found in the store, on both backends.

use std::time::Duration;

use consentry_core::proof::{Checkpoint, JwsKind, SigningKey};
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::proof::jws_part;
use crate::utils::{
    ADMIN_KEY, Backend, NO_KEY, Storage, TestServer, assert_code, both_backends, grant, str_of, withdraw,
};

both_backends!(
    the_audit_verifies_chain_and_checkpoints,
    a_changed_event_is_found,
    events_cut_off_the_end_are_found,
    a_deleted_event_is_found,
    swapped_events_are_found,
    an_altered_checkpoint_is_found,
    stored_checkpoints_of_the_old_form_keep_verifying,
    a_changed_tree_node_is_found,
);

/// `GET /v1/audit/verify` as (the chain's part, the tree's part). The tree's part holds whenever the whole
/// audit does; it is taken out because it counts the stored tree checkpoints, which the checkpoint worker
/// stores on its own time.
pub(crate) async fn audit_of(s: &TestServer) -> (Value, Value) {
    let mut v = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    let tree = v.as_object_mut().and_then(|o| o.remove("tree")).expect("the audit has a tree part");
    if v["ok"] == true {
        assert_eq!(tree["ok"], true, "the whole holds only when the tree does: {tree}");
        assert_eq!(tree["first_bad"], Value::Null, "{tree}");
    }
    (v, tree)
}

async fn the_audit_verifies_chain_and_checkpoints(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (_, reader) = s.create_key("reader", &["consent:read", "consent:write", "check"]).await;
    let p = s.get("/v1/audit/verify", &reader, 403).await;
    assert_code(&p, "forbidden");
    s.get("/v1/audit/verify", NO_KEY, 401).await;
    assert_eq!(
        audit_of(&s).await.0,
        json!({"ok": true, "events": 0, "head": "0".repeat(64), "checkpoints": 0, "first_bad": null}),
        "an empty ledger is intact"
    );

    let mut last = Value::Null;
    for (subject, purpose) in [("a1", "marketing.direct"), ("a2", "analytics"), ("a1", "analytics")] {
        let body = if purpose == "analytics" { grant(purpose, &[]) } else { grant(purpose, &["email"]) };
        last = s.record(subject, &body).await.remove(0);
    }
    assert_eq!(
        audit_of(&s).await.0,
        json!({"ok": true, "events": 3, "head": last["hash"], "checkpoints": 0, "first_bad": null})
    );

    // No JWS checkpoint is signed any more (the transparency log signs tree heads), not even at shutdown;
    // the old interval's setting is still accepted, and changes nothing.
    let s = TestServer::start_in(s.stop().await, |c| c.checkpoint_interval_secs = Some(1)).await;
    last = s.record("a3", &withdraw("analytics")).await.remove(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        audit_of(&s).await.0,
        json!({"ok": true, "events": 4, "head": last["hash"], "checkpoints": 0, "first_bad": null})
    );
    // One that an earlier build stored is still verified.
    old_checkpoint(&s).await;
    let v = audit_of(&s).await.0;
    assert_eq!(
        v,
        json!({"ok": true, "events": 4, "head": last["hash"], "checkpoints": 1, "first_bad": null})
    );
    s.stop().await;
}

/// Runs `sql` directly on the stopped server's database, as an attacker with database access would: the
/// ledger's append-only triggers are dropped (SQLite) or disabled (PostgreSQL) first.
async fn tamper(storage: &Storage, sql: &str) {
    let config = storage.store_config();
    match &config.database_url {
        None => {
            let path = config.data_dir.join("consentry.db");
            let sql = sql.to_owned();
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(&path).expect("open the data file");
                // The ledger refuses changes as long as its triggers stand.
                for refused in
                    ["UPDATE events SET actor = actor WHERE seq = 1", "DELETE FROM events WHERE seq = 1"]
                {
                    let e = conn.execute(refused, []).expect_err("the ledger is append-only");
                    assert!(e.to_string().contains("append-only"), "{refused}: {e}");
                }
                conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
                    .expect("drop the triggers");
                conn.execute_batch(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            })
            .await
            .expect("the tampering does not panic");
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect to the test database");
            for refused in
                ["UPDATE events SET actor = actor WHERE seq = 1", "DELETE FROM events WHERE seq = 1"]
            {
                let e =
                    sqlx::raw_sql(refused).execute(&mut conn).await.expect_err("the ledger is append-only");
                assert!(e.to_string().contains("append-only"), "{refused}: {e}");
            }
            sqlx::raw_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
                .execute(&mut conn)
                .await
                .expect("disable the trigger");
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.close().await.expect("close");
        }
    }
}

/// Signs and stores a JWS checkpoint of the ledger head, as builds before the transparency log did (at
/// shutdown and every `checkpoint_interval_secs`): stores keep those, and the audit checks them.
async fn old_checkpoint(s: &TestServer) {
    let kid = s.state.signing.current().kid().to_owned();
    old_checkpoint_signed_by(s, &kid).await;
}

/// [`old_checkpoint`] signed with the store's signing key `kid`.
pub async fn old_checkpoint_signed_by(s: &TestServer, kid: &str) {
    let head = s.state.store.ledger_head().await.expect("head");
    let checkpoint = Checkpoint::new(head.events, head.head.clone(), consentry_core::Timestamp::now());
    let jws = s.state.signing.key(kid).expect("a stored signing key").sign_jws(&checkpoint);
    s.state.store.insert_checkpoint(head.events, &head.head, &jws).await.expect("stored");
}

/// A stopped server's storage holding 4 events (returned) and checkpoints (of the old form) for 2 and for
/// 4 events.
async fn ledger_with_checkpoints(backend: Backend) -> (Storage, Vec<Value>) {
    let s = TestServer::start_on(backend).await;
    let mut events = s.record("t1", &grant("marketing.direct", &["email"])).await;
    events.extend(s.record("t2", &grant("analytics", &[])).await);
    old_checkpoint(&s).await;
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    events.extend(s.record("t3", &grant("marketing.direct", &["sms"])).await);
    events.extend(s.record("t4", &grant("analytics", &[])).await);
    let v = audit_of(&s).await.0;
    assert_eq!(
        v,
        json!({"ok": true, "events": 4, "head": events[3]["hash"], "checkpoints": 1, "first_bad": null})
    );
    old_checkpoint(&s).await;
    (s.stop().await, events)
}

/// Starts a server on tampered storage; returns its audit.
async fn audit_after(storage: Storage) -> Value {
    let s = TestServer::start_in(storage, |_| {}).await;
    let v = audit_of(&s).await.0;
    assert_eq!(v["ok"], false, "the tampering is found: {v}");
    v
}

async fn a_changed_event_is_found(backend: Backend) {
    let (storage, events) = ledger_with_checkpoints(backend).await;
    assert_eq!(events[1]["purpose"], "analytics");
    tamper(&storage, "UPDATE events SET purpose = 'X' || substr(purpose, 2) WHERE seq = 2").await;
    let v = audit_after(storage).await;
    let bad = &v["first_bad"];
    assert_eq!((&bad["seq"], &bad["kind"]), (&json!(2), &json!("hash_mismatch")), "{v}");
    assert_eq!(bad["event_index"], 1);
    assert!(str_of(&bad["problem"]).contains("event 2"), "{v}");
    assert_eq!((&v["events"], &v["head"]), (&json!(1), &events[0]["hash"]), "what verified before it: {v}");
}

async fn events_cut_off_the_end_are_found(backend: Backend) {
    let (storage, events) = ledger_with_checkpoints(backend).await;
    tamper(
        &storage,
        "DELETE FROM consent_state WHERE seq > 2; DELETE FROM receipts WHERE last_seq > 2; \
         DELETE FROM events WHERE seq > 2;",
    )
    .await;
    let v = audit_after(storage).await;
    let bad = &v["first_bad"];
    assert_eq!((&bad["seq"], &bad["kind"]), (&json!(3), &json!("truncated")), "{v}");
    assert_eq!(bad["checkpoint_index"], 1, "the checkpoint for 4 events: {v}");
    assert_eq!(
        (&v["events"], &v["head"], &v["checkpoints"]),
        (&json!(2), &events[1]["hash"], &json!(1)),
        "{v}"
    );
}

/// No event stores the hash of the one before it (it is read from that event), so an event taken out of the
/// middle leaves no mismatched hash behind it: the gap in the positions finds it.
async fn a_deleted_event_is_found(backend: Backend) {
    let (storage, events) = ledger_with_checkpoints(backend).await;
    tamper(
        &storage,
        "DELETE FROM consent_state WHERE seq = 2; DELETE FROM receipts WHERE first_seq = 2 OR last_seq = 2; \
         DELETE FROM events WHERE seq = 2;",
    )
    .await;
    let v = audit_after(storage).await;
    let bad = &v["first_bad"];
    assert_eq!((&bad["seq"], &bad["kind"]), (&json!(3), &json!("sequence_gap")), "{v}");
    assert!(str_of(&bad["problem"]).contains("expected event 2"), "{v}");
    assert_eq!((&v["events"], &v["head"]), (&json!(1), &events[0]["hash"]), "what verified before it: {v}");
}

async fn swapped_events_are_found(backend: Backend) {
    let (storage, events) = ledger_with_checkpoints(backend).await;
    tamper(
        &storage,
        "CREATE TEMP TABLE swapped AS SELECT * FROM events WHERE seq IN (2, 3);
         UPDATE events SET pseudonym = s.pseudonym, purpose = s.purpose, action = s.action,
             categories = s.categories, channels = s.channels, recipients = s.recipients, notice = s.notice,
             notice_version = s.notice_version, notice_hash = s.notice_hash,
             collection_point = s.collection_point, actor = s.actor, recorded_at = s.recorded_at,
             expires_at = s.expires_at, hash = s.hash
         FROM swapped AS s WHERE events.seq IN (2, 3) AND s.seq = 5 - events.seq;",
    )
    .await;
    let s = TestServer::start_in(storage, |_| {}).await;
    // The swap happened: event 2 now holds what event 3 held.
    let history = s.get("/v1/subjects/t3/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(history["events"][0]["seq"], 2, "{history}");
    assert_eq!(history["events"][0]["hash"], events[2]["hash"], "{history}");
    let v = audit_of(&s).await.0;
    let bad = &v["first_bad"];
    assert_eq!(v["ok"], false, "{v}");
    // No event stores the hash it follows (it is the one before it), so the moved event's own hash no
    // longer matches where it now stands.
    assert_eq!((&bad["seq"], &bad["kind"]), (&json!(2), &json!("hash_mismatch")), "{v}");
    assert_eq!((&v["events"], &v["head"]), (&json!(1), &events[0]["hash"]), "{v}");
}

async fn an_altered_checkpoint_is_found(backend: Backend) {
    let (storage, _) = ledger_with_checkpoints(backend).await;
    tamper(
        &storage,
        "UPDATE checkpoints SET jws = substr(jws, 1, length(jws) - 8) || 'AAAAAAAA' WHERE events = 4",
    )
    .await;
    let v = audit_after(storage).await;
    let bad = &v["first_bad"];
    assert_eq!(bad["kind"], "bad_checkpoint", "{v}");
    assert_eq!((&bad["checkpoint_index"], &bad["seq"]), (&json!(1), &Value::Null), "{v}");
    assert!(str_of(&bad["problem"]).contains("signature"), "{v}");
    // Checkpoints are checked before the events, and the first problem ends the audit.
    assert_eq!((&v["events"], &v["checkpoints"]), (&json!(0), &json!(0)), "{v}");
}

/// Adds a checkpoint for `events` events ending at `head`, signed with the server's current key under the
/// JWS `typ` `typ`, to the stopped server's store.
async fn insert_checkpoint_as(storage: &Storage, events: u64, head: &str, typ: &str) {
    let store = consentry_store::open(storage.store_config()).await.expect("open the store");
    let keys = store.signing_keys().await.expect("signing keys");
    let current = keys.iter().find(|k| k.current).expect("a current key");
    let key = SigningKey::from_secret(current.kid.clone(), current.secret);
    let checkpoint = Checkpoint::new(events, head, consentry_core::Timestamp::now());
    let jws = key.sign_jws_bytes(typ, &serde_json::to_vec(&checkpoint).expect("JSON"));
    store.insert_checkpoint(events, head, &jws).await.expect("insert the checkpoint");
    store.close().await;
}

async fn stored_checkpoints_of_the_old_form_keep_verifying(backend: Backend) {
    let (storage, events) = ledger_with_checkpoints(backend).await;
    let checkpoint_jws = {
        let store = consentry_store::open(storage.store_config()).await.expect("open the store");
        let stored = store.checkpoints().await.expect("checkpoints");
        store.close().await;
        stored.into_iter().map(|c| c.jws).collect::<Vec<_>>()
    };
    assert!(checkpoint_jws.iter().all(|j| jws_part(j, 0)["typ"] == "checkpoint+jwt"), "{checkpoint_jws:?}");
    // A checkpoint signed before checkpoints had their own typ (`JWT`), as stored by older versions.
    insert_checkpoint_as(&storage, 1, str_of(&events[0]["hash"]), "JWT").await;
    let s = TestServer::start_in(storage, |_| {}).await;
    let v = audit_of(&s).await.0;
    assert_eq!(
        v,
        json!({"ok": true, "events": 4, "head": events[3]["hash"], "checkpoints": 3, "first_bad": null})
    );
    // A genuine JWS of another kind, with a checkpoint's payload, is not a checkpoint.
    let storage = s.stop().await;
    insert_checkpoint_as(&storage, 3, str_of(&events[2]["hash"]), JwsKind::Receipt.typ()).await;
    let v = audit_after(storage).await;
    assert_eq!(v["first_bad"]["kind"], "bad_checkpoint", "{v}");
    assert!(str_of(&v["first_bad"]["problem"]).contains("not a checkpoint+jwt"), "{v}");
}

async fn a_changed_tree_node_is_found(backend: Backend) {
    let embedded = matches!(backend, Backend::Embedded);
    let (storage, _) = ledger_with_checkpoints(backend).await;
    // The node over events 3 and 4 given the one over events 1 and 2 (leaves are not stored: they are the
    // events' hashes): not a node of the tree's head at 4 leaves, so only a check of every stored node
    // finds it (a proof of event 1 would lead elsewhere).
    let copy = "UPDATE tlog_nodes SET hash = (SELECT hash FROM tlog_nodes WHERE level = 1 AND idx = 0) \
                WHERE level = 1 AND idx = 1";
    let sql = if embedded {
        format!("DROP TRIGGER tlog_nodes_no_update; {copy};")
    } else {
        format!("ALTER TABLE tlog_nodes DISABLE TRIGGER tlog_nodes_append_only; {copy};")
    };
    tamper(&storage, &sql).await;
    let s = TestServer::start_in(storage, |_| {}).await;
    let v = s.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!(v["ok"], false, "a changed tree node is found: {v}");
    assert_eq!((&v["first_bad"], &v["events"]), (&Value::Null, &json!(4)), "the chain itself holds: {v}");
    let tree = &v["tree"];
    assert_eq!((&tree["ok"], &tree["size"]), (&json!(false), &json!(4)), "{v}");
    assert!(str_of(&tree["first_bad"]).contains("level 1 index 1"), "{v}");
    s.stop().await;
}
