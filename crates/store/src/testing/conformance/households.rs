//! Conformance checks of households ([`HouseholdStore`](crate::HouseholdStore)), run with the vault's
//! ([`conformance_vault_suite!`](crate::conformance_vault_suite)): the label is sealed under the KEK.

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::households::{
    AddedMember, DeletedHousehold, HouseholdDevice, NewHouseholdDevice, new_household_id, new_member_handle,
};
use crate::requests::SubjectErasure;
use crate::vault::Kek;
use crate::{Store, StoreError};

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + micros)
}

fn device(household: &str, id: &str, created: i64) -> HouseholdDevice {
    HouseholdDevice {
        household: household.into(),
        id: id.into(),
        name: "Living room speaker".into(),
        kind: "speaker".into(),
        categories: vec!["user.device.telemetry".into()],
        purposes: vec!["analytics".into()],
        created_at: at(created),
    }
}

/// A household keeps its label sealed, its members once each under a handle, its devices apart from
/// subjects'; a member leaves, and erasure takes them out of every household.
pub async fn households_members_and_devices(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let id = new_household_id().expect("id");
    store.create_household(&kek, &id, "The Müllers", at(1)).await.expect("create");
    let again = store.create_household(&kek, &id, "Twice", at(2)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let read = store.household(&kek, &id).await.expect("read").expect("found");
    assert_eq!((read.name.as_str(), read.created_at, read.members.len()), ("The Müllers", at(1), 0));
    assert!(store.household(&kek, "hh_none").await.expect("read").is_none());
    let other = Kek::generate().expect("kek");
    assert!(store.household(&other, &id).await.is_err(), "the label opens only under its KEK");

    let (ana, ben) = (subject("ana"), subject("ben"));
    let (ha, hb) = (new_member_handle().expect("handle"), new_member_handle().expect("handle"));
    assert_eq!(store.add_member(&id, &ana, &ha, at(3)).await.expect("add"), AddedMember::Added);
    assert_eq!(store.add_member(&id, &ben, &hb, at(4)).await.expect("add"), AddedMember::Added);
    let twice = store.add_member(&id, &ana, "hm_other", at(5)).await.expect("add");
    assert_eq!(twice, AddedMember::Existing(ha.clone()), "once each, their handle kept");
    assert_eq!(
        store.add_member("hh_none", &ana, "hm_x", at(5)).await.expect("add"),
        AddedMember::NoHousehold
    );
    let read = store.household(&kek, &id).await.expect("read").expect("found");
    let members: Vec<(&str, &str)> =
        read.members.iter().map(|m| (m.subject.as_str(), m.handle.as_str())).collect();
    assert_eq!(members, [("ana", ha.as_str()), ("ben", hb.as_str())], "oldest first");
    assert_eq!(store.subject_households(&ana).await.expect("of"), std::slice::from_ref(&id));

    let second = new_household_id().expect("id");
    store.create_household(&kek, &second, "Flat 2", at(6)).await.expect("create");
    store.add_member(&second, &ana, &new_member_handle().expect("h"), at(7)).await.expect("add");
    let mut both = vec![id.clone(), second.clone()];
    both.sort();
    assert_eq!(store.subject_households(&ana).await.expect("of"), both);
    let page = store.households_page(&kek, None, 10).await.expect("page");
    assert_eq!(page.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), both);
    let rest = store.households_page(&kek, Some(&both[0]), 10).await.expect("page");
    assert_eq!(rest.len(), 1);

    // Devices: paired to the household, found by token hash, not among any subject's.
    let token = [7u8; 32];
    let d = device(&id, "dev_h1", 10);
    store
        .create_household_device(NewHouseholdDevice { device: d.clone(), token_hash: token })
        .await
        .expect("pair")
        .then_some(())
        .expect("paired");
    let nowhere = NewHouseholdDevice { device: device("hh_none", "dev_h0", 10), token_hash: [6; 32] };
    assert!(!store.create_household_device(nowhere).await.expect("pair"), "no such household");
    let dup =
        store.create_household_device(NewHouseholdDevice { device: d.clone(), token_hash: [8; 32] }).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(store.household_devices(&id).await.expect("list"), std::slice::from_ref(&d));
    assert_eq!(store.household_device("dev_h1").await.expect("get"), Some(d.clone()));
    assert_eq!(store.household_device_by_token_hash(&token).await.expect("get"), Some(d.clone()));
    assert_eq!(store.device_by_token_hash(&token).await.expect("get"), None, "not a subject's device");
    assert!(store.subject_devices(&ana).await.expect("list").is_empty());
    assert_eq!(store.household_devices_page(None, 10).await.expect("page"), std::slice::from_ref(&d));
    assert!(store.household_devices_page(Some("dev_h1"), 10).await.expect("page").is_empty());
    assert!(!store.delete_household_device(&second, "dev_h1").await.expect("delete"), "not that household's");

    // A member leaves; erasure takes the other out of every household.
    assert!(store.remove_member(&id, &ben).await.expect("remove"));
    assert!(!store.remove_member(&id, &ben).await.expect("remove"), "once");
    let erasure = SubjectErasure { subject: ana.clone(), at: at(20), notices: Vec::new() };
    store.erase_subject(erasure).await.expect("erase");
    for h in [&id, &second] {
        let read = store.household(&kek, h).await.expect("read").expect("found");
        assert!(read.members.is_empty(), "{h}: {:?}", read.members);
    }
    assert!(store.subject_households(&ana).await.expect("of").is_empty());

    assert!(store.delete_household_device(&id, "dev_h1").await.expect("delete"));
    assert_eq!(store.household_device_by_token_hash(&token).await.expect("get"), None);
}

