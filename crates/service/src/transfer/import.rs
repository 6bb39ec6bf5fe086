//! The import: lines in, events out, in batches through the store's group commit.
//!
//! Each line is read, parsed and checked on its own ([`line`](super::line)); bad lines are counted and
//! reported with their number and reason, and never stop the run. Good ones gather into a batch of
//! [`BATCH`] changes, which is written as one append per subject (the writer commits many subjects' appends
//! as one group): a subject's changes in the batch in `occurred_at` order. While the store writes one
//! batch the next is read and checked (never more than these two are held), and a batch's placed events
//! reach the engine before the next batch is written. A store failure stops the run;
//! what was written stays, and running the same input again resumes where it stopped, since a change
//! already placed for `(source, source_id)` is never placed again.
//!
//! In strict mode the whole input is checked first and nothing is written unless every line is good.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use consentry_core::catalog::Catalog;
use consentry_core::ledger::event_id;
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use consentry_store::{ImportKeys, NoticeVersion, Sealed, SealedReceipt, Sealer, StoreError, Wants};
use futures_util::future::{join, join_all};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncBufRead;
use utoipa::ToSchema;

use super::csv::CsvLines;
use super::evidence;
use super::line::{self, Checked, LineError, NoticeRef, Reason};
use super::reader::{Line, LineReader};
use crate::error::{Error, Result};
use crate::events::{self, CloudEvent, IMPORTED_TYPE};
use crate::identifiers::{self, IdentifierIn};
use crate::records;
use crate::state::Services;

/// Changes written per batch, unless [`ImportOptions::batch`] says otherwise. A batch is one group commit
/// of the store: the larger, the fewer times each page of the indexes keyed by pseudonym (which an import
/// touches all over) is written out; two batches are held at once, which bounds the memory (at 1,000,000
/// changes the import's peak RSS, store caches and engine included, stays under 300 MB with this size).
pub const BATCH: usize = 8_192;

/// Largest body a strict import over HTTP takes (1 GiB): it is copied to a temporary file to be checked
/// whole before anything is written, so it is bounded (a larger one is refused `payload_too_large`, and
/// is imported without `strict` or in parts). Without `strict` a body is streamed, and any size is read.
pub const MAX_SPOOL: u64 = 1 << 30;

/// Longest source name.
const MAX_SOURCE: usize = 64;

/// How the input is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    JsonLines,
    /// A header row naming the fields ([`csv`](super::csv)), then one change per row.
    Csv,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The platform the changes come from: part of every change's identity, and the actor
    /// `import:<source>`. Letters, digits, `.`, `_` and `-`.
    pub source: String,
    pub format: Format,
    /// All or nothing: check every line first, write nothing if one is bad.
    pub strict: bool,
    /// At most this many line errors are kept in the report (all are counted).
    pub max_errors: usize,
    /// Whether lines may attach identifiers to subjects. Over HTTP only for a caller that also holds
    /// `identifiers:write`: an identifier decides who may later prove to be the subject (verified
    /// requesters), so `import:write` alone must not hand one out.
    pub identifiers: bool,
    /// Whether lines may state a subject's age. Over HTTP only for a caller that also holds
    /// `consent:write`, as `PUT /v1/subjects/{subject}/age` needs: an age decides whether a child's own
    /// grants count, so `import:write` alone must not end (or start) a child's protection.
    pub ages: bool,
    /// Largest streamed input strict mode spools ([`MAX_SPOOL`] unless a test sets less).
    pub max_spool: u64,
    /// Changes written per batch ([`BATCH`] unless a test sets less): what a stopped run has committed
    /// is whole batches.
    pub batch: usize,
}

impl ImportOptions {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            format: Format::JsonLines,
            strict: false,
            max_errors: 1000,
            identifiers: true,
            ages: true,
            max_spool: MAX_SPOOL,
            batch: BATCH,
        }
    }

    /// Checks the source name.
    pub fn validate(&self) -> Result<()> {
        let ok = !self.source.is_empty()
            && self.source.len() <= MAX_SOURCE
            && self.source.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok { Ok(()) } else { Err(Error::validation("source", "1 to 64 letters, digits, '.', '_' or '-'")) }
    }

    fn actor(&self) -> String {
        format!("import:{}", self.source)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Lines read (an empty line counts, and is skipped).
    pub lines: u64,
    /// Changes written to the ledger by this run.
    pub imported: u64,
    /// Good changes already imported before (the same `source` and `source_id`): not written again.
    pub skipped: u64,
    /// Lines refused.
    pub failed: u64,
    /// `true` when strict mode found a bad line and wrote nothing.
    pub aborted: bool,
    /// The refused lines (the first `max_errors`), by line number.
    pub errors: Vec<LineError>,
}

