//! Conformance checks for the ledger's Merkle tree: it grows with every append (concurrent ones and a
//! failed sealer included) to exactly the tree of the events' canonical bytes, serves the nodes every
//! proof needs, and keeps one signed checkpoint per size.

use std::collections::HashMap;
use std::sync::Arc;

use consentry_core::merkle::{self, Frontier, Hash, NodeId, leaf_hash};
use consentry_core::{Action, Event, Timestamp};

use super::fixtures::{change, failing_sealer, subject};
use crate::{Store, TlogCheckpoint};

/// Every event of the ledger, oldest first.
async fn all_events(store: &dyn Store) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let page = store.events_page(events.last().map_or(0, |e: &Event| e.seq), 500).await.expect("page");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// The nodes `ids` as a look-up: as stored, or as proofs read them (`proof`: those the store committed
/// lately from memory).
async fn nodes(store: &dyn Store, ids: Vec<NodeId>, proof: bool) -> HashMap<NodeId, Hash> {
    let found = if proof { store.tlog_proof_nodes(&ids).await } else { store.tlog_nodes(&ids).await };
    found.expect("nodes").into_iter().collect()
}

pub async fn tlog_tree_follows_the_ledger(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject(&format!("tree-{w}"));
            for i in 0..9 {
                let events = vec![change("analytics", Action::Grant, &[]); 1 + (i + w) % 3];
                let seal = (i == 4).then(failing_sealer);
                let _ = store.append_sealed(&s, events, seal).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let events = all_events(store.as_ref()).await;
    let size = events.len() as u64;
    assert_eq!(size, store.ledger_head().await.expect("head").events);
    // The tree of the ledger as a verifier builds it from the events alone.
    let mut reference = Frontier::empty();
    let mut roots = vec![merkle::EMPTY_ROOT];
    let mut leaves = Vec::new();
    for e in &events {
        let leaf = leaf_hash(&e.canonical_bytes());
        leaves.push(leaf);
        reference.append(leaf, &mut Vec::new());
        roots.push(reference.root());
    }
    // Both readers give the verifier's tree: the stored nodes (an audit's) and the proofs' (memory first).
    for from_memory in [false, true] {
        for n in [1, 2, 3, size / 2, size - 1, size] {
            let stored = nodes(store.as_ref(), Frontier::ids(n), from_memory).await;
            assert_eq!(
                merkle::root(n, |id| stored.get(&id).copied()),
                Ok(roots[n as usize]),
                "root at {n} (proof reader: {from_memory})"
            );
        }
        for index in [0, 1, size / 3, size - 1] {
            let stored = nodes(store.as_ref(), merkle::inclusion_nodes(index, size), from_memory).await;
            let proof = merkle::inclusion_proof(index, size, |id| stored.get(&id).copied()).expect("proof");
            let leaf = &leaves[index as usize];
            assert_eq!(merkle::verify_inclusion(index, size, leaf, &proof, &roots[size as usize]), Ok(()));
        }
        for (old, new) in [(1, size), (size / 2, size), (size - 1, size), (3, 7)] {
            let stored = nodes(store.as_ref(), merkle::consistency_nodes(old, new), from_memory).await;
            let proof = merkle::consistency_proof(old, new, |id| stored.get(&id).copied()).expect("proof");
            let (r1, r2) = (roots[old as usize], roots[new as usize]);
            assert_eq!(
                merkle::verify_consistency(old, new, &r1, &r2, &proof),
                Ok(()),
                "{old} to {new} (proof reader: {from_memory})"
            );
        }
    }
    // Nothing beyond the ledger's length: a leaf past its end is not stored.
    assert!(store.tlog_nodes(&[NodeId::new(0, size)]).await.expect("nodes").is_empty());
    assert!(store.tlog_proof_nodes(&[NodeId::new(0, size)]).await.expect("nodes").is_empty());
}

pub async fn tlog_checkpoints_one_per_size(store: Arc<dyn Store>) {
    assert_eq!(store.latest_tlog_checkpoint().await.expect("latest"), None);
    let at = Timestamp::from_micros(1_700_000_000_000_000);
    let checkpoint = |size: u64, note: &str| TlogCheckpoint {
        size,
        root: [size as u8; 32],
        note: note.into(),
        created_at: at,
    };
    for c in [checkpoint(5, "five"), checkpoint(2, "two"), checkpoint(9, "nine"), checkpoint(5, "other five")]
    {
        store.insert_tlog_checkpoint(&c).await.expect("insert");
    }
    assert_eq!(store.latest_tlog_checkpoint().await.expect("latest"), Some(checkpoint(9, "nine")));
    let listed = store.tlog_checkpoints(0, 10).await.expect("list");
    assert_eq!(listed, vec![checkpoint(2, "two"), checkpoint(5, "five"), checkpoint(9, "nine")]);
    assert_eq!(store.tlog_checkpoints(2, 1).await.expect("list"), vec![checkpoint(5, "five")]);
}
