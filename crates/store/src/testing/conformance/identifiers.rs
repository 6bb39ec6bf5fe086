//! Conformance checks of identifiers ([`IdentifierStore`](crate::IdentifierStore)), run with the vault's
//! ([`conformance_vault_suite!`](crate::conformance_vault_suite)).

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::Store;
use crate::identifiers::{AddedIdentifier, NewIdentifier, new_identifier_id};
use crate::vault::Kek;

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn identifier(who: &SubjectId, index: u8, value: &str, at: i64) -> NewIdentifier {
    NewIdentifier {
        id: new_identifier_id().unwrap_or_else(|e| panic!("id: {e}")),
        subject: who.clone(),
        kind: "email".into(),
        blind_index: [index; 32],
        value: value.into(),
        created_at: Timestamp::from_micros(1_700_000_000_000_000 + at),
    }
}

/// Identifiers are added once, belong to one subject, read back decrypted, are found by their blind
/// index, deleted one by one, and go with the subject's vault (and data key).
pub async fn identifiers_belong_to_one_subject(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let (ana, ben) = (subject("ana"), subject("ben"));
    let first = identifier(&ana, 1, "ana@example.com", 1);
    let add = |i: NewIdentifier| {
        let (store, kek) = (store.clone(), kek.clone());
        async move { store.add_identifier(&kek, i).await.unwrap_or_else(|e| panic!("add: {e}")) }
    };
    assert_eq!(add(first.clone()).await, AddedIdentifier::Added);
    assert_eq!(add(identifier(&ana, 2, "+4930123456", 2)).await, AddedIdentifier::Added);
    // The same index again: the subject's own, or another's.
    let again = add(identifier(&ana, 1, "ana@example.com", 3)).await;
    assert_eq!(again, AddedIdentifier::Existing { id: first.id.clone(), created_at: first.created_at });
    assert_eq!(add(identifier(&ben, 1, "ana@example.com", 4)).await, AddedIdentifier::Taken);

    let listed = store.identifiers(&kek, &ana).await.unwrap_or_else(|e| panic!("list: {e}"));
    let values: Vec<&str> = listed.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(values, ["ana@example.com", "+4930123456"], "decrypted, oldest first");
    assert_eq!(listed[0].id, first.id);
    assert!(store.identifiers(&kek, &ben).await.expect("list").is_empty());
    let found = store.subject_by_identifier(&[1; 32]).await.expect("look up");
    assert_eq!(found, Some(ana.clone()));
    assert_eq!(store.subject_by_identifier(&[9; 32]).await.expect("look up"), None);

    // Deleting: only the subject's own, once; the index entry goes with it.
    assert!(!store.delete_identifier(&ben, &first.id).await.expect("delete"), "not ben's");
    assert!(store.delete_identifier(&ana, &first.id).await.expect("delete"));
    assert!(!store.delete_identifier(&ana, &first.id).await.expect("delete"), "once");
    assert_eq!(store.subject_by_identifier(&[1; 32]).await.expect("look up"), None);
    assert_eq!(add(identifier(&ben, 1, "ana@example.com", 5)).await, AddedIdentifier::Added, "free again");

    // The vault's deletion takes the identifiers and their index entries with the data key.
    store.delete_subject_vault(&ana).await.unwrap_or_else(|e| panic!("shred: {e}"));
    assert_eq!(store.subject_by_identifier(&[2; 32]).await.expect("look up"), None);
    assert!(store.identifiers(&kek, &ana).await.expect("list").is_empty());
    assert_eq!(store.subject_by_identifier(&[1; 32]).await.expect("look up"), Some(ben));
}
