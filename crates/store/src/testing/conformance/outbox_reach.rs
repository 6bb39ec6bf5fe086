//! Conformance checks for what the outbox keeps: only messages some destination wants, and only until
//! every destination has passed them and none can replay them any more.

use std::sync::Arc;

use consentry_core::{Action, Event, Timestamp};

use super::fixtures::{change, subject};
use super::outbox::{claim, deliver, destination, everything, fan_out_all, message, outbox_sealer};
use crate::{
    DeliveryOutcome, DestinationPatch, OutboxEvent, OutboxMessage, ReplayFrom, Sealed, Sealer, Store,
    StoreError,
};

/// Runs the sweep to its end with everything outside the retention window; returns the messages deleted.
async fn sweep(store: &Arc<dyn Store>, not_before: Timestamp) -> u64 {
    let (mut after, mut total) = (0, 0);
    loop {
        let step = store.prune_outbox(after, not_before, 2).await.expect("prune");
        total += step.deleted;
        if step.done {
            return total;
        }
        after = step.last;
    }
}

fn far_future() -> Timestamp {
    Timestamp::now().plus_seconds(86_400)
}

pub async fn outbox_keeps_only_what_a_destination_wants(store: Arc<dyn Store>) {
    // No destination: nothing is written, whichever way a message comes.
    let ann = subject("ann");
    let sealer = outbox_sealer("rcpt_w1", &["consent.granted", "consent.withdrawn"]);
    store.append_sealed(&ann, vec![change("ads", Action::Grant, &[])], Some(sealer)).await.expect("append");
    store.enqueue(&ann, vec![message("subject.erased", "{}")]).await.expect("enqueue");
    assert_eq!(sweep(&store, far_future()).await, 0, "no message was stored");

    // Only the types some destination wants, paused ones included.
    let mut paused = destination("paused", &["subject.*"]);
    paused.record.paused = true;
    store.create_destination(paused).await.expect("create");
    store.create_destination(destination("w", &["consent.withdrawn"])).await.expect("create");
    let sealer = outbox_sealer("rcpt_w2", &["consent.granted", "consent.withdrawn", "subject.erased"]);
    store
        .append_sealed(&ann, vec![change("ads", Action::Withdraw, &[])], Some(sealer))
        .await
        .expect("append");
    store
        .enqueue(&ann, vec![message("request.created", "{}"), message("consent.withdrawn", "{}")])
        .await
        .expect("enqueue");
    // Fan-out reads every stored message, wanted by this destination or not.
    assert_eq!(fan_out_all(&store, "w", &everything).await, 3, "withdrawn twice and erased");
    let claimed = claim(&store, Timestamp::now()).await;
    assert!(claimed.iter().all(|c| c.event_type != "consent.granted" && c.event_type != "request.created"));

    // A changed filter applies to what commits after it.
    let wider = DestinationPatch { event_types: Some(vec!["consent.*".into()]), ..Default::default() };
    assert!(store.update_destination("w", wider).await.expect("patch"));
    store.enqueue(&ann, vec![message("consent.granted", "{}")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "w", &everything).await, 1);
    // A deleted destination's types are no longer stored.
    assert!(store.delete_destination("w").await.expect("delete"));
    store.enqueue(&ann, vec![message("consent.granted", "{}")]).await.expect("enqueue");
    assert_eq!(fan_out_all(&store, "paused", &everything).await, 4, "the four stored since, not the last");
}

