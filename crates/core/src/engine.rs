//! The decision engine: answers "may we use this data for this purpose, through this channel, now?" from
//! memory, in well under a microsecond, without I/O and without allocating.
//!
//! # State
//!
//! For each subject the engine keeps the latest statement per *(purpose, exact scope)*: a later event with
//! the same purpose and scope replaces an earlier one, anything else accumulates. Applying events is
//! commutative (the higher ledger sequence number wins), so events may be applied in any order and more
//! than once, which keeps several nodes and concurrent writers simple.
//!
//! # Rules
//!
//! * Default deny: an unknown subject, or a consent purpose with no covering grant, is denied.
//! * A statement on a purpose also speaks for every purpose under it (`marketing` covers
//!   `marketing.direct`). A statement on a data category also speaks for the categories under it.
//! * A grant covers a query when its scope includes the query's category, channel and recipient; an empty
//!   scope list covers that whole dimension. A query that leaves a dimension out asks about all of it, so
//!   only a grant unscoped in that dimension covers it.
//! * A negative statement (deny, withdraw, object, restrict, expire) applies to a query when its scope
//!   overlaps it. It blocks a grant it applies to when it is *later* than the grant, or *more specific*:
//!   on a purpose under the grant's purpose, or on the same purpose with a strictly narrower scope. So a
//!   later withdraw always wins, and a specific deny wins over a broader grant whenever it was given.
//! * A grant past its `expires_at` does not count; when nothing else decides, the answer is `expired`.
//! * The query must fit what the purpose declares in the catalogue (its categories, channels, recipients);
//!   otherwise the answer is `not_covered`.
//! * A purpose whose basis is not consent is allowed (`basis_contract`, ...) unless an `object` or
//!   `restrict` statement applies to it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{PoisonError, RwLock};

use serde::Serialize;

use crate::catalog::{Basis, Catalog};
use crate::ids::parent_key;
use crate::ledger::{ACTOR_GPC, Action, Event};
use crate::time::Timestamp;

/// Why a check came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Granted,
    BasisContract,
    BasisLegitimateInterest,
    BasisLegalObligation,
    BasisVitalInterest,
    BasisPublicTask,
    NoConsent,
    Withdrawn,
    Denied,
    Expired,
    Objected,
    Restricted,
    NotCovered,
    GpcOptOut,
    /// The subject was erased (Art. 17); the server answers this, the engine no longer knows them.
    Erased,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Granted,
        Reason::BasisContract,
        Reason::BasisLegitimateInterest,
        Reason::BasisLegalObligation,
        Reason::BasisVitalInterest,
        Reason::BasisPublicTask,
        Reason::NoConsent,
        Reason::Withdrawn,
        Reason::Denied,
        Reason::Expired,
        Reason::Objected,
        Reason::Restricted,
        Reason::NotCovered,
        Reason::GpcOptOut,
        Reason::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Granted => "granted",
            Reason::BasisContract => "basis_contract",
            Reason::BasisLegitimateInterest => "basis_legitimate_interest",
            Reason::BasisLegalObligation => "basis_legal_obligation",
            Reason::BasisVitalInterest => "basis_vital_interest",
            Reason::BasisPublicTask => "basis_public_task",
            Reason::NoConsent => "no_consent",
            Reason::Withdrawn => "withdrawn",
            Reason::Denied => "denied",
            Reason::Expired => "expired",
            Reason::Objected => "objected",
            Reason::Restricted => "restricted",
            Reason::NotCovered => "not_covered",
            Reason::GpcOptOut => "gpc_opt_out",
            Reason::Erased => "erased",
        }
    }

    fn for_basis(basis: Basis) -> Self {
        match basis {
            Basis::Consent => Reason::Granted,
            Basis::Contract => Reason::BasisContract,
            Basis::LegitimateInterest => Reason::BasisLegitimateInterest,
            Basis::LegalObligation => Reason::BasisLegalObligation,
            Basis::VitalInterest => Reason::BasisVitalInterest,
            Basis::PublicTask => Reason::BasisPublicTask,
        }
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// Ledger sequence number of the event the answer rests on, if any.
    pub event_seq: Option<u64>,
}

