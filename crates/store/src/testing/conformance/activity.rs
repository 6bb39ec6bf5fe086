//! Conformance checks for what is logged per subject besides the ledger: the access log and check counts.

use std::sync::Arc;

use consentry_core::{Action, SubjectId, Timestamp};

use super::fixtures::{change, subject};
use crate::{AccessEntry, Store};

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