/// Told how a run goes: after each batch, and of each refused line as it is found (the CLI writes them
/// to its error file at once, so none is held).
pub trait Observer: Send {
    fn progress(&mut self, _progress: Progress) {}
    fn refused(&mut self, _error: &LineError) {}
}

/// An observer that wants nothing.
impl Observer for () {}

/// How far a run is, after each batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub lines: u64,
    pub bytes: u64,
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// Reads lines of JSON or CSV rows as numbered lines of JSON.
enum Lines<R> {
    Json(LineReader<R>),
    /// Boxed: the CSV parser's state is large, and there is one per run.
    Csv(Box<CsvLines<R>>),
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    fn new(reader: R, format: Format) -> Self {
        match format {
            Format::JsonLines => Lines::Json(LineReader::new(reader)),
            Format::Csv => Lines::Csv(Box::new(CsvLines::new(reader))),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Lines::Json(r) => r.bytes(),
            Lines::Csv(r) => r.bytes(),
        }
    }

    /// The next line: its number and the parsed change or why it is refused.
    async fn next(
        &mut self,
    ) -> Result<Option<(u64, Option<std::result::Result<line::ChangeLine, LineError>>)>> {
        let io = |e: std::io::Error| Error::validation("body", format!("the input could not be read: {e}"));
        match self {
            Lines::Json(r) => {
                let Some((n, l)) = r.next().await.map_err(io)? else { return Ok(None) };
                let parsed = match l {
                    Line::Text(t) if t.trim().is_empty() => None,
                    Line::Text(t) => Some(line::parse(n, &t)),
                    Line::TooLong => {
                        Some(Err(LineError::new(n, Reason::LineTooLong, "the line is too long")))
                    }
                    Line::NotUtf8 => Some(Err(LineError::new(n, Reason::NotUtf8, "the line is not UTF-8"))),
                };
                Ok(Some((n, parsed)))
            }
            Lines::Csv(r) => r.next().await,
        }
    }
}

/// Imports the input `open` gives (called twice in strict mode: once to check, once to write).
pub async fn run<R, F, Fut>(
    state: &Services,
    options: &ImportOptions,
    open: F,
    observer: &mut dyn Observer,
) -> Result<ImportReport>
where
    R: AsyncBufRead + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = std::io::Result<R>>,
{
    options.validate()?;
    let io = |e: std::io::Error| Error::validation("body", format!("the input could not be read: {e}"));
    if options.strict {
        let checked = check_all(state, options, open().await.map_err(io)?, observer).await?;
        if checked.failed > 0 {
            return Ok(ImportReport { aborted: true, ..checked });
        }
    }
    let mut run = Importer::new(state, options, observer);
    let mut lines = Lines::new(open().await.map_err(io)?, options.format);
    // Two batches at most: the one the store is writing and the one being read and checked meanwhile,
    // so the writer's commit and the reading overlap (two cores) while memory stays bounded.
    let mut writing: Option<Writes<'_>> = None;
    let mut more = true;
    loop {
        let (read, written) = match writing.take() {
            Some(w) if more => {
                let (read, written) = join(run.fill(&mut lines), w).await;
                (read, Some(written))
            }
            Some(w) => (Ok(false), Some(w.await)),
            None => (run.fill(&mut lines).await, None),
        };
        // What was committed is applied (engine, records, identifiers) before a read error is reported,
        // and before the next batch is written: its sealer sees the state this batch left.
        if let Some(written) = written {
            run.finish(written).await?;
            let p = run.progress(lines.bytes());
            run.observer.progress(p);
        }
        more = read?;
        if !run.batch.is_empty() {
            let batch = std::mem::take(&mut run.batch);
            writing = Some(Box::pin(write(state, options.source.clone(), run.actor.clone(), batch)));
        }
        if !more && writing.is_none() {
            break;
        }
    }
    run.report.errors.sort_by_key(|e| e.line);
    Ok(run.report)
}

/// One batch's changes of one subject, as checked, with their notice versions.
type Changes = Vec<(Checked, Option<Arc<NoticeVersion>>)>;

