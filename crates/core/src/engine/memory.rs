//! How the engine holds subjects in memory: 32-byte statements, subject ids inline when short, and per
//! shard a dense slot array behind an open-addressing index, so a check touches one index line and one
//! slot.

use super::CapacityError;
use crate::ledger::Action;

/// Set on a statement that a Global Privacy Control signal made (its withdrawal reads `gpc_opt_out`).
pub(super) const FLAG_GPC: u8 = 1;

/// The purpose symbol of the statement that holds a subject's jurisdiction (its `scope` is the
/// jurisdiction's symbol); never a purpose's, so the rules, which look for the queried purpose and its
/// ancestors, pass over it.
pub(super) const JURISDICTION: u16 = u16::MAX;

/// Set on a statement a guardian made for a child (actor `guardian:<pseudonym>`): for a known child only
/// such grants of a consent purpose count.
pub(super) const FLAG_GUARDIAN: u8 = 2;

/// The purpose symbol of the statement that holds what the engine knows of a subject's age (never a
/// purpose's, like [`JURISDICTION`]). Its `at` is the assumed birth date as a Julian day number, or with
/// [`FLAG_CHILD_UNTIL`] the instant (microseconds) the subject comes of age.
pub(super) const CHILD: u16 = u16::MAX - 1;

/// On a [`CHILD`] statement: `at` is a fixed instant of coming of age (a device's snapshot), not a birth
/// date to compare with the place's age of digital consent.
pub(super) const FLAG_CHILD_UNTIL: u8 = 4;

/// One remembered statement. Kept at 32 bytes: the engine holds millions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stmt {
    /// When the change took effect ([`Event::effective_at`](crate::ledger::Event::effective_at)), in
    /// microseconds since the epoch: with `seq`, the order of statements ([`Stmt::order`]).
    pub(super) at: i64,
    pub(super) seq: u64,
    /// Microseconds since the epoch; `i64::MAX` when the statement does not expire.
    pub(super) expires_at: i64,
    pub(super) scope: u32,
    pub(super) purpose: u16,
    pub(super) action: Action,
    pub(super) flags: u8,
}

const _: () = assert!(std::mem::size_of::<Stmt>() == 32);

impl Stmt {
    /// Which of two statements is later: the later effective time, then the later ledger position.
    pub(super) fn order(&self) -> (i64, u64) {
        (self.at, self.seq)
    }
}

/// Marks an unused entry of [`Stmts::Inline`]; never set on a statement the engine holds.
const FLAG_VACANT: u8 = 0x80;

pub(super) const VACANT: Stmt =
    Stmt { at: 0, seq: 0, expires_at: 0, scope: 0, purpose: 0, action: Action::Grant, flags: FLAG_VACANT };

/// A subject's statements: up to three inline (the vacant ones last), more on the heap.
#[derive(Debug)]
pub(super) enum Stmts {
    Inline([Stmt; 3]),
    Heap(Box<[Stmt]>),
}

impl Stmts {
    pub(super) fn as_slice(&self) -> &[Stmt] {
        match self {
            Stmts::Inline(s) => &s[..s.iter().take_while(|s| s.flags & FLAG_VACANT == 0).count()],
            Stmts::Heap(s) => s,
        }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [Stmt] {
        match self {
            Stmts::Inline(s) => {
                let n = s.iter().take_while(|s| s.flags & FLAG_VACANT == 0).count();
                &mut s[..n]
            }
            Stmts::Heap(s) => s,
        }
    }

    pub(super) fn push(&mut self, stmt: Stmt) {
        match self {
            Stmts::Inline(s) => match s.iter_mut().find(|s| s.flags & FLAG_VACANT != 0) {
                Some(vacant) => *vacant = stmt,
                None => {
                    let mut v = Vec::with_capacity(4);
                    v.extend_from_slice(s);
                    v.push(stmt);
                    *self = Stmts::Heap(v.into_boxed_slice());
                }
            },
            Stmts::Heap(s) => {
                let mut v = std::mem::take(s).into_vec();
                v.push(stmt);
                *s = v.into_boxed_slice();
            }
        }
    }
}

const INLINE_KEY: usize = 22;

/// A subject id, inline when short.
#[derive(Debug)]
pub(super) enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl Key {
    pub(super) fn new(subject: &str) -> Self {
        let src = subject.as_bytes();
        if src.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..src.len()].copy_from_slice(src);
            Key::Inline { len: src.len() as u8, bytes }
        } else {
            Key::Heap(subject.into())
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(s) => s.as_bytes(),
        }
    }
}

/// One subject: its id and statements in one contiguous record, so a check touches one place.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) key: Key,
    pub(super) stmts: Stmts,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 120);

