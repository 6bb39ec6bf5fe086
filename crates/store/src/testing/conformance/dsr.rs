//! Conformance checks for data subject requests and erasure ([`crate::requests::RequestStore`]).

use std::sync::Arc;

use consentry_core::ledger::ChainVerifier;
use consentry_core::request::add_months;
use consentry_core::{Action, NewEvent, Scope, SubjectId, Timestamp};

use crate::requests::{
    ChangeOutcome, HistoryChange, NewRequest, Refusal, RequestAction, RequestFilter, RequestKind,
    RequestStatus, StoredRequest, SubjectErased, SubjectErasure, TaskStatus,
};
use crate::vault::{Kek, NewRecord, new_record_id};
use crate::{DestinationRecord, DeviceRecord, NewDestination, NewDevice, OutboxMessage, Store, StoreError};

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn new_request(
    id: &str,
    who: &str,
    kind: RequestKind,
    received: Timestamp,
    destinations: &[&str],
) -> NewRequest {
    NewRequest {
        id: id.into(),
        subject: subject(who),
        kind,
        details: Some(r#"{"purpose":"analytics"}"#.into()),
        received_at: received,
        destinations: destinations.iter().map(|d| (*d).to_owned()).collect(),
        actor: "key:test".into(),
        messages: vec![OutboxMessage {
            event_type: "request.created".into(),
            payload: format!(r#"{{"id":"{id}"}}"#),
            event: None,
        }],
    }
}

fn changed(outcome: ChangeOutcome) -> StoredRequest {
    match outcome {
        ChangeOutcome::Changed(r) => *r,
        other => panic!("expected a change, got {other:?}"),
    }
}

async fn destination(store: &Arc<dyn Store>, id: &str) {
    store
        .create_destination(NewDestination {
            record: DestinationRecord {
                id: id.into(),
                name: id.into(),
                kind: "webhook".into(),
                url: "http://127.0.0.1:9/".into(),
                target: None,
                event_types: vec!["request.*".into(), "subject.erased".into()],
                paused: false,
                flagged: false,
                created_at: Timestamp::now(),
            },
            secret: Some(vec![7; 32]),
        })
        .await
        .expect("destination");
}

/// A request is created with its tasks, history and outbox message; it completes only when its own part
/// and every task are done; closed requests take no more changes; every change is kept.
pub async fn requests_lifecycle(store: Arc<dyn Store>) {
    destination(&store, "crm").await;
    let t0 = Timestamp::from_micros(1_700_000_000_000_000);
    store
        .create_request(new_request("req_1", "ann", RequestKind::Erasure, t0, &["crm", "shop", "crm"]))
        .await
        .expect("create");
    assert!(matches!(
        store.create_request(new_request("req_1", "ann", RequestKind::Access, t0, &[])).await,
        Err(StoreError::Conflict(_))
    ));
    let got = store.request("req_1").await.expect("read").expect("found");
    assert_eq!(got.record.subject, Some(subject("ann")));
    assert_eq!((got.record.kind, got.record.status), (RequestKind::Erasure, RequestStatus::Received));
    assert_eq!((got.record.received_at, got.record.due_at), (t0, add_months(t0, 1)), "due in a month");
    assert_eq!((got.tasks.len(), got.record.pending_tasks), (2, 2), "one task per destination");
    assert!(got.tasks.iter().all(|t| t.status == TaskStatus::Pending));
    assert_eq!(got.history.len(), 1);
    assert_eq!((got.history[0].change, got.history[0].actor.as_str()), (HistoryChange::Received, "key:test"));
    // The announcement is in the outbox with the request, for the subject.
    store.fan_out("crm", &|_| true, 100).await.expect("fan out");
    let claimed = store
        .claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].event_type.as_str(), claimed[0].subject.clone()),
        ("request.created", Some(subject("ann")))
    );

    let t1 = t0.plus_seconds(10);
    let r = changed(store.change_request("req_1", RequestAction::Start, t1, "system").await.expect("start"));
    assert_eq!(r.record.status, RequestStatus::InProgress);
    let r = changed(
        store
            .change_request("req_1", RequestAction::OwnPartDone { note: Some("erased".into()) }, t1, "system")
            .await
            .expect("own part"),
    );
    assert_eq!((r.record.status, r.record.own_done_at), (RequestStatus::InProgress, Some(t1)));
    let complete =
        |d: &str| RequestAction::CompleteTask { destination_id: d.into(), note: Some("done".into()) };
    assert_eq!(
        store.change_request("req_1", complete("nowhere"), t1, "key:k").await.expect("unknown"),
        ChangeOutcome::Refused(Refusal::UnknownTask)
    );
    let r = changed(store.change_request("req_1", complete("crm"), t1, "key:k").await.expect("crm"));
    assert_eq!(r.record.status, RequestStatus::InProgress, "one task is still pending");
    assert_eq!(
        store.change_request("req_1", complete("crm"), t1, "key:k").await.expect("again"),
        ChangeOutcome::Refused(Refusal::TaskAlreadyCompleted)
    );
    let t2 = t1.plus_seconds(5);
    let r = changed(store.change_request("req_1", complete("shop"), t2, "key:k").await.expect("shop"));
    assert_eq!((r.record.status, r.record.closed_at), (RequestStatus::Completed, Some(t2)));
    assert_eq!(r.record.pending_tasks, 0);
    assert!(r.tasks.iter().all(|t| t.status == TaskStatus::Completed && t.note.as_deref() == Some("done")));
    assert_eq!(r.tasks.iter().map(|t| t.completed_at).collect::<Vec<_>>(), [Some(t1), Some(t2)]);
    let last = &r.history[r.history.len() - 2..];
    assert_eq!(
        last.iter().map(|h| (h.status, h.actor.as_str(), h.note.as_deref())).collect::<Vec<_>>(),
        [(RequestStatus::InProgress, "key:k", Some("shop")), (RequestStatus::Completed, "key:k", None)],
        "the history keeps who did it, the destination confirmed and the status after each change"
    );
    let changes: Vec<&str> = r.history.iter().map(|h| h.change.as_str()).collect();
    assert_eq!(
        changes,
        ["received", "started", "own_part_done", "task_completed", "task_completed", "completed"]
    );
    assert_eq!(
        store
            .change_request("req_1", RequestAction::Reject { reason: "late".into() }, t2, "key:k")
            .await
            .expect("closed"),
        ChangeOutcome::Refused(Refusal::Closed(RequestStatus::Completed))
    );
    assert_eq!(store.request("req_1").await.expect("read").expect("found"), r, "a refusal changes nothing");
    assert_eq!(
        store.change_request("req_9", RequestAction::Start, t2, "key:k").await.expect("missing"),
        ChangeOutcome::NotFound
    );

    // Without tasks, the own part completes it; extension and rejection keep their reason.
    store.create_request(new_request("req_2", "ann", RequestKind::Access, t0, &[])).await.expect("create 2");
    let r = changed(
        store
            .change_request("req_2", RequestAction::OwnPartDone { note: None }, t1, "system")
            .await
            .expect("own"),
    );
    assert_eq!(r.record.status, RequestStatus::Completed);
    store
        .create_request(new_request("req_3", "bob", RequestKind::Objection, t0, &[]))
        .await
        .expect("create 3");
    let extend = |months: u32| RequestAction::Extend { months, reason: "complex".into() };
    let r = changed(store.change_request("req_3", extend(1), t1, "key:k").await.expect("extend"));
    assert_eq!((r.record.due_at, r.record.reason.as_deref()), (add_months(t0, 2), Some("complex")));
    assert_eq!(r.record.status, RequestStatus::Received, "an extension does not start the request");
    assert_eq!(
        store.change_request("req_3", extend(2), t1, "key:k").await.expect("too far"),
        ChangeOutcome::Refused(Refusal::ExtensionBeyondLimit),
        "two months beyond the first at most, in total"
    );
    let r = changed(
        store
            .change_request("req_3", RequestAction::Reject { reason: "no id".into() }, t2, "key:k")
            .await
            .expect("reject"),
    );
    assert_eq!((r.record.status, r.record.reason.as_deref()), (RequestStatus::Rejected, Some("no id")));
    assert_eq!((r.record.due_at, r.record.closed_at), (add_months(t0, 2), Some(t2)));
}

