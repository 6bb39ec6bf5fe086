//! Keeps this node's decision engine and catalogue fresh from other nodes' writes.
//!
//! Runs only on backends with several writers (PostgreSQL). It wakes on a change signal (LISTEN/NOTIFY)
//! and on a timer (`catch_up_interval_ms`), then reads the ledger after the last position it applied and
//! applies each event to the engine. Applying is idempotent, so this node's own writes, which its
//! handlers already applied, do no harm; a missed notification costs at most one timer interval.

use std::time::Duration;

use consentry_core::catalog::Catalog;
use consentry_core::{Event, SubjectId};
use tokio_util::sync::CancellationToken;

use crate::state::{CatalogView, Services};

const PAGE: u32 = 2000;
/// How often erasures made on other nodes are looked for.
const ERASURES_EVERY: Duration = Duration::from_secs(2);

/// Follows the ledger from position `from` until `shutdown` fires.
pub async fn run(state: Services, from: u64, shutdown: CancellationToken) {
    let Some(mut signals) = state.store.change_signals() else { return };
    let interval = Duration::from_millis(state.config.catch_up_interval_ms);
    let mut applied = from;
    let mut erasures_read: Option<std::time::Instant> = None;
    loop {
        match catch_up(&state, applied).await {
            Ok(pos) => applied = pos,
            Err(e) => tracing::warn!(error = %e, "catching up from the ledger failed; retrying"),
        }
        if let Err(e) = refresh_catalog(&state).await {
            tracing::warn!(error = %e, "refreshing the catalogue failed; retrying");
        }
        // Every tombstone is read each time: at most every few seconds.
        if erasures_read.is_none_or(|at| at.elapsed() >= ERASURES_EVERY) {
            erasures_read = Some(std::time::Instant::now());
            if let Err(e) = refresh_erasures(&state).await {
                tracing::warn!(error = %e, "refreshing the erasures failed; retrying");
            }
            if let Err(e) = refresh_ages(&state).await {
                tracing::warn!(error = %e, "refreshing the subjects' ages failed; retrying");
            }
            // Links made on other nodes: every alias, read again; a new alias's own state goes.
            match state.aliases.load(state.store.as_ref()).await {
                Ok(added) => {
                    for alias in added {
                        state.engine.forget(alias.as_str());
                        state.devices.subject_changed(&alias);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "refreshing the subject links failed; retrying"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = signals.changed() => {
                if changed.is_err() {
                    // The listener is gone; keep catching up on the timer.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(interval) => {}
                    }
                }
            }
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// How far before the latest age read the next read starts: another node's change committed late, or
/// stamped by a clock a little behind, is still read. Reading one twice does no harm.
const AGES_LOOKBACK_MICROS: i64 = 60_000_000;

/// Gives the engine the ages other nodes stored or changed since the last read.
async fn refresh_ages(state: &Services) -> crate::error::Result<()> {
    use std::sync::atomic::Ordering;
    let read = state.ages_read.load(Ordering::Relaxed);
    let since = consentry_core::Timestamp::from_micros(read.saturating_sub(AGES_LOOKBACK_MICROS));
    if let Some(latest) = crate::guardians::age::load_since(state, since).await? {
        state.ages_read.fetch_max(latest.micros(), Ordering::Relaxed);
    }
    Ok(())
}

async fn catch_up(state: &Services, applied: u64) -> Result<u64, consentry_store::StoreError> {
    read_after(state.store.as_ref(), applied, |page| {
        // Devices hear once per subject and page, not once per event.
        let mut changed = std::collections::BTreeSet::new();
        for (subject, event) in page {
            if let Some(subject) = subject {
                // Never puts back a subject being erased (this node's own last write of theirs, say).
                state.apply_committed(subject, std::slice::from_ref(event));
                changed.insert(subject);
            }
        }
        for subject in changed {
            state.devices.subject_changed(subject);
        }
        state.dispatch_wake.notify_one();
    })
    .await
}

/// Reads the ledger after position `after` to its end, a page at a time, handing each page (events with
/// their subjects, `None` once erased) to `apply`; returns the last position read. What keeps an engine
/// fresh from other nodes' writes, and what brings one loaded from an image up to date.
pub(crate) async fn read_after(
    store: &dyn consentry_store::Store,
    mut after: u64,
    mut apply: impl FnMut(&[(Option<SubjectId>, Event)]),
) -> Result<u64, consentry_store::StoreError> {
    loop {
        let page = store.subject_events_page(after, PAGE).await?;
        let Some((_, last)) = page.last() else { return Ok(after) };
        let last_seq = last.seq;
        apply(&page);
        after = last_seq;
        if page.len() < PAGE as usize {
            return Ok(after);
        }
    }
}

async fn refresh_catalog(state: &Services) -> Result<(), String> {
    let current = state.catalog().stored.version;
    let latest = state.store.catalog_version().await.map_err(|e| e.to_string())?;
    if latest.is_none_or(|v| v <= current) {
        return Ok(());
    }
    let _serial = state.catalog_apply.lock().await;
    let Some(stored) = state.store.catalog().await.map_err(|e| e.to_string())? else { return Ok(()) };
    if stored.version <= state.catalog().stored.version {
        return Ok(());
    }
    let catalog = Catalog::validate(stored.document.clone()).map_err(|p| {
        format!("stored catalogue version {} is invalid ({} problems)", stored.version, p.len())
    })?;
    state.engine.set_catalog(&catalog).map_err(|e| e.to_string())?;
    tracing::info!(version = stored.version, "catalogue changed on another node; loaded");
    state.set_catalog(CatalogView { stored, catalog });
    state.devices.everyone();
    Ok(())
}

/// Learns erasures made on other nodes and makes the engine forget those subjects. Tombstones name no one,
/// so finding the subjects takes one keyed hash per subject the engine holds, once per batch of erasures.
async fn refresh_erasures(state: &Services) -> Result<(), consentry_store::StoreError> {
    let new = state.erasures.load(state.store.as_ref()).await?;
    if new.is_empty() {
        return Ok(());
    }
    let new: std::collections::HashSet<_> = new.into_iter().collect();
    let forgotten = state.engine.forget_where(|subject| state.erasures.matches_any(subject, &new));
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    tracing::info!(erasures = new.len(), forgotten, "erasures made on another node applied");
    Ok(())
}
