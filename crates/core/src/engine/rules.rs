//! The decision rules over compiled symbols (stated in the engine's documentation): whether a query fits
//! what its purpose declares, which statements cover or apply to it, and which one decides.

use super::memory::{CHILD, FLAG_CHILD_UNTIL, FLAG_GPC, FLAG_GUARDIAN, JURISDICTION, Stmt};
use super::symbols::{Interner, PurposeInfo, ScopeDef, Shared};
use super::{Decision, Dimension, Query, QueryError, Reason};
use crate::catalog::Basis;
use crate::ledger::Action;

/// The resolved dimensions of a query.
pub(super) struct Resolved<'s> {
    /// The query's category and its ancestors.
    category: Option<&'s [u32]>,
    channel: Option<u32>,
    recipient: Option<u32>,
    /// The jurisdiction the query names (its symbol); `None`: the subject's, if any.
    jurisdiction: Option<u32>,
}

impl Resolved<'static> {
    /// A query of the whole purpose: no category, channel, recipient or jurisdiction.
    pub(super) const fn whole() -> Self {
        Self { category: None, channel: None, recipient: None, jurisdiction: None }
    }
}

/// The jurisdiction symbol a subject's statements hold, if any (the engine keeps at most one).
pub(super) fn held_jurisdiction(stmts: &[Stmt]) -> Option<u32> {
    stmts.iter().find(|s| s.purpose == JURISDICTION).map(|s| s.scope)
}

/// Microseconds in a day.
const DAY: i64 = 86_400_000_000;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// When (microseconds since the epoch, midnight UTC) the subject whose statements are `stmts` comes of
/// age under jurisdiction `j`'s age of digital consent (the default without one), if their age is known.
/// Calendar arithmetic on integers: no allocation, no I/O.
pub(super) fn child_until(shared: &Shared, stmts: &[Stmt], j: Option<u32>) -> Option<i64> {
    let c = stmts.iter().find(|s| s.purpose == CHILD)?;
    if c.flags & FLAG_CHILD_UNTIL != 0 {
        return Some(c.at);
    }
    let birth = time::Date::from_julian_day(i32::try_from(c.at).ok()?).ok()?;
    Some(of_age_at(birth, shared.age_of_consent(j)))
}

/// When (microseconds since the epoch, midnight UTC) someone born on `birth` reaches `age`.
pub(super) fn of_age_at(birth: time::Date, age: u8) -> i64 {
    let year = birth.year() + i32::from(age);
    // Born on 29 February: of age on 1 March in a year without one (the later day).
    let of_age =
        birth.replace_year(year).or_else(|_| time::Date::from_calendar_date(year, time::Month::March, 1));
    // A date out of range is far in the future: still a child.
    let day = of_age.map_or(i64::MAX / DAY, |d| i64::from(d.to_julian_day()));
    (day - UNIX_EPOCH_JULIAN_DAY).saturating_mul(DAY)
}

/// A query answered from the catalogue alone, or resolved and ready for the subject's statements.
pub(super) enum Prepared<'s> {
    Decided(Decision),
    Ready(&'s PurposeInfo, Resolved<'s>),
}

/// Resolves a query's names; answers at once when the query falls outside what the purpose declares.
pub(super) fn prepare<'s>(shared: &'s Shared, q: &Query<'_>) -> Result<Prepared<'s>, QueryError> {
    let info = shared.purpose_info(q.purpose).ok_or(QueryError::UnknownPurpose)?;
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
    let jurisdiction = match q.jurisdiction {
        None => None,
        Some(k) => Some(
            shared
                .jurisdictions
                .get(k)
                .filter(|&id| c.jurisdictions.get(id as usize).is_some_and(Option::is_some))
                .ok_or(QueryError::UnknownJurisdiction)?,
        ),
    };
    let r = Resolved { category, channel, recipient, jurisdiction };

    // The query must fit what the purpose declares; the first dimension that does not is named.
    let outside = if category
        .is_some_and(|anc| !info.categories.is_empty() && !info.categories.iter().any(|d| anc.contains(d)))
    {
        Some(Dimension::Category)
    } else if channel.is_some_and(|ch| !info.channels.is_empty() && !info.channels.contains(&ch)) {
        Some(Dimension::Channel)
    } else if recipient.is_some_and(|rc| !info.recipients.is_empty() && !info.recipients.contains(&rc)) {
        Some(Dimension::Recipient)
    } else {
        None
    };
    if let Some(dimension) = outside {
        return Ok(Prepared::Decided(Decision::not_covered(dimension, None)));
    }
    Ok(Prepared::Ready(info, r))
}

/// The depth of `purpose` if it is the queried purpose or one of its ancestors.
fn depth_in(info: &PurposeInfo, purpose: u16) -> Option<u8> {
    info.chain.iter().find(|(id, _)| *id == purpose).map(|(_, d)| *d)
}

