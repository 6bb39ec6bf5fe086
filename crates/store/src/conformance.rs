//! The conformance suite: behaviour every [`Store`] backend must show, written against the trait alone.
//!
//! A backend's tests call [`conformance_suite!`](crate::conformance_suite) with an async expression that
//! yields a fresh, empty store; the macro expands to one `#[tokio::test]` per check below.

use std::sync::Arc;

use consentry_core::catalog::{Catalog, CatalogDocument};
use consentry_core::ledger::{ChainVerifier, GENESIS_HASH};
use consentry_core::{Action, NewEvent, Scope, SubjectId, Timestamp};

use crate::{ApiKey, Store, StoreError};

/// Expands to one test per conformance check. `$make` is an async expression yielding
/// `Option<(Arc<dyn Store>, guard)>`: the guard lives until the test ends (a temp folder, a test database);
/// `None` skips the test (a service is unreachable and not required).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            initialise_once, api_keys, catalog_versions, append_and_history, current_state,
            concurrent_appends_keep_one_chain, pages);
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
