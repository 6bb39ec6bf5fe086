//! The export: every subject's current statements (or, with history, every event) in the line format an
//! import reads, a page at a time, so that exporting and importing into a fresh store gives the same
//! current state and the same answers to checks.
//!
//! Each line's `source_id` is the event's id (`evt_42`), `occurred_at` the time it took effect, and the
//! notice is named by its text (and language), which finds the same notice version in another store
//! whatever its version numbers; the subject's jurisdiction goes with the change that set it (a `locate`
//! event as a `locate` line). Events of erased subjects are left out. An event recorded under an id since
//! linked into another comes out under the survivor's id. With the vault's key ([`Exporter::with_vault`]),
//! and only when the options ask for each: the events' evidence, the subject's age on their first line, and
//! their identifiers on their first line. Over HTTP each subject whose vault data went out is written to
//! their access log ([`Exporter::logged_as`]). Pages are cut by ledger position, so that several are read
//! at once, up to the ledger's length when the export began; then what was recorded meanwhile follows, until
//! a look at the ledger finds nothing new. A statement in force that a newer one replaced during the
//! export has moved to that newer event's position, past where the export began, so it is read there: no
//! statement in force is left out.

use std::collections::{HashMap, HashSet, VecDeque};

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::ExportRow;
use consentry_store::Store;
use consentry_store::vault::Kek;
use tokio::task::JoinHandle;

use super::import::Format;
use super::jsonl::Notice;
use super::line::{IdentifierLine, NoticeRef};
use super::{csv, jsonl};
use crate::error::{Error, Result};
use crate::guardians::age::StatedAge;
use crate::state::Services;

/// Ledger positions read per page, by default: 5,000 events of the history, their statements in force
/// of the current state.
const PAGE: u32 = 5000;

/// A page's events with their subjects (`None` once erased) and survivors.
type Page = Vec<ExportRow>;

/// What a line holds from the vault.
#[derive(Default)]
struct Vault {
    evidence: Option<serde_json::Value>,
    identifiers: Vec<IdentifierLine>,
    age: Option<StatedAge>,
}

impl Vault {
    fn holds_any(&self) -> bool {
        self.evidence.is_some() || self.age.is_some() || !self.identifiers.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub format: Format,
    /// Only what was recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Every event, not only the statements in force.
    pub history: bool,
    /// Each subject's identifiers (their values) on their first line: for the operator (the CLI) or a
    /// caller that may read identifiers. Needs the vault's key.
    pub identifiers: bool,
    /// Each event's evidence (the original receipt, IP address, user agent): for the operator or a caller
    /// that may read each subject's history. Needs the vault's key.
    pub evidence: bool,
    /// Each subject's age (birth date or band) on their first line: for the operator or a caller that may
    /// read each subject's age. Needs the vault's key.
    pub ages: bool,
}

/// Who exports, as each subject's access log names them.
struct Audit {
    services: Services,
    caller: String,
    stated: Option<String>,
}

/// The route an export's reads are logged under.
pub const EXPORT_ROUTE: &str = "GET /v1/export/consents";

/// Pages through the store; each call of [`Exporter::next_page`] gives the next lines (each ending in a
/// line break).
pub struct Exporter {
    store: Arc<dyn Store>,
    options: ExportOptions,
    /// Ledger positions whose reading has begun.
    issued: u64,
    /// The ledger's length when the export began, read with the first page: what is recorded after
    /// that is not exported.
    end: Option<u64>,
    header_done: bool,
    done: bool,
    /// Lines given so far (a CSV header not counted).
    lines: u64,
    /// Notice versions by key and version (`None`: not in the catalogue), read once per export.
    notices: HashMap<String, HashMap<u32, Option<Notice>>>,
    /// The history's latest `recorded_at` so far: a live change takes effect no earlier (a clock that
    /// stepped back before writers clamped), as the current state orders it.
    clock: Timestamp,
    /// The vault's key: evidence, ages and identifiers are exported only with it.
    kek: Option<Kek>,
    /// Where the reads of subjects' vault data are logged, if anywhere.
    audit: Option<Audit>,
    /// Ledger positions read per page.
    page: u32,
    /// The next pages, being read, in order, each with its positions (`after`, `through`).
    reading: VecDeque<(u64, u64, JoinHandle<Result<Page>>)>,
    /// How large a page's text is made at first: the last page's size and some.
    capacity: usize,
}

/// What an export reads for the subjects of one page, and forgets with it: which have their first line
/// on it (pseudonym → `seq`), and those subjects' ages. Nothing is kept from page to page, so the export's
/// memory does not grow with the store.
#[derive(Default)]
struct PageVault {
    firsts: HashMap<String, u64>,
    ages: HashMap<SubjectId, StatedAge>,
}

impl Exporter {
    /// An export of `store`; erased subjects are left out (their link to the ledger is gone).
    pub fn new(store: Arc<dyn Store>, options: ExportOptions) -> Self {
        Self {
            store,
            options,
            issued: 0,
            end: None,
            header_done: false,
            done: false,
            lines: 0,
            notices: HashMap::new(),
            clock: Timestamp::from_micros(0),
            kek: None,
            audit: None,
            page: PAGE,
            reading: VecDeque::new(),
            capacity: 256 * 1024,
        }
    }

