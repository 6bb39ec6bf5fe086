//! Device consent snapshots: what a paired device's owner allows it, signed by the server and decided
//! offline on the device with the same rules as the server.
//!
//! A snapshot carries the subject's statements in force that bear on the device's purposes and the slice
//! of the catalogue they need (the purposes above and under the device's, the categories, channels,
//! recipients and notices those name). [`ConsentSnapshot::rules`] loads both into a decision [`Engine`],
//! so a device answers with exactly the code the server runs (one implementation, not two). The server
//! also lists its own answers for the device's purposes × categories × channels, computed the same way.
//!
//! A device may act only for its declared purposes and categories and what lies under them
//! ([`device_allows`]); anything else is denied as `not_covered`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, CatalogDocument, CatalogProblem};
use crate::engine::{Decision, Dimension, Engine, Query, QueryError, Reason};
use crate::ledger::{ACTOR_GPC, ACTOR_GUARDIAN_PREFIX, Action, Event, Scope, event_id, is_guardian_actor};
use crate::proof::{JwsKind, Signed};
use crate::time::Timestamp;

/// The format version of a subject's device's [`ConsentSnapshot`] this code writes.
///
/// Bumped whenever a field changes what a snapshot answers, so that a reader that would ignore the field
/// (serde skips unknown fields) refuses the snapshot, and a refused snapshot decides nothing: the device
/// denies. 2: statements carry `at`, their effective time, which orders them before `seq` (an old grant
/// imported late must not override a withdrawal recorded since; a version-1 reader would order by `seq`
/// alone and could allow). 3: `child_until` and statements' `guardian` (a known child is allowed only a
/// guardian's grants, never sale or sharing; a version-2 reader would count the child's own grants).
/// Version 3 is written only for a known child: any other snapshot is written as version 2
/// ([`SNAPSHOT_VERSION_PLAIN`]), which devices not yet updated still read.
pub const SNAPSHOT_VERSION: u32 = 3;

/// The version a snapshot without a child's rules is written as: its fields mean what they meant in
/// version 2.
pub const SNAPSHOT_VERSION_PLAIN: u32 = 2;

/// The format version of a household device's snapshot: its `members` carry the statements, each under a
/// handle, with each member's `child_until` and guardians' marks. A reader that skipped `members` (version
/// 3 and older) would find no statements and could allow what a member objected to, or count a known
/// child's own grant; so it refuses it instead. Newer than the child's version 3, so no reader that lacks
/// the per-member child rules takes it. Also the newest version this code reads.
pub const HOUSEHOLD_SNAPSHOT_VERSION: u32 = 4;

/// The format version of a snapshot (a subject's or a household's) in which one person holds an objection
/// or a restriction and another statement on the same purpose and scope. Readers from version 5 on keep
/// each stance's latest statement ([`Action::stance`]); an older reader would keep only the later of the
/// two, so a withdrawal after an objection would erase the objection and allow a purpose on another legal
/// basis that it binds. So it refuses such a snapshot, and the device denies. Every other snapshot keeps its
/// version (2, 3 or 4), which such a reader answers alike.
pub const SNAPSHOT_VERSION_STANCES: u32 = 5;

/// The newest version this code reads.
pub const SNAPSHOT_VERSION_MAX: u32 = SNAPSHOT_VERSION_STANCES;

/// Whether a reader that keeps one statement per purpose and scope (version 4 and older) would lose one of
/// `statements`: two on one purpose and scope, of different stances.
fn stances_apart(statements: &[SnapshotStatement]) -> bool {
    statements.iter().enumerate().any(|(i, a)| {
        statements[i + 1..].iter().any(|b| {
            a.purpose == b.purpose
                && a.action.stance() != b.action.stance()
                && (&a.categories, &a.channels, &a.recipients) == (&b.categories, &b.channels, &b.recipients)
        })
    })
}

/// The oldest version this code reads: a version-1 snapshot's fields are a subset of version 2's with the
/// same meaning (without `at`, `seq` alone orders, as version 1 did), so a device updated before its
/// server still decides.
pub const SNAPSHOT_VERSION_MIN: u32 = 1;

