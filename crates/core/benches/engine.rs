//! Decision-engine benchmark: RSS growth per subject and `Engine::check` latency over 1M subjects, next to
//! a std `HashMap` lookup, and the same checks naming a jurisdiction (`US-CA`, where the default
//! catalogue's sharing and offers are opt-out) next to them. Run with `cargo bench -p consentry-core --bench engine`
//! (subjects: env `CONSENTRY_BENCH_SUBJECTS`, default 1000000).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use consentry_core::{
    Action, Basis, Catalog, CatalogDocument, Engine, Event, NewEvent, Query, Scope, Timestamp,
};

const ROUNDS: usize = 31;
const CHECKS_PER_ROUND: usize = 200_000;
const TARGET_CHECK_NS: f64 = 300.0;
const TARGET_BYTES_PER_SUBJECT: f64 = 150.0;
/// Checks naming a jurisdiction may cost at most this much more than the same checks naming none.
const TARGET_JURISDICTION_RATIO: f64 = 1.10;
const JURISDICTION: &str = "US-CA";

/// One kind of query in the mix, with the answer expected for a subject holding the three grants.
struct Kind {
    purpose: &'static str,
    category: Option<&'static str>,
    channel: Option<&'static str>,
    recipient: Option<&'static str>,
    allowed: bool,
}

const fn kind(
    purpose: &'static str,
    category: Option<&'static str>,
    channel: Option<&'static str>,
    recipient: Option<&'static str>,
    allowed: bool,
) -> Kind {
    Kind { purpose, category, channel, recipient, allowed }
}

const KINDS: [Kind; 16] = [
    // Allowed: covered by a grant, or a non-consent basis.
    kind("marketing.direct", None, Some("email"), None, true),
    kind("marketing.direct", Some("user.contact.email"), Some("email"), Some("email_service"), true),
    kind("marketing.direct", Some("user.contact.email"), Some("email"), None, true),
    kind("analytics", None, None, None, true),
    kind("analytics", Some("user.device.telemetry"), Some("in_app"), Some("analytics_provider"), true),
    kind("third_party.sharing", None, None, Some("ad_partners"), true),
    kind("third_party.sharing", Some("user.behavior.purchase_history"), None, Some("ad_partners"), true),
    kind("service.provision", Some("user.contact.address"), Some("postal"), None, true),
    // Denied: purpose not granted, scope not covered, or query wider than the grant.
    kind("marketing.personalised_offers", None, Some("email"), None, false),
    kind("marketing.personalised_offers", Some("user.behavior.purchase_history"), Some("push"), None, false),
    kind("marketing.personalised_offers", None, None, None, false),
    kind("marketing.direct", None, Some("sms"), None, false),
    kind("marketing.direct", None, None, None, false),
    kind("marketing", None, Some("email"), None, false),
    kind("third_party.sharing", None, None, None, false),
    kind("third_party", None, None, Some("ad_partners"), false),
];

/// xorshift64: cheap, deterministic, no dependency.
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Picks a subject index (about 10% unknown, i.e. `>= known`) and a query kind from one random draw.
fn pick(r: u64, known: usize, unknown: usize) -> (usize, usize) {
    let subject =
        if r % 100 < 10 { known + ((r >> 8) as usize % unknown) } else { (r >> 8) as usize % known };
    (subject, (r >> 48) as usize % KINDS.len())
}

fn rss_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| format!("/proc/self/statm: {e}"))?;
    let resident = statm.split_whitespace().nth(1).ok_or("/proc/self/statm: no resident field")?;
    let pages: u64 = resident.parse().map_err(|e| format!("/proc/self/statm: {e}"))?;
    Ok(pages * 4096)
}