/// What the store answered for each subject of a batch.
type Written = Vec<(SubjectId, Changes, consentry_store::Result<(Vec<Event>, Option<SealedReceipt>)>)>;

/// A batch being written.
type Writes<'a> = std::pin::Pin<Box<dyn Future<Output = Written> + Send + 'a>>;

/// Writes a batch: one append per subject, all at once, so the store commits them in groups.
async fn write(state: &Services, source: String, actor: String, batch: Changes) -> Written {
    let mut by_subject: HashMap<SubjectId, Changes> = HashMap::new();
    for (c, notice) in batch {
        by_subject.entry(c.subject.clone()).or_default().push((c, notice));
    }
    let writes = by_subject.into_iter().map(|(subject, mut changes)| {
        let (source, actor) = (source.clone(), actor.clone());
        async move {
            // The subject's history in the order the changes were made (then as the file had them).
            changes.sort_by_key(|(c, _)| (c.occurred_at, c.line));
            let (subject, written) = append(state, subject, &source, &actor, &changes).await;
            (subject, changes, written)
        }
    });
    join_all(writes).await
}

/// Strict mode's first pass: every line checked, nothing written.
async fn check_all<R: AsyncBufRead + Unpin>(
    state: &Services,
    options: &ImportOptions,
    reader: R,
    observer: &mut dyn Observer,
) -> Result<ImportReport> {
    let mut run = Importer::new(state, options, observer);
    let mut lines = Lines::new(reader, options.format);
    while let Some((n, parsed)) = lines.next().await? {
        run.report.lines = n;
        if let Some(parsed) = parsed
            && let Err(e) = run.check(n, parsed).await
        {
            run.refuse(e);
        }
    }
    Ok(run.report)
}

struct Importer<'a> {
    state: &'a Services,
    options: &'a ImportOptions,
    observer: &'a mut dyn Observer,
    actor: String,
    catalog: std::sync::Arc<crate::state::CatalogView>,
    now: Timestamp,
    /// Notice versions resolved so far: by (key, `v<version>`), (key, `sha256` of a text) or (key, `""`)
    /// for the current version; shared by every change that names one, not copied into each.
    notices: HashMap<(String, String), Arc<NoticeVersion>>,
    batch: Changes,
    report: ImportReport,
}

impl<'a> Importer<'a> {
    fn new(state: &'a Services, options: &'a ImportOptions, observer: &'a mut dyn Observer) -> Self {
        Self {
            state,
            options,
            observer,
            actor: options.actor(),
            catalog: state.catalog(),
            now: Timestamp::now(),
            notices: HashMap::new(),
            batch: Vec::new(),
            report: ImportReport::default(),
        }
    }

    fn progress(&self, bytes: u64) -> Progress {
        Progress {
            lines: self.report.lines,
            bytes,
            imported: self.report.imported,
            skipped: self.report.skipped,
            failed: self.report.failed,
        }
    }

    fn refuse(&mut self, e: LineError) {
        self.report.failed += 1;
        self.observer.refused(&e);
        if self.report.errors.len() < self.options.max_errors {
            self.report.errors.push(e);
        }
    }

    fn catalog(&self) -> &Catalog {
        &self.catalog.catalog
    }

    /// Checks a line; the notice version is looked up but an unknown text is not stored.
    async fn check(
        &mut self,
        n: u64,
        parsed: std::result::Result<line::ChangeLine, LineError>,
    ) -> std::result::Result<Checked, LineError> {
        let mut checked = line::check(n, parsed?, self.catalog(), self.now)?;
        // A subject id linked into another names the survivor, as it does in every API call.
        checked.subject = self.state.aliases.survivor(checked.subject);
        if self.state.erasures.is_erased(checked.subject.as_str()) {
            return Err(LineError::new(n, Reason::SubjectErased, "the subject was erased"));
        }
        if !self.options.identifiers && !checked.identifiers.is_empty() {
            return Err(LineError::new(
                n,
                Reason::IdentifiersNotAllowed,
                "attaching identifiers needs the identifiers:write scope",
            ));
        }
        if !self.options.ages && checked.age.is_some() {
            return Err(LineError::new(
                n,
                Reason::AgeNotAllowed,
                "stating an age needs the consent:write scope",
            ));
        }
        for i in &checked.identifiers {
            let region = self.state.config.phone_default_region.as_deref();
            let view = self.state.catalog();
            if identifiers::normalise(&view.catalog, &i.kind, &i.value, region, ("type", "value")).is_err() {
                return Err(LineError::new(
                    n,
                    Reason::InvalidIdentifier,
                    format!("not a valid {} identifier", i.kind),
                ));
            }
        }
        if let Some(NoticeRef { key, version: Some(v), .. }) = &checked.notice {
            self.notice_version(n, key, *v).await?;
        }
        Ok(checked)
    }

