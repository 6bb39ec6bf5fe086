//! The conformance suite: behaviour every [`Store`] backend must show, written against the trait alone.
//!
//! A backend's tests call [`conformance_suite!`](crate::conformance_suite) with an async expression that
//! yields a fresh, empty store; the macro expands to one `#[tokio::test]` per check below.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use consentry_core::catalog::{Catalog, CatalogDocument};
use consentry_core::ledger::{ChainVerifier, GENESIS_HASH};
use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};

use crate::{AccessEntry, ApiKey, SealedReceipt, Sealer, SigningKeyRecord, Store, StoreError};

/// Expands to one test per conformance check. `$make` is an async expression yielding
/// `Option<(Arc<dyn Store>, guard)>`: the guard lives until the test ends (a temp folder, a test database);
/// `None` skips the test (a service is unreachable and not required).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            initialise_once, api_keys, catalog_versions, append_and_history, current_state,
            concurrent_appends_keep_one_chain, pages, receipts_commit_with_their_events,
            failing_sealer_fails_only_its_request, concurrent_sealed_appends, signing_key_rotation,
            checkpoints_idempotent_and_ordered, access_log_newest_first_with_pages, check_counts_add_up);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::conformance::$name(store.clone()).await;
                store.close().await;
            }
        )*
    };
}

fn key(name: &str, byte: u8) -> ApiKey {
    ApiKey {
        id: format!("key_{name}"),
        name: name.into(),
        scopes: vec!["check".into(), "consent:write".into()],
        secret_hash: [byte; 32],
        created_at: Timestamp::now(),
        revoked_at: None,
    }
}

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn change(purpose: &str, action: Action, channels: &[&str]) -> NewEvent {
    NewEvent {
        purpose: purpose.into(),
        action,
        scope: Scope::new(vec![], channels.iter().map(|c| (*c).to_owned()).collect(), vec![]),
        notice: Some(purpose.into()),
        notice_version: Some(1),
        notice_hash: Some("ab".repeat(32)),
        collection_point: Some("web-signup".into()),
        actor: "key:test".into(),
        expires_at: None,
    }
}

/// What the test sealers sign: the seqs and the last hash of the events they were given.
fn seal_text(events: &[Event]) -> String {
    match (events.first(), events.last()) {
        (Some(first), Some(last)) => format!("{}..{}:{}", first.seq, last.seq, last.hash),
        _ => "empty".into(),
    }
}

fn sealer(id: &str) -> Sealer {
    let id = id.to_owned();
    Box::new(move |events: &[Event]| Ok(SealedReceipt { id, jws: seal_text(events) }))
}

fn failing_sealer() -> Sealer {
    Box::new(|_: &[Event]| Err("no signing key".to_owned()))
}

/// Every ledger event, checked as one chain; returns them.
async fn verified_chain(store: &Arc<dyn Store>) -> Vec<Event> {
    let mut verifier = ChainVerifier::new();
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_page(after, 100).await.expect("page");
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert!(verifier.push(e), "chain breaks at {:?}", verifier.first_break());
        }
        after = page.last().map_or(after, |e| e.seq);
        all.extend(page);
    }
    assert_eq!(store.ledger_head().await.expect("head").head, verifier.head());
    all
}

pub async fn initialise_once(store: Arc<dyn Store>) {
    assert!(store.initialise(key("admin", 1)).await.expect("initialise"));
    assert!(!store.initialise(key("admin2", 2)).await.expect("second initialise"));
    let keys = store.api_keys().await.expect("list");
    assert_eq!(keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["admin"]);
}

pub async fn api_keys(store: Arc<dyn Store>) {
    store.insert_api_key(key("crm", 1)).await.expect("insert");
    store.insert_api_key(key("web", 2)).await.expect("insert");
    assert!(matches!(store.insert_api_key(key("crm", 3)).await, Err(StoreError::Conflict(_))));
    let found = store.api_key_by_hash(&[1; 32]).await.expect("lookup").expect("present");
    assert_eq!((found.name.as_str(), found.scopes.len()), ("crm", 2));
    assert!(store.api_key_by_hash(&[9; 32]).await.expect("lookup").is_none());

    assert!(store.revoke_api_key("key_crm", Timestamp::now()).await.expect("revoke"));
    assert!(!store.revoke_api_key("key_crm", Timestamp::now()).await.expect("revoke twice"));
    assert!(
        store.api_key_by_hash(&[1; 32]).await.expect("lookup").is_none(),
        "revoked keys do not authenticate"
    );
    let names: Vec<String> = store.api_keys().await.expect("list").into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["web"]);
    // A revoked key's name can be used again.
    let mut again = key("crm", 4);
    again.id = "key_crm2".into();
    store.insert_api_key(again).await.expect("reuse name");
}

