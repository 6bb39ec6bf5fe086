//! The merge rule of a link: which consent choices of one record (`from`, e.g. an app install's anonymous
//! id) are carried into another (the survivor, e.g. the account it signed in to). Pure: the store reads
//! both records' statements in force inside the write that links them, and appends what [`carried`] picks.
//!
//! # The rule
//!
//! Choices are compared per purpose, scope and stance ([`Action::stance`]: an objection or a restriction
//! competes only with an objection or a restriction, never with a grant or withdrawal) by when they were
//! originally made (their effective time:
//! `occurred_at` when present, else `recorded_at`), never by when the link happens; a carried choice keeps
//! that time (as its `occurred_at`). The most recent explicit choice wins, and when in doubt a grant stays
//! behind:
//!
//! 1. A refusal of `from` (withdraw, deny, object, restrict; a GPC opt-out is a withdrawal) is carried when
//!    it is in force and wins its purpose, scope and stance: the survivor has no statement there, or an
//!    older one, or a grant made at the same instant (a refusal wins a tie). So an objection or restriction
//!    of `from` is carried whatever consent choice either record made since, unless the survivor holds the
//!    same objection or restriction at least as recent.
//! 2. A lapse (`expire`) is no choice and is never carried; nor is a grant already past its `expires_at`.
//! 3. A grant of `from` (grant, renew) is carried only if all of these hold:
//!    - it wins its purpose and scope: the survivor's statement there, if any, is strictly older;
//!    - the survivor has no refusal or lapse at least as recent on the same purpose, an ancestor or a
//!      descendant purpose, with an overlapping scope;
//!    - every refusal or lapse of `from` that could block it (on a related purpose with an overlapping
//!      scope, and later than it or on a purpose at or under its own) is carried too, so nothing that
//!      narrowed it in `from` is lost;
//!    - where it replaces a refusal or lapse of the survivor (a withdrawal, denial or lapse: a grant never
//!      replaces an objection or restriction), that statement blocks no other live grant of the survivor.
//! 4. Last, the result is checked against both records ([`carried`]'s gate): for every purpose the two
//!    records speak of, every data category, channel, recipient and jurisdiction of the catalogue (and none
//!    of each), now and at every instant a grant of either record lapses, the survivor after the link must
//!    not allow a use that neither record allowed. A grant under which it would is left behind, until none
//!    is. Carrying refusals alone can only narrow the survivor, so the gate always ends.
//!
//! So after a link the survivor never allows what neither record allowed, and never allows a use past a
//! refusal of either record that is at least as recent as the grant the answer rests on and still the
//! latest choice for its own purpose and scope. The property tests in `link/tests.rs` check both over
//! random histories of both records.

use std::collections::BTreeSet;

use crate::catalog::Catalog;
use crate::engine::{Engine, Query};
use crate::ledger::{Action, Event, NewEvent, Scope};
use crate::time::Timestamp;

/// The actor of a carried choice: `link:<pseudonym of from>` (the ledger never holds a subject id).
pub fn actor(from_pseudonym: &str) -> String {
    format!("{}{from_pseudonym}", crate::ledger::ACTOR_LINK_PREFIX)
}

/// The survivor's new event carrying `f`, made at `f`'s original time.
pub fn carry(f: &Event, actor: &str) -> NewEvent {
    NewEvent {
        purpose: f.purpose.clone(),
        action: f.action,
        scope: f.scope.clone(),
        notice: f.notice.clone(),
        notice_version: f.notice_version,
        notice_hash: f.notice_hash.clone(),
        collection_point: f.collection_point.clone(),
        actor: actor.to_owned(),
        expires_at: f.expires_at,
        evidence: f.evidence.clone(),
        // The survivor keeps its own place: a carried choice does not move the person.
        jurisdiction: None,
        occurred_at: Some(f.effective_at()),
    }
}

