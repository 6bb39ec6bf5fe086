//! Prometheus metrics, series prefixed `consentry_`. Labels carry routes, methods, statuses and decision
//! reasons, never subject ids or other personal data.

use consentry_core::Reason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    destination: String,
    result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    allowed: String,
    reason: String,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabels, Histogram>,
    /// Per reason, the counters for (denied, allowed), resolved once so a check only increments.
    checks: Vec<[Counter; 2]>,
    pub ledger_appends: Counter,
    pub commit_batch: Histogram,
    pub subjects: Gauge,
    deliveries: Family<DeliveryLabels, Counter>,
    pub outbox_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub dead_letters: Gauge,
    pub requests_overdue: Gauge,
    pub request_tasks_overdue: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("consentry");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        let http_latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_latency.clone(),
        );
        let check_family = Family::<CheckLabels, Counter>::default();
        registry.register("checks", "Consent checks by result and reason", check_family.clone());
        let checks = Reason::ALL
            .iter()
            .map(|r| {
                let get = |allowed: &str| {
                    check_family
                        .get_or_create(&CheckLabels { allowed: allowed.into(), reason: r.as_str().into() })
                        .clone()
                };
                [get("false"), get("true")]
            })
            .collect();
        let ledger_appends = Counter::default();
        registry.register("ledger_appends", "Ledger events appended", ledger_appends.clone());
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "ledger_commit_batch_events",
            "Ledger events per group commit",
            commit_batch.clone(),
        );
        let subjects = Gauge::default();
        registry.register("engine_subjects", "Subjects held by the decision engine", subjects.clone());
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register("deliveries", "Delivery attempts by destination id and result", deliveries.clone());
        let outbox_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "outbox_lag_seconds",
            "Age of the oldest outbox event not yet delivered to some destination",
            outbox_lag.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register("dead_letters", "Deliveries given up after the last retry", dead_letters.clone());
        let requests_overdue = Gauge::default();
        registry.register(
            "requests_overdue",
            "Open data subject requests past their deadline",
            requests_overdue.clone(),
        );
        let request_tasks_overdue = Gauge::default();
        registry.register(
            "request_tasks_overdue",
            "Downstream tasks still pending on overdue data subject requests",
            request_tasks_overdue.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            checks,
            ledger_appends,
            commit_batch,
            subjects,
            deliveries,
            outbox_lag,
            dead_letters,
            requests_overdue,
            request_tasks_overdue,
        }
    }

    pub fn record_check(&self, allowed: bool, reason: Reason) {
        if let Some(pos) = Reason::ALL.iter().position(|r| *r == reason) {
            self.checks[pos][usize::from(allowed)].inc();
        }
    }

    pub fn record_delivery(&self, destination: &str, result: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { destination: destination.into(), result: result.into() })
            .inc();
    }

    /// Counts and times one HTTP request by its route template (never the concrete path, which would
    /// carry subject ids).
    pub fn record_http(&self, route: String, method: String, status: u16, seconds: f64) {
        self.http_latency.get_or_create(&RouteLabels { route: route.clone() }).observe(seconds);
        self.http_requests.get_or_create(&HttpLabels { route, method, status }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