/// Whether `key` is `ancestor` or lies under it, for dotted keys (purposes and categories alike).
fn within(key: &str, ancestor: &str) -> bool {
    Catalog::category_within(key, ancestor)
}

/// Whether a device that declared `categories` and `purposes` may act on `category` for `purpose`: both
/// must be one it declared or lie under one.
pub fn device_allows(categories: &[String], purposes: &[String], category: &str, purpose: &str) -> bool {
    categories.iter().any(|c| within(category, c)) && purposes.iter().any(|p| within(purpose, p))
}

/// One statement in force, as a snapshot carries it: only what the rules read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatement {
    pub seq: u64,
    /// When the change took effect (an imported change's original time, else when it was recorded): with
    /// `seq`, which statement is later. Absent in snapshots from before imports: then `seq` alone orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    pub purpose: String,
    pub action: Action,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Recorded because of a Global Privacy Control signal (the answer then reads `gpc_opt_out`).
    #[serde(default)]
    pub gpc: bool,
    /// Made by a guardian for a child: for a known child only such grants count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guardian: bool,
}

impl SnapshotStatement {
    fn from_event(e: &Event) -> Self {
        Self {
            seq: e.seq,
            at: Some(e.effective_at()),
            purpose: e.purpose.clone(),
            action: e.action,
            categories: e.scope.categories.clone(),
            channels: e.scope.channels.clone(),
            recipients: e.scope.recipients.clone(),
            expires_at: e.expires_at,
            gpc: e.actor == ACTOR_GPC,
            guardian: is_guardian_actor(&e.actor),
        }
    }

    /// The statement as a ledger event the engine can apply (the fields the rules do not read are empty).
    fn to_event(&self) -> Event {
        Event {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            seq: self.seq,
            pseudonym: String::new(),
            purpose: self.purpose.clone(),
            action: self.action,
            scope: Scope::new(self.categories.clone(), self.channels.clone(), self.recipients.clone()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: if self.gpc {
                ACTOR_GPC.to_owned()
            } else if self.guardian {
                format!("{ACTOR_GUARDIAN_PREFIX}snapshot")
            } else {
                String::new()
            },
            recorded_at: self.at.unwrap_or(Timestamp::from_micros(0)),
            expires_at: self.expires_at,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

/// The server's answer for one purpose, category and channel (`None`: every channel), when it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDecision {
    pub purpose: String,
    pub category: String,
    #[serde(default)]
    pub channel: Option<String>,
    pub allowed: bool,
    pub reason: String,
    #[serde(default)]
    pub event_id: Option<String>,
    /// What was not covered (`category`, `channel`, `recipient`), present exactly when `reason` is
    /// `not_covered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_covered: Option<String>,
}

/// The payload of a signed device consent snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentSnapshot {
    /// [`SNAPSHOT_VERSION`] ([`HOUSEHOLD_SNAPSHOT_VERSION`] for a household's device) when written; read
    /// only from [`SNAPSHOT_VERSION_MIN`] to [`SNAPSHOT_VERSION_MAX`].
    pub v: u32,
    pub device_id: String,
    /// The brand's id of the device's owner; empty on a household's device.
    pub subject: String,
    /// The data categories and purposes the device declared at pairing.
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    /// The ledger position the snapshot reflects: every event up to this sequence number is in it.
    pub ledger_seq: u64,
    pub catalog_version: u64,
    /// The slice of the catalogue the statements and the device's purposes need.
    pub catalog: CatalogDocument,
    /// The subject's statements in force on the device's purposes, their ancestors and descendants.
    pub statements: Vec<SnapshotStatement>,
    /// The server's answers at signing time, for each declared purpose × category × channel.
    pub decisions: Vec<SnapshotDecision>,
    /// The subject's jurisdiction, whose rules (in the slice's `jurisdictions`) decide offline as on the
    /// server; absent when none was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Until when the subject is a known child (their age and their place's age of digital consent, as
    /// the server knew them): until then only a guardian's grants count and sale or sharing is never
    /// allowed. Absent when the server knows no age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_until: Option<Timestamp>,
    /// A household's device: the household's id. `subject` and `statements` are then empty, and each
    /// member's statements are in `members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<String>,
    /// A household's members, each under a handle (not their subject id), with their statements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<SnapshotMember>,
    /// Issued at and expiry, whole seconds since the Unix epoch (JWT `iat` and `exp`).
    pub iat: i64,
    pub exp: i64,
}

/// One member of a household, in its device's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMember {
    /// The membership's handle (`hm_...`): the device recognises a member by it, and it names no one.
    pub handle: String,
    /// The member's statements in force on the device's purposes, their ancestors and descendants.
    pub statements: Vec<SnapshotStatement>,
    /// The member's jurisdiction, when one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Until when the member is a known child, as the server knew it (see
    /// [`ConsentSnapshot::child_until`]): until then only a guardian's grants count for them and sale or
    /// sharing is never allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_until: Option<Timestamp>,
}

/// A household member as the server knows them when it builds a household device's snapshot.
#[derive(Debug, Clone, Copy)]
pub struct MemberInput<'a> {
    pub handle: &'a str,
    /// The member's statements in force; those unrelated to the device's purposes are dropped.
    pub statements: &'a [Event],
    pub jurisdiction: Option<&'a str>,
    /// When the member comes of age, if their age is known ([`Engine::child_until`]).
    pub child_until: Option<Timestamp>,
}

