//! `subject.came_of_age`: when a known child reaches the age of digital consent of their place, one
//! CloudEvent goes to the destinations that take it, once per person even when two nodes look at once and
//! after a restart; an adult whose age was stated, or a band that makes no child, is never announced. A
//! known child whose age is stated again as an adult's comes of age then: announced at once, once, and
//! never again by the job. The job's time is injected: it is called with the moment it would run at.

use std::time::Duration;

use consentry_core::Timestamp;
use consentry_service::workers::coming_of_age::announce_due;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, outbox, paused_destination, str_of};

both_backends!(a_child_coming_of_age_is_announced_once, a_child_restated_as_an_adult_is_announced_once);

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

async fn a_child_restated_as_an_adult_is_announced_once(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    paused_destination(&s, &["subject.*"]).await;
    let put = |subject: &'static str, body: Value| {
        let s = &s;
        async move { s.put(&format!("/v1/subjects/{subject}/age"), ADMIN_KEY, &body, 200).await }
    };
    put("kid", json!({"birth_date": first_of_month(10)})).await;
    put("tween", json!({"age_band": "13-15"})).await;
    put("mum", json!({"birth_date": "1980-01-01"})).await;
    // Still a child by the new statement: nothing.
    let still = put("tween", json!({"birth_date": first_of_month(12)})).await;
    assert_eq!(still["child"], json!(true));
    // Adults re-stated as adults: nothing.
    put("mum", json!({"age_band": "18+"})).await;
    put("stranger", json!({"age_band": "18+"})).await;
    assert!(announced(&s).await.is_empty());

    // The brand now knows the child as an adult: they came of age now.
    let before = Timestamp::now();
    let adult = put("kid", json!({"age_band": "18+"})).await;
    let after = Timestamp::now();
    assert_eq!((adult["child"].clone(), adult["child_until"].clone()), (json!(false), Value::Null));
    let sent = announced(&s).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let event = &sent[0];
    let at = Timestamp::parse(str_of(&event["data"]["came_of_age_at"])).expect("a time");
    assert!(before <= at && at <= after, "{at} not within the statement");
    assert_eq!(event["time"], event["data"]["came_of_age_at"]);
    assert_eq!(
        event["data"],
        json!({"came_of_age_at": at.to_string(), "age_of_digital_consent": 16, "jurisdiction": null})
    );
    assert!(event.get("subject").is_none(), "the stored payload names no one: {event}");

    // Neither another statement nor the job sends it again, now or after a restart.
    put("kid", json!({"birth_date": "2000-01-01"})).await;
    put("tween", json!({"age_band": "18+"})).await;
    let interval = Duration::from_secs(30);
    let later = Timestamp::now().plus_seconds(86_400 * 365 * 20);
    assert_eq!(announce_due(&s.state, later, interval).await.expect("run"), 0);
    let sent = announced(&s).await;
    assert_eq!(sent.len(), 2, "the tween once, by their own statement: {sent:?}");
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(announce_due(&s.state, later.plus_seconds(60), interval).await.expect("run"), 0);
    assert_eq!(announced(&s).await.len(), 2);
    s.stop().await;
}
