//! Linking two subjects: `POST /v1/subjects/{subject}/links` with `{"from"}` merges the record of `from`
//! (an app install's anonymous id) into the subject (the account it signed in to), the **survivor**.
//!
//! 1. **Choices merge** ([`merge`]): per purpose and scope, the most recent explicit choice of the two
//!    records wins; so a withdrawal, objection or GPC opt-out is never overwritten by an older grant, and a
//!    lapsed grant (`expire`, or past its `expires_at`) is no choice to carry over. Each choice of `from`
//!    that wins becomes a ledger event of the survivor with actor `link:<pseudonym of from>`: the ledger
//!    names the old record as it always has, by pseudonym, never by subject id.
//! 2. **Everything else moves** ([`LinkStore::link_subjects`](consentry_store::links::LinkStore)):
//!    identifiers and vault records (re-sealed under the survivor's data key), paired devices (their
//!    tokens now act for the survivor) and data subject requests.
//! 3. **An alias**: `from` now names the survivor, on every node (it is stored in the key store and read
//!    again by each node's follower) and after a restart: checks, subject tokens and `{subject}` routes
//!    under the old id reach the person, and answers name the survivor.
//!
//! Unlinking is not offered: what merged cannot be told apart again.

pub mod aliases;

use consentry_core::{Action, Event, NewEvent, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::consents::{self, EventOut};
use crate::error::{Error, Result};
use crate::state::Services;

/// The record to merge into the subject of the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    /// The other subject id (e.g. an app install's anonymous id); it becomes an alias of this subject.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub from: String,
}

/// What moved to the survivor.
#[derive(Debug, Serialize, ToSchema)]
pub struct Moved {
    pub identifiers: u64,
    pub records: u64,
    pub devices: u64,
    pub requests: u64,
}

/// The result of a link.
#[derive(Debug, Serialize, ToSchema)]
pub struct Linked {
    /// The surviving subject id.
    pub subject: String,
    /// The id merged into it, now an alias of it.
    pub from: String,
    /// The choices of `from` that won the merge, recorded for the survivor (actor `link:…`).
    pub events: Vec<EventOut>,
    pub moved: Moved,
}

/// Whether an action is an explicit choice (a lapse is not).
fn explicit(action: Action) -> bool {
    action != Action::Expire
}

/// The statements of `from` that win over the survivor's (`into`), per purpose and scope: an explicit
/// choice of `from`, still in force, that is more recent than the survivor's statement for the same
/// purpose and scope (or where the survivor has none). At the same instant a refusal wins over a grant.
pub fn merge<'a>(into: &[Event], from: &'a [Event], now: Timestamp) -> Vec<&'a Event> {
    from.iter()
        .filter(|f| explicit(f.action))
        .filter(|f| !(f.action.is_positive() && f.expires_at.is_some_and(|at| at <= now)))
        .filter(|f| {
            match into.iter().find(|s| s.purpose == f.purpose && s.scope == f.scope) {
                None => true,
                Some(s) if f.recorded_at != s.recorded_at => f.recorded_at > s.recorded_at,
                // The same instant: only a refusal replaces a grant.
                Some(s) => s.action.is_positive() && !f.action.is_positive(),
            }
        })
        .collect()
}

/// The survivor's event carrying `f`'s choice.
fn carried(f: &Event, actor: &str) -> NewEvent {
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
        // The survivor keeps its own jurisdiction: a carried choice does not move the person.
        jurisdiction: None,
    }
}

