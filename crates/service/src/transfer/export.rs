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
//! their access log ([`Exporter::logged_as`]).

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use consentry_core::{Event, SubjectId, Timestamp};
use consentry_store::vault::Kek;
use consentry_store::{NoticeVersion, Store};

use super::csv;
use super::import::Format;
use super::line::{ChangeLine, IdentifierLine, NoticeRef};
use crate::error::{Error, Result};
use crate::guardians::age::StatedAge;
use crate::state::Services;

/// Statements or events read per page, by default.
const PAGE: u32 = 5000;

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
    after: u64,
    header_done: bool,
    done: bool,
    /// Lines given so far (a CSV header not counted).
    lines: u64,
    notices: HashMap<(String, u32), Option<NoticeVersion>>,
    /// The history's latest `recorded_at` so far: a live change takes effect no earlier (a clock that
    /// stepped back before writers clamped), as the current state orders it.
    clock: Timestamp,
    /// The vault's key: evidence, ages and identifiers are exported only with it.
    kek: Option<Kek>,
    /// Where the reads of subjects' vault data are logged, if anywhere.
    audit: Option<Audit>,
    /// Statements or events read per page.
    page: u32,
}

/// What an export reads for the subjects of one page, and forgets with it: which of them are aliases
/// (old id → survivor), which have their first line on it (pseudonym → `seq`), and those subjects' ages.
/// Nothing is kept from page to page, so the export's memory does not grow with the store.
#[derive(Default)]
struct PageVault {
    aliases: HashMap<String, SubjectId>,
    firsts: HashMap<String, u64>,
    ages: HashMap<SubjectId, StatedAge>,
}

impl Exporter {
    /// An export of `store`; erased subjects are left out (their link to the ledger is gone).
    pub fn new(store: Arc<dyn Store>, options: ExportOptions) -> Self {
        Self {
            store,
            options,
            after: 0,
            header_done: false,
            done: false,
            lines: 0,
            notices: HashMap::new(),
            clock: Timestamp::from_micros(0),
            kek: None,
            audit: None,
            page: PAGE,
        }
    }

    /// Reads `n` statements or events a page instead of 5,000 (tests: a subject over several pages).
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

