//! The preference centre's use cases: what a person's page shows, and what they can do there (save their
//! choices, withdraw everything, delete stored data, unpair a device, ask for a copy of their data or its
//! erasure, object to a purpose based on legitimate interest, download a receipt, a record or an export).
//!
//! The page (`consentry-server`'s `web/`) parses, checks the session and its CSRF token, calls one function
//! here and renders what it returns. Each action returns the page as it then stands, with a [`Notice`] of
//! what was done, and honours a Global Privacy Control signal the browser sent ([`crate::gpc`]). Changes
//! go through the same code as the API (consent recording, announced record deletion, device unpairing,
//! data subject requests).
//!
//! What the person reads and does here goes into their access log as caller `subject`, its route naming the
//! page action (`preferences: view`, `preferences: save`, ...; [`Reader::person`]), as what they do with
//! their subject token through the API does. Asking for erasure is not logged: it leaves no log to write in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use consentry_core::catalog::{Basis, Purpose};
use consentry_core::ids::Key;
use consentry_core::ledger::{ACTOR_GPP, ACTOR_TCF};
use consentry_core::{Action, Decision, Event, Query, Scope, SubjectId, Timestamp};
use consentry_store::vault::{RecordFilter, RecordMeta, RecordSelection, StoredRecord};
use consentry_store::{AccessRecord, DeviceRecord, HouseholdDevice, StoredReceipt};

use crate::access::Reader;
use crate::auth::ACTOR_SUBJECT;
use crate::consents::{ChangeAction, ChangeIn, RecordConsents, record_split};
use crate::error::{Error, Result};
use crate::receipts::{Rebuilder, ReceiptOut};
use crate::records::{delete_at_request, valid_record_id};
use crate::requests::{RequestKind, RequestOut, export_archive, subject_requests, submit};
use crate::state::{CatalogView, Services};

mod family;

pub use self::family::{
    CameOfAge, ChildLink, ChildPage, child_page, confirm_guardian_choices, save_for_child,
};

/// The preference centre's stylesheet, which the export's guide carries inline too (one look for both).
pub const STYLESHEET: &str = include_str!("preferences/style.css");

/// Most history events, receipts, log entries and records the page shows.
const SHOWN: u32 = 100;

/// The collection point recorded on changes made here (when the catalogue has it).
const COLLECTION_POINT: &str = "preference-centre";

/// Who is on the page: the person of the session, and whether their browser sends Global Privacy Control.
#[derive(Debug, Clone)]
pub struct Visit {
    pub subject: SubjectId,
    pub gpc: bool,
}

/// What the Global Privacy Control signal did on this request.
#[derive(Debug)]
pub enum GpcNote {
    /// Recorded now, for these purposes.
    Recorded(Vec<String>),
    /// Sent, and already recorded earlier.
    Honoured,
}

/// One change made, for the page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub purpose: String,
    pub action: Action,
    /// Empty: the whole purpose.
    pub channels: Vec<String>,
}

/// The result of saving.
#[derive(Debug)]
pub struct Saved {
    /// In recording order; empty when the choices were already as wanted.
    pub changed: Vec<Change>,
    /// One receipt per notice the changes were made under.
    pub receipts: Vec<String>,
    /// Vault records deleted because consent for their purpose was withdrawn.
    pub records_deleted: u64,
    /// Grants not recorded: the person is a known child, and a guardian must give these consents (their
    /// refusals were recorded all the same). Not among `changed`.
    pub needs_guardian: Vec<Change>,
}

/// What the request just did, shown at the top of the page.
#[derive(Debug)]
pub enum Notice {
    Saved(Saved),
    /// Records deleted from "my data".
    Deleted(u64),
    /// A device was unpaired.
    Unpaired,
    /// A copy of the data was asked for; the answer is due by then.
    Requested(Timestamp),
}

/// One purpose of the catalogue and where the person stands on it now.
#[derive(Debug)]
pub struct Choice {
    pub purpose: Purpose,
    /// The purpose as a whole (none when the engine cannot answer).
    pub decision: Option<Decision>,
    /// Each of the purpose's channels, in the catalogue's order.
    pub channels: Vec<(String, Option<Decision>)>,
    /// Allowed as a whole or through any channel: what the page ticks.
    pub allowed: bool,
    /// For a purpose based on consent: when the person's current choice began to hold (none: never chose).
    pub since: Option<Timestamp>,
    /// The actor (`signal:tcf`, `signal:gpp`) when that latest choice was read from a consent signal the
    /// brand's website or app sent, not made here.
    pub signal: Option<String>,
}

