//! Conformance checks for [`ConsoleStore`](crate::ConsoleStore), re-exported by
//! [`crate::testing::conformance`].

use std::sync::Arc;

use consentry_core::Timestamp;

use super::fixtures::key;
use crate::{PurposeChecks, RollupRow, Store};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + seconds * 1_000_000)
}

fn row(day: i64, purpose: &str, metric: &str, count: u64) -> RollupRow {
    RollupRow { day, purpose: purpose.into(), metric: metric.into(), count }
}

/// A session finds its active key while used within the idle limit; idling past it, signing out and
/// revoking the key each end it.
pub async fn console_sessions_expire_end_and_follow_their_key(store: Arc<dyn Store>) {
    store.insert_api_key(key("ops", 1)).await.expect("insert");
    store.create_console_session(&[10; 32], "key_ops", at(0)).await.expect("create");
    store.create_console_session(&[11; 32], "key_ops", at(0)).await.expect("create");
    store.create_console_session(&[12; 32], "key_ops", at(0)).await.expect("create");
    let found = store.console_session(&[10; 32], at(-100), at(50)).await.expect("read").expect("active");
    assert_eq!(found.name, "ops");
    assert!(store.console_session(&[9; 32], at(-100), at(50)).await.expect("read").is_none(), "unknown");
    assert!(store.end_console_session(&[12; 32]).await.expect("end"));
    assert!(!store.end_console_session(&[12; 32]).await.expect("end twice"));
    assert!(store.console_session(&[12; 32], at(-100), at(50)).await.expect("read").is_none(), "signed out");
    // Used at 50, so still there with an idle limit reaching back to 40, while the unused one is dropped.
    assert!(store.console_session(&[10; 32], at(40), at(60)).await.expect("read").is_some());
    assert!(store.console_session(&[11; 32], at(40), at(60)).await.expect("read").is_none(), "idle");
    assert!(store.console_session(&[11; 32], at(-100), at(60)).await.expect("read").is_none(), "dropped");
    store.revoke_api_key("key_ops", at(61)).await.expect("revoke");
    assert!(store.console_session(&[10; 32], at(40), at(62)).await.expect("read").is_none(), "key revoked");
}

/// Counters add up under the cursor; a fold from a cursor that moved meanwhile writes nothing; a reset
/// starts again from 0.
pub async fn rollups_add_up_under_their_cursor(store: Arc<dyn Store>) {
    assert_eq!(store.rollup_cursor().await.expect("cursor"), 0);
    let first = vec![row(10, "analytics", "grant", 2), row(11, "analytics", "grant", 1)];
    assert!(store.add_rollups(0, 5, first).await.expect("add"));
    assert!(!store.add_rollups(0, 7, vec![row(10, "analytics", "grant", 9)]).await.expect("stale"));
    let second = vec![row(10, "analytics", "grant", 3), row(10, "analytics", "withdraw", 1)];
    assert!(store.add_rollups(5, 9, second).await.expect("add"));
    assert_eq!(store.rollup_cursor().await.expect("cursor"), 9);
    assert_eq!(
        store.rollups(10, 10).await.expect("read"),
        [row(10, "analytics", "grant", 5), row(10, "analytics", "withdraw", 1)]
    );
    assert_eq!(store.rollups(11, 20).await.expect("read"), [row(11, "analytics", "grant", 1)]);
    store.reset_rollups().await.expect("reset");
    assert_eq!(store.rollup_cursor().await.expect("cursor"), 0);
    assert!(store.rollups(0, 100).await.expect("read").is_empty());
}

/// Check counters add up (two nodes' deltas for one day and purpose make their sum), by day and purpose;
/// a rollups' reset leaves them alone (they cannot be rebuilt).
pub async fn purpose_checks_add_up(store: Arc<dyn Store>) {
    let checks = |day: i64, purpose: &str, checks: u64, denied: u64| PurposeChecks {
        day,
        purpose: purpose.into(),
        checks,
        denied,
    };
    store
        .add_purpose_checks(vec![checks(10, "analytics", 5, 2), checks(11, "analytics", 1, 0)])
        .await
        .expect("add");
    store
        .add_purpose_checks(vec![checks(10, "analytics", 3, 1), checks(10, "marketing", 4, 4)])
        .await
        .expect("add");
    store.add_purpose_checks(Vec::new()).await.expect("nothing");
    assert_eq!(
        store.purpose_checks(10, 10).await.expect("read"),
        [checks(10, "analytics", 8, 3), checks(10, "marketing", 4, 4)]
    );
    store.reset_rollups().await.expect("reset");
    assert_eq!(store.purpose_checks(11, 20).await.expect("read"), [checks(11, "analytics", 1, 0)]);
    assert!(store.purpose_checks(12, 20).await.expect("read").is_empty());
}
