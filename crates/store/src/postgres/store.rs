//! The PostgreSQL store's handle: the connection pool, the group-commit task that appends, the listener
//! task of the change feed, and the [`Store`] trait on top of them. Each method calls the SQL of its part
//! of the trait (`keys.rs`, `meta.rs`, `catalog.rs`, `ledger.rs`, `activity.rs`, `outbox.rs`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use consentry_core::catalog::CatalogDocument;
use consentry_core::merkle::{Hash, NodeId};
use consentry_core::{Event, NewEvent, SubjectId, Timestamp};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::error::db;
use super::listener::listen_loop;
use super::writer::{AppendJob, write_loop};
use super::{activity, catalog, images, keys, ledger, meta, migrate, outbox, pseudonyms, tlog};
use crate::common::lease_end;
use crate::error::{Result, StoreError};
use crate::model::{
    AccessEntry, AccessRecord, ApiKey, ClaimedDelivery, CommitObserver, DeliveryOutcome, DeliveryRecord,
    DestinationPatch, DestinationRecord, EventMatcher, ExportRow, ImportKeys, LedgerHead, NewDestination,
    NoticeVersion, OutboxFilter, OutboxMessage, OutboxPruned, ReplayFrom, SealedReceipt, Sealer,
    SigningKeyRecord, StoredCatalog, StoredCheckpoint, StoredReceipt, TlogCheckpoint, default_outbox_filter,
};
use crate::recent::RecentNodes;
use crate::store::Store;

/// The PostgreSQL store.
pub struct PostgresStore {
    pub(super) pool: PgPool,
    appends: Mutex<Option<mpsc::UnboundedSender<AppendJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    listener: Mutex<Option<JoinHandle<()>>>,
    signals: watch::Receiver<u64>,
    /// Which outbox messages some destination wants (see [`OutboxFilter`]).
    pub(super) filter: OutboxFilter,
    /// The tree nodes this node's writer committed lately, which proofs and the next group's frontier read
    /// without a query.
    recent: Arc<RecentNodes>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, migrates (refusing a newer schema) and starts the group-commit and listener tasks.
    pub async fn open(url: &str, max_connections: u32, observer: Option<CommitObserver>) -> Result<Self> {
        Self::open_with(url, max_connections, observer, default_outbox_filter()).await
    }

    /// As [`open`](Self::open), keeping only the outbox messages some destination wants by `filter`.
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        observer: Option<CommitObserver>,
        filter: OutboxFilter,
    ) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate::run(&pool).await?;
        tlog::catch_up(&pool).await?;

        let (tx, rx) = mpsc::unbounded_channel();
        let recent = Arc::new(RecentNodes::new());
        let writer =
            tokio::spawn(write_loop(pool.clone(), rx, observer, filter.clone(), Arc::clone(&recent)));
        let (signal_tx, signals) = watch::channel(0);
        let listener = tokio::spawn(listen_loop(pool.clone(), signal_tx));
        Ok(Self {
            pool,
            appends: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            listener: Mutex::new(Some(listener)),
            signals,
            filter,
            recent,
        })
    }

    /// Applies the migrations to the database at `url` and returns the schema version (`consentry migrate`).
    pub async fn migrate_only(url: &str) -> Result<i64> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        let version = migrate::run(&pool).await;
        pool.close().await;
        version
    }

    pub fn schema_version() -> i64 {
        migrate::supported_version()
    }
}

impl PostgresStore {
    /// Queues an append job for the writer.
    pub(super) fn send_append(&self, job: AppendJob) -> Result<()> {
        let guard = self.appends.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn initialise(&self, admin: ApiKey) -> Result<bool> {
        meta::initialise(&self.pool, &admin).await
    }

    async fn insert_api_key(&self, key: ApiKey) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        keys::insert_api_key(&mut conn, &key).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        keys::api_keys(&self.pool).await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        keys::api_key_by_hash(&self.pool, hash).await
    }

    async fn rehash_api_key(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool> {
        keys::rehash_api_key(&self.pool, id, old, new).await
    }

    async fn key_pepper(&self) -> Result<[u8; 32]> {
        keys::key_pepper(&self.pool).await
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        keys::revoke_api_key(&self.pool, id, at).await
    }

    async fn catalog(&self) -> Result<Option<StoredCatalog>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        catalog::current_catalog(&mut conn).await
    }

    async fn export_page(&self, after: u64, through: u64, history: bool) -> Result<Vec<ExportRow>> {
        ledger::export_page(&self.pool, after, through, history).await
    }

    fn export_reads(&self) -> usize {
        3
    }

    async fn catalog_version(&self) -> Result<Option<u64>> {
        catalog::catalog_version(&self.pool).await
    }

