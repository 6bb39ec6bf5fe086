//! The upgrade to slim receipts (SQLite 0031, PostgreSQL 0033) on both backends: a store whose events kept
//! `prev_hash`, whose receipts kept their pseudonym and key id and whose tree kept its leaves reads back,
//! once migrated, the same events, receipts, subjects' receipts and tree, and no longer stores what the
//! ledger gives.

use crate::change;
use consentry_core::merkle::{Frontier, leaf_hash};
use consentry_core::{Action, Event, SubjectId, Timestamp};
use consentry_store::postgres::PostgresStore;
use consentry_store::sqlite::SqliteStore;
use consentry_store::testing::TestDatabase;
use consentry_store::testing::downgrade::{POSTGRES_BEFORE_SLIM_RECEIPTS, SQLITE_BEFORE_SLIM_RECEIPTS};
use consentry_store::{Sealed, SealedReceipt, Sealer, Store, StoredReceipt};

/// A receipt id of the form the service makes (kept as its bytes on SQLite); the others are older forms.
const BEN: &str = "rcpt_0123456789abcdef0123456789abcdef";

fn sealer(id: &'static str, kid: &'static str) -> Sealer {
    Box::new(move |_: &[Event], _: &consentry_store::Wants<'_>| {
        let receipt =
            SealedReceipt { id: id.into(), catalog_version: 1, issued_at: Timestamp::now(), kid: kid.into() };
        Ok(Sealed { receipt: Some(receipt), outbox: Vec::new(), in_force: Vec::new() })
    })
}

fn subjects() -> (SubjectId, SubjectId) {
    (SubjectId::new("ada").expect("id"), SubjectId::new("ben").expect("id"))
}

/// Receipts over one and over two events, of two subjects, signed by two keys; an event without one.
async fn fill(store: &dyn Store) {
    let (ada, ben) = subjects();
    let two = vec![change("analytics", Action::Grant), change("marketing", Action::Grant)];
    store.append_sealed(&ada, two, Some(sealer("rcpt_ada_1", "kid-1"))).await.expect("append");
    store
        .append_sealed(&ben, vec![change("analytics", Action::Grant)], Some(sealer(BEN, "kid-2")))
        .await
        .expect("append");
    store.append(&ben, vec![change("marketing", Action::Object)]).await.expect("append");
    store
        .append_sealed(&ada, vec![change("analytics", Action::Withdraw)], Some(sealer("rcpt_ada_2", "kid-1")))
        .await
        .expect("append");
}

/// What a reader sees: every event, each receipt by id, each subject's receipts (all and the newest).
type Seen = (Vec<Event>, Vec<Option<StoredReceipt>>, Vec<Vec<StoredReceipt>>);

/// What a migrated store must give: the same events and receipts, the same tree, and a chain that goes on
/// from the last event. Closes the store.
async fn reads_as_before(store: &dyn Store, before: &Seen) {
    assert_eq!(&seen(store).await, before, "the same events and receipts");
    let (reference, stored) = crate::tree_roots(store).await;
    assert_eq!(reference, stored, "the same tree");
    let next =
        store.append(&subjects().1, vec![change("analytics", Action::Withdraw)]).await.expect("append");
    assert_eq!(next[0].prev_hash, before.0[4].hash, "the chain goes on");
    store.close().await;
}

async fn seen(store: &dyn Store) -> Seen {
    let (ada, ben) = subjects();
    let events = store.events_page(0, 100).await.expect("events");
    let mut receipts = Vec::new();
    for id in ["rcpt_ada_1", BEN, "rcpt_ada_2", "rcpt_none"] {
        receipts.push(store.receipt(id).await.expect("receipt"));
    }
    let mut held = Vec::new();
    for s in [&ada, &ben] {
        held.push(store.subject_receipts(s).await.expect("receipts"));
        held.push(store.recent_receipts(s, 1).await.expect("receipts"));
    }
    (events, receipts, held)
}

/// Every node of the tree of `events`, leaves included, as builds before 0031/0033 stored them:
/// `(level, idx, hash)`.
fn old_tree(events: &[Event]) -> Vec<(i64, i64, Vec<u8>)> {
    let (mut tree, mut nodes) = (Frontier::empty(), Vec::new());
    for e in events {
        tree.append(leaf_hash(&e.canonical_bytes()), &mut nodes);
    }
    assert!(nodes.iter().any(|(id, _)| id.level == 0) && nodes.iter().any(|(id, _)| id.level > 0));
    nodes.into_iter().map(|(id, h)| (i64::from(id.level), id.index as i64, h.to_vec())).collect()
}

fn check_seen(before: &Seen) {
    let (events, receipts, held) = before;
    assert_eq!(events.len(), 5);
    assert_eq!(events[1].prev_hash, events[0].hash, "the chain reads back whole");
    let ids: Vec<Vec<&str>> = held.iter().map(|r| r.iter().map(|r| r.id.as_str()).collect()).collect();
    assert_eq!(ids, [vec!["rcpt_ada_1", "rcpt_ada_2"], vec!["rcpt_ada_2"], vec![BEN], vec![BEN]]);
    let ada_1 = receipts[0].as_ref().expect("kept");
    assert_eq!((ada_1.first_seq, ada_1.last_seq, ada_1.kid.as_deref()), (1, 2, Some("kid-1")));
    assert_eq!(ada_1.subject, Some(subjects().0));
    assert_eq!(receipts[1].as_ref().and_then(|r| r.kid.as_deref()), Some("kid-2"));
    assert_eq!(receipts[3], None);
}