impl Decision {
    const fn deny(reason: Reason, event_seq: Option<u64>) -> Self {
        Self { allowed: false, reason, event_seq }
    }
}

/// One question to the engine. Borrowed strings: a check allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub subject: &'a str,
    pub purpose: &'a str,
    pub category: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub recipient: Option<&'a str>,
}

/// A query that names something the catalogue does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown purpose")]
    UnknownPurpose,
    #[error("unknown data category")]
    UnknownCategory,
    #[error("unknown channel")]
    UnknownChannel,
    #[error("unknown recipient")]
    UnknownRecipient,
}

/// The engine cannot represent more distinct purposes than this (a catalogue has dozens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many distinct purposes, categories, channels, recipients or scopes for the engine")]
pub struct CapacityError;

const FLAG_GPC: u8 = 1;

/// One remembered statement. Kept at 24 bytes: the engine holds millions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stmt {
    seq: u64,
    /// Microseconds since the epoch; `i64::MAX` when the statement does not expire.
    expires_at: i64,
    scope: u32,
    purpose: u16,
    action: Action,
    flags: u8,
}

/// Marks an unused entry of [`Stmts::Inline`]; never set on a statement the engine holds.
const FLAG_VACANT: u8 = 0x80;

const VACANT: Stmt =
    Stmt { seq: 0, expires_at: 0, scope: 0, purpose: 0, action: Action::Grant, flags: FLAG_VACANT };

/// A subject's statements: up to three inline (the vacant ones last), more on the heap.
#[derive(Debug)]
enum Stmts {
    Inline([Stmt; 3]),
    Heap(Box<[Stmt]>),
}

