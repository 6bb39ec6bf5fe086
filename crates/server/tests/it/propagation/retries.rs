//! Receivers that fail: down for a while (retried, nothing lost, order kept), always failing (dead letters,
//! then replay), and hanging (held back alone, and not holding up a shutdown).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::receiver::{Hanging, Hit, Receiver, first_arrivals, verify_signature};
use super::{PURPOSE, assert_ordered_per_subject, deliveries, eventually, metrics, sample, webhook};
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of, withdraw};

both_backends!(
    a_receiver_that_is_down_then_back_gets_every_event_in_order,
    a_receiver_that_always_fails_gets_dead_letters_that_replay_delivers,
    a_hanging_receiver_holds_back_only_its_own_deliveries,
    shutdown_does_not_wait_for_a_hanging_receiver,
);

/// A receiver that is down for a while loses nothing and sees each subject in order.
async fn a_receiver_that_is_down_then_back_gets_every_event_in_order(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| {
        c.delivery_backoff_ms = vec![50, 100, 200, 400, 800, 1600, 3200];
    })
    .await;
    let r = Receiver::start().await;
    r.answer(503);
    let (id, secret) = webhook(&s, "flaky", &r.url("in"), &["consent.*"]).await;

    const SUBJECTS: usize = 4;
    const ROUNDS: usize = 5;
    let mut written = Vec::new();
    for round in 0..ROUNDS {
        for n in 0..SUBJECTS {
            let body = if round % 2 == 0 { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
            let placed = s.record(&format!("flaky-{n}"), &body).await;
            written.push(str_of(&placed[0]["id"]).to_owned());
        }
    }
    // Down long enough for several failed attempts per subject, then back.
    eventually("failed attempts", Duration::from_secs(10), || {
        let r = &r;
        async move { (r.hits().iter().filter(|h| h.answered == 503).count() >= 3 * SUBJECTS).then_some(()) }
    })
    .await;
    // Every change has its delivery (the outbox fans out on its own clock), none delivered or dead.
    let pending = eventually("a delivery per change", Duration::from_secs(10), || {
        let (s, id) = (&s, &id);
        async move {
            let pending = deliveries(s, id, Some("pending")).await;
            (pending.len() >= SUBJECTS * ROUNDS).then_some(pending)
        }
    })
    .await;
    assert_eq!(pending.len(), SUBJECTS * ROUNDS, "nothing delivered or dead while the receiver fails");
    assert!(deliveries(&s, &id, Some("delivered")).await.is_empty());
    assert!(deliveries(&s, &id, Some("dead")).await.is_empty());
    let failing: Vec<&Value> = pending.iter().filter(|d| d["attempts"].as_u64() > Some(0)).collect();
    assert!(!failing.is_empty(), "{pending:?}");
    for d in &failing {
        assert_eq!(d["last_error"], "http_status 503", "{d}");
        assert!(d["next_attempt_at"].is_string(), "{d}");
    }
    r.answer(200);

    let hits = r.wait_unique("in", SUBJECTS * ROUNDS, Duration::from_secs(20)).await;
    for h in &hits {
        verify_signature(&secret, h);
    }
    let events: Vec<Value> = hits.iter().map(Hit::event).collect();
    let ids: HashSet<&str> = events.iter().map(|e| str_of(&e["id"])).collect();
    assert_eq!(ids, written.iter().map(String::as_str).collect(), "every event arrives");
    let counts = assert_ordered_per_subject(&events);
    assert!(counts.values().all(|&n| n == ROUNDS), "{counts:?}");

    // Stronger: a subject's later event is never even tried before its earlier ones were delivered.
    let mut tried: HashMap<String, u64> = HashMap::new();
    for h in r.hits() {
        let e = h.event();
        let seq = e["data"]["event"]["seq"].as_u64().expect("seq");
        let before = tried.insert(str_of(&e["subject"]).to_owned(), seq);
        assert!(before.is_none_or(|b| b <= seq), "{}: seq {seq} tried after seq {before:?}", e["subject"]);
    }

    let done = eventually("all delivered", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move {
            let done = deliveries(s, id, Some("delivered")).await;
            (done.len() == SUBJECTS * ROUNDS).then_some(done)
        }
    })
    .await;
    assert!(done.iter().any(|d| d["attempts"].as_u64() > Some(1)), "some needed retries: {done:?}");
    assert!(deliveries(&s, &id, Some("dead")).await.is_empty());
    assert_eq!(s.get(&format!("/v1/destinations/{id}"), ADMIN_KEY, 200).await["flagged"], false);
    drop(s.stop().await);
}