pub async fn catalog_versions(store: Arc<dyn Store>) {
    assert!(store.catalog().await.expect("read").is_none());
    let doc = CatalogDocument::default_catalog();
    Catalog::validate(doc.clone()).expect("default catalogue is valid");
    let first = store.apply_catalog(&doc).await.expect("apply");
    assert_eq!(first.version, 1);
    assert_eq!(first.document, doc);
    assert_eq!(first.notices.len(), doc.notices.len());
    assert!(first.notices.iter().all(|n| n.version == 1 && n.sha256.len() == 64));

    // Identical text keeps the version; changed text gets the next one.
    let mut changed = doc.clone();
    changed.notices[0].text.push_str(" Updated.");
    let second = store.apply_catalog(&changed).await.expect("apply");
    assert_eq!(second.version, 2);
    let key = &changed.notices[0].key;
    let v = |c: &crate::StoredCatalog, k: &str| c.notices.iter().find(|n| n.key == k).map(|n| n.version);
    assert_eq!(v(&second, key), Some(2));
    assert_eq!(v(&second, &changed.notices[1].key), Some(1));
    let third = store.apply_catalog(&changed).await.expect("apply");
    assert_eq!((third.version, v(&third, key)), (3, Some(2)));

    let old = store.notice_version(key, 1).await.expect("read").expect("kept");
    assert_eq!(old.text, doc.notices[0].text);
    assert!(store.notice_version(key, 9).await.expect("read").is_none());
    assert_eq!(store.catalog().await.expect("read").map(|c| c.version), Some(3));
}

pub async fn append_and_history(store: Arc<dyn Store>) {
    let alice = subject("alice");
    let placed = store
        .append(
            &alice,
            vec![
                change("marketing.direct", Action::Grant, &["email"]),
                change("analytics", Action::Grant, &[]),
            ],
        )
        .await
        .expect("append");
    assert_eq!(placed.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(placed[0].prev_hash, GENESIS_HASH);
    assert_eq!(placed[1].prev_hash, placed[0].hash);
    assert_eq!(placed[0].pseudonym, placed[1].pseudonym);
    assert_ne!(placed[0].pseudonym, "alice", "the ledger holds a pseudonym, not the subject id");

    let bob =
        store.append(&subject("bob"), vec![change("analytics", Action::Deny, &[])]).await.expect("append");
    assert_ne!(bob[0].pseudonym, placed[0].pseudonym);
    let more = store.append(&alice, vec![change("analytics", Action::Withdraw, &[])]).await.expect("append");
    assert_eq!(more[0].pseudonym, placed[0].pseudonym, "a subject keeps its pseudonym");

    let history = store.history(&alice, 0, 100).await.expect("history");
    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 4]);
    assert_eq!(history[0], placed[0]);
    assert_eq!(store.history(&alice, 2, 100).await.expect("history").len(), 1);
    assert_eq!(store.history(&alice, 0, 1).await.expect("history").len(), 1);
    assert!(store.history(&subject("nobody"), 0, 100).await.expect("history").is_empty());

    let head = store.ledger_head().await.expect("head");
    assert_eq!((head.events, head.head.as_str()), (4, more[0].hash.as_str()));
}

