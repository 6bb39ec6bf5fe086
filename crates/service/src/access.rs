//! The access log: who read a subject's data, through which route, for which stated purpose; and how
//! often each subject's consent was checked, per purpose.
//!
//! Reads are queued and written by the access-log worker in batches (group-committed with ledger writes on
//! the embedded store), so logging adds no fsync to a read. Checks are only counted, in memory, per subject
//! and purpose, and the counts are added to the store every few seconds and at shutdown; subject ids never
//! become metric labels.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::{AccessEntry, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::auth::{Caller, Principal};
use crate::error::Result;
use crate::state::Services;

/// The header in which a caller states why it reads a subject's data.
pub const PURPOSE_HEADER: &str = "x-consentry-purpose";
const UNSPECIFIED: &str = "unspecified";
const SHARDS: usize = 16;
const FLUSH_EVERY: Duration = Duration::from_secs(2);
const MAX_BATCH: usize = 1000;

/// The purpose a caller stated (the `X-Consentry-Purpose` header), cleaned: printable, at most 128
/// characters; else "unspecified".
fn stated_purpose(stated: Option<&str>) -> String {
    stated
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| !c.is_control()))
        .unwrap_or(UNSPECIFIED)
        .to_owned()
}

/// Per subject, per purpose: (count, last check in microseconds).
type Counts = HashMap<Box<str>, HashMap<Box<str>, (u64, i64)>>;

/// Queues access-log entries and counts checks.
pub struct AccessLog {
    queue: mpsc::UnboundedSender<AccessEntry>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<AccessEntry>>>,
    counts: Box<[Mutex<Counts>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for AccessLog {
    fn default() -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        Self {
            queue,
            receiver: Mutex::new(Some(receiver)),
            counts: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl AccessLog {
    /// Logs one read of `subject`'s data.
    pub fn read(&self, subject: &SubjectId, caller: &str, route: &str, stated: Option<&str>) {
        let entry = AccessEntry {
            subject: subject.clone(),
            at: Timestamp::now(),
            caller: caller.to_owned(),
            route: route.to_owned(),
            purpose: stated_purpose(stated),
        };
        // The worker owns the receiver until shutdown; after it, entries are dropped with a warning.
        if self.queue.send(entry).is_err() {
            tracing::warn!("access log closed; an access was not logged");
        }
    }

    /// Counts one check of `subject` for `purpose`.
    pub(crate) fn checked(&self, subject: &str, purpose: &str, at: Timestamp) {
        let shard = (self.hasher.hash_one(subject) as usize) % SHARDS;
        let mut counts = self.counts[shard].lock().unwrap_or_else(PoisonError::into_inner);
        // Borrowed look-ups first: no allocation once a subject and purpose were seen in this interval.
        let per_purpose = match counts.get_mut(subject) {
            Some(p) => p,
            None => counts.entry(subject.into()).or_default(),
        };
        match per_purpose.get_mut(purpose) {
            Some(entry) => {
                entry.0 += 1;
                entry.1 = at.micros();
            }
            None => {
                per_purpose.insert(purpose.into(), (1, at.micros()));
            }
        }
    }

    fn take_counts(&self) -> Vec<(SubjectId, String, u64, Timestamp)> {
        let mut out = Vec::new();
        for shard in self.counts.iter() {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            for (subject, purposes) in taken {
                let Ok(subject) = SubjectId::new(String::from(subject)) else { continue };
                for (purpose, (n, last)) in purposes {
                    out.push((subject.clone(), String::from(purpose), n, Timestamp::from_micros(last)));
                }
            }
        }
        out
    }

    /// Writes queued entries and counts until `shutdown`, then flushes what is left.
    pub(crate) async fn run(&self, store: &dyn Store, shutdown: CancellationToken) {
        let Some(mut receiver) = self.receiver.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        let mut batch = Vec::new();
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                got = receiver.recv_many(&mut batch, MAX_BATCH) => got == 0,
                () = tokio::time::sleep(FLUSH_EVERY) => false,
            };
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            if !batch.is_empty()
                && let Err(e) = store.log_access(std::mem::take(&mut batch)).await
            {
                tracing::error!(error = %e, "could not write the access log");
            }
            let counts = self.take_counts();
            if !counts.is_empty()
                && let Err(e) = store.add_check_counts(counts).await
            {
                tracing::error!(error = %e, "could not write check counts");
            }
            if stop {
                return;
            }
        }
    }
}

/// Who reads a subject's data, where the read came in and why. A service's read goes into the subject's
/// access log; a person reading their own data, or a device its own subject's, is no access to report.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The reading API key's name; `None` when the reader is not a service.
    caller: Option<&'a str>,
    route: &'static str,
    stated: Option<&'a str>,
}

impl<'a> Reader<'a> {
    /// `route` names where the read came in (e.g. `GET /v1/subjects/{subject}/consents`); `stated` is the
    /// purpose the caller gave for reading (`X-Consentry-Purpose`), as sent.
    pub fn new(principal: &'a Principal, route: &'static str, stated: Option<&'a str>) -> Self {
        Self { caller: principal.service().map(|c| c.key_name.as_str()), route, stated }
    }

    /// A read by a service key.
    pub fn service(caller: &'a Caller, route: &'static str, stated: Option<&'a str>) -> Self {
        Self { caller: Some(caller.key_name.as_str()), route, stated }
    }

    /// Logs this read of `subject`'s data, when it is a service's.
    pub fn log(&self, log: &AccessLog, subject: &SubjectId) {
        if let Some(caller) = self.caller {
            log.read(subject, caller, self.route, self.stated);
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntryOut {
    pub id: i64,
    pub at: String,
    /// The API key's name, or `subject` for the person themselves.
    pub caller: String,
    pub route: String,
    /// The purpose the caller stated in `X-Consentry-Purpose`, or `unspecified`.
    pub purpose: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckCount {
    pub purpose: String,
    pub count: u64,
    pub last_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLogOut {
    /// Newest first.
    pub entries: Vec<AccessEntryOut>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next: Option<i64>,
    /// Consent checks are counted, not logged one by one.
    pub checks: Vec<CheckCount>,
}

/// Which page of the access log: `limit` entries (1 to 1000, default 100) older than `before`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AccessPage {
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
}

/// One page of `subject`'s access log, newest first, and their consent checks counted per purpose; the
/// read itself is logged after it.
pub async fn list(
    services: &Services,
    subject: &SubjectId,
    page: AccessPage,
    reader: Reader<'_>,
) -> Result<AccessLogOut> {
    let limit = crate::page_limit(page.limit, 1000)?;
    let records = services.store.access_log(subject, page.before, limit).await?;
    let next = (records.len() == limit as usize).then(|| records.last().map(|r| r.id)).flatten();
    let entries = records
        .into_iter()
        .map(|r| AccessEntryOut {
            id: r.id,
            at: r.at.to_string(),
            caller: r.caller,
            route: r.route,
            purpose: r.purpose,
        })
        .collect();
    let checks = services
        .store
        .check_counts(subject)
        .await?
        .into_iter()
        .map(|(purpose, count, last)| CheckCount { purpose, count, last_at: last.to_string() })
        .collect();
    reader.log(&services.access, subject);
    Ok(AccessLogOut { entries, next, checks })
}
