//! Prometheus metrics, series prefixed `consentry_`. Labels carry routes, methods, statuses, decision
//! reasons and catalogue purposes, never subject ids or other personal data.
//!
//! The registry (prometheus-client) writes OpenMetrics 1.0. Most scrapers ask for that; for those that
//! do not, [`Format::Prometheus`] rewrites it to the Prometheus text format 0.0.4, which
//! prometheus-client does not write: there a counter family is named by its sample name (`…_total`, so
//! that every sample has its `HELP` and `TYPE`), and the OpenMetrics-only lines (`# UNIT`, `# EOF`) go.
//! No metric here has exemplars or `_created` samples, which 0.0.4 could not carry.

use std::sync::{Arc, PoisonError, RwLock};

use consentry_core::{PurposeTally, Reason};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
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

/// The exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` (version 1.0.0 or unversioned) at least as much as `text/plain`
    /// and `*/*`, else the Prometheus text format (also without an `Accept` header).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut open_metrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut version) = (1.0_f32, None);
            for param in parts {
                let Some((name, value)) = param.split_once('=') else { continue };
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(value.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            match media.as_str() {
                "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0") => {
                    open_metrics = open_metrics.max(q);
                }
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open_metrics > 0.0 && open_metrics >= text { Format::OpenMetrics } else { Format::Prometheus }
    }
}

/// The states `consentry_consents` counts: what a check of the whole purpose answers.
const CONSENT_STATES: [Reason; 12] = [
    Reason::Granted,
    Reason::NotOptedOut,
    Reason::NotCovered,
    Reason::NoConsent,
    Reason::Denied,
    Reason::Withdrawn,
    Reason::GpcOptOut,
    Reason::Expired,
    Reason::Objected,
    Reason::Restricted,
    Reason::GuardianRequired,
    Reason::ChildProtected,
];

/// The latest per-purpose consent counts, swapped whole so a scrape never sees half of an update.
#[derive(Debug, Default, Clone)]
struct ConsentGauges(Arc<RwLock<Vec<PurposeTally>>>);

