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
            notices: HashMap::new(),
            clock: Timestamp::from_micros(0),
        }
    }

    /// The next lines as one text, `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<String>> {
        let mut out = String::new();
        if self.options.format == Format::Csv && !self.header_done {
            self.header_done = true;
            out.push_str(&csv::header());
            out.push('\n');
        }
        if self.done {
            return Ok((!out.is_empty()).then_some(out));
        }
        let page: Vec<(Option<SubjectId>, Event)> = if self.options.history {
            self.store.subject_events_page(self.after, PAGE).await?
        } else {
            let page = self.store.current_page(self.after, PAGE).await?;
            page.into_iter().map(|(s, e)| (Some(s), e)).collect()
        };
        let Some((_, last)) = page.last() else {
            self.done = true;
            return Ok((!out.is_empty()).then_some(out));
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
                    // A struct of strings and lists always serialises.
                    out.push_str(&serde_json::to_string(&line).unwrap_or_default());
                }
                Format::Csv => out.push_str(&csv::row(&line)),
            }
            out.push('\n');
        }
        Ok(Some(out))
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
