//! How long the operator console's overview takes with 1,000,000 subjects and 10,000,000 events: the
//! median of `GET /console?range=…` (7 days, 30 days, 12 months) over HTTP on loopback, signed in, from the
//! request's start to the last byte of the page.
//!
//! The server runs in-process on a fresh embedded store. Its engine holds 1,000,000 subjects (one answer
//! each, spread over the consent purposes and actions), tallied once as the consent gauges' worker does
//! (that time is reported too). The rollups are seeded directly with counters that add up to 10,000,000
//! events over the last 366 days (every consent purpose, every day, grants, refusals, withdrawals and GPC
//! opt-outs): what the rollup worker would have folded from such a ledger, and all a view reads. Appending
//! ten million real events first would take far longer than the view and change nothing it does. The check
//! counters get a row per purpose and day (what the check workers add), and the store holds 3,660
//! requests received over the year (10 a day), which the requests chart counts by indexed range reads.
//!
//! Run: `cargo bench -p consentry-server --bench console` (`CONSENTRY_BENCH_SUBJECTS`,
//! `CONSENTRY_BENCH_EVENTS` and `CONSENTRY_BENCH_ROUNDS` change the sizes). The run exits 0 whatever it
//! measures.

use std::time::{Duration, Instant};

use consentry_core::{Action, Event, Scope, Timestamp};
use consentry_server::Config;
use consentry_service::console::rollups::{GPC, day_of};
use consentry_store::requests::{NewRequest, RequestKind};
use consentry_store::{PurposeChecks, RollupRow};
use tokio::net::TcpListener;

const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklmn";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn event(seq: u64, purpose: &str, action: Action) -> Event {
    Event {
        evidence: None,
        occurred_at: None,
        jurisdiction: None,
        seq,
        pseudonym: String::new(),
        purpose: purpose.to_owned(),
        action,
        scope: Scope::default(),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: "key:bench".into(),
        recorded_at: Timestamp::now(),
        expires_at: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// `name=value` of the cookie `name` a response sets.
fn cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with(&prefix)))
        .map(str::to_owned)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let subjects = env("CONSENTRY_BENCH_SUBJECTS", 1_000_000);
    let events = env("CONSENTRY_BENCH_EVENTS", 10_000_000);
    let rounds = env("CONSENTRY_BENCH_ROUNDS", 31).max(1) as usize;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data: dir.path().to_path_buf(),
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let opened = rt.block_on(consentry_server::open(config)).expect("open");
    let state = opened.state;

    // The engine: one answer per subject.
    let purposes: Vec<String> =
        state.engine.consent_tally(Timestamp::now()).into_iter().map(|t| t.purpose).collect();
    let actions = [Action::Grant, Action::Grant, Action::Deny, Action::Withdraw];
    let started = Instant::now();
    for i in 0..subjects {
        let purpose = &purposes[(i as usize) % purposes.len()];
        let e = event(i + 1, purpose, actions[(i as usize / purposes.len()) % actions.len()]);
        state.engine.apply(&format!("subject-{i:07}"), &e).expect("apply");
    }
    println!("engine: {subjects} subjects loaded in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    state.metrics.set_consents(state.engine.consent_tally(Timestamp::now()));
    println!(
        "tally of {} consent purposes (the gauges' worker, off the request path): {:.0} ms",
        purposes.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    // The rollups: 10,000,000 events over the last 366 days.
    let today = day_of(Timestamp::now());
    let metrics = [Action::Grant.as_str(), Action::Deny.as_str(), Action::Withdraw.as_str(), GPC];
    let cells = 366 * purposes.len() as u64 * metrics.len() as u64;
    let mut rows = Vec::with_capacity(cells as usize);
    let mut left = events;
    for d in 0..366 {
        for p in &purposes {
            for m in metrics {
                let count = (events / cells).min(left);
                left -= count;
                rows.push(RollupRow { day: today - d, purpose: p.clone(), metric: m.to_owned(), count });
            }
        }
    }
    if let Some(last) = rows.last_mut() {
        last.count += left;
    }
    let total: u64 = rows.iter().map(|r| r.count).sum();
    rt.block_on(state.store.add_rollups(0, events, rows)).expect("seed the rollups");
    println!("rollups: {total} events in {cells} day counters");
    let checks: Vec<PurposeChecks> = (0..366)
        .flat_map(|d| {
            purposes.iter().map(move |p| PurposeChecks {
                day: today - d,
                purpose: p.clone(),
                checks: 1_000_000,
                denied: 250_000,
            })
        })
        .collect();
    let n = checks.len();
    rt.block_on(state.store.add_purpose_checks(checks)).expect("seed the check counters");
    let started = Instant::now();
    let requests = env("CONSENTRY_BENCH_REQUESTS", 3_660);
    rt.block_on(async {
        for i in 0..requests {
            let received_at = Timestamp::now().plus_seconds(-((i * 86_400 / 10) as i64));
            let subject =
                consentry_core::SubjectId::new(format!("subject-{:07}", i % subjects.max(1))).expect("id");
            let request = NewRequest {
                id: format!("req_{:016}", requests - i),
                subject,
                kind: if i % 2 == 0 { RequestKind::Access } else { RequestKind::Objection },
                details: None,
                received_at,
                destinations: Vec::new(),
                actor: "key:bench".into(),
                messages: Vec::new(),
            };
            state.store.create_request(request).await.expect("seed a request");
        }
    });
    println!(
        "check counters: {n} rows; requests: {requests} over the year, seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let token = tokio_util::sync::CancellationToken::new();
    let server = rt.spawn(consentry_server::serve(state.clone(), listener, token.clone()));

    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        // Sign in as a person would: the form, then the key.
        let form = client.get(format!("{base}/console/sign-in")).send().await.expect("sign-in form");
        let login = cookie(form.headers(), "consentry_console_login").expect("the form's cookie");
        let text = form.text().await.expect("form");
        let at = text.find("name=\"csrf\" value=\"").expect("csrf") + 19;
        let csrf = &text[at..at + text[at..].find('"').expect("end")];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf), ("key", ADMIN_KEY)])
            .finish();
        let signed = client
            .post(format!("{base}/console/sign-in"))
            .header("cookie", login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("sign in");
        let session = cookie(signed.headers(), "consentry_console").expect("a session");
        for range in ["7d", "30d", "12m"] {
            let mut times = Vec::with_capacity(rounds);
            let mut size = 0;
            for round in 0..rounds + 3 {
                let started = Instant::now();
                let page = client
                    .get(format!("{base}/console?range={range}"))
                    .header("cookie", &session)
                    .send()
                    .await
                    .expect("overview");
                assert_eq!(page.status(), 200);
                let body = page.bytes().await.expect("body");
                let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                // The first three warm the caches.
                if round >= 3 {
                    times.push(elapsed);
                }
                size = body.len();
            }
            let p90 = {
                let mut t = times.clone();
                t.sort_by(f64::total_cmp);
                t[(t.len() * 9 / 10).min(t.len() - 1)]
            };
            println!(
                "GET /console?range={range}: median {:.1} ms, p90 {p90:.1} ms over {rounds} views ({} kB)",
                median(times),
                size / 1024
            );
        }
    });
    token.cancel();
    let _ = rt.block_on(server);
}