    async fn apply_catalog(&self, document: &CatalogDocument) -> Result<StoredCatalog> {
        catalog::apply_catalog(&self.pool, document).await
    }

    async fn notice_version(&self, key: &str, version: u32) -> Result<Option<NoticeVersion>> {
        catalog::notice_version(&self.pool, key, version).await
    }

    async fn import_notice(
        &self,
        key: &str,
        language: &str,
        title: &str,
        text: &str,
    ) -> Result<NoticeVersion> {
        catalog::import_notice(&self.pool, key, language, title, text).await
    }

    async fn catalog_document(&self, version: u64) -> Result<Option<CatalogDocument>> {
        catalog::catalog_document(&self.pool, version).await
    }

    async fn append_sealed(
        &self,
        subject: &SubjectId,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)> {
        if events.is_empty() {
            return Ok((Vec::new(), None));
        }
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.appends.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(AppendJob { subject: subject.clone(), events, import: None, seal, link: None, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn append_imported(
        &self,
        subject: &SubjectId,
        keys: ImportKeys,
        events: Vec<NewEvent>,
        seal: Option<Sealer>,
    ) -> Result<(Vec<Event>, Option<SealedReceipt>)> {
        if events.is_empty() {
            return Ok((Vec::new(), None));
        }
        if keys.ids.len() != events.len() {
            return Err(StoreError::Backend("an import key for every event".into()));
        }
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.appends.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(AppendJob {
                    subject: subject.clone(),
                    events,
                    import: Some(keys),
                    seal,
                    link: None,
                    reply,
                })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn pseudonym_key(&self, subject: &SubjectId) -> Result<Option<[u8; 32]>> {
        pseudonyms::pseudonym_key(&self.pool, subject.as_str()).await
    }

    async fn receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        ledger::receipt(&self.pool, id).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        keys::signing_keys(&self.pool).await
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> Result<()> {
        keys::add_signing_key(&self.pool, &key).await
    }

    async fn insert_checkpoint(&self, events: u64, head: &str, jws: &str) -> Result<()> {
        ledger::insert_checkpoint(&self.pool, events, head, jws).await
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        ledger::checkpoints(&self.pool).await
    }

    async fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tlog::nodes(&mut conn, ids).await
    }

    async fn tlog_proof_nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>> {
        let (mut found, missing) = self.recent.split(ids);
        if !missing.is_empty() {
            found.extend(self.tlog_nodes(&missing).await?);
        }
        Ok(found)
    }

    async fn insert_tlog_checkpoint(&self, checkpoint: &TlogCheckpoint) -> Result<()> {
        tlog::insert_checkpoint(&self.pool, checkpoint).await
    }

    async fn latest_tlog_checkpoint(&self) -> Result<Option<TlogCheckpoint>> {
        tlog::latest_checkpoint(&self.pool).await
    }

    async fn recent_tlog_checkpoints(&self, before: Option<u64>, limit: u32) -> Result<Vec<TlogCheckpoint>> {
        tlog::recent_checkpoints(&self.pool, before.unwrap_or(u64::MAX), limit).await
    }

    async fn tlog_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<TlogCheckpoint>> {
        tlog::checkpoints(&self.pool, after, limit).await
    }

    async fn log_access(&self, entries: Vec<AccessEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        activity::log_access(&self.pool, entries).await
    }

    async fn access_log(
        &self,
        subject: &SubjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRecord>> {
        activity::access_log(&self.pool, subject, before.unwrap_or(i64::MAX), limit).await
    }

    async fn add_check_counts(&self, counts: Vec<(SubjectId, String, u64, Timestamp)>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        activity::add_check_counts(&self.pool, counts).await
    }

    async fn check_counts(&self, subject: &SubjectId) -> Result<Vec<(String, u64, Timestamp)>> {
        activity::check_counts(&self.pool, subject).await
    }

    async fn history(&self, subject: &SubjectId, after: u64, limit: u32) -> Result<Vec<Event>> {
        ledger::history(&self.pool, subject, after, limit).await
    }

    async fn history_newest(
        &self,
        subject: &SubjectId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        ledger::history_newest(&self.pool, subject, before, limit).await
    }

    async fn current(&self, subject: &SubjectId) -> Result<Vec<Event>> {
        ledger::current(&self.pool, subject).await
    }

    async fn current_page(&self, after: u64, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        ledger::current_page(&self.pool, after, limit).await
    }

    async fn save_engine_image(&self, covers: u64, image: &[u8]) -> Result<()> {
        images::save(&self.pool, covers, image).await
    }

    async fn latest_engine_image(&self) -> Result<Option<(u64, Vec<u8>)>> {
        images::latest(&self.pool).await
    }

    async fn pseudonym_page(&self, after: &str, limit: u32) -> Result<Vec<(String, SubjectId)>> {
        images::pseudonym_page(&self.pool, after, limit).await
    }

    async fn subject_events_page(&self, after: u64, limit: u32) -> Result<Vec<(Option<SubjectId>, Event)>> {
        ledger::subject_events_page(&self.pool, after, limit).await
    }

    async fn first_lines(
        &self,
        pseudonyms: Vec<String>,
        since: Timestamp,
        history: bool,
    ) -> Result<Vec<(String, u64)>> {
        if pseudonyms.is_empty() {
            return Ok(Vec::new());
        }
        ledger::first_lines(&self.pool, &pseudonyms, since, history).await
    }

    async fn events_page(&self, after: u64, limit: u32) -> Result<Vec<Event>> {
        ledger::events_page(&self.pool, after, limit).await
    }

    async fn ledger_head(&self) -> Result<LedgerHead> {
        ledger::ledger_head(&self.pool).await
    }

    async fn enqueue(&self, subject: &SubjectId, messages: Vec<OutboxMessage>) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        outbox::enqueue(&self.pool, &self.filter, subject, messages).await
    }

    async fn create_destination(&self, destination: NewDestination) -> Result<()> {
        outbox::create_destination(&self.pool, destination).await
    }

    async fn destinations(&self) -> Result<Vec<DestinationRecord>> {
        outbox::destinations(&self.pool).await
    }

    async fn destination(&self, id: &str) -> Result<Option<DestinationRecord>> {
        outbox::destination_by_id(&self.pool, id).await
    }

    async fn destination_secret(&self, id: &str) -> Result<Option<Vec<u8>>> {
        outbox::destination_secret(&self.pool, id).await
    }

    async fn update_destination(&self, id: &str, patch: DestinationPatch) -> Result<bool> {
        outbox::update_destination(&self.pool, id, patch).await
    }

    async fn delete_destination(&self, id: &str) -> Result<bool> {
        outbox::delete_destination(&self.pool, id).await
    }

    async fn fan_out(&self, destination_id: &str, matches: &EventMatcher, limit: u32) -> Result<u64> {
        outbox::fan_out(&self.pool, destination_id, matches, limit).await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        outbox::claim(&self.pool, now, lease_end(now, lease), limit).await
    }

    async fn complete_delivery(
        &self,
        destination_id: &str,
        outbox_id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<()> {
        outbox::complete_many(&self.pool, vec![(destination_id.to_owned(), outbox_id, outcome)]).await
    }

    async fn complete_deliveries(&self, outcomes: Vec<(String, i64, DeliveryOutcome)>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        outbox::complete_many(&self.pool, outcomes).await
    }

    async fn deliveries(
        &self,
        destination_id: &str,
        status: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        outbox::deliveries(&self.pool, destination_id, status, after, limit).await
    }

    async fn destination_lag(&self, destination_id: &str, now: Timestamp) -> Result<Option<f64>> {
        outbox::destination_lag(&self.pool, destination_id, now).await
    }

    async fn replay_dead_letter(&self, destination_id: &str, outbox_id: i64, now: Timestamp) -> Result<bool> {
        outbox::replay_dead_letter(&self.pool, destination_id, outbox_id, now).await
    }

    async fn replay(
        &self,
        destination_id: &str,
        from: ReplayFrom,
        not_before: Timestamp,
        matches: &EventMatcher,
    ) -> Result<u64> {
        outbox::replay(&self.pool, destination_id, from, not_before, matches).await
    }

    async fn prune_outbox(&self, after: i64, not_before: Timestamp, limit: u32) -> Result<OutboxPruned> {
        outbox::prune(&self.pool, after, not_before, limit).await
    }

    async fn outbox_lag(&self, now: Timestamp) -> Result<Option<f64>> {
        outbox::outbox_lag(&self.pool, now).await
    }

    async fn due_expiries(&self, now: Timestamp, limit: u32) -> Result<Vec<(SubjectId, Event)>> {
        ledger::due_expiries(&self.pool, now, limit).await
    }

    async fn try_lease(&self, name: &str, holder: &str, until: Timestamp, now: Timestamp) -> Result<bool> {
        meta::try_lease(&self.pool, name, holder, until, now).await
    }

    async fn dead_letters(&self) -> Result<u64> {
        outbox::dead_letters(&self.pool).await
    }

    fn change_signals(&self) -> Option<watch::Receiver<u64>> {
        Some(self.signals.clone())
    }

    async fn close(&self) {
        let sender = self.appends.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(sender);
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer {
            // The writer finishes the queued groups once every sender is gone.
            let _ = writer.await;
        }
        let listener = self.listener.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(listener) = listener {
            listener.abort();
        }
        self.pool.close().await;
    }
}
