//! Integration tests of the storage backends: the conformance suite, and what is particular to each.

mod postgres;
mod slim_receipts;
mod sqlite;

/// A bare change by `key:test`: no notice, scope, collection point or evidence (what each backend's own
/// tests and the upgrade tests append).
pub(crate) fn change(purpose: &str, action: consentry_core::Action) -> consentry_core::NewEvent {
    consentry_core::NewEvent {
        evidence: None,
        occurred_at: None,
        jurisdiction: None,
        purpose: purpose.into(),
        action,
        scope: consentry_core::Scope::default(),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: "key:test".into(),
        expires_at: None,
    }
}

/// The root of the tree of the stored ledger, from its events alone and from the stored tree.
pub(crate) async fn tree_roots(
    store: &dyn consentry_store::Store,
) -> (consentry_core::merkle::Hash, consentry_core::merkle::Hash) {
    use consentry_core::merkle::{self, Frontier, leaf_hash};
    let events = store.events_page(0, 1000).await.expect("events");
    let mut reference = Frontier::empty();
    for e in &events {
        reference.append(leaf_hash(&e.canonical_bytes()), &mut Vec::new());
    }
    let ids = Frontier::ids(events.len() as u64);
    let nodes: std::collections::HashMap<_, _> =
        store.tlog_nodes(&ids).await.expect("nodes").into_iter().collect();
    (reference.root(), merkle::root(events.len() as u64, |id| nodes.get(&id).copied()).expect("stored root"))
}