fn subject_id(i: usize) -> String {
    format!("subject-{i:07}")
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The three grants every subject gives, each valid against the default catalogue.
fn grants() -> [(&'static str, Scope); 3] {
    [
        ("marketing.direct", Scope::new(vec![], strings(&["email"]), vec![])),
        ("analytics", Scope::default()),
        ("third_party.sharing", Scope::new(vec![], vec![], strings(&["ad_partners"]))),
    ]
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "target met" } else { "target missed" }
}

fn main() -> Result<(), String> {
    let subjects: usize = match std::env::var("CONSENTRY_BENCH_SUBJECTS") {
        Ok(v) => v.trim().parse().map_err(|e| format!("CONSENTRY_BENCH_SUBJECTS={v:?}: {e}"))?,
        Err(_) => 1_000_000,
    };
    if subjects == 0 {
        return Err("CONSENTRY_BENCH_SUBJECTS must be at least 1".into());
    }
    let unknown = (subjects / 10).max(1);

    let catalog = Catalog::validate(CatalogDocument::default_catalog())
        .map_err(|p| format!("default catalogue invalid: {p:?}"))?;
    let engine = Engine::new();
    engine.set_catalog(&catalog).map_err(|e| e.to_string())?;
    let grants = grants();
    for (purpose, scope) in &grants {
        catalog.check_change(purpose, Action::Grant, scope).map_err(|e| format!("grant {purpose}: {e}"))?;
    }

    let recorded_at = Timestamp::parse("2026-01-15T09:30:00Z").ok_or("bad timestamp literal")?;
    let now = recorded_at.plus_seconds(30 * 86_400);

    // Memory: RSS before and after loading every subject's three grants.
    let rss_before = rss_bytes()?;
    let load_start = Instant::now();
    let mut seq = 0u64;
    for i in 0..subjects {
        let subject = subject_id(i);
        for (purpose, scope) in &grants {
            seq += 1;
            let new = NewEvent {
                evidence: None,
                occurred_at: None,
                jurisdiction: None,
                purpose: (*purpose).to_owned(),
                action: Action::Grant,
                scope: scope.clone(),
                notice: Some((*purpose).to_owned()),
                notice_version: Some(1),
                notice_hash: None,
                collection_point: Some("web-signup".to_owned()),
                actor: "subject".to_owned(),
                expires_at: None,
            };
            let event = Event::place(new, seq, "p".to_owned(), recorded_at, "h".to_owned());
            engine.apply(&subject, &event).map_err(|e| e.to_string())?;
        }
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    let rss_after = rss_bytes()?;
    if engine.subject_count() != subjects {
        return Err(format!("engine holds {} subjects, expected {subjects}", engine.subject_count()));
    }
    let bytes_per_subject = rss_after.saturating_sub(rss_before) as f64 / subjects as f64;

    // Query inputs, built up front so the timed loops measure look-ups, not formatting.
    let ids: Vec<String> = (0..subjects + unknown).map(subject_id).collect();
    let reference: HashMap<String, u64> = ids[..subjects].iter().cloned().zip(0u64..).collect();

    // Sanity (untimed): every kind answers as expected for a known subject, and denies an unknown one.
    for k in &KINDS {
        for (subject, expected) in [(ids[0].as_str(), k.allowed), (ids[subjects].as_str(), false)] {
            let q = Query {
                subject,
                purpose: k.purpose,
                category: k.category,
                channel: k.channel,
                recipient: k.recipient,
                jurisdiction: None,
            };
            let d = engine.check(&q, now).map_err(|e| format!("{q:?}: {e}"))?;
            // Purposes on a basis other than consent are allowed without any statement.
            let basis = catalog.purpose(k.purpose).map(|p| p.basis);
            let expected = expected || (k.allowed && basis != Some(Basis::Consent));
            if d.allowed != expected {
                return Err(format!("{q:?}: got {d:?}, expected allowed={expected}"));
            }
        }
    }

    // Each next draw depends on the previous answer, so look-ups run one after another (latency, not
    // throughput), in both the engine loop and the reference loop.
    let check_round = |state: &mut u64, jurisdiction: Option<&str>| -> f64 {
        let mut x = *state;
        let mut allowed = 0u64;
        let start = Instant::now();
        for _ in 0..CHECKS_PER_ROUND {
            x = xorshift(x);
            let (s, k) = pick(x, subjects, unknown);
            let k = &KINDS[k];
            let q = Query {
                subject: &ids[s],
                purpose: k.purpose,
                category: k.category,
                channel: k.channel,
                recipient: k.recipient,
                jurisdiction,
            };
            let d = engine.check(black_box(&q), now);
            let ok = matches!(black_box(d), Ok(d) if d.allowed);
            allowed += u64::from(ok);
            x ^= u64::from(ok) << 63;
        }
        let ns = start.elapsed().as_nanos() as f64 / CHECKS_PER_ROUND as f64;
        black_box(allowed);
        *state = x;
        ns
    };
    let lookup_round = |state: &mut u64| -> f64 {
        let mut x = *state;
        let mut sum = 0u64;
        let start = Instant::now();
        for _ in 0..CHECKS_PER_ROUND {
            x = xorshift(x);
            let (s, _) = pick(x, subjects, unknown);
            let v = reference.get(black_box(ids[s].as_str())).copied();
            let v = black_box(v).unwrap_or(0);
            sum = sum.wrapping_add(v);
            x ^= (v & 1) << 63;
        }
        let ns = start.elapsed().as_nanos() as f64 / CHECKS_PER_ROUND as f64;
        black_box(sum);
        *state = x;
        ns
    };

    let mut check_state = 0x9E37_79B9_7F4A_7C15u64;
    let mut place_state = 0x9E37_79B9_7F4A_7C15u64;
    let mut lookup_state = 0x9E37_79B9_7F4A_7C15u64;
    check_round(&mut check_state, None);
    check_round(&mut place_state, Some(JURISDICTION));
    lookup_round(&mut lookup_state);
    let mut check_ns = Vec::with_capacity(ROUNDS);
    let mut place_ns = Vec::with_capacity(ROUNDS);
    let mut lookup_ns = Vec::with_capacity(ROUNDS);
    // Interleaved, so that both kinds of check see the same machine.
    for _ in 0..ROUNDS {
        check_ns.push(check_round(&mut check_state, None));
        place_ns.push(check_round(&mut place_state, Some(JURISDICTION)));
        lookup_ns.push(lookup_round(&mut lookup_state));
    }
    check_ns.sort_by(f64::total_cmp);
    place_ns.sort_by(f64::total_cmp);
    lookup_ns.sort_by(f64::total_cmp);
    let check_median = median(&check_ns);
    let place_median = median(&place_ns);
    let lookup_median = median(&lookup_ns);

    let allowed_kinds = KINDS.iter().filter(|k| k.allowed).count();
    println!("consentry-core engine benchmark");
    println!(
        "setup: {subjects} subjects x 3 grants loaded in {load_secs:.1} s; query mix: {} kinds ({allowed_kinds} allowed, {} denied), ~10% unknown subjects",
        KINDS.len(),
        KINDS.len() - allowed_kinds
    );
    println!(
        "check median: {check_median:.0} ns (min {:.0}, max {:.0}) over {ROUNDS} rounds of {CHECKS_PER_ROUND}",
        check_ns[0],
        check_ns[ROUNDS - 1]
    );
    println!(
        "hashmap lookup median: {lookup_median:.0} ns (min {:.0}, max {:.0}) (std HashMap<String, u64>, {subjects} entries, same key sequence)",
        lookup_ns[0],
        lookup_ns[ROUNDS - 1]
    );
    println!(
        "check naming jurisdiction {JURISDICTION} median: {place_median:.0} ns (min {:.0}, max {:.0}); without: {check_median:.0} ns",
        place_ns[0],
        place_ns[ROUNDS - 1]
    );
    println!("ratio check/lookup: {:.2}", check_median / lookup_median);
    let place_ratio = place_median / check_median;
    println!("ratio with/without jurisdiction: {place_ratio:.3}");
    println!(
        "memory: {bytes_per_subject:.0} bytes per subject (RSS growth over {subjects} subjects: {:.1} MiB -> {:.1} MiB)",
        rss_before as f64 / 1_048_576.0,
        rss_after as f64 / 1_048_576.0
    );
    println!("target check median <= {TARGET_CHECK_NS:.0} ns: {}", verdict(check_median <= TARGET_CHECK_NS));
    println!(
        "target with/without jurisdiction <= {TARGET_JURISDICTION_RATIO:.2}: {}",
        verdict(place_ratio <= TARGET_JURISDICTION_RATIO)
    );
    println!(
        "target memory <= {TARGET_BYTES_PER_SUBJECT:.0} bytes per subject: {}",
        verdict(bytes_per_subject <= TARGET_BYTES_PER_SUBJECT)
    );
    Ok(())
}
