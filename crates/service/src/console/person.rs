//! A person's page in the console: found by subject id or by an identifier (its blind index), it shows
//! where they stand on every purpose now, their ledger history (newest first, a page at a time), their
//! newest receipts (each verified on its own page: rebuilt from the ledger, its events proven against the
//! transparency log's signed checkpoint and its signature checked), their paired devices, what the vault
//! holds of them (metadata only, never a payload), their requests and who read their data.
//!
//! Opening a person is itself a read of their data: it goes into their access log under the key's name
//! with the purpose `console`, as do a receipt's verification and a link minted for them. Opening a vault
//! record's content is an action of its own ([`open_record`]): `console:write`, with a purpose the officer
//! states, which the access log keeps. A `console:write`
//! session may mint a preference-centre link for the person (shown once; only its `jti` is kept, when it
//! is spent). An erased person shows only that they were erased; an id nobody holds is not found.

use std::sync::Arc;

use consentry_client::verify::{CheckpointBody, ProvenError, verify_proven_receipt, verify_receipt};
use consentry_core::catalog::Purpose;
use consentry_core::proven::{Leaf, LeafProof, ProvenReceipt};
use consentry_core::{Decision, Event, Query, SubjectId, Timestamp};
use consentry_store::vault::{RecordFilter, RecordMeta, StoredRecord};
use consentry_store::{AccessRecord, DeviceRecord, StoredReceipt};

use super::ConsoleCaller;
use super::requests::PURPOSE;
use crate::access::Reader;
use crate::auth::{SUBJECT_TOKEN_TTL_MAX, SUBJECT_TOKEN_TTL_MIN, TokenUse, mint_subject_token};
use crate::error::{Error, Result};
use crate::receipts::{Rebuilder, ReceiptProof};
use crate::records::valid_record_id;
use crate::requests::{RequestList, RequestQuery, filtered};
use crate::state::{CatalogView, Services};

/// Entries per page of a person's history, access log and requests; most receipts, devices and vault
/// records the page lists (the newest).
pub const PER_PAGE: u32 = 25;

/// Which page of each paged list: the `next` of the page before.
#[derive(Debug, Default, Clone)]
pub struct Pages {
    /// History events before this sequence number.
    pub history_before: Option<u64>,
    /// Access-log entries older than this id.
    pub access_before: Option<i64>,
    /// Requests after this id.
    pub requests_after: Option<String>,
}

/// What the console knows of a subject id.
#[derive(Debug)]
pub enum Found {
    Person(Box<Person>),
    /// Erased (GDPR Art. 17): nothing of them is left to show.
    Erased,
    /// Nobody by that id: no ledger, no devices, no requests.
    Unknown,
}

/// One purpose of the catalogue and where the person stands on it.
#[derive(Debug)]
pub struct Standing {
    pub purpose: Purpose,
    /// The purpose as a whole (none when the engine cannot answer).
    pub decision: Option<Decision>,
    /// The statements in force for it: the latest event per scope, oldest first.
    pub statements: Vec<Event>,
}

/// Everything a person's page shows.
#[derive(Debug)]
pub struct Person {
    pub subject: SubjectId,
    /// The catalogue the standings were read against (names).
    pub catalog: Arc<CatalogView>,
    /// Every purpose, in the catalogue's order.
    pub standings: Vec<Standing>,
    /// Newest first.
    pub history: Vec<Event>,
    /// `history_before` of the next (older) page.
    pub history_next: Option<u64>,
    /// The newest [`PER_PAGE`], newest first.
    pub receipts: Vec<StoredReceipt>,
    pub devices: Vec<DeviceRecord>,
    /// The newest [`PER_PAGE`] records' metadata, newest first.
    pub records: Vec<RecordMeta>,
    /// Oldest first, a page at a time.
    pub requests: RequestList,
    /// Newest first.
    pub access: Vec<AccessRecord>,
    /// `access_before` of the next (older) page.
    pub access_next: Option<i64>,
    /// Checks of their choices per purpose: (purpose, how many, the last).
    pub checks: Vec<(String, u64, Timestamp)>,
}

