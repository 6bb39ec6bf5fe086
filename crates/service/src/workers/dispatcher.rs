//! Delivers outbox events to destinations: at least once, in order per subject and destination.
//!
//! Each round: fan new outbox rows out to every destination whose filter matches (a per-destination
//! cursor in the store), claim due deliveries under a lease (the store hands out only a subject's oldest
//! pending delivery per destination, so one stuck event holds back that subject's later events for that
//! destination and nothing else; on PostgreSQL `FOR UPDATE SKIP LOCKED` keeps nodes apart), send them
//! concurrently, and record each outcome: delivered, retry after the next backoff wait (with jitter), or
//! dead-lettered after the last. A round runs when a write wakes the dispatcher and at least every 250 ms.
//!
//! Every connection goes through the operator's [`AddressPolicy`] (`allow_private_destinations`):
//! webhooks through the HTTP client's resolver, NATS and MQTT by resolving the broker's host here,
//! checking it and handing the client the checked address.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentry_core::Timestamp;
use consentry_store::{ClaimedDelivery, DeliveryOutcome, DestinationRecord, StoreError};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::egress::{AddressPolicy, Resolver, literal_ip};
use crate::sinks::{MqttSink, NatsSink, OutgoingEvent, Sink, SinkError, WebhookSink};
use crate::state::Services;

const POLL: Duration = Duration::from_millis(250);
/// How often the outbox's lag and dead-letter gauges are read again.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
const LEASE: Duration = Duration::from_secs(60);
const FAN_OUT_PAGE: u32 = 1000;
const CLAIM: u32 = 256;

/// Event types a destination receives only when its filter names them exactly: `*` and prefix patterns
/// such as `consent.*` leave them out, so a bulk import's history does not flood destinations that did not
/// ask. (The changes an import puts in force go out as ordinary `consent.<action>` events as well.)
pub const EXACT_ONLY: [&str; 1] = [crate::events::IMPORTED_TYPE];

/// Whether an event type matches a destination's filter: `*`, a prefix pattern `consent.*`, or exact
/// (the only way to receive the [`EXACT_ONLY`] types).
pub fn type_matches(patterns: &[String], event_type: &str) -> bool {
    let exact_only = EXACT_ONLY.contains(&event_type);
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(_) if exact_only => false,
        Some("") => true,
        Some(prefix) => event_type.starts_with(prefix),
        None => p == event_type,
    })
}

/// The wait before the next attempt after `attempts` failed ones; `None` once the schedule is used up.
pub fn next_wait(backoff_ms: &[u64], attempts: u32, jitter: f64) -> Option<Duration> {
    let base = *backoff_ms.get(attempts.checked_sub(1)? as usize)?;
    Some(Duration::from_millis(base + (base as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64))
}

fn jitter() -> f64 {
    consentry_store::random_bytes::<4>()
        .map_or(0.5, |b| f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX))
}

struct CachedSink {
    fingerprint: String,
    sink: Result<Arc<dyn Sink>, SinkError>,
    made: Instant,
}

/// How long a failed connection is remembered before the next delivery tries to connect again.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

fn fingerprint(d: &DestinationRecord) -> String {
    format!("{}|{}|{}", d.kind, d.url, d.target.as_deref().unwrap_or(""))
}

/// How sends reach the network: the HTTP client (whose resolver applies the policy) and the policy itself.
#[derive(Clone)]
struct Egress {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

type SinkSlot = Arc<tokio::sync::Mutex<Option<CachedSink>>>;

/// Sinks by destination, each behind its own lock: a slow connection holds up only its own destination.
#[derive(Default, Clone)]
struct Sinks(Arc<std::sync::Mutex<HashMap<String, SinkSlot>>>);

impl Sinks {
    fn slot(&self, id: &str) -> SinkSlot {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(id.to_owned()).or_default())
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|id, _| keep(id));
    }
}

