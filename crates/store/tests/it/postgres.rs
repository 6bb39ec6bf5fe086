//! The PostgreSQL store: the conformance suite, migrations, and several nodes appending to one chain.

use std::sync::Arc;

use consentry_core::ledger::ChainVerifier;
use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};
use consentry_store::postgres::PostgresStore;
use consentry_store::testing::TestDatabase;
use consentry_store::testing::downgrade::POSTGRES_BEFORE_SLIM_RECEIPTS;
use consentry_store::{
    AccessEntry, DeliveryOutcome, DestinationRecord, NewDestination, OutboxMessage, Sealed, Sealer, Store,
    StoreError,
};

async fn make() -> Option<(Arc<dyn Store>, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let store = PostgresStore::open(&db.url, 8, None).await.expect("open");
    Some((Arc::new(store), db))
}

mod conformance {
    consentry_store::conformance_suite!(super::make());
}

mod conformance_vault {
    consentry_store::conformance_vault_suite!(super::make());
}

fn grant() -> NewEvent {
    crate::change("analytics", Action::Grant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_refuse_a_newer_schema() {
    let Some(db) = TestDatabase::create().await else { return };
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("first"), PostgresStore::schema_version());
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("again"), PostgresStore::schema_version());
    {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
        store.close().await;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::query("INSERT INTO consentry_schema_migrations (version) VALUES (99)")
        .execute(&pool)
        .await
        .expect("bump");
    pool.close().await;
    let err = PostgresStore::open(&db.url, 2, None).await.expect_err("too new");
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_append_to_one_unbroken_chain_and_signal_each_other() {
    let Some(db) = TestDatabase::create().await else { return };
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node a"));
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node b"));
    let mut signals = b.change_signals().expect("postgres signals changes");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let s = SubjectId::new(format!("w{w}")).expect("id");
            for _ in 0..20 {
                node.append(&s, vec![grant(), grant()]).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = a.subject_events_page(after, 200).await.expect("page");
        let Some((_, last)) = page.last() else { break };
        after = last.seq;
        for (subject, e) in &page {
            assert!(subject.is_some(), "every event maps to its subject");
            assert!(verifier.push(e), "chain breaks at {:?}", verifier.first_break());
        }
    }
    assert_eq!(verifier.count(), 640);
    // B heard of the appends (its own and A's) through LISTEN/NOTIFY.
    tokio::time::timeout(std::time::Duration::from_secs(5), signals.wait_for(|s| *s >= 640))
        .await
        .expect("signal within 5 s")
        .expect("signal channel open");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_logging_and_appends_on_two_nodes_agree_on_new_pseudonyms() {
    let Some(db) = TestDatabase::create().await else { return };
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node a"));
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node b"));
    let subjects: Vec<SubjectId> =
        (0..40).map(|i| SubjectId::new(format!("race-{i}")).expect("id")).collect();
    let logger = {
        let (a, subjects) = (a.clone(), subjects.clone());
        tokio::spawn(async move {
            for chunk in subjects.chunks(4) {
                let entries = chunk
                    .iter()
                    .map(|s| AccessEntry {
                        subject: s.clone(),
                        at: Timestamp::now(),
                        caller: "key_crm".into(),
                        route: "/v1/subjects/{subject}".into(),
                        purpose: "analytics".into(),
                    })
                    .collect();
                a.log_access(entries).await.expect("log");
                let counts = chunk.iter().map(|s| (s.clone(), "analytics".to_owned(), 1, Timestamp::now()));
                a.add_check_counts(counts.collect()).await.expect("count");
            }
        })
    };
    let mut appends = Vec::new();
    for s in subjects.clone() {
        let b = b.clone();
        appends.push(tokio::spawn(async move { b.append(&s, vec![grant()]).await.expect("append") }));
    }
    logger.await.expect("logger");
    for (s, task) in subjects.iter().zip(appends) {
        let placed = task.await.expect("append task");
        assert_eq!(a.history(s, 0, 10).await.expect("history"), placed, "one pseudonym per subject");
        assert_eq!(a.access_log(s, None, 10).await.expect("log").len(), 1);
        assert_eq!(b.check_counts(s).await.expect("counts").len(), 1);
    }
    a.close().await;
    b.close().await;
}

fn destination(id: &str) -> NewDestination {
    NewDestination {
        record: DestinationRecord {
            id: id.into(),
            name: id.into(),
            kind: "webhook".into(),
            url: "https://example.com/hook".into(),
            target: None,
            event_types: vec!["*".into()],
            paused: false,
            flagged: false,
            created_at: Timestamp::now(),
        },
        secret: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_fan_out_and_claims_without_doing_anything_twice() {
    let Some(db) = TestDatabase::create().await else { return };
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node a"));
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node b"));
    a.create_destination(destination("d")).await.expect("create");
    // Both nodes append (with outbox messages) and enqueue, while both fan out.
    let mut writers = Vec::new();
    for w in 0..8 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            let s = SubjectId::new(format!("n{w}")).expect("id");
            for i in 0..10 {
                let seal: Sealer = Box::new(move |events: &[Event], _: &consentry_store::Wants<'_>| {
                    let payload = format!("{}", events[0].seq);
                    Ok(Sealed {
                        receipt: None,
                        outbox: vec![OutboxMessage {
                            event_type: "consent.granted".into(),
                            payload,
                            event: None,
                        }],
                        in_force: Vec::new(),
                    })
                });
                node.append_sealed(&s, vec![grant()], Some(seal)).await.expect("append");
                let m = OutboxMessage { event_type: "note".into(), payload: format!("{w}-{i}"), event: None };
                node.enqueue(&s, vec![m]).await.expect("enqueue");
            }
        }));
    }
    let fanners: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|node| {
            tokio::spawn(async move {
                let mut read = 0;
                for _ in 0..200 {
                    read += node.fan_out("d", &|_: &str| true, 7).await.expect("fan out");
                    tokio::task::yield_now().await;
                }
                read
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let mut read = 0;
    for f in fanners {
        read += f.await.expect("fan-out task");
    }
    loop {
        let n = a.fan_out("d", &|_: &str| true, 50).await.expect("fan out");
        if n == 0 {
            break;
        }
        read += n;
    }
    assert_eq!(read, 160, "every message read once across the nodes");
    let listed = a.deliveries("d", None, 0, 1000).await.expect("list");
    assert_eq!(listed.len(), 160);

    // Both nodes claim (each with several workers) until nothing is left; each delivery goes to one.
    let now = Timestamp::now();
    let mut claimers = Vec::new();
    for w in 0..6 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut idle = 0;
            while idle < 20 {
                let claimed =
                    node.claim_deliveries(now, std::time::Duration::from_secs(600), 5).await.expect("claim");
                if claimed.is_empty() {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                idle = 0;
                for c in claimed {
                    let done = DeliveryOutcome::Delivered { at: Timestamp::now() };
                    node.complete_delivery(&c.destination_id, c.outbox_id, done).await.expect("complete");
                    mine.push((c.subject, c.outbox_id, c.payload));
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.expect("claimer"));
    }
    assert_eq!(all.len(), 160, "each delivery claimed exactly once");
    all.sort_by_key(|(_, id, _)| *id);
    all.dedup_by_key(|(_, id, _)| *id);
    assert_eq!(all.len(), 160);
    // Outbox ids follow the ledger's order across both nodes.
    let seqs: Vec<u64> = all.iter().filter_map(|(_, _, p)| p.parse().ok()).collect();
    assert_eq!(seqs.len(), 80);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "outbox ids in ledger order");
    assert!(all.iter().all(|(s, _, _)| s.is_some()));
    a.close().await;
    b.close().await;
}

/// The outbox keeps only messages some destination wants, judged under the outbox lock: a destination
/// created on one node sees every message another node commits after the creation answered, even while
/// that node writes without pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destination_made_on_one_node_misses_nothing_another_commits_after() {
    let Some(db) = TestDatabase::create().await else { return };
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node a"));
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node b"));
    let created = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (b, created) = (b.clone(), Arc::clone(&created));
        writers.push(tokio::spawn(async move {
            let mut after = Vec::new();
            for i in 0..2000 {
                let started_after = created.load(std::sync::atomic::Ordering::SeqCst);
                let payload = format!("{w}-{i}");
                let s = SubjectId::new(format!("late-{w}-{i}")).expect("id");
                if i % 2 == 0 {
                    let p = payload.clone();
                    let seal: Sealer = Box::new(move |_: &[Event], _: &consentry_store::Wants<'_>| {
                        Ok(Sealed {
                            receipt: None,
                            outbox: vec![OutboxMessage::whole("consent.granted", p)],
                            in_force: Vec::new(),
                        })
                    });
                    b.append_sealed(&s, vec![grant()], Some(seal)).await.expect("append");
                } else {
                    let m = OutboxMessage::whole("subject.erased", payload.clone());
                    b.enqueue(&s, vec![m]).await.expect("enqueue");
                }
                if started_after {
                    after.push(payload);
                    if after.len() >= 20 {
                        break;
                    }
                }
            }
            after
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    a.create_destination(destination("late")).await.expect("create");
    created.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut after = Vec::new();
    for w in writers {
        after.extend(w.await.expect("writer"));
    }
    assert_eq!(after.len(), 80, "each writer went on after the creation");
    while a.fan_out("late", &|_: &str| true, 100).await.expect("fan out") > 0 {}
    let mut sent = std::collections::HashSet::new();
    loop {
        let claimed = a
            .claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(600), 100)
            .await
            .expect("claim");
        if claimed.is_empty() {
            break;
        }
        for c in claimed {
            let done = DeliveryOutcome::Delivered { at: Timestamp::now() };
            a.complete_delivery(&c.destination_id, c.outbox_id, done).await.expect("complete");
            sent.insert(c.payload);
        }
    }
    let missed: Vec<&String> = after.iter().filter(|p| !sent.contains(*p)).collect();
    assert!(missed.is_empty(), "committed after the creation answered but not stored: {missed:?}");
    a.close().await;
    b.close().await;
}

/// A database from before receipts were rebuilt (schema 9) upgrades: its receipts keep their rows, each
/// naming the catalogue in force when it was made, and their signed form (which named the person) and the
/// ids kept for erased subjects' messages are gone with their tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_drops_stored_receipts_and_kept_ids() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = SubjectId::new("olga").expect("id");
    {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
        store.append(&s, vec![grant()]).await.expect("append");
        store.close().await;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(&format!(
        "{POSTGRES_BEFORE_SLIM_RECEIPTS}
         {CONSENT_STATE_BEFORE_STANCES}
         DROP TABLE receipts;
         CREATE TABLE receipts (id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL,
             first_seq BIGINT NOT NULL REFERENCES events (seq), last_seq BIGINT NOT NULL REFERENCES events (seq),
             jws TEXT NOT NULL, created_at BIGINT NOT NULL);
         INSERT INTO catalogs (version, document, applied_at) VALUES (1, '{{}}', 10), (2, '{{}}', 20);
         INSERT INTO receipts SELECT 'rcpt_old', pseudonym, seq, seq, 'signed.olga.payload', 15 FROM events;
         CREATE TABLE consentry_keystore.erasure_notices (pseudonym TEXT PRIMARY KEY, subject TEXT NOT NULL,
             created_at BIGINT NOT NULL);
         INSERT INTO consentry_keystore.erasure_notices VALUES ('p', 'erased-kept-id', 1);
         DROP TABLE console_sessions, console_rollups, console_rollup_cursor, tlog_nodes, tlog_checkpoints;
         ALTER TABLE events DROP COLUMN evidence; DROP TABLE identifiers;
         DROP INDEX events_by_notice;
         ALTER TABLE events DROP COLUMN jurisdiction;
         ALTER TABLE devices DROP COLUMN last_seen; DROP TABLE verifications;
         ALTER TABLE events DROP COLUMN occurred_at; ALTER TABLE consent_state DROP COLUMN at;
         DROP TABLE imported; ALTER TABLE notices DROP COLUMN imported;
         DROP TABLE console_checks, delivery_attempts, consentry_keystore.subject_links, ledger_floor;
         DROP TABLE subject_ages, guardians;
         DROP TABLE household_devices, household_members, households, event_evidence, engine_images;
         DROP INDEX requests_by_received, requests_by_closed, requests_by_overdue;
         ALTER TABLE destinations DROP COLUMN origin; DROP INDEX deliveries_dead_by_subject;
         ALTER TABLE outbox DROP COLUMN seq, DROP COLUMN source;
         DELETE FROM consentry_schema_migrations WHERE version >= 10;",
    ))
    .execute(&pool)
    .await
    .expect("the previous schema");
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("upgrade"), PostgresStore::schema_version());
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'receipts' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert!(!columns.contains(&"jws".to_owned()), "{columns:?}");
    let notices: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('consentry_keystore.erasure_notices')::text")
            .fetch_one(&pool)
            .await
            .expect("regclass");
    assert_eq!(notices, None, "no id is kept for messages any more");
    pool.close().await;
    let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
    let receipt = store.receipt("rcpt_old").await.expect("read").expect("kept");
    assert_eq!(
        (receipt.subject, receipt.first_seq, receipt.catalog_version),
        (Some(s), 1, 1),
        "the catalogue in force when it was made"
    );
    store.close().await;
}

#[tokio::test]
async fn a_ledger_from_before_the_tree_gets_its_tree_when_opened() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = SubjectId::new("tree").expect("id");
    {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
        for _ in 0..11 {
            store.append(&s, vec![grant(), grant()]).await.expect("append");
        }
        store.close().await;
    }
    // The database as the previous version left it: events, and no tree.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(
        "ALTER TABLE tlog_nodes DISABLE TRIGGER tlog_nodes_append_only; DELETE FROM tlog_nodes;
         ALTER TABLE tlog_nodes ENABLE TRIGGER tlog_nodes_append_only;",
    )
    .execute(&pool)
    .await
    .expect("drop the tree");
    pool.close().await;
    let store = PostgresStore::open(&db.url, 2, None).await.expect("reopen");
    let (reference, stored) = crate::tree_roots(&store).await;
    assert_eq!(reference, stored, "the tree was built for the existing ledger");
    store.append(&s, vec![grant()]).await.expect("append after");
    let (reference, stored) = crate::tree_roots(&store).await;
    assert_eq!(reference, stored, "and grows from there");
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
    let Some(db) = TestDatabase::create().await else { return };
    let s = SubjectId::new("clock").expect("id");
    {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
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
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    // As the writers and the upgrade to effective time (0019) left it: the old grant's later clock kept
    // the newer grant out of the current state.
    sqlx::raw_sql(&format!(
        "{POSTGRES_BEFORE_SLIM_RECEIPTS}
         {CONSENT_STATE_BEFORE_STANCES}
         ALTER TABLE events DISABLE TRIGGER events_append_only;
         UPDATE events SET recorded_at = {fast} WHERE seq = 1;
         UPDATE events SET recorded_at = {slow} WHERE seq = 2;
         UPDATE events SET recorded_at = {mid} WHERE seq = 3;
         ALTER TABLE events ENABLE TRIGGER events_append_only;
         UPDATE consent_state SET seq = 1, at = {fast} WHERE seq = 3;
         UPDATE consent_state SET at = {slow} WHERE seq = 2;
         DROP TABLE ledger_floor, subject_ages, guardians;
         DROP TABLE household_devices, household_members, households, event_evidence, engine_images;
         ALTER TABLE destinations DROP COLUMN origin; DROP INDEX deliveries_dead_by_subject;
         ALTER TABLE outbox DROP COLUMN seq, DROP COLUMN source;
         DELETE FROM consentry_schema_migrations WHERE version >= {};",
        // Before effective time (0024), the guardians' tables (0025), the outbox's reach (0026), the
        // households (0027), the coming of age (0028), the sealed evidence (0029), the consent stances
        // (0030), the slim outbox (0031), the engine images (0032) and the slim receipts (0033).
        PostgresStore::schema_version() - 9
    ))
    .execute(&pool)
    .await
    .expect("a ledger from before");
    pool.close().await;
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("upgrade"), PostgresStore::schema_version());
    let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
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

/// `consent_state` as it was before stances (0030): one statement per subject, purpose and scope.
const CONSENT_STATE_BEFORE_STANCES: &str = "
    DELETE FROM consent_state WHERE stance <> '';
    ALTER TABLE consent_state DROP CONSTRAINT consent_state_pkey;
    ALTER TABLE consent_state DROP COLUMN stance;
    ALTER TABLE consent_state ADD PRIMARY KEY (pseudonym, purpose, scope);";

/// An objection a later withdrawal of the same scope had replaced in the current state (before stances)
/// is back after the upgrade, beside the withdrawal; a subject whose state a link forgot stays without.
#[tokio::test]
async fn the_upgrade_to_stances_brings_back_replaced_objections() {
    let Some(db) = TestDatabase::create().await else { return };
    let (s, gone) = (SubjectId::new("objector").expect("id"), SubjectId::new("gone").expect("id"));
    {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
        store.append(&s, vec![marketing(Action::Object, false)]).await.expect("object");
        store.append(&s, vec![marketing(Action::Withdraw, false)]).await.expect("withdraw");
        store.append(&gone, vec![marketing(Action::Grant, false)]).await.expect("grant");
        store.close().await;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    // As the writers left it before: the withdrawal in the objection's place; `gone` linked away.
    sqlx::raw_sql(&format!(
        "{POSTGRES_BEFORE_SLIM_RECEIPTS}
         {CONSENT_STATE_BEFORE_STANCES}
         UPDATE consent_state SET seq = 2 WHERE seq = 1;
         DELETE FROM consent_state WHERE seq = 3;
         ALTER TABLE outbox DROP COLUMN seq, DROP COLUMN source;
         DROP TABLE engine_images;
         DELETE FROM consentry_schema_migrations WHERE version >= {};",
        // Before the consent stances (0030), the slim outbox (0031), the engine images (0032) and the slim
        // receipts (0033).
        PostgresStore::schema_version() - 3
    ))
    .execute(&pool)
    .await
    .expect("a state from before");
    pool.close().await;
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("upgrade"), PostgresStore::schema_version());
    let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
    let current = store.current(&s).await.expect("current");
    assert_eq!(current.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Object, Action::Withdraw]);
    assert!(store.current(&gone).await.expect("current").is_empty());
    store.close().await;
}