/// Where each record is (its jurisdiction, a key of the catalogue's), for the checks of the gate that ask
/// about "the subject's place".
#[derive(Debug, Clone, Copy, Default)]
pub struct Places<'a> {
    pub into: Option<&'a str>,
    pub from: Option<&'a str>,
}

/// Whether `key` is `of` or lies under it (`marketing.direct` under `marketing`).
fn within(key: &str, of: &str) -> bool {
    key == of || (key.len() > of.len() && key.starts_with(of) && key.as_bytes()[of.len()] == b'.')
}

/// Whether two purposes (or categories) lie on one line of the hierarchy.
fn related(a: &str, b: &str) -> bool {
    within(a, b) || within(b, a)
}

/// Whether some use can be both covered by a statement with scope `a` and touched by one with scope `b`
/// (an empty list is the whole dimension).
pub fn overlap(a: &Scope, b: &Scope) -> bool {
    let hier = |x: &[String], y: &[String]| {
        x.is_empty() || y.is_empty() || x.iter().any(|i| y.iter().any(|j| related(i, j)))
    };
    let flat = |x: &[String], y: &[String]| x.is_empty() || y.is_empty() || x.iter().any(|i| y.contains(i));
    hier(&a.categories, &b.categories) && flat(&a.channels, &b.channels) && flat(&a.recipients, &b.recipients)
}

/// Whether two statements compete for one place of the current state: the same purpose, scope and stance
/// (an objection or a restriction is kept apart from the consent choice, so no choice replaces one).
fn same_key(a: &Event, b: &Event) -> bool {
    a.purpose == b.purpose && a.scope == b.scope && a.action.stance() == b.action.stance()
}

/// A statement that takes permission away (a refusal or a lapse); `locate` holds none.
fn negative(e: &Event) -> bool {
    !e.action.is_positive() && e.action != Action::Locate
}

/// Whether negative `n` could block grant `g` for some use: on a related purpose with an overlapping scope,
/// and later than `g` or on `g`'s purpose or one under it (the engine's "more specific").
fn could_block(n: &Event, g: &Event) -> bool {
    related(&n.purpose, &g.purpose)
        && overlap(&n.scope, &g.scope)
        && (n.effective_at() >= g.effective_at() || within(&n.purpose, &g.purpose))
}

/// The refusals and grants of `from` the rule carries, before the gate (see the module documentation).
fn candidates<'a>(into: &[Event], from: &'a [Event], now: Timestamp) -> Vec<&'a Event> {
    let theirs = |f: &&Event| f.action != Action::Locate && !f.purpose.is_empty();
    let ours = |f: &Event| into.iter().find(|s| s.action != Action::Locate && same_key(s, f));
    // 1. Refusals that win their purpose and scope.
    let refusals: Vec<&Event> = from
        .iter()
        .filter(theirs)
        .filter(|f| negative(f) && f.action != Action::Expire)
        .filter(|f| match ours(f) {
            None => true,
            Some(s) => {
                f.effective_at() > s.effective_at()
                    || (f.effective_at() == s.effective_at() && s.action.is_positive())
            }
        })
        .collect();
    let carried_refusal = |n: &Event| refusals.iter().any(|r| std::ptr::eq(*r, n));
    let live = |e: &Event, at: Timestamp| e.action.is_positive() && e.expires_at.is_none_or(|x| x > at);
    // 3. Grants.
    let grants = from.iter().filter(theirs).filter(|g| live(g, now)).filter(|g| {
        let replaced = ours(g);
        let wins = replaced.is_none_or(|s| s.effective_at() < g.effective_at());
        let survivor_refused = into.iter().any(|n| {
            negative(n)
                && related(&n.purpose, &g.purpose)
                && overlap(&n.scope, &g.scope)
                && n.effective_at() >= g.effective_at()
        });
        let lost_refusal = from.iter().any(|n| negative(n) && !carried_refusal(n) && could_block(n, g));
        // `same_key` keeps stances apart, so what a grant replaces is never an objection or restriction.
        let unblocks = replaced.is_some_and(|s| {
            negative(s) && into.iter().any(|h| live(h, now) && !same_key(h, s) && could_block(s, h))
        });
        wins && !survivor_refused && !lost_refusal && !unblocks
    });
    let mut picked: Vec<&Event> = refusals.iter().copied().chain(grants).collect();
    picked.sort_by_key(|e| e.seq);
    picked
}

