//! Turning a submitted form into consent changes, and recording them.
//!
//! The form says what the person wants now (ticked purposes and channels); the engine says what holds now.
//! Only the differences are recorded. Purposes are visited parents first, and each is compared with the
//! decision it would have after the changes already planned (`Engine::check_with`), so a change on a parent
//! (`marketing`) is not repeated or contradicted on its children. Changes are recorded per notice, under
//! the notice version the page showed, through the same code as `POST /v1/subjects/{subject}/consents`.

use std::collections::{HashMap, HashSet};

use consentry_core::{Action, Event, Query, Scope, SubjectId, Timestamp};

use crate::auth::ACTOR_SUBJECT;
use crate::error::ApiResult;
use crate::state::AppState;
use consentry_service::CatalogView;
use consentry_service::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};

/// The collection point recorded on changes made here (when the catalogue has it).
pub const COLLECTION_POINT: &str = "preference-centre";

/// What the person submitted.
#[derive(Debug, Default)]
pub struct Wanted {
    /// Ticked purposes.
    pub purposes: HashSet<String>,
    /// Ticked (purpose, channel) pairs.
    pub channels: HashSet<(String, String)>,
    /// Notice versions the page showed, by notice key.
    pub versions: HashMap<String, u32>,
    /// The kind of data to delete (the data section's form).
    pub category: Option<String>,
    /// The erasure's confirmation.
    pub confirmed: bool,
}

impl Wanted {
    /// Reads an `application/x-www-form-urlencoded` body; unknown fields are ignored.
    pub fn parse(body: &[u8]) -> (Self, Option<String>) {
        let mut wanted = Wanted::default();
        let mut csrf = None;
        for (name, value) in form_urlencoded::parse(body).take(1000) {
            match name.as_ref() {
                "csrf" => csrf = Some(value.into_owned()),
                "category" => wanted.category = Some(value.into_owned()),
                "confirm" => wanted.confirmed = value == "yes",
                "p" => {
                    wanted.purposes.insert(value.into_owned());
                }
                "c" => {
                    if let Some((p, c)) = value.split_once('|') {
                        wanted.channels.insert((p.to_owned(), c.to_owned()));
                    }
                }
                "v" => {
                    if let Some((n, v)) = value.split_once('|')
                        && let Ok(v) = v.parse()
                    {
                        wanted.versions.insert(n.to_owned(), v);
                    }
                }
                _ => {}
            }
        }
        (wanted, csrf)
    }
}

/// One change made, for the page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub purpose: String,
    pub action: Action,
    /// Empty: the whole purpose.
    pub channels: Vec<String>,
}

