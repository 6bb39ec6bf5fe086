//! Conformance checks for [`DeviceStore`](crate::DeviceStore), re-exported by
//! [`crate::testing::conformance`].

use std::sync::Arc;

use consentry_core::{Action, NewEvent, Scope, SubjectId, Timestamp};

use crate::{DeviceRecord, NewDevice, Store, StoreError};

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn device(id: &str, owner: &str, hash: u8, at: i64) -> NewDevice {
    NewDevice {
        record: DeviceRecord {
            id: id.into(),
            subject: subject(owner),
            name: format!("speaker {id}"),
            kind: "speaker".into(),
            categories: vec!["user.biometric.voice".into()],
            purposes: vec!["service.provision".into(), "analytics".into()],
            created_at: Timestamp::from_micros(at),
            last_seen: None,
        },
        token_hash: [hash; 32],
    }
}

/// Pairing, listing by subject, look-ups by id and token hash, conflicts, unpairing and erasure.
pub async fn devices_pair_list_delete(store: Arc<dyn Store>) {
    let (alice, bob) = (subject("alice"), subject("bob"));
    // Alice has no pseudonym yet: pairing creates it; Bob's exists through a ledger event.
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
    store.append(&bob, vec![grant]).await.unwrap_or_else(|e| panic!("append: {e}"));
    store.create_device(device("dev_a2", "alice", 2, 2_000)).await.unwrap_or_else(|e| panic!("create: {e}"));
    store.create_device(device("dev_a1", "alice", 1, 1_000)).await.unwrap_or_else(|e| panic!("create: {e}"));
    store.create_device(device("dev_b1", "bob", 3, 1_500)).await.unwrap_or_else(|e| panic!("create: {e}"));

    let listed = store.subject_devices(&alice).await.unwrap_or_else(|e| panic!("list: {e}"));
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dev_a1", "dev_a2"], "oldest first, only Alice's");
    assert_eq!(listed[0], device("dev_a1", "alice", 1, 1_000).record, "read back as stored");
    assert!(store.subject_devices(&subject("carol")).await.unwrap_or_else(|e| panic!("{e}")).is_empty());

    let by_hash = store.device_by_token_hash(&[3; 32]).await.unwrap_or_else(|e| panic!("by hash: {e}"));
    assert_eq!(by_hash.map(|d| (d.id, d.subject)), Some(("dev_b1".to_owned(), bob.clone())));
    assert!(store.device_by_token_hash(&[9; 32]).await.unwrap_or_else(|e| panic!("{e}")).is_none());
    let seen = |id: &'static str| {
        let store = store.clone();
        async move { store.device(id).await.unwrap_or_else(|e| panic!("{e}")).and_then(|d| d.last_seen) }
    };
    store.device_seen("dev_b1", Timestamp::from_micros(9_000)).await.unwrap_or_else(|e| panic!("seen: {e}"));
    store.device_seen("dev_b1", Timestamp::from_micros(8_000)).await.unwrap_or_else(|e| panic!("seen: {e}"));
    assert_eq!(seen("dev_b1").await, Some(Timestamp::from_micros(9_000)), "never moves back");
    assert_eq!(seen("dev_a1").await, None, "not seen yet");
    assert_eq!(
        store.device("dev_a2").await.unwrap_or_else(|e| panic!("{e}")).map(|d| d.subject),
        Some(alice.clone())
    );

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.devices_page(after.as_deref(), 2).await.unwrap_or_else(|e| panic!("page: {e}"));
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        paged.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(paged, ["dev_a1", "dev_a2", "dev_b1"], "every device, by id, in pages");

    let dup_id = store.create_device(device("dev_a1", "alice", 7, 3_000)).await;
    assert!(matches!(dup_id, Err(StoreError::Conflict(_))), "{dup_id:?}");
    let dup_hash = store.create_device(device("dev_x", "alice", 1, 3_000)).await;
    assert!(matches!(dup_hash, Err(StoreError::Conflict(_))), "{dup_hash:?}");

    // Only the owner's device is deleted, and its token stops resolving at once.
    assert!(!store.delete_device(&bob, "dev_a1").await.unwrap_or_else(|e| panic!("{e}")));
    assert!(store.delete_device(&alice, "dev_a1").await.unwrap_or_else(|e| panic!("{e}")));
    assert!(!store.delete_device(&alice, "dev_a1").await.unwrap_or_else(|e| panic!("{e}")));
    assert!(store.device_by_token_hash(&[1; 32]).await.unwrap_or_else(|e| panic!("{e}")).is_none());
    assert!(store.device("dev_a1").await.unwrap_or_else(|e| panic!("{e}")).is_none());

    assert_eq!(store.subject_devices(&bob).await.unwrap_or_else(|e| panic!("{e}")).len(), 1, "Bob's stays");
}

/// A device's token hash is replaced only while it is still the old one.
pub async fn devices_rehash_token(store: Arc<dyn Store>) {
    store.create_device(device("dev_a1", "alice", 1, 1_000)).await.unwrap_or_else(|e| panic!("create: {e}"));
    let rehash = |old: u8, new: u8| {
        let store = Arc::clone(&store);
        async move {
            store
                .rehash_device_token("dev_a1", &[old; 32], &[new; 32])
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert!(!rehash(7, 2).await, "not the stored hash");
    assert!(rehash(1, 2).await);
    assert!(store.device_by_token_hash(&[1; 32]).await.unwrap_or_else(|e| panic!("{e}")).is_none());
    let found = store.device_by_token_hash(&[2; 32]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.map(|d| d.id), Some("dev_a1".to_owned()));
    assert!(!rehash(1, 3).await, "only once");
    assert!(
        !store.rehash_device_token("dev_none", &[2; 32], &[3; 32]).await.unwrap_or_else(|e| panic!("{e}")),
        "no such device"
    );
}
