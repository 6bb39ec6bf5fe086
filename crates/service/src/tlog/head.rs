//! The log's shared state on a node: its origin, the tree heads its store commits (handed on by the
//! writer after each commit group, for the signer), and the newest signed checkpoint, which writes wait
//! on for one that covers their events.

use std::sync::Arc;
use std::time::Duration;

use consentry_core::merkle::Hash;
use consentry_store::{Committed, TlogCheckpoint};
use tokio::sync::watch;

/// A tree head the store committed: its size and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// The newest tree head committed by this node's store: the store's commit observer sets it (on the
/// writer, which only swaps a value and wakes the signer), the checkpoint signer reads it.
#[derive(Debug, Clone)]
pub struct Heads(watch::Sender<Option<TreeHead>>);

impl Default for Heads {
    fn default() -> Self {
        Self(watch::Sender::new(None))
    }
}

impl Heads {
    /// Notes a commit's tree head, unless a larger one was noted already.
    pub fn committed(&self, commit: &Committed) {
        let head = TreeHead { size: commit.size, root: commit.root };
        self.0.send_if_modified(|newest| {
            let newer = newest.is_none_or(|n| head.size > n.size);
            if newer {
                *newest = Some(head);
            }
            newer
        });
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<TreeHead>> {
        self.0.subscribe()
    }
}

/// The log's shared state: its origin, the heads committed, and the newest checkpoint signed or read.
#[derive(Debug)]
pub struct Tlog {
    origin: String,
    /// The tree heads this node's store commits.
    pub(crate) heads: Heads,
    /// The newest checkpoint signed or read by this node (not necessarily stored yet).
    signed: watch::Sender<Option<Arc<TlogCheckpoint>>>,
}

impl Tlog {
    pub fn new(origin: String, heads: Heads) -> Self {
        Self { origin, heads, signed: watch::Sender::new(None) }
    }

    /// The log's origin: the first line of its checkpoints and the name of its keys.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Notes a checkpoint signed or read, waking the writes waiting for one that covers their events.
    pub(crate) fn seen(&self, checkpoint: &TlogCheckpoint) {
        self.signed.send_if_modified(|newest| {
            let newer = newest.as_ref().is_none_or(|n| checkpoint.size > n.size);
            if newer {
                *newest = Some(Arc::new(checkpoint.clone()));
            }
            newer
        });
    }

    /// The newest checkpoint this node signed or read.
    pub(crate) fn newest(&self) -> Option<Arc<TlogCheckpoint>> {
        self.signed.borrow().clone()
    }

    /// Watches the newest checkpoint this node signs or reads.
    pub(crate) fn watch_signed(&self) -> watch::Receiver<Option<Arc<TlogCheckpoint>>> {
        self.signed.subscribe()
    }

    /// The first checkpoint this node signs or reads that covers `size` leaves, waiting at most `limit`.
    pub(crate) async fn covering(&self, size: u64, limit: Duration) -> Option<Arc<TlogCheckpoint>> {
        let mut rx = self.signed.subscribe();
        let waited =
            tokio::time::timeout(limit, rx.wait_for(|c| c.as_ref().is_some_and(|c| c.size >= size))).await;
        match waited {
            Ok(Ok(found)) => found.clone(),
            _ => None,
        }
    }
}
