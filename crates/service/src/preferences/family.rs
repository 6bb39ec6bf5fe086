//! Children and guardians in the preference centre.
//!
//! - **Come of age.** A person who came of age while choices a guardian made for them hold is asked to
//!   confirm or change them ([`CameOfAge`] on their page): confirming records, as the person, their own
//!   grant of what each such grant allowed ([`confirm_guardian_choices`]); any choice of their own since
//!   they came of age ends the question.
//! - **A guardian's children.** A guardian's page lists the known children they are a recorded guardian
//!   of, by number only ([`ChildLink`]), each with an opaque reference to a page of that child's choices
//!   ([`child_page`]) where the guardian chooses for them ([`save_for_child`]), recorded as
//!   `guardian:<the guardian's pseudonym>`, exactly as the API's guardian token is. Once the child comes
//!   of age (or the relation is removed) the page is not found.

use std::collections::HashMap;

use consentry_core::catalog::Basis;
use consentry_core::ledger::is_guardian_actor;
use consentry_core::{Action, Event, SubjectId, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Change, Choices, Notice, Page, Saved, choices, logged, newest_history, plan, record};
use crate::access::Reader;
use crate::auth::ACTOR_SUBJECT;
use crate::consents::{ChangeAction, ChangeIn, RecordConsents, record_changes};
use crate::error::{Error, Result};
use crate::guardians::writes::{guardian_actor, guardian_may_act};
use crate::state::{CatalogView, Services};

/// The collection point recorded on changes made here (when the catalogue has it).
const COLLECTION_POINT: &str = super::COLLECTION_POINT;

/// The person came of age while grants a guardian made for them hold.
#[derive(Debug)]
pub struct CameOfAge {
    /// The purposes of those grants, in the catalogue's order.
    pub purposes: Vec<String>,
}

/// A known child the person is a guardian of, as their page lists them: a number, never anything of the
/// child (their id names them).
#[derive(Debug, Clone)]
pub struct ChildLink {
    /// Opaque, stable for this guardian and child: the path segment of the child's page.
    pub reference: String,
    /// 1 for the first child recorded for this guardian, and so on.
    pub number: usize,
}

/// A child's choices, as their guardian sees and changes them.
#[derive(Debug)]
pub struct ChildPage {
    pub child: ChildLink,
    /// The child's choices and history (nothing else of the page is filled in).
    pub page: Page,
}

/// The grants in force among `current` that a guardian made on a consent purpose.
fn guardian_grants<'e>(view: &CatalogView, current: &'e [Event], now: Timestamp) -> Vec<&'e Event> {
    current
        .iter()
        .filter(|e| is_guardian_actor(&e.actor) && e.action.is_positive())
        .filter(|e| e.expires_at.is_none_or(|t| now < t))
        .filter(|e| view.catalog.purpose(&e.purpose).is_some_and(|p| p.basis == Basis::Consent))
        .collect()
}

/// Whether `subject`, whose statements in force are `current`, came of age (by the engine's knowledge of
/// their age and place) while a guardian's grants hold, and made no choice of their own since. "Since"
/// is the moment their coming of age was announced when it was (a child re-stated as an adult came of
/// age then, not when their new age says), else the moment their age says.
pub(super) async fn came_of_age(
    services: &Services,
    view: &CatalogView,
    subject: &SubjectId,
    current: &[Event],
) -> Result<Option<CameOfAge>> {
    let now = Timestamp::now();
    let Some(until) = services.engine.child_until(subject.as_str()) else { return Ok(None) };
    if now < until {
        return Ok(None);
    }
    let announced = services.store.age(&services.kek, subject).await?.and_then(|a| a.came_of_age_at);
    let since = announced.map_or(until, |at| at.max(until));
    if current.iter().any(|e| e.actor == ACTOR_SUBJECT && e.effective_at() >= since) {
        return Ok(None);
    }
    let granted = guardian_grants(view, current, now);
    let purposes: Vec<String> = view
        .catalog
        .document()
        .purposes
        .iter()
        .filter(|p| granted.iter().any(|e| e.purpose == p.key))
        .map(|p| p.key.clone())
        .collect();
    Ok((!purposes.is_empty()).then_some(CameOfAge { purposes }))
}