#[tokio::test]
async fn sqlite_receipts_and_events_read_back_the_same_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = {
        let store = SqliteStore::open(dir.path(), None).await.expect("open");
        fill(&store).await;
        let before = seen(&store).await;
        store.close().await;
        before
    };
    check_seen(&before);
    {
        let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
        conn.execute_batch(&format!(
            "{SQLITE_BEFORE_SLIM_RECEIPTS} PRAGMA user_version = {};",
            SqliteStore::schema_version() - 1
        ))
        .expect("the schema before");
        // Old-shaped rows: the chain's links and the receipts' subjects and keys written out.
        let prev: Vec<String> = conn
            .prepare("SELECT prev_hash FROM events ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("prev_hash");
        assert_eq!(prev, before.0.iter().map(|e| e.prev_hash.clone()).collect::<Vec<_>>());
        let (pseudonym, kid): (String, String) = conn
            .query_row(
                "SELECT pseudonym, kid FROM receipts WHERE id = 'rcpt_0123456789abcdef0123456789abcdef'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("an old receipt row");
        assert_eq!((pseudonym.as_str(), kid.as_str()), (before.0[2].pseudonym.as_str(), "kid-2"));
        for (level, idx, hash) in old_tree(&before.0) {
            conn.execute("INSERT INTO tlog_nodes (level, idx, hash) VALUES (?1, ?2, ?3)", (level, idx, hash))
                .expect("a tree node");
        }
    }
    let store = SqliteStore::open(dir.path(), None).await.expect("upgrade");
    reads_as_before(&store, &before).await;
    let conn = rusqlite::Connection::open(dir.path().join("consentry.db")).expect("open data");
    let columns = |table: &str| -> Vec<String> {
        conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("columns")
    };
    assert!(!columns("events").contains(&"prev_hash".to_owned()));
    assert!(!columns("receipts").contains(&"pseudonym".to_owned()));
    let leaves: i64 =
        conn.query_row("SELECT COUNT(*) FROM tlog_nodes WHERE level = 0", [], |r| r.get(0)).expect("count");
    assert_eq!(leaves, 0, "no leaf is stored");
    let kinds: Vec<String> = conn
        .prepare("SELECT typeof(id) FROM receipts ORDER BY first_seq")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("ids");
    assert_eq!(kinds, ["text", "blob", "text"], "an id of the service's form is kept as its bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_receipts_and_events_read_back_the_same_after_the_upgrade() {
    let Some(db) = TestDatabase::create().await else { return };
    let before = {
        let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
        fill(&store).await;
        let before = seen(&store).await;
        store.close().await;
        before
    };
    check_seen(&before);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(&format!(
        "{POSTGRES_BEFORE_SLIM_RECEIPTS} DELETE FROM consentry_schema_migrations WHERE version >= {};",
        PostgresStore::schema_version()
    ))
    .execute(&pool)
    .await
    .expect("the schema before");
    let prev: Vec<String> = sqlx::query_scalar("SELECT prev_hash FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("prev_hash");
    assert_eq!(prev, before.0.iter().map(|e| e.prev_hash.clone()).collect::<Vec<_>>());
    let (pseudonym, kid): (String, String) = sqlx::query_as(
        "SELECT pseudonym, kid FROM receipts WHERE id = 'rcpt_0123456789abcdef0123456789abcdef'",
    )
    .fetch_one(&pool)
    .await
    .expect("an old receipt row");
    assert_eq!((pseudonym.as_str(), kid.as_str()), (before.0[2].pseudonym.as_str(), "kid-2"));
    for (level, idx, hash) in old_tree(&before.0) {
        sqlx::query("INSERT INTO tlog_nodes (level, idx, hash) VALUES ($1, $2, $3)")
            .bind(level as i16)
            .bind(idx)
            .bind(hash)
            .execute(&pool)
            .await
            .expect("a tree node");
    }
    assert_eq!(PostgresStore::migrate_only(&db.url).await.expect("upgrade"), PostgresStore::schema_version());
    let columns = |table: &'static str| {
        sqlx::query_scalar::<_, String>(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1",
        )
        .bind(table)
        .fetch_all(&pool)
    };
    assert!(!columns("events").await.expect("columns").contains(&"prev_hash".to_owned()));
    assert!(!columns("receipts").await.expect("columns").contains(&"pseudonym".to_owned()));
    let leaves: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tlog_nodes WHERE level = 0")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(leaves, 0, "no leaf is stored");
    pool.close().await;
    let store = PostgresStore::open(&db.url, 2, None).await.expect("open");
    reads_as_before(&store, &before).await;
}