/// The subject id of the person an identifier names (`type:value`, e.g. `email:ana@example.com`), through
/// its blind index; `None` when nobody holds it. A malformed identifier is a validation error.
pub async fn find(
    services: &Services,
    caller: &ConsoleCaller,
    identifier: &str,
) -> Result<Option<SubjectId>> {
    let found = crate::identifiers::lookup(services, identifier.trim()).await?;
    let Some(subject) = found.subjects.into_iter().next() else { return Ok(None) };
    let subject =
        SubjectId::new(subject.subject).map_err(|_| Error::internal("a stored subject id is invalid"))?;
    Reader::service(&caller.caller, "console: find a person by identifier", Some(PURPOSE))
        .log(&services.access, &subject);
    Ok(Some(subject))
}

/// Whether anything of `subject` is kept: a ledger (its pseudonym key), a device or a request.
async fn known(services: &Services, subject: &SubjectId) -> Result<bool> {
    if services.store.pseudonym_key(subject).await?.is_some()
        || !services.store.subject_devices(subject).await?.is_empty()
    {
        return Ok(true);
    }
    let query = RequestQuery { limit: Some(1), ..RequestQuery::default() };
    Ok(!filtered(services, Some(subject.clone()), query).await?.requests.is_empty())
}

/// What `subject` is to the console: erased, unknown, or a person to show.
async fn lookup(services: &Services, subject: &str) -> Result<Result<SubjectId, Found>> {
    let Ok(subject) = SubjectId::new(subject) else { return Ok(Err(Found::Unknown)) };
    if services.erasures.is_erased(subject.as_str()) {
        return Ok(Err(Found::Erased));
    }
    if !known(services, &subject).await? {
        return Ok(Err(Found::Unknown));
    }
    Ok(Ok(subject))
}

/// The page of `subject`, each list at the page `pages` asks for; opening it is in their access log.
pub async fn person(
    services: &Services,
    caller: &ConsoleCaller,
    subject: &str,
    pages: Pages,
) -> Result<Found> {
    let subject = match lookup(services, subject).await? {
        Ok(s) => s,
        Err(found) => return Ok(found),
    };
    let store = &services.store;
    let catalog = services.catalog();
    let current = store.current(&subject).await?;
    let standings = standings(services, &catalog, &subject, current);
    let history = store.history_newest(&subject, pages.history_before, PER_PAGE).await?;
    let history_next = (history.len() == PER_PAGE as usize).then(|| history.last().map(|e| e.seq)).flatten();
    let receipts = store.recent_receipts(&subject, PER_PAGE).await?;
    let mut devices = store.subject_devices(&subject).await?;
    devices.reverse();
    devices.truncate(PER_PAGE as usize);
    let records =
        store.records(&subject, &RecordFilter { limit: PER_PAGE, ..RecordFilter::default() }).await?;
    let query =
        RequestQuery { after: pages.requests_after, limit: Some(PER_PAGE), ..RequestQuery::default() };
    let requests = filtered(services, Some(subject.clone()), query).await?;
    let access = store.access_log(&subject, pages.access_before, PER_PAGE).await?;
    let access_next = (access.len() == PER_PAGE as usize).then(|| access.last().map(|a| a.id)).flatten();
    let checks = store.check_counts(&subject).await?;
    Reader::service(&caller.caller, "console: person", Some(PURPOSE)).log(&services.access, &subject);
    let person = Person {
        subject,
        catalog,
        standings,
        history,
        history_next,
        receipts,
        devices,
        records,
        requests,
        access,
        access_next,
        checks,
    };
    Ok(Found::Person(Box::new(person)))
}

/// Where `subject` stands on every purpose of `view`, with the statements in force (`current`).
fn standings(
    services: &Services,
    view: &CatalogView,
    subject: &SubjectId,
    current: Vec<Event>,
) -> Vec<Standing> {
    let now = Timestamp::now();
    let mut standings: Vec<Standing> = view
        .catalog
        .document()
        .purposes
        .iter()
        .map(|p| {
            let q = Query {
                subject: subject.as_str(),
                purpose: &p.key,
                category: None,
                channel: None,
                recipient: None,
                jurisdiction: None,
            };
            Standing {
                purpose: p.clone(),
                decision: services.engine.check(&q, now).ok(),
                statements: Vec::new(),
            }
        })
        .collect();
    for event in current {
        if let Some(s) = standings.iter_mut().find(|s| s.purpose.key == event.purpose) {
            s.statements.push(event);
        }
    }
    standings
}

