//! The embedded SQLite store: the conformance suite, durability, locking and schema versions.

use std::sync::Arc;

use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};
use consentry_store::sqlite::SqliteStore;
use consentry_store::testing::downgrade::SQLITE_BEFORE_SLIM_RECEIPTS;
use consentry_store::{
    AccessEntry, DeliveryOutcome, DestinationRecord, NewDestination, OutboxMessage, Sealed, SealedReceipt,
    Sealer, Store, StoreError,
};
use tempfile::TempDir;

async fn make() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path(), None).await.expect("open");
    (Arc::new(store), dir)
}

mod conformance {
    consentry_store::conformance_suite!(async { Some(super::make().await) });
}

mod conformance_vault {
    consentry_store::conformance_vault_suite!(async { Some(super::make().await) });
}

fn grant() -> NewEvent {
    crate::change("analytics", Action::Grant)
}

#[tokio::test]
async fn state_survives_reopen_and_the_chain_continues() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("dora").expect("id");
    let first = {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        let e = store.append(&s, vec![grant()]).await.expect("append");
        store.close().await;
        e
    };
    let store = SqliteStore::open(dir.path(), None).await.expect("reopen");
    let second = store.append(&s, vec![grant()]).await.expect("append");
    assert_eq!(second[0].seq, 2);
    assert_eq!(second[0].prev_hash, first[0].hash);
    assert_eq!(second[0].pseudonym, first[0].pseudonym);
    store.close().await;
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_folder() {
    let (store, dir) = make().await;
    let err = SqliteStore::open(dir.path(), None).await.expect_err("locked");
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    store.close().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    SqliteStore::open(dir.path(), None).await.expect("open").close().await;
    {
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open file");
        conn.pragma_update(None, "user_version", 99).expect("bump");
    }
    let err = SqliteStore::open(dir.path(), None).await.expect_err("too new");
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

#[tokio::test]
async fn ledger_rows_cannot_be_updated_or_deleted() {
    let (store, dir) = make().await;
    store.append(&SubjectId::new("eve").expect("id"), vec![grant()]).await.expect("append");
    let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open file");
    assert!(conn.execute("UPDATE events SET purpose = 'marketing'", []).is_err());
    assert!(conn.execute("DELETE FROM events", []).is_err());
    drop(conn);
    store.close().await;
}

#[tokio::test]
async fn subject_ids_stay_out_of_the_data_file() {
    let (store, dir) = make().await;
    let subject = SubjectId::new("needle-subject-7731").expect("id");
    let seal: Sealer = Box::new(|_: &[Event], _: &consentry_store::Wants<'_>| {
        Ok(Sealed {
            receipt: Some(SealedReceipt {
                id: "rcpt_needle".into(),
                catalog_version: 1,
                issued_at: Timestamp::now(),
                kid: "kid-1".into(),
            }),
            outbox: vec![OutboxMessage {
                event_type: "consent.granted".into(),
                payload: r#"{"purpose":"analytics"}"#.into(),
                event: None,
            }],
            in_force: Vec::new(),
        })
    });
    // Propagation: a destination (its secret in the key store), outbox messages from the append and
    // enqueued for a subject without a key yet, fanned out, claimed and completed.
    let secret = b"needle-secret-5127".to_vec();
    let destination = NewDestination {
        record: DestinationRecord {
            id: "dst_1".into(),
            name: "crm".into(),
            kind: "webhook".into(),
            url: "https://example.com/hook".into(),
            target: None,
            event_types: vec!["*".into()],
            paused: false,
            flagged: false,
            created_at: Timestamp::now(),
        },
        secret: Some(secret.clone()),
    };
    store.create_destination(destination).await.expect("destination");
    store.append_sealed(&subject, vec![grant()], Some(seal)).await.expect("append");
    let enqueued = SubjectId::new("needle-enqueued-2290").expect("id");
    let erased = OutboxMessage { event_type: "subject.erased".into(), payload: "{}".into(), event: None };
    store.enqueue(&enqueued, vec![erased]).await.expect("enqueue");
    assert_eq!(store.fan_out("dst_1", &|_: &str| true, 100).await.expect("fan out"), 2);
    let claimed = store
        .claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.subject.clone()).collect::<Vec<_>>(),
        [Some(subject.clone()), Some(enqueued.clone())]
    );
    let retry = DeliveryOutcome::Retry { error: "HTTP 500".into(), next_attempt_at: Timestamp::now() };
    store.complete_delivery("dst_1", claimed[0].outbox_id, retry).await.expect("retry");
    let done = DeliveryOutcome::Delivered { at: Timestamp::now() };
    store.complete_delivery("dst_1", claimed[1].outbox_id, done).await.expect("delivered");
    assert_eq!(store.deliveries("dst_1", None, 0, 10).await.expect("deliveries").len(), 2);
    // Access logging and check counts, also for subjects that have no key yet.
    let logged = SubjectId::new("needle-logged-4412").expect("id");
    let counted = SubjectId::new("needle-counted-9051").expect("id");
    let entry = |s: &SubjectId| AccessEntry {
        subject: s.clone(),
        at: Timestamp::now(),
        caller: "key_crm".into(),
        route: "/v1/subjects/{subject}".into(),
        purpose: "analytics".into(),
    };
    store.log_access(vec![entry(&subject), entry(&logged)]).await.expect("log");
    store
        .add_check_counts(vec![
            (subject.clone(), "analytics".into(), 2, Timestamp::now()),
            (counted.clone(), "analytics".into(), 1, Timestamp::now()),
        ])
        .await
        .expect("count");
    assert_eq!(store.access_log(&logged, None, 10).await.expect("log").len(), 1);
    assert_eq!(store.check_counts(&counted).await.expect("counts").len(), 1);
    store.close().await;
    let data = std::fs::read(dir.path().join("consentry.db")).expect("read");
    let wal = std::fs::read(dir.path().join("consentry.db-wal")).unwrap_or_default();
    let keys = std::fs::read(dir.path().join("keys.db")).expect("read");
    let keys_wal = std::fs::read(dir.path().join("keys.db-wal")).unwrap_or_default();
    let found = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for needle in [&subject, &logged, &counted, &enqueued] {
        let needle = needle.as_str().as_bytes();
        assert!(
            !found(&data, needle) && !found(&wal, needle),
            "the subject id must live only in the key store"
        );
        assert!(found(&keys, needle) || found(&keys_wal, needle), "the key store holds the subject id");
    }
    assert!(
        !found(&data, &secret) && !found(&wal, &secret),
        "destination secrets live only in the key store"
    );
    assert!(found(&keys, &secret) || found(&keys_wal, &secret));
}

