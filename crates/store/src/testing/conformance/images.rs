//! Engine images: stored whole in parts, the newest read back, older ones replaced; the pseudonyms that
//! name an image's entries listed in pages, an erased subject's gone.

use std::sync::Arc;

use consentry_core::{Action, Timestamp};

use super::fixtures::{change, subject};
use crate::Store;
use crate::requests::SubjectErasure;

pub async fn engine_images_newest_whole_and_pseudonyms_paged(store: Arc<dyn Store>) {
    assert_eq!(store.latest_engine_image().await.expect("none"), None);
    // Larger than one stored part, so it is split and joined again in order.
    let big: Vec<u8> = (0..(8 << 20) + 12_345).map(|i: u32| (i % 251) as u8).collect();
    store.save_engine_image(7, &big).await.expect("saved");
    assert_eq!(store.latest_engine_image().await.expect("read"), Some((7, big.clone())));
    store.save_engine_image(9, b"newer").await.expect("saved");
    assert_eq!(store.latest_engine_image().await.expect("read"), Some((9, b"newer".to_vec())));
    // An older one written late (a slower node) never hides the newer.
    store.save_engine_image(8, b"older").await.expect("saved");
    assert_eq!(store.latest_engine_image().await.expect("read"), Some((9, b"newer".to_vec())));

    let names: Vec<String> = (0..25).map(|i| format!("pseudonymous-{i:02}")).collect();
    for name in &names {
        store.append(&subject(name), vec![change("marketing", Action::Grant, &[])]).await.expect("append");
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.pseudonym_page(&after, 10).await.expect("page");
        assert!(page.len() <= 10);
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        seen.extend(page);
    }
    let mut subjects: Vec<String> = seen.iter().map(|(_, s)| s.as_str().to_owned()).collect();
    subjects.sort();
    assert_eq!(subjects, names);
    let events = store.history(&subject("pseudonymous-03"), 0, 10).await.expect("history");
    let own = seen.iter().find(|(_, s)| s.as_str() == "pseudonymous-03").expect("listed");
    assert_eq!(events[0].pseudonym, own.0, "the ledger's pseudonym");

    let erasure =
        SubjectErasure { subject: subject("pseudonymous-03"), at: Timestamp::now(), notices: Vec::new() };
    store.erase_subject(erasure).await.expect("erased");
    assert!(store.destroy_subject_key(&subject("pseudonymous-03")).await.expect("key destroyed"));
    let after_erasure = store.pseudonym_page("", 100).await.expect("page");
    assert_eq!(after_erasure.len(), 24);
    assert!(after_erasure.iter().all(|(p, _)| p != &own.0));
}
