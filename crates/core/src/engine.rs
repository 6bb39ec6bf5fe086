//! The decision engine: answers "may we use this data for this purpose, through this channel, now?" from
//! memory, in well under a microsecond, without I/O and without allocating.
//!
//! # State
//!
//! For each subject the engine keeps the latest statement per *(purpose, exact scope, stance)*: a later
//! event with the same purpose, scope and stance replaces an earlier one, anything else accumulates. The
//! stance ([`Action::stance`]) keeps an objection and a restriction apart from the consent choice (grant,
//! deny, withdraw, expire): a withdrawal after an objection answers the consent question and leaves the
//! objection standing, so a purpose on another legal basis that the objection binds stays objected to. "Later" means the later
//! effective time (an imported change's original `occurred_at`, else its `recorded_at`), ties broken by
//! the higher ledger sequence number; so a grant imported today from 2023 never overrides a withdrawal
//! recorded in 2025. Applying events is commutative, so events may be applied in any order and more than
//! once, which keeps several nodes, concurrent writers and imports of unsorted files simple.
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
//!   overlaps it. It blocks a grant it applies to when it is *later* than the grant (in the order above),
//!   or *more specific*:
//!   on a purpose under the grant's purpose, or on the same purpose with a strictly narrower scope. So a
//!   later withdraw always wins, and a specific deny wins over a broader grant whenever it was given.
//! * A grant past its `expires_at` does not count; when nothing else decides, the answer is `expired`.
//! * The query must fit what the purpose declares in the catalogue (its categories, channels, recipients);
//!   otherwise the answer is `not_covered`.
//! * A purpose whose basis is not consent is allowed (`basis_contract`, ...) unless an `object` or
//!   `restrict` statement applies to it.

mod image;
mod memory;
mod rules;
mod symbols;
mod tally;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use serde::Serialize;

pub use self::image::{
    IMAGE_KEY, IMAGE_VERSION, ImageError, ImageLoad, LEDGER_HASH, LoadedImage, SavedImage, image_covers,
};
use self::memory::{
    CHILD, FLAG_CHILD_UNTIL, FLAG_GPC, FLAG_GUARDIAN, JURISDICTION, Key, Shard, Slot, Stmt, Stmts, VACANT,
};
use self::rules::Prepared;
pub use self::symbols::DEFAULT_AGE_OF_CONSENT;
use self::symbols::Shared;
pub use self::tally::PurposeTally;
use crate::catalog::{Basis, Catalog};
use crate::ledger::{ACTOR_GPC, Action, Event, is_guardian_actor};
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
    /// Allowed under an opt-out regime (the check's or the subject's jurisdiction) until the person opts
    /// out: nothing they said applies to the use.
    NotOptedOut,
    /// The subject was erased (Art. 17); the server answers this, the engine no longer knows them.
    Erased,
    /// A known child's consent purpose with no grant a guardian made (GDPR Art. 8).
    GuardianRequired,
    /// A purpose of kind sale or sharing (or marked `sale_or_sharing`) for a known child: never allowed,
    /// whoever consented.
    ChildProtected,
}

impl Reason {
    pub const ALL: [Reason; 18] = [
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
        Reason::NotOptedOut,
        Reason::Erased,
        Reason::GuardianRequired,
        Reason::ChildProtected,
    ];

    /// The reason's place in [`Reason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

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
            Reason::NotOptedOut => "not_opted_out",
            Reason::Erased => "erased",
            Reason::GuardianRequired => "guardian_required",
            Reason::ChildProtected => "child_protected",
        }
    }

    /// Whether a decision with this reason allows the use: the one place that pairs reasons with answers.
    pub const fn is_allowed(self) -> bool {
        matches!(
            self,
            Reason::Granted
                | Reason::BasisContract
                | Reason::BasisLegitimateInterest
                | Reason::BasisLegalObligation
                | Reason::BasisVitalInterest
                | Reason::BasisPublicTask
                | Reason::NotOptedOut
        )
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

/// Which part of a query was not covered, when a decision is [`Reason::NotCovered`]. When several are,
/// the first in the order category, channel, recipient (purpose last, which only a device's offline
/// decision reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Category,
    Channel,
    Recipient,
    /// A device's offline decision only: the device did not declare the purpose at pairing, or the
    /// snapshot's catalogue slice does not hold it.
    Purpose,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Category => "category",
            Dimension::Channel => "channel",
            Dimension::Recipient => "recipient",
            Dimension::Purpose => "purpose",
        }
    }
}