impl Collector for ConsentGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tallies = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let gauge = Gauge::<i64>::default();
        let mut family = encoder.encode_descriptor(
            "consents",
            "Subjects per consent purpose by the state a check of the whole purpose answers \
             (granted; not_opted_out: allowed in an opt-out place, nobody opted out; not_covered: granted \
             for part of it only; no_consent: never decided; denied, withdrawn, gpc_opt_out, expired, \
             objected, restricted; guardian_required: a known child without a guardian's grant; \
             child_protected: sale or sharing for a known child)",
            None,
            gauge.metric_type(),
        )?;
        for tally in tallies.iter() {
            for state in CONSENT_STATES {
                let labels = [("purpose", tally.purpose.as_str()), ("state", state.as_str())];
                let count = i64::try_from(tally.counts[state.index()]).unwrap_or(i64::MAX);
                family.encode_family(&labels)?.encode_gauge(&count)?;
            }
        }
        Ok(())
    }
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabels, Histogram>,
    /// Per reason (by [`Reason::index`]), its counter, resolved once so a check only increments.
    checks: Vec<Counter>,
    pub ledger_appends: Counter,
    pub commit_batch: Histogram,
    pub subjects: Gauge,
    deliveries: Family<DeliveryLabels, Counter>,
    pub outbox_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub dead_letters: Gauge,
    pub requests_overdue: Gauge,
    pub request_tasks_overdue: Gauge,
    consents: ConsentGauges,
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
        registry.register("checks", "Consent checks by answer and reason", check_family.clone());
        // One series per reason, its `allowed` label from the reason itself: no impossible pair.
        let checks = Reason::ALL
            .iter()
            .map(|r| {
                let allowed = if r.is_allowed() { "true" } else { "false" };
                check_family
                    .get_or_create(&CheckLabels { allowed: allowed.into(), reason: r.as_str().into() })
                    .clone()
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
        let consents = ConsentGauges::default();
        registry.register_collector(Box::new(consents.clone()));
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
            consents,
        }
    }

    /// Counts one check by its reason (which says whether it allowed).
    pub fn record_check(&self, reason: Reason) {
        if let Some(counter) = self.checks.get(reason.index()) {
            counter.inc();
        }
    }

    /// The per-purpose counts of the last tally (what the consent gauges show, and the console's overview).
    pub fn consent_tallies(&self) -> Vec<PurposeTally> {
        self.consents.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the per-purpose consent gauges with `tallies` (from `Engine::consent_tally`).
    pub fn set_consents(&self, tallies: Vec<PurposeTally>) {
        *self.consents.0.write().unwrap_or_else(PoisonError::into_inner) = tallies;
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

    /// Every metric in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => to_prometheus_text(&out),
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics text to the Prometheus text format 0.0.4: a counter family's
/// `HELP` and `TYPE` name its `_total` samples, types 0.0.4 does not know become `untyped`, and `# UNIT`
/// and `# EOF` go. Sample lines are the same in both.
fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    // prometheus-client writes `# HELP` before `# TYPE`: hold it until the type says the name.
    let mut help: Option<(&str, &str)> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((_, text)) = help.take() {
                // OpenMetrics escapes `"` in HELP; 0.0.4 does not know that escape.
                out.push_str(&format!("# HELP {name} {}\n", text.replace("\\\"", "\"")));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use consentry_core::{PurposeTally, Reason};

    use super::{Format, Metrics};

    #[test]
    fn the_accept_header_picks_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, expected) in [
            (None, Format::Prometheus),
            (Some(""), Format::Prometheus),
            (Some("*/*"), Format::Prometheus),
            (Some("text/plain;version=0.0.4"), Format::Prometheus),
            (Some(prometheus), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (Some("Application/OpenMetrics-Text; version=\"1.0.0\""), Format::OpenMetrics),
            (Some("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.5"), Format::Prometheus),
            (Some("application/openmetrics-text;q=0"), Format::Prometheus),
            (Some("application/openmetrics-text;version=2.0.0"), Format::Prometheus),
            (Some("application/openmetrics-text;q=0.5,*/*;q=0.5"), Format::OpenMetrics),
        ] {
            assert_eq!(Format::negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn prometheus_text_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.record_check(Reason::Granted);
        m.ledger_appends.inc();
        m.record_delivery("dst_1", "delivered");
        m.record_http("/v1/check".into(), "POST".into(), 200, 0.001);
        let text = format!("\n{}", m.encode(Format::Prometheus));
        for counter in ["checks", "deliveries", "http_requests", "ledger_appends"] {
            assert!(text.contains(&format!("\n# HELP consentry_{counter}_total ")), "{counter}:\n{text}");
            assert!(
                text.contains(&format!("\n# TYPE consentry_{counter}_total counter\n")),
                "{counter}:\n{text}"
            );
        }
        assert!(text.contains("# TYPE consentry_http_request_duration_seconds histogram\n"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        let open = m.encode(Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n") && open.contains("# TYPE consentry_checks counter\n"), "{open}");
    }

    #[test]
    fn each_reason_has_one_check_series_with_its_answer() {
        let m = Metrics::new();
        for reason in Reason::ALL {
            m.record_check(reason);
        }
        let text = m.encode(Format::Prometheus);
        for reason in Reason::ALL {
            let series = format!(
                "consentry_checks_total{{allowed=\"{}\",reason=\"{}\"}} 1",
                reason.is_allowed(),
                reason.as_str()
            );
            assert!(text.lines().any(|l| l == series), "{series}:\n{text}");
        }
        let lines = text.lines().filter(|l| l.starts_with("consentry_checks_total{")).count();
        assert_eq!(lines, Reason::ALL.len(), "{text}");
    }

    #[test]
    fn consent_gauges_show_the_latest_tally() {
        let m = Metrics::new();
        let mut counts = [0; Reason::ALL.len()];
        counts[Reason::Granted.index()] = 7;
        counts[Reason::Withdrawn.index()] = 2;
        m.set_consents(vec![PurposeTally { purpose: "marketing".into(), counts }]);
        let text = m.encode(Format::Prometheus);
        assert!(text.contains("# HELP consentry_consents Subjects per consent purpose"), "{text}");
        assert!(text.contains("# TYPE consentry_consents gauge\n"), "{text}");
        assert!(text.contains("consentry_consents{purpose=\"marketing\",state=\"granted\"} 7\n"), "{text}");
        assert!(text.contains("consentry_consents{purpose=\"marketing\",state=\"withdrawn\"} 2\n"), "{text}");
        assert!(
            text.contains("consentry_consents{purpose=\"marketing\",state=\"no_consent\"} 0\n"),
            "{text}"
        );
        // A new tally replaces the old one whole: a purpose no longer in it goes.
        m.set_consents(vec![PurposeTally { purpose: "analytics".into(), counts }]);
        let text = m.encode(Format::OpenMetrics);
        assert!(!text.contains("purpose=\"marketing\""), "{text}");
        assert!(text.contains("consentry_consents{purpose=\"analytics\",state=\"granted\"} 7\n"), "{text}");
    }
}
