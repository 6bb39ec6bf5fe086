//! The access-log queue and the check counters, a part of the shared state: reads are queued here and
//! written by the access-log worker in batches; checks are counted in memory and added to the store every
//! few seconds. It uses no other part of the service layer.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::{AccessEntry, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