/// Everything the page shows about one person.
#[derive(Debug)]
pub struct Page {
    /// The catalogue the choices were read against (names, notices).
    pub catalog: Arc<CatalogView>,
    /// Every purpose, in the catalogue's order.
    pub choices: Vec<Choice>,
    /// Newest first.
    pub history: Vec<Event>,
    /// The events of `history` whose evidence is stored (an imported change's), by sequence number.
    pub evidence: Vec<u64>,
    /// Newest first.
    pub receipts: Vec<StoredReceipt>,
    pub access: Vec<AccessRecord>,
    /// Checks of the person's choices, per purpose: (purpose, how many, the last).
    pub checks: Vec<(String, u64, Timestamp)>,
    pub gpc: Option<GpcNote>,
    pub notice: Option<Notice>,
    /// The person's records in the vault, newest first.
    pub records: Vec<RecordMeta>,
    pub devices: Vec<DeviceRecord>,
    /// The devices of the households the person belongs to, shared with the other members.
    pub household_devices: Vec<HouseholdDevice>,
    /// Newest first.
    pub requests: Vec<RequestOut>,
    /// The person came of age while choices their guardian made hold for them: the page asks them to
    /// confirm or change those.
    pub came_of_age: Option<CameOfAge>,
    /// The known children the person is a guardian of, whose choices they manage from here.
    pub children: Vec<ChildLink>,
}

/// What the person's form says they want now.
#[derive(Debug, Default)]
pub struct Choices {
    /// Ticked purposes.
    pub purposes: HashSet<String>,
    /// Ticked (purpose, channel) pairs.
    pub channels: HashSet<(String, String)>,
    /// Notice versions the page showed, by notice key.
    pub versions: HashMap<String, u32>,
}

/// Which stored records to delete.
#[derive(Debug)]
pub enum Deletion {
    /// One record, by id (not found unless it is the person's).
    Record(String),
    /// Every record of a kind of data and the kinds under it.
    Category(Key),
}

/// The page of `visit`'s person.
pub async fn show(services: &Services, visit: &Visit) -> Result<Page> {
    let shown = page(services, visit, None).await?;
    logged(services, &visit.subject, "preferences: view");
    Ok(shown)
}

/// Writes what the person just did or read on their page into their access log, under `subject`.
fn logged(services: &Services, subject: &SubjectId, action: &'static str) {
    Reader::person(action).log(&services.access, subject);
}

/// Saves the person's choices: records only what differs from what holds now, one request (and receipt)
/// per notice, as the person, at the preference centre, under the notice versions the page showed.
/// Withdrawing everything is saving choices with nothing ticked.
pub async fn save(services: &Services, visit: &Visit, choices: &Choices) -> Result<Page> {
    let view = services.catalog();
    let planned = plan(services, &view, &visit.subject, choices, ACTOR_SUBJECT);
    let (receipts, records_deleted, needs_guardian) =
        record(services, &view, &visit.subject, &planned, &choices.versions, ACTOR_SUBJECT).await?;
    let changed = planned.into_iter().filter(|c| !needs_guardian.contains(c)).collect();
    logged(services, &visit.subject, "preferences: save");
    let saved = Saved { changed, receipts, records_deleted, needs_guardian };
    page(services, visit, Some(Notice::Saved(saved))).await
}

/// Records the person's objection (GDPR Art. 21) to a purpose based on legitimate interest or a public
/// task, as the person, at the preference centre, with its receipt. A purpose of another basis (or none) is
/// not found: the page offers objection only where the law gives it.
pub async fn object(services: &Services, visit: &Visit, purpose: &str) -> Result<Page> {
    let view = services.catalog();
    let objectable = view
        .catalog
        .purpose(purpose)
        .is_some_and(|p| matches!(p.basis, Basis::LegitimateInterest | Basis::PublicTask));
    if !objectable {
        return Err(Error::NotFound("purpose"));
    }
    let change = Change { purpose: purpose.to_owned(), action: Action::Object, channels: Vec::new() };
    let (receipts, records_deleted, needs_guardian) = record(
        services,
        &view,
        &visit.subject,
        std::slice::from_ref(&change),
        &HashMap::new(),
        ACTOR_SUBJECT,
    )
    .await?;
    logged(services, &visit.subject, "preferences: object");
    let saved = Saved { changed: vec![change], receipts, records_deleted, needs_guardian };
    page(services, visit, Some(Notice::Saved(saved))).await
}

