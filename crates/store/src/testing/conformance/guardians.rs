//! Conformance checks of ages and guardians ([`GuardianStore`](crate::GuardianStore)), run with the vault's
//! ([`conformance_vault_suite!`](crate::conformance_vault_suite)).

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::Store;
use crate::guardians::{GuardianAdded, GuardianLink};
use crate::requests::SubjectErasure;
use crate::vault::Kek;

fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

fn at(n: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + n)
}

fn link(child: &SubjectId, guardian: &SubjectId, n: i64) -> GuardianLink {
    GuardianLink {
        child: child.clone(),
        guardian: guardian.clone(),
        evidence_sha256: Some([7; 32]),
        created_at: at(n),
    }
}

/// An age is stored sealed and read back decrypted, replaced by a later one, listed by the time it
/// changed (paged), and goes with the subject's vault and with an erasure; guardian relations are added
/// once, between known subjects only, listed both ways, removed, and go with an erasure of either side.
pub async fn ages_and_guardians(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let (kid, mum, dad, nobody) = (subject("kid"), subject("mum"), subject("dad"), subject("nobody"));
    assert_eq!(store.age(&kek, &kid).await.expect("read"), None);
    store.set_age(&kek, &kid, b"2014-05-01".to_vec(), at(1)).await.expect("set");
    store.set_age(&kek, &kid, b"2015-06-02".to_vec(), at(2)).await.expect("replace");
    store.set_age(&kek, &mum, b"1980-01-01".to_vec(), at(3)).await.expect("set");
    store.set_age(&kek, &dad, b"1981-01-01".to_vec(), at(3)).await.expect("set");
    let read = store.age(&kek, &kid).await.expect("read").expect("stored");
    assert_eq!(
        (read.subject.clone(), read.plaintext.as_slice(), read.updated_at),
        (kid.clone(), &b"2015-06-02"[..], at(2))
    );

    // Pages in (time, pseudonym) order, from a time on.
    let (first, pos) = store.ages_since(&kek, at(0), None, 2).await.expect("page");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].subject, kid);
    let (rest, end) = store.ages_since(&kek, at(0), pos.clone(), 2).await.expect("page");
    assert_eq!(rest.len(), 1);
    let mut seen: Vec<&str> = first.iter().chain(&rest).map(|a| a.subject.as_str()).collect();
    seen.sort_unstable();
    assert_eq!(seen, ["dad", "kid", "mum"]);
    assert!(store.ages_since(&kek, at(0), end, 2).await.expect("page").0.is_empty());
    let (late, _) = store.ages_since(&kek, at(3), None, 10).await.expect("page");
    assert_eq!(late.len(), 2, "only those changed at or after the time");

    // Guardians: known subjects only, once.
    assert_eq!(store.add_guardian(link(&nobody, &mum, 1)).await.expect("add"), GuardianAdded::UnknownChild);
    assert_eq!(
        store.add_guardian(link(&kid, &nobody, 1)).await.expect("add"),
        GuardianAdded::UnknownGuardian
    );
    assert_eq!(store.add_guardian(link(&kid, &mum, 1)).await.expect("add"), GuardianAdded::Added);
    assert_eq!(store.add_guardian(link(&kid, &mum, 2)).await.expect("add"), GuardianAdded::Existing);
    assert_eq!(store.add_guardian(link(&kid, &dad, 3)).await.expect("add"), GuardianAdded::Added);
    let guardians = store.guardians(&kid).await.expect("list");
    assert_eq!(guardians, vec![link(&kid, &mum, 1), link(&kid, &dad, 3)], "oldest first");
    assert_eq!(store.children(&mum).await.expect("list"), vec![link(&kid, &mum, 1)]);
    assert!(store.children(&kid).await.expect("list").is_empty());
    assert!(store.remove_guardian(&kid, &dad).await.expect("remove"));
    assert!(!store.remove_guardian(&kid, &dad).await.expect("remove"), "once");
    assert_eq!(store.guardians(&kid).await.expect("list").len(), 1);

    // The vault's deletion takes the age with the data key.
    store.delete_subject_vault(&dad).await.expect("shred");
    assert_eq!(store.age(&kek, &dad).await.expect("read"), None);

    // An erasure of the guardian ends the relation; one of the child takes the age.
    store.add_guardian(link(&mum, &kid, 5)).await.expect("add");
    let erase = |who: &SubjectId| SubjectErasure { subject: who.clone(), at: at(9), notices: Vec::new() };
    store.erase_subject(erase(&mum)).await.expect("erase");
    assert!(store.guardians(&kid).await.expect("list").is_empty());
    assert!(store.children(&kid).await.expect("list").is_empty());
    store.erase_subject(erase(&kid)).await.expect("erase");
    assert_eq!(store.age(&kek, &kid).await.expect("read"), None);
    assert!(store.ages_since(&kek, at(0), None, 10).await.expect("page").0.is_empty());
}
