//! Conformance checks of the vault ([`VaultStore`](crate::vault::VaultStore)): every backend runs them
//! through [`conformance_vault_suite!`](crate::conformance_vault_suite).

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::vault::{Kek, NewRecord, RecordAnnouncer, RecordFilter, RecordSelection, new_record_id};
use crate::{DestinationRecord, NewDestination, OutboxMessage, Store, StoreError};

/// Expands to one test per vault conformance check; `$make` as for
/// [`conformance_suite!`](crate::conformance_suite).
#[macro_export]
macro_rules! conformance_vault_suite {
    ($make:expr) => {
        $crate::conformance_vault_suite!(@tests $make;
            vault_put_read_list_delete, vault_binds_one_kek, vault_due_records_go_with_announcements,
            vault_erasure_shreds_the_data_key, vault_concurrent_puts_share_one_key,
            identifiers_belong_to_one_subject, links_merge_move_and_alias, links_see_every_racing_write,
            ages_and_guardians, coming_of_age_is_announced_once, households_members_and_devices,
            households_are_renamed_and_deleted, export_pages_hold_what_the_ledger_holds);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::testing::conformance::$name(store.clone()).await;
                store.close().await;
            }
        )*
    };
}

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn kek() -> Kek {
    Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"))
}

struct Rec<'a> {
    subject: &'a str,
    category: &'a str,
    purpose: &'a str,
    device: Option<&'a str>,
    collected_at: Timestamp,
    delete_after: Option<Timestamp>,
    data: &'a [u8],
}

impl<'a> Rec<'a> {
    fn new(subject: &'a str, category: &'a str, data: &'a [u8]) -> Self {
        Self {
            subject,
            category,
            purpose: "analytics",
            device: None,
            collected_at: Timestamp::now(),
            delete_after: None,
            data,
        }
    }

    fn build(&self) -> NewRecord {
        let stored_at = Timestamp::now();
        NewRecord {
            id: new_record_id(stored_at).unwrap_or_else(|e| panic!("id: {e}")),
            subject: subject(self.subject),
            device_id: self.device.map(str::to_owned),
            category: self.category.into(),
            purpose: self.purpose.into(),
            content_type: "application/octet-stream".into(),
            collected_at: self.collected_at,
            stored_at,
            delete_after: self.delete_after,
            data: self.data.to_vec(),
        }
    }
}

async fn put(store: &Arc<dyn Store>, kek: &Kek, rec: Rec<'_>) -> String {
    store.put_record(kek, rec.build()).await.unwrap_or_else(|e| panic!("put: {e}")).id
}

fn filter(limit: u32) -> RecordFilter {
    RecordFilter { limit, ..RecordFilter::default() }
}

async fn ids(store: &Arc<dyn Store>, who: &str, f: RecordFilter) -> Vec<String> {
    store.records(&subject(who), &f).await.expect("records").into_iter().map(|m| m.id).collect()
}