/// A sealed receipt `id` of catalogue version 1.
fn receipt(id: &str) -> SealedReceipt {
    SealedReceipt { id: id.into(), catalog_version: 1, issued_at: Timestamp::now(), kid: "kid-1".into() }
}

#[tokio::test]
async fn a_receipt_loses_its_subject_once_the_key_is_destroyed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("gina").expect("id");
    {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        let seal: Sealer = Box::new(|_: &[Event], _: &consentry_store::Wants<'_>| {
            Ok(Sealed { receipt: Some(receipt("rcpt_gina")), outbox: vec![], in_force: Vec::new() })
        });
        store.append_sealed(&s, vec![grant()], Some(seal)).await.expect("append");
        assert_eq!(store.receipt("rcpt_gina").await.expect("read").and_then(|r| r.subject), Some(s.clone()));
        store.close().await;
    }
    {
        let conn = rusqlite::Connection::open(dir.path().join("keys.db")).expect("open key store");
        conn.execute("DELETE FROM subject_keys WHERE subject = 'gina'", []).expect("erase");
    }
    let store = SqliteStore::open(dir.path(), None).await.expect("reopen");
    let receipt = store.receipt("rcpt_gina").await.expect("read").expect("the receipt stays");
    assert_eq!((receipt.subject, receipt.first_seq, receipt.catalog_version), (None, 1, 1));
    store.close().await;
}

#[tokio::test]
async fn a_duplicate_receipt_id_fails_only_its_request() {
    let (store, _dir) = make().await;
    let s = SubjectId::new("hank").expect("id");
    let seal = || -> Sealer {
        Box::new(|_: &[Event], _: &consentry_store::Wants<'_>| {
            Ok(Sealed { receipt: Some(receipt("rcpt_same")), outbox: vec![], in_force: Vec::new() })
        })
    };
    store.append_sealed(&s, vec![grant()], Some(seal())).await.expect("first");
    let err = store.append_sealed(&s, vec![grant()], Some(seal())).await.expect_err("duplicate id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.append(&s, vec![grant()]).await.expect("next")[0].seq, 2, "no gap");
    store.close().await;
}

