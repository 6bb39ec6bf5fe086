//! Conformance checks for propagation: the outbox committed with its events, destinations, fan-out,
//! claims and their leases, replay, lag and dead letters.

use std::sync::Arc;

use consentry_core::{Action, Event, Timestamp};

use super::fixtures::{change, failing_sealer, sealed_receipt, subject, verified_chain};
use crate::{
    ClaimedDelivery, DeliveryOutcome, DestinationPatch, DestinationRecord, EventMatcher, NewDestination,
    OutboxMessage, ReplayFrom, Sealed, Sealer, Store, StoreError,
};

pub(super) fn message(event_type: &str, payload: &str) -> OutboxMessage {
    OutboxMessage::whole(event_type, payload)
}

/// A sealer that seals a receipt and puts one message per type in the outbox, each naming the first
/// placed event's position (`{"seq":N,"n":i}`).
pub(super) fn outbox_sealer(id: &str, types: &[&str]) -> Sealer {
    let id = id.to_owned();
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    Box::new(move |events: &[Event], _: &crate::Wants<'_>| {
        let seq = events.first().map_or(0, |e| e.seq);
        let outbox = types
            .iter()
            .enumerate()
            .map(|(n, t)| OutboxMessage {
                event_type: t.clone(),
                payload: format!(r#"{{"seq":{seq},"n":{n}}}"#),
                event: None,
            })
            .collect();
        Ok(Sealed { receipt: Some(sealed_receipt(id, events)), outbox, in_force: Vec::new() })
    })
}

pub(super) fn destination(id: &str, patterns: &[&str]) -> NewDestination {
    NewDestination {
        record: DestinationRecord {
            id: id.into(),
            name: format!("{id} hook"),
            kind: "webhook".into(),
            url: format!("https://example.com/{id}"),
            target: None,
            event_types: patterns.iter().map(|p| (*p).to_owned()).collect(),
            paused: false,
            flagged: false,
            created_at: Timestamp::now(),
        },
        secret: Some(format!("secret-of-{id}").into_bytes()),
    }
}

/// Matches event types against patterns: `*` all, `consent.*` a prefix, else the exact type.
fn matcher(patterns: &[&str]) -> impl Fn(&str) -> bool + Sync + use<> {
    let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
    move |t: &str| {
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => p == t,
        })
    }
}

pub(super) fn everything(_: &str) -> bool {
    true
}

