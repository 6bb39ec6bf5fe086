//! Conformance checks of ages and guardians ([`GuardianStore`](crate::GuardianStore)), run with the vault's
//! ([`conformance_vault_suite!`](crate::conformance_vault_suite)).

use std::sync::Arc;

use consentry_core::{SubjectId, Timestamp};

use crate::guardians::{GuardianAdded, GuardianLink};
use crate::requests::SubjectErasure;
use crate::vault::Kek;
use crate::{DestinationRecord, NewDestination, OutboxMessage, Store};

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
    store.set_age(&kek, &kid, b"2014-05-01".to_vec(), at(1), None).await.expect("set");
    store.set_age(&kek, &kid, b"2015-06-02".to_vec(), at(2), None).await.expect("replace");
    store.set_age(&kek, &mum, b"1980-01-01".to_vec(), at(3), None).await.expect("set");
    store.set_age(&kek, &dad, b"1981-01-01".to_vec(), at(3), None).await.expect("set");
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
    // A page's subjects at once: those with an age, the others left out.
    let mut some = store.ages_of(&kek, vec![mum.clone(), nobody.clone(), kid.clone()]).await.expect("read");
    some.sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
    let some: Vec<(&str, &[u8])> =
        some.iter().map(|a| (a.subject.as_str(), a.plaintext.as_slice())).collect();
    assert_eq!(some, [("kid", &b"2015-06-02"[..]), ("mum", &b"1980-01-01"[..])]);
    assert!(store.ages_of(&kek, Vec::new()).await.expect("read").is_empty());

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

    // No cycle: not the child themselves, not anyone the child is (further down) a guardian of.
    let gran = subject("gran");
    store.set_age(&kek, &gran, b"1950-01-01".to_vec(), at(4), None).await.expect("set");
    assert_eq!(store.add_guardian(link(&mum, &gran, 5)).await.expect("add"), GuardianAdded::Added);
    for (child, guardian) in [(&kid, &kid), (&mum, &kid), (&gran, &kid), (&gran, &mum)] {
        let added = store.add_guardian(link(child, guardian, 6)).await.expect("add");
        assert_eq!(added, GuardianAdded::Cycle, "{child:?} <- {guardian:?}");
    }
    let pseudonyms = store.guardian_pseudonyms(&kid).await.expect("list");
    assert_eq!(pseudonyms.iter().map(|(g, _)| g).collect::<Vec<_>>(), [&mum]);
    assert!(!pseudonyms[0].1.is_empty() && pseudonyms[0].1 != "mum", "the guardian's pseudonym");

    // An erasure of the guardian ends the relation, both ways; one of the child takes the age.
    let erase = |who: &SubjectId| SubjectErasure { subject: who.clone(), at: at(9), notices: Vec::new() };
    store.erase_subject(erase(&mum)).await.expect("erase");
    assert!(store.guardians(&kid).await.expect("list").is_empty());
    assert!(store.children(&gran).await.expect("list").is_empty());
    store.erase_subject(erase(&gran)).await.expect("erase");
    store.erase_subject(erase(&kid)).await.expect("erase");
    assert_eq!(store.age(&kek, &kid).await.expect("read"), None);
    assert!(store.ages_since(&kek, at(0), None, 10).await.expect("page").0.is_empty());
}