    /// Reads what the page's subjects need: which are aliases, and, when ages or identifiers go out, which
    /// have their first line on this page and (for ages) their ages.
    async fn page_vault(&self, page: &[(Option<SubjectId>, Event)]) -> Result<PageVault> {
        let subjects: HashSet<&SubjectId> = page.iter().filter_map(|(s, _)| s.as_ref()).collect();
        let mut vault = PageVault::default();
        let among = subjects.iter().map(|s| (*s).clone()).collect();
        for (from, survivor) in self.store.survivors_among(among).await? {
            vault.aliases.insert(from.as_str().to_owned(), survivor);
        }
        let Some(kek) = &self.kek else { return Ok(vault) };
        if !(self.options.ages || self.options.identifiers) {
            return Ok(vault);
        }
        // A linked id's lines are the survivor's (current state) or left out (history): its first line is
        // no subject's.
        let pseudonyms: HashSet<&str> = page
            .iter()
            .filter(|(s, _)| s.as_ref().is_some_and(|s| !vault.aliases.contains_key(s.as_str())))
            .map(|(_, e)| e.pseudonym.as_str())
            .collect();
        let since = self.options.since.unwrap_or(Timestamp::from_micros(0));
        let pseudonyms = pseudonyms.into_iter().map(str::to_owned).collect();
        let firsts = self.store.first_lines(pseudonyms, since, self.options.history).await?;
        vault.firsts = firsts.into_iter().collect();
        if self.options.ages {
            let first: Vec<SubjectId> = page
                .iter()
                .filter(|(_, e)| vault.firsts.get(&e.pseudonym) == Some(&e.seq))
                .filter_map(|(s, _)| s.clone())
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
        let mut out = Vec::with_capacity(256 * 1024);
        if self.options.format == Format::Csv && !self.header_done {
            self.header_done = true;
            out.extend_from_slice(csv::header().as_bytes());
            out.push(b'\n');
        }
        if self.done {
            return Ok((!out.is_empty()).then(|| text(out)));
        }
        let page: Vec<(Option<SubjectId>, Event)> = if self.options.history {
            self.store.subject_events_page(self.after, self.page).await?
        } else {
            let page = self.store.current_page(self.after, self.page).await?;
            page.into_iter().map(|(s, e)| (Some(s), e)).collect()
        };
        let Some((_, last)) = page.last() else {
            self.done = true;
            return Ok((!out.is_empty()).then(|| text(out)));
        };
        let before = self.after;
        self.after = last.seq;
        let mut vault = self.page_vault(&page).await?;
        let mut evidence: HashMap<u64, Vec<u8>> = match self.kek.as_ref().filter(|_| self.options.evidence) {
            Some(kek) => self.store.evidence_between(kek, before, self.after).await?.into_iter().collect(),
            None => HashMap::new(),
        };
        // Subjects whose vault data this page holds, each logged once.
        let mut read: HashSet<SubjectId> = HashSet::new();
        for (subject, event) in page {
            // In history, pages come in ledger order: the running maximum of recorded times (the current
            // state's reads already give a live change its effective time).
            self.clock = self.clock.max(event.recorded_at);
            let effective = if self.options.history && event.occurred_at.is_none() {
                self.clock
            } else {
                event.effective_at()
            };
            let Some(subject) = subject else { continue };
            if self.options.since.is_some_and(|t| event.recorded_at < t) {
                continue;
            }
            // A linked id's own events (all from before its link) stay out of the history: the link carried
            // its choices in force to the survivor as the survivor's own events, and a choice it left behind
            // (an older grant) must not count for the survivor after an import.
            let alias = vault.aliases.get(subject.as_str()).cloned();
            if self.options.history && alias.is_some() {
                continue;
            }
            // The person stays one person: a linked id's line is the survivor's.
            let subject = alias.unwrap_or(subject);
            let held = evidence.remove(&event.seq);
            let first = vault.firsts.get(&event.pseudonym) == Some(&event.seq);
            let age = if first { vault.ages.remove(&subject) } else { None };
            let mut line = self.line(&subject, event, effective).await?;
            if self.add_vault(&mut line, &subject, held, first, age).await? && self.audit.is_some() {
                read.insert(subject.clone());
            }
            match self.options.format {
                Format::JsonLines => {
                    // Straight into the page, no text per line. A struct of strings and lists always
                    // serialises into memory.
                    let _ = serde_json::to_writer(&mut out, &line);
                }
                Format::Csv => out.extend_from_slice(csv::row(&line).as_bytes()),
            }
            out.push(b'\n');
            self.lines += 1;
        }
        if let Some(audit) = &self.audit {
            for subject in &read {
                audit.services.access.read(subject, &audit.caller, EXPORT_ROUTE, audit.stated.as_deref());
            }
        }
        Ok(Some(text(out)))
    }

    /// Adds the event's evidence, and on the subject's `first` line their `age` and their identifiers
    /// (each when asked for); whether the line holds any of them.
    async fn add_vault(
        &mut self,
        line: &mut ChangeLine,
        subject: &SubjectId,
        evidence: Option<Vec<u8>>,
        first: bool,
        age: Option<StatedAge>,
    ) -> Result<bool> {
        let Some(kek) = &self.kek else { return Ok(false) };
        if let Some(bytes) = evidence {
            line.evidence = Some(serde_json::from_slice(&bytes).map_err(Error::internal)?);
        }
        line.age = age;
        if self.options.identifiers && first {
            let held = self.store.identifiers(kek, subject).await?;
            line.identifiers =
                held.into_iter().map(|i| IdentifierLine { kind: i.kind, value: i.value }).collect();
        }
        Ok(line.evidence.is_some() || line.age.is_some() || !line.identifiers.is_empty())
    }

    async fn line(&mut self, subject: &SubjectId, e: Event, effective: Timestamp) -> Result<ChangeLine> {
        let notice = match (&e.notice, e.notice_version) {
            (Some(key), Some(version)) => {
                let cache = (key.clone(), version);
                if !self.notices.contains_key(&cache) {
                    let found = self.store.notice_version(key, version).await?;
                    self.notices.insert(cache.clone(), found);
                }
                self.notices[&cache].as_ref().map(|n| NoticeRef {
                    key: n.key.clone(),
                    version: None,
                    text: Some(n.text.clone()),
                    language: Some(n.language.clone()),
                })
            }
            _ => None,
        };
        Ok(ChangeLine {
            source_id: e.id(),
            subject: subject.as_str().to_owned(),
            occurred_at: effective.to_string(),
            jurisdiction: e.jurisdiction,
            purpose: e.purpose,
            action: e.action.as_str().to_owned(),
            categories: e.scope.categories,
            channels: e.scope.channels,
            recipients: e.scope.recipients,
            expires_at: e.expires_at.map(|t| t.to_string()),
            notice,
            collection_point: e.collection_point,
            evidence: None,
            identifiers: Vec::new(),
            age: None,
        })
    }
}

/// A page as text: JSON and CSV written from `String`s are UTF-8 (a lossy conversion never replaces
/// anything, and copies nothing when there is nothing to replace).
fn text(page: Vec<u8>) -> String {
    match String::from_utf8(page) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
