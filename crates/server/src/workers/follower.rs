//! Keeps this node's decision engine and catalogue fresh from other nodes' writes.
//!
//! Runs only on backends with several writers (PostgreSQL). It wakes on a change signal (LISTEN/NOTIFY)
//! and on a timer (`catch_up_interval_ms`), then reads the ledger after the last position it applied and
//! applies each event to the engine. Applying is idempotent, so this node's own writes, which its
//! handlers already applied, do no harm; a missed notification costs at most one timer interval.

use std::time::Duration;

use consentry_core::catalog::Catalog;
use tokio_util::sync::CancellationToken;

use crate::state::{AppState, CatalogView};

const PAGE: u32 = 2000;

/// Follows the ledger from position `from` until `shutdown` fires.
pub async fn run(state: AppState, from: u64, shutdown: CancellationToken) {
    let Some(mut signals) = state.store.change_signals() else { return };
    let interval = Duration::from_millis(state.config.catch_up_interval_ms);
    let mut applied = from;
    loop {
        match catch_up(&state, applied).await {
            Ok(pos) => applied = pos,
            Err(e) => tracing::warn!(error = %e, "catching up from the ledger failed; retrying"),
        }
        if let Err(e) = refresh_catalog(&state).await {
            tracing::warn!(error = %e, "refreshing the catalogue failed; retrying");
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

async fn catch_up(state: &AppState, mut applied: u64) -> Result<u64, consentry_store::StoreError> {
    loop {
        let page = state.store.subject_events_page(applied, PAGE).await?;
        let Some((_, last)) = page.last() else { return Ok(applied) };
        let last_seq = last.seq;
        for (subject, event) in &page {
            if let Some(subject) = subject {
                if let Err(e) = state.engine.apply(subject.as_str(), event) {
                    tracing::error!(error = %e, seq = event.seq, "could not apply a followed event");
                }
                state.devices.subject_changed(subject);
            }
        }
        applied = last_seq;
        state.dispatch_wake.notify_one();
        if page.len() < PAGE as usize {
            return Ok(applied);
        }
    }
}

async fn refresh_catalog(state: &AppState) -> Result<(), String> {
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