/// Lists filter by subject, status, type and overdue, in pages by id; overdue requests are marked (and
/// announced) once; counts include pending tasks.
pub async fn requests_list_and_overdue(store: Arc<dyn Store>) {
    let t0 = Timestamp::from_micros(1_700_000_000_000_000);
    for (i, who) in ["ann", "bob", "ann"].iter().enumerate() {
        let kind = if i == 1 { RequestKind::Erasure } else { RequestKind::Access };
        store
            .create_request(new_request(&format!("req_{i}"), who, kind, t0, &["crm"]))
            .await
            .expect("create");
    }
    let all = |f: RequestFilter| {
        let store = Arc::clone(&store);
        async move { store.requests(&f).await.expect("list").into_iter().map(|r| r.id).collect::<Vec<_>>() }
    };
    assert_eq!(all(RequestFilter { limit: 10, ..Default::default() }).await, ["req_0", "req_1", "req_2"]);
    assert_eq!(all(RequestFilter { limit: 2, ..Default::default() }).await, ["req_0", "req_1"]);
    assert_eq!(
        all(RequestFilter { limit: 2, after: Some("req_1".into()), ..Default::default() }).await,
        ["req_2"]
    );
    assert_eq!(
        all(RequestFilter { limit: 10, subject: Some(subject("ann")), ..Default::default() }).await,
        ["req_0", "req_2"]
    );
    assert_eq!(
        all(RequestFilter { limit: 10, kind: Some(RequestKind::Erasure), ..Default::default() }).await,
        ["req_1"]
    );
    assert!(
        all(RequestFilter { limit: 10, subject: Some(subject("nobody")), ..Default::default() })
            .await
            .is_empty()
    );
    changed(
        store
            .change_request("req_2", RequestAction::Reject { reason: "x".into() }, t0, "k")
            .await
            .expect("reject"),
    );
    assert_eq!(
        all(RequestFilter { limit: 10, status: Some(RequestStatus::Rejected), ..Default::default() }).await,
        ["req_2"]
    );

    // None has its own part done: all three are unfinished once received; req_2 is closed.
    let unfinished = |at: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .unfinished_requests(at, 10)
                .await
                .expect("unfinished")
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(unfinished(t0).await, ["req_0", "req_1"]);
    assert!(unfinished(t0.plus_seconds(-1)).await.is_empty(), "received later");
    changed(
        store
            .change_request("req_1", RequestAction::OwnPartDone { note: None }, t0, "k")
            .await
            .expect("own part"),
    );
    assert_eq!(unfinished(t0).await, ["req_0"]);

    let before_due = t0.plus_seconds(29 * 86_400);
    let after_due = t0.plus_seconds(31 * 86_400);
    assert_eq!(
        all(RequestFilter { limit: 10, overdue_at: Some(before_due), ..Default::default() }).await.len(),
        0
    );
    assert_eq!(
        all(RequestFilter { limit: 10, overdue_at: Some(after_due), ..Default::default() }).await,
        ["req_0", "req_1"],
        "closed requests are never overdue"
    );
    assert_eq!(store.overdue_counts(before_due).await.expect("counts"), (0, 0));
    assert_eq!(store.overdue_counts(after_due).await.expect("counts"), (2, 2));
    assert!(store.unmarked_overdue(before_due, 10).await.expect("none").is_empty());
    let due = store.unmarked_overdue(after_due, 10).await.expect("due");
    assert_eq!(due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["req_0", "req_1"]);
    let msg = || OutboxMessage { event_type: "request.overdue".into(), payload: "{}".into(), event: None };
    assert!(store.mark_overdue("req_0", after_due, msg()).await.expect("mark"));
    assert!(!store.mark_overdue("req_0", after_due, msg()).await.expect("once"));
    assert!(!store.mark_overdue("req_2", after_due, msg()).await.expect("closed"));
    let due = store.unmarked_overdue(after_due, 10).await.expect("due");
    assert_eq!(due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["req_1"]);
    let r = store.request("req_0").await.expect("read").expect("found");
    assert_eq!(r.record.overdue_at, Some(after_due));
    let last = r.history.last().map(|h| (h.change, h.status, h.actor.as_str()));
    assert_eq!(last, Some((HistoryChange::Overdue, RequestStatus::Received, "system")));
    // An extension moves the deadline and allows one more mark for the new one.
    let extend = RequestAction::Extend { months: 1, reason: "complex".into() };
    changed(store.change_request("req_0", extend, after_due, "key:k").await.expect("extend"));
    assert!(!store.mark_overdue("req_0", after_due, msg()).await.expect("not due again yet"));
    let after_new_due = t0.plus_seconds(62 * 86_400);
    assert!(store.mark_overdue("req_0", after_new_due, msg()).await.expect("due again"));
}

