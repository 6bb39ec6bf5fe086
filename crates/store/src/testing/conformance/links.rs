//! Conformance checks of links between subjects ([`LinkStore`](crate::LinkStore)), run with the vault's
//! ([`conformance_vault_suite!`](crate::conformance_vault_suite)).

use std::sync::{Arc, Mutex, PoisonError};

use consentry_core::{Action, NewEvent, SubjectId, Timestamp};

use super::fixtures::{change, subject};
use crate::identifiers::{AddedIdentifier, NewIdentifier, new_identifier_id};
use crate::links::{LinkMerge, LinkPlan, LinkRefusal};
use crate::vault::Kek;
use crate::{Store, StoreError};

fn identifier(who: &SubjectId, index: u8, value: &str) -> NewIdentifier {
    NewIdentifier {
        id: new_identifier_id().unwrap_or_else(|e| panic!("id: {e}")),
        subject: who.clone(),
        kind: "email".into(),
        blind_index: [index; 32],
        value: value.into(),
        created_at: Timestamp::from_micros(1_700_000_000_000_000),
    }
}

/// A merge that carries every statement of `from` as it is (with its original time), and notes how many
/// statements of each record it read.
fn carry_all(seen: &Arc<Mutex<Option<(usize, usize)>>>) -> LinkMerge {
    let seen = Arc::clone(seen);
    Box::new(move |read| {
        *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some((read.into.len(), read.from.len()));
        read.from
            .iter()
            .map(|e| NewEvent {
                actor: format!("link:{}", read.from_pseudonym),
                occurred_at: Some(e.effective_at()),
                ..change(&e.purpose, e.action, &[])
            })
            .collect()
    })
}

fn plan(kek: &Kek, from: &SubjectId, merge: LinkMerge) -> LinkPlan {
    LinkPlan { from: from.clone(), kek: kek.clone(), merge, seal: None }
}