/// Merges `from` into `survivor` (see the module documentation).
pub async fn link(state: &Services, survivor: &SubjectId, body: LinkIn) -> Result<Linked> {
    let from =
        SubjectId::new(body.from).map_err(|e| Error::validation("from", format!("the subject id {e}")))?;
    let from = state.aliases.survivor(from);
    if &from == survivor {
        return Err(Error::validation(
            "from",
            "a subject cannot be linked to itself (or to an id already linked into it)",
        ));
    }
    if state.erasures.is_erased(from.as_str()) || state.erasures.is_erased(survivor.as_str()) {
        return Err(Error::SubjectErased);
    }
    let now = Timestamp::now();
    // 1. The choices.
    let theirs = state.store.current(&from).await?;
    let ours = state.store.current(survivor).await?;
    let winners = merge(&ours, &theirs, now);
    let mut events = Vec::new();
    if let Some(first) = winners.first() {
        let actor = format!("link:{}", first.pseudonym);
        let carried: Vec<NewEvent> = winners.iter().map(|f| carried(f, &actor)).collect();
        let view = state.catalog();
        events = consents::append_events(state, survivor, &view, carried, None, None).await?.events;
    }
    // 2. and 3.
    let moved = state.store.link_subjects(&state.kek, &from, survivor, now).await?;
    state.aliases.link(from.as_str(), survivor.as_str());
    state.devices.subject_changed(&from);
    state.devices.subject_changed(survivor);
    tracing::info!(events = events.len(), devices = moved.devices.len(), "two subjects were linked");
    Ok(Linked {
        subject: survivor.as_str().to_owned(),
        from: from.as_str().to_owned(),
        events,
        moved: Moved {
            identifiers: moved.identifiers,
            records: moved.records,
            devices: moved.devices.len() as u64,
            requests: moved.requests,
        },
    })
}

#[cfg(test)]
mod tests {
    use consentry_core::Scope;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000)
    }

    fn event(purpose: &str, action: Action, when: i64) -> Event {
        Event {
            seq: 0,
            pseudonym: "p".into(),
            purpose: purpose.into(),
            action,
            scope: Scope::default(),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: "key:k".into(),
            recorded_at: at(when),
            expires_at: None,
            prev_hash: String::new(),
            hash: String::new(),
            evidence: None,
            jurisdiction: None,
        }
    }

    fn won(into: &[Event], from: &[Event]) -> Vec<(String, Action)> {
        merge(into, from, at(1000)).into_iter().map(|e| (e.purpose.clone(), e.action)).collect()
    }

    #[test]
    fn the_most_recent_explicit_choice_wins() {
        // Only in `from`: carried over. Newer in `from`: wins. Older in `from`: loses.
        let into = [event("analytics", Action::Grant, 10), event("marketing", Action::Grant, 10)];
        let from = [
            event("personalisation", Action::Grant, 5),
            event("analytics", Action::Withdraw, 20),
            event("marketing", Action::Deny, 5),
        ];
        assert_eq!(
            won(&into, &from),
            [("personalisation".to_owned(), Action::Grant), ("analytics".to_owned(), Action::Withdraw)]
        );
    }

    #[test]
    fn an_older_grant_never_overwrites_a_refusal() {
        for refusal in [Action::Withdraw, Action::Object, Action::Deny] {
            let into = [event("marketing", refusal, 10)];
            assert!(won(&into, &[event("marketing", Action::Grant, 9)]).is_empty(), "{refusal:?}");
            // At the same instant the refusal stays too, and a refusal replaces a grant.
            assert!(won(&into, &[event("marketing", Action::Grant, 10)]).is_empty(), "{refusal:?}");
            let grant = [event("marketing", Action::Grant, 10)];
            assert_eq!(won(&grant, &[event("marketing", refusal, 10)]), [("marketing".to_owned(), refusal)]);
        }
        // A GPC opt-out is a withdrawal by `signal:gpc`: the same rule.
        let mut gpc = event("sale", Action::Withdraw, 10);
        gpc.actor = "signal:gpc".into();
        assert!(won(&[gpc], &[event("sale", Action::Grant, 3)]).is_empty());
    }

    #[test]
    fn lapses_and_other_scopes() {
        let into = [event("analytics", Action::Grant, 1)];
        // A lapse is no choice; a grant already past its end is not carried.
        assert!(won(&into, &[event("analytics", Action::Expire, 50)]).is_empty());
        let mut lapsed = event("marketing", Action::Grant, 50);
        lapsed.expires_at = Some(at(900));
        assert!(won(&into, &[lapsed.clone()]).is_empty());
        lapsed.expires_at = Some(at(2000));
        assert_eq!(won(&into, &[lapsed]).len(), 1);
        // Scopes are compared whole: another channel is another statement.
        let mut email = event("analytics", Action::Withdraw, 0);
        email.scope = Scope::new(vec![], vec!["email".into()], vec![]);
        assert_eq!(won(&into, &[email]).len(), 1);
    }
}