/// Runs until `shutdown`: a round whenever a write wakes it, a send finishes, or 250 ms pass. Sends run as
/// tasks of their own, so a receiver that hangs until its timeout holds up nothing but its own deliveries.
pub async fn run(state: Services, wake: Arc<Notify>, shutdown: CancellationToken) {
    let sinks = Sinks::default();
    // Validated when the configuration was loaded.
    let policy = Arc::new(AddressPolicy::parse(&state.config.allow_private_destinations).unwrap_or_default());
    // Standard Webhooks counts a redirect as a failure: never follow one. No proxy: the address policy can
    // only hold for connections this node makes itself.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(Resolver(Arc::clone(&policy))))
        .build()
        .unwrap_or_default();
    let egress = Egress { http, policy };
    let mut inflight: JoinSet<()> = JoinSet::new();
    let outcomes = Outcomes::default();
    let mut pruned: Option<Instant> = None;
    let mut gauges: Option<Instant> = None;
    loop {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            prune_attempts(&state).await;
        }
        while let Some(done) = inflight.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a delivery task failed");
            }
        }
        // Before claiming: a recorded delivery frees its subject's next event.
        record_outcomes(&state, &outcomes).await;
        let room = u32::try_from(CLAIM as usize - inflight.len().min(CLAIM as usize)).unwrap_or(0);
        let claimed = if room == 0 {
            0
        } else {
            tokio::select! {
                () = shutdown.cancelled() => break,
                r = round(&state, &sinks, &egress, &mut inflight, room, &wake, &outcomes) => r.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "delivery round failed; retrying");
                    0
                }),
            }
        };
        // The gauges at most every GAUGES_EVERY, not after every write (two reads each time).
        if gauges.is_none_or(|at| at.elapsed() >= GAUGES_EVERY) {
            gauges = Some(Instant::now());
            read_gauges(&state).await;
        }
        if claimed > 0 {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Sends still running stop here; their leases run out and they are tried again: at least once.
    inflight.abort_all();
    while inflight.join_next().await.is_some() {}
    record_outcomes(&state, &outcomes).await;
}

async fn sink_for(
    state: &Services,
    d: &DestinationRecord,
    slot: &tokio::sync::Mutex<Option<CachedSink>>,
    egress: &Egress,
) -> Result<Arc<dyn Sink>, SinkError> {
    let Egress { http, policy } = egress;
    let mut cached = slot.lock().await;
    let fp = fingerprint(d);
    if let Some(c) = cached
        .as_ref()
        .filter(|c| c.fingerprint == fp && (c.sink.is_ok() || c.made.elapsed() < RECONNECT_AFTER))
    {
        return c.sink.clone();
    }
    let target = d.target.clone().unwrap_or_default();
    let sink: Result<Arc<dyn Sink>, SinkError> = match d.kind.as_str() {
        "webhook" => match state.store.destination_secret(&d.id).await {
            Ok(Some(secret)) => Ok(Arc::new(WebhookSink::new(
                d.url.clone(),
                secret,
                Duration::from_secs(state.config.webhook_timeout_secs),
                http.clone(),
                Arc::clone(policy),
            ))),
            Ok(None) => Err(SinkError::Retryable("the webhook has no signing secret".into())),
            Err(e) => Err(SinkError::Retryable(e.to_string())),
        },
        "nats" => match pin_brokers(policy, &d.url).await {
            Ok(url) => NatsSink::connect(&url, &target).await.map(|s| Arc::new(s) as Arc<dyn Sink>),
            Err(e) => Err(e),
        },
        // One MQTT session per node and destination: nodes sharing a client id would log each other out.
        "mqtt" => match pin_brokers(policy, &d.url).await {
            Ok(url) => MqttSink::connect(&url, &target, &format!("consentry-{}-{}", d.id, state.node_id))
                .await
                .map(|s| Arc::new(s) as Arc<dyn Sink>),
            Err(e) => Err(e),
        },
        other => Err(SinkError::Permanent(format!("unknown destination kind {other}"))),
    };
    let sink = sink.map_err(|e| coarse(&d.id, e));
    *cached = Some(CachedSink { fingerprint: fp, sink: sink.clone(), made: Instant::now() });
    sink
}