    /// Reads `n` ledger positions a page instead of 5,000 (tests: a subject over several pages).
    pub fn paged_by(mut self, n: u32) -> Self {
        self.page = n.max(1);
        self
    }

    /// Logs each subject whose evidence, age or identifiers go out in their access log, as read by
    /// `caller` (an API key's name) for the purpose it `stated`, once per page.
    pub fn logged_as(mut self, services: Services, caller: &str, stated: Option<&str>) -> Self {
        self.audit = Some(Audit { services, caller: caller.to_owned(), stated: stated.map(str::to_owned) });
        self
    }

    /// Exports evidence, ages and identifiers too (each when the options ask), decrypted with `kek`.
    pub fn with_vault(mut self, kek: Kek) -> Self {
        self.kek = Some(kek);
        self
    }

    /// Reads what the page's subjects need when ages or identifiers go out: which have their first line
    /// on this page and (for ages) their ages.
    async fn page_vault(&self, page: &[ExportRow]) -> Result<PageVault> {
        let mut vault = PageVault::default();
        let Some(kek) = &self.kek else { return Ok(vault) };
        if !(self.options.ages || self.options.identifiers) {
            return Ok(vault);
        }
        // A linked id's lines are the survivor's (current state) or left out (history): its first line is
        // no subject's.
        let pseudonyms: HashSet<&str> = page
            .iter()
            .filter(|r| r.subject.is_some() && r.survivor.is_none())
            .map(|r| r.pseudonym.as_str())
            .collect();
        let since = self.options.since.unwrap_or(Timestamp::from_micros(0));
        let pseudonyms = pseudonyms.into_iter().map(str::to_owned).collect();
        let firsts = self.store.first_lines(pseudonyms, since, self.options.history).await?;
        vault.firsts = firsts.into_iter().collect();
        if self.options.ages {
            let first: Vec<SubjectId> = page
                .iter()
                .filter(|r| vault.firsts.get(&r.pseudonym) == Some(&r.seq))
                .filter_map(|r| r.subject.clone())
                .collect();
            for age in self.store.ages_of(kek, first).await? {
                if let Some(stated) = StatedAge::from_stored(&age.plaintext) {
                    vault.ages.insert(age.subject, stated);
                }
            }
        }
        Ok(vault)
    }

    /// Lines given so far, the CSV header not counted.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The next lines as one text, `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<String>> {
        let mut out = Vec::with_capacity(self.capacity);
        if self.options.format == Format::Csv && !self.header_done {
            self.header_done = true;
            out.extend_from_slice(csv::header().as_bytes());
            out.push(b'\n');
        }
        if self.done {
            return Ok((!out.is_empty()).then(|| text(out)));
        }
        let mut end = match self.end {
            Some(end) => end,
            None => *self.end.insert(self.store.ledger_head().await?.events),
        };
        let (before, through, page) = loop {
            self.read_ahead(end);
            let Some((before, through, reading)) = self.reading.pop_front() else {
                // Read up to `end`: what was recorded since follows (a replaced statement in force moved
                // there), until the ledger has nothing new.
                let head = self.store.ledger_head().await?.events;
                if head > end {
                    end = *self.end.insert(head);
                    continue;
                }
                self.done = true;
                return Ok((!out.is_empty()).then(|| text(out)));
            };
            let page = reading.await.map_err(Error::internal)??;
            // A stretch of the ledger with nothing in force is no page.
            if !page.is_empty() {
                break (before, through, page);
            }
        };
        // The pages after it are read while this one is written.
        self.read_ahead(end);
        let mut vault = self.page_vault(&page).await?;
        let mut evidence: HashMap<u64, Vec<u8>> = match self.kek.as_ref().filter(|_| self.options.evidence) {
            Some(kek) => self.store.evidence_between(kek, before, through).await?.into_iter().collect(),
            None => HashMap::new(),
        };
        self.learn_notices(&page).await?;
        // Subjects whose vault data this page holds, each logged once.
        let mut read: HashSet<SubjectId> = HashSet::new();
        for event in &page {
            // In history, pages come in ledger order: the running maximum of recorded times (the current
            // state's reads already give a live change its effective time).
            self.clock = self.clock.max(event.recorded_at);
            let effective = match event.occurred_at {
                Some(at) => at,
                None if self.options.history => self.clock,
                None => event.recorded_at,
            };
            let Some(subject) = &event.subject else { continue };
            if self.options.since.is_some_and(|t| event.recorded_at < t) {
                continue;
            }
            // A linked id's own events (all from before its link) stay out of the history: the link carried
            // its choices in force to the survivor as the survivor's own events, and a choice it left behind
            // (an older grant) must not count for the survivor after an import.
            let alias = event.survivor.as_ref();
            if self.options.history && alias.is_some() {
                continue;
            }
            // The person stays one person: a linked id's line is the survivor's.
            let subject = alias.unwrap_or(subject);
            let mut extra = Vault::default();
            if let Some(kek) = &self.kek {
                let first = vault.firsts.get(&event.pseudonym) == Some(&event.seq);
                let age = if first { vault.ages.remove(subject) } else { None };
                extra = self.vault_fields(kek, subject, evidence.remove(&event.seq), first, age).await?;
                if extra.holds_any() && self.audit.is_some() {
                    read.insert(subject.clone());
                }
            }
            let notice = match (&event.notice, event.notice_version) {
                (Some(key), Some(version)) => {
                    self.notices.get(key.as_str()).and_then(|v| v.get(&version)).and_then(Option::as_ref)
                }
                _ => None,
            };
            let fields = jsonl::Fields {
                seq: event.seq,
                subject: subject.as_str(),
                purpose: &event.purpose,
                action: event.action.as_str(),
                categories: &event.scope.categories,
                channels: &event.scope.channels,
                recipients: &event.scope.recipients,
                occurred_at: effective,
                jurisdiction: event.jurisdiction.as_deref(),
                expires_at: event.expires_at,
                notice,
                collection_point: event.collection_point.as_deref(),
                evidence: extra.evidence.as_ref(),
                identifiers: &extra.identifiers,
                age: extra.age.as_ref(),
            };
            // Straight into the page, no text per line.
            match self.options.format {
                Format::JsonLines => jsonl::write(&mut out, &fields),
                Format::Csv => csv::write_row(&mut out, &fields),
            }
            out.push(b'\n');
            self.lines += 1;
        }
        if let Some(audit) = &self.audit {
            for subject in &read {
                audit.services.access.read(subject, &audit.caller, EXPORT_ROUTE, audit.stated.as_deref());
            }
        }
        // The next page is about as long: its buffer is made that large at once (no copies as it grows).
        self.capacity = self.capacity.max(out.len() + out.len() / 8);
        Ok(Some(text(out)))
    }