/// The changes that take the subject from what holds now to what is wanted, in recording order.
pub fn plan(state: &AppState, view: &CatalogView, subject: &SubjectId, wanted: &Wanted) -> Vec<Changed> {
    let now = Timestamp::now();
    let mut purposes: Vec<_> = super::page::consent_purposes(view).collect();
    // Parents first (a stable sort keeps the catalogue's order otherwise).
    purposes.sort_by_key(|p| p.key.matches('.').count());
    let mut planned: Vec<Changed> = Vec::new();
    let mut preview: Vec<Event> = Vec::new();
    let allowed = |preview: &[Event], purpose: &str, channel: Option<&str>| {
        let q = Query { subject: subject.as_str(), purpose, category: None, channel, recipient: None };
        state.engine.check_with(&q, preview, now).is_ok_and(|d| d.allowed)
    };
    let add = |planned: &mut Vec<Changed>, preview: &mut Vec<Event>, change: Changed| {
        // A stand-in for the event the change will become, placed after anything real, for the preview.
        preview.push(Event {
            seq: u64::MAX / 2 + preview.len() as u64,
            pseudonym: String::new(),
            purpose: change.purpose.clone(),
            action: change.action,
            scope: Scope::new(Vec::new(), change.channels.clone(), Vec::new()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: ACTOR_SUBJECT.to_owned(),
            recorded_at: now,
            expires_at: None,
            prev_hash: String::new(),
            hash: String::new(),
        });
        planned.push(change);
    };
    for p in purposes {
        let ticked = wanted.purposes.contains(&p.key);
        if p.channels.is_empty() {
            let holds = allowed(&preview, &p.key, None);
            if ticked != holds {
                let action = if ticked { Action::Grant } else { Action::Withdraw };
                add(&mut planned, &mut preview, Changed { purpose: p.key.clone(), action, channels: vec![] });
            }
            continue;
        }
        let holding: Vec<&String> =
            p.channels.iter().filter(|ch| allowed(&preview, &p.key, Some(ch))).collect();
        if !ticked {
            if !holding.is_empty() || allowed(&preview, &p.key, None) {
                let change = Changed { purpose: p.key.clone(), action: Action::Withdraw, channels: vec![] };
                add(&mut planned, &mut preview, change);
            }
            continue;
        }
        let want = |ch: &String| wanted.channels.contains(&(p.key.clone(), ch.clone()));
        if holding.is_empty() && !p.channels.iter().any(want) {
            // Newly agreed without narrowing it to channels: the purpose as a whole.
            let change = Changed { purpose: p.key.clone(), action: Action::Grant, channels: vec![] };
            add(&mut planned, &mut preview, change);
            continue;
        }
        let grant: Vec<String> =
            p.channels.iter().filter(|ch| want(ch) && !holding.contains(ch)).cloned().collect();
        let withdraw: Vec<String> = holding.iter().filter(|ch| !want(ch)).map(|ch| (*ch).clone()).collect();
        if !withdraw.is_empty() {
            add(
                &mut planned,
                &mut preview,
                Changed { purpose: p.key.clone(), action: Action::Withdraw, channels: withdraw },
            );
        }
        if !grant.is_empty() {
            add(
                &mut planned,
                &mut preview,
                Changed { purpose: p.key.clone(), action: Action::Grant, channels: grant },
            );
        }
    }
    planned
}

/// Records `changes` for `subject`: one request (and receipt) per notice, in plan order, as the person,
/// at the preference centre, under the notice versions the page showed. Returns the receipt ids and how
/// many vault records the withdrawals deleted.
pub async fn record(
    state: &AppState,
    view: &CatalogView,
    subject: &SubjectId,
    changes: &[Changed],
    versions: &HashMap<String, u32>,
) -> ApiResult<(Vec<String>, u64)> {
    let mut groups: Vec<(Option<String>, Vec<&Changed>)> = Vec::new();
    for c in changes {
        let notice = view.catalog.purpose(&c.purpose).and_then(|p| p.notice.clone());
        match groups.iter_mut().find(|(n, _)| *n == notice) {
            Some((_, list)) => list.push(c),
            None => groups.push((notice, vec![c])),
        }
    }
    let collection_point =
        view.catalog.collection_point(COLLECTION_POINT).map(|_| COLLECTION_POINT.to_owned());
    let mut receipts = Vec::with_capacity(groups.len());
    let mut records_deleted = 0;
    for (notice, list) in groups {
        let notice_version = notice.as_ref().and_then(|n| versions.get(n).copied());
        let body = RecordConsents {
            notice,
            notice_version,
            collection_point: collection_point.clone(),
            changes: list
                .into_iter()
                .map(|c| ChangeIn {
                    purpose: c.purpose.clone(),
                    action: if c.action == Action::Grant {
                        ChangeAction::Grant
                    } else {
                        ChangeAction::Withdraw
                    },
                    categories: Vec::new(),
                    channels: c.channels.clone(),
                    recipients: Vec::new(),
                    expires_at: None,
                })
                .collect(),
        };
        let recorded = record_changes(state, subject, body, ACTOR_SUBJECT).await?;
        receipts.push(recorded.receipt.id);
        records_deleted += recorded.records_deleted;
    }
    Ok((receipts, records_deleted))
}