/// A household is renamed (the new label sealed), and deleted with its members and devices at once.
pub async fn households_are_renamed_and_deleted(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let id = new_household_id().expect("id");
    store.create_household(&kek, &id, "Flat 1", at(1)).await.expect("create");
    assert!(store.rename_household(&kek, &id, "Die Müllers").await.expect("rename"));
    assert!(!store.rename_household(&kek, "hh_none", "x").await.expect("rename"), "no such household");
    let read = store.household(&kek, &id).await.expect("read").expect("found");
    assert_eq!((read.name.as_str(), read.created_at), ("Die Müllers", at(1)));

    let keep = new_household_id().expect("id");
    store.create_household(&kek, &keep, "Flat 2", at(2)).await.expect("create");
    let ana = subject("ana");
    store.add_member(&id, &ana, &new_member_handle().expect("h"), at(3)).await.expect("add");
    store.add_member(&keep, &ana, &new_member_handle().expect("h"), at(3)).await.expect("add");
    for (n, (h, dev)) in [(&id, "dev_d1"), (&id, "dev_d2"), (&keep, "dev_k1")].into_iter().enumerate() {
        let token_hash = [u8::try_from(n).expect("small") + 1; 32];
        let paired = NewHouseholdDevice { device: device(h, dev, 5), token_hash };
        assert!(store.create_household_device(paired).await.expect("pair"));
    }

    let ben = subject("ben");
    store.add_member(&id, &ben, &new_member_handle().expect("h"), at(4)).await.expect("add");
    assert_eq!(
        store.delete_household(&id).await.expect("delete"),
        Some(DeletedHousehold {
            members: vec![ana.clone(), ben.clone()],
            devices: vec!["dev_d1".to_owned(), "dev_d2".to_owned()]
        })
    );
    assert_eq!(store.delete_household(&id).await.expect("delete"), None, "once");
    assert!(store.household(&kek, &id).await.expect("read").is_none());
    assert_eq!(store.household_device_by_token_hash(&[1; 32]).await.expect("get"), None, "its token is dead");
    assert!(store.household_devices(&id).await.expect("list").is_empty());
    assert_eq!(store.subject_households(&ana).await.expect("of"), std::slice::from_ref(&keep));
    assert_eq!(store.add_member(&id, &ana, "hm_late", at(9)).await.expect("add"), AddedMember::NoHousehold);
    let late = NewHouseholdDevice { device: device(&id, "dev_d3", 9), token_hash: [9; 32] };
    assert!(!store.create_household_device(late).await.expect("pair"), "the household is gone");
    // The other household is untouched.
    let other = store.household(&kek, &keep).await.expect("read").expect("found");
    assert_eq!((other.name.as_str(), other.members.len()), ("Flat 2", 1));
    assert_eq!(store.household_devices(&keep).await.expect("list").len(), 1);
}