/// Why a receipt's proof did not hold, for the page to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofFailure {
    /// The checkpoint's signature or form.
    Checkpoint,
    /// The receipt or a proof is malformed.
    Malformed,
    /// An inclusion proof does not lead to the checkpoint's root.
    NotIncluded,
    /// A leaf is not the event the receipt names.
    WrongEvent,
    /// The events are not about the receipt's subject.
    WrongSubject,
}

impl From<&ProvenError> for ProofFailure {
    fn from(e: &ProvenError) -> Self {
        match e {
            ProvenError::Checkpoint(_) => Self::Checkpoint,
            ProvenError::Malformed(_) => Self::Malformed,
            ProvenError::NotIncluded(_) => Self::NotIncluded,
            ProvenError::WrongEvent => Self::WrongEvent,
            ProvenError::WrongSubject => Self::WrongSubject,
        }
    }
}

/// A receipt rebuilt from the ledger and checked as its holder would check it.
#[derive(Debug)]
pub struct Verified {
    pub id: String,
    pub subject: SubjectId,
    pub created_at: Timestamp,
    /// The events it records: (sequence number, purpose, action).
    pub events: Vec<(u64, String, String)>,
    /// The checkpoint the events were proven against, or why the proof did not hold.
    pub proof: std::result::Result<CheckpointBody, ProofFailure>,
    /// The key id its JWS is signed with, when the signature verifies against the published JWKS.
    pub signature: Option<String>,
}

impl Verified {
    /// Both the proof of inclusion and the signature hold.
    pub fn holds(&self) -> bool {
        self.proof.is_ok() && self.signature.is_some()
    }
}

/// Receipt `id` of `subject`, rebuilt from the ledger: its events' inclusion proven against the newest
/// signed checkpoint (with the log's verifier keys) and its JWS checked against the JWKS. Another person's
/// receipt is as absent as an unknown one. The check is in the person's access log.
pub async fn verify(
    services: &Services,
    caller: &ConsoleCaller,
    subject: &str,
    id: &str,
) -> Result<Verified> {
    let subject = lookup(services, subject).await?.map_err(|_| Error::NotFound("receipt"))?;
    let found = services.store.receipt(id).await?;
    let stored = found.filter(|r| r.subject.as_ref() == Some(&subject)).ok_or(Error::NotFound("receipt"))?;
    let mut rebuilder = Rebuilder::new(services);
    let signed = rebuilder.rebuild(stored.clone()).await?;
    let proven = proven(rebuilder.rebuild_proven(stored).await?);
    let origin = services.tlog.origin();
    let verifiers = crate::tlog::verifiers(origin, &services.signing);
    let proof = verify_proven_receipt(&proven, origin, &verifiers).map(|(_, c)| c).map_err(|e| {
        tracing::warn!(error = %e, "console: a receipt rebuilt from the ledger does not prove itself");
        ProofFailure::from(&e)
    });
    let signature = verify_receipt(&signed.jws, services.signing.jwks()).ok().and_then(|_| {
        let header = signed.jws.split('.').next()?;
        let header =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).ok()?;
        let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
        header["kid"].as_str().map(str::to_owned)
    });
    let events = proven
        .payload
        .consentry
        .events
        .iter()
        .map(|e| (e.seq, e.purpose_id.clone(), e.event_type.clone()))
        .collect();
    Reader::service(&caller.caller, "console: verify receipt", Some(PURPOSE)).log(&services.access, &subject);
    let created_at = Timestamp::parse(&signed.created_at).unwrap_or_else(Timestamp::now);
    Ok(Verified { id: proven.id, subject, created_at, events, proof, signature })
}

