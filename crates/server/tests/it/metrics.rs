//! `/metrics` in the format the scraper asks for, with a HELP and TYPE for every sample, check counters
//! without impossible (allowed, reason) pairs, and the per-purpose consent gauges.

use std::time::{Duration, Instant};

use consentry_core::Reason;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, withdraw};

both_backends!(
    metrics_speak_prometheus_text_unless_openmetrics_is_asked_for,
    checks_are_counted_by_reason_without_impossible_pairs,
    consent_gauges_count_subjects_per_purpose,
);

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Scrapes `/metrics` with `accept` (none when empty); returns the content type and the text.
async fn scrape(s: &TestServer, accept: &str) -> (String, String) {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut request = client.get(format!("{}/metrics", s.base));
    if !accept.is_empty() {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (content_type, response.text().await.expect("body"))
}

/// The family a sample line belongs to in the Prometheus text format: its name, or for a histogram's
/// `_bucket`, `_sum` and `_count` the name without them when `text` types that as a histogram.
fn family_of<'a>(sample: &'a str, text: &str) -> &'a str {
    let name = sample.split(['{', ' ']).next().unwrap_or(sample);
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && text.lines().any(|l| l == format!("# TYPE {base} histogram"))
        {
            return base;
        }
    }
    name
}

async fn metrics_speak_prometheus_text_unless_openmetrics_is_asked_for(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("metrics-format", &grant("marketing.direct", &["email"])).await;
    s.check("metrics-format", "marketing.direct", Some("email")).await;

    for accept in ["", "*/*", "text/plain", "application/openmetrics-text;version=2.0.0,text/plain;q=0.5"] {
        let (content_type, text) = scrape(&s, accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8", "Accept: {accept:?}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "OpenMetrics lines in 0.0.4:\n{text}");
        // Every sample has its family's HELP and TYPE (promtool's "no help text" lint).
        for sample in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let family = family_of(sample, &text);
            let help = format!("# HELP {family} ");
            assert!(text.lines().any(|l| l.starts_with(&help)), "no HELP for {family}:\n{text}");
            assert!(
                text.lines().any(|l| l.starts_with(&format!("# TYPE {family} "))),
                "no TYPE for {family}"
            );
        }
        for counter in [
            "consentry_checks_total",
            "consentry_deliveries_total",
            "consentry_http_requests_total",
            "consentry_ledger_appends_total",
        ] {
            assert!(text.contains(&format!("# HELP {counter} ")), "{counter} without HELP:\n{text}");
            assert!(text.contains(&format!("# TYPE {counter} counter")), "{counter} without TYPE:\n{text}");
        }
    }

    for accept in
        [PROMETHEUS_ACCEPT, "application/openmetrics-text", "application/openmetrics-text; version=1.0.0"]
    {
        let (content_type, text) = scrape(&s, accept).await;
        assert_eq!(
            content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "Accept: {accept}"
        );
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends in # EOF:\n{text}");
        assert!(text.contains("# TYPE consentry_checks counter"), "{text}");
        assert!(text.contains("consentry_checks_total{"), "{text}");
    }
}

async fn checks_are_counted_by_reason_without_impossible_pairs(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("pairs", &grant("marketing.direct", &["email"])).await;
    assert_eq!(s.check("pairs", "marketing.direct", Some("email")).await["reason"], "granted");
    assert_eq!(s.check("pairs", "marketing.direct", Some("sms")).await["reason"], "not_covered");
    assert_eq!(s.check("nobody", "marketing.direct", None).await["reason"], "no_consent");
    let (_, text) = scrape(&s, "").await;
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("consentry_checks_total{")) {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\"")).expect("label") + name.len() + 2;
            line[start..].split('"').next().expect("value").to_owned()
        };
        let reason = Reason::ALL.into_iter().find(|r| r.as_str() == label("reason")).expect("a known reason");
        assert_eq!(label("allowed"), reason.is_allowed().to_string(), "impossible pair: {line}");
        seen.push(reason);
    }
    assert_eq!(seen.len(), Reason::ALL.len(), "one series per reason:\n{text}");
    for (reason, count) in [("granted", 1), ("not_covered", 1), ("no_consent", 1), ("withdrawn", 0)] {
        let allowed = reason == "granted";
        let series = format!("consentry_checks_total{{allowed=\"{allowed}\",reason=\"{reason}\"}} {count}");
        assert!(text.lines().any(|l| l == series), "{series} missing:\n{text}");
    }
}

async fn consent_gauges_count_subjects_per_purpose(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let unscoped = json!({"notice": "marketing.direct", "collection_point": "web-signup",
                          "changes": [{"purpose": "marketing.direct", "action": "grant"}]});
    s.record("gauge-all", &unscoped).await;
    s.record("gauge-email", &grant("marketing.direct", &["email"])).await;
    s.record("gauge-gone", &unscoped).await;
    s.record("gauge-gone", &withdraw("marketing.direct")).await;
    // California lets a sharing purpose run until the person opts out: counted as such, not as no_consent.
    s.put("/v1/subjects/gauge-ca/jurisdiction", ADMIN_KEY, &json!({"jurisdiction": "US-CA"}), 200).await;
    let expected = [
        ("third_party.sharing", "not_opted_out", 1),
        ("third_party.sharing", "no_consent", 3),
        ("marketing.direct", "granted", 1),
        ("marketing.direct", "not_covered", 1),
        ("marketing.direct", "withdrawn", 1),
        ("marketing.direct", "no_consent", 1),
        // A grant of a purpose under `marketing` says nothing about `marketing` itself.
        ("marketing", "no_consent", 4),
        ("marketing", "granted", 0),
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let (_, text) = scrape(&s, "").await;
        let all = expected.iter().all(|(purpose, state, count)| {
            text.lines().any(|l| {
                l == format!("consentry_consents{{purpose=\"{purpose}\",state=\"{state}\"}} {count}")
            })
        });
        if all {
            break text;
        }
        assert!(Instant::now() < deadline, "the gauges never showed {expected:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("# TYPE consentry_consents gauge"), "{text}");
    let series: Vec<&str> = text.lines().filter(|l| l.starts_with("consentry_consents{")).collect();
    // Purposes of the catalogue only, never a subject id.
    assert!(series.iter().all(|l| !l.contains("gauge-")), "{series:?}");
    assert!(!series.iter().any(|l| l.contains("purpose=\"service")), "consent purposes only: {series:?}");
}