/// Dead letters after the last retry; replay once the receiver is fixed.
async fn a_receiver_that_always_fails_gets_dead_letters_that_replay_delivers(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.delivery_backoff_ms = vec![20, 40, 80]).await;
    let r = Receiver::start().await;
    r.answer(500);
    let (id, _) = webhook(&s, "broken", &r.url("in"), &["consent.*"]).await;
    let mut written = Vec::new();
    for (subject, body) in [
        ("dead-1", grant(PURPOSE, &["email"])),
        ("dead-2", grant(PURPOSE, &["sms"])),
        ("dead-1", withdraw(PURPOSE)),
    ] {
        written.push(str_of(&s.record(subject, &body).await[0]["id"]).to_owned());
    }

    let dead = eventually("three dead letters", Duration::from_secs(20), || {
        let (s, id) = (&s, &id);
        async move {
            let dead = deliveries(s, id, Some("dead")).await;
            (dead.len() == 3).then_some(dead)
        }
    })
    .await;
    for d in &dead {
        assert_eq!(d["status"], "dead", "{d}");
        assert_eq!(d["attempts"], 4, "one attempt and three retries: {d}");
        assert!(str_of(&d["last_error"]).contains("500"), "{d}");
        assert_eq!(d["next_attempt_at"], Value::Null, "{d}");
        assert_eq!(d["delivered_at"], Value::Null, "{d}");
    }
    let mut tries: HashMap<String, usize> = HashMap::new();
    for h in r.hits() {
        *tries.entry(h.id).or_insert(0) += 1;
    }
    assert_eq!(tries, written.iter().map(|w| (w.clone(), 4)).collect(), "four tries each");
    assert_eq!(s.get(&format!("/v1/destinations/{id}"), ADMIN_KEY, 200).await["flagged"], true);
    assert!(deliveries(&s, &id, Some("pending")).await.is_empty());
    let text = eventually("the dead-letter gauge", Duration::from_secs(5), || {
        let s = &s;
        async move {
            let text = metrics(s).await;
            (sample(&text, "consentry_dead_letters") == Some(3.0)).then_some(text)
        }
    })
    .await;
    assert!(
        text.lines().any(|l| l.starts_with("consentry_deliveries_total{")
            && l.contains("result=\"dead\"")
            && l.ends_with(" 3")),
        "{text}"
    );

    // Fixed, then replayed from the first dead letter: every event arrives, in order.
    r.answer(200);
    let first = dead[0]["id"].as_i64().expect("delivery id");
    let out =
        s.post(&format!("/v1/destinations/{id}/replay"), ADMIN_KEY, &json!({"from_id": first}), 200).await;
    assert_eq!(out["queued"], 3, "{out}");
    let hits = r.wait_unique("in", 3, Duration::from_secs(10)).await;
    let events: Vec<Value> = hits.iter().map(Hit::event).collect();
    assert_ordered_per_subject(&events);
    let got: HashSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(got, written.iter().map(String::as_str).collect());
    eventually("replayed deliveries recorded", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move { (deliveries(s, id, Some("delivered")).await.len() == 3).then_some(()) }
    })
    .await;
    assert!(deliveries(&s, &id, Some("dead")).await.is_empty());
    // Replay by time sends them all again, with the same ids (receivers de-duplicate), from the
    // destination's creation at the earliest: an earlier start is refused, not shortened.
    let replay = format!("/v1/destinations/{id}/replay");
    let before = json!({"since": "2000-01-01T00:00:00Z"});
    assert_code(&s.post(&replay, ADMIN_KEY, &before, 422).await, "replay_out_of_reach");
    let created = s.get(&format!("/v1/destinations/{id}"), ADMIN_KEY, 200).await["created_at"].clone();
    let out = s.post(&replay, ADMIN_KEY, &json!({"since": created}), 200).await;
    assert_eq!(out["queued"], 3, "{out}");
    eventually("a second copy of each", Duration::from_secs(10), || {
        let r = &r;
        async move { (r.accepted("in").len() >= 6).then_some(()) }
    })
    .await;
    assert_eq!(first_arrivals(&r.accepted("in")).len(), 3);
    assert_code(
        &s.post("/v1/destinations/dst_missing/replay", ADMIN_KEY, &json!({"from_id": 1}), 404).await,
        "not_found",
    );
    let text = eventually("the dead-letter gauge after replay", Duration::from_secs(5), || {
        let s = &s;
        async move {
            let text = metrics(s).await;
            (sample(&text, "consentry_dead_letters") == Some(0.0)).then_some(text)
        }
    })
    .await;
    assert!(sample(&text, "consentry_outbox_lag_seconds").is_some(), "{text}");
    drop(s.stop().await);
}