/// The answer to a check. `not_covered` is set exactly when `reason` is [`Reason::NotCovered`], and
/// `allowed` is `reason.is_allowed()`: build one with [`Decision::new`] or [`Decision::not_covered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// Ledger sequence number of the event the answer rests on, if any.
    pub event_seq: Option<u64>,
    /// What the query asked about that was not covered, when `reason` is `not_covered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_covered: Option<Dimension>,
}

impl Decision {
    /// The decision for `reason`, which must not be [`Reason::NotCovered`] (that one names its
    /// [`Dimension`]: use [`Decision::not_covered`]).
    pub const fn new(reason: Reason, event_seq: Option<u64>) -> Self {
        debug_assert!(!matches!(reason, Reason::NotCovered), "not_covered names its dimension");
        Self { allowed: reason.is_allowed(), reason, event_seq, not_covered: None }
    }

    /// A `not_covered` denial naming what was not covered.
    pub const fn not_covered(dimension: Dimension, event_seq: Option<u64>) -> Self {
        Self { allowed: false, reason: Reason::NotCovered, event_seq, not_covered: Some(dimension) }
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
    /// The place whose rules decide (a key of the catalogue's `jurisdictions`); `None`: the subject's
    /// own jurisdiction if they carry one, else the default (opt-in everywhere).
    pub jurisdiction: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// The whole purpose for `subject`, through `channel` if one is named: any data category, any
    /// recipient, the subject's own jurisdiction. What a person's own view of a purpose asks.
    pub fn whole_purpose(subject: &'a str, purpose: &'a str, channel: Option<&'a str>) -> Self {
        Query { subject, purpose, category: None, channel, recipient: None, jurisdiction: None }
    }
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
    #[error("unknown jurisdiction")]
    UnknownJurisdiction,
}

/// The engine cannot represent more distinct purposes than this (a catalogue has dozens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many distinct purposes, categories, channels, recipients or scopes for the engine")]
pub struct CapacityError;

/// The in-memory consent state of every subject, and the rules that decide on it.
#[derive(Debug)]
pub struct Engine {
    shared: RwLock<Shared>,
    shards: Box<[RwLock<Shard>]>,
    hasher: foldhash::fast::RandomState,
    /// Bumped on every change of state ([`Engine::generation`]).
    generation: AtomicU64,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

const SHARDS: usize = 64;

impl Engine {
    pub fn new() -> Self {
        Self {
            shared: RwLock::default(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Installs a catalogue version. Statements already held keep their meaning: symbols never change.
    pub fn set_catalog(&self, catalog: &Catalog) -> Result<(), CapacityError> {
        let installed = self.shared.write().unwrap_or_else(PoisonError::into_inner).install(catalog);
        // After the change, so that a reader seeing the new generation sees the change too.
        self.generation.fetch_add(1, Ordering::Release);
        installed
    }

    fn shard_of(&self, subject: &str) -> (u64, &RwLock<Shard>) {
        let hash = self.hasher.hash_one(subject.as_bytes());
        // The low bits pick the bucket inside a shard's index; use high bits for the shard.
        let shard = (hash >> 58) as usize % SHARDS;
        (hash, &self.shards[shard])
    }

    /// Applies one placed ledger event of `subject`. Idempotent and commutative.
    pub fn apply(&self, subject: &str, event: &Event) -> Result<(), CapacityError> {
        // A `locate` event states nothing about a purpose, only the subject's jurisdiction.
        let stmt = if event.action == Action::Locate { None } else { Some(self.statement(event)?) };
        let place = event.jurisdiction.as_deref().map(|j| self.jurisdiction_statement(j, event));
        let (hash, shard) = self.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        let mut applied = Ok(());
        for stmt in [stmt, place].into_iter().flatten() {
            if applied.is_ok() {
                applied = self.apply_in(&mut shard, hash, subject, stmt);
            }
        }
        drop(shard);
        self.generation.fetch_add(1, Ordering::Release);
        applied
    }

    fn apply_in(&self, shard: &mut Shard, hash: u64, subject: &str, stmt: Stmt) -> Result<(), CapacityError> {
        match shard.find(hash, subject) {
            Some((_, i)) => {
                merge(&mut shard.slots[i].stmts, stmt);
                Ok(())
            }
            None => {
                let slot = Slot { key: Key::new(subject), stmts: Stmts::Inline([stmt, VACANT, VACANT]) };
                shard.insert(hash, slot, |key| self.hasher.hash_one(key))
            }
        }
    }

    /// The statement holding the subject's jurisdiction `key` from `event` on.
    fn jurisdiction_statement(&self, key: &str, event: &Event) -> Stmt {
        let known = self.shared.read().unwrap_or_else(PoisonError::into_inner).jurisdictions.get(key);
        let scope = known.unwrap_or_else(|| {
            self.shared.write().unwrap_or_else(PoisonError::into_inner).intern_jurisdiction(key)
        });
        Stmt {
            at: event.effective_at().micros(),
            seq: event.seq,
            expires_at: i64::MAX,
            scope,
            purpose: JURISDICTION,
            action: Action::Grant,
            flags: 0,
        }
    }

    /// The statement `event` makes, its names interned (under the read lock when they are known).
    fn statement(&self, event: &Event) -> Result<Stmt, CapacityError> {
        let known = self.shared.read().unwrap_or_else(PoisonError::into_inner).lookup_event(event);
        let (purpose, scope) = match known {
            Some(found) => found,
            None => self.shared.write().unwrap_or_else(PoisonError::into_inner).intern_event(event)?,
        };
        Ok(Stmt {
            at: event.effective_at().micros(),
            seq: event.seq,
            expires_at: event.expires_at.map_or(i64::MAX, Timestamp::micros),
            scope,
            purpose,
            action: event.action,
            flags: if event.actor == ACTOR_GPC {
                FLAG_GPC
            } else if is_guardian_actor(&event.actor) {
                FLAG_GUARDIAN
            } else {
                0
            },
        })
    }

    /// Records what is known of `subject`'s age: their (assumed) birth date. Whether they are a child is
    /// decided at each check from it, the check's time and the age of digital consent of the place that
    /// decides, so a child comes of age without any write. Replaces what was held.
    pub fn set_birth_date(&self, subject: &str, birth: time::Date) -> Result<(), CapacityError> {
        self.set_child_stmt(subject, i64::from(birth.to_julian_day()), 0)
    }

    /// Records that `subject` is a child until `until` whatever their place (a device's snapshot, where
    /// the server worked out the date). Replaces what was held.
    pub fn set_child_until(&self, subject: &str, until: Timestamp) -> Result<(), CapacityError> {
        self.set_child_stmt(subject, until.micros(), FLAG_CHILD_UNTIL)
    }

    fn set_child_stmt(&self, subject: &str, at: i64, flags: u8) -> Result<(), CapacityError> {
        let stmt =
            Stmt { at, seq: 0, expires_at: i64::MAX, scope: 0, purpose: CHILD, action: Action::Grant, flags };
        let (hash, shard) = self.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        let held = shard.find(hash, subject).map(|(_, i)| i);
        let set = match held {
            Some(i) => {
                match shard.slots[i].stmts.as_mut_slice().iter_mut().find(|s| s.purpose == CHILD) {
                    Some(existing) => *existing = stmt,
                    None => shard.slots[i].stmts.push(stmt),
                }
                Ok(())
            }
            None => {
                let slot = Slot { key: Key::new(subject), stmts: Stmts::Inline([stmt, VACANT, VACANT]) };
                shard.insert(hash, slot, |key| self.hasher.hash_one(key))
            }
        };
        drop(shard);
        self.generation.fetch_add(1, Ordering::Release);
        set
    }

    /// When someone born on `birth` (an assumed birth date, as [`Engine::set_birth_date`] takes) comes of
    /// age where the age of digital consent is `age`: the rule [`Engine::child_until`] applies, for an age
    /// not (yet) held.
    pub fn of_age_at(birth: time::Date, age: u8) -> Timestamp {
        Timestamp::from_micros(rules::of_age_at(birth, age))
    }

    /// Whether `subject` is a known child at `now` under their own jurisdiction (or the default age).
    pub fn is_child(&self, subject: &str, now: Timestamp) -> bool {
        self.child_until(subject).is_some_and(|until| now < until)
    }

    /// When `subject` comes of age under their own jurisdiction's age of digital consent (or the
    /// default), if the engine knows their age.
    pub fn child_until(&self, subject: &str) -> Option<Timestamp> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        let (hash, shard) = self.shard_of(subject);
        let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
        let (_, i) = shard.find(hash, subject)?;
        let stmts = shard.slots[i].stmts.as_slice();
        rules::child_until(&shared, stmts, rules::held_jurisdiction(stmts)).map(Timestamp::from_micros)
    }

    /// Forgets a subject entirely (erasure).
    pub fn forget(&self, subject: &str) {
        let (hash, shard) = self.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((pos, i)) = shard.find(hash, subject) {
            shard.remove(pos, i, |key| self.hasher.hash_one(key));
        }
        drop(shard);
        self.generation.fetch_add(1, Ordering::Release);
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
        self.shared.read().unwrap_or_else(PoisonError::into_inner).sale_or_sharing_purposes()
    }

    /// Decides one query at time `now`.
    pub fn check(&self, q: &Query<'_>, now: Timestamp) -> Result<Decision, QueryError> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        // Hash the subject first: reading its bytes (often a cache miss) then overlaps resolving the rest.
        let (hash, shard) = self.shard_of(q.subject);
        let (info, r) = match rules::prepare(&shared, q)? {
            Prepared::Decided(d) => return Ok(d),
            Prepared::Ready(info, r) => (info, r),
        };
        let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
        let stmts = shard.find(hash, q.subject).map_or(&[][..], |(_, i)| shard.slots[i].stmts.as_slice());
        Ok(rules::decide(&shared, info, &r, stmts, now.micros()))
    }

    /// The subject's jurisdiction (the latest an event set), if the engine holds one.
    pub fn subject_jurisdiction(&self, subject: &str) -> Option<String> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        let (hash, shard) = self.shard_of(subject);
        let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
        let (_, i) = shard.find(hash, subject)?;
        let id = rules::held_jurisdiction(shard.slots[i].stmts.as_slice())?;
        Some(shared.jurisdictions.name(id).to_owned())
    }

    /// Decides `q` as if `extra` (placed events of `q.subject` that the engine does not hold yet) were
    /// applied: the decision a change results in, known before the change is committed.
    pub fn check_with(&self, q: &Query<'_>, extra: &[Event], now: Timestamp) -> Result<Decision, QueryError> {
        let mut added = Vec::with_capacity(extra.len());
        for e in extra {
            if e.action != Action::Locate {
                added.push(self.statement(e).map_err(|_| QueryError::UnknownPurpose)?);
            }
            if let Some(j) = &e.jurisdiction {
                added.push(self.jurisdiction_statement(j, e));
            }
        }
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        let (hash, shard) = self.shard_of(q.subject);
        let (info, r) = match rules::prepare(&shared, q)? {
            Prepared::Decided(d) => return Ok(d),
            Prepared::Ready(info, r) => (info, r),
        };
        let mut stmts = {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            let held = shard.find(hash, q.subject).map_or(&[][..], |(_, i)| shard.slots[i].stmts.as_slice());
            Stmts::Heap(held.into())
        };
        for stmt in added {
            merge(&mut stmts, stmt);
        }
        Ok(rules::decide(&shared, info, &r, stmts.as_slice(), now.micros()))
    }
}

/// Adds `stmt` to a subject's statements: the later one ([`Stmt::order`]) wins per purpose, exact scope and
/// stance ([`Action::stance`]: an objection or a restriction is kept apart from the consent choice, so a
/// later withdrawal never erases an objection), and a subject holds one jurisdiction, the latest set.
fn merge(stmts: &mut Stmts, stmt: Stmt) {
    let same = |s: &&mut Stmt| {
        s.purpose == stmt.purpose
            && ((s.scope == stmt.scope && s.action.stance() == stmt.action.stance())
                || stmt.purpose == JURISDICTION)
    };
    match stmts.as_mut_slice().iter_mut().find(same) {
        Some(existing) if existing.order() >= stmt.order() => {}
        Some(existing) => *existing = stmt,
        None => stmts.push(stmt),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_child;
#[cfg(test)]
mod tests_import;
#[cfg(test)]
mod tests_jurisdiction;
#[cfg(test)]
mod tests_stance;