/// Fans the destination out until it is caught up; returns the messages read.
pub(super) async fn fan_out_all(store: &Arc<dyn Store>, id: &str, matches: &EventMatcher) -> u64 {
    let mut total = 0;
    loop {
        let n = store.fan_out(id, matches, 50).await.expect("fan out");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

fn claimed_ids(claimed: &[ClaimedDelivery]) -> Vec<(String, i64)> {
    claimed.iter().map(|c| (c.destination_id.clone(), c.outbox_id)).collect()
}

pub(super) fn secs(n: i64) -> std::time::Duration {
    std::time::Duration::from_secs(n.unsigned_abs())
}

pub(super) async fn claim(store: &Arc<dyn Store>, now: Timestamp) -> Vec<ClaimedDelivery> {
    store.claim_deliveries(now, secs(60), 100).await.expect("claim")
}

pub(super) async fn deliver(store: &Arc<dyn Store>, c: &ClaimedDelivery) {
    let done = DeliveryOutcome::Delivered { at: Timestamp::now() };
    store.complete_delivery(&c.destination_id, c.outbox_id, done).await.expect("complete");
}

pub async fn outbox_commits_with_its_events(store: Arc<dyn Store>) {
    store.create_destination(destination("all", &["*"])).await.expect("create");
    let alice = subject("alice");
    let (events, receipt) = store
        .append_sealed(
            &alice,
            vec![change("analytics", Action::Grant, &[])],
            Some(outbox_sealer("rcpt_a", &["consent.granted", "consent.changed"])),
        )
        .await
        .expect("sealed append");
    assert_eq!((events[0].seq, receipt.map(|r| r.id)), (1, Some("rcpt_a".to_owned())));
    // A sealer may give messages without a receipt.
    let outbox_only: Sealer = Box::new(|_: &[Event], _: &crate::Wants<'_>| {
        Ok(Sealed {
            receipt: None,
            outbox: vec![message("consent.withdrawn", r#"{"only":true}"#)],
            in_force: Vec::new(),
        })
    });
    let (_, none) = store
        .append_sealed(&alice, vec![change("analytics", Action::Withdraw, &[])], Some(outbox_only))
        .await
        .expect("append");
    assert!(none.is_none());
    // A failing or panicking sealer leaves no message behind.
    let failing: Sealer = Box::new(|_: &[Event], _: &crate::Wants<'_>| Err("no".to_owned()));
    store
        .append_sealed(&alice, vec![change("ads", Action::Grant, &[])], Some(failing))
        .await
        .expect_err("fails");
    let panicking: Sealer = Box::new(|_: &[Event], _: &crate::Wants<'_>| panic!("sealer bug"));
    store
        .append_sealed(&alice, vec![change("ads", Action::Grant, &[])], Some(panicking))
        .await
        .expect_err("panics");
    // Failing and succeeding requests, committed together.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = subject(&format!("outbox-{w}"));
            let mut ok = 0;
            for i in 0..6 {
                let fails = (w + i) % 3 == 0;
                let seal = if fails {
                    failing_sealer()
                } else {
                    outbox_sealer(&format!("r_{w}_{i}"), &["consent.granted"])
                };
                let result =
                    store.append_sealed(&s, vec![change("analytics", Action::Grant, &[])], Some(seal)).await;
                assert_eq!(result.is_err(), fails);
                ok += usize::from(!fails);
            }
            ok
        }));
    }
    let mut succeeded = 0;
    for t in tasks {
        succeeded += t.await.expect("task");
    }
    // Messages without ledger events.
    store
        .enqueue(&subject("bob"), vec![message("subject.erased", r#"{"why":"request"}"#)])
        .await
        .expect("enqueue");
    store.enqueue(&subject("bob"), vec![]).await.expect("nothing to enqueue");

    let expected = 2 + 1 + succeeded + 1;
    assert_eq!(fan_out_all(&store, "all", &everything).await, expected as u64);
    // Deliver everything, one message per subject at a time.
    let mut seen = Vec::new();
    let mut now = Timestamp::now();
    loop {
        let claimed = claim(&store, now).await;
        if claimed.is_empty() {
            break;
        }
        for c in &claimed {
            deliver(&store, c).await;
        }
        seen.extend(claimed);
        now = Timestamp::from_micros(now.micros() + 1);
    }
    assert_eq!(seen.len(), expected, "each committed message once, no message of a failed request");
    seen.sort_by_key(|c| c.outbox_id);
    let a: Vec<(&str, &str)> = seen
        .iter()
        .filter(|c| c.subject.as_ref() == Some(&alice))
        .map(|c| (c.event_type.as_str(), c.payload.as_str()))
        .collect();
    assert_eq!(
        a,
        [
            ("consent.granted", r#"{"seq":1,"n":0}"#),
            ("consent.changed", r#"{"seq":1,"n":1}"#),
            ("consent.withdrawn", r#"{"only":true}"#)
        ]
    );
    let bob: Vec<_> =
        seen.iter().filter(|c| c.subject.as_ref().is_some_and(|s| s.as_str() == "bob")).collect();
    assert_eq!((bob.len(), bob[0].event_type.as_str()), (1, "subject.erased"));
    // Outbox ids follow the ledger's order.
    let seqs: Vec<u64> = seen
        .iter()
        .filter_map(|c| c.payload.strip_prefix(r#"{"seq":"#))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect();
    assert_eq!(seqs.len(), 2 + succeeded);
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "outbox ids in ledger order: {seqs:?}");
    assert_eq!(verified_chain(&store).await.len(), 2 + succeeded);
}

pub async fn destinations_crud(store: Arc<dyn Store>) {
    assert!(store.destinations().await.expect("list").is_empty());
    let mut first = destination("d1", &["consent.*"]);
    first.record.created_at = Timestamp::from_micros(1_000);
    let mut second = destination("d2", &["*"]);
    second.record.created_at = Timestamp::from_micros(2_000);
    second.record.kind = "nats".into();
    second.record.target = Some("consentry.events".into());
    second.secret = None;
    store.create_destination(second.clone()).await.expect("create");
    store.create_destination(first.clone()).await.expect("create");
    assert!(matches!(store.create_destination(destination("d1", &[])).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.destinations().await.expect("list"), [first.record.clone(), second.record.clone()]);
    assert_eq!(store.destination("d2").await.expect("read"), Some(second.record.clone()));
    assert!(store.destination("nope").await.expect("read").is_none());
    assert_eq!(store.destination_secret("d1").await.expect("secret"), first.secret);
    assert_eq!(store.destination_secret("d2").await.expect("secret"), None);
    assert!(!format!("{first:?}").contains("secret-of"), "Debug hides the secret");

    let patch = DestinationPatch {
        name: Some("renamed".into()),
        event_types: Some(vec!["consent.granted".into(), "subject.*".into()]),
        paused: Some(true),
        ..DestinationPatch::default()
    };
    assert!(store.update_destination("d1", patch).await.expect("update"));
    let updated = store.destination("d1").await.expect("read").expect("present");
    let expected = DestinationRecord {
        name: "renamed".into(),
        event_types: vec!["consent.granted".into(), "subject.*".into()],
        paused: true,
        ..first.record.clone()
    };
    assert_eq!(updated, expected);
    let unpause = DestinationPatch {
        paused: Some(false),
        url: Some("https://example.org/x".into()),
        ..Default::default()
    };
    assert!(store.update_destination("d1", unpause).await.expect("update"));
    let updated = store.destination("d1").await.expect("read").expect("present");
    assert_eq!(
        (updated.paused, updated.url.as_str(), updated.name.as_str()),
        (false, "https://example.org/x", "renamed")
    );
    assert!(!store.update_destination("nope", DestinationPatch::default()).await.expect("update"));
}

pub async fn fan_out_honours_filter_and_cursor(store: Arc<dyn Store>) {
    store.create_destination(destination("consents", &["consent.*"])).await.expect("create");
    let s = subject("sam");
    store
        .enqueue(
            &s,
            vec![
                message("consent.granted", "{}"),
                message("subject.erased", "{}"),
                message("consent.withdrawn", "{}"),
            ],
        )
        .await
        .expect("enqueue");
    // No destination wants `subject.erased`: it was never stored.
    let consents = matcher(&["consent.*"]);
    assert_eq!(store.fan_out("consents", &consents, 1).await.expect("fan out"), 1);
    assert_eq!(store.fan_out("consents", &consents, 2).await.expect("fan out"), 1);
    assert_eq!(store.fan_out("consents", &consents, 2).await.expect("fan out"), 0, "caught up");
    assert_eq!(store.fan_out("nope", &consents, 2).await.expect("fan out"), 0, "no such destination");
    let listed = store.deliveries("consents", None, 0, 100).await.expect("list");
    let types: Vec<&str> = listed.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(types, ["consent.granted", "consent.withdrawn"], "the filter holds, in outbox order");
    assert!(listed.iter().all(|d| d.status == "pending" && d.attempts == 0 && d.next_attempt_at.is_some()));
    assert!(listed.iter().all(|d| d.delivered_at.is_none() && d.last_error.is_none()));
    assert!(listed[0].outbox_id < listed[1].outbox_id);
    // Paging and status filter.
    let page = store.deliveries("consents", Some("pending"), listed[0].outbox_id, 1).await.expect("page");
    assert_eq!(page, [listed[1].clone()]);
    assert!(store.deliveries("consents", Some("dead"), 0, 100).await.expect("dead").is_empty());

    // A destination created later receives only what is committed after it.
    store.create_destination(destination("late", &["*"])).await.expect("create");
    assert_eq!(store.fan_out("late", &everything, 100).await.expect("fan out"), 0);
    store.enqueue(&s, vec![message("consent.granted", r#"{"late":1}"#)]).await.expect("enqueue");
    assert_eq!(store.fan_out("late", &everything, 100).await.expect("fan out"), 1);
    assert_eq!(store.fan_out("consents", &consents, 100).await.expect("fan out"), 1);
    let late = store.deliveries("late", None, 0, 100).await.expect("list");
    assert_eq!(late.len(), 1);
    assert_eq!(
        late[0].outbox_id,
        store.deliveries("consents", None, 0, 100).await.expect("list")[2].outbox_id
    );
}

pub async fn claims_keep_each_subjects_order(store: Arc<dyn Store>) {
    store.create_destination(destination("d", &["*"])).await.expect("create");
    let (a, b) = (subject("anna"), subject("ben"));
    store.enqueue(&a, vec![message("consent.granted", "a1")]).await.expect("enqueue");
    store.enqueue(&b, vec![message("consent.granted", "b1")]).await.expect("enqueue");
    store.enqueue(&a, vec![message("consent.withdrawn", "a2")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "d", &everything).await, 3);
    let t0 = Timestamp::now();

    let first = claim(&store, t0).await;
    let payloads: Vec<&str> = first.iter().map(|c| c.payload.as_str()).collect();
    assert_eq!(payloads, ["a1", "b1"], "oldest first; A2 waits for A1");
    assert_eq!((first[0].subject.as_ref(), first[0].attempts), (Some(&a), 0));
    assert_eq!(first[1].subject.as_ref(), Some(&b));
    assert!(first[0].outbox_id < first[1].outbox_id);
    assert!(claim(&store, t0).await.is_empty(), "leased, and A2 held back");
    // Outcomes recorded in one batch count like single ones.
    let batch = vec![
        ("d".to_owned(), first[0].outbox_id, DeliveryOutcome::Delivered { at: t0 }),
        ("d".to_owned(), first[1].outbox_id, DeliveryOutcome::Delivered { at: t0 }),
    ];
    store.complete_deliveries(batch).await.expect("batch");
    let next = claim(&store, t0).await;
    assert_eq!(next.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a2"], "A1 delivered: A2 goes");
    deliver(&store, &next[0]).await;
    let done = store.deliveries("d", Some("delivered"), 0, 10).await.expect("list");
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(done.iter().all(|d| d.attempts == 1));

    // A retry due later holds the subject's later messages back; a dead letter does not.
    let c = subject("cleo");
    store
        .enqueue(&c, vec![message("consent.granted", "c1"), message("consent.granted", "c2")])
        .await
        .expect("enqueue");
    assert_eq!(fan_out_all(&store, "d", &everything).await, 2);
    let t1 = Timestamp::now();
    let c1 = claim(&store, t1).await;
    assert_eq!(c1.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["c1"]);
    let retry = DeliveryOutcome::Retry { error: "HTTP 503".into(), next_attempt_at: t1.plus_seconds(3600) };
    store.complete_delivery("d", c1[0].outbox_id, retry).await.expect("retry");
    assert!(claim(&store, t1.plus_seconds(1)).await.is_empty(), "C1 not due, C2 waits behind it");
    let again = claim(&store, t1.plus_seconds(3601)).await;
    assert_eq!(again.iter().map(|c| (c.payload.as_str(), c.attempts)).collect::<Vec<_>>(), [("c1", 1)]);
    let dead = DeliveryOutcome::Dead { error: "HTTP 410".into() };
    store.complete_delivery("d", c1[0].outbox_id, dead).await.expect("dead");
    let c2 = claim(&store, t1.plus_seconds(3602)).await;
    assert_eq!(
        c2.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(),
        ["c2"],
        "a dead letter holds nothing back"
    );

    let dead = store.deliveries("d", Some("dead"), 0, 10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref(), dead[0].next_attempt_at),
        (2, Some("HTTP 410"), None)
    );
    assert!(store.destination("d").await.expect("read").expect("present").flagged, "a dead letter flags it");
    // Each attempt that applied is in the destination's minute buckets: three delivered, two failed.
    let since = crate::minute_of(t0) - 1;
    let buckets = store.delivery_attempts("d", since).await.expect("attempts");
    let sums = buckets.iter().fold((0, 0), |(ok, failed), b| (ok + b.ok, failed + b.failed));
    assert_eq!(sums, (3, 2), "{buckets:?}");
    assert_eq!(store.delivery_attempt_totals(since).await.expect("totals"), [("d".to_owned(), 3, 2)]);
    let late = DeliveryOutcome::Retry { error: "late".into(), next_attempt_at: t1 };
    store.complete_delivery("d", c1[0].outbox_id, late).await.expect("late");
    assert_eq!(
        store.delivery_attempt_totals(since).await.expect("totals"),
        [("d".to_owned(), 3, 2)],
        "no longer pending: no attempt"
    );
    let now = crate::minute_of(Timestamp::now());
    assert!(store.delivery_attempts("d", now + 1).await.expect("none later").is_empty());
    assert_eq!(store.prune_delivery_attempts(now + 1).await.expect("prune"), buckets.len() as u64);
    assert!(store.delivery_attempt_totals(since).await.expect("totals").is_empty(), "pruned");
    let delivered = store.deliveries("d", Some("delivered"), 0, 10).await.expect("delivered");
    assert_eq!(delivered.len(), 3);
    assert!(
        delivered.iter().all(|d| d.attempts == 1 && d.delivered_at.is_some() && d.next_attempt_at.is_none())
    );
}

/// Replaying one dead letter sends the subject's later messages again after it, so the destination does
/// not end on an older change (a withdrawal followed by a replayed grant would read as consent).
pub async fn replaying_a_dead_letter_resends_what_followed(store: Arc<dyn Store>) {
    store.create_destination(destination("d", &["*"])).await.expect("create");
    let (a, b) = (subject("anna"), subject("ben"));
    store
        .enqueue(&a, vec![message("consent.granted", "a1"), message("consent.withdrawn", "a2")])
        .await
        .expect("enqueue");
    store.enqueue(&b, vec![message("consent.granted", "b1")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "d", &everything).await, 3);
    let t0 = Timestamp::now();
    let first = claim(&store, t0).await;
    assert_eq!(first.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a1", "b1"]);
    let dead = DeliveryOutcome::Dead { error: "HTTP 410".into() };
    store.complete_delivery("d", first[0].outbox_id, dead).await.expect("dead");
    deliver(&store, &first[1]).await;
    let a2 = claim(&store, t0).await;
    assert_eq!(a2.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a2"]);
    deliver(&store, &a2[0]).await;

    assert!(!store.replay_dead_letter("d", a2[0].outbox_id, t0).await.expect("replay"), "not dead");
    assert!(store.replay_dead_letter("d", first[0].outbox_id, t0).await.expect("replay"));
    let again = claim(&store, t0).await;
    assert_eq!(
        again.iter().map(|c| (c.payload.as_str(), c.attempts)).collect::<Vec<_>>(),
        [("a1", 0)],
        "the replayed message first; Ben's delivered message stays delivered"
    );
    deliver(&store, &again[0]).await;
    let last = claim(&store, t0).await;
    assert_eq!(last.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a2"], "then what followed it");
    deliver(&store, &last[0]).await;
    assert!(claim(&store, t0).await.is_empty());
    assert!(store.deliveries("d", Some("dead"), 0, 10).await.expect("dead").is_empty());
}

pub async fn leases_expire(store: Arc<dyn Store>) {
    store.create_destination(destination("d", &["*"])).await.expect("create");
    store.enqueue(&subject("lee"), vec![message("consent.granted", "x")]).await.expect("enqueue");
    fan_out_all(&store, "d", &everything).await;
    let t0 = Timestamp::now();
    let first = store.claim_deliveries(t0, secs(30), 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        store.claim_deliveries(t0.plus_seconds(10), secs(30), 10).await.expect("claim").is_empty(),
        "leased"
    );
    let second = store.claim_deliveries(t0.plus_seconds(31), secs(30), 10).await.expect("claim");
    assert_eq!(claimed_ids(&second), claimed_ids(&first), "the lease ran out: claimable again");
    assert_eq!(second[0].attempts, 0, "a lapsed lease is not an attempt");
    deliver(&store, &second[0]).await;
    // The first worker reports late: a delivery no longer pending stays as it is.
    let late = DeliveryOutcome::Retry { error: "timeout".into(), next_attempt_at: t0 };
    store.complete_delivery("d", first[0].outbox_id, late).await.expect("late report");
    let listed = store.deliveries("d", None, 0, 10).await.expect("list");
    assert_eq!((listed[0].status.as_str(), listed[0].attempts), ("delivered", 1));
    assert!(store.claim_deliveries(t0.plus_seconds(100), secs(30), 10).await.expect("claim").is_empty());
}

pub async fn concurrent_claimers_never_share(store: Arc<dyn Store>) {
    store.create_destination(destination("d1", &["*"])).await.expect("create");
    store.create_destination(destination("d2", &["consent.*"])).await.expect("create");
    let mut tasks = Vec::new();
    for w in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let msgs = vec![message("consent.granted", &format!("{w}"))];
            store.enqueue(&subject(&format!("claim-{w}")), msgs).await.expect("enqueue");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(fan_out_all(&store, "d1", &everything).await, 60);
    assert_eq!(fan_out_all(&store, "d2", &matcher(&["consent.*"])).await, 60);
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_deliveries(now, secs(600), 7).await.expect("claim");
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed_ids(&claimed));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no delivery claimed twice");
    assert_eq!(total, 120, "every delivery claimed");
    assert!(store.claim_deliveries(now, secs(600), 100).await.expect("claim").is_empty());
}

pub async fn replay_from_id_and_time(store: Arc<dyn Store>) {
    store.create_destination(destination("d", &["*"])).await.expect("create");
    let mut times = Vec::new();
    for i in 0..6 {
        let t = if i % 2 == 0 { "consent.granted" } else { "subject.erased" };
        store
            .enqueue(&subject(&format!("re-{i}")), vec![message(t, &format!("{i}"))])
            .await
            .expect("enqueue");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        times.push(Timestamp::now());
    }
    assert_eq!(fan_out_all(&store, "d", &everything).await, 6);
    for c in claim(&store, Timestamp::now()).await {
        deliver(&store, &c).await;
    }
    let listed = store.deliveries("d", None, 0, 100).await.expect("list");
    assert!(listed.iter().all(|d| d.status == "delivered"));
    let ids: Vec<i64> = listed.iter().map(|d| d.outbox_id).collect();

    // From an outbox id: messages 2..6; with a filter, the granted ones among them.
    let always = Timestamp::from_micros(0);
    assert_eq!(
        store
            .replay("d", ReplayFrom::OutboxId(ids[2]), always, &matcher(&["consent.*"]))
            .await
            .expect("replay"),
        2
    );
    let pending: Vec<i64> = store
        .deliveries("d", Some("pending"), 0, 100)
        .await
        .expect("list")
        .iter()
        .map(|d| d.outbox_id)
        .collect();
    assert_eq!(pending, [ids[2], ids[4]]);
    let reset = store.deliveries("d", Some("pending"), 0, 1).await.expect("list");
    assert_eq!((reset[0].attempts, reset[0].delivered_at, reset[0].last_error.clone()), (0, None, None));
    // From a time: the messages created after the third one.
    assert_eq!(store.replay("d", ReplayFrom::Time(times[2]), always, &everything).await.expect("replay"), 3);
    let pending = store.deliveries("d", Some("pending"), 0, 100).await.expect("list");
    assert_eq!(pending.iter().map(|d| d.outbox_id).collect::<Vec<_>>(), [ids[2], ids[3], ids[4], ids[5]]);
    let replayed = claim(&store, Timestamp::now()).await;
    assert_eq!(replayed.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["2", "3", "4", "5"]);

    // Replay inserts deliveries the filter once left out, and stops at what was fanned out so far.
    let narrow = destination("narrow", &["subject.*"]);
    let created = narrow.record.created_at;
    store.create_destination(narrow).await.expect("create");
    store.enqueue(&subject("re-9"), vec![message("consent.special", "9")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "narrow", &matcher(&["subject.*"])).await, 1);
    assert!(store.deliveries("narrow", None, 0, 100).await.expect("list").is_empty());
    store.enqueue(&subject("re-10"), vec![message("consent.special", "10")]).await.expect("enqueue");
    let special = matcher(&["consent.special"]);
    assert_eq!(store.replay("narrow", ReplayFrom::Time(created), always, &special).await.expect("replay"), 1);
    assert_eq!(store.deliveries("narrow", None, 0, 100).await.expect("list").len(), 1);
    assert_eq!(store.fan_out("narrow", &everything, 100).await.expect("fan out"), 1, "the rest by fan-out");
    assert_eq!(store.deliveries("narrow", None, 0, 100).await.expect("list").len(), 2);
    // Nothing written before the destination was created: refused, not silently shortened.
    let erased = matcher(&["subject.*"]);
    for from in [ReplayFrom::OutboxId(ids[0]), ReplayFrom::OutboxId(0), ReplayFrom::Time(times[0])] {
        let refused = store.replay("narrow", from, always, &erased).await;
        assert!(matches!(refused, Err(StoreError::OutOfReach(_))), "{from:?}: {refused:?}");
    }
    assert_eq!(store.deliveries("narrow", None, 0, 100).await.expect("list").len(), 2);
    // Nor anything older than the retention window (`not_before`), by time or by id.
    for from in [ReplayFrom::Time(times[0]), ReplayFrom::OutboxId(ids[0])] {
        let refused = store.replay("d", from, times[1], &everything).await;
        assert!(matches!(refused, Err(StoreError::OutOfReach(_))), "{from:?}: {refused:?}");
    }
    assert_eq!(store.replay("nope", ReplayFrom::OutboxId(0), always, &everything).await.expect("replay"), 0);
}

pub async fn delete_destination_cascades(store: Arc<dyn Store>) {
    store.create_destination(destination("gone", &["*"])).await.expect("create");
    store.create_destination(destination("kept", &["*"])).await.expect("create");
    store
        .enqueue(&subject("del"), vec![message("consent.granted", "1"), message("consent.granted", "2")])
        .await
        .expect("enqueue");
    fan_out_all(&store, "gone", &everything).await;
    fan_out_all(&store, "kept", &everything).await;
    let claimed = claim(&store, Timestamp::now()).await;
    assert_eq!(claimed.len(), 2, "one per destination");
    let dead = DeliveryOutcome::Dead { error: "x".into() };
    let gone = claimed.iter().find(|c| c.destination_id == "gone").expect("claimed for gone");
    store.complete_delivery("gone", gone.outbox_id, dead).await.expect("dead");
    assert_eq!(store.dead_letters().await.expect("count"), 1);

    assert!(store.delete_destination("gone").await.expect("delete"));
    assert!(!store.delete_destination("gone").await.expect("delete again"));
    assert!(store.destination("gone").await.expect("read").is_none());
    assert!(store.destination_secret("gone").await.expect("secret").is_none());
    assert!(store.deliveries("gone", None, 0, 100).await.expect("list").is_empty());
    assert_eq!(store.dead_letters().await.expect("count"), 0);
    assert!(store.destination_secret("kept").await.expect("secret").is_some());
    assert_eq!(store.deliveries("kept", None, 0, 100).await.expect("list").len(), 2);
    assert!(
        claim(&store, Timestamp::now().plus_seconds(120)).await.iter().all(|c| c.destination_id == "kept")
    );
    // The id can be used again; the new destination starts from now.
    store.create_destination(destination("gone", &["*"])).await.expect("re-create");
    assert_eq!(store.fan_out("gone", &everything, 100).await.expect("fan out"), 0);
    assert!(!store.destination("gone").await.expect("read").expect("present").flagged);
}

pub async fn paused_destinations_are_not_claimed(store: Arc<dyn Store>) {
    let mut paused = destination("paused", &["*"]);
    paused.record.paused = true;
    store.create_destination(paused).await.expect("create");
    store.create_destination(destination("live", &["*"])).await.expect("create");
    store.enqueue(&subject("pia"), vec![message("consent.granted", "p")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "paused", &everything).await, 1, "a paused destination still fans out");
    fan_out_all(&store, "live", &everything).await;
    let now = Timestamp::now();
    let claimed = claim(&store, now).await;
    assert_eq!(claimed.iter().map(|c| c.destination_id.as_str()).collect::<Vec<_>>(), ["live"]);
    deliver(&store, &claimed[0]).await;
    assert!(claim(&store, now).await.is_empty());
    let resume = DestinationPatch { paused: Some(false), ..Default::default() };
    assert!(store.update_destination("paused", resume).await.expect("resume"));
    let claimed = claim(&store, now).await;
    assert_eq!(claimed.iter().map(|c| c.destination_id.as_str()).collect::<Vec<_>>(), ["paused"]);
}

pub async fn outbox_lag_and_dead_letters(store: Arc<dyn Store>) {
    assert_eq!(store.outbox_lag(Timestamp::now()).await.expect("lag"), None);
    assert_eq!(store.dead_letters().await.expect("dead"), 0);
    store.create_destination(destination("d", &["*"])).await.expect("create");
    let before = Timestamp::now();
    store.enqueue(&subject("lu"), vec![message("consent.granted", "1")]).await.expect("enqueue");
    store.enqueue(&subject("lo"), vec![message("consent.granted", "2")]).await.expect("enqueue");
    let after = Timestamp::now();
    assert_eq!(store.outbox_lag(after).await.expect("lag"), None, "nothing pending before fan-out");
    fan_out_all(&store, "d", &everything).await;
    let lag = store.outbox_lag(after.plus_seconds(10)).await.expect("lag").expect("pending");
    let span = (after.micros() - before.micros()) as f64 / 1e6;
    assert!((10.0..=10.0 + span).contains(&lag), "lag {lag}");
    let claimed = claim(&store, after.plus_seconds(10)).await;
    assert_eq!(claimed.len(), 2);
    deliver(&store, &claimed[0]).await;
    assert!(store.outbox_lag(after.plus_seconds(10)).await.expect("lag").is_some(), "one still pending");
    store
        .complete_delivery("d", claimed[1].outbox_id, DeliveryOutcome::Dead { error: "gone".into() })
        .await
        .expect("dead");
    assert_eq!(store.outbox_lag(after.plus_seconds(10)).await.expect("lag"), None);
    assert_eq!(store.dead_letters().await.expect("dead"), 1);
    // A paused destination's backlog is intended: it does not count as lag.
    store.enqueue(&subject("lu"), vec![message("consent.granted", "3")]).await.expect("enqueue");
    fan_out_all(&store, "d", &everything).await;
    assert!(store.outbox_lag(Timestamp::now()).await.expect("lag").is_some());
    store
        .update_destination("d", DestinationPatch { paused: Some(true), ..Default::default() })
        .await
        .expect("pause");
    assert_eq!(store.outbox_lag(Timestamp::now()).await.expect("lag"), None);
}