/// "Confirm": records, as the person, their own grant of each grant a guardian made for them that holds
/// (the same purpose and scope, and expiry when it has one), one request per notice under the versions
/// the page showed; not found when there is nothing to confirm (a child still, or already answered).
pub async fn confirm_guardian_choices(
    services: &Services,
    visit: &super::Visit,
    versions: &HashMap<String, u32>,
) -> Result<Page> {
    let view = services.catalog();
    let subject = &visit.subject;
    let current = services.store.current(subject).await?;
    if came_of_age(services, &view, subject, &current).await?.is_none() {
        return Err(Error::NotFound("guardian's choices to confirm"));
    }
    let now = Timestamp::now();
    let mut groups: Vec<(Option<String>, Vec<&Event>)> = Vec::new();
    for e in guardian_grants(&view, &current, now) {
        let notice = view.catalog.purpose(&e.purpose).and_then(|p| p.notice.clone());
        match groups.iter_mut().find(|(n, _)| *n == notice) {
            Some((_, list)) => list.push(e),
            None => groups.push((notice, vec![e])),
        }
    }
    let collection_point =
        view.catalog.collection_point(COLLECTION_POINT).map(|_| COLLECTION_POINT.to_owned());
    let (mut changed, mut receipts, mut records_deleted) = (Vec::new(), Vec::new(), 0);
    for (notice, grants) in groups {
        let notice_version = notice.as_ref().and_then(|n| versions.get(n).copied());
        let changes = grants
            .iter()
            .map(|e| ChangeIn {
                purpose: e.purpose.clone(),
                action: ChangeAction::Grant,
                categories: e.scope.categories.clone(),
                channels: e.scope.channels.clone(),
                recipients: e.scope.recipients.clone(),
                expires_at: e.expires_at,
            })
            .collect();
        let body = RecordConsents {
            notice,
            notice_version,
            collection_point: collection_point.clone(),
            changes,
            jurisdiction: None,
            actor: None,
        };
        let recorded = record_changes(services, subject, body, ACTOR_SUBJECT).await?;
        receipts.push(recorded.receipt.id);
        records_deleted += recorded.records_deleted;
        changed.extend(grants.iter().map(|e| Change {
            purpose: e.purpose.clone(),
            action: Action::Grant,
            channels: e.scope.channels.clone(),
        }));
    }
    logged(services, subject, "preferences: confirm a guardian's choices");
    super::page(
        services,
        visit,
        Some(Notice::Saved(Saved { changed, receipts, records_deleted, needs_guardian: Vec::new() })),
    )
    .await
}

/// The opaque reference of `child` on `guardian`'s page: a keyed hash of both ids under the form key (on
/// every node the same), so the page's address names neither.
fn reference(services: &Services, guardian: &SubjectId, child: &SubjectId) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(services.signing.form_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for part in [b"guardian-child".as_slice(), guardian.as_str().as_bytes(), child.as_str().as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The known children `guardian` acts for now, oldest relation first, with their links.
async fn acting_for(services: &Services, guardian: &SubjectId) -> Result<Vec<(SubjectId, ChildLink)>> {
    let children = crate::guardians::children(services, guardian).await?;
    Ok(children
        .into_iter()
        .filter(|child| guardian_may_act(services, child) && !services.erasures.is_erased(child.as_str()))
        .enumerate()
        .map(|(i, child)| {
            let link = ChildLink { reference: reference(services, guardian, &child), number: i + 1 };
            (child, link)
        })
        .collect())
}

/// The children listed on `guardian`'s page.
pub(super) async fn children(services: &Services, guardian: &SubjectId) -> Result<Vec<ChildLink>> {
    Ok(acting_for(services, guardian).await?.into_iter().map(|(_, link)| link).collect())
}

/// The child `reference` names for `guardian`, and the actor their changes are recorded with; not found
/// unless `guardian` is a recorded guardian of a known child of that reference.
async fn child_of(
    services: &Services,
    guardian: &SubjectId,
    reference: &str,
) -> Result<(SubjectId, ChildLink, String)> {
    let found =
        acting_for(services, guardian).await?.into_iter().find(|(_, link)| link.reference == reference);
    let (child, link) = found.ok_or(Error::NotFound("child"))?;
    let actor = guardian_actor(services, &child, guardian).await?.ok_or(Error::NotFound("child"))?;
    Ok((child, link, actor))
}

/// The child's page as their guardian sees it: choices and history, with `notice` of what was just done.
async fn child_view(
    services: &Services,
    child: &SubjectId,
    link: ChildLink,
    notice: Option<Notice>,
) -> Result<ChildPage> {
    let catalog = services.catalog();
    let current = services.store.current(child).await?;
    let choices = choices(services, &catalog, child, &current);
    let history = newest_history(services, child).await?;
    let page = Page {
        catalog,
        choices,
        history,
        // The evidence links read the session's own events: none on a child's page.
        evidence: Vec::new(),
        receipts: Vec::new(),
        access: Vec::new(),
        checks: Vec::new(),
        gpc: None,
        notice,
        records: Vec::new(),
        devices: Vec::new(),
        household_devices: Vec::new(),
        requests: Vec::new(),
        came_of_age: None,
        children: Vec::new(),
    };
    Ok(ChildPage { child: link, page })
}

/// A child's choices for their guardian `guardian` (the session's person); in the child's access log
/// under the guardian's actor (`guardian:<pseudonym>`), never as the child's own read.
pub async fn child_page(services: &Services, guardian: &SubjectId, reference: &str) -> Result<ChildPage> {
    let (child, link, actor) = child_of(services, guardian, reference).await?;
    let shown = child_view(services, &child, link, None).await?;
    Reader::guardian_page(&actor, "preferences: a guardian's view").log(&services.access, &child);
    Ok(shown)
}

/// Saves a child's choices as their guardian: only what differs from what holds now, recorded as
/// `guardian:<pseudonym>`, one request per notice under the versions the page showed.
pub async fn save_for_child(
    services: &Services,
    guardian: &SubjectId,
    reference: &str,
    wanted: &Choices,
) -> Result<ChildPage> {
    let (child, link, actor) = child_of(services, guardian, reference).await?;
    let view = services.catalog();
    let changed = plan(services, &view, &child, wanted, &actor);
    let (receipts, records_deleted, needs_guardian) =
        record(services, &view, &child, &changed, &wanted.versions, &actor).await?;
    Reader::guardian_page(&actor, "preferences: a guardian's save").log(&services.access, &child);
    let saved = Notice::Saved(Saved { changed, receipts, records_deleted, needs_guardian });
    child_view(services, &child, link, Some(saved)).await
}
