//! `subject.came_of_age`: when a known child reaches the age of digital consent of their place, one
//! CloudEvent goes to the destinations that take it, once per person even when two nodes look at once and
//! after a restart; an adult whose age was stated, or a band that makes no child, is never announced. The
//! job's time is injected: it is called with the moment it would run at.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_service::workers::coming_of_age::announce_due;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, outbox, paused_destination, str_of};

both_backends!(a_child_coming_of_age_is_announced_once);

/// The first day of this month `years` years ago, as `YYYY-MM-DD`.
fn first_of_month(years: i32) -> String {
    let today = Timestamp::now().to_string();
    let year: i32 = today[..4].parse().expect("year");
    format!("{}-{}-01", year - years, &today[5..7])
}

async fn announced(s: &TestServer) -> Vec<Value> {
    outbox(s).await.into_iter().filter(|(t, _)| t == "subject.came_of_age").map(|(_, p)| p).collect()
}

async fn a_child_coming_of_age_is_announced_once(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    paused_destination(&s, &["subject.*"]).await;
    let kid = s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"birth_date": first_of_month(15)}), 200).await;
    let until = Timestamp::parse(str_of(&kid["child_until"])).expect("a child until");
    s.put("/v1/subjects/mum/age", ADMIN_KEY, &json!({"birth_date": "1980-01-01"}), 200).await;
    s.put("/v1/subjects/teen/age", ADMIN_KEY, &json!({"age_band": "16-17"}), 200).await;
    let interval = Duration::from_secs(30);
    let announce = |now: Timestamp| announce_due(&s.state, now, interval);

    assert_eq!(announce(Timestamp::now()).await.expect("run"), 0, "nothing is due yet");
    assert_eq!(announce(until.plus_seconds(-86_400)).await.expect("run"), 0, "still a child the day before");
    assert!(announced(&s).await.is_empty());
    // Come of age: announced once, even by two runs at once.
    let (a, b) = tokio::join!(announce(until.plus_seconds(60)), announce(until.plus_seconds(60)));
    assert_eq!(a.expect("run") + b.expect("run"), 1);
    assert_eq!(announce(until.plus_seconds(120)).await.expect("run"), 0);
    let sent = announced(&s).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let event = &sent[0];
    assert_eq!(event["type"], "subject.came_of_age");
    assert_eq!(event["time"], json!(until.to_string()));
    assert_eq!(
        event["data"],
        json!({"came_of_age_at": until.to_string(), "age_of_digital_consent": 16,
                                     "jurisdiction": null})
    );
    assert!(event.get("subject").is_none(), "the stored payload names no one: {event}");

    // After a restart, nothing goes again.
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    let later = until.plus_seconds(86_400);
    assert_eq!(announce_due(&s.state, later, interval).await.expect("run"), 0);
    assert_eq!(announced(&s).await.len(), 1);
    s.stop().await;
}
