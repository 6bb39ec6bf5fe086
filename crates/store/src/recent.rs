//! The Merkle tree nodes a store wrote lately, kept in memory so that the proofs of fresh events (every
//! write's answer, proven against the checkpoint of its own commit group) need no read.
//!
//! A node is a complete subtree; once written its hash never changes, so a node this store committed may
//! be answered from memory for as long as it is kept. Only nodes of committed transactions are added.
//! Each level keeps its newest nodes in a ring of fixed size: twice [`WINDOW`] leaves' worth at the lowest
//! levels and at least [`MIN_PER_LEVEL`] nodes at every level, so every node of the inclusion proof of a
//! leaf among the last [`WINDOW`] (its left siblings were completed less than twice that long ago, its
//! right ones since) and every node of the tree's frontier is found, in under 3 MiB. Anything else, and any node
//! another process wrote (PostgreSQL with several nodes), is read from the store as before.
//!
//! An audit never reads from here: it checks what is at rest.
//!
//! A node is the same forever only while the database never goes back. PostgreSQL's could (a failover to a
//! replica behind it, a restore to a point in time, while nodes keep running): the positions of the lost
//! groups are then written again with other events. So the PostgreSQL writer notes the head of each group it
//! committed ([`RecentNodes::committed`]) and, under the ledger lock of the next, takes the memory for the
//! tree's frontier only when that head is still in the ledger ([`RecentNodes::last_commit`]); when it is
//! not, everything held is dropped. (Until this node's next group commit, a proof it serves may still use a
//! node of the lost groups; so may every other thing it holds in memory, such as the engine's state. A
//! database that went back needs its nodes restarted.)

use std::sync::Mutex;

use consentry_core::merkle::{Hash, NodeId};

/// Leaves whose whole inclusion proofs stay in memory.
pub const WINDOW: u64 = 1 << 14;

/// Nodes kept at every level, however high.
pub const MIN_PER_LEVEL: u64 = 512;

/// A ring slot's index when it holds nothing.
const EMPTY: u64 = u64::MAX;

/// The newest nodes of each level.
#[derive(Debug, Default)]
pub struct RecentNodes {
    levels: Mutex<Vec<Vec<(u64, Hash)>>>,
    /// The ledger's head (length and last event's hash) after the last commit noted with
    /// [`RecentNodes::committed`].
    last: Mutex<Option<(u64, String)>>,
}

impl RecentNodes {
    pub fn new() -> Self {
        Self::default()
    }

    fn capacity(level: u8) -> u64 {
        ((2 * WINDOW) >> level.min(63)).max(MIN_PER_LEVEL)
    }

    /// Keeps `nodes`, of a transaction that committed.
    pub fn add(&self, nodes: &[(NodeId, Hash)]) {
        if nodes.is_empty() {
            return;
        }
        let mut levels = self.levels.lock().unwrap_or_else(|p| p.into_inner());
        for (id, hash) in nodes {
            let level = usize::from(id.level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            let ring = &mut levels[level];
            let capacity = Self::capacity(id.level);
            if ring.is_empty() {
                // Capacities are at most 2 * WINDOW, so this fits in usize everywhere.
                ring.resize(capacity as usize, (EMPTY, [0; 32]));
            }
            ring[(id.index % capacity) as usize] = (id.index, *hash);
        }
    }

    /// Keeps `nodes` of a transaction that committed, leaving the ledger's head at `head` (its length and
    /// last event's hash).
    pub fn committed(&self, nodes: &[(NodeId, Hash)], head: (u64, String)) {
        self.add(nodes);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
    }

    /// The head noted by the last [`RecentNodes::committed`].
    pub fn last_commit(&self) -> Option<(u64, String)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drops every node held (the ledger is not the one they were committed to).
    pub fn clear(&self) {
        self.levels.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The nodes among `ids` held here, and the ids that are not.
    pub fn split(&self, ids: &[NodeId]) -> (Vec<(NodeId, Hash)>, Vec<NodeId>) {
        let levels = self.levels.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            let held = levels
                .get(usize::from(id.level))
                .filter(|ring| !ring.is_empty())
                .map(|ring| ring[(id.index % Self::capacity(id.level)) as usize])
                .filter(|(index, _)| *index == id.index && *index != EMPTY);
            match held {
                Some((_, hash)) => found.push((*id, hash)),
                None => missing.push(*id),
            }
        }
        (found, missing)
    }
}

#[cfg(test)]
mod tests {
    use consentry_core::merkle::{self, Frontier, leaf_hash};

    use super::*;

    /// A tree of `n` leaves grown as a writer grows it, every node kept.
    fn grown(n: u64, recent: &RecentNodes) -> (Frontier, std::collections::HashMap<NodeId, Hash>) {
        let mut tree = Frontier::empty();
        let mut all = std::collections::HashMap::new();
        for i in 0..n {
            let mut nodes = Vec::new();
            tree.append(leaf_hash(&i.to_be_bytes()), &mut nodes);
            recent.add(&nodes);
            all.extend(nodes);
        }
        (tree, all)
    }

    #[test]
    fn a_fresh_leafs_proof_and_the_frontier_are_held_and_right() {
        let recent = RecentNodes::new();
        let n = 3 * WINDOW + 12_345;
        let (tree, all) = grown(n, &recent);
        for index in [n - 1, n - 2, n - 1000, n - WINDOW] {
            let ids = merkle::inclusion_nodes(index, n);
            let (found, missing) = recent.split(&ids);
            assert!(missing.is_empty(), "leaf {index}: {missing:?} not held");
            for (id, hash) in &found {
                assert_eq!(all[id], *hash, "{id:?}");
            }
        }
        let (found, missing) = recent.split(&Frontier::ids(n));
        assert!(missing.is_empty());
        assert_eq!(Frontier::from_nodes(n, &found).expect("frontier").root(), tree.root());
    }

    #[test]
    fn a_cleared_store_holds_nothing() {
        let recent = RecentNodes::new();
        let (_, all) = grown(100, &recent);
        recent.committed(&[], (100, "h".into()));
        assert_eq!(recent.last_commit(), Some((100, "h".into())));
        recent.clear();
        let every: Vec<NodeId> = all.keys().copied().collect();
        let (found, missing) = recent.split(&every);
        assert!(found.is_empty() && missing.len() == every.len());
        assert_eq!(recent.last_commit(), None);
    }

    #[test]
    fn an_old_or_unwritten_node_is_missing_never_wrong() {
        let recent = RecentNodes::new();
        let n = 4 * WINDOW;
        let (_, all) = grown(n, &recent);
        // Leaf 0 was overwritten in its ring long ago; a node past the tree was never written.
        let ids = [NodeId::new(0, 0), NodeId::new(0, n), NodeId::new(3, n), NodeId::new(40, 0)];
        let (found, missing) = recent.split(&ids);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(missing, ids);
        // Whatever is found for any node of the tree is that node's hash.
        let every: Vec<NodeId> = all.keys().copied().collect();
        let (found, missing) = recent.split(&every);
        assert!(found.len() > 3 * WINDOW as usize && !missing.is_empty());
        for (id, hash) in found {
            assert_eq!(all[&id], hash);
        }
    }
}