#[tokio::test]
async fn migrations_reach_the_current_versions() {
    let dir = tempfile::tempdir().expect("temp dir");
    SqliteStore::open(dir.path(), None).await.expect("open").close().await;
    let version = |file: &str| -> i64 {
        let conn = rusqlite::Connection::open(dir.path().join(file)).expect("open file");
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version")
    };
    assert_eq!(version("consentry.db"), SqliteStore::schema_version());
    // Data: init, proof, outbox, expiry, vault, devices, requests, subject tokens, receipts rebuilt,
    // console, tlog, event evidence, identifiers, notice consents, event jurisdiction, device last seen,
    // verifications, import, console checks, request days, delivery attempts, effective time, guardians,
    // outbox reach, households, coming of age, sealed evidence, consent stances, slim outbox, engine images,
    // slim receipts; key store: init, signing, destinations, vault, erasure, key pepper, no erasure notices,
    // subject links.
    assert_eq!((version("consentry.db"), version("keys.db")), (31, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_and_restore() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backups = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("fred").expect("id");
    let store = SqliteStore::open(dir.path(), None).await.expect("open");
    let before = store.append(&s, vec![grant()]).await.expect("append");
    // Online: the store is open and keeps writing while the copy is taken.
    let copy = backups.path().join("b1");
    let (src, dst) = (dir.path().to_path_buf(), copy.clone());
    tokio::task::spawn_blocking(move || consentry_store::sqlite::backup(&src, &dst))
        .await
        .expect("task")
        .expect("backup");
    store.append(&s, vec![grant()]).await.expect("append after backup");
    assert!(matches!(consentry_store::sqlite::restore(&copy, dir.path()), Err(StoreError::Locked(_))));
    store.close().await;
    drop(store);

    consentry_store::sqlite::restore(&copy, dir.path()).expect("restore");
    let store = SqliteStore::open(dir.path(), None).await.expect("reopen");
    let history = store.history(&s, 0, 10).await.expect("history");
    assert_eq!(history, before, "the restored store holds what the backup saw");
    let next = store.append(&s, vec![grant()]).await.expect("append");
    assert_eq!((next[0].seq, next[0].prev_hash.as_str()), (2, before[0].hash.as_str()));
    store.close().await;
    assert!(consentry_store::sqlite::backup(dir.path(), &copy).is_err(), "refuses a non-empty target");
}

/// Every byte of the files in `dir` whose names start with `prefix` (a database and its `-wal`, `-shm`).
fn file_bytes(dir: &std::path::Path, prefix: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)) {
            all.extend(std::fs::read(&path).expect("read"));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_overwrites_the_data_key_and_no_file_holds_the_plaintext() {
    use consentry_store::vault::{Kek, NewRecord, VaultStore, new_record_id};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path(), None).await.expect("open");
    let kek = Kek::generate().expect("kek");
    let marker = b"PLAINTEXT-MARKER-7f1c".to_vec();
    let now = Timestamp::now();
    let record = NewRecord {
        id: new_record_id(now).expect("id"),
        subject: SubjectId::new("olga").expect("id"),
        device_id: None,
        category: "user.biometric.voice".into(),
        purpose: "voice.assistant".into(),
        content_type: "audio/ogg".into(),
        collected_at: now,
        stored_at: now,
        delete_after: None,
        data: [marker.as_slice(); 64].concat(),
    };
    store.put_record(&kek, record).await.expect("put");
    let wrapped: Vec<u8> = {
        let conn = rusqlite::Connection::open(dir.path().join("keys.db")).expect("open key store");
        conn.query_row("SELECT wrapped FROM subject_data_keys WHERE subject = 'olga'", [], |r| r.get(0))
            .expect("the wrapped key")
    };
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&file_bytes(dir.path(), "keys.db"), &wrapped), "the key is in the key store");
    assert!(!contains(&file_bytes(dir.path(), "consentry.db"), &marker), "no plaintext in the data files");
    assert!(!contains(&file_bytes(dir.path(), "keys.db"), &marker), "nor in the key store");

    assert_eq!(store.delete_subject_vault(&SubjectId::new("olga").expect("id")).await.expect("erase"), 1);
    store.close().await;
    assert!(
        !contains(&file_bytes(dir.path(), "keys.db"), &wrapped),
        "the destroyed data key is overwritten, in the database and its write-ahead log"
    );
}