pub async fn current_state(store: Arc<dyn Store>) {
    let s = subject("carol");
    store
        .append(&s, vec![change("marketing.direct", Action::Grant, &["email", "sms"])])
        .await
        .expect("append");
    store.append(&s, vec![change("marketing.direct", Action::Withdraw, &["sms"])]).await.expect("append");
    store
        .append(&s, vec![change("marketing.direct", Action::Grant, &["sms", "email"])])
        .await
        .expect("append");
    let current = store.current(&s).await.expect("current");
    // Latest per purpose and exact scope: the re-grant replaced the first grant; the sms withdraw stays.
    let summary: Vec<(u64, Action)> = current.iter().map(|e| (e.seq, e.action)).collect();
    assert_eq!(summary, [(2, Action::Withdraw), (3, Action::Grant)]);
    assert!(store.current(&subject("nobody")).await.expect("current").is_empty());
}

pub async fn concurrent_appends_keep_one_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject(&format!("writer-{w}"));
            for i in 0..20 {
                let action = if i % 2 == 0 { Action::Grant } else { Action::Withdraw };
                store.append(&s, vec![change("analytics", action, &[])]).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.events_page(after, 100).await.expect("page");
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert!(verifier.push(e), "chain breaks at {:?}", verifier.first_break());
        }
        after = page.last().map_or(after, |e| e.seq);
    }
    assert_eq!(verifier.count(), 640);
    assert_eq!(store.ledger_head().await.expect("head").head, verifier.head());
}

pub async fn pages(store: Arc<dyn Store>) {
    for i in 0..30 {
        store
            .append(&subject(&format!("p-{i}")), vec![change("analytics", Action::Grant, &[])])
            .await
            .expect("append");
    }
    store.append(&subject("p-0"), vec![change("analytics", Action::Withdraw, &[])]).await.expect("append");
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.current_page(after, 7).await.expect("page");
        if page.is_empty() {
            break;
        }
        after = page.last().map_or(after, |(_, e)| e.seq);
        seen.extend(page);
    }
    // p-0's grant was replaced by its withdraw (same purpose, same scope).
    assert_eq!(seen.len(), 30);
    let p0: Vec<_> = seen.iter().filter(|(s, _)| s.as_str() == "p-0").collect();
    assert_eq!(p0.len(), 1);
    assert_eq!(p0[0].1.action, Action::Withdraw);
    assert_eq!(store.events_page(25, 100).await.expect("page").len(), 6);
}

pub async fn receipts_commit_with_their_events(store: Arc<dyn Store>) {
    let alice = subject("alice");
    let (events, receipt) = store
        .append_sealed(
            &alice,
            vec![
                change("marketing.direct", Action::Grant, &["email"]),
                change("analytics", Action::Grant, &[]),
            ],
            Some(sealer("rcpt_1")),
        )
        .await
        .expect("sealed append");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    let receipt = receipt.expect("a sealer gives a receipt");
    assert_eq!(
        receipt,
        SealedReceipt { id: "rcpt_1".into(), jws: seal_text(&events) },
        "sealed the placed events"
    );
    let stored = store.receipt("rcpt_1").await.expect("read").expect("stored with its events");
    assert_eq!((stored.id.as_str(), stored.jws.as_str()), ("rcpt_1", receipt.jws.as_str()));
    assert_eq!(stored.subject, Some(alice.clone()));
    assert_eq!(store.history(&alice, 0, 10).await.expect("history"), events);

    // Without a sealer: events, no receipt; `append` is the same.
    let (plain, none) = store
        .append_sealed(&alice, vec![change("analytics", Action::Withdraw, &[])], None)
        .await
        .expect("append");
    assert_eq!((plain[0].seq, none), (3, None));
    assert_eq!(
        store.append(&alice, vec![change("analytics", Action::Grant, &[])]).await.expect("append")[0].seq,
        4
    );

    // No events: the sealer is not called and nothing is stored.
    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    let seal: Sealer = Box::new(move |_: &[Event]| {
        flag.store(true, Ordering::SeqCst);
        Ok(SealedReceipt { id: "rcpt_empty".into(), jws: "x".into() })
    });
    let (none, receipt) = store.append_sealed(&alice, vec![], Some(seal)).await.expect("empty append");
    assert!(none.is_empty() && receipt.is_none() && !called.load(Ordering::SeqCst));
    assert!(store.receipt("rcpt_empty").await.expect("read").is_none());
    assert!(store.receipt("rcpt_unknown").await.expect("read").is_none());
}

