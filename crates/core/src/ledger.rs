//! The consent ledger's events and their hash chain.
//!
//! Each event's hash is the SHA-256 (lowercase hex) of its canonical encoding: a JSON object with the keys
//! below in lexicographic order, no insignificant whitespace, strings escaped as `serde_json` does
//! (RFC 8259 minimal escaping, UTF-8 kept as is), integers in decimal, absent values as `null`:
//!
//! `action, actor, categories, channels, collection_point, expires_at, notice, notice_hash,
//! notice_version, prev_hash, purpose, recipients, recorded_at, seq, subject, v`
//!
//! and, only on an event that carries evidence, `evidence` (between `collection_point` and `expires_at`),
//! so every event written before evidence existed hashes exactly as it did; likewise `jurisdiction`
//! (between `expires_at` and `notice`) only on an event that sets the subject's jurisdiction, and
//! `occurred_at` (between `notice_version` and `prev_hash`) only on an event imported from another
//! platform, which keeps the time the change was originally made.
//!
//! where `subject` is the subject's *pseudonym* (HMAC-SHA256 of the subject id under a per-subject key kept
//! in the key store, apart from the ledger), never the subject id; `v` is the format version (1);
//! timestamps use [`Timestamp`]'s fixed rendering; scope lists are sorted and free of duplicates. The first
//! event's `prev_hash` is 64 zeros. Destroying a subject's pseudonym key (erasure) cuts the link to the
//! person without touching a single hashed byte, so the chain still verifies.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a ledger event does to a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Grant,
    Deny,
    Withdraw,
    Object,
    Restrict,
    Renew,
    /// Recorded by Consentry when a grant's `expires_at` passes.
    Expire,
    /// Sets the subject's jurisdiction on its own (`PUT /v1/subjects/{subject}/jurisdiction`): the event
    /// names no purpose (`purpose` is empty) and says nothing about consent.
    Locate,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Grant,
        Action::Deny,
        Action::Withdraw,
        Action::Object,
        Action::Restrict,
        Action::Renew,
        Action::Expire,
        Action::Locate,
    ];

    /// Whether the action gives permission (`grant`, `renew`); every other action but `locate` takes it
    /// away.
    pub fn is_positive(self) -> bool {
        matches!(self, Action::Grant | Action::Renew)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Deny => "deny",
            Action::Withdraw => "withdraw",
            Action::Object => "object",
            Action::Restrict => "restrict",
            Action::Renew => "renew",
            Action::Expire => "expire",
            Action::Locate => "locate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Which statements of a subject replace one another on one purpose and scope: the later statement of
    /// the same stance. An objection (GDPR Art. 21) or a restriction (Art. 18) is no answer to the consent
    /// question, so a later grant, denial or withdrawal never takes its place (nor it theirs): a consent
    /// withdrawn after an objection leaves the objection standing for the purposes on other legal bases
    /// that it binds.
    pub fn stance(self) -> Stance {
        match self {
            Action::Object => Stance::Objection,
            Action::Restrict => Stance::Restriction,
            Action::Grant
            | Action::Deny
            | Action::Withdraw
            | Action::Renew
            | Action::Expire
            | Action::Locate => Stance::Choice,
        }
    }
}

/// What a statement says about a purpose and scope, of which a subject holds the latest of each
/// ([`Action::stance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stance {
    /// The consent choice: grant, renew, deny, withdraw, or a grant's lapse.
    Choice,
    /// An objection.
    Objection,
    /// A restriction of processing.
    Restriction,
}

impl Stance {
    /// How the stores' current state names the stance (`''` for the consent choice, which every statement
    /// had before stances were kept apart).
    pub fn as_str(self) -> &'static str {
        match self {
            Stance::Choice => "",
            Stance::Objection => "object",
            Stance::Restriction => "restrict",
        }
    }
}

/// What a consent event covers. An empty list means "everything the purpose's notice covers" in that
/// dimension. Lists are kept sorted and without duplicates, which the hash relies on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub categories: Vec<String>,
    pub channels: Vec<String>,
    pub recipients: Vec<String>,
}

