//! Conformance checks for [`PreferenceStore`](crate::PreferenceStore): a person's receipts.

use std::sync::Arc;

use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};

use crate::{Sealed, SealedReceipt, Sealer, Store};

fn withdraw(purpose: &str) -> NewEvent {
    NewEvent {
        purpose: purpose.into(),
        action: Action::Withdraw,
        scope: Scope::default(),
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point: Some("preference-centre".into()),
        actor: "subject".into(),
        expires_at: None,
    }
}

fn sealer(id: &str) -> Sealer {
    let id = id.to_owned();
    Box::new(move |events: &[Event]| {
        let jws =
            format!("jws-of-{}", events.iter().map(|e| e.seq.to_string()).collect::<Vec<_>>().join(","));
        Ok(Sealed { receipt: Some(SealedReceipt { id, jws }), outbox: Vec::new() })
    })
}

/// A subject's receipts come back newest first, limited, and never another subject's.
pub async fn subject_receipts_newest_first(store: Arc<dyn Store>) {
    let alice = SubjectId::new("alice").expect("id");
    let bob = SubjectId::new("bob").expect("id");
    let unknown = SubjectId::new("nobody").expect("id");
    let before = Timestamp::now();
    for (who, id) in [(&alice, "rcpt_a1"), (&bob, "rcpt_b1"), (&alice, "rcpt_a2"), (&alice, "rcpt_a3")] {
        store
            .append_sealed(who, vec![withdraw("marketing"), withdraw("analytics")], Some(sealer(id)))
            .await
            .expect("sealed append");
    }
    // A plain append seals no receipt.
    store.append(&alice, vec![withdraw("analytics")]).await.expect("append");

    let all = store.subject_receipts(&alice, 10).await.expect("receipts");
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["rcpt_a3", "rcpt_a2", "rcpt_a1"]);
    assert_eq!(all[0].jws, "jws-of-7,8", "the receipt as sealed");
    assert!(all.iter().all(|r| r.subject.as_ref() == Some(&alice) && r.created_at >= before));

    let limited = store.subject_receipts(&alice, 2).await.expect("receipts");
    assert_eq!(limited.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rcpt_a3", "rcpt_a2"]);
    let of_bob = store.subject_receipts(&bob, 10).await.expect("receipts");
    assert_eq!(of_bob.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rcpt_b1"]);
    assert!(store.subject_receipts(&unknown, 10).await.expect("receipts").is_empty());
}