/// Deletes the person's own records, each announced downstream; another person's record is not touched.
pub async fn delete_records(services: &Services, visit: &Visit, which: Deletion) -> Result<Page> {
    let subject = visit.subject.clone();
    let (selection, action) = match which {
        Deletion::Record(id) if valid_record_id(&id) => {
            (RecordSelection::Ids { subject, ids: vec![id] }, "preferences: delete record")
        }
        Deletion::Record(_) => return Err(Error::NotFound("record")),
        Deletion::Category(category) => (
            RecordSelection::Subject { subject, category: Some(category.as_str().to_owned()) },
            "preferences: delete records of a kind",
        ),
    };
    let deleted = delete_at_request(services, selection).await?;
    logged(services, &visit.subject, action);
    page(services, visit, Some(Notice::Deleted(deleted))).await
}

/// Unpairs one of the person's devices (another's is not found).
pub async fn unpair(services: &Services, visit: &Visit, device: &str) -> Result<Page> {
    if !crate::devices::unpair_device(services, &visit.subject, device, ACTOR_SUBJECT).await? {
        return Err(Error::NotFound("device"));
    }
    logged(services, &visit.subject, "preferences: unpair device");
    page(services, visit, Some(Notice::Unpaired)).await
}

/// "Get a copy of my data": files an access request, whose export is ready at once.
pub async fn request_copy(services: &Services, visit: &Visit) -> Result<Page> {
    let request = submit(services, &visit.subject, RequestKind::Access, None, ACTOR_SUBJECT).await?;
    logged(services, &visit.subject, "preferences: request a copy");
    let due = Timestamp::parse(&request.due_at).unwrap_or_else(Timestamp::now);
    page(services, visit, Some(Notice::Requested(due))).await
}

/// "Delete my data": files an erasure request, which is carried out at once.
pub async fn erase(services: &Services, subject: &SubjectId) -> Result<()> {
    submit(services, subject, RequestKind::Erasure, None, ACTOR_SUBJECT).await?;
    Ok(())
}

/// One of the person's own receipts, built again from the ledger (someone else's is as absent as an
/// unknown one).
pub async fn receipt(services: &Services, subject: &SubjectId, id: &str) -> Result<ReceiptOut> {
    let found = services.store.receipt(id).await?;
    let stored = found.filter(|r| r.subject.as_ref() == Some(subject)).ok_or(Error::NotFound("receipt"))?;
    let receipt = Rebuilder::new(services).rebuild(stored).await?;
    logged(services, subject, "preferences: download receipt");
    Ok(receipt)
}

/// One of the person's own records with its payload (someone else's is as absent as an unknown one).
pub async fn record_payload(services: &Services, subject: &SubjectId, id: &str) -> Result<StoredRecord> {
    if !valid_record_id(id) {
        return Err(Error::NotFound("record"));
    }
    let found = services.store.record(&services.kek, id).await?;
    let record = found.filter(|r| &r.subject == subject).ok_or(Error::NotFound("record"))?;
    logged(services, subject, "preferences: download record");
    Ok(record)
}

/// The evidence of one of the person's own events (someone else's is as absent as none), as compact JSON.
pub async fn evidence(services: &Services, subject: &SubjectId, id: &str) -> Result<Vec<u8>> {
    let reader = Reader::person("preferences: read evidence");
    let found = crate::evidence::read(services, subject, id, reader).await?;
    serde_json::to_vec_pretty(&found.evidence).map_err(Error::internal)
}

/// The ZIP of one of the person's own access requests (someone else's is as absent as an unknown one), as
/// it is written.
pub async fn export(
    services: &Services,
    subject: &SubjectId,
    request: &str,
    lang: crate::export::Language,
) -> Result<crate::export::Archive> {
    let found = services.store.request(request).await?;
    let request =
        found.filter(|r| r.record.subject.as_ref() == Some(subject)).ok_or(Error::NotFound("request"))?;
    let archive = export_archive(services, &request, Timestamp::now(), lang).await?;
    logged(services, subject, "preferences: download export");
    Ok(archive)
}