pub async fn outbox_sweep_keeps_what_is_still_needed(store: Arc<dyn Store>) {
    store.create_destination(destination("d", &["*"])).await.expect("create");
    let (a, b) = (subject("sw-a"), subject("sw-b"));
    for n in 1..=3 {
        store.enqueue(&a, vec![message("consent.granted", &format!("a{n}"))]).await.expect("enqueue");
    }
    store.enqueue(&b, vec![message("consent.granted", "b1")]).await.expect("enqueue");
    // Not fanned out yet: nothing goes.
    assert_eq!(sweep(&store, far_future()).await, 0);
    assert_eq!(fan_out_all(&store, "d", &everything).await, 4);
    // a1 and b1 delivered, a2 dead-lettered, a3 delivered after it.
    let now = Timestamp::now();
    let first = claim(&store, now).await;
    assert_eq!(first.len(), 2);
    let ids: Vec<i64> = first.iter().map(|c| c.outbox_id).collect();
    for c in &first {
        deliver(&store, c).await;
    }
    let second = claim(&store, now).await;
    assert_eq!(second.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a2"]);
    let dead = DeliveryOutcome::Dead { error: "gone".into() };
    store.complete_delivery("d", second[0].outbox_id, dead).await.expect("dead");
    let third = claim(&store, now).await;
    assert_eq!(third.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a3"]);
    deliver(&store, &third[0]).await;

    // Within the retention window everything stays; outside it, what was delivered goes, but not the
    // dead letter nor the same subject's later message (replaying the dead letter sends it again).
    assert_eq!(sweep(&store, Timestamp::from_micros(0)).await, 0);
    assert_eq!(sweep(&store, far_future()).await, 2);
    let left: Vec<i64> =
        store.deliveries("d", None, 0, 100).await.expect("list").iter().map(|d| d.outbox_id).collect();
    assert_eq!(left, [second[0].outbox_id, third[0].outbox_id]);
    // What was deleted can no longer be replayed: refused, not skipped.
    let refused =
        store.replay("d", ReplayFrom::OutboxId(ids[0]), Timestamp::from_micros(0), &everything).await;
    assert!(matches!(refused, Err(StoreError::OutOfReach(_))), "{refused:?}");
    assert!(store.replay_dead_letter("d", second[0].outbox_id, now).await.expect("replay"));
    let again = claim(&store, now).await;
    assert_eq!(again.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a2"]);
    deliver(&store, &again[0]).await;
    let again = claim(&store, now).await;
    assert_eq!(again.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["a3"]);

    // A pending delivery stays, and so does what a later destination has not fanned out yet.
    store.create_destination(destination("e", &["consent.*"])).await.expect("create");
    store.enqueue(&b, vec![message("consent.granted", "b2")]).await.expect("enqueue");
    fan_out_all(&store, "d", &everything).await;
    deliver(&store, &again[0]).await;
    let b2 = claim(&store, Timestamp::now()).await;
    assert_eq!(b2.iter().map(|c| c.payload.as_str()).collect::<Vec<_>>(), ["b2"]);
    deliver(&store, &b2[0]).await;
    assert_eq!(sweep(&store, far_future()).await, 2, "a2 and a3, delivered now; b2 waits for e");
    fan_out_all(&store, "e", &everything).await;
    assert_eq!(sweep(&store, far_future()).await, 0, "b2 is pending for e");
    let e = claim(&store, Timestamp::now()).await;
    deliver(&store, &e[0]).await;
    assert_eq!(sweep(&store, Timestamp::from_micros(0)).await, 0, "d and e may still replay b2");
    assert_eq!(sweep(&store, far_future()).await, 1);
    assert!(store.deliveries("d", None, 0, 100).await.expect("list").is_empty());

    // With no destination left, every message goes.
    store.create_destination(destination("f", &["*"])).await.expect("create");
    store.enqueue(&b, vec![message("consent.granted", "b3")]).await.expect("enqueue");
    for id in ["d", "e", "f"] {
        assert!(store.delete_destination(id).await.expect("delete"));
    }
    assert_eq!(sweep(&store, Timestamp::from_micros(0)).await, 1);
}

/// A sealer is told which types some destination wants, as the writing transaction sees them; a message
/// about a ledger event keeps the event's seq and its source, and a claim hands back the event itself.
pub async fn slim_messages_claim_their_ledger_event(store: Arc<dyn Store>) {
    let s = subject("slim");
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seal = |asked: Arc<std::sync::Mutex<Vec<(bool, bool)>>>| -> Sealer {
        Box::new(move |placed: &[Event], wants: &crate::Wants<'_>| {
            asked.lock().expect("lock").push((wants("consent.granted"), wants("record.deleted")));
            let outbox = placed
                .iter()
                .map(|e| OutboxMessage {
                    event_type: "consent.granted".into(),
                    payload: r#"{"decided":1}"#.into(),
                    event: Some(OutboxEvent { seq: e.seq, source: "urn:queued".into() }),
                })
                .collect();
            Ok(Sealed { receipt: None, outbox, in_force: Vec::new() })
        })
    };
    let grant = || vec![change("analytics", Action::Grant, &[])];
    store.append_sealed(&s, grant(), Some(seal(Arc::clone(&asked)))).await.expect("append");
    store.create_destination(destination("consents", &["consent.*"])).await.expect("create");
    let (placed, _) = store.append_sealed(&s, grant(), Some(seal(Arc::clone(&asked)))).await.expect("append");
    assert_eq!(*asked.lock().expect("lock"), [(false, false), (true, false)], "what the sealers were told");
    assert_eq!(fan_out_all(&store, "consents", &everything).await, 1, "only the wanted message was stored");
    let claimed = claim(&store, Timestamp::now()).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].payload, r#"{"decided":1}"#);
    let event = claimed[0].event.as_ref().expect("its ledger event");
    assert_eq!((event.seq, event.source.as_str()), (placed[0].seq, "urn:queued"));
    assert_eq!(event.event.as_ref(), Some(&placed[0]), "the event as the ledger holds it");
    // A message stored whole names no event.
    store.enqueue(&s, vec![message("consent.granted", "{}")]).await.expect("enqueue");
    deliver(&store, &claimed[0]).await;
    fan_out_all(&store, "consents", &everything).await;
    let whole = claim(&store, Timestamp::now()).await;
    assert_eq!(
        whole.iter().map(|c| (c.payload.as_str(), c.event.is_none())).collect::<Vec<_>>(),
        [("{}", true)]
    );
}