pub(super) fn decide(
    shared: &Shared,
    info: &PurposeInfo,
    r: &Resolved<'_>,
    stmts: &[Stmt],
    now: i64,
) -> Decision {
    let scope = |s: &Stmt| &shared.scopes[s.scope as usize];
    let relevant = || stmts.iter().filter_map(|s| depth_in(info, s.purpose).map(|d| (s, d)));
    let held = held_jurisdiction(stmts);
    let place = r.jurisdiction.or(held);
    // A child under the subject's own place stays one whatever place a check names (a named place with
    // a lower age of digital consent must not lift the protection), and a named place with a higher age
    // makes them one.
    let child_under = |j: Option<u32>| child_until(shared, stmts, j).is_some_and(|until| now < until);
    let child =
        child_under(held) || (r.jurisdiction.is_some() && r.jurisdiction != held && child_under(place));
    if child && info.child_protected {
        return Decision::new(Reason::ChildProtected, None);
    }

    if info.basis != Basis::Consent {
        let blocker = relevant()
            .filter(|(s, _)| matches!(s.action, Action::Object | Action::Restrict))
            .filter(|(s, _)| applies(shared, scope(s), r))
            .max_by_key(|(s, _)| s.order());
        return match blocker {
            Some((s, _)) => Decision::new(negative_reason(s), Some(s.seq)),
            None => Decision::new(Reason::for_basis(info.basis), None),
        };
    }

    let negatives = || relevant().filter(|(s, _)| !s.action.is_positive() && applies(shared, scope(s), r));
    // For a known child only what a guardian granted counts; without it, a guardian is required.
    let positive = |s: &Stmt| s.action.is_positive() && (!child || s.flags & FLAG_GUARDIAN != 0);
    if child && !relevant().any(|(s, _)| positive(s)) {
        return Decision::new(Reason::GuardianRequired, None);
    }
    let mut best: Option<&Stmt> = None;
    let mut any_covering = false;
    for (g, g_depth) in relevant().filter(|(s, _)| positive(s) && s.expires_at > now) {
        if uncovered(scope(g), r).is_some() {
            continue;
        }
        any_covering = true;
        let blocked = negatives().any(|(n, n_depth)| {
            n.order() > g.order()
                || n_depth > g_depth
                || (n_depth == g_depth && strictly_narrower(shared, scope(n), scope(g)))
        });
        if !blocked && best.is_none_or(|b| g.order() > b.order()) {
            best = Some(g);
        }
    }
    if let Some(g) = best {
        return Decision::new(Reason::Granted, Some(g.seq));
    }
    // Looked up only here, off the path of a granted use: the place's regime for this purpose.
    // A known child is never under opt-out: their consent purposes need a guardian's grant.
    let opt_out = !child && place.is_some_and(|j| shared.opt_out(j, info));
    // Under opt-out a lapsed grant is no opt-out: only what the person said against the use counts.
    let opted_out = |(s, _): &(&Stmt, u8)| !(opt_out && s.action == Action::Expire);
    if let Some((n, _)) = negatives().filter(opted_out).max_by_key(|(s, _)| s.order()) {
        return Decision::new(negative_reason(n), Some(n.seq));
    }
    if opt_out {
        return Decision::new(Reason::NotOptedOut, None);
    }
    debug_assert!(!any_covering, "a covering grant is either allowed or blocked by a negative");
    let positives = || relevant().filter(|(s, _)| positive(s));
    let covering = positives().filter(|(s, _)| uncovered(scope(s), r).is_none());
    if let Some((g, _)) = covering.max_by_key(|(s, _)| s.order()) {
        // Covering, but not live: it has expired.
        return Decision::new(Reason::Expired, Some(g.seq));
    }
    if let Some((g, _)) = positives().max_by_key(|(s, _)| s.order()) {
        // The answer rests on the latest grant: name what it leaves out.
        let dimension = uncovered(scope(g), r).unwrap_or(Dimension::Category);
        return Decision::not_covered(dimension, Some(g.seq));
    }
    Decision::new(Reason::NoConsent, None)
}

fn negative_reason(s: &Stmt) -> Reason {
    match s.action {
        Action::Withdraw if s.flags & FLAG_GPC != 0 => Reason::GpcOptOut,
        Action::Withdraw => Reason::Withdrawn,
        Action::Deny => Reason::Denied,
        Action::Object => Reason::Objected,
        Action::Restrict => Reason::Restricted,
        Action::Expire => Reason::Expired,
        // Positive actions and `locate` (no statement) never reach here; deny rather than guess.
        Action::Grant | Action::Renew | Action::Locate => Reason::Denied,
    }
}

/// The first dimension (category, channel, recipient) of the uses the query asks about that a grant with
/// `scope` does not cover; `None` when it covers them all.
fn uncovered(scope: &ScopeDef, r: &Resolved<'_>) -> Option<Dimension> {
    let categories = scope.categories.is_empty()
        || r.category.is_some_and(|anc| scope.categories.iter().any(|c| anc.contains(c)));
    if !categories {
        return Some(Dimension::Category);
    }
    if !(scope.channels.is_empty() || r.channel.is_some_and(|ch| scope.channels.contains(&ch))) {
        return Some(Dimension::Channel);
    }
    if !(scope.recipients.is_empty() || r.recipient.is_some_and(|rc| scope.recipients.contains(&rc))) {
        return Some(Dimension::Recipient);
    }
    None
}

/// Whether a negative statement with `scope` touches any use the query asks about.
fn applies(shared: &Shared, scope: &ScopeDef, r: &Resolved<'_>) -> bool {
    let categories = scope.categories.is_empty()
        || match r.category {
            None => true,
            Some(anc) => scope.categories.iter().any(|&c| {
                // Overlap: the statement's category lies under the query's, or the other way round.
                anc.contains(&c) || shared.category_chain(c).is_some_and(|chain| chain.contains(&anc[0]))
            }),
        };
    let channels = scope.channels.is_empty() || r.channel.is_none_or(|ch| scope.channels.contains(&ch));
    let recipients =
        scope.recipients.is_empty() || r.recipient.is_none_or(|rc| scope.recipients.contains(&rc));
    categories && channels && recipients
}

/// Whether scope `a` covers strictly less than scope `b`.
fn strictly_narrower(shared: &Shared, a: &ScopeDef, b: &ScopeDef) -> bool {
    let cat_within = |x: u32, y: u32| x == y || shared.category_chain(x).is_some_and(|c| c.contains(&y));
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