fn announcer(reason: &'static str) -> RecordAnnouncer {
    Box::new(move |meta| OutboxMessage {
        event_type: "record.deleted".into(),
        payload: format!(r#"{{"id":"{}","reason":"{reason}"}}"#, meta.id),
        event: None,
    })
}

pub async fn vault_put_read_list_delete(store: Arc<dyn Store>) {
    let kek = kek();
    assert!(store.claim_kek(&kek.id()).await.expect("claim"));
    let t0 = Timestamp::now();
    let email = put(&store, &kek, Rec::new("alice", "user.contact.email", b"alice@example.com")).await;
    let phone = put(
        &store,
        &kek,
        Rec {
            device: Some("dev_1"),
            purpose: "marketing.direct",
            ..Rec::new("alice", "user.contact.phone", b"+49")
        },
    )
    .await;
    let voice = put(
        &store,
        &kek,
        Rec {
            device: Some("dev_1"),
            collected_at: t0.plus_seconds(-3600),
            ..Rec::new("alice", "user.biometric.voice", &[0u8, 255, 7])
        },
    )
    .await;
    let bobs = put(&store, &kek, Rec::new("bob", "user.contact.email", b"bob@example.com")).await;

    // Read back, with the owner.
    let got = store.record(&kek, &email).await.expect("read").expect("found");
    assert_eq!((got.subject.as_str(), got.data.as_slice()), ("alice", &b"alice@example.com"[..]));
    assert_eq!(got.meta.size, 17);
    assert_eq!(got.meta.category, "user.contact.email");
    let voice_back = store.record(&kek, &voice).await.expect("read").expect("found");
    assert_eq!(voice_back.data, vec![0u8, 255, 7], "binary payloads round-trip");
    let (owner, meta) = store.record_meta(&phone).await.expect("meta").expect("found");
    assert_eq!((owner.as_str(), meta.device_id.as_deref()), ("alice", Some("dev_1")));
    assert!(store.record(&kek, "rec_none").await.expect("read").is_none());
    assert!(store.record_meta("rec_none").await.expect("meta").is_none());

    // Listing: newest first, filters, pages.
    assert_eq!(ids(&store, "alice", filter(10)).await, vec![voice.clone(), phone.clone(), email.clone()]);
    assert_eq!(ids(&store, "bob", filter(10)).await, vec![bobs.clone()]);
    assert!(ids(&store, "nobody", filter(10)).await.is_empty());
    let by = |f: RecordFilter| ids(&store, "alice", f);
    let contact = by(RecordFilter { category: Some("user.contact".into()), ..filter(10) }).await;
    assert_eq!(contact, vec![phone.clone(), email.clone()], "a category covers those under it");
    let not_a_prefix = by(RecordFilter { category: Some("user.contact.e".into()), ..filter(10) }).await;
    assert!(not_a_prefix.is_empty(), "only whole keys: {not_a_prefix:?}");
    let marketing = by(RecordFilter { purpose: Some("marketing".into()), ..filter(10) }).await;
    assert_eq!(marketing, vec![phone.clone()]);
    let device = by(RecordFilter { device_id: Some("dev_1".into()), ..filter(10) }).await;
    assert_eq!(device, vec![voice.clone(), phone.clone()]);
    let recent = by(RecordFilter { from: Some(t0.plus_seconds(-60)), ..filter(10) }).await;
    assert_eq!(recent, vec![phone.clone(), email.clone()]);
    let older = by(RecordFilter { until: Some(t0.plus_seconds(-60)), ..filter(10) }).await;
    assert_eq!(older, vec![voice.clone()]);
    let page1 = by(filter(2)).await;
    assert_eq!(page1, vec![voice.clone(), phone.clone()]);
    let page2 = by(RecordFilter { before: page1.last().cloned(), ..filter(2) }).await;
    assert_eq!(page2, vec![email.clone()]);

    // An id used twice is a conflict.
    let mut dup = Rec::new("alice", "user.contact.email", b"x").build();
    dup.id = email.clone();
    assert!(matches!(store.put_record(&kek, dup).await, Err(StoreError::Conflict(_))));

    // Deleting by id only touches the named subject's records.
    let wrong = RecordSelection::Ids { subject: subject("bob"), ids: vec![email.clone()] };
    assert!(store.delete_records(wrong, None).await.expect("delete").is_empty());
    let right =
        RecordSelection::Ids { subject: subject("alice"), ids: vec![email.clone(), "rec_none".into()] };
    let deleted = store.delete_records(right, None).await.expect("delete");
    assert_eq!(deleted.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![email.clone()]);
    assert!(store.record(&kek, &email).await.expect("read").is_none());
    // Deleting a category takes the categories under it.
    let biometric =
        RecordSelection::Subject { subject: subject("alice"), category: Some("user.biometric".into()) };
    let deleted = store.delete_records(biometric, None).await.expect("delete");
    assert_eq!(deleted.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![voice.clone()]);
    let all = RecordSelection::Subject { subject: subject("alice"), category: None };
    assert_eq!(store.delete_records(all, None).await.expect("delete").len(), 1);
    assert!(ids(&store, "alice", filter(10)).await.is_empty());
    assert_eq!(ids(&store, "bob", filter(10)).await, vec![bobs], "other subjects keep theirs");
}

pub async fn vault_binds_one_kek(store: Arc<dyn Store>) {
    let (a, b) = (kek(), kek());
    assert!(store.claim_kek(&a.id()).await.expect("claim"));
    assert!(store.claim_kek(&a.id()).await.expect("again"));
    assert!(!store.claim_kek(&b.id()).await.expect("another"), "the vault stays bound to the first KEK");
    let id = put(&store, &a, Rec::new("carol", "user.contact.email", b"carol@example.com")).await;
    let err = store.record(&b, &id).await.expect_err("the wrong KEK reads nothing");
    assert!(err.to_string().contains("key-encryption key"), "{err}");
    assert!(store.put_record(&b, Rec::new("carol", "user.contact.email", b"x").build()).await.is_err());
    assert_eq!(store.record(&a, &id).await.expect("read").expect("found").data, b"carol@example.com");
}

pub async fn vault_due_records_go_with_announcements(store: Arc<dyn Store>) {
    let kek = kek();
    let now = Timestamp::now();
    let soon =
        put(&store, &kek, Rec { delete_after: Some(now.plus_seconds(-20)), ..Rec::new("dan", "user", b"1") })
            .await;
    let sooner = put(
        &store,
        &kek,
        Rec { delete_after: Some(now.plus_seconds(-30)), ..Rec::new("erin", "user", b"2") },
    )
    .await;
    let later = put(
        &store,
        &kek,
        Rec { delete_after: Some(now.plus_seconds(3600)), ..Rec::new("dan", "user", b"3") },
    )
    .await;
    let kept = put(&store, &kek, Rec::new("dan", "user", b"4")).await;
    store
        .create_destination(NewDestination {
            record: DestinationRecord {
                id: "records".into(),
                name: "records".into(),
                kind: "webhook".into(),
                url: "https://example.com/records".into(),
                target: None,
                event_types: vec!["record.*".into()],
                paused: false,
                flagged: false,
                created_at: Timestamp::now(),
            },
            secret: Some(b"secret".to_vec()),
        })
        .await
        .expect("destination");

    let due = |limit| RecordSelection::Due { now, limit };
    let first = store.delete_records(due(1), Some(announcer("retention"))).await.expect("sweep");
    assert_eq!(first.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![sooner.clone()], "soonest first");
    let rest = store.delete_records(due(10), Some(announcer("retention"))).await.expect("sweep");
    assert_eq!(rest.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![soon.clone()]);
    assert!(store.delete_records(due(10), Some(announcer("retention"))).await.expect("sweep").is_empty());
    assert_eq!(ids(&store, "dan", filter(10)).await, vec![kept, later]);

    // One announcement per deleted record, under its subject, committed with the deletion.
    let read = store.fan_out("records", &|t: &str| t.starts_with("record."), 100).await.expect("fan out");
    assert_eq!(read, 2);
    let claimed = store
        .claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let mut got: Vec<(Option<String>, String)> = claimed
        .iter()
        .map(|c| (c.subject.as_ref().map(|s| s.as_str().to_owned()), c.payload.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some("dan".into()), format!(r#"{{"id":"{soon}","reason":"retention"}}"#)),
            (Some("erin".into()), format!(r#"{{"id":"{sooner}","reason":"retention"}}"#)),
        ]
    );
    assert!(claimed.iter().all(|c| c.event_type == "record.deleted"));
}

pub async fn vault_erasure_shreds_the_data_key(store: Arc<dyn Store>) {
    let kek = kek();
    let a1 = put(&store, &kek, Rec::new("frank", "user.contact.email", b"frank@example.com")).await;
    let a2 = put(&store, &kek, Rec::new("frank", "user.contact.phone", b"+1 555")).await;
    let other = put(&store, &kek, Rec::new("gina", "user.contact.email", b"gina@example.com")).await;
    // Who holds records, asked for many subjects at once (one never seen, one twice).
    let holding = |names: &[&str]| {
        let asked: Vec<SubjectId> = names.iter().map(|n| subject(n)).collect();
        let store = store.clone();
        async move {
            let mut found: Vec<String> =
                store.holding_records(&asked).await.expect("holding").iter().map(|s| s.to_string()).collect();
            found.sort();
            found
        }
    };
    assert_eq!(holding(&["frank", "gina", "nobody", "gina"]).await, ["frank", "gina"]);
    assert!(holding(&[]).await.is_empty());
    assert_eq!(store.delete_subject_vault(&subject("frank")).await.expect("erase"), 2);
    assert_eq!(holding(&["frank", "gina"]).await, ["gina"]);
    assert!(ids(&store, "frank", filter(10)).await.is_empty());
    for id in [&a1, &a2] {
        assert!(store.record(&kek, id).await.expect("read").is_none());
        assert!(store.record_meta(id).await.expect("meta").is_none());
    }
    assert_eq!(store.record(&kek, &other).await.expect("read").expect("found").data, b"gina@example.com");
    assert_eq!(store.delete_subject_vault(&subject("frank")).await.expect("again"), 0);
    assert_eq!(store.delete_subject_vault(&subject("nobody")).await.expect("never stored"), 0);
    // A new record after erasure gets a fresh key and reads back.
    let again = put(&store, &kek, Rec::new("frank", "user.contact.email", b"new@example.com")).await;
    assert_eq!(store.record(&kek, &again).await.expect("read").expect("found").data, b"new@example.com");
}

pub async fn vault_concurrent_puts_share_one_key(store: Arc<dyn Store>) {
    let kek = kek();
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let (store, kek) = (store.clone(), kek.clone());
        tasks.push(tokio::spawn(async move {
            let data = vec![i; 100];
            let id = put(&store, &kek, Rec::new("hana", "user", &data)).await;
            (id, data)
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.push(t.await.expect("task"));
    }
    for (id, data) in written {
        assert_eq!(store.record(&kek, &id).await.expect("read").expect("found").data, data);
    }
    assert_eq!(ids(&store, "hana", filter(100)).await.len(), 16);
}