/// A shard's subjects: dense slots, and an open-addressing index into them.
///
/// An index entry is `0` when empty, else `(hash bits above the mask) | (slot + 1)`: the stored hash bits
/// filter out nearly every other subject before its slot is read, so a look-up costs one index line and
/// one slot. Four bytes an entry keep the index small enough to stay largely in cache. Linear probing, at
/// most 3/4 full, with backward-shift deletion (no tombstones); growing and deleting rehash keys.
#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) slots: Vec<Slot>,
    pub(super) index: Box<[u32]>,
}

/// Slots per shard stay below this, so the index stays within 2^32 buckets and a slot number fits.
const MAX_SLOTS: usize = 1 << 31;

impl Shard {
    pub(super) fn find(&self, hash: u64, subject: &str) -> Option<(usize, usize)> {
        if self.index.is_empty() {
            return None;
        }
        let mask = self.index.len() - 1;
        let low = mask as u32;
        let tag = hash as u32 & !low;
        let mut pos = hash as usize & mask;
        loop {
            let e = self.index[pos];
            if e == 0 {
                return None;
            }
            if e & !low == tag {
                let i = (e & low) as usize - 1;
                if self.slots[i].key.as_bytes() == subject.as_bytes() {
                    return Some((pos, i));
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    fn place(index: &mut [u32], hash: u64, slot: usize) {
        let mask = index.len() - 1;
        let mut pos = hash as usize & mask;
        while index[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        index[pos] = (hash as u32 & !(mask as u32)) | (slot as u32 + 1);
    }

    /// Adds a subject known to be absent; `rehash` computes a key's hash.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        slot: Slot,
        rehash: impl Fn(&[u8]) -> u64,
    ) -> Result<(), CapacityError> {
        let i = self.slots.len();
        if i + 1 >= MAX_SLOTS {
            return Err(CapacityError);
        }
        if (i + 1) * 4 > self.index.len() * 3 {
            let mut index = vec![0; (self.index.len() * 2).max(16)].into_boxed_slice();
            for (j, s) in self.slots.iter().enumerate() {
                Self::place(&mut index, rehash(s.key.as_bytes()), j);
            }
            self.index = index;
        }
        Self::place(&mut self.index, hash, i);
        self.slots.push(slot);
        Ok(())
    }

    /// Makes room for `additional` more subjects, so that adding them grows neither the slots nor the
    /// index again; `rehash` computes a key's hash.
    pub(super) fn reserve(&mut self, additional: usize, rehash: impl Fn(&[u8]) -> u64) {
        let want = self.slots.len().saturating_add(additional);
        if want >= MAX_SLOTS {
            return;
        }
        self.slots.reserve(additional);
        let mut len = self.index.len().max(16);
        while want * 4 > len * 3 {
            len *= 2;
        }
        if len > self.index.len() {
            let mut index = vec![0; len].into_boxed_slice();
            for (j, s) in self.slots.iter().enumerate() {
                Self::place(&mut index, rehash(s.key.as_bytes()), j);
            }
            self.index = index;
        }
    }

    /// Removes the entry at `pos`, which points at slot `i`, and the slot; `rehash` computes a key's hash.
    pub(super) fn remove(&mut self, pos: usize, i: usize, rehash: impl Fn(&[u8]) -> u64) {
        let mask = self.index.len() - 1;
        let low = mask as u32;
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & mask;
            let e = self.index[j];
            if e == 0 {
                break;
            }
            let home = rehash(self.slots[(e & low) as usize - 1].key.as_bytes()) as usize & mask;
            // The entry may move back into the hole if the hole lies on its probe path (home ..= j).
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.index[hole] = e;
                hole = j;
            }
        }
        self.index[hole] = 0;

        let last = self.slots.len() - 1;
        self.slots.swap_remove(i);
        if i != last {
            // The last slot moved to `i`: repoint its entry.
            let mut pos = rehash(self.slots[i].key.as_bytes()) as usize & mask;
            while (self.index[pos] & low) as usize != last + 1 {
                pos = (pos + 1) & mask;
            }
            self.index[pos] = (self.index[pos] & !low) | (i as u32 + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    use std::sync::PoisonError;

    use super::*;
    use crate::engine::Engine;
    use crate::ledger::Event;
    use crate::time::Timestamp;

    fn stmt(seq: u64) -> Stmt {
        Stmt {
            at: seq as i64,
            seq,
            expires_at: i64::MAX,
            scope: 0,
            purpose: seq as u16,
            action: Action::Grant,
            flags: 0,
        }
    }

    /// Checks the shard against a model through random inserts and removals, with a hash weak enough to
    /// pile subjects into long probe runs (and one strong enough to spread them), short and long keys.
    fn churn(hash: fn(&[u8]) -> u64) {
        let mut shard = Shard::default();
        let mut model: HashMap<String, u64> = HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x % 700;
            let key = if n.is_multiple_of(3) {
                format!("a-rather-long-subject-identifier-{n}")
            } else {
                format!("s{n}")
            };
            let h = hash(key.as_bytes());
            match (shard.find(h, &key), x >> 60 < 6) {
                (Some((pos, i)), true) => {
                    assert_eq!(shard.slots[i].stmts.as_slice()[0].seq, model[&key]);
                    shard.remove(pos, i, hash);
                    model.remove(&key);
                }
                (Some((_, i)), false) => assert_eq!(shard.slots[i].stmts.as_slice()[0].seq, model[&key]),
                (None, _) => {
                    assert!(!model.contains_key(&key), "{key} lost at step {step}");
                    let slot =
                        Slot { key: Key::new(&key), stmts: Stmts::Inline([stmt(step), VACANT, VACANT]) };
                    shard.insert(h, slot, hash).expect("fits");
                    model.insert(key, step);
                }
            }
            assert_eq!(shard.slots.len(), model.len());
        }
        for (key, seq) in &model {
            let (_, i) = shard.find(hash(key.as_bytes()), key).expect("present");
            assert_eq!(shard.slots[i].stmts.as_slice()[0].seq, *seq);
            assert_eq!(shard.slots[i].key.as_bytes(), key.as_bytes());
        }
        assert_eq!(shard.index.iter().filter(|&&e| e != 0).count(), model.len());
    }

    #[test]
    fn shard_matches_a_model_under_churn() {
        churn(|k| foldhash::fast::FixedState::with_seed(7).hash_one(k));
        // Only 32 distinct hashes: long runs, many equal tags, every entry moved by deletions.
        churn(|k| foldhash::fast::FixedState::with_seed(7).hash_one(k) % 32);
        // Distinct low bits but equal tags.
        churn(|k| foldhash::fast::FixedState::with_seed(7).hash_one(k) & 0xFF);
    }

    #[test]
    fn a_reserved_shard_takes_that_many_subjects_without_growing() {
        let hash = |k: &[u8]| foldhash::fast::FixedState::with_seed(7).hash_one(k);
        let mut shard = Shard::default();
        let key = |i: u32| format!("s{i}");
        for i in 0..40 {
            let slot = Slot { key: Key::new(&key(i)), stmts: Stmts::Inline([stmt(1), VACANT, VACANT]) };
            shard.insert(hash(key(i).as_bytes()), slot, hash).expect("fits");
        }
        shard.reserve(1_000, hash);
        let (index, capacity) = (shard.index.len(), shard.slots.capacity());
        // Those already held are found again in the rebuilt index.
        assert!((0..40).all(|i| shard.find(hash(key(i).as_bytes()), &key(i)).is_some()));
        for i in 40..1_040 {
            let slot = Slot { key: Key::new(&key(i)), stmts: Stmts::Inline([stmt(1), VACANT, VACANT]) };
            shard.insert(hash(key(i).as_bytes()), slot, hash).expect("fits");
        }
        assert_eq!((shard.index.len(), shard.slots.capacity()), (index, capacity));
        assert!((0..1_040).all(|i| shard.find(hash(key(i).as_bytes()), &key(i)).is_some()));
    }

    #[test]
    fn statements_keep_their_order_inline_and_on_the_heap() {
        let mut s = Stmts::Inline([stmt(1), VACANT, VACANT]);
        for seq in 2..=6 {
            s.push(stmt(seq));
            let seqs: Vec<u64> = s.as_slice().iter().map(|s| s.seq).collect();
            assert_eq!(seqs, (1..=seq).collect::<Vec<_>>());
        }
        assert!(matches!(s, Stmts::Heap(_)));
    }

    #[test]
    fn forget_keeps_other_subjects() {
        let engine = Engine::new();
        let event = |seq| {
            Event::place(
                crate::ledger::NewEvent {
                    evidence: None,
                    occurred_at: None,
                    jurisdiction: None,
                    purpose: "p".into(),
                    action: Action::Grant,
                    scope: crate::ledger::Scope::default(),
                    notice: None,
                    notice_version: None,
                    notice_hash: None,
                    collection_point: None,
                    actor: "a".into(),
                    expires_at: None,
                },
                seq,
                "p".into(),
                Timestamp::from_micros(0),
                String::new(),
            )
        };
        let name = |i: u64| {
            if i.is_multiple_of(2) { format!("s{i}") } else { format!("subject-with-a-long-id-{i}") }
        };
        for i in 0..5_000 {
            engine.apply(&name(i), &event(i + 1)).expect("fits");
        }
        for i in (0..5_000).step_by(3) {
            engine.forget(&name(i));
        }
        assert_eq!(engine.subject_count(), 5_000 - 1_667);
        for i in 0..5_000 {
            let (hash, shard) = engine.shard_of(&name(i));
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            let found = shard.find(hash, &name(i)).map(|(_, s)| shard.slots[s].stmts.as_slice()[0].seq);
            assert_eq!(found, (!i.is_multiple_of(3)).then_some(i + 1), "{}", name(i));
        }
    }
}
