//! The Merkle tree against the RFC 6962 / RFC 9162 test vectors of Certificate Transparency (the eight
//! leaves and the roots, inclusion and consistency proofs published with transparency-dev/merkle), and
//! against a plain recursive reference for every small tree.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn h(hex_text: &str) -> Hash {
    hex::decode(hex_text).expect("hex").try_into().expect("32 bytes")
}

const LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

/// Roots of the trees of 1 to 8 of [`LEAVES`].
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// A tree of `leaves` built through [`Frontier::append`], with every node it stored.
fn build(leaves: &[Vec<u8>]) -> (Frontier, HashMap<NodeId, Hash>) {
    let mut frontier = Frontier::empty();
    let mut nodes = Vec::new();
    for leaf in leaves {
        frontier.append(leaf_hash(leaf), &mut nodes);
    }
    (frontier, nodes.into_iter().collect())
}

fn vector_leaves() -> Vec<Vec<u8>> {
    LEAVES.iter().map(|l| hex::decode(l).expect("hex")).collect()
}

/// MTH of RFC 9162 §2.1.1, straight from its definition.
fn reference_root(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaf_hash(&leaves[0]),
        n => {
            let k = split(n as u64) as usize;
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

#[test]
fn roots_match_the_published_vectors() {
    let leaves = vector_leaves();
    assert_eq!(root(0, |_| None), Ok(EMPTY_ROOT));
    for n in 1..=8 {
        let (frontier, nodes) = build(&leaves[..n]);
        assert_eq!(frontier.root(), h(ROOTS[n - 1]), "frontier root of {n}");
        assert_eq!(root(n as u64, |id| nodes.get(&id).copied()), Ok(h(ROOTS[n - 1])), "stored root of {n}");
    }
    // The complete subtrees stored for eight leaves, against the published node hashes.
    let (_, nodes) = build(&leaves);
    assert_eq!(
        nodes[&NodeId::new(1, 2)],
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")
    );
    assert_eq!(
        nodes[&NodeId::new(2, 1)],
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")
    );
    assert_eq!(nodes.len(), 8 + 4 + 2 + 1);
}

#[test]
fn inclusion_proofs_match_the_published_vectors() {
    let leaves = vector_leaves();
    let (_, nodes) = build(&leaves);
    let get = |id: NodeId| nodes.get(&id).copied();
    // (leaf index, tree size, proof)
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, expected) in cases {
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(inclusion_proof(index, size, get), Ok(expected.clone()), "proof of {index} in {size}");
        let leaf = leaf_hash(&leaves[index as usize]);
        let root = h(ROOTS[size as usize - 1]);
        assert_eq!(verify_inclusion(index, size, &leaf, &expected, &root), Ok(()));
        // Tampering of every kind the reference tests probe is refused.
        let mut probes: Vec<(u64, u64, Hash, Vec<Hash>, Hash)> = vec![
            (index.wrapping_sub(1), size, leaf, expected.clone(), root),
            (index + 1, size, leaf, expected.clone(), root),
            (index ^ 2, size, leaf, expected.clone(), root),
            (index, size * 2, leaf, expected.clone(), root),
            (index, size / 2, leaf, expected.clone(), root),
            (index, size, leaf_hash(b"WrongLeaf"), expected.clone(), root),
            (index, size, leaf, expected.clone(), EMPTY_ROOT),
            (index, size, leaf, [expected.clone(), vec![root]].concat(), root),
            (index, size, leaf, [vec![root], expected.clone()].concat(), root),
        ];
        for i in 0..expected.len() {
            let mut wrong = expected.clone();
            wrong[i][0] ^= 8;
            probes.push((index, size, leaf, wrong, root));
        }
        if !expected.is_empty() {
            probes.push((index, size, leaf, expected[..expected.len() - 1].to_vec(), root));
        }
        for (n, (i, s, l, p, r)) in probes.into_iter().enumerate() {
            assert!(verify_inclusion(i, s, &l, &p, &r).is_err(), "probe {n} of {index} in {size} verified");
        }
    }
    assert!(inclusion_proof(8, 8, get).is_err());
}

#[test]
fn consistency_proofs_match_the_published_vectors() {
    let leaves = vector_leaves();
    let (_, nodes) = build(&leaves);
    let get = |id: NodeId| nodes.get(&id).copied();
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, expected) in cases {
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(consistency_proof(old, new, get), Ok(expected.clone()), "proof {old} to {new}");
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        assert_eq!(verify_consistency(old, new, &r1, &r2, &expected), Ok(()));
        if expected.is_empty() {
            continue;
        }
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (old - 1, new, r1, r2, expected.clone()),
            (old + 1, new, r1, r2, expected.clone()),
            (old ^ 2, new, r1, r2, expected.clone()),
            (old, new * 2, r1, r2, expected.clone()),
            (old, new / 2, r1, r2, expected.clone()),
            (old, new, EMPTY_ROOT, r2, expected.clone()),
            (old, new, r1, EMPTY_ROOT, expected.clone()),
            (old, new, r2, r1, expected.clone()),
            (old, new, r1, r2, vec![]),
            (old, new, r1, r2, [expected.clone(), vec![r1]].concat()),
            (old, new, r1, r2, [vec![r2], expected.clone()].concat()),
            (old, new, r1, r2, expected[..expected.len() - 1].to_vec()),
        ];
        for i in 0..expected.len() {
            let mut wrong = expected.clone();
            wrong[i][0] ^= 16;
            probes.push((old, new, r1, r2, wrong));
        }
        for (n, (a, b, x, y, p)) in probes.into_iter().enumerate() {
            assert!(verify_consistency(a, b, &x, &y, &p).is_err(), "probe {n} of {old} to {new} verified");
        }
    }
    // Always consistent: from the empty tree, and a tree with itself.
    assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &h(ROOTS[4]), &[]), Ok(()));
    assert!(verify_consistency(3, 3, &h(ROOTS[2]), &h(ROOTS[3]), &[]).is_err());
    assert!(verify_consistency(4, 3, &h(ROOTS[3]), &h(ROOTS[2]), &[]).is_err());
}

