//! Signs the ledger's Merkle tree heads as C2SP checkpoints, off the store's writer, and stores some.
//!
//! Two loops. The signer signs each commit group's tree head as soon as the writer hands it on (one
//! Ed25519 signature, some tens of microseconds; heads committed meanwhile are covered by the next), so
//! the group's writes get a checkpoint covering their events at once; the writer never waits for it. The
//! keeper stores the newest signed checkpoint at most once per 100 ms (so always within 100 ms while
//! anything changed), and every second signs what other nodes appended (PostgreSQL) when this node did
//! not commit since. Each signed checkpoint verifies on its own, stored or not, and consistency proofs
//! start from any size.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::state::Services;
use crate::tlog;

/// The shortest time between two checkpoints stored by one node.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// How often the ledger is looked at for what other nodes appended.
const POLL: Duration = Duration::from_secs(1);

/// Signs and stores checkpoints until `shutdown`.
pub async fn run(state: Services, shutdown: CancellationToken) {
    let stored = match state.store.latest_tlog_checkpoint().await {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the latest checkpoint; signing a new one");
            None
        }
    };
    if let Some(c) = &stored {
        state.tlog.seen(c);
    }
    tokio::join!(sign(&state, &shutdown), keep(&state, &shutdown, stored.map(|c| c.size)));
}

/// Signs each tree head the store commits, the newest first when several came meanwhile.
async fn sign(state: &Services, shutdown: &CancellationToken) {
    let mut heads = state.tlog.heads.subscribe();
    // A head committed before this loop subscribed is signed too.
    heads.mark_changed();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = heads.changed() => if changed.is_err() { return },
        }
        let Some(head) = *heads.borrow_and_update() else { continue };
        if state.tlog.newest().is_some_and(|c| c.size >= head.size) {
            continue;
        }
        if let Err(e) = tlog::sign(state, head) {
            tracing::warn!(error = %e, "signing a checkpoint failed");
        }
    }
}

/// Stores the newest signed checkpoint, at most once per [`MIN_GAP`]; signs the ledger's head every
/// [`POLL`] when it grew without this node's commits.
async fn keep(state: &Services, shutdown: &CancellationToken, mut stored: Option<u64>) {
    let mut signed = state.tlog.watch_signed();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = signed.changed() => if changed.is_err() { return },
            _ = poll.tick() => {
                let newest = state.tlog.newest();
                if let Err(e) = tlog::sign_current(state, newest.as_deref()).await {
                    tracing::warn!(error = %e, "signing the ledger's head failed; retrying");
                }
            }
        }
        let Some(newest) = state.tlog.newest() else { continue };
        if stored.is_some_and(|s| s >= newest.size) {
            continue;
        }
        match state.store.insert_tlog_checkpoint(&newest).await {
            Ok(()) => stored = Some(newest.size),
            Err(e) => tracing::warn!(error = %e, "storing a checkpoint failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(MIN_GAP) => {}
        }
    }
}