/// An install from before receipts were rebuilt (data schema 8, key store 6) upgrades: its receipts keep
/// their rows, each naming the catalogue in force when it was made, their signed form (which named the
/// person) and the ids kept for erased subjects' messages are dropped, and neither file keeps those bytes.
#[tokio::test]
async fn the_upgrade_drops_stored_receipts_and_kept_ids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("olga").expect("id");
    {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        store.append(&s, vec![grant()]).await.expect("append");
        store.close().await;
    }
    // Back to how the previous version kept them.
    let signed = "eyJhbGciOiJFZERTQSJ9.olga-signed-payload-4412.c2ln";
    let kept_id = "erased-kept-id-9931";
    {
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
        conn.execute_batch(&format!(
            "{SQLITE_BEFORE_SLIM_RECEIPTS}
             {CONSENT_STATE_BEFORE_STANCES}
             DROP TABLE receipts;
             CREATE TABLE receipts (id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL,
                 first_seq INTEGER NOT NULL REFERENCES events (seq), last_seq INTEGER NOT NULL REFERENCES events (seq),
                 jws TEXT NOT NULL, created_at INTEGER NOT NULL) STRICT;
             INSERT INTO catalogs (version, document, applied_at) VALUES (1, '{{}}', 10), (2, '{{}}', 20);
             INSERT INTO receipts SELECT 'rcpt_old', pseudonym, seq, seq, '{signed}', 15 FROM events;
             DROP TABLE console_sessions; DROP TABLE console_rollups; DROP TABLE console_rollup_cursor;
             DROP TABLE tlog_nodes; DROP TABLE tlog_checkpoints;
             ALTER TABLE events DROP COLUMN evidence; DROP TABLE identifiers;
             DROP INDEX events_by_notice;
             ALTER TABLE events DROP COLUMN jurisdiction;
             ALTER TABLE devices DROP COLUMN last_seen; DROP TABLE verifications;
             ALTER TABLE events DROP COLUMN occurred_at; ALTER TABLE consent_state DROP COLUMN at;
             DROP TABLE imported; ALTER TABLE notices DROP COLUMN imported;
             DROP TABLE console_checks; DROP TABLE delivery_attempts; DROP TABLE ledger_floor;
             DROP TABLE subject_ages; DROP TABLE guardians;
             DROP TABLE household_devices; DROP TABLE household_members; DROP TABLE households;
             DROP TABLE event_evidence; DROP TABLE engine_images;
             DROP INDEX requests_by_received; DROP INDEX requests_by_closed; DROP INDEX requests_by_overdue;
             ALTER TABLE destinations DROP COLUMN origin; DROP INDEX deliveries_dead_by_subject;
             ALTER TABLE outbox DROP COLUMN seq; ALTER TABLE outbox DROP COLUMN source;
             PRAGMA user_version = 8;"
        ))
        .expect("old data schema");
        let conn = rusqlite::Connection::open(dir.path().join("keys.db")).expect("open key store");
        conn.execute_batch(&format!(
            "CREATE TABLE erasure_notices (pseudonym TEXT PRIMARY KEY, subject TEXT NOT NULL,
                 created_at INTEGER NOT NULL) STRICT;
             INSERT INTO erasure_notices VALUES ('p', '{kept_id}', 1);
             DROP TABLE subject_links;
             PRAGMA user_version = 6;"
        ))
        .expect("old key store schema");
    }
    let store = SqliteStore::open(dir.path(), None).await.expect("upgrade");
    let receipt = store.receipt("rcpt_old").await.expect("read").expect("kept");
    assert_eq!(
        (receipt.subject, receipt.first_seq, receipt.last_seq, receipt.catalog_version),
        (Some(s.clone()), 1, 1, 1),
        "the catalogue in force when it was made"
    );
    assert_eq!(receipt.kid, None, "which key signed it was not kept");
    // The state from before imports took each statement's recorded time: a change imported now from
    // before it does not replace it, one from after does.
    let keys = |id: &str| consentry_store::ImportKeys { source: "old".into(), ids: vec![id.into()] };
    let at = |micros| NewEvent { occurred_at: Some(Timestamp::from_micros(micros)), ..grant() };
    let mut withdraw = at(1);
    withdraw.action = Action::Withdraw;
    store.append_imported(&s, keys("a"), vec![withdraw.clone()], None).await.expect("import");
    assert_eq!(store.current(&s).await.expect("current").iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    withdraw.occurred_at = Some(Timestamp::now());
    store.append_imported(&s, keys("b"), vec![withdraw], None).await.expect("import");
    assert_eq!(store.current(&s).await.expect("current").iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    store.close().await;
    for file in ["consentry.db", "keys.db", "consentry.db-wal", "keys.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(file)) else { continue };
        for needle in [signed, kept_id] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{file} keeps {needle}");
        }
    }
}