impl Scope {
    pub fn new(mut categories: Vec<String>, mut channels: Vec<String>, mut recipients: Vec<String>) -> Self {
        for list in [&mut categories, &mut channels, &mut recipients] {
            list.sort_unstable();
            list.dedup();
        }
        Self { categories, channels, recipients }
    }

    pub fn is_unscoped(&self) -> bool {
        self.categories.is_empty() && self.channels.is_empty() && self.recipients.is_empty()
    }
}

/// Actor recorded on events caused by a Global Privacy Control signal.
pub const ACTOR_GPC: &str = "signal:gpc";
/// Prefix of the actor recorded on a child's events that a guardian made: `guardian:<guardian's pseudonym>`
/// (as a link's `link:<pseudonym>`: the ledger names no one by subject id).
pub const ACTOR_GUARDIAN_PREFIX: &str = "guardian:";

/// Whether `actor` is a guardian's (`guardian:<pseudonym>`, with one).
pub fn is_guardian_actor(actor: &str) -> bool {
    actor.strip_prefix(ACTOR_GUARDIAN_PREFIX).is_some_and(|id| !id.is_empty())
}

/// Prefix of the actor recorded on a survivor's events that a link carried over from the record linked into
/// it: `link:<pseudonym of that record>`.
pub const ACTOR_LINK_PREFIX: &str = "link:";

/// Whether `actor` is a link's (`link:<pseudonym>`, with one).
pub fn is_link_actor(actor: &str) -> bool {
    actor.strip_prefix(ACTOR_LINK_PREFIX).is_some_and(|p| !p.is_empty())
}

/// Actor recorded on events read from an IAB TCF TC string.
pub const ACTOR_TCF: &str = "signal:tcf";
/// Actor recorded on events read from an IAB GPP string.
pub const ACTOR_GPP: &str = "signal:gpp";
/// Actor recorded on events Consentry makes itself (expiry).
pub const ACTOR_SYSTEM: &str = "system";

/// A change to append, before the ledger has placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub purpose: String,
    pub action: Action,
    pub scope: Scope,
    pub notice: Option<String>,
    pub notice_version: Option<u32>,
    pub notice_hash: Option<String>,
    pub collection_point: Option<String>,
    /// Who made the change: `subject`, `key:<id>`, `device:<id>`, `signal:gpc`, `signal:tcf`,
    /// `signal:gpp`, `system`.
    pub actor: String,
    pub expires_at: Option<Timestamp>,
    /// What the change rests on besides the notice, as `<kind>:<value>`: `sha256:<hex>` of the signal
    /// string a `signal:tcf` or `signal:gpp` change was read from.
    pub evidence: Option<String>,
    /// The subject's jurisdiction from this event on (a key of the catalogue's `jurisdictions`), when the
    /// change set it.
    pub jurisdiction: Option<String>,
    /// When the change was originally made, on a change imported from another platform (its
    /// `recorded_at` is the import's time). The current state orders changes by this time when present.
    pub occurred_at: Option<Timestamp>,
}

/// A placed ledger event. Never updated, never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the ledger, from 1, without gaps.
    pub seq: u64,
    /// The subject's pseudonym (see the module documentation).
    pub pseudonym: String,
    pub purpose: String,
    pub action: Action,
    pub scope: Scope,
    pub notice: Option<String>,
    pub notice_version: Option<u32>,
    pub notice_hash: Option<String>,
    pub collection_point: Option<String>,
    pub actor: String,
    pub recorded_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub prev_hash: String,
    pub hash: String,
    /// See [`NewEvent::evidence`]; hashed only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// See [`NewEvent::jurisdiction`]; hashed only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// See [`NewEvent::occurred_at`]; hashed only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
}

/// The public identifier of the event at `seq`.
pub fn event_id(seq: u64) -> String {
    format!("evt_{seq}")
}

/// Parses an identifier made by [`event_id`].
pub fn parse_event_id(id: &str) -> Option<u64> {
    id.strip_prefix("evt_")?.parse().ok().filter(|&s| s > 0)
}