/// What the server knows when it builds a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotInput<'a> {
    pub device_id: &'a str,
    pub subject: &'a str,
    pub categories: &'a [String],
    pub purposes: &'a [String],
    pub ledger_seq: u64,
    pub catalog: &'a Catalog,
    pub catalog_version: u64,
    /// The subject's statements in force (the latest event per purpose, scope and stance); any others are
    /// dropped.
    pub statements: &'a [Event],
    /// The subject's jurisdiction, if one was set.
    pub jurisdiction: Option<&'a str>,
    /// When the subject comes of age, if their age is known ([`Engine::child_until`]).
    pub child_until: Option<Timestamp>,
    pub issued_at: Timestamp,
    pub max_age_secs: i64,
}

/// Why a snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("unsupported snapshot version {0}")]
    Version(u32),
    #[error("the snapshot's catalogue slice is not valid ({} problem(s))", .0.len())]
    Catalog(Vec<CatalogProblem>),
    #[error("the snapshot holds more than the decision engine can represent")]
    Capacity,
}

/// Signed with the `typ` `device-snapshot+jwt`, so no other signed statement passes for a snapshot.
impl Signed for ConsentSnapshot {
    const KIND: JwsKind = JwsKind::DeviceSnapshot;
}

impl ConsentSnapshot {
    /// Builds the snapshot, its decisions made by the same rules a device runs on it.
    pub fn build(input: SnapshotInput<'_>) -> Self {
        Self::assemble(input, None)
    }