/// The database went back (a failover to a replica behind it, a restore to a point in time) and lost node
/// A's last group, and node B wrote other events at those positions: A's next group builds on the ledger's
/// tree, not on the tree nodes of the lost group it still holds in memory, and what it proves is the
/// ledger's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_forgets_the_tree_nodes_of_a_group_the_database_lost() {
    let Some(db) = TestDatabase::create().await else { return };
    let a: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node a"));
    let kept = SubjectId::new("kept").expect("id");
    let lost = SubjectId::new("lost").expect("id");
    a.append(&kept, vec![grant(); 5]).await.expect("events 1 to 5");
    a.append(&lost, vec![grant(); 3]).await.expect("events 6 to 8, completing the subtree of 0 to 8");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         DELETE FROM consent_state WHERE seq > 5; DELETE FROM tlog_nodes WHERE ((idx + 1) << level) > 5;
         DELETE FROM events WHERE seq > 5;",
    )
    .execute(&pool)
    .await
    .expect("the database goes back to event 5");
    pool.close().await;
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(&db.url, 4, None).await.expect("node b"));
    b.append(&SubjectId::new("other").expect("id"), vec![grant(); 5]).await.expect("events 6 to 10 on b");
    // A's group completes the subtree of leaves 0 to 16, from the one of 0 to 8 (now B's events 6 to 8).
    a.append(&kept, vec![grant(); 6]).await.expect("events 11 to 16 on a");
    let (from_events, stored) = crate::tree_roots(a.as_ref()).await;
    assert_eq!(stored, from_events, "the stored tree is the events' tree");
    let ids = consentry_core::merkle::inclusion_nodes(7, 16);
    let mut proven = a.tlog_proof_nodes(&ids).await.expect("proof nodes");
    let mut at_rest = a.tlog_nodes(&ids).await.expect("stored nodes");
    proven.sort_unstable();
    at_rest.sort_unstable();
    assert_eq!(proven, at_rest, "a proof is made of the ledger's nodes");
    a.close().await;
    b.close().await;
}
