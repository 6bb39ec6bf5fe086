//! Engine images: a node loaded from the newest image and the ledger after it holds exactly what a node
//! that loads every subject's current state holds (stances, jurisdictions, several scopes); a damaged
//! image is ignored and the full load runs; an erased subject does not come back from an image; an image
//! made after another event than the ledger holds at its position is not loaded.

use consentry_core::Engine;
use consentry_core::SubjectId;
use consentry_service::images::{self, Warmed};
use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, withdraw};

both_backends!(
    image_and_tail_equal_a_full_load,
    a_damaged_image_falls_back_to_the_full_load,
    a_subject_whose_key_went_after_the_image_does_not_come_back,
    an_image_made_for_another_ledger_is_not_loaded
);

fn change(purpose: &str, action: &str, channels: &[&str]) -> serde_json::Value {
    json!({"changes": [{"purpose": purpose, "action": action, "channels": channels}]})
}

async fn some_history(s: &TestServer, prefix: &str) {
    let id = |n: &str| format!("{prefix}{n}");
    s.record(&id("ada"), &grant("marketing.direct", &["email", "sms"])).await;
    s.record(&id("ada"), &change("marketing.direct", "withdraw", &["sms"])).await;
    s.record(&id("ben"), &grant("analytics", &[])).await;
    s.record(&id("ben"), &change("analytics", "object", &[])).await;
    s.record(&id("ben"), &withdraw("analytics")).await;
    s.record(&id("cyd"), &change("service", "restrict", &[])).await;
    s.record(&id("cyd"), &grant("marketing", &["email"])).await;
    for n in 0..20 {
        s.record(&id(&format!("many-{n}")), &grant("marketing.direct", &["email"])).await;
    }
    s.put(
        &format!("/v1/subjects/{}/jurisdiction", id("ada")),
        ADMIN_KEY,
        &json!({"jurisdiction": "DE"}),
        200,
    )
    .await;
    s.put(
        &format!("/v1/subjects/{}/jurisdiction", id("ben")),
        ADMIN_KEY,
        &json!({"jurisdiction": "US-CA"}),
        200,
    )
    .await;
}

/// A fresh engine under the server's catalogue.
fn fresh(s: &TestServer) -> Engine {
    let engine = Engine::new();
    engine.set_catalog(&s.state.catalog().catalog).expect("fits");
    engine
}

async fn image_and_tail_equal_a_full_load(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    some_history(&s, "").await;
    let covers = images::save(&s.state).await.expect("saved").expect("an image of a grown ledger");
    assert_eq!(images::save(&s.state).await.expect("saved"), None, "nothing new: no second image");
    // The tail: changes after the image, to subjects in it and new ones.
    some_history(&s, "tail-").await;
    s.record("ada", &grant("marketing.direct", &["sms"])).await;
    s.record("ben", &grant("analytics", &[])).await;
    let store = s.state.store.as_ref();
    let head = store.ledger_head().await.expect("head").events;
    assert!(head > covers);

    let from_image = fresh(&s);
    let warmed = images::warm(store, &from_image, head).await.expect("warm");
    assert!(matches!(warmed, Warmed::Image { covers: c, .. } if c == covers), "{warmed:?}");
    let full = fresh(&s);
    images::load_full(store, &full).await.expect("full load");
    let (a, b) = (from_image.listing(), full.listing());
    assert_eq!(a.len(), 46, "every subject held");
    assert_eq!(a, b);
    // The image itself holds pseudonyms, never a subject id.
    let (_, bytes) = store.latest_engine_image().await.expect("read").expect("stored");
    // (Ids with a letter past `f`: a pseudonym is hexadecimal, so "ada" could occur in one by chance.)
    for subject in ["ben", "cyd", "many-7", "tail-ada", "tail-many-12"] {
        assert!(
            !bytes.windows(subject.len()).any(|w| w == subject.as_bytes()),
            "{subject} named in the image"
        );
    }
    s.stop().await;
}