    /// Builds a household device's snapshot: `household`'s `members`, each with their statements under
    /// their handle (`input`'s subject, statements and jurisdiction are not read). Its decisions are the
    /// most restrictive across the members, as the device answers for someone it does not recognise.
    pub fn build_household(input: SnapshotInput<'_>, household: &str, members: &[MemberInput<'_>]) -> Self {
        let input =
            SnapshotInput { subject: "", statements: &[], jurisdiction: None, child_until: None, ..input };
        Self::assemble(input, Some((household, members)))
    }

    fn assemble(input: SnapshotInput<'_>, household: Option<(&str, &[MemberInput<'_>])>) -> Self {
        let related = |p: &str| input.purposes.iter().any(|d| within(p, d) || within(d, p));
        let doc = input.catalog.document();
        let keep = |events: &[Event]| -> Vec<SnapshotStatement> {
            events.iter().filter(|e| related(&e.purpose)).map(SnapshotStatement::from_event).collect()
        };
        let statements = keep(input.statements);
        let members: Vec<SnapshotMember> = household
            .map(|(_, members)| members)
            .unwrap_or_default()
            .iter()
            .map(|m| SnapshotMember {
                handle: m.handle.to_owned(),
                statements: keep(m.statements),
                jurisdiction: m.jurisdiction.map(str::to_owned),
                child_until: m.child_until,
            })
            .collect();
        let every_statement = || statements.iter().chain(members.iter().flat_map(|m| m.statements.iter()));
        let places: BTreeSet<&str> = input
            .jurisdiction
            .into_iter()
            .chain(members.iter().filter_map(|m| m.jurisdiction.as_deref()))
            .collect();
        let purposes: Vec<_> = doc.purposes.iter().filter(|p| related(&p.key)).cloned().collect();

        let mut named: BTreeSet<&str> = input.categories.iter().map(String::as_str).collect();
        named.extend(purposes.iter().flat_map(|p| p.categories.iter().map(String::as_str)));
        named.extend(every_statement().flat_map(|s| s.categories.iter().map(String::as_str)));
        let data_categories = doc
            .data_categories
            .iter()
            .filter(|c| named.iter().any(|n| within(&c.key, n) || within(n, &c.key)))
            .cloned()
            .collect();

        let all_channels = purposes.iter().any(|p| p.channels.is_empty());
        let mut channels: BTreeSet<&str> =
            purposes.iter().flat_map(|p| p.channels.iter().map(String::as_str)).collect();
        channels.extend(every_statement().flat_map(|s| s.channels.iter().map(String::as_str)));
        // A purpose that declares no recipients allows every one of the catalogue (as with channels), so
        // the device needs them all to answer a question naming one as the server does.
        let all_recipients = purposes.iter().any(|p| p.recipients.is_empty());
        let mut recipients: BTreeSet<&str> =
            purposes.iter().flat_map(|p| p.recipients.iter().map(String::as_str)).collect();
        recipients.extend(every_statement().flat_map(|s| s.recipients.iter().map(String::as_str)));
        let notices: BTreeSet<&str> = purposes.iter().filter_map(|p| p.notice.as_deref()).collect();

        let slice = CatalogDocument {
            language: doc.language.clone(),
            data_categories,
            channels: doc
                .channels
                .iter()
                .filter(|c| all_channels || channels.contains(c.key.as_str()))
                .cloned()
                .collect(),
            recipients: doc
                .recipients
                .iter()
                .filter(|r| all_recipients || recipients.contains(r.key.as_str()))
                .cloned()
                .collect(),
            notices: doc.notices.iter().filter(|n| notices.contains(n.key.as_str())).cloned().collect(),
            collection_points: Vec::new(),
            frameworks: None,
            jurisdictions: doc
                .jurisdictions
                .iter()
                .filter(|j| places.contains(j.key.as_str()))
                .cloned()
                .collect(),
            // A device never sees identifiers.
            identifier_types: Vec::new(),
            purposes,
        };
        let apart = stances_apart(&statements) || members.iter().any(|m| stances_apart(&m.statements));
        let mut snapshot = Self {
            v: if apart {
                SNAPSHOT_VERSION_STANCES
            } else if household.is_some() {
                HOUSEHOLD_SNAPSHOT_VERSION
            } else if input.child_until.is_some() {
                SNAPSHOT_VERSION
            } else {
                SNAPSHOT_VERSION_PLAIN
            },
            device_id: input.device_id.to_owned(),
            subject: input.subject.to_owned(),
            categories: input.categories.to_vec(),
            purposes: input.purposes.to_vec(),
            ledger_seq: input.ledger_seq,
            catalog_version: input.catalog_version,
            catalog: slice,
            statements,
            decisions: Vec::new(),
            jurisdiction: input.jurisdiction.map(str::to_owned),
            child_until: input.child_until,
            household: household.map(|(id, _)| id.to_owned()),
            members,
            iat: crate::proof::unix_seconds(input.issued_at),
            exp: crate::proof::unix_seconds(input.issued_at).saturating_add(input.max_age_secs),
        };
        snapshot.decisions = match snapshot.rules() {
            Ok(rules) => rules.grid(input.issued_at),
            // The slice is cut from a validated catalogue, so it validates; should it not, list no answers
            // (a device then denies everything, as it would with this snapshot).
            Err(_) => Vec::new(),
        };
        snapshot
    }

    /// The snapshot's rules, ready to decide offline; a version this code does not know (a newer one,
    /// whose fields it might misread) is refused, so nothing is decided from it.
    pub fn rules(&self) -> Result<SnapshotRules, SnapshotError> {
        if !(SNAPSHOT_VERSION_MIN..=SNAPSHOT_VERSION_MAX).contains(&self.v)
            || (self.household.is_some() && self.v < HOUSEHOLD_SNAPSHOT_VERSION)
        {
            return Err(SnapshotError::Version(self.v));
        }
        let catalog = Catalog::validate(self.catalog.clone()).map_err(SnapshotError::Catalog)?;
        let engine = Engine::new();
        engine.set_catalog(&catalog).map_err(|_| SnapshotError::Capacity)?;
        let members = match &self.household {
            None => {
                self.load(
                    &engine,
                    &self.subject,
                    &self.statements,
                    self.jurisdiction.as_deref(),
                    self.child_until,
                )?;
                None
            }
            Some(_) => {
                for m in &self.members {
                    self.load(&engine, &m.handle, &m.statements, m.jurisdiction.as_deref(), m.child_until)?;
                }
                Some(self.members.iter().map(|m| m.handle.clone()).collect())
            }
        };
        Ok(SnapshotRules {
            engine,
            catalog,
            subject: self.subject.clone(),
            members,
            categories: self.categories.clone(),
            purposes: self.purposes.clone(),
        })
    }

    /// Loads one person's statements, place and the end of their childhood into `engine`, under `subject` (a member's handle on a
    /// household's device).
    fn load(
        &self,
        engine: &Engine,
        subject: &str,
        statements: &[SnapshotStatement],
        jurisdiction: Option<&str>,
        child_until: Option<Timestamp>,
    ) -> Result<(), SnapshotError> {
        for s in statements {
            engine.apply(subject, &s.to_event()).map_err(|_| SnapshotError::Capacity)?;
        }
        if let Some(place) = jurisdiction {
            let locate = SnapshotStatement {
                seq: self.ledger_seq,
                at: None,
                purpose: String::new(),
                action: Action::Locate,
                categories: Vec::new(),
                channels: Vec::new(),
                recipients: Vec::new(),
                expires_at: None,
                gpc: false,
                guardian: false,
            };
            let event = Event { jurisdiction: Some(place.to_owned()), ..locate.to_event() };
            engine.apply(subject, &event).map_err(|_| SnapshotError::Capacity)?;
        }
        if let Some(until) = child_until {
            engine.set_child_until(subject, until).map_err(|_| SnapshotError::Capacity)?;
        }
        Ok(())
    }

    /// A tag of what the snapshot says, leaving out when it was issued: equal tags, equal answers.
    pub fn content_tag(&self) -> String {
        #[derive(Serialize)]
        struct Content<'a> {
            v: u32,
            device_id: &'a str,
            subject: &'a str,
            categories: &'a [String],
            purposes: &'a [String],
            catalog_version: u64,
            catalog: &'a CatalogDocument,
            statements: &'a [SnapshotStatement],
            #[serde(skip_serializing_if = "Option::is_none")]
            jurisdiction: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            child_until: Option<Timestamp>,
            household: Option<&'a str>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            members: &'a [SnapshotMember],
        }
        let content = Content {
            v: self.v,
            device_id: &self.device_id,
            subject: &self.subject,
            categories: &self.categories,
            purposes: &self.purposes,
            catalog_version: self.catalog_version,
            catalog: &self.catalog,
            statements: &self.statements,
            jurisdiction: self.jurisdiction.as_deref(),
            child_until: self.child_until,
            household: self.household.as_deref(),
            members: &self.members,
        };
        // Plain structs of strings and numbers always serialise.
        let bytes = serde_json::to_vec(&content).unwrap_or_default();
        hex::encode(&Sha256::digest(bytes)[..16])
    }
}