/// The NATS or MQTT URL `url` (NATS takes a comma-separated list) with each broker's host replaced by the
/// one address it resolves to that `policy` permits, so the client connects to exactly what was checked
/// and never resolves the name again. A TLS URL keeps its name (the certificate is checked against it) once
/// the name is checked: a rebinding name cannot then present a certificate an internal service holds.
async fn pin_brokers(policy: &AddressPolicy, url: &str) -> Result<String, SinkError> {
    let invalid = || SinkError::Permanent("invalid_url".to_owned());
    let mut pinned = Vec::new();
    for one in url.split(',') {
        let mut parsed = reqwest::Url::parse(one.trim()).map_err(|_| invalid())?;
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(invalid)?.to_owned();
        let (tls, default_port) = match parsed.scheme() {
            "tls" => (true, 4222),
            "mqtts" | "ssl" => (true, 8883),
            "mqtt" | "tcp" => (false, 1883),
            _ => (false, 4222),
        };
        let port = parsed.port().unwrap_or(default_port);
        // `2130706433` is 127.0.0.1 to the resolver too, but read it as the URL standard does first.
        let name = literal_ip(&host).map_or(host, |ip| ip.to_string());
        let addr = match policy.pin(&name, port).await {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(SinkError::Retryable("connection_failed".to_owned())),
            Err(_) => return Err(SinkError::Permanent("refused_address".to_owned())),
        };
        if !tls {
            parsed.set_ip_host(addr.ip()).map_err(|()| invalid())?;
            parsed.set_port(Some(port)).map_err(|()| invalid())?;
        }
        pinned.push(parsed.to_string());
    }
    Ok(pinned.join(","))
}

/// A failure as deliveries record it: network errors only as `timeout`, `connection_failed`,
/// `http_status <code>` or `refused_address`, so that reading deliveries does not tell an open port from
/// a closed one. The details go to the log.
fn coarse(destination: &str, error: SinkError) -> SinkError {
    match error {
        SinkError::Retryable(detail)
            if !(matches!(detail.as_str(), "timeout" | "connection_failed")
                || detail.starts_with("http_status")) =>
        {
            tracing::warn!(destination, detail, "a delivery failed");
            SinkError::Retryable("connection_failed".to_owned())
        }
        other => other,
    }
}

/// Fans out, claims up to `room` deliveries and starts a send task for each; returns how many it claimed.
async fn round(
    state: &Services,
    sinks: &Sinks,
    egress: &Egress,
    inflight: &mut JoinSet<()>,
    room: u32,
    wake: &Arc<Notify>,
    outcomes: &Outcomes,
) -> Result<usize, StoreError> {
    let destinations = state.store.destinations().await?;
    sinks.retain(|id| destinations.iter().any(|d| d.id == id));
    for d in destinations.iter().filter(|d| !d.paused) {
        let patterns = d.event_types.clone();
        let matches = move |t: &str| type_matches(&patterns, t);
        while state.store.fan_out(&d.id, &matches, FAN_OUT_PAGE).await? == u64::from(FAN_OUT_PAGE) {}
    }
    // With no destination taking deliveries there is nothing to claim: no claim runs on the store's writer
    // after every write of a node that propagates nowhere.
    let claimed = if destinations.iter().any(|d| !d.paused) {
        state.store.claim_deliveries(Timestamp::now(), LEASE, room).await?
    } else {
        Vec::new()
    };
    let count = claimed.len();
    for c in claimed {
        let Some(d) = destinations.iter().find(|d| d.id == c.destination_id).cloned() else { continue };
        let (state, slot, egress, wake) =
            (state.clone(), sinks.slot(&d.id), egress.clone(), Arc::clone(wake));
        let outcomes = Arc::clone(outcomes);
        inflight.spawn(async move {
            let sink = sink_for(&state, &d, &slot, &egress).await;
            let outcome = deliver(&state, sink, c).await;
            outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(outcome);
            // The subject's next event for this destination may now go.
            wake.notify_one();
        });
    }
    Ok(count)
}