async fn a_damaged_image_falls_back_to_the_full_load(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    some_history(&s, "").await;
    images::save(&s.state).await.expect("saved").expect("an image");
    let store = s.state.store.as_ref();
    let head = store.ledger_head().await.expect("head").events;
    let (covers, good) = store.latest_engine_image().await.expect("read").expect("stored");
    assert_eq!(covers, head);
    // One flipped bit in the statements: a subject's choice would read otherwise.
    let mut bytes = good.clone();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x04;
    store.save_engine_image(covers, &bytes).await.expect("stored");
    let engine = fresh(&s);
    assert_eq!(images::warm(store, &engine, head).await.expect("warm"), Warmed::Full);
    let full = fresh(&s);
    images::load_full(store, &full).await.expect("full load");
    assert!(!full.listing().is_empty());
    assert_eq!(engine.listing(), full.listing());
    // A sound image that covers more than the ledger holds (a store restored to before it) is not trusted
    // either; the same image read against the whole ledger is.
    store.save_engine_image(covers, &good).await.expect("stored");
    assert_eq!(images::warm(store, &fresh(&s), head - 1).await.expect("warm"), Warmed::Full);
    assert!(matches!(images::warm(store, &fresh(&s), head).await.expect("warm"), Warmed::Image { .. }));

    // A restart after the damage still answers as before: the shutdown writes a sound image, and the node
    // started from it agrees.
    let before = s.check("ben", "analytics", None).await;
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    assert_eq!(s.check("ben", "analytics", None).await, before);
    assert!(s.state.image_covers.load(std::sync::atomic::Ordering::Relaxed) > 0, "started from an image");
    s.stop().await;
}

async fn a_subject_whose_key_went_after_the_image_does_not_come_back(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    some_history(&s, "").await;
    images::save(&s.state).await.expect("saved").expect("an image");
    let store = s.state.store.as_ref();
    let head = store.ledger_head().await.expect("head").events;
    // Keys destroyed after the image was written (the last step of an erasure): the image still holds
    // these subjects' entries under their pseudonyms, which now name no one.
    for gone in ["ben", "many-3", "many-17"] {
        let subject = SubjectId::new(gone).expect("id");
        assert!(store.destroy_subject_key(&subject).await.expect("destroyed"), "{gone} had a key");
    }
    let from_image = fresh(&s);
    let warmed = images::warm(store, &from_image, head).await.expect("warm");
    assert!(matches!(warmed, Warmed::Image { subjects: 20, .. }), "{warmed:?}");
    let full = fresh(&s);
    images::load_full(store, &full).await.expect("full load");
    for gone in ["ben", "many-3", "many-17"] {
        assert!(!from_image.contains(gone), "{gone} came back from the image");
    }
    assert!(from_image.contains("ada") && from_image.contains("many-4"));
    assert_eq!(from_image.listing(), full.listing());
    s.stop().await;
}

/// Two stores with a common past (a backup restored, then written to) each write one more event, so their
/// ledgers are as long but differ at the end. An image made on one holds a grant the other never recorded:
/// loaded there, it would answer checks with a consent the ledger does not hold.
async fn an_image_made_for_another_ledger_is_not_loaded(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    some_history(&s, "").await;
    let common = s.stop().await;
    let restored = common.duplicate().await;

    let a = TestServer::start_in(common, |_| {}).await;
    a.record("ben", &grant("marketing.direct", &["email"])).await;
    let covers = images::save(&a.state).await.expect("saved").expect("an image of a grown ledger");
    let (_, image) = a.state.store.latest_engine_image().await.expect("read").expect("stored");
    // On its own ledger the image loads, and holds ben's grant.
    let own = fresh(&a);
    let warmed = images::warm(a.state.store.as_ref(), &own, covers).await.expect("warm");
    assert!(matches!(warmed, Warmed::Image { covers: c, .. } if c == covers), "{warmed:?}");
    assert!(
        own.listing()["ben"].iter().any(|s| s.starts_with("marketing.direct grant")),
        "{:?}",
        own.listing()
    );
    a.stop().await;

    let b = TestServer::start_in(restored, |_| {}).await;
    b.record("cyd", &withdraw("marketing")).await;
    let store = b.state.store.as_ref();
    assert_eq!(store.ledger_head().await.expect("head").events, covers, "ledgers as long");
    store.save_engine_image(covers, &image).await.expect("stored");
    let engine = fresh(&b);
    assert_eq!(images::warm(store, &engine, covers).await.expect("warm"), Warmed::Full);
    let full = fresh(&b);
    images::load_full(store, &full).await.expect("full load");
    assert_eq!(engine.listing(), full.listing());
    assert!(
        !engine.listing()["ben"].iter().any(|s| s.starts_with("marketing.direct grant")),
        "ben's grant came over"
    );
    assert_eq!(b.check("ben", "marketing.direct", Some("email")).await["allowed"], json!(false));
    b.stop().await;
}
