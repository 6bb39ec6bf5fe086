//! Conformance checks for [`TokenStore`](crate::TokenStore), re-exported by
//! [`crate::testing::conformance`].

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::Store;

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + seconds * 1_000_000)
}

/// A revocation is kept per subject, only ever moves later, and is forgotten once older than asked.
pub async fn token_revocations_per_subject(store: Arc<dyn Store>) {
    let (alice, bob) = (subject("alice"), subject("bob"));
    let revoked = |s: SubjectId| {
        let store = store.clone();
        async move { store.subject_tokens_revoked_at(&s).await.unwrap_or_else(|e| panic!("read: {e}")) }
    };
    assert_eq!(revoked(alice.clone()).await, None, "never revoked (and no pseudonym yet)");
    let revoke = |s: &SubjectId, when: Timestamp, forget: Timestamp| {
        let (store, s) = (store.clone(), s.clone());
        async move { store.revoke_subject_tokens(&s, when, forget).await.unwrap_or_else(|e| panic!("{e}")) }
    };
    revoke(&alice, at(10), at(0)).await;
    assert_eq!(revoked(alice.clone()).await, Some(at(10)));
    assert_eq!(revoked(bob.clone()).await, None, "only alice's tokens");
    // An earlier time (a node whose clock lags) does not undo a later revocation; a later one moves it.
    revoke(&alice, at(5), at(0)).await;
    assert_eq!(revoked(alice.clone()).await, Some(at(10)));
    revoke(&alice, at(20), at(0)).await;
    assert_eq!(revoked(alice.clone()).await, Some(at(20)));
    // Revoking bob's tokens forgets revocations made before the given time, alice's among them.
    revoke(&bob, at(30), at(21)).await;
    assert_eq!(revoked(alice.clone()).await, None, "forgotten");
    assert_eq!(revoked(bob.clone()).await, Some(at(30)));
    revoke(&alice, at(40), at(30)).await;
    assert_eq!(revoked(bob).await, Some(at(30)), "not before the time given");
    assert_eq!(revoked(alice).await, Some(at(40)));
}

/// A link is spent once, on any number of concurrent attempts, and forgotten once it expired.
pub async fn links_are_spent_once(store: Arc<dyn Store>) {
    let spend = |jti: &'static str, expires: Timestamp, now: Timestamp| {
        let store = store.clone();
        async move { store.spend_link(jti, expires, now).await.unwrap_or_else(|e| panic!("spend: {e}")) }
    };
    assert!(spend("link-a", at(100), at(0)).await, "first use");
    assert!(!spend("link-a", at(100), at(1)).await, "second use");
    assert!(spend("link-b", at(100), at(1)).await, "another link");

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.spend_link("link-c", at(100), at(2)).await.unwrap_or_else(|e| panic!("spend: {e}"))
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    assert_eq!(won, 1, "exactly one concurrent spend wins");

    // Once link-a's time is over its entry goes (it could not verify any more anyway).
    assert!(!spend("link-a", at(100), at(100)).await, "kept until it expires");
    assert!(spend("link-d", at(300), at(101)).await);
    assert!(spend("link-a", at(200), at(101)).await, "forgotten after it expired");
}
