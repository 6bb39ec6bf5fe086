//! The export: every subject's current statements (or, with history, every event) in the line format an
//! import reads, a page at a time, so that exporting and importing into a fresh store gives the same
//! current state and the same answers to checks.
//!
//! Each line's `source_id` is the event's id (`evt_42`), `occurred_at` the time it took effect, and the
//! notice is named by its text (and language), which finds the same notice version in another store
//! whatever its version numbers; the subject's jurisdiction goes with the change that set it (a `locate`
//! event as a `locate` line). Events of erased subjects are left out; evidence and identifiers are not
//! exported.

use std::collections::HashMap;

use std::sync::Arc;

use consentry_core::{Event, SubjectId, Timestamp};
use consentry_store::{NoticeVersion, Store};

use super::csv;
use super::import::Format;
use super::line::{ChangeLine, NoticeRef};
use crate::error::Result;

/// Statements or events read per page.
const PAGE: u32 = 5000;

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub format: Format,
    /// Only what was recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Every event, not only the statements in force.
    pub history: bool,
}

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
        }
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
            self.store.subject_events_page(self.after, PAGE).await?
        } else {
            let page = self.store.current_page(self.after, PAGE).await?;
            page.into_iter().map(|(s, e)| (Some(s), e)).collect()
        };
        let Some((_, last)) = page.last() else {
            self.done = true;
            return Ok((!out.is_empty()).then(|| text(out)));
        };
        self.after = last.seq;
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
            let line = self.line(&subject, event, effective).await?;
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
        Ok(Some(text(out)))
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