#[tokio::test]
async fn a_ledger_from_before_the_tree_gets_its_tree_when_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("tree").expect("id");
    {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        for _ in 0..11 {
            store.append(&s, vec![grant(), grant()]).await.expect("append");
        }
        store.close().await;
    }
    // The store as the previous version left it: events, and no tree.
    let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open the file");
    conn.execute_batch(
        "DROP TRIGGER tlog_nodes_no_delete; DELETE FROM tlog_nodes;
         CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
         BEGIN SELECT RAISE(ABORT, 'tree nodes are append-only'); END;",
    )
    .expect("drop the tree");
    drop(conn);
    let store = SqliteStore::open(dir.path(), None).await.expect("reopen");
    let (reference, stored) = crate::tree_roots(&store).await;
    assert_eq!(reference, stored, "the tree was built for the existing ledger");
    store.append(&s, vec![grant()]).await.expect("append after");
    let (reference, stored) = crate::tree_roots(&store).await;
    assert_eq!(reference, stored, "and grows from there");
    store.close().await;
}

/// `consent_state` as it was before stances (0028): one statement per subject, purpose and scope.
const CONSENT_STATE_BEFORE_STANCES: &str = "
    CREATE TABLE consent_state_before (pseudonym TEXT NOT NULL, purpose TEXT NOT NULL, scope TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES events (seq), at INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (pseudonym, purpose, scope)) STRICT, WITHOUT ROWID;
    INSERT INTO consent_state_before SELECT pseudonym, purpose, scope, seq, at FROM consent_state
        WHERE stance = '';
    DROP TABLE consent_state;
    ALTER TABLE consent_state_before RENAME TO consent_state;
    CREATE INDEX consent_state_by_seq ON consent_state (seq);";

/// An objection a later withdrawal of the same scope had replaced in the current state (before stances)
/// is back after the upgrade, beside the withdrawal; a subject whose state a link forgot stays without.
#[tokio::test]
async fn the_upgrade_to_stances_brings_back_replaced_objections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (s, gone) = (SubjectId::new("objector").expect("id"), SubjectId::new("gone").expect("id"));
    {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        store.append(&s, vec![marketing(Action::Object, false)]).await.expect("object");
        store.append(&s, vec![marketing(Action::Withdraw, false)]).await.expect("withdraw");
        store.append(&gone, vec![marketing(Action::Grant, false)]).await.expect("grant");
        store.close().await;
    }
    {
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
        // As the writers left it before: the withdrawal in the objection's place; `gone` linked away.
        conn.execute_batch(&format!(
            "{SQLITE_BEFORE_SLIM_RECEIPTS}
             {CONSENT_STATE_BEFORE_STANCES}
             UPDATE consent_state SET seq = 2 WHERE seq = 1;
             DELETE FROM consent_state WHERE seq = 3;
             ALTER TABLE outbox DROP COLUMN seq; ALTER TABLE outbox DROP COLUMN source;
             DROP TABLE engine_images;
             PRAGMA user_version = {};",
            // Before the consent stances (0028), the slim outbox (0029), the engine images (0030) and the
            // slim receipts (0031).
            SqliteStore::schema_version() - 4
        ))
        .expect("a state from before");
    }
    let store = SqliteStore::open(dir.path(), None).await.expect("upgrade");
    let current = store.current(&s).await.expect("current");
    assert_eq!(current.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Object, Action::Withdraw]);
    assert!(store.current(&gone).await.expect("current").is_empty());
    store.close().await;
}

/// A marketing change of `action`, by e-mail only or on every channel.
fn marketing(action: Action, email_only: bool) -> NewEvent {
    let channels = if email_only { vec!["email".to_owned()] } else { Vec::new() };
    NewEvent {
        action,
        purpose: "marketing".into(),
        scope: Scope::new(Vec::new(), channels, Vec::new()),
        ..grant()
    }
}

