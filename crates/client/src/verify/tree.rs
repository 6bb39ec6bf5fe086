//! The audit of the ledger's Merkle tree against its signed checkpoints: the tree is rebuilt from the
//! events themselves, and every checkpoint (signature, origin) must sign the root of the tree of exactly
//! its first `size` events. Consecutive checkpoints are therefore consistent (each is a prefix of the same
//! events); a checkpoint larger than the ledger means events were cut off the end, which is caught even
//! when the later checkpoints were removed too, given any one earlier checkpoint (`--since-checkpoint`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::Event;
use consentry_core::merkle::{Frontier, Hash, NodeId, leaf_hash};
use consentry_core::note::{CheckpointBody, NoteVerifier, open_checkpoint};
use serde::Serialize;

/// What a tree audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeReport {
    pub ok: bool,
    /// The leaves (events) the tree was rebuilt from.
    pub size: u64,
    /// The rebuilt tree's root, base64.
    pub root: String,
    /// Checkpoints whose signature held and whose root is the rebuilt tree's at their size.
    pub checkpoints: u64,
    /// The first problem, in words; `None` when everything held.
    pub first_bad: Option<String>,
}

/// Rebuilds the tree from events fed in order and checks checkpoints against it.
#[derive(Debug)]
pub struct TreeAudit {
    origin: String,
    verifiers: Vec<NoteVerifier>,
    tree: Frontier,
    /// Checkpoints waiting for the tree to reach their size, by size (label for problems).
    pending: BTreeMap<u64, Vec<(String, Hash)>>,
    checked: u64,
    first_bad: Option<String>,
}

impl TreeAudit {
    pub fn new(origin: &str, verifiers: Vec<NoteVerifier>) -> Self {
        Self {
            origin: origin.to_owned(),
            verifiers,
            tree: Frontier::empty(),
            pending: BTreeMap::new(),
            checked: 0,
            first_bad: None,
        }
    }

    fn problem(&mut self, what: String) {
        self.first_bad.get_or_insert(what);
    }

    /// A signed checkpoint to check, named `label` in problems (e.g. `checkpoint 3`, a file name).
    pub fn push_checkpoint(&mut self, label: &str, note: &str) {
        match open_checkpoint(note, &self.origin, &self.verifiers) {
            Ok(CheckpointBody { size, root, .. }) => {
                if size == 0 {
                    self.checked += u64::from(root == consentry_core::merkle::EMPTY_ROOT);
                    return;
                }
                self.pending.entry(size).or_default().push((label.to_owned(), root));
            }
            Err(e) => self.problem(format!("{label} does not verify: {e}")),
        }
    }

    /// The next event of the ledger, in order.
    pub fn push_event(&mut self, event: &Event) {
        self.push_event_nodes(event, &mut Vec::new());
    }

    /// The next event of the ledger, in order, adding to `completed` the nodes of the rebuilt tree it
    /// completes (its leaf and every subtree it closes): what a store keeping the tree must hold.
    pub fn push_event_nodes(&mut self, event: &Event, completed: &mut Vec<(NodeId, Hash)>) {
        if event.seq != self.tree.size() + 1 {
            self.problem(format!("event {} is not the next after {}", event.seq, self.tree.size()));
            return;
        }
        self.tree.append(leaf_hash(&event.canonical_bytes()), completed);
        let size = self.tree.size();
        if let Some(signed) = self.pending.remove(&size) {
            let root = self.tree.root();
            for (label, signed_root) in signed {
                if signed_root == root {
                    self.checked += 1;
                } else {
                    self.problem(format!("{label} signs another tree than the ledger's first {size} events"));
                }
            }
        }
    }

    /// The rebuilt tree's root (what a store's own nodes must give at its size).
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Ends the audit: a checkpoint larger than the ledger means events were cut off the end.
    pub fn finish(mut self) -> TreeReport {
        let size = self.tree.size();
        if let Some((&beyond, labels)) = self.pending.iter().next() {
            let label = labels.first().map_or("a checkpoint", |(l, _)| l.as_str()).to_owned();
            self.problem(format!(
                "{label} signs {beyond} events but the ledger holds {size}: events were cut off the end"
            ));
        }
        TreeReport {
            ok: self.first_bad.is_none(),
            size,
            root: STANDARD.encode(self.tree.root()),
            checkpoints: self.checked,
            first_bad: self.first_bad,
        }
    }

    /// Records a problem found outside the audit (e.g. the stored tree disagreeing with the events).
    pub fn fail(&mut self, what: String) {
        self.problem(what);
    }
}
