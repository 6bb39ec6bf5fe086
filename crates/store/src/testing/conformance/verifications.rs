//! Conformance checks for [`VerificationStore`](crate::VerificationStore), re-exported by
//! [`crate::testing::conformance`].

use std::sync::Arc;

use consentry_core::Timestamp;

use crate::Store;
use crate::verifications::{Attempted, NewVerification, StartLimits, Started};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + seconds * 1_000_000)
}

fn row(id: &str, identifier: u8, client: u8, created: i64) -> NewVerification {
    NewVerification {
        id: id.to_owned(),
        identifier_index: [identifier; 32],
        client_index: [client; 32],
        code_hash: [9; 32],
        created_at: at(created),
        expires_at: at(created + 600),
    }
}

/// Starts are limited per identifier and per client over the hour and per identifier over the day; a
/// verification takes a bounded number of attempts, ends at its expiry, is used once; rows go after a day.
pub async fn verifications_limit_attempts_expire_and_end(store: Arc<dyn Store>) {
    let limits = |now: i64| StartLimits {
        per_identifier: 2,
        per_client: 3,
        since: at(now - 3600),
        per_identifier_per_day: 3,
        day_since: at(now - 86_400),
    };
    let start = |v: NewVerification, now: i64| {
        let store = store.clone();
        async move { store.start_verification(v, limits(now)).await.unwrap_or_else(|e| panic!("start: {e}")) }
    };
    assert_eq!(start(row("v1", 1, 1, 0), 0).await, Started::Stored);
    assert_eq!(start(row("v2", 1, 1, 10), 10).await, Started::Stored);
    assert_eq!(
        start(row("v3", 1, 2, 20), 20).await,
        Started::IdentifierLimited { until: at(3600) },
        "a third start for one identifier within the hour eases when the first leaves it"
    );
    assert_eq!(start(row("v4", 2, 1, 30), 30).await, Started::Stored, "another identifier, same client");
    assert_eq!(start(row("v5", 3, 1, 40), 40).await, Started::ClientLimited { until: at(3600) });
    // An hour after the first starts, the hour has moved on...
    assert_eq!(start(row("v6", 1, 1, 3700), 3700).await, Started::Stored);
    // ...but not the day: the identifier's third start today is its last.
    assert_eq!(
        start(row("v6b", 1, 6, 3705), 3705).await,
        Started::IdentifierLimited { until: at(86_400) },
        "a fourth start for one identifier within the day eases when the first leaves the day"
    );
    assert_eq!(start(row("v6c", 7, 6, 3705), 3705).await, Started::Stored, "another identifier");
    // Past the hour's and the day's limit at once, the answer is when both have eased: the day's.
    assert_eq!(start(row("w1", 20, 21, 1000), 1000).await, Started::Stored);
    assert_eq!(start(row("w2", 20, 22, 5000), 5000).await, Started::Stored);
    assert_eq!(start(row("w3", 20, 23, 5010), 5010).await, Started::Stored);
    assert_eq!(
        start(row("w4", 20, 24, 5020), 5020).await,
        Started::IdentifierLimited { until: at(1000 + 86_400) },
        "the hour's limit eases at 8600, but the day's only at 87400"
    );
    // A client past its limit whose identifier is past the hour's: the later of the two.
    assert_eq!(start(row("w5", 30, 23, 5030), 5030).await, Started::Stored);
    assert_eq!(start(row("w6", 31, 23, 5040), 5040).await, Started::Stored);
    assert_eq!(start(row("w8", 41, 50, 5000), 5000).await, Started::Stored);
    assert_eq!(start(row("w9", 41, 51, 5000), 5000).await, Started::Stored);
    assert_eq!(
        start(row("w7", 41, 23, 5050), 5050).await,
        Started::ClientLimited { until: at(5010 + 3600) },
        "the identifier's hour eases at 8600, the client's at 8610"
    );

    let attempt = |id: &'static str, now: i64| {
        let store = store.clone();
        async move { store.attempt_verification(id, at(now), 3).await.unwrap_or_else(|e| panic!("attempt: {e}")) }
    };
    assert_eq!(attempt("v1", 3700).await, Attempted::Ended, "expired, kept for the day's count");
    assert_eq!(attempt("nope", 3700).await, Attempted::Missing);
    for n in 1..=3 {
        let Attempted::Live(a) = attempt("v6", 3710).await else { panic!("attempt {n} is live") };
        assert_eq!((a.attempts, a.identifier_index, a.code_hash), (n, [1; 32], [9; 32]));
    }
    assert_eq!(attempt("v6", 3710).await, Attempted::Ended, "out of attempts");

    assert_eq!(start(row("v7", 4, 4, 3720), 3720).await, Started::Stored);
    assert_eq!(attempt("v7", 3720 + 600).await, Attempted::Ended, "expired");
    assert_eq!(start(row("v8", 5, 5, 3720), 3720).await, Started::Stored);
    assert!(matches!(attempt("v8", 3730).await, Attempted::Live(_)));
    assert!(store.finish_verification("v8", at(3730)).await.unwrap_or_else(|e| panic!("finish: {e}")));
    assert!(
        !store.finish_verification("v8", at(3731)).await.unwrap_or_else(|e| panic!("finish: {e}")),
        "once"
    );
    assert_eq!(attempt("v8", 3731).await, Attempted::Ended, "used");
    // A day after the first starts, they are dropped in passing and the identifier may start again.
    assert_eq!(start(row("v9", 1, 9, 86_410), 86_410).await, Started::Stored);
    assert_eq!(attempt("v1", 86_410).await, Attempted::Missing, "dropped with the day");
}