#[derive(Serialize)]
struct Canonical<'a> {
    action: &'a str,
    actor: &'a str,
    categories: &'a [String],
    channels: &'a [String],
    collection_point: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a str>,
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jurisdiction: Option<&'a str>,
    notice: Option<&'a str>,
    notice_hash: Option<&'a str>,
    notice_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: Option<String>,
    prev_hash: &'a str,
    purpose: &'a str,
    recipients: &'a [String],
    recorded_at: String,
    seq: u64,
    subject: &'a str,
    v: u8,
}

impl Event {
    /// Places `new` at `seq` after `prev_hash`, for the subject with `pseudonym`, and computes its hash.
    pub fn place(
        new: NewEvent,
        seq: u64,
        pseudonym: String,
        recorded_at: Timestamp,
        prev_hash: String,
    ) -> Self {
        let mut event = Self::unhashed(new, seq, pseudonym, recorded_at, prev_hash);
        event.hash = event.compute_hash();
        event
    }

    /// As [`Event::place`], with the event's leaf in the ledger's Merkle tree ([`leaf_hash`] of its
    /// canonical bytes): a writer that grows the tree with each event it places builds those bytes once.
    pub fn place_with_leaf(
        new: NewEvent,
        seq: u64,
        pseudonym: String,
        recorded_at: Timestamp,
        prev_hash: String,
    ) -> (Self, crate::merkle::Hash) {
        let mut event = Self::unhashed(new, seq, pseudonym, recorded_at, prev_hash);
        let bytes = event.canonical_bytes();
        event.hash = hex::encode(Sha256::digest(&bytes));
        (event, crate::merkle::leaf_hash(&bytes))
    }

    fn unhashed(
        new: NewEvent,
        seq: u64,
        pseudonym: String,
        recorded_at: Timestamp,
        prev_hash: String,
    ) -> Self {
        Event {
            seq,
            pseudonym,
            purpose: new.purpose,
            action: new.action,
            scope: new.scope,
            notice: new.notice,
            notice_version: new.notice_version,
            notice_hash: new.notice_hash,
            collection_point: new.collection_point,
            actor: new.actor,
            recorded_at,
            expires_at: new.expires_at,
            prev_hash,
            hash: String::new(),
            evidence: new.evidence,
            jurisdiction: new.jurisdiction,
            occurred_at: new.occurred_at,
        }
    }

    /// The canonical bytes the hash is taken over.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let canonical = Canonical {
            action: self.action.as_str(),
            actor: &self.actor,
            categories: &self.scope.categories,
            channels: &self.scope.channels,
            collection_point: self.collection_point.as_deref(),
            evidence: self.evidence.as_deref(),
            expires_at: self.expires_at.map(|t| t.to_string()),
            jurisdiction: self.jurisdiction.as_deref(),
            notice: self.notice.as_deref(),
            notice_hash: self.notice_hash.as_deref(),
            notice_version: self.notice_version,
            occurred_at: self.occurred_at.map(|t| t.to_string()),
            prev_hash: &self.prev_hash,
            purpose: &self.purpose,
            recipients: &self.scope.recipients,
            recorded_at: self.recorded_at.to_string(),
            seq: self.seq,
            subject: &self.pseudonym,
            v: 1,
        };
        // Serialising a struct of strings, integers and string slices cannot fail.
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    pub fn id(&self) -> String {
        event_id(self.seq)
    }

    /// When the change took effect: its original time if imported, else when the ledger recorded it.
    pub fn effective_at(&self) -> Timestamp {
        self.occurred_at.unwrap_or(self.recorded_at)
    }

    /// The order of changes for the current state: the later effective time wins, ties go to the later
    /// ledger position. An imported grant from years ago never overrides a withdrawal recorded since.
    pub fn order(&self) -> (Timestamp, u64) {
        (self.effective_at(), self.seq)
    }
}