pub async fn failing_sealer_fails_only_its_request(store: Arc<dyn Store>) {
    let s = subject("frank");
    let grant = || vec![change("analytics", Action::Grant, &[])];
    store.append_sealed(&s, grant(), Some(sealer("ok_1"))).await.expect("sealed append");
    let err = store.append_sealed(&s, grant(), Some(failing_sealer())).await.expect_err("sealer fails");
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    let panicking: Sealer = Box::new(|_: &[Event]| panic!("sealer bug"));
    let err = store.append_sealed(&s, grant(), Some(panicking)).await.expect_err("sealer panics");
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    let (next, _) = store.append_sealed(&s, grant(), Some(sealer("ok_2"))).await.expect("store still works");
    assert_eq!(next[0].seq, 2, "a failed request leaves no gap");

    // Failing and succeeding requests committed together (in the same groups, most likely).
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject(&format!("sealer-{w}"));
            let mut outcomes = Vec::new();
            for i in 0..12 {
                let id = format!("rcpt_{w}_{i}");
                let fails = (w + i) % 3 == 0;
                let seal = if fails { failing_sealer() } else { sealer(&id) };
                let events = vec![change("analytics", Action::Grant, &[]), change("ads", Action::Deny, &[])];
                let result = store.append_sealed(&s, events, Some(seal)).await;
                outcomes.push((id, fails, result));
            }
            outcomes
        }));
    }
    let mut committed = 2;
    for t in tasks {
        for (id, fails, result) in t.await.expect("task") {
            let stored = store.receipt(&id).await.expect("read");
            if fails {
                assert!(matches!(result, Err(StoreError::Backend(_))), "{id}: {result:?}");
                assert!(stored.is_none(), "{id}: no receipt without its events");
            } else {
                let (events, receipt) = result.expect("others commit");
                let stored = stored.expect("receipt stored with its events");
                assert_eq!(Some(stored.jws), receipt.map(|r| r.jws));
                committed += events.len();
            }
        }
    }
    let chain = verified_chain(&store).await;
    assert_eq!(chain.len(), committed, "exactly the successful requests' events, gapless");
}

pub async fn concurrent_sealed_appends(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject(&format!("sealed-{w}"));
            let mut sealed = Vec::new();
            for i in 0..10 {
                let id = format!("rcpt_{w}_{i}");
                let events = vec![change("analytics", Action::Grant, &[]), change("ads", Action::Grant, &[])];
                let (events, receipt) =
                    store.append_sealed(&s, events, Some(sealer(&id))).await.expect("sealed append");
                assert_eq!(receipt.as_ref().map(|r| r.jws.clone()), Some(seal_text(&events)));
                sealed.push((s.clone(), id, events));
            }
            sealed
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let chain = verified_chain(&store).await;
    assert_eq!(chain.len(), 640);
    for (s, id, events) in all {
        let stored = store.receipt(&id).await.expect("read").expect("stored");
        assert_eq!((stored.subject, stored.jws), (Some(s), seal_text(&events)));
        for e in &events {
            assert_eq!(&chain[e.seq as usize - 1], e, "the receipt names the committed events");
        }
    }
}

pub async fn signing_key_rotation(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.expect("list").is_empty());
    let key = |kid: &str, byte: u8, at: i64| SigningKeyRecord {
        kid: kid.into(),
        secret: [byte; 32],
        public: [byte + 100; 32],
        created_at: Timestamp::from_micros(at),
        current: false,
    };
    store.add_signing_key(key("k1", 1, 1_000)).await.expect("add");
    let keys = store.signing_keys().await.expect("list");
    assert_eq!(keys, [SigningKeyRecord { current: true, ..key("k1", 1, 1_000) }]);

    store.add_signing_key(key("k2", 2, 2_000)).await.expect("rotate");
    assert!(matches!(store.add_signing_key(key("k1", 3, 3_000)).await, Err(StoreError::Conflict(_))));
    let keys = store.signing_keys().await.expect("list");
    assert_eq!(
        keys,
        [
            SigningKeyRecord { current: false, ..key("k1", 1, 1_000) },
            SigningKeyRecord { current: true, ..key("k2", 2, 2_000) }
        ],
        "oldest first, the newest current, the old one kept"
    );
    let shown = format!("{:?}", keys[0]);
    assert!(shown.contains("k1") && !shown.contains("1, 1, 1"), "Debug hides the secret: {shown}");
}

