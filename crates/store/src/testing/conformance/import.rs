//! Imported changes: placed at most once per `(source, id)`, ordered in the current state by when they
//! were made, and notice texts an import brings kept as versions that never become current.

use std::sync::Arc;

use consentry_core::catalog::CatalogDocument;
use consentry_core::{Action, Timestamp};

use super::fixtures::{change, subject, verified_chain};
use crate::{ImportKeys, Store};

fn keys(source: &str, ids: &[&str]) -> ImportKeys {
    ImportKeys { source: source.into(), ids: ids.iter().map(|i| (*i).to_owned()).collect() }
}

pub async fn imports_place_each_change_once_in_time_order(store: Arc<dyn Store>) {
    let s = subject("importee");
    // Withdrawn live first.
    store.append(&s, vec![change("analytics", Action::Withdraw, &[])]).await.expect("append");
    let at = |year: i64| Some(Timestamp::from_micros((year - 1970) * 365 * 86_400 * 1_000_000));
    let mut old_grant = change("analytics", Action::Grant, &[]);
    old_grant.occurred_at = at(2023);
    let mut dup = old_grant.clone();
    dup.occurred_at = at(2022);
    // The same id twice in one call: placed once.
    let (placed, _) = store
        .append_imported(&s, keys("ot", &["a", "a"]), vec![old_grant.clone(), dup], None)
        .await
        .expect("import");
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].occurred_at, at(2023));
    // The old grant, imported after the live withdrawal, does not replace it in the current state.
    let current = store.current(&s).await.expect("current");
    assert_eq!(current.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Withdraw]);
    // Again, and overlapping: only the new id goes in; another source's "a" is another change.
    let mut newer = change("analytics", Action::Grant, &["email"]);
    newer.occurred_at = at(2024);
    let (again, _) = store
        .append_imported(&s, keys("ot", &["a", "b"]), vec![old_grant.clone(), newer], None)
        .await
        .expect("import");
    assert_eq!(again.iter().map(|e| e.occurred_at).collect::<Vec<_>>(), [at(2024)]);
    let (none, sealed) =
        store.append_imported(&s, keys("ot", &["b"]), vec![old_grant.clone()], None).await.expect("import");
    assert!(none.is_empty() && sealed.is_none());
    let (other, _) =
        store.append_imported(&s, keys("fides", &["a"]), vec![old_grant], None).await.expect("import");
    assert_eq!(other.len(), 1);
    // Concurrent imports of one id from many tasks: exactly one is placed.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let mut e = change("marketing.direct", Action::Deny, &[]);
            e.occurred_at = at(2021);
            store.append_imported(&s, keys("race", &["x"]), vec![e], None).await.expect("import").0.len()
        }));
    }
    let mut placed = 0;
    for t in tasks {
        placed += t.await.expect("task");
    }
    assert_eq!(placed, 1);
    let history = store.history(&s, 0, 100).await.expect("history");
    assert_eq!(history.len(), 5);
    assert_eq!(verified_chain(&store).await.len(), 5);
    // The engine warmed at start reads the same order from the current state.
    let page = store.current_page(0, 100).await.expect("page");
    let analytics: Vec<Action> = page
        .iter()
        .filter(|(_, e)| e.purpose == "analytics" && e.scope.channels.is_empty())
        .map(|(_, e)| e.action)
        .collect();
    assert_eq!(analytics, [Action::Withdraw]);
}

pub async fn imported_notice_texts_never_become_current(store: Arc<dyn Store>) {
    let doc = CatalogDocument::default_catalog();
    let first = store.apply_catalog(&doc).await.expect("apply");
    let key = doc.notices[0].key.clone();
    let current = first.notices.iter().find(|n| n.key == key).expect("current").clone();
    // The catalogue's own text names its version.
    let same = store.import_notice(&key, "en", "t", &doc.notices[0].text).await.expect("import");
    assert_eq!(same.version, current.version);
    // Another text becomes a new version, once.
    let old = store.import_notice(&key, "en", "Old", "An older text.").await.expect("import");
    assert!(old.version > current.version);
    assert_eq!(
        store.import_notice(&key, "en", "Old", "An older text.").await.expect("import").version,
        old.version
    );
    assert_eq!(
        store.notice_version(&key, old.version).await.expect("read").map(|n| n.text),
        Some("An older text.".into())
    );
    // The catalogue's version stays current, also when the catalogue is applied again unchanged.
    let stored = store.catalog().await.expect("read").expect("a catalogue");
    assert_eq!(
        stored.notices.iter().find(|n| n.key == key && n.language == "en").map(|n| n.version),
        Some(current.version)
    );
    let again = store.apply_catalog(&doc).await.expect("apply");
    assert_eq!(
        again.notices.iter().find(|n| n.key == key && n.language == "en").map(|n| n.version),
        Some(current.version)
    );
}