/// Loads the page after honouring a Global Privacy Control signal, with `notice` of what was just done.
async fn page(services: &Services, visit: &Visit, notice: Option<Notice>) -> Result<Page> {
    let subject = &visit.subject;
    let gpc = if visit.gpc {
        let signal = Reader::person("preferences: Global Privacy Control signal");
        let recorded = crate::gpc::honour(services, subject, signal).await?;
        Some(if recorded.is_empty() { GpcNote::Honoured } else { GpcNote::Recorded(recorded) })
    } else {
        None
    };
    let catalog = services.catalog();
    let current = services.store.current(subject).await?;
    let choices = choices(services, &catalog, subject, &current);
    let history = newest_history(services, subject).await?;
    let evidence = crate::evidence::held(services, subject, &history).await?;
    let receipts = services.store.recent_receipts(subject, SHOWN).await?;
    let access = services.store.access_log(subject, None, SHOWN).await?;
    let checks = services.store.check_counts(subject).await?;
    let filter = RecordFilter { limit: SHOWN, ..RecordFilter::default() };
    let records = services.store.records(subject, &filter).await?;
    let devices = services.store.subject_devices(subject).await?;
    let mut household_devices = Vec::new();
    for household in services.store.subject_households(subject).await? {
        household_devices.extend(services.store.household_devices(&household).await?);
    }
    let mut requests = subject_requests(services, subject).await?;
    requests.reverse();
    let came_of_age = family::came_of_age(services, &catalog, subject, &current).await?;
    let children = family::children(services, subject).await?;
    Ok(Page {
        catalog,
        choices,
        history,
        evidence,
        receipts,
        access,
        checks,
        gpc,
        notice,
        records,
        devices,
        household_devices,
        requests,
        came_of_age,
        children,
    })
}

/// Where the person stands on every purpose now; `current` is the statements in force.
fn choices(services: &Services, view: &CatalogView, subject: &SubjectId, current: &[Event]) -> Vec<Choice> {
    let now = Timestamp::now();
    let decide = |purpose: &str, channel: Option<&str>| {
        let q = Query::whole_purpose(subject.as_str(), purpose, channel);
        services.engine.check(&q, now).ok()
    };
    let recorded_at: HashMap<u64, (Timestamp, &str)> =
        current.iter().map(|e| (e.seq, (e.effective_at(), e.actor.as_str()))).collect();
    view.catalog
        .document()
        .purposes
        .iter()
        .map(|p| {
            let decision = decide(&p.key, None);
            let channels: Vec<(String, Option<Decision>)> =
                p.channels.iter().map(|ch| (ch.clone(), decide(&p.key, Some(ch)))).collect();
            let allowed = decision.is_some_and(|d| d.allowed)
                || channels.iter().any(|(_, d)| d.is_some_and(|d| d.allowed));
            // The latest event behind the purpose's decisions: when the person's choice began to hold, and
            // whether a consent signal made it.
            let latest = (p.basis == Basis::Consent)
                .then(|| {
                    std::iter::once(decision)
                        .chain(channels.iter().map(|(_, d)| *d))
                        .flatten()
                        .filter_map(|d| d.event_seq)
                        .filter_map(|seq| recorded_at.get(&seq).copied())
                        .max_by_key(|(at, _)| *at)
                })
                .flatten();
            let since = latest.map(|(at, _)| at);
            let signal = latest
                .map(|(_, actor)| actor)
                .filter(|actor| matches!(*actor, ACTOR_TCF | ACTOR_GPP))
                .map(str::to_owned);
            Choice { purpose: p.clone(), decision, channels, allowed, since, signal }
        })
        .collect()
}

/// The subject's latest [`SHOWN`] ledger events, newest first (read backwards: never the whole history).
async fn newest_history(services: &Services, subject: &SubjectId) -> Result<Vec<Event>> {
    Ok(services.store.history_newest(subject, None, SHOWN).await?)
}

/// The purposes a person can choose on: those based on consent.
fn consent_purposes(view: &CatalogView) -> impl Iterator<Item = &Purpose> {
    view.catalog.document().purposes.iter().filter(|p| p.basis == Basis::Consent)
}