    async fn notice_version(
        &mut self,
        n: u64,
        key: &str,
        v: u32,
    ) -> std::result::Result<Arc<NoticeVersion>, LineError> {
        let cache = (key.to_owned(), format!("v{v}"));
        if let Some(found) = self.notices.get(&cache) {
            return Ok(Arc::clone(found));
        }
        let found =
            self.state.store.notice_version(key, v).await.map_err(|_| {
                LineError::new(n, Reason::UnknownNotice, "the notice version could not be read")
            })?;
        let found = Arc::new(found.ok_or_else(|| {
            LineError::new(n, Reason::UnknownNotice, format!("notice {key:?} has no version {v}"))
        })?);
        self.notices.insert(cache, Arc::clone(&found));
        Ok(found)
    }

    /// The notice version a checked change names, storing a text the catalogue lacks as an imported
    /// version.
    async fn resolve_notice(
        &mut self,
        n: u64,
        notice: &NoticeRef,
    ) -> Result<std::result::Result<Arc<NoticeVersion>, LineError>> {
        if let Some(v) = notice.version {
            return Ok(self.notice_version(n, &notice.key, v).await);
        }
        let Some(entry) = self.catalog().notice(&notice.key) else {
            return Ok(Err(LineError::new(n, Reason::UnknownNotice, "the catalogue has no such notice")));
        };
        let Some(text) = &notice.text else {
            // No version and no text: the current version (as the catalogue this run started with has it).
            let cache = (notice.key.clone(), String::new());
            if let Some(found) = self.notices.get(&cache) {
                return Ok(Ok(Arc::clone(found)));
            }
            let Some(current) = self.catalog.stored.notices.iter().find(|v| v.key == notice.key) else {
                return Ok(Err(LineError::new(n, Reason::UnknownNotice, "the notice has no stored version")));
            };
            let current = Arc::new(current.clone());
            self.notices.insert(cache, Arc::clone(&current));
            return Ok(Ok(current));
        };
        let cache = (notice.key.clone(), consentry_core::catalog::notice_sha256(text));
        if let Some(found) = self.notices.get(&cache) {
            return Ok(Ok(Arc::clone(found)));
        }
        let entry = entry.clone();
        let language = notice
            .language
            .clone()
            .or(entry.language.clone())
            .unwrap_or_else(|| self.catalog().document().language().to_owned());
        let stored =
            Arc::new(self.state.store.import_notice(&notice.key, &language, &entry.title, text).await?);
        self.notices.insert(cache, Arc::clone(&stored));
        Ok(Ok(stored))
    }

    /// Checks a line and adds it to the batch, or counts it refused.
    async fn push(&mut self, n: u64, parsed: std::result::Result<line::ChangeLine, LineError>) -> Result<()> {
        let checked = match self.check(n, parsed).await {
            Ok(c) => c,
            Err(e) => {
                self.refuse(e);
                return Ok(());
            }
        };
        let notice = match &checked.notice {
            None => None,
            Some(r) => match self.resolve_notice(n, &r.clone()).await? {
                Ok(v) => Some(v),
                Err(e) => {
                    self.refuse(e);
                    return Ok(());
                }
            },
        };
        self.batch.push((checked, notice));
        Ok(())
    }

    /// Reads, checks and adds lines to the batch until it is full; `false` at the end of the input.
    async fn fill<R: AsyncBufRead + Unpin>(&mut self, lines: &mut Lines<R>) -> Result<bool> {
        while self.batch.len() < self.options.batch.max(1) {
            let Some((n, parsed)) = lines.next().await? else { return Ok(false) };
            self.report.lines = n;
            if let Some(parsed) = parsed {
                self.push(n, parsed).await?;
            }
        }
        Ok(true)
    }