/// A ledger whose recorded times went backwards by position (a clock stepped back before writers clamped)
/// keeps the ledger's order after the upgrade to effective time: a live change takes effect at the latest
/// recorded time up to its position, the current state is rebuilt by that rule (bringing back a live change
/// that an older one with a later clock kept out), and a change made after the upgrade sorts after all.
#[tokio::test]
async fn a_clock_that_stepped_back_keeps_the_ledgers_order_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = SubjectId::new("clock").expect("id");
    {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        for change in [
            marketing(Action::Grant, true),
            marketing(Action::Withdraw, false),
            marketing(Action::Grant, true),
        ] {
            store.append(&s, vec![change]).await.expect("append");
        }
        store.close().await;
    }
    let now = Timestamp::now().micros();
    let hour = 3_600_000_000;
    let (fast, slow, mid) = (now + hour, now - hour, now - hour / 2);
    {
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
        // As the writers and the upgrade to effective time (0018) left it: the old grant's later clock kept
        // the newer grant out of the current state.
        conn.execute_batch(&format!(
            "{SQLITE_BEFORE_SLIM_RECEIPTS}
             {CONSENT_STATE_BEFORE_STANCES}
             DROP TRIGGER events_no_update;
             UPDATE events SET recorded_at = {fast} WHERE seq = 1;
             UPDATE events SET recorded_at = {slow} WHERE seq = 2;
             UPDATE events SET recorded_at = {mid} WHERE seq = 3;
             UPDATE consent_state SET seq = 1, at = {fast} WHERE seq = 3;
             UPDATE consent_state SET at = {slow} WHERE seq = 2;
             DROP TABLE ledger_floor; DROP TABLE subject_ages; DROP TABLE guardians;
             DROP TABLE household_devices; DROP TABLE household_members; DROP TABLE households;
             ALTER TABLE destinations DROP COLUMN origin; DROP INDEX deliveries_dead_by_subject;
             DROP TABLE event_evidence; DROP TABLE engine_images;
             ALTER TABLE outbox DROP COLUMN seq; ALTER TABLE outbox DROP COLUMN source;
             PRAGMA user_version = {};",
            // Before effective time (0022), the guardians' tables (0023), the outbox's reach (0024), the
            // households (0025), the coming of age (0026), the sealed evidence (0027), the consent stances
            // (0028), the slim outbox (0029), the engine images (0030) and the slim receipts (0031).
            SqliteStore::schema_version() - 10
        ))
        .expect("a ledger from before");
    }
    let store = SqliteStore::open(dir.path(), None).await.expect("upgrade");
    let current = store.current(&s).await.expect("current");
    let order: Vec<(u64, i64)> = current.iter().map(|e| (e.seq, e.effective_at().micros())).collect();
    assert_eq!(order, [(2, fast), (3, fast)], "the ledger's order: the grant by e-mail after the withdrawal");
    // A page of every subject's state (the engine's warm-up, the export) gives each statement the same
    // effective time.
    let page = store.current_page(0, 100).await.expect("page");
    let paged: Vec<(u64, i64)> = page.iter().map(|(_, e)| (e.seq, e.effective_at().micros())).collect();
    assert_eq!(paged, order, "the state's pages read live changes' effective times");
    let placed = store.append(&s, vec![marketing(Action::Withdraw, false)]).await.expect("append");
    assert!(placed[0].recorded_at.micros() >= fast, "never recorded before the ledger's latest time");
    let current = store.current(&s).await.expect("current");
    assert_eq!(current.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(current[1].order() > current[0].order());
    store.close().await;
}

/// The reads that walk the ledger a page at a time (an export, the engine's warm-up) share one bulk reader
/// with larger caches: several walks at once each get every page (those that find it busy read on the
/// pool), and once the store is closed none reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_of_the_ledger_at_once_each_get_every_page() {
    let (store, _dir) = make().await;
    for i in 0..30 {
        let s = SubjectId::new(format!("walker-{i:02}")).expect("id");
        store.append(&s, vec![grant()]).await.expect("append");
    }
    let walk = |store: Arc<dyn Store>| async move {
        let (mut after, mut seen) = (0, Vec::new());
        loop {
            let page = store.subject_events_page(after, 4).await.expect("page");
            let Some((_, last)) = page.last() else { break };
            after = last.seq;
            seen.extend(page.into_iter().map(|(s, e)| (s.expect("a subject").as_str().to_owned(), e.seq)));
            assert_eq!(store.current_page(0, 100).await.expect("state").len(), 30);
        }
        seen
    };
    let walks: Vec<_> = (0..4).map(|_| tokio::spawn(walk(Arc::clone(&store)))).collect();
    let expected: Vec<(String, u64)> = (0..30).map(|i| (format!("walker-{i:02}"), i + 1)).collect();
    for w in walks {
        assert_eq!(w.await.expect("walk"), expected);
    }
    store.close().await;
    assert!(matches!(store.subject_events_page(0, 4).await, Err(StoreError::Closed)));
}