/// The changes that take the subject from what holds now to what is wanted, in recording order.
///
/// Purposes are visited parents first, and each is compared with the decision it would have after the
/// changes already planned (`Engine::check_with`), so a change on a parent (`marketing`) is not repeated
/// or contradicted on its children.
fn plan(
    services: &Services,
    view: &CatalogView,
    subject: &SubjectId,
    wanted: &Choices,
    actor: &str,
) -> Vec<Change> {
    let now = Timestamp::now();
    let mut purposes: Vec<_> = consent_purposes(view).collect();
    // Parents first (a stable sort keeps the catalogue's order otherwise).
    purposes.sort_by_key(|p| p.key.matches('.').count());
    let mut planned: Vec<Change> = Vec::new();
    let mut preview: Vec<Event> = Vec::new();
    let allowed = |preview: &[Event], purpose: &str, channel: Option<&str>| {
        let q = Query::whole_purpose(subject.as_str(), purpose, channel);
        services.engine.check_with(&q, preview, now).is_ok_and(|d| d.allowed)
    };
    let add = |planned: &mut Vec<Change>, preview: &mut Vec<Event>, change: Change| {
        // A stand-in for the event the change will become, placed after anything real, for the preview.
        preview.push(Event {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            seq: u64::MAX / 2 + preview.len() as u64,
            pseudonym: String::new(),
            purpose: change.purpose.clone(),
            action: change.action,
            scope: Scope::new(Vec::new(), change.channels.clone(), Vec::new()),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: actor.to_owned(),
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
                add(&mut planned, &mut preview, Change { purpose: p.key.clone(), action, channels: vec![] });
            }
            continue;
        }
        let holding: Vec<&String> =
            p.channels.iter().filter(|ch| allowed(&preview, &p.key, Some(ch))).collect();
        if !ticked {
            if !holding.is_empty() || allowed(&preview, &p.key, None) {
                let change = Change { purpose: p.key.clone(), action: Action::Withdraw, channels: vec![] };
                add(&mut planned, &mut preview, change);
            }
            continue;
        }
        let want = |ch: &String| wanted.channels.contains(&(p.key.clone(), ch.clone()));
        if holding.is_empty() && !p.channels.iter().any(want) {
            // Newly agreed without narrowing it to channels: the purpose as a whole.
            let change = Change { purpose: p.key.clone(), action: Action::Grant, channels: vec![] };
            add(&mut planned, &mut preview, change);
            continue;
        }
        let grant: Vec<String> =
            p.channels.iter().filter(|ch| want(ch) && !holding.contains(ch)).cloned().collect();
        let withdraw: Vec<String> = holding.iter().filter(|ch| !want(ch)).map(|ch| (*ch).clone()).collect();
        if !withdraw.is_empty() {
            let change = Change { purpose: p.key.clone(), action: Action::Withdraw, channels: withdraw };
            add(&mut planned, &mut preview, change);
        }
        if !grant.is_empty() {
            let change = Change { purpose: p.key.clone(), action: Action::Grant, channels: grant };
            add(&mut planned, &mut preview, change);
        }
    }
    planned
}

/// Records `changes` for `subject` as `actor`: one request (and receipt) per notice, in plan order. Returns
/// the receipt ids, how many vault records the withdrawals deleted, and the grants a known child may not
/// give alone (left out; the rest of every request, their refusals, recorded all the same).
async fn record(
    services: &Services,
    view: &CatalogView,
    subject: &SubjectId,
    changes: &[Change],
    versions: &HashMap<String, u32>,
    actor: &str,
) -> Result<(Vec<String>, u64, Vec<Change>)> {
    let mut groups: Vec<(Option<String>, Vec<&Change>)> = Vec::new();
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
    let mut needs_guardian = Vec::new();
    for (notice, list) in groups {
        let notice_version = notice.as_ref().and_then(|n| versions.get(n).copied());
        let changes = list
            .iter()
            .map(|c| ChangeIn {
                purpose: c.purpose.clone(),
                action: match c.action {
                    Action::Grant => ChangeAction::Grant,
                    Action::Object => ChangeAction::Object,
                    _ => ChangeAction::Withdraw,
                },
                categories: Vec::new(),
                channels: c.channels.clone(),
                recipients: Vec::new(),
                expires_at: None,
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
        let (recorded, refused) = record_split(services, subject, body, actor).await?;
        needs_guardian.extend(refused.changes.iter().filter_map(|&i| list.get(i).map(|c| (*c).clone())));
        if let Some(recorded) = recorded {
            receipts.push(recorded.receipt.id);
            records_deleted += recorded.records_deleted;
        }
    }
    Ok((receipts, records_deleted, needs_guardian))
}