/// The choices of `from` to carry into the survivor `into` (both: the records' statements in force, as the
/// store keeps them), in `from`'s ledger order, at time `now`. Carry them with [`carry`], in that order.
pub fn carried<'a>(
    catalog: &Catalog,
    into: &[Event],
    from: &'a [Event],
    places: Places<'_>,
    now: Timestamp,
) -> Vec<&'a Event> {
    let mut picked = candidates(into, from, now);
    // 4. The gate. Carrying refusals alone only narrows the survivor: each round leaves a grant behind,
    //    so this ends.
    while picked.iter().any(|e| e.action.is_positive()) {
        match unsafe_grants(catalog, into, from, &picked, places, now) {
            Ok(bad) if bad.is_empty() => break,
            Ok(bad) => picked.retain(|e| !bad.iter().any(|b| std::ptr::eq(*b, *e))),
            // An engine that cannot hold the statements cannot judge them: no grant is carried.
            Err(()) => picked.retain(|e| !e.action.is_positive()),
        }
    }
    picked
}

/// A scratch engine holding `events` of one subject, without their places (the gate's queries name one).
fn scratch(catalog: &Catalog, events: &[&Event]) -> Result<Engine, ()> {
    let engine = Engine::new();
    engine.set_catalog(catalog).map_err(|_| ())?;
    for e in events {
        let mut e = (*e).clone();
        e.jurisdiction = None;
        if e.action != Action::Locate {
            engine.apply("s", &e).map_err(|_| ())?;
        }
    }
    Ok(engine)
}

/// The survivor after the link, as the ledger will place it: `into`, then `picked` carried after every
/// event of both records (a carried event's seq is later than any before it).
fn merged<'a>(into: &'a [Event], from: &[Event], picked: &[&'a Event]) -> Vec<Event> {
    let top = into.iter().chain(from).map(|e| e.seq).max().unwrap_or(0);
    let mut out: Vec<Event> = into.to_vec();
    for (i, f) in picked.iter().enumerate() {
        let mut e = (*f).clone();
        e.occurred_at = Some(f.effective_at());
        e.seq = top + 1 + i as u64;
        out.push(e);
    }
    out
}

/// The grants among `picked` under which the survivor would allow a use neither record allowed (see the
/// module documentation, rule 4); empty when there are none.
fn unsafe_grants<'a>(
    catalog: &Catalog,
    into: &[Event],
    from: &[Event],
    picked: &[&'a Event],
    places: Places<'_>,
    now: Timestamp,
) -> Result<Vec<&'a Event>, ()> {
    let merged_events = merged(into, from, picked);
    let top = into.iter().chain(from).map(|e| e.seq).max().unwrap_or(0);
    let e_into = scratch(catalog, &into.iter().collect::<Vec<_>>())?;
    let e_from = scratch(catalog, &from.iter().collect::<Vec<_>>())?;
    let e_merged = scratch(catalog, &merged_events.iter().collect::<Vec<_>>())?;
    let mut found = None;
    for_each_use(catalog, into, from, now, |u, at| {
        let ask = |engine: &Engine, place: Option<&str>| {
            let q = Query { jurisdiction: u.jurisdiction.or(place), ..u.as_query() };
            engine.check(&q, at).ok()
        };
        let allowed = |d: Option<crate::engine::Decision>| d.is_some_and(|d| d.allowed);
        let after = ask(&e_merged, places.into);
        if allowed(after) && !allowed(ask(&e_into, places.into)) && !allowed(ask(&e_from, places.from)) {
            found = Some((u, after.and_then(|d| d.event_seq)));
            return false;
        }
        true
    });
    let Some((u, rests_on)) = found else { return Ok(Vec::new()) };
    // The answer rests on a carried grant: leave it behind.
    if let Some(seq) = rests_on.filter(|&s| s > top) {
        let i = usize::try_from(seq - top - 1).map_err(|_| ())?;
        return Ok(picked.get(i).copied().into_iter().collect());
    }
    // Else a statement of the survivor that applied to the use was replaced: leave behind every grant that
    // replaced a refusal or lapse on a purpose the use is about (or, finding none, every grant).
    let replaced: Vec<&Event> = picked
        .iter()
        .copied()
        .filter(|g| g.action.is_positive() && within(u.purpose, &g.purpose))
        .filter(|g| into.iter().any(|s| negative(s) && same_key(s, g)))
        .collect();
    if replaced.is_empty() {
        return Ok(picked.iter().copied().filter(|g| g.action.is_positive()).collect());
    }
    Ok(replaced)
}

