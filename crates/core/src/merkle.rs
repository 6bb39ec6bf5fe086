//! The ledger's Merkle tree, as RFC 9162 §2.1 defines it (the tree of Certificate Transparency): leaf
//! hash = SHA-256(0x00 ‖ leaf), node hash = SHA-256(0x01 ‖ left ‖ right), the empty tree's root the
//! SHA-256 of nothing; audit paths (inclusion proofs) and consistency proofs, made and checked.
//!
//! Storage keeps only *complete* subtrees ([`NodeId`]: level `l`, index `i` covers leaves
//! `[i·2^l, (i+1)·2^l)`), which never change once written; every hash a proof needs for any tree size is
//! one of them or is combined from a few of them (the right edge of a tree that is not a power of two).
//! Appending needs only the [`Frontier`], the `⌈log₂ n⌉` complete subtrees that make up the tree, so an
//! append reads nothing and writes the leaf and every subtree it completes.
//!
//! Proofs are made from stored nodes through a look-up the caller provides; which nodes a proof needs does
//! not depend on their values, so [`inclusion_nodes`] and [`consistency_nodes`] name them first and the
//! caller fetches them in one read. Written from the RFC (not a crate) because the tree must be stored
//! incrementally in our own tables, which no kept crate supports.

use sha2::{Digest, Sha256};

/// A SHA-256 hash of the tree.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27,
    0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// SHA-256(0x00 ‖ `data`).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ `left` ‖ `right`).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A complete subtree: `level` 0 is a leaf; the node covers leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes do not describe a proof (e.g. a leaf at or past the tree's size).
    #[error("invalid proof request: {0}")]
    Invalid(&'static str),
    /// The store lacks a node the proof needs.
    #[error("the tree node at level {}, index {} is missing", .0.level, .0.index)]
    MissingNode(NodeId),
    /// The proof has the wrong number of hashes for the sizes.
    #[error("the proof has the wrong length")]
    WrongLength,
    /// The proof does not lead to the root(s) given.
    #[error("the proof does not match the root")]
    RootMismatch,
}

/// The largest power of two smaller than `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `[start, end)`, a left-aligned range of an RFC 9162 tree, from complete subtrees.
fn range_hash<F>(start: u64, end: u64, get: &mut F) -> Result<Hash, ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let id = NodeId::new(n.trailing_zeros() as u8, start >> n.trailing_zeros());
        return get(id).ok_or(ProofError::MissingNode(id));
    }
    let k = split(n);
    let left = range_hash(start, start + k, get)?;
    let right = range_hash(start + k, end, get)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of `size` leaves, from its complete subtrees ([`Frontier::ids`]).
pub fn root<F>(size: u64, mut get: F) -> Result<Hash, ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(0, size, &mut get)
}

/// PATH(m, D[start:end]) of RFC 9162 §2.1.3.1, deepest hash first.
fn path<F>(m: u64, start: u64, end: u64, get: &mut F, out: &mut Vec<Hash>) -> Result<(), ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < start + k {
        path(m, start, start + k, get, out)?;
        out.push(range_hash(start + k, end, get)?);
    } else {
        path(m, start + k, end, get, out)?;
        out.push(range_hash(start, start + k, get)?);
    }
    Ok(())
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<F>(index: u64, size: u64, mut get: F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    if index >= size {
        return Err(ProofError::Invalid("the leaf index is not below the tree size"));
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut get, &mut out)?;
    Ok(out)
}

/// SUBPROOF(m, D[start:end], b) of RFC 9162 §2.1.4.1.
fn subproof<F>(
    m: u64,
    start: u64,
    end: u64,
    b: bool,
    get: &mut F,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    let n = end - start;
    if m == n {
        if !b {
            out.push(range_hash(start, end, get)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, b, get, out)?;
        out.push(range_hash(start + k, end, get)?);
    } else {
        subproof(m - k, start + k, end, false, get, out)?;
        out.push(range_hash(start, start + k, get)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves (empty when `old` is 0
/// or equal to `new`).
pub fn consistency_proof<F>(old: u64, new: u64, mut get: F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(NodeId) -> Option<Hash>,
{
    if old > new {
        return Err(ProofError::Invalid("the first size is larger than the second"));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut get, &mut out)?;
    }
    Ok(out)
}

/// Runs `make` with a look-up that records the nodes asked for: which nodes a proof needs depends only on
/// the sizes, never on hash values.
fn needed(make: impl FnOnce(&mut dyn FnMut(NodeId) -> Option<Hash>)) -> Vec<NodeId> {
    let mut ids = Vec::new();
    make(&mut |id| {
        ids.push(id);
        Some([0; 32])
    });
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The stored nodes [`inclusion_proof`] reads for leaf `index` in a tree of `size`.
pub fn inclusion_nodes(index: u64, size: u64) -> Vec<NodeId> {
    needed(|get| {
        let _ = inclusion_proof(index, size, get);
    })
}

/// The stored nodes [`consistency_proof`] reads, and [`root`] of both sizes.
pub fn consistency_nodes(old: u64, new: u64) -> Vec<NodeId> {
    needed(|get| {
        let _ = consistency_proof(old, new, &mut *get);
        let _ = root(old, &mut *get);
        let _ = root(new, &mut *get);
    })
}

/// The root that an inclusion proof leads to (RFC 9162 §2.1.3.2), or why it cannot lead anywhere.
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::Invalid("the leaf index is not below the tree size"));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Checks that leaf hash `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if &root_from_inclusion(index, size, leaf, proof)? == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new` leaves with
/// root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Invalid("the first size is larger than the second"));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if old == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength) };
    }
    let Some((first, rest)) = proof.split_first() else { return Err(ProofError::WrongLength) };
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
        path.push(first);
    } else {
        path.push(first);
    }
    path.extend(rest);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*path[0], *path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr == old_root && &sr == new_root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// The complete subtrees a tree of `size` leaves is made of, left to right (largest first): what an
/// append needs, and all a root needs. At most 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Default for Frontier {
    fn default() -> Self {
        Self::empty()
    }
}

impl Frontier {
    pub fn empty() -> Self {
        Self { size: 0, hashes: Vec::new() }
    }

    /// The nodes that make up the tree of `size` leaves, left to right.
    pub fn ids(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                ids.push(NodeId::new(level, start >> level));
                start += 1 << level;
            }
        }
        ids
    }

    /// The frontier of `size` leaves from the hashes of [`Frontier::ids`] in that order; `None` when their
    /// number does not fit `size`.
    pub fn from_hashes(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// The frontier of `size` leaves from stored nodes that include its [`Frontier::ids`] (in any order);
    /// `None` when one is missing.
    pub fn from_nodes(size: u64, found: &[(NodeId, Hash)]) -> Option<Self> {
        let hashes = Self::ids(size)
            .iter()
            .map(|id| found.iter().find(|(f, _)| f == id).map(|(_, h)| *h))
            .collect::<Option<Vec<_>>>()?;
        Self::from_hashes(size, hashes)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its [`leaf_hash`]); adds to `completed` the leaf's node and every subtree it
    /// completes, for storage.
    pub fn append(&mut self, leaf: Hash, completed: &mut Vec<(NodeId, Hash)>) {
        let index = self.size;
        completed.push((NodeId::new(0, index), leaf));
        let mut hash = leaf;
        let mut level = 0u8;
        // Each trailing one bit of the old size is a subtree of the same height to merge with.
        while (index >> level) & 1 == 1 {
            let left = self.hashes.pop().unwrap_or_else(|| unreachable!("one subtree per set bit"));
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((NodeId::new(level, index >> level), hash));
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else { return EMPTY_ROOT };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests;