/// A snapshot's statements loaded into a decision engine.
#[derive(Debug)]
pub struct SnapshotRules {
    engine: Engine,
    catalog: Catalog,
    subject: String,
    /// A household's device: its members' handles (the engine knows each as a subject).
    members: Option<Vec<String>>,
    categories: Vec<String>,
    purposes: Vec<String>,
}

impl SnapshotRules {
    /// Decides whether the device may use `category` for `purpose` through `channel` (`None`: every
    /// channel) at `now`. Outside what the device declared, or naming what the catalogue slice does not
    /// know: denied, `not_covered`.
    pub fn decide(&self, purpose: &str, category: &str, channel: Option<&str>, now: Timestamp) -> Decision {
        self.decide_for(purpose, category, channel, None, now)
    }

    /// [`SnapshotRules::decide`] for a use by `recipient` too (`None`: every recipient the purpose has), as
    /// `POST /v1/check` answers it. On a household's device, for someone it did not recognise: the most
    /// restrictive answer across the members, allowed only when every member allows (the first member's
    /// denial otherwise); a household without members allows nothing (`no_consent`).
    pub fn decide_for(
        &self,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        let Some(members) = &self.members else {
            return self.decide_as(&self.subject, purpose, category, channel, recipient, now);
        };
        let mut allowed = None;
        for member in members {
            let d = self.decide_as(member, purpose, category, channel, recipient, now);
            if !d.allowed {
                return d;
            }
            allowed.get_or_insert(d);
        }
        allowed.unwrap_or(Decision::new(Reason::NoConsent, None))
    }