/// Reads the outbox's lag and dead letters into their gauges.
async fn read_gauges(state: &Services) {
    let m = &state.metrics;
    if let Ok(lag) = state.store.outbox_lag(Timestamp::now()).await {
        m.outbox_lag.set(lag.unwrap_or(0.0));
    }
    if let Ok(dead) = state.store.dead_letters().await {
        m.dead_letters.set(dead as i64);
    }
}

/// How often the attempt buckets older than [`KEEP_ATTEMPTS_MINUTES`] are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Attempt buckets (a destination's minute) are kept two days: the console shows the last hour and day.
const KEEP_ATTEMPTS_MINUTES: i64 = 2 * 24 * 60;

/// Deletes the attempt buckets older than two days, so the table stays bounded.
async fn prune_attempts(state: &Services) {
    let before = consentry_store::minute_of(Timestamp::now()) - KEEP_ATTEMPTS_MINUTES;
    if let Err(e) = state.store.prune_delivery_attempts(before).await {
        tracing::warn!(error = %e, "could not delete old delivery attempt buckets; trying again in an hour");
    }
}

/// Outcomes of finished sends, recorded in one transaction per round.
type Outcomes = Arc<std::sync::Mutex<Vec<(String, i64, DeliveryOutcome)>>>;

/// Records the outcomes gathered so far. On failure the leases run out and the sends are repeated: at
/// least once.
async fn record_outcomes(state: &Services, outcomes: &Outcomes) {
    let batch = std::mem::take(&mut *outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    if let Err(e) = state.store.complete_deliveries(batch).await {
        tracing::warn!(error = %e, "could not record delivery outcomes; they will be sent again");
    }
}

async fn deliver(
    state: &Services,
    sink: Result<Arc<dyn Sink>, SinkError>,
    c: ClaimedDelivery,
) -> (String, i64, DeliveryOutcome) {
    let result = match (sink, crate::events::claimed_event(&c)) {
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(SinkError::Permanent(e)),
        (Ok(sink), Ok(event)) => {
            let event = event.with_subject(c.subject.as_ref());
            let body = event.to_json().into_bytes();
            let sent =
                sink.send(&OutgoingEvent { id: event.id, event_type: c.event_type.clone(), body }).await;
            sent.map_err(|e| coarse(&c.destination_id, e))
        }
    };
    let attempts = c.attempts + 1;
    let (outcome, result_label) = match result {
        Ok(()) => (DeliveryOutcome::Delivered { at: Timestamp::now() }, "delivered"),
        Err(SinkError::Permanent(error)) => (DeliveryOutcome::Dead { error }, "dead"),
        Err(SinkError::Retryable(error)) => {
            match next_wait(&state.config.delivery_backoff_ms, attempts, jitter()) {
                Some(wait) => (
                    DeliveryOutcome::Retry {
                        error,
                        next_attempt_at: Timestamp::now().plus_micros(wait.as_micros() as i64),
                    },
                    "retry",
                ),
                None => (DeliveryOutcome::Dead { error }, "dead"),
            }
        }
    };
    state.metrics.record_delivery(&c.destination_id, result_label);
    (c.destination_id, c.outbox_id, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let p = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(type_matches(&p(&["consent.*"]), "consent.granted"));
        assert!(!type_matches(&p(&["consent.*"]), "request.created"));
        assert!(type_matches(&p(&["*"]), "request.created"));
        assert!(type_matches(&p(&["record.deleted", "consent.withdrawn"]), "consent.withdrawn"));
        // An import's events go only where they are named exactly.
        assert!(!type_matches(&p(&["*", "consent.*", "consent.imp*"]), "consent.imported"));
        assert!(type_matches(&p(&["consent.withdrawn", "consent.imported"]), "consent.imported"));
        assert!(!type_matches(&p(&["consent.withdrawn"]), "consent.withdrawnx"));
    }

    #[test]
    fn backoff_schedule() {
        let s = [5_000, 30_000];
        assert_eq!(next_wait(&s, 1, 0.0), Some(Duration::from_millis(5_000)));
        assert_eq!(next_wait(&s, 2, 1.0), Some(Duration::from_millis(36_000)));
        assert_eq!(next_wait(&s, 3, 0.5), None);
        assert_eq!(next_wait(&s, 0, 0.5), None);
    }
}