pub async fn checkpoints_idempotent_and_ordered(store: Arc<dyn Store>) {
    assert!(store.checkpoints().await.expect("list").is_empty());
    store.insert_checkpoint(20, "hash20", "jws20").await.expect("insert");
    store.insert_checkpoint(10, "hash10", "jws10").await.expect("insert");
    store.insert_checkpoint(10, "other", "other").await.expect("again");
    let found: Vec<_> =
        store.checkpoints().await.expect("list").into_iter().map(|c| (c.events, c.head, c.jws)).collect();
    assert_eq!(found, [(10, "hash10".into(), "jws10".into()), (20, "hash20".into(), "jws20".into())]);
}

pub async fn access_log_newest_first_with_pages(store: Arc<dyn Store>) {
    let (alice, bob) = (subject("alice"), subject("bob"));
    let entry = |s: &SubjectId, i: i64| AccessEntry {
        subject: s.clone(),
        at: Timestamp::from_micros(1_000_000 + i),
        caller: format!("key_{}", i % 3),
        route: "/v1/subjects/{subject}/consents".into(),
        purpose: if i % 2 == 0 { "analytics".into() } else { "ads".into() },
    };
    for chunk in 0..5 {
        let entries = (0..5).flat_map(|i| [entry(&alice, chunk * 5 + i), entry(&bob, 100 + chunk * 5 + i)]);
        store.log_access(entries.collect()).await.expect("log");
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.access_log(&alice, before, 7).await.expect("page");
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let times: Vec<i64> = seen.iter().map(|r| r.at.micros() - 1_000_000).collect();
    assert_eq!(times, (0..25).rev().collect::<Vec<_>>());
    let newest = &seen[0];
    assert_eq!((newest.caller.as_str(), newest.purpose.as_str()), ("key_0", "analytics"));
    assert_eq!(newest.route, "/v1/subjects/{subject}/consents");
    assert_eq!(store.access_log(&bob, None, 100).await.expect("bob").len(), 25);
    assert!(store.access_log(&subject("nobody"), None, 10).await.expect("none").is_empty());

    // A subject logged before any consent gets a pseudonym that its later events share.
    let dave = subject("dave");
    store.log_access(vec![entry(&dave, 1)]).await.expect("log");
    store.append(&dave, vec![change("analytics", Action::Grant, &[])]).await.expect("append");
    store.log_access(vec![entry(&dave, 2)]).await.expect("log");
    let dave_log = store.access_log(&dave, None, 10).await.expect("dave");
    assert_eq!(dave_log.iter().map(|r| r.at.micros() - 1_000_000).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(store.history(&dave, 0, 10).await.expect("history").len(), 1);
    store.log_access(vec![]).await.expect("nothing to log");
}

pub async fn check_counts_add_up(store: Arc<dyn Store>) {
    let (alice, bob) = (subject("alice"), subject("bob"));
    let t = Timestamp::from_micros;
    store
        .add_check_counts(vec![
            (alice.clone(), "analytics".into(), 3, t(10)),
            (alice.clone(), "ads".into(), 1, t(20)),
            (alice.clone(), "analytics".into(), 2, t(30)),
            (bob.clone(), "analytics".into(), 7, t(5)),
        ])
        .await
        .expect("add");
    store.add_check_counts(vec![(alice.clone(), "analytics".into(), 5, t(1))]).await.expect("add older");
    assert_eq!(
        store.check_counts(&alice).await.expect("read"),
        [("ads".into(), 1, t(20)), ("analytics".into(), 10, t(30))]
    );
    assert_eq!(store.check_counts(&bob).await.expect("read"), [("analytics".into(), 7, t(5))]);
    assert!(store.check_counts(&subject("nobody")).await.expect("read").is_empty());

    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let bob = bob.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let at = t(100 + w * 10 + i);
                store.add_check_counts(vec![(bob.clone(), "ads".into(), 1, at)]).await.expect("add");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(
        store.check_counts(&bob).await.expect("read"),
        [("ads".into(), 80, t(179)), ("analytics".into(), 7, t(5))]
    );
}