#[test]
fn frontier_ids_name_the_subtrees_of_the_tree() {
    assert_eq!(Frontier::ids(0), vec![]);
    assert_eq!(Frontier::ids(7), vec![NodeId::new(2, 0), NodeId::new(1, 2), NodeId::new(0, 6)]);
    assert_eq!(Frontier::ids(8), vec![NodeId::new(3, 0)]);
    let leaves = vector_leaves();
    for n in 0..=8 {
        let (frontier, nodes) = build(&leaves[..n]);
        let hashes = Frontier::ids(n as u64).iter().map(|id| nodes[id]).collect();
        let loaded = Frontier::from_hashes(n as u64, hashes).expect("fits");
        assert_eq!(loaded, frontier);
    }
    assert!(Frontier::from_hashes(3, vec![EMPTY_ROOT]).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn every_proof_of_a_small_tree_verifies(n in 1usize..40, seed in any::<u8>()) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| vec![seed, i as u8, (i >> 8) as u8]).collect();
        let (frontier, nodes) = build(&leaves);
        let get = |id: NodeId| nodes.get(&id).copied();
        for size in 1..=n as u64 {
            let root_n = reference_root(&leaves[..size as usize]);
            prop_assert_eq!(root(size, get), Ok(root_n));
            for index in 0..size {
                let proof = inclusion_proof(index, size, get).expect("proof");
                let leaf = leaf_hash(&leaves[index as usize]);
                prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root_n), Ok(()));
                // Naming exactly the nodes it reads lets a store fetch them in one query.
                let needed: HashMap<NodeId, Hash> =
                    inclusion_nodes(index, size).into_iter().map(|id| (id, nodes[&id])).collect();
                prop_assert_eq!(inclusion_proof(index, size, |id| needed.get(&id).copied()), Ok(proof));
            }
            for old in 0..=size {
                let root_m = reference_root(&leaves[..old as usize]);
                let needed: HashMap<NodeId, Hash> =
                    consistency_nodes(old, size).into_iter().map(|id| (id, nodes[&id])).collect();
                let proof = consistency_proof(old, size, |id| needed.get(&id).copied()).expect("proof");
                prop_assert_eq!(verify_consistency(old, size, &root_m, &root_n, &proof), Ok(()));
            }
        }
        prop_assert_eq!(frontier.root(), reference_root(&leaves));
    }
}