/// Erasure deletes the vault (and its data key), the devices and the receipts' rows, queues its notice
/// under the pseudonym, clears request details and keeps a tombstone; its messages name the subject while
/// the pseudonym key exists, and once it is destroyed (reads by subject find nothing, the ledger still
/// verifies and keeps its events) a message still pending goes out without the id. Every part may run
/// again and erases nothing twice.
pub async fn erasure_destroys_the_key_and_keeps_the_chain(store: Arc<dyn Store>) {
    let secret = store.erasure_secret().await.expect("secret");
    assert_eq!(store.erasure_secret().await.expect("same secret"), secret);
    let ann = subject("ann");
    let grant = NewEvent {
        evidence: None,
        occurred_at: None,
        jurisdiction: None,
        purpose: "analytics".into(),
        action: Action::Grant,
        scope: Scope::default(),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: None,
        actor: "key:test".into(),
        expires_at: None,
    };
    let seal: crate::Sealer = Box::new(|events: &[consentry_core::Event], _: &crate::Wants<'_>| {
        Ok(crate::Sealed {
            receipt: Some(super::fixtures::sealed_receipt("rcp_ann".into(), events)),
            outbox: Vec::new(),
            in_force: Vec::new(),
        })
    });
    store.append_sealed(&ann, vec![grant.clone()], Some(seal)).await.expect("append");
    assert!(store.receipt("rcp_ann").await.expect("receipt").is_some());
    store.append(&subject("bob"), vec![grant]).await.expect("append");
    let held: Vec<String> =
        store.subject_receipts(&ann).await.expect("receipts").into_iter().map(|r| r.id).collect();
    assert_eq!(held, ["rcp_ann"], "the subject's own receipts, before the erasure");
    assert!(store.subject_receipts(&subject("bob")).await.expect("receipts").is_empty());
    let recent: Vec<String> =
        store.recent_receipts(&ann, 5).await.expect("receipts").into_iter().map(|r| r.id).collect();
    assert_eq!(recent, ["rcp_ann"]);
    assert!(store.recent_receipts(&ann, 0).await.expect("receipts").is_empty());
    let t0 = Timestamp::now();
    store.create_request(new_request("req_1", "ann", RequestKind::Erasure, t0, &[])).await.expect("create");
    destination(&store, "crm").await;
    let kek = Kek::generate().expect("kek");
    let record = |who: &str| NewRecord {
        id: new_record_id(t0).expect("record id"),
        subject: subject(who),
        device_id: None,
        category: "user.contact.email".into(),
        purpose: "analytics".into(),
        content_type: "text/plain".into(),
        collected_at: t0,
        stored_at: t0,
        delete_after: None,
        data: b"someone@example.com".to_vec(),
    };
    let anns = store.put_record(&kek, record("ann")).await.expect("put").id;
    let bobs = store.put_record(&kek, record("bob")).await.expect("put").id;
    for (id, who) in [("dev_ann", "ann"), ("dev_bob", "bob")] {
        let device = DeviceRecord {
            id: id.into(),
            subject: subject(who),
            name: "Speaker".into(),
            kind: "speaker".into(),
            categories: vec!["user.device".into()],
            purposes: vec!["analytics".into()],
            created_at: t0,
            last_seen: None,
        };
        let token_hash = [u8::from(who == "ann"); 32];
        store.create_device(NewDevice { record: device, token_hash }).await.expect("pair");
    }

    store.add_erasure_tombstone("tomb-ann", t0).await.expect("tombstone");
    store.add_erasure_tombstone("tomb-ann", t0).await.expect("tombstone again");
    assert_eq!(store.erasure_tombstones().await.expect("tombstones"), ["tomb-ann"]);
    let erasure = || SubjectErasure {
        subject: ann.clone(),
        at: t0,
        notices: vec![OutboxMessage {
            event_type: "subject.erased".into(),
            payload: "{}".into(),
            event: None,
        }],
    };
    let erased = store.erase_subject(erasure()).await.expect("erase");
    assert_eq!(
        erased,
        SubjectErased { records: 1, data_key: true, devices: vec!["dev_ann".into()], had_key: true }
    );
    assert!(store.record_meta(&anns).await.expect("meta").is_none());
    assert!(store.record(&kek, &bobs).await.expect("read").is_some(), "another subject's record stays");
    assert_eq!(store.device("dev_ann").await.expect("device"), None);
    assert!(store.device("dev_bob").await.expect("device").is_some(), "another subject's device stays");
    assert_eq!(store.receipt("rcp_ann").await.expect("receipt"), None, "no longer to be built: its row went");
    assert!(store.subject_receipts(&ann).await.expect("receipts").is_empty());
    let r = store.request("req_1").await.expect("read").expect("kept");
    assert_eq!(r.record.details, None, "details cleared");

    // While the pseudonym key exists, the queued message goes out naming the subject.
    let pending = || async { store.subject_messages_pending(&ann).await.expect("pending") };
    assert!(pending().await, "a message is still to fan out");
    store.fan_out("crm", &|_| true, 100).await.expect("fan out");
    assert!(pending().await, "a delivery is pending");
    let claim = || async {
        store.claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(60), 10).await.expect("claim")
    };
    let claimed = claim().await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].subject, Some(ann.clone()));
    let delivered = crate::DeliveryOutcome::Delivered { at: Timestamp::now() };
    store.complete_delivery("crm", claimed[0].outbox_id, delivered.clone()).await.expect("delivered");
    assert!(!pending().await, "nothing left to go out");
    assert!(!store.subject_messages_pending(&subject("bob")).await.expect("pending"));

    // One still pending when the key goes out goes out without naming her.
    let late = OutboxMessage { event_type: "request.overdue".into(), payload: "{}".into(), event: None };
    store.enqueue(&ann, vec![late]).await.expect("enqueue");
    store.fan_out("crm", &|_| true, 100).await.expect("fan out");
    assert!(pending().await);
    assert!(store.destroy_subject_key(&ann).await.expect("destroy"));
    assert!(!store.destroy_subject_key(&ann).await.expect("destroy again"), "destroyed once");
    assert!(!pending().await, "nothing that names her is pending any more");
    let claimed = claim().await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].subject, None, "the id is gone");
    store.complete_delivery("crm", claimed[0].outbox_id, delivered.clone()).await.expect("delivered");

    assert_eq!(
        store.erase_subject(erasure()).await.expect("again"),
        SubjectErased::default(),
        "nothing is left once the key is gone, and the notice is not queued again"
    );
    assert!(store.history(&ann, 0, 100).await.expect("history").is_empty());
    assert!(store.current(&ann).await.expect("current").is_empty());
    let r = store.request("req_1").await.expect("read").expect("kept");
    assert_eq!((r.record.subject, r.record.details), (None, None));
    let events = store.events_page(0, 100).await.expect("events");
    assert_eq!(events.len(), 2, "the ledger keeps its events");
    let mut verifier = ChainVerifier::new();
    for e in &events {
        assert!(verifier.push(e), "the chain still verifies");
    }
    let page = store.current_page(0, 100).await.expect("warm page");
    assert_eq!(page.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["bob"]);
}