/// One use the gate asks about.
#[derive(Debug, Clone, Copy)]
struct Use<'c> {
    purpose: &'c str,
    category: Option<&'c str>,
    channel: Option<&'c str>,
    recipient: Option<&'c str>,
    /// `None`: the subject's own place.
    jurisdiction: Option<&'c str>,
}

impl<'c> Use<'c> {
    fn as_query(&self) -> Query<'c> {
        Query {
            subject: "s",
            purpose: self.purpose,
            category: self.category,
            channel: self.channel,
            recipient: self.recipient,
            jurisdiction: self.jurisdiction,
        }
    }
}

/// Calls `visit` with every use the two records can answer differently, at every instant their answers can
/// change, until it returns `false`: the catalogue's purposes at or under one either record speaks of, with
/// each data category, channel and recipient the purpose can be asked about (or none), and each
/// jurisdiction of the catalogue (or none: the subject's own), now and at each lapse of a grant. A use
/// outside what its purpose declares is `not_covered` for every record alike, so it is left out.
fn for_each_use<'c>(
    catalog: &'c Catalog,
    into: &[Event],
    from: &[Event],
    now: Timestamp,
    mut visit: impl FnMut(Use<'c>, Timestamp) -> bool,
) {
    let doc = catalog.document();
    let spoken: BTreeSet<&str> =
        into.iter().chain(from).filter(|e| e.action != Action::Locate).map(|e| e.purpose.as_str()).collect();
    let mut times: BTreeSet<Timestamp> = into
        .iter()
        .chain(from)
        .filter(|e| e.action.is_positive())
        .filter_map(|e| e.expires_at)
        .filter(|&x| x > now)
        .collect();
    times.insert(now);
    let some = |declared: &'c [String], all: Vec<&'c str>| -> Vec<Option<&'c str>> {
        let keys = if declared.is_empty() { all } else { declared.iter().map(String::as_str).collect() };
        std::iter::once(None).chain(keys.into_iter().map(Some)).collect()
    };
    let places: Vec<Option<&str>> =
        std::iter::once(None).chain(doc.jurisdictions.iter().map(|j| Some(j.key.as_str()))).collect();
    for p in doc.purposes.iter().filter(|p| spoken.iter().any(|s| within(&p.key, s))) {
        let categories: Vec<Option<&str>> = std::iter::once(None)
            .chain(
                doc.data_categories
                    .iter()
                    .map(|c| c.key.as_str())
                    .filter(|c| p.categories.is_empty() || p.categories.iter().any(|d| within(c, d)))
                    .map(Some),
            )
            .collect();
        let channels = some(&p.channels, doc.channels.iter().map(|c| c.key.as_str()).collect());
        let recipients = some(&p.recipients, doc.recipients.iter().map(|c| c.key.as_str()).collect());
        for &at in &times {
            for &category in &categories {
                for &channel in &channels {
                    for &recipient in &recipients {
                        for &jurisdiction in &places {
                            let u = Use { purpose: &p.key, category, channel, recipient, jurisdiction };
                            if !visit(u, at) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