/// The service's proven receipt in the form the verifier reads.
fn proven(p: ReceiptProof) -> ProvenReceipt {
    ProvenReceipt {
        id: p.id,
        payload: p.payload,
        leaf: Leaf { index: p.leaf.index, data: p.leaf.data },
        inclusion_proof: p.inclusion_proof,
        other_leaves: p
            .other_leaves
            .into_iter()
            .map(|l| LeafProof { index: l.index, data: l.data, inclusion_proof: l.inclusion_proof })
            .collect(),
        checkpoint: p.checkpoint,
        subject_key: p.subject_key,
    }
}

/// A preference-centre link minted for a person: shown once.
pub struct Link {
    pub url: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Mints a preference-centre link for `subject`, valid `ttl` seconds (as `POST
/// /v1/subjects/{subject}/tokens` would, without its API token: the link opens the preference centre once
/// and is no API credential). Needs `console:write`; in the person's access log. An erased or unknown
/// person gets none.
pub async fn mint_link(services: &Services, caller: &ConsoleCaller, subject: &str, ttl: u64) -> Result<Link> {
    caller.require_write()?;
    if !(SUBJECT_TOKEN_TTL_MIN..=SUBJECT_TOKEN_TTL_MAX).contains(&ttl) {
        return Err(Error::validation(
            "ttl",
            format!("must be between {SUBJECT_TOKEN_TTL_MIN} and {SUBJECT_TOKEN_TTL_MAX} seconds"),
        ));
    }
    let subject = match lookup(services, subject).await? {
        Ok(s) => s,
        Err(Found::Erased) => return Err(Error::SubjectErased),
        Err(_) => return Err(Error::NotFound("subject")),
    };
    let now = Timestamp::now();
    let expires = now.plus_seconds(i64::try_from(ttl).unwrap_or(i64::MAX));
    let link = mint_subject_token(services, &subject, TokenUse::Link, expires, None, now).await?;
    Reader::service(&caller.caller, "console: mint preference-centre link", Some(PURPOSE))
        .log(&services.access, &subject);
    tracing::info!(key_id = %caller.key_id, "console: minted a preference-centre link");
    let url = format!("{}/preferences?token={}", services.config.public_url(), link.token);
    Ok(Link { url, expires_at: link.expires_at })
}

/// The metadata of `subject`'s vault record `id` (another person's is as absent as an unknown one). No
/// content is read, so nothing is logged: the page only asks why it should be opened.
pub async fn record(services: &Services, subject: &str, id: &str) -> Result<RecordMeta> {
    let subject = lookup(services, subject).await?.map_err(|_| Error::NotFound("record"))?;
    if !valid_record_id(id) {
        return Err(Error::NotFound("record"));
    }
    let found = services.store.record_meta(id).await?;
    found.filter(|(owner, _)| *owner == subject).map(|(_, meta)| meta).ok_or(Error::NotFound("record"))
}

/// Most bytes of a stated purpose (what the access log keeps).
const MAX_PURPOSE: usize = 128;

/// Opens `subject`'s vault record `id` with its content, for the `purpose` the officer states (1 to 128
/// bytes, no control character): needs `console:write`, and the opening is in the person's access log
/// under the key's name with that purpose.
pub async fn open_record(
    services: &Services,
    caller: &ConsoleCaller,
    subject: &str,
    id: &str,
    purpose: &str,
) -> Result<StoredRecord> {
    caller.require_write()?;
    let purpose = purpose.trim();
    if purpose.is_empty() || purpose.len() > MAX_PURPOSE || purpose.chars().any(char::is_control) {
        return Err(Error::validation("purpose", "state why, in 1 to 128 bytes"));
    }
    let subject = lookup(services, subject).await?.map_err(|_| Error::NotFound("record"))?;
    if !valid_record_id(id) {
        return Err(Error::NotFound("record"));
    }
    let found = services.store.record(&services.kek, id).await?;
    let record = found.filter(|r| r.subject == subject).ok_or(Error::NotFound("record"))?;
    Reader::service(&caller.caller, "console: open record", Some(purpose)).log(&services.access, &subject);
    tracing::info!(key_id = %caller.key_id, "console: opened a vault record");
    Ok(record)
}