/// The pseudonym of a subject: HMAC-SHA256 of the subject id under the subject's own key, lowercase hex.
pub fn pseudonym(key: &[u8; 32], subject: &str) -> String {
    type HmacSha256 = Hmac<Sha256>;
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(subject.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The first place where a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// Sequence number found at the break (or expected, when events are missing).
    pub seq: u64,
    /// 0-based position of the offending event in the sequence that was checked.
    pub index: u64,
    pub problem: BreakKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The event's stored hash does not match its content.
    HashMismatch,
    /// The event's `prev_hash` is not the previous event's hash.
    PrevHashMismatch,
    /// The event's sequence number is not the previous one plus one.
    SequenceGap,
}

/// Walks events in order, checking each link. Feed events with [`ChainVerifier::push`].
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: u64,
    head: String,
    count: u64,
    first_break: Option<ChainBreak>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self { expected_seq: 1, head: GENESIS_HASH.to_owned(), count: 0, first_break: None }
    }

    /// Checks the next event; returns false once the chain is broken (later events are still counted).
    pub fn push(&mut self, event: &Event) -> bool {
        let index = self.count;
        self.count += 1;
        if self.first_break.is_some() {
            return false;
        }
        let problem = if event.seq != self.expected_seq {
            Some(BreakKind::SequenceGap)
        } else if event.prev_hash != self.head {
            Some(BreakKind::PrevHashMismatch)
        } else if event.compute_hash() != event.hash {
            Some(BreakKind::HashMismatch)
        } else {
            None
        };
        if let Some(problem) = problem {
            self.first_break = Some(ChainBreak { seq: event.seq, index, problem });
            return false;
        }
        self.expected_seq += 1;
        self.head.clone_from(&event.hash);
        true
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of the last event that verified.
    pub fn head(&self) -> &str {
        &self.head
    }

    pub fn first_break(&self) -> Option<&ChainBreak> {
        self.first_break.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event(purpose: &str, action: Action) -> NewEvent {
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: purpose.into(),
            action,
            scope: Scope::new(vec![], vec!["sms".into(), "email".into(), "email".into()], vec![]),
            notice: Some(purpose.into()),
            notice_version: Some(1),
            notice_hash: Some("ab".repeat(32)),
            collection_point: None,
            actor: "key:k1".into(),
            expires_at: None,
        }
    }

    fn chain(n: u64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = Event::place(
                    new_event("marketing.direct", Action::Grant),
                    seq,
                    "p".repeat(64),
                    Timestamp::from_micros(1_700_000_000_000_000 + seq as i64),
                    prev.clone(),
                );
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    #[test]
    fn placing_with_the_leaf_places_the_same_event() {
        let mut new = new_event("marketing.direct", Action::Grant);
        new.occurred_at = Some(Timestamp::from_micros(1_600_000_000_000_000));
        let at = Timestamp::from_micros(1_700_000_000_000_000);
        let placed = Event::place(new.clone(), 7, "p".repeat(64), at, "c".repeat(64));
        let (with, leaf) = Event::place_with_leaf(new, 7, "p".repeat(64), at, "c".repeat(64));
        assert_eq!(with, placed);
        assert_eq!(leaf, crate::merkle::leaf_hash(&placed.canonical_bytes()));
    }

    #[test]
    fn canonical_encoding_is_stable() {
        let e = &chain(1)[0];
        let text = String::from_utf8(e.canonical_bytes()).expect("utf8");
        assert_eq!(
            text,
            format!(
                concat!(
                    r#"{{"action":"grant","actor":"key:k1","categories":[],"channels":["email","sms"],"#,
                    r#""collection_point":null,"expires_at":null,"notice":"marketing.direct","notice_hash":"{}","#,
                    r#""notice_version":1,"prev_hash":"{}","purpose":"marketing.direct","recipients":[],"#,
                    r#""recorded_at":"2023-11-14T22:13:20.000001Z","seq":1,"subject":"{}","v":1}}"#
                ),
                "ab".repeat(32),
                GENESIS_HASH,
                "p".repeat(64)
            )
        );
        assert_eq!(e.hash, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn evidence_is_hashed_only_when_present() {
        let mut new = new_event("third_party.sharing", Action::Withdraw);
        let plain =
            Event::place(new.clone(), 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        assert!(!String::from_utf8(plain.canonical_bytes()).expect("utf8").contains("evidence"));
        new.evidence = Some(format!("sha256:{}", "cd".repeat(32)));
        let with = Event::place(new, 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        let text = String::from_utf8(with.canonical_bytes()).expect("utf8");
        let expected =
            format!(r#""collection_point":null,"evidence":"sha256:{}","expires_at":null"#, "cd".repeat(32));
        assert!(text.contains(&expected), "{text}");
        assert_ne!(with.hash, plain.hash);
        let mut tampered = with.clone();
        tampered.evidence = Some(format!("sha256:{}", "ce".repeat(32)));
        assert_ne!(tampered.compute_hash(), with.hash);
    }

    #[test]
    fn jurisdiction_is_hashed_only_when_present() {
        let mut new = new_event("third_party.sharing", Action::Withdraw);
        let plain =
            Event::place(new.clone(), 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        assert!(!String::from_utf8(plain.canonical_bytes()).expect("utf8").contains("jurisdiction"));
        new.jurisdiction = Some("US-CA".into());
        let with = Event::place(new, 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        let text = String::from_utf8(with.canonical_bytes()).expect("utf8");
        assert!(text.contains(r#""expires_at":null,"jurisdiction":"US-CA","notice":"#), "{text}");
        assert_ne!(with.hash, plain.hash);
        let mut moved = with.clone();
        moved.jurisdiction = Some("US-VA".into());
        assert_ne!(moved.compute_hash(), with.hash);
    }

    #[test]
    fn occurred_at_is_hashed_only_when_present() {
        let mut new = new_event("third_party.sharing", Action::Grant);
        let plain =
            Event::place(new.clone(), 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        assert!(!String::from_utf8(plain.canonical_bytes()).expect("utf8").contains("occurred_at"));
        new.occurred_at = Some(Timestamp::from_micros(0));
        let with = Event::place(new, 1, "p".repeat(64), Timestamp::from_micros(1), GENESIS_HASH.into());
        let text = String::from_utf8(with.canonical_bytes()).expect("utf8");
        assert!(
            text.contains(r#""notice_version":1,"occurred_at":"1970-01-01T00:00:00.000000Z","prev_hash":"#),
            "{text}"
        );
        assert_ne!(with.hash, plain.hash);
        assert_eq!(with.effective_at(), Timestamp::from_micros(0));
        assert_eq!(plain.effective_at(), Timestamp::from_micros(1));
        let mut moved = with.clone();
        moved.occurred_at = Some(Timestamp::from_micros(2));
        assert_ne!(moved.compute_hash(), with.hash);
    }

    #[test]
    fn verifier_accepts_an_intact_chain() {
        let mut v = ChainVerifier::new();
        assert!(chain(5).iter().all(|e| v.push(e)));
        assert_eq!(v.count(), 5);
        assert!(v.first_break().is_none());
    }

    #[test]
    fn verifier_finds_every_kind_of_tampering() {
        let check = |events: Vec<Event>, kind: BreakKind, index: u64| {
            let mut v = ChainVerifier::new();
            for e in &events {
                v.push(e);
            }
            let b = v.first_break().expect("break found");
            assert_eq!((b.problem, b.index), (kind, index));
        };
        let mut changed = chain(4);
        changed[2].purpose = "analytics".into();
        check(changed, BreakKind::HashMismatch, 2);

        let mut removed = chain(4);
        removed.remove(1);
        check(removed, BreakKind::SequenceGap, 1);

        let mut swapped = chain(4);
        swapped.swap(1, 2);
        check(swapped, BreakKind::SequenceGap, 1);

        let mut relinked = chain(4);
        relinked[3].prev_hash = GENESIS_HASH.into();
        check(relinked, BreakKind::PrevHashMismatch, 3);
    }

    #[test]
    fn pseudonyms_are_keyed() {
        let a = pseudonym(&[1; 32], "user-1");
        assert_eq!(a.len(), 64);
        assert_eq!(a, pseudonym(&[1; 32], "user-1"));
        assert_ne!(a, pseudonym(&[2; 32], "user-1"));
        assert_ne!(a, pseudonym(&[1; 32], "user-2"));
    }

    #[test]
    fn event_ids_round_trip() {
        assert_eq!(parse_event_id(&event_id(42)), Some(42));
        assert_eq!(parse_event_id("evt_0"), None);
        assert_eq!(parse_event_id("42"), None);
    }
}