    /// Begins reading the pages up to `end` that are next, as many at once as the store reads well
    /// ([`Store::export_reads`]; their pages held besides the one being written): the reads are most of
    /// an export's time.
    fn read_ahead(&mut self, end: u64) {
        while self.reading.len() < self.store.export_reads().max(1) && self.issued < end {
            let (after, through) = (self.issued, end.min(self.issued + u64::from(self.page)));
            let read = read_page(Arc::clone(&self.store), self.options.history, after, through);
            self.reading.push_back((after, through, tokio::spawn(read)));
            self.issued = through;
        }
    }

    /// Reads the notice versions the page names that no page before it named, each once per export.
    async fn learn_notices(&mut self, page: &[ExportRow]) -> Result<()> {
        for e in page {
            let (Some(key), Some(version)) = (&e.notice, e.notice_version) else { continue };
            if self.notices.get(key.as_str()).is_some_and(|v| v.contains_key(&version)) {
                continue;
            }
            let found = self.store.notice_version(key, version).await?.map(|n| {
                Notice::new(NoticeRef {
                    key: n.key,
                    version: None,
                    text: Some(n.text),
                    language: Some(n.language),
                })
            });
            self.notices.entry(key.clone()).or_default().insert(version, found);
        }
        Ok(())
    }

    /// The event's evidence, and on the subject's `first` line their `age` and their identifiers (each
    /// when asked for).
    async fn vault_fields(
        &self,
        kek: &Kek,
        subject: &SubjectId,
        evidence: Option<Vec<u8>>,
        first: bool,
        age: Option<StatedAge>,
    ) -> Result<Vault> {
        let mut vault = Vault { age, ..Vault::default() };
        if let Some(bytes) = evidence {
            vault.evidence = Some(serde_json::from_slice(&bytes).map_err(Error::internal)?);
        }
        if self.options.identifiers && first {
            let held = self.store.identifiers(kek, subject).await?;
            vault.identifiers =
                held.into_iter().map(|i| IdentifierLine { kind: i.kind, value: i.value }).collect();
        }
        Ok(vault)
    }
}

impl Drop for Exporter {
    /// An export stopped early (a client gone) does not read on.
    fn drop(&mut self) {
        for (_, _, reading) in self.reading.drain(..) {
            reading.abort();
        }
    }
}

/// The ledger's positions `after < seq <= through`: every event with `history`, else the statements in
/// force (each with its subject, `None` once erased).
async fn read_page(store: Arc<dyn Store>, history: bool, after: u64, through: u64) -> Result<Page> {
    Ok(store.export_page(after, through, history).await?)
}

/// A page as text: JSON and CSV written from `String`s are UTF-8 (a lossy conversion never replaces
/// anything, and copies nothing when there is nothing to replace).
fn text(page: Vec<u8>) -> String {
    match String::from_utf8(page) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
