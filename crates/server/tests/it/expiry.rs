//! Lapsed grants: checks answer `expired` at once, and the expiry job records an `expire` event (actor
//! `system`) that goes downstream as `consent.expired`.

use std::time::{Duration, Instant};

use consentry_core::Timestamp;
use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, str_of};

async fn lapsed_grants_are_recorded_as_expired(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.expiry_interval_secs = 1).await;
    let expires = Timestamp::now().plus_seconds(2).to_string();
    let body = json!({
        "notice": "marketing.direct",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"], "expires_at": expires}],
    });
    let granted = s.record("lapsing", &body).await;
    assert_eq!(s.check("lapsing", "marketing.direct", Some("email")).await["reason"], "granted");

    // The job runs every second; give it a few.
    let deadline = Instant::now() + Duration::from_secs(10);
    let expire = loop {
        let history = s.get("/v1/subjects/lapsing/consents/history", ADMIN_KEY, 200).await;
        let events = history["events"].as_array().expect("events").clone();
        if let Some(e) = events.iter().find(|e| e["action"] == "expire") {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "no expire event within 10 s: {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(expire["actor"], "system");
    assert_eq!(expire["purpose"], "marketing.direct");
    assert_eq!(expire["channels"], json!(["email"]));
    assert_eq!(expire["prev_hash"].as_str().map(str::len), Some(64));
    // It took effect when the grant lapsed, not when the job noticed.
    assert_eq!(expire["occurred_at"], granted[0]["expires_at"], "{expire}");
    assert_ne!(expire["occurred_at"], expire["recorded_at"]);
    let check = s.check("lapsing", "marketing.direct", Some("email")).await;
    assert_eq!((check["allowed"].as_bool(), str_of(&check["reason"])), (Some(false), "expired"));
    assert_eq!(check["event_id"], expire["id"]);
    assert_ne!(check["event_id"], granted[0]["id"]);

    // Recorded once, not on every run.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let history = s.get("/v1/subjects/lapsing/consents/history", ADMIN_KEY, 200).await;
    let expires =
        history["events"].as_array().expect("events").iter().filter(|e| e["action"] == "expire").count();
    assert_eq!(expires, 1);
    s.stop().await;
}

both_backends!(lapsed_grants_are_recorded_as_expired);