    /// Counts a written batch and applies what it placed: the engine, records kept under a withdrawn
    /// consent, identifiers.
    async fn finish(&mut self, written: Written) -> Result<()> {
        let mut failure = None;
        // Evidence of the subjects written, stored after the loop in one write.
        let mut held = Vec::new();
        // What the loop applied, for the look-ups done after it for all subjects at once.
        let mut applied = Vec::new();
        for (subject, changes, written) in written {
            let placed = match written {
                Ok((placed, _)) => placed,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            self.report.imported += placed.len() as u64;
            self.report.skipped += (changes.len() - placed.len()) as u64;
            let carried = evidence::of(changes.iter().map(|(c, _)| c));
            if !carried.is_empty() {
                held.push((subject.clone(), carried));
            }
            self.apply_age(&subject, &changes).await?;
            if placed.is_empty() {
                continue;
            }
            self.state.apply_committed(&subject, &placed);
            self.state.metrics.ledger_appends.inc_by(placed.len() as u64);
            self.state.devices.subject_changed(&subject);
            applied.push((subject, changes, placed));
        }
        // Records kept under a consent now withdrawn: only subjects that hold any are looked at, found
        // with one look-up for the batch (most imported subjects hold none).
        let withdrawn: Vec<SubjectId> = applied
            .iter()
            .filter(|(_, _, placed)| placed.iter().any(records::ends_basis))
            .map(|(subject, _, _)| subject.clone())
            .collect();
        let holding = self.state.store.holding_records(&withdrawn).await?;
        for (subject, changes, placed) in &applied {
            if holding.contains(subject) {
                records::delete_after_withdrawal(self.state, subject, placed).await?;
            }
            self.attach_identifiers(subject, changes).await?;
        }
        self.state.dispatch_wake.notify_one();
        evidence::store(self.state, &self.options.source, held).await?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Stores the age the subject's lines state (the last change's that states one, in the order the changes
    /// were made); again on a rerun, which changes nothing but completes a run stopped before it.
    async fn apply_age(
        &mut self,
        subject: &SubjectId,
        changes: &[(Checked, Option<Arc<NoticeVersion>>)],
    ) -> Result<()> {
        let Some((c, age)) = changes.iter().rev().find_map(|(c, _)| c.age.as_ref().map(|a| (c, a))) else {
            return Ok(());
        };
        match crate::guardians::age::set_stated(self.state, subject, age).await {
            Ok(()) => Ok(()),
            Err(Error::Validation { .. }) => {
                self.refuse(LineError::new(c.line, Reason::InvalidAge, "the age could not be stored"));
                Ok(())
            }
            Err(Error::SubjectErased) => {
                self.refuse(LineError::new(c.line, Reason::SubjectErased, "the subject was erased"));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Attaches the identifiers the subject's lines name; one another subject holds is reported.
    async fn attach_identifiers(
        &mut self,
        subject: &SubjectId,
        changes: &[(Checked, Option<Arc<NoticeVersion>>)],
    ) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (c, _) in changes {
            for i in &c.identifiers {
                if !seen.insert((i.kind.clone(), i.value.clone())) {
                    continue;
                }
                let body = IdentifierIn { kind: i.kind.clone(), value: i.value.clone() };
                match identifiers::add(self.state, subject, body).await {
                    Ok(_) => {}
                    Err(Error::Conflict(_)) => self.refuse(LineError::new(
                        c.line,
                        Reason::IdentifierTaken,
                        "the identifier belongs to another subject; the change was imported without it",
                    )),
                    Err(Error::Validation { .. }) => self.refuse(LineError::new(
                        c.line,
                        Reason::InvalidIdentifier,
                        "not a valid identifier",
                    )),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// Appends one subject's changes of a batch; a subject linked into another meanwhile (a link made while the
/// import ran, here or on another node) is the survivor's, as a live write's would be. Returns the subject
/// the changes were written for.
async fn append(
    state: &Services,
    subject: SubjectId,
    source: &str,
    actor: &str,
    changes: &[(Checked, Option<Arc<NoticeVersion>>)],
) -> (SubjectId, consentry_store::Result<(Vec<Event>, Option<consentry_store::SealedReceipt>)>) {
    let write = |subject: SubjectId| {
        let ids: Vec<String> = changes.iter().map(|(c, _)| c.source_id.clone()).collect();
        let events: Vec<NewEvent> = changes.iter().map(|(c, n)| new_event(c, n.as_deref(), actor)).collect();
        let keys = ImportKeys { source: source.to_owned(), ids };
        let seal = sealer(state, &subject, source);
        async move {
            let written = state.store.append_imported(&subject, keys, events, Some(seal)).await;
            (subject, written)
        }
    };
    match write(subject.clone()).await {
        (_, Err(StoreError::Linked(survivor))) => {
            state.aliases.link(subject.as_str(), survivor.as_str());
            write(survivor).await
        }
        written => written,
    }
}

fn new_event(c: &Checked, notice: Option<&NoticeVersion>, actor: &str) -> NewEvent {
    NewEvent {
        purpose: c.purpose.clone(),
        action: c.action,
        scope: c.scope.clone(),
        notice: notice.map(|n| n.key.clone()),
        notice_version: notice.map(|n| n.version),
        notice_hash: notice.map(|n| n.sha256.clone()),
        collection_point: c.collection_point.clone(),
        actor: actor.to_owned(),
        expires_at: c.expires_at,
        evidence: c.evidence.as_ref().map(|(hash, _)| hash.clone()),
        jurisdiction: c.jurisdiction.clone(),
        occurred_at: Some(c.occurred_at),
    }
}

/// The outbox messages of one subject's imported changes: one `consent.imported` CloudEvent listing them
/// all (the history, for destinations that name that type), then the usual `consent.<action>` event of
/// each change in force afterwards, so that a destination subscribed to `consent.*` learns the state the
/// import brought ([`events::imported_in_force`]).
fn sealer(state: &Services, subject: &SubjectId, source: &str) -> Sealer {
    let state = state.clone();
    let subject = subject.clone();
    let source = source.to_owned();
    Box::new(move |placed: &[Event], wants: &Wants<'_>| {
        let (Some(first), Some(last)) = (placed.first(), placed.last()) else {
            return Ok(Sealed::default());
        };
        // Built only for the types some destination takes: most imports go to a node none listens on.
        let in_force = events::imported_in_force(&state, &subject, placed, wants);
        if !wants(IMPORTED_TYPE) {
            return Ok(Sealed { receipt: None, outbox: Vec::new(), in_force });
        }
        let events: Vec<_> = placed
            .iter()
            .map(|e| {
                json!({
                    "id": e.id(),
                    "seq": e.seq,
                    "purpose": e.purpose,
                    "action": e.action.as_str(),
                    "categories": e.scope.categories,
                    "channels": e.scope.channels,
                    "recipients": e.scope.recipients,
                    "notice": e.notice,
                    "notice_version": e.notice_version,
                    "occurred_at": e.occurred_at.map(|t| t.to_string()),
                    "recorded_at": e.recorded_at.to_string(),
                    "expires_at": e.expires_at.map(|t| t.to_string()),
                    "jurisdiction": e.jurisdiction,
                    "hash": e.hash,
                })
            })
            .collect();
        let id = format!("{}..{}", event_id(first.seq), event_id(last.seq));
        let data = json!({"source": source, "events": events});
        let batch = CloudEvent::new(state.config.event_source(), id, IMPORTED_TYPE, last.recorded_at, data)
            .into_outbox();
        Ok(Sealed { receipt: None, outbox: vec![batch], in_force })
    })
}

/// Imports a streamed input (an HTTP body): read as it arrives, or, in strict mode, first copied to an
/// unnamed temporary file (deleted when closed) so that it can be checked whole before anything is
/// written.
pub async fn run_stream<R: tokio::io::AsyncRead + Unpin>(
    state: &Services,
    options: &ImportOptions,
    mut reader: R,
    observer: &mut dyn Observer,
) -> Result<ImportReport> {
    if !options.strict {
        let reader = std::sync::Mutex::new(Some(tokio::io::BufReader::new(reader)));
        let open = || {
            let taken = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            async move { taken.ok_or_else(|| std::io::Error::other("the body is read once")) }
        };
        return run(state, options, open, observer).await;
    }
    let io = |e: std::io::Error| Error::validation("body", format!("the input could not be read: {e}"));
    let spool = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    let mut spool = tokio::fs::File::from_std(spool);
    // At most `max_spool` bytes: one more tells that the body is larger.
    let limit = options.max_spool;
    let mut capped = tokio::io::AsyncReadExt::take(&mut reader, limit.saturating_add(1));
    let copied = tokio::io::copy(&mut capped, &mut spool).await.map_err(io)?;
    if copied > limit {
        return Err(Error::PayloadTooLarge(usize::try_from(limit).unwrap_or(usize::MAX)));
    }
    let spool = spool.into_std().await;
    let open = || {
        let file = spool.try_clone();
        async move {
            use std::io::Seek as _;
            let mut file = file?;
            file.rewind()?;
            Ok(tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::from_std(file)))
        }
    };
    run(state, options, open, observer).await
}