/// Stated ages wait to be looked at for a coming of age, in time order and paged; a wait ends once (the
/// announcing call queues its message in the same write, a second or racing call does nothing), not for an
/// age stated again meanwhile; an age stated again after an announcement waits no more, one stated again
/// before does; an erasure takes the wait with the age.
pub async fn coming_of_age_is_announced_once(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let (kid, teen, adult) = (subject("coa-kid"), subject("coa-teen"), subject("coa-adult"));
    store
        .create_destination(NewDestination {
            record: DestinationRecord {
                id: "coming-of-age".into(),
                name: "coming of age".into(),
                kind: "webhook".into(),
                url: "https://example.com/coming-of-age".into(),
                target: None,
                event_types: vec!["subject.*".into()],
                paused: false,
                flagged: false,
                created_at: Timestamp::now(),
            },
            secret: Some(b"secret".to_vec()),
        })
        .await
        .expect("destination");
    store.set_age(&kek, &kid, b"kid".to_vec(), at(1), None).await.expect("set");
    store.set_age(&kek, &teen, b"teen".to_vec(), at(2), None).await.expect("set");
    store.set_age(&kek, &adult, b"adult".to_vec(), at(3), None).await.expect("set");
    let pending = |by: i64| {
        let store = Arc::clone(&store);
        async move {
            let (first, pos) = store.pending_ages(at(by), None, 2).await.expect("page");
            let (rest, _) = store.pending_ages(at(by), pos, 2).await.expect("page");
            first
                .into_iter()
                .chain(rest)
                .map(|p| (p.subject.as_str().to_owned(), p.stated_at))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pending(2).await, [("coa-kid".to_owned(), at(1)), ("coa-teen".to_owned(), at(2))], "by then");
    assert_eq!(pending(9).await.len(), 3);

    let message =
        || OutboxMessage { event_type: "subject.came_of_age".into(), payload: "{}".into(), event: None };
    // An adult when stated: the wait ends without a message.
    assert!(store.settle_coming_of_age(&adult, at(3), None).await.expect("settle"));
    // The kid comes of age: announced once, even by two calls at once.
    let (one, two) = tokio::join!(
        store.settle_coming_of_age(&kid, at(1), Some((at(5), message()))),
        store.settle_coming_of_age(&kid, at(1), Some((at(5), message()))),
    );
    assert_eq!([one.expect("settle"), two.expect("settle")].iter().filter(|s| **s).count(), 1);
    // Stated again after the announcement: it waits no more.
    store.set_age(&kek, &kid, b"kid again".to_vec(), at(6), None).await.expect("set");
    // The teen's age stated again before a look: the look at the older statement ends nothing.
    store.set_age(&kek, &teen, b"teen again".to_vec(), at(7), None).await.expect("set");
    assert!(!store.settle_coming_of_age(&teen, at(2), Some((at(5), message()))).await.expect("settle"));
    assert_eq!(pending(9).await, [("coa-teen".to_owned(), at(7))]);

    // A statement that makes a known child an adult settles their coming of age in its own write: the
    // message queued once, the time kept, nothing left waiting.
    let came_of_age_at = |who: &SubjectId| {
        let (store, kek, who) = (Arc::clone(&store), kek.clone(), who.clone());
        async move { store.age(&kek, &who).await.expect("age").and_then(|a| a.came_of_age_at) }
    };
    let restated = store.set_age(&kek, &kid, b"kid adult".to_vec(), at(8), Some((at(8), message())));
    assert!(!restated.await.expect("set"), "the kid was announced before");
    assert_eq!(came_of_age_at(&kid).await, Some(at(5)));
    let restated = store.set_age(&kek, &teen, b"teen adult".to_vec(), at(8), Some((at(8), message())));
    assert!(restated.await.expect("set"), "announced with the statement");
    assert_eq!(came_of_age_at(&teen).await, Some(at(8)));
    assert!(pending(9).await.is_empty(), "nothing waits to be looked at");
    assert!(!store.settle_coming_of_age(&teen, at(8), Some((at(8), message()))).await.expect("settle"));
    let again = store.set_age(&kek, &teen, b"teen adult".to_vec(), at(9), Some((at(9), message())));
    assert!(!again.await.expect("set"), "once");
    assert_eq!(came_of_age_at(&teen).await, Some(at(8)));
    assert_eq!(came_of_age_at(&adult).await, None);

    let read =
        store.fan_out("coming-of-age", &|t: &str| t.starts_with("subject."), 100).await.expect("fan out");
    assert_eq!(read, 2, "one message for each");
    let claimed = store
        .claim_deliveries(Timestamp::now(), std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    let mut got: Vec<(Option<&str>, &str)> =
        claimed.iter().map(|c| (c.subject.as_ref().map(SubjectId::as_str), c.event_type.as_str())).collect();
    got.sort_unstable();
    assert_eq!(got, [(Some("coa-kid"), "subject.came_of_age"), (Some("coa-teen"), "subject.came_of_age")]);

    // An erasure takes the waiting age with it.
    store.set_age(&kek, &adult, b"adult again".to_vec(), at(9), None).await.expect("set");
    assert_eq!(pending(9).await, [("coa-adult".to_owned(), at(9))]);
    let erasure = SubjectErasure { subject: adult.clone(), at: at(10), notices: Vec::new() };
    store.erase_subject(erasure).await.expect("erase");
    assert!(pending(9).await.is_empty());
}
