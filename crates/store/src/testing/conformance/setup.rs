//! Conformance checks for setting an installation up: initialisation, API keys, the catalogue and signing
//! keys.

use std::sync::Arc;

use consentry_core::Timestamp;
use consentry_core::catalog::{Catalog, CatalogDocument};

use super::fixtures::key;
use crate::{SigningKeyRecord, Store, StoreError, StoredCatalog};

pub async fn initialise_once(store: Arc<dyn Store>) {
    assert!(store.initialise(key("admin", 1)).await.expect("initialise"));
    assert!(!store.initialise(key("admin2", 2)).await.expect("second initialise"));
    let keys = store.api_keys().await.expect("list");
    assert_eq!(keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["admin"]);
}

pub async fn api_keys(store: Arc<dyn Store>) {
    store.insert_api_key(key("crm", 1)).await.expect("insert");
    store.insert_api_key(key("web", 2)).await.expect("insert");
    assert!(matches!(store.insert_api_key(key("crm", 3)).await, Err(StoreError::Conflict(_))));
    let found = store.api_key_by_hash(&[1; 32]).await.expect("lookup").expect("present");
    assert_eq!((found.name.as_str(), found.scopes.len()), ("crm", 2));
    assert!(store.api_key_by_hash(&[9; 32]).await.expect("lookup").is_none());

    assert!(store.revoke_api_key("key_crm", Timestamp::now()).await.expect("revoke"));
    assert!(!store.revoke_api_key("key_crm", Timestamp::now()).await.expect("revoke twice"));
    assert!(
        store.api_key_by_hash(&[1; 32]).await.expect("lookup").is_none(),
        "revoked keys do not authenticate"
    );
    let names: Vec<String> = store.api_keys().await.expect("list").into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["web"]);
    // A revoked key's name can be used again.
    let mut again = key("crm", 4);
    again.id = "key_crm2".into();
    store.insert_api_key(again).await.expect("reuse name");
}

/// The key pepper is made once and then stays; a key's stored hash is replaced only while it is still
/// the old one, so a legacy hash moves to the keyed one once.
pub async fn key_pepper_and_rehash(store: Arc<dyn Store>) {
    let pepper = store.key_pepper().await.expect("pepper");
    assert_ne!(pepper, [0; 32]);
    assert_eq!(store.key_pepper().await.expect("pepper again"), pepper, "made once per store");

    store.insert_api_key(key("crm", 1)).await.expect("insert");
    assert!(!store.rehash_api_key("key_crm", &[7; 32], &[2; 32]).await.expect("wrong old"));
    assert!(store.api_key_by_hash(&[1; 32]).await.expect("lookup").is_some());
    assert!(store.rehash_api_key("key_crm", &[1; 32], &[2; 32]).await.expect("rehash"));
    assert!(store.api_key_by_hash(&[1; 32]).await.expect("lookup").is_none(), "the old hash is gone");
    let found = store.api_key_by_hash(&[2; 32]).await.expect("lookup").expect("found by the new hash");
    assert_eq!(found.id, "key_crm");
    assert!(!store.rehash_api_key("key_crm", &[1; 32], &[3; 32]).await.expect("twice"), "only once");
    assert!(!store.rehash_api_key("key_none", &[2; 32], &[3; 32]).await.expect("no such key"));
    store.revoke_api_key("key_crm", Timestamp::now()).await.expect("revoke");
    assert!(!store.rehash_api_key("key_crm", &[2; 32], &[3; 32]).await.expect("revoked"), "revoked stays");
}

pub async fn catalog_versions(store: Arc<dyn Store>) {
    assert!(store.catalog().await.expect("read").is_none());
    let doc = CatalogDocument::default_catalog();
    Catalog::validate(doc.clone()).expect("default catalogue is valid");
    let first = store.apply_catalog(&doc).await.expect("apply");
    assert_eq!(first.version, 1);
    assert_eq!(first.document, doc);
    // One version per notice and language: the catalogue's own language first, then German.
    let shown = |c: &StoredCatalog| -> Vec<(String, String, u32)> {
        c.notices.iter().map(|n| (n.key.clone(), n.language.clone(), n.version)).collect()
    };
    let expected: Vec<(String, String, u32)> = doc
        .notices
        .iter()
        .flat_map(|n| [(n.key.clone(), "en".to_owned(), 1), (n.key.clone(), "de".to_owned(), 2)])
        .collect();
    assert_eq!(shown(&first), expected);
    assert!(first.notices.iter().all(|n| n.sha256.len() == 64));
    let german = &doc.notices[0].translations["de"];
    let de = first.notices.iter().find(|n| n.language == "de").expect("a German version");
    assert_eq!((Some(&de.title), Some(&de.text)), (german.title.as_ref(), german.text.as_ref()));

    // Identical text keeps the version; changed text, in any language, gets the notice's next one.
    let mut changed = doc.clone();
    changed.notices[0].text.push_str(" Updated.");
    if let Some(text) = changed.notices[1].translations.get_mut("de").and_then(|t| t.text.as_mut()) {
        text.push_str(" Geändert.");
    }
    let second = store.apply_catalog(&changed).await.expect("apply");
    assert_eq!(second.version, 2);
    let key = &changed.notices[0].key;
    let v = |c: &StoredCatalog, k: &str, lang: &str| {
        c.notices.iter().find(|n| n.key == k && n.language == lang).map(|n| n.version)
    };
    assert_eq!((v(&second, key, "en"), v(&second, key, "de")), (Some(3), Some(2)));
    let other = &changed.notices[1].key;
    assert_eq!((v(&second, other, "en"), v(&second, other, "de")), (Some(1), Some(3)));
    let third = store.apply_catalog(&changed).await.expect("apply");
    assert_eq!((third.version, shown(&third)), (3, shown(&second)));

    let old = store.notice_version(key, 1).await.expect("read").expect("kept");
    assert_eq!((old.text.as_str(), old.language.as_str()), (doc.notices[0].text.as_str(), "en"));
    let old_de = store.notice_version(key, 2).await.expect("read").expect("kept");
    assert_eq!(Some(&old_de.text), german.text.as_ref());
    assert!(store.notice_version(key, 9).await.expect("read").is_none());
    assert_eq!(store.catalog().await.expect("read").map(|c| c.version), Some(3));
}

pub async fn signing_key_rotation(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.expect("list").is_empty());
    let key = |kid: &str, byte: u8, at: i64| SigningKeyRecord {
        kid: kid.into(),
        secret: [byte; 32],
        public: [byte + 100; 32],
        created_at: Timestamp::from_micros(at),
        current: false,
    };
    store.add_signing_key(key("k1", 1, 1_000)).await.expect("add");
    let keys = store.signing_keys().await.expect("list");
    assert_eq!(keys, [SigningKeyRecord { current: true, ..key("k1", 1, 1_000) }]);

    store.add_signing_key(key("k2", 2, 2_000)).await.expect("rotate");
    assert!(matches!(store.add_signing_key(key("k1", 3, 3_000)).await, Err(StoreError::Conflict(_))));
    let keys = store.signing_keys().await.expect("list");
    assert_eq!(
        keys,
        [
            SigningKeyRecord { current: false, ..key("k1", 1, 1_000) },
            SigningKeyRecord { current: true, ..key("k2", 2, 2_000) }
        ],
        "oldest first, the newest current, the old one kept"
    );
    let shown = format!("{:?}", keys[0]);
    assert!(shown.contains("k1") && !shown.contains("1, 1, 1"), "Debug hides the secret: {shown}");
}
