//! The log's shared state on a node: its origin, the wake-up of its checkpoint signer, and the newest
//! checkpoint, which writes wait on for one that covers their events.

use std::sync::Arc;
use std::time::Duration;

use consentry_store::TlogCheckpoint;
use tokio::sync::{Notify, watch};

/// The log's shared state: its origin, the wake-up of its signer and the size it last signed.
#[derive(Debug)]
pub struct Tlog {
    origin: String,
    /// Woken by the store after every commit of ledger events.
    pub(crate) grown: Arc<Notify>,
    /// The newest checkpoint signed or read by this node.
    signed: watch::Sender<Option<Arc<TlogCheckpoint>>>,
}

impl Tlog {
    pub fn new(origin: String, grown: Arc<Notify>) -> Self {
        Self { origin, grown, signed: watch::Sender::new(None) }
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