    /// On a household's device, the answer for the member it recognised, by their `handle`; someone who is
    /// not a member (or any handle on a subject's device) is allowed nothing (`no_consent`).
    pub fn decide_member(
        &self,
        handle: &str,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        match &self.members {
            Some(members) if members.iter().any(|m| m == handle) => {
                self.decide_as(handle, purpose, category, channel, recipient, now)
            }
            _ => Decision::new(Reason::NoConsent, None),
        }
    }

    /// The members' handles on a household's device (empty on a subject's).
    pub fn members(&self) -> &[String] {
        self.members.as_deref().unwrap_or_default()
    }

    /// The answer for one person, the engine's `subject`.
    fn decide_as(
        &self,
        subject: &str,
        purpose: &str,
        category: &str,
        channel: Option<&str>,
        recipient: Option<&str>,
        now: Timestamp,
    ) -> Decision {
        if !self.categories.iter().any(|c| within(category, c)) {
            return Decision::not_covered(Dimension::Category, None);
        }
        if !self.purposes.iter().any(|p| within(purpose, p)) {
            return Decision::not_covered(Dimension::Purpose, None);
        }
        let q = Query { subject, purpose, category: Some(category), channel, recipient, jurisdiction: None };
        self.engine.check(&q, now).unwrap_or_else(|e| {
            let dimension = match e {
                QueryError::UnknownPurpose => Dimension::Purpose,
                QueryError::UnknownCategory => Dimension::Category,
                QueryError::UnknownChannel => Dimension::Channel,
                QueryError::UnknownRecipient => Dimension::Recipient,
                // The query names none.
                QueryError::UnknownJurisdiction => Dimension::Purpose,
            };
            Decision::not_covered(dimension, None)
        })
    }

    /// The answers for each declared purpose × category, overall and per channel the purpose declares.
    fn grid(&self, now: Timestamp) -> Vec<SnapshotDecision> {
        let mut out = Vec::new();
        for purpose in &self.purposes {
            let Some(p) = self.catalog.purpose(purpose) else { continue };
            let channels = std::iter::once(None).chain(p.channels.iter().map(|c| Some(c.as_str())));
            for channel in channels {
                for category in &self.categories {
                    let d = self.decide(purpose, category, channel, now);
                    out.push(SnapshotDecision {
                        purpose: purpose.clone(),
                        category: category.clone(),
                        channel: channel.map(str::to_owned),
                        allowed: d.allowed,
                        reason: d.reason.as_str().to_owned(),
                        event_id: d.event_seq.map(event_id),
                        not_covered: d.not_covered.map(|n| n.as_str().to_owned()),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod household_tests;
#[cfg(test)]
mod tests;