/// A link reads both records inside its write, places the merge's events for the survivor with their
/// original time, forgets `from`'s state, moves its identifiers (re-sealed: they read back under the
/// survivor), keeps the alias, which takes no more appends; refuses a link to oneself, from an unknown id
/// and from an alias; carries the aliases of `from` along; and the erasure's key destruction takes them.
pub async fn links_merge_move_and_alias(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let (anon, acct, other) = (subject("anon"), subject("acct"), subject("other"));
    let added = store.add_identifier(&kek, identifier(&anon, 7, "anon@example.com")).await.expect("add");
    assert_eq!(added, AddedIdentifier::Added);
    let theirs = store.append(&anon, vec![change("analytics", Action::Grant, &[])]).await.expect("append");
    store.append(&acct, vec![change("marketing", Action::Withdraw, &[])]).await.expect("append");

    let seen = Arc::new(Mutex::new(None));
    let linked = store
        .link_subjects(&acct, plan(&kek, &anon, carry_all(&seen)))
        .await
        .expect("link")
        .unwrap_or_else(|r| panic!("refused: {r:?}"));
    assert_eq!(*seen.lock().unwrap_or_else(PoisonError::into_inner), Some((1, 1)), "both records read");
    assert_eq!(linked.events.len(), 1);
    assert_eq!(linked.events[0].occurred_at, Some(theirs[0].recorded_at), "the original time kept");
    assert_eq!(linked.events[0].actor, format!("link:{}", theirs[0].pseudonym));
    assert_eq!((linked.moved.identifiers, linked.moved.records, linked.moved.requests), (1, 0, 0));
    let mut purposes: Vec<String> =
        store.current(&acct).await.expect("current").into_iter().map(|e| e.purpose).collect();
    purposes.sort();
    assert_eq!(purposes, ["analytics", "marketing"]);
    assert!(store.current(&anon).await.expect("current").is_empty(), "the old id's state is forgotten");
    assert!(store.identifiers(&kek, &anon).await.expect("list").is_empty());
    let values: Vec<String> =
        store.identifiers(&kek, &acct).await.expect("list").into_iter().map(|i| i.value).collect();
    assert_eq!(values, ["anon@example.com"], "re-sealed under the survivor's key");
    assert_eq!(store.subject_by_identifier(&[7; 32]).await.expect("look up"), Some(acct.clone()));
    assert_eq!(store.subject_links().await.expect("links"), [(anon.clone(), acct.clone())]);
    assert_eq!(store.aliases_of(&acct).await.expect("aliases"), std::slice::from_ref(&anon));
    let among = store.survivors_among(vec![acct.clone(), anon.clone()]).await.expect("aliases");
    assert_eq!(among, [(anon.clone(), acct.clone())], "only the alias, with its survivor");

    // An alias takes no appends: they name the survivor instead.
    match store.append(&anon, vec![change("analytics", Action::Withdraw, &[])]).await {
        Err(StoreError::Linked(survivor)) => assert_eq!(survivor, acct),
        other => panic!("an append for an alias: {other:?}"),
    }
    // Refusals change nothing.
    let refused = |from: &SubjectId, into: &SubjectId| {
        let (store, kek, from, into) = (store.clone(), kek.clone(), from.clone(), into.clone());
        let seen = Arc::new(Mutex::new(None));
        async move { store.link_subjects(&into, plan(&kek, &from, carry_all(&seen))).await }
    };
    assert_eq!(refused(&acct, &acct).await.expect("read").err(), Some(LinkRefusal::Same));
    assert_eq!(refused(&subject("nobody"), &acct).await.expect("read").err(), Some(LinkRefusal::FromUnknown));
    assert_eq!(refused(&anon, &other).await.expect("read").err(), Some(LinkRefusal::FromLinked));
    match refused(&other, &anon).await {
        Err(StoreError::Linked(survivor)) => assert_eq!(survivor, acct, "the survivor is an alias"),
        other => panic!("a link into an alias: {:?}", other.map(|r| r.err())),
    }
    assert_eq!(store.subject_links().await.expect("links"), [(anon.clone(), acct.clone())]);

    // A link of the survivor carries its aliases along.
    store.append(&other, vec![change("marketing", Action::Grant, &[])]).await.expect("append");
    let seen = Arc::new(Mutex::new(None));
    let again = store.link_subjects(&other, plan(&kek, &acct, carry_all(&seen))).await.expect("link");
    assert_eq!(again.expect("linked").moved.aliases, std::slice::from_ref(&anon));
    let mut links = store.subject_links().await.expect("links");
    links.sort();
    assert_eq!(links, [(acct.clone(), other.clone()), (anon.clone(), other.clone())]);
    for alias in [&anon, &acct] {
        store.destroy_subject_key(alias).await.expect("destroy");
    }
    store.destroy_subject_key(&other).await.expect("destroy");
    assert!(store.subject_links().await.expect("links").is_empty(), "the links name the erased subjects");
}

/// A consent write on `from` racing a link either lands before it (and the merge reads it) or is refused
/// after it as an alias's: never lost in between.
pub async fn links_see_every_racing_write(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    for round in 0..8 {
        let (from, into) = (subject(&format!("from-{round}")), subject(&format!("into-{round}")));
        store.append(&from, vec![change("analytics", Action::Grant, &[])]).await.expect("append");
        let seen = Arc::new(Mutex::new(None));
        let write = store.append(&from, vec![change("marketing", Action::Withdraw, &[])]);
        let link = store.link_subjects(&into, plan(&kek, &from, carry_all(&seen)));
        let (written, linked) = tokio::join!(write, link);
        let linked = linked.expect("link").unwrap_or_else(|r| panic!("refused: {r:?}"));
        let read = seen.lock().unwrap_or_else(PoisonError::into_inner).expect("merged").1;
        match written {
            Ok(_) => assert_eq!((read, linked.events.len()), (2, 2), "round {round}: the write was read"),
            Err(StoreError::Linked(survivor)) => {
                assert_eq!(survivor, into);
                assert_eq!(read, 1, "round {round}: the link came first");
            }
            Err(e) => panic!("round {round}: {e}"),
        }
    }
}