impl Stmts {
    fn as_slice(&self) -> &[Stmt] {
        match self {
            Stmts::Inline(s) => &s[..s.iter().take_while(|s| s.flags & FLAG_VACANT == 0).count()],
            Stmts::Heap(s) => s,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Stmt] {
        match self {
            Stmts::Inline(s) => {
                let n = s.iter().take_while(|s| s.flags & FLAG_VACANT == 0).count();
                &mut s[..n]
            }
            Stmts::Heap(s) => s,
        }
    }

    fn push(&mut self, stmt: Stmt) {
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
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl Key {
    fn new(subject: &str) -> Self {
        let src = subject.as_bytes();
        if src.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..src.len()].copy_from_slice(src);
            Key::Inline { len: src.len() as u8, bytes }
        } else {
            Key::Heap(subject.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(s) => s.as_bytes(),
        }
    }
}

/// One subject: its id and statements in one contiguous record, so a check touches one place.
#[derive(Debug)]
struct Slot {
    key: Key,
    stmts: Stmts,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 96);

/// A shard's subjects: dense slots, and an open-addressing index into them.
///
/// An index entry is `0` when empty, else `(hash bits above the mask) | (slot + 1)`: the stored hash bits
/// filter out nearly every other subject before its slot is read, so a look-up costs one index line and
/// one slot. Four bytes an entry keep the index small enough to stay largely in cache. Linear probing, at
/// most 3/4 full, with backward-shift deletion (no tombstones); growing and deleting rehash keys.
#[derive(Debug, Default)]
struct Shard {
    slots: Vec<Slot>,
    index: Box<[u32]>,
}

/// Slots per shard stay below this, so the index stays within 2^32 buckets and a slot number fits.
const MAX_SLOTS: usize = 1 << 31;

impl Shard {
    fn find(&self, hash: u64, subject: &str) -> Option<(usize, usize)> {
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
    fn insert(&mut self, hash: u64, slot: Slot, rehash: impl Fn(&[u8]) -> u64) -> Result<(), CapacityError> {
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

    /// Removes the entry at `pos`, which points at slot `i`, and the slot; `rehash` computes a key's hash.
    fn remove(&mut self, pos: usize, i: usize, rehash: impl Fn(&[u8]) -> u64) {
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

/// Interned scope: sorted symbol ids per dimension; empty means the whole dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct ScopeDef {
    categories: Box<[u32]>,
    channels: Box<[u32]>,
    recipients: Box<[u32]>,
}

#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

#[derive(Debug)]
struct PurposeInfo {
    basis: Basis,
    /// The purpose itself and then its ancestors, each with its depth (0 at the top).
    chain: Box<[(u16, u8)]>,
    categories: Box<[u32]>,
    channels: Box<[u32]>,
    recipients: Box<[u32]>,
}

/// The current catalogue, compiled to symbol ids.
#[derive(Debug, Default)]
struct Compiled {
    purposes: Vec<Option<PurposeInfo>>,
    /// Per category symbol: itself and its ancestors.
    categories: Vec<Option<Box<[u32]>>>,
    channels: Vec<bool>,
    recipients: Vec<bool>,
    sale_or_sharing: Vec<u16>,
}

#[derive(Debug, Default)]
struct Shared {
    purposes: Interner,
    categories: Interner,
    channels: Interner,
    recipients: Interner,
    scopes: Vec<ScopeDef>,
    scope_ids: HashMap<ScopeDef, u32, foldhash::fast::RandomState>,
    compiled: Compiled,
}

/// The in-memory consent state of every subject, and the rules that decide on it.
#[derive(Debug)]
pub struct Engine {
    shared: RwLock<Shared>,
    shards: Box<[RwLock<Shard>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

const SHARDS: usize = 64;

/// The resolved dimensions of a query.
struct Resolved<'s> {
    /// The query's category and its ancestors.
    category: Option<&'s [u32]>,
    channel: Option<u32>,
    recipient: Option<u32>,
}

impl Engine {
    pub fn new() -> Self {
        Self {
            shared: RwLock::default(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Installs a catalogue version. Statements already held keep their meaning: symbols never change.
    pub fn set_catalog(&self, catalog: &Catalog) -> Result<(), CapacityError> {
        let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        let shared = &mut *shared;
        let doc = catalog.document();
        let mut compiled = Compiled::default();

        for c in &doc.data_categories {
            let mut chain = vec![shared.categories.intern(&c.key)];
            let mut key = c.key.as_str();
            while let Some(parent) = parent_key(key) {
                chain.push(shared.categories.intern(parent));
                key = parent;
            }
            let id = chain[0] as usize;
            if compiled.categories.len() <= id {
                compiled.categories.resize(id + 1, None);
            }
            compiled.categories[id] = Some(chain.into());
        }
        for ch in &doc.channels {
            let id = shared.channels.intern(&ch.key) as usize;
            if compiled.channels.len() <= id {
                compiled.channels.resize(id + 1, false);
            }
            compiled.channels[id] = true;
        }
        for r in &doc.recipients {
            let id = shared.recipients.intern(&r.key) as usize;
            if compiled.recipients.len() <= id {
                compiled.recipients.resize(id + 1, false);
            }
            compiled.recipients[id] = true;
        }
        for p in &doc.purposes {
            let mut chain = Vec::new();
            let mut key = Some(p.key.as_str());
            while let Some(k) = key {
                let id = u16::try_from(shared.purposes.intern(k)).map_err(|_| CapacityError)?;
                chain.push(id);
                key = parent_key(k);
            }
            let top = chain.len() - 1;
            let chain: Box<[(u16, u8)]> =
                chain.iter().enumerate().map(|(i, &id)| (id, (top - i) as u8)).collect();
            let sym = |i: &mut Interner, list: &[String]| -> Box<[u32]> {
                list.iter().map(|k| i.intern(k)).collect()
            };
            let info = PurposeInfo {
                basis: p.basis,
                categories: sym(&mut shared.categories, &p.categories),
                channels: sym(&mut shared.channels, &p.channels),
                recipients: sym(&mut shared.recipients, &p.recipients),
                chain,
            };
            let id = info.chain[0].0;
            if p.sale_or_sharing {
                compiled.sale_or_sharing.push(id);
            }
            let idx = usize::from(id);
            if compiled.purposes.len() <= idx {
                compiled.purposes.resize_with(idx + 1, || None);
            }
            compiled.purposes[idx] = Some(info);
        }
        shared.compiled = compiled;
        Ok(())
    }

    fn shard_of(&self, subject: &str) -> (u64, &RwLock<Shard>) {
        let hash = self.hasher.hash_one(subject.as_bytes());
        // The low bits pick the bucket inside a shard's index; use high bits for the shard.
        let shard = (hash >> 58) as usize % SHARDS;
        (hash, &self.shards[shard])
    }

    /// Applies one placed ledger event of `subject`. Idempotent and commutative.
    pub fn apply(&self, subject: &str, event: &Event) -> Result<(), CapacityError> {
        let (purpose, scope) = self.intern_event(event)?;
        let stmt = Stmt {
            seq: event.seq,
            expires_at: event.expires_at.map_or(i64::MAX, Timestamp::micros),
            scope,
            purpose,
            action: event.action,
            flags: if event.actor == ACTOR_GPC { FLAG_GPC } else { 0 },
        };
        let (hash, shard) = self.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        match shard.find(hash, subject) {
            Some((_, i)) => {
                let stmts = &mut shard.slots[i].stmts;
                match stmts.as_mut_slice().iter_mut().find(|s| s.purpose == purpose && s.scope == scope) {
                    Some(existing) if existing.seq >= stmt.seq => {}
                    Some(existing) => *existing = stmt,
                    None => stmts.push(stmt),
                }
                Ok(())
            }
            None => {
                let slot = Slot { key: Key::new(subject), stmts: Stmts::Inline([stmt, VACANT, VACANT]) };
                shard.insert(hash, slot, |key| self.hasher.hash_one(key))
            }
        }
    }

    fn intern_event(&self, event: &Event) -> Result<(u16, u32), CapacityError> {
        {
            let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = Self::lookup_event(&shared, event) {
                return Ok(found);
            }
        }
        let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        let purpose = u16::try_from(shared.purposes.intern(&event.purpose)).map_err(|_| CapacityError)?;
        let ids = |i: &mut Interner, list: &[String]| -> Box<[u32]> {
            let mut v: Vec<u32> = list.iter().map(|k| i.intern(k)).collect();
            v.sort_unstable();
            v.dedup();
            v.into()
        };
        let def = ScopeDef {
            categories: ids(&mut shared.categories, &event.scope.categories),
            channels: ids(&mut shared.channels, &event.scope.channels),
            recipients: ids(&mut shared.recipients, &event.scope.recipients),
        };
        let scope = match shared.scope_ids.get(&def) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(shared.scopes.len()).map_err(|_| CapacityError)?;
                shared.scopes.push(def.clone());
                shared.scope_ids.insert(def, id);
                id
            }
        };
        Ok((purpose, scope))
    }

    fn lookup_event(shared: &Shared, event: &Event) -> Option<(u16, u32)> {
        let purpose = u16::try_from(shared.purposes.get(&event.purpose)?).ok()?;
        let ids = |i: &Interner, list: &[String]| -> Option<Box<[u32]>> {
            let mut v = list.iter().map(|k| i.get(k)).collect::<Option<Vec<u32>>>()?;
            v.sort_unstable();
            v.dedup();
            Some(v.into())
        };
        let def = ScopeDef {
            categories: ids(&shared.categories, &event.scope.categories)?,
            channels: ids(&shared.channels, &event.scope.channels)?,
            recipients: ids(&shared.recipients, &event.scope.recipients)?,
        };
        Some((purpose, *shared.scope_ids.get(&def)?))
    }

    /// Forgets a subject entirely (erasure).
    pub fn forget(&self, subject: &str) {
        let (hash, shard) = self.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((pos, i)) = shard.find(hash, subject) {
            shard.remove(pos, i, |key| self.hasher.hash_one(key));
        }
    }

    /// Forgets every subject `erased` picks (erasures made on other nodes, known only by a keyed hash
    /// of the id). Visits every subject, so it is for rare, batched use. Returns how many it forgot.
    pub fn forget_where(&self, erased: impl Fn(&str) -> bool) -> usize {
        let mut forgotten = 0;
        for shard in &self.shards {
            let picked: Vec<String> = shard
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .slots
                .iter()
                .filter_map(|slot| std::str::from_utf8(slot.key.as_bytes()).ok())
                .filter(|subject| erased(subject))
                .map(str::to_owned)
                .collect();
            for subject in picked {
                self.forget(&subject);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// Whether the engine holds any statement of `subject`.
    pub fn contains(&self, subject: &str) -> bool {
        let (hash, shard) = self.shard_of(subject);
        shard.read().unwrap_or_else(PoisonError::into_inner).find(hash, subject).is_some()
    }

    /// Number of subjects with at least one statement.
    pub fn subject_count(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap_or_else(PoisonError::into_inner).slots.len()).sum()
    }

    /// The purposes marked as sale or sharing in the current catalogue.
    pub fn sale_or_sharing_purposes(&self) -> Vec<String> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        shared
            .compiled
            .sale_or_sharing
            .iter()
            .map(|&id| shared.purposes.name(u32::from(id)).to_owned())
            .collect()
    }

    fn purpose_info<'s>(shared: &'s Shared, purpose: &str) -> Option<&'s PurposeInfo> {
        let id = shared.purposes.get(purpose)?;
        shared.compiled.purposes.get(id as usize)?.as_ref()
    }

    /// Decides one query at time `now`.
    pub fn check(&self, q: &Query<'_>, now: Timestamp) -> Result<Decision, QueryError> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        // Hash the subject first: reading its bytes (often a cache miss) then overlaps resolving the rest.
        let (hash, shard) = self.shard_of(q.subject);
        let (info, r) = match Self::prepare(&shared, q)? {
            Prepared::Decided(d) => return Ok(d),
            Prepared::Ready(info, r) => (info, r),
        };
        let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
        let stmts = shard.find(hash, q.subject).map_or(&[][..], |(_, i)| shard.slots[i].stmts.as_slice());
        Ok(decide(&shared, info, &r, stmts, now.micros()))
    }

    /// Decides `q` as if `extra` (placed events of `q.subject` that the engine does not hold yet) were
    /// applied: the decision a change results in, known before the change is committed.
    pub fn check_with(&self, q: &Query<'_>, extra: &[Event], now: Timestamp) -> Result<Decision, QueryError> {
        let mut added = Vec::with_capacity(extra.len());
        for e in extra {
            let (purpose, scope) = self.intern_event(e).map_err(|_| QueryError::UnknownPurpose)?;
            added.push(Stmt {
                seq: e.seq,
                expires_at: e.expires_at.map_or(i64::MAX, Timestamp::micros),
                scope,
                purpose,
                action: e.action,
                flags: if e.actor == ACTOR_GPC { FLAG_GPC } else { 0 },
            });
        }
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        let (hash, shard) = self.shard_of(q.subject);
        let (info, r) = match Self::prepare(&shared, q)? {
            Prepared::Decided(d) => return Ok(d),
            Prepared::Ready(info, r) => (info, r),
        };
        let mut stmts: Vec<Stmt> = {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            shard
                .find(hash, q.subject)
                .map_or_else(Vec::new, |(_, i)| shard.slots[i].stmts.as_slice().to_vec())
        };
        // The same merge as `apply`: the higher sequence number wins per purpose and scope.
        for stmt in added {
            match stmts.iter_mut().find(|s| s.purpose == stmt.purpose && s.scope == stmt.scope) {
                Some(existing) if existing.seq >= stmt.seq => {}
                Some(existing) => *existing = stmt,
                None => stmts.push(stmt),
            }
        }
        Ok(decide(&shared, info, &r, &stmts, now.micros()))
    }

    /// Resolves a query's names; answers at once when the query falls outside what the purpose declares.
    fn prepare<'s>(shared: &'s Shared, q: &Query<'_>) -> Result<Prepared<'s>, QueryError> {
        let info = Self::purpose_info(shared, q.purpose).ok_or(QueryError::UnknownPurpose)?;
        let c = &shared.compiled;
        let category = match q.category {
            None => None,
            Some(k) => Some(
                shared
                    .categories
                    .get(k)
                    .and_then(|id| c.categories.get(id as usize)?.as_deref())
                    .ok_or(QueryError::UnknownCategory)?,
            ),
        };
        let known = |i: &Interner, flags: &[bool], k: Option<&str>, err| match k {
            None => Ok(None),
            Some(k) => i.get(k).filter(|&id| flags.get(id as usize) == Some(&true)).map(Some).ok_or(err),
        };
        let channel = known(&shared.channels, &c.channels, q.channel, QueryError::UnknownChannel)?;
        let recipient = known(&shared.recipients, &c.recipients, q.recipient, QueryError::UnknownRecipient)?;
        let r = Resolved { category, channel, recipient };

        // The query must fit what the purpose declares.
        let outside = category.is_some_and(|anc| {
            !info.categories.is_empty() && !info.categories.iter().any(|d| anc.contains(d))
        }) || channel
            .is_some_and(|ch| !info.channels.is_empty() && !info.channels.contains(&ch))
            || recipient.is_some_and(|rc| !info.recipients.is_empty() && !info.recipients.contains(&rc));
        if outside {
            return Ok(Prepared::Decided(Decision::deny(Reason::NotCovered, None)));
        }
        Ok(Prepared::Ready(info, r))
    }
}

enum Prepared<'s> {
    Decided(Decision),
    Ready(&'s PurposeInfo, Resolved<'s>),
}

/// The depth of `purpose` if it is the queried purpose or one of its ancestors.
fn depth_in(info: &PurposeInfo, purpose: u16) -> Option<u8> {
    info.chain.iter().find(|(id, _)| *id == purpose).map(|(_, d)| *d)
}

fn decide(shared: &Shared, info: &PurposeInfo, r: &Resolved<'_>, stmts: &[Stmt], now: i64) -> Decision {
    let scope = |s: &Stmt| &shared.scopes[s.scope as usize];
    let relevant = || stmts.iter().filter_map(|s| depth_in(info, s.purpose).map(|d| (s, d)));

    if info.basis != Basis::Consent {
        let blocker = relevant()
            .filter(|(s, _)| matches!(s.action, Action::Object | Action::Restrict))
            .filter(|(s, _)| applies(shared, scope(s), r))
            .max_by_key(|(s, _)| s.seq);
        return match blocker {
            Some((s, _)) => Decision::deny(negative_reason(s), Some(s.seq)),
            None => Decision { allowed: true, reason: Reason::for_basis(info.basis), event_seq: None },
        };
    }

    let negatives = || relevant().filter(|(s, _)| !s.action.is_positive() && applies(shared, scope(s), r));
    let mut best: Option<&Stmt> = None;
    let mut any_covering = false;
    for (g, g_depth) in relevant().filter(|(s, _)| s.action.is_positive() && s.expires_at > now) {
        if !covers(scope(g), r) {
            continue;
        }
        any_covering = true;
        let blocked = negatives().any(|(n, n_depth)| {
            n.seq > g.seq
                || n_depth > g_depth
                || (n_depth == g_depth && strictly_narrower(shared, scope(n), scope(g)))
        });
        if !blocked && best.is_none_or(|b| g.seq > b.seq) {
            best = Some(g);
        }
    }
    if let Some(g) = best {
        return Decision { allowed: true, reason: Reason::Granted, event_seq: Some(g.seq) };
    }
    if let Some((n, _)) = negatives().max_by_key(|(s, _)| s.seq) {
        return Decision::deny(negative_reason(n), Some(n.seq));
    }
    debug_assert!(!any_covering, "a covering grant is either allowed or blocked by a negative");
    let positives = || relevant().filter(|(s, _)| s.action.is_positive());
    if let Some((g, _)) = positives().filter(|(s, _)| covers(scope(s), r)).max_by_key(|(s, _)| s.seq) {
        // Covering, but not live: it has expired.
        return Decision::deny(Reason::Expired, Some(g.seq));
    }
    if let Some((g, _)) = positives().max_by_key(|(s, _)| s.seq) {
        return Decision::deny(Reason::NotCovered, Some(g.seq));
    }
    Decision::deny(Reason::NoConsent, None)
}

fn negative_reason(s: &Stmt) -> Reason {
    match s.action {
        Action::Withdraw if s.flags & FLAG_GPC != 0 => Reason::GpcOptOut,
        Action::Withdraw => Reason::Withdrawn,
        Action::Deny => Reason::Denied,
        Action::Object => Reason::Objected,
        Action::Restrict => Reason::Restricted,
        Action::Expire => Reason::Expired,
        // Positive actions never reach here; deny rather than guess.
        Action::Grant | Action::Renew => Reason::Denied,
    }
}

/// Whether a grant with `scope` covers every use the query asks about.
fn covers(scope: &ScopeDef, r: &Resolved<'_>) -> bool {
    let categories = scope.categories.is_empty()
        || r.category.is_some_and(|anc| scope.categories.iter().any(|c| anc.contains(c)));
    let channels = scope.channels.is_empty() || r.channel.is_some_and(|ch| scope.channels.contains(&ch));
    let recipients =
        scope.recipients.is_empty() || r.recipient.is_some_and(|rc| scope.recipients.contains(&rc));
    categories && channels && recipients
}

/// Whether a negative statement with `scope` touches any use the query asks about.
fn applies(shared: &Shared, scope: &ScopeDef, r: &Resolved<'_>) -> bool {
    let categories = scope.categories.is_empty()
        || match r.category {
            None => true,
            Some(anc) => scope.categories.iter().any(|&c| {
                // Overlap: the statement's category lies under the query's, or the other way round.
                anc.contains(&c) || category_chain(shared, c).is_some_and(|chain| chain.contains(&anc[0]))
            }),
        };
    let channels = scope.channels.is_empty() || r.channel.is_none_or(|ch| scope.channels.contains(&ch));
    let recipients =
        scope.recipients.is_empty() || r.recipient.is_none_or(|rc| scope.recipients.contains(&rc));
    categories && channels && recipients
}

fn category_chain(shared: &Shared, id: u32) -> Option<&[u32]> {
    shared.compiled.categories.get(id as usize)?.as_deref()
}

/// Whether scope `a` covers strictly less than scope `b`.
fn strictly_narrower(shared: &Shared, a: &ScopeDef, b: &ScopeDef) -> bool {
    let cat_within = |x: u32, y: u32| x == y || category_chain(shared, x).is_some_and(|c| c.contains(&y));
    let flat_within = |x: u32, y: u32| x == y;
    let subset = |a: &[u32], b: &[u32], within: &dyn Fn(u32, u32) -> bool| {
        b.is_empty() || (!a.is_empty() && a.iter().all(|&x| b.iter().any(|&y| within(x, y))))
    };
    let a_in_b = subset(&a.categories, &b.categories, &cat_within)
        && subset(&a.channels, &b.channels, &flat_within)
        && subset(&a.recipients, &b.recipients, &flat_within);
    let b_in_a = subset(&b.categories, &a.categories, &cat_within)
        && subset(&b.channels, &a.channels, &flat_within)
        && subset(&b.recipients, &a.recipients, &flat_within);
    a_in_b && !b_in_a
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod layout_tests {
    use std::collections::HashMap;

    use super::*;

    fn stmt(seq: u64) -> Stmt {
        Stmt { seq, expires_at: i64::MAX, scope: 0, purpose: seq as u16, action: Action::Grant, flags: 0 }
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
