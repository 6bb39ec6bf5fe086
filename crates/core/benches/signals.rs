//! Signal codec throughput: TC and GPP strings decoded and encoded per second, on a TCF 2.3 string of a
//! realistic size (a few hundred vendors in consents, legitimate interests and disclosed vendors) and on a
//! GPP string carrying it with `usnat` and `usca`. Run with `cargo bench -p consentry-core --bench signals`.

use std::hint::black_box;
use std::time::Instant;

use consentry_core::signals::{gpp, tcf};

const ROUNDS: usize = 15;
const PER_ROUND: usize = 20_000;

/// A TC string with every segment: 300 of the first 1,000 vendors consented, 120 with legitimate interest,
/// 900 disclosed, a publisher restriction and the publisher-TC segment.
fn tc_values() -> tcf::TcString {
    let every = |step: usize, n: usize| (1..=1000u16).step_by(step).take(n).collect::<Vec<_>>();
    serde_json::from_value(serde_json::json!({
        "created": "2026-11-30T10:00:00.5Z", "last_updated": "2026-12-01T08:30:00Z", "cmp_id": 300,
        "cmp_version": 12, "consent_screen": 2, "consent_language": "DE", "vendor_list_version": 140,
        "tcf_policy_version": 5, "special_feature_opt_ins": [1], "purposes_consent": [1, 2, 3, 4, 7, 8, 9, 10],
        "purposes_li_transparency": [2, 7, 8, 9, 10, 11], "publisher_cc": "DE",
        "vendor_consents": every(3, 300), "vendor_li": every(8, 120),
        "publisher_restrictions": [{"purpose": 4, "restriction_type": 1, "vendors": [10, 11, 12, 40, 41]}],
        "disclosed_vendors": (1..=900u16).collect::<Vec<_>>(),
        "publisher_tc": {"pub_purposes_consent": [1, 3], "num_custom_purposes": 2, "custom_purposes_consent": [1]}
    }))
    .expect("bench values")
}

fn measure(name: &str, bytes: usize, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    let mut all = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..PER_ROUND {
            f();
        }
        let ns = start.elapsed().as_nanos() as f64 / PER_ROUND as f64;
        best = best.min(ns);
        all.push(ns);
    }
    all.sort_by(f64::total_cmp);
    let median = all[ROUNDS / 2];
    println!(
        "{name:<14} median {median:>8.0} ns  best {best:>8.0} ns  {:>9.0} strings/s  {:>7.1} MB/s ({bytes} chars)",
        1e9 / median,
        bytes as f64 * 1e3 / median
    );
}

fn main() {
    let tc = tc_values();
    let tc_text = tcf::encode(&tc).expect("encodes");
    let gpp_values = gpp::GppString::from_json(serde_json::json!({"sections": {
        "tcfeuv2": serde_json::to_value(&tc).expect("json"),
        "usnat": {"sale_opt_out": 1, "sharing_opt_out": 1, "targeted_advertising_opt_out": 2, "mspa_covered_transaction": 1, "gpc": true},
        "usca": {"sale_opt_out": 1, "sharing_opt_out": 1, "mspa_covered_transaction": 2}
    }}))
    .expect("gpp values");
    let gpp_text = gpp::encode(&gpp_values).expect("encodes");
    println!("signal codecs, {ROUNDS} rounds of {PER_ROUND}");
    measure("tcf decode", tc_text.len(), || {
        black_box(tcf::decode(black_box(&tc_text)).ok());
    });
    measure("tcf encode", tc_text.len(), || {
        black_box(tcf::encode(black_box(&tc)).ok());
    });
    measure("gpp decode", gpp_text.len(), || {
        black_box(gpp::decode(black_box(&gpp_text)).ok());
    });
    measure("gpp encode", gpp_text.len(), || {
        black_box(gpp::encode(black_box(&gpp_values)).ok());
    });
}
