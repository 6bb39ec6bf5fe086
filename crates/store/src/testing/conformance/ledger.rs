//! Conformance checks for the ledger: appends and their chain, current state, pages, receipts sealed with
//! their events, checkpoints, expiries and the leases of singleton jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use consentry_core::ledger::{ChainVerifier, GENESIS_HASH};
use consentry_core::{Action, Event, Timestamp};

use super::fixtures::{
    SEALED_AT, SEALED_CATALOG, change, failing_sealer, seal_text, sealed_receipt, sealer, subject,
    verified_chain,
};
use crate::{Sealed, SealedReceipt, Sealer, Store, StoreError};

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
    let seqs = |events: Vec<Event>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.history_newest(&alice, None, 100).await.expect("newest")), [4, 2, 1]);
    assert_eq!(seqs(store.history_newest(&alice, None, 2).await.expect("newest")), [4, 2]);
    assert_eq!(seqs(store.history_newest(&alice, Some(2), 2).await.expect("older")), [1]);
    assert!(store.history_newest(&subject("nobody"), None, 10).await.expect("newest").is_empty());

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
    // An export's first line of a subject: p-0's first event is its grant (seq 1), its first statement
    // in force the withdrawal (seq 31); an unknown pseudonym has none, and nothing was recorded later on.
    let p0 = p0[0].1.pseudonym.clone();
    let asked = vec![p0.clone(), "no-such-pseudonym".to_owned()];
    let zero = Timestamp::from_micros(0);
    assert_eq!(store.first_lines(asked.clone(), zero, true).await.expect("first"), [(p0.clone(), 1)]);
    assert_eq!(store.first_lines(asked.clone(), zero, false).await.expect("first"), [(p0, 31)]);
    let later = Timestamp::from_micros(i64::MAX);
    assert_eq!(store.first_lines(asked, later, true).await.expect("first"), []);
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
    assert_eq!(receipt, sealed_receipt("rcpt_1".into(), &events), "sealed the placed events");
    let stored = store.receipt("rcpt_1").await.expect("read").expect("stored with its events");
    assert_eq!(
        (stored.id.as_str(), stored.first_seq, stored.last_seq, stored.catalog_version, stored.created_at),
        ("rcpt_1", 1, 2, SEALED_CATALOG, SEALED_AT),
        "what builds the receipt again, never its signed form"
    );
    assert_eq!(stored.kid.as_deref(), Some("kid-1"), "signed again with the key that signed it");
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
    let seal: Sealer = Box::new(move |_: &[Event], _: &crate::Wants<'_>| {
        flag.store(true, Ordering::SeqCst);
        Ok(Sealed {
            receipt: Some(sealed_receipt("rcpt_empty".into(), &[])),
            outbox: vec![],
            in_force: Vec::new(),
        })
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
    let panicking: Sealer = Box::new(|_: &[Event], _: &crate::Wants<'_>| panic!("sealer bug"));
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
                assert_eq!(receipt.map(|r| r.id), Some(stored.id));
                assert_eq!((stored.first_seq, stored.last_seq), (events[0].seq, events[1].seq));
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
                let id_for_seal = id.clone();
                let events = vec![change("analytics", Action::Grant, &[]), change("ads", Action::Grant, &[])];
                // The sealer sees the events as placed: it names them in the receipt's kid.
                let seal: Sealer = Box::new(move |placed: &[Event], _: &crate::Wants<'_>| {
                    let receipt =
                        SealedReceipt { kid: seal_text(placed), ..sealed_receipt(id_for_seal, placed) };
                    Ok(Sealed { receipt: Some(receipt), outbox: Vec::new(), in_force: Vec::new() })
                });
                let (events, receipt) =
                    store.append_sealed(&s, events, Some(seal)).await.expect("sealed append");
                assert_eq!(receipt.as_ref().map(|r| r.kid.clone()), Some(seal_text(&events)));
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
        assert_eq!(
            (stored.subject, stored.first_seq, stored.last_seq),
            (Some(s), events[0].seq, events[1].seq)
        );
        for e in &events {
            assert_eq!(&chain[e.seq as usize - 1], e, "the receipt names the committed events");
        }
    }
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

pub async fn expiries_and_leases(store: Arc<dyn Store>) {
    let s = subject("erin");
    let now = Timestamp::now();
    let mut lapsing = change("marketing.direct", Action::Grant, &["email"]);
    lapsing.expires_at = Some(now.plus_seconds(-5));
    let mut later = change("analytics", Action::Grant, &[]);
    later.expires_at = Some(now.plus_seconds(3600));
    store.append(&s, vec![lapsing, later]).await.expect("append");
    let due = store.due_expiries(now, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].0.as_str(), due[0].1.purpose.as_str()), ("erin", "marketing.direct"));
    // Once a later statement replaces it (the expiry itself, here), it is no longer due.
    let mut expire = change("marketing.direct", Action::Expire, &["email"]);
    expire.notice = None;
    store.append(&s, vec![expire]).await.expect("append");
    assert!(store.due_expiries(now, 10).await.expect("due").is_empty());

    let until = now.plus_seconds(30);
    assert!(store.try_lease("expiry", "node-a", until, now).await.expect("lease"));
    assert!(!store.try_lease("expiry", "node-b", until, now).await.expect("lease"), "held by a");
    assert!(store.try_lease("expiry", "node-a", until, now).await.expect("renew"), "a renews its own");
    let later_now = now.plus_seconds(31);
    assert!(store.try_lease("expiry", "node-b", later_now.plus_seconds(30), later_now).await.expect("lease"));
}