/// The dispatcher's promise: a stuck event holds back that subject's later events for that destination
/// "and nothing else". A receiver that hangs until the webhook timeout must not slow the others down.
async fn a_hanging_receiver_holds_back_only_its_own_deliveries(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.webhook_timeout_secs = 10).await;
    let stuck = Hanging::start().await;
    let r = Receiver::start().await;
    webhook(&s, "stuck", &stuck.url, &["consent.*"]).await;
    webhook(&s, "healthy", &r.url("in"), &["consent.*"]).await;
    let started = Instant::now();
    for round in 0..5 {
        let body = if round % 2 == 0 { grant(PURPOSE, &["email"]) } else { withdraw(PURPOSE) };
        s.record("head-of-line", &body).await;
    }
    stuck.wait_for_a_connection().await;
    // A hanging attempt lasts 10 s; the healthy receiver must not wait for it.
    let deadline = started + Duration::from_secs(4);
    while first_arrivals(&r.accepted("in")).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the healthy destination got {} of 5 events in 4 s: a receiver hanging until the 10 s webhook \
             timeout holds back every other destination (each dispatcher round waits for all its sends)",
            first_arrivals(&r.accepted("in")).len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let hits = first_arrivals(&r.accepted("in"));
    assert_ordered_per_subject(&hits.iter().map(Hit::event).collect::<Vec<_>>());
    drop(s.stop().await);
}

/// `shutdown_timeout_secs` bounds a stop; a delivery attempt in flight must not stretch it to the webhook
/// timeout.
async fn shutdown_does_not_wait_for_a_hanging_receiver(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| {
        c.webhook_timeout_secs = 120;
        c.shutdown_timeout_secs = 2;
    })
    .await;
    let stuck = Hanging::start().await;
    let (id, _) = webhook(&s, "stuck", &stuck.url, &["consent.*"]).await;
    s.record("stopping", &grant(PURPOSE, &["email"])).await;
    stuck.wait_for_a_connection().await;
    let started = Instant::now();
    let storage = tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .unwrap_or_else(|_| panic!("stopping took over 10 s with shutdown_timeout_secs = 2: the dispatcher waits for the 120 s webhook timeout"));
    eprintln!("stopped in {:?}", started.elapsed());

    // The interrupted attempt is not lost: the event is still pending for the destination.
    let store = consentry_store::open(storage.store_config()).await.expect("reopen the store");
    let pending = store.deliveries(&id, Some("pending"), 0, 10).await.expect("deliveries");
    assert_eq!(pending.len(), 1, "{pending:?}");
    store.close().await;
}
