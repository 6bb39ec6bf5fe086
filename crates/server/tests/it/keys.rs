//! API keys: create (secret shown once), list (never secrets), revoke (refused at once), conflicts; keys
//! and device tokens stored as HMAC-SHA256 under the store's pepper, and legacy SHA-256 hashes moved to
//! that on first use.

use consentry_core::{SubjectId, Timestamp};
use consentry_store::{ApiKey, DeviceRecord, NewDevice};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, str_of};

both_backends!(
    create_list_and_revoke,
    unknown_scopes_and_bad_names_are_refused,
    the_admin_key_can_be_revoked_by_another_admin,
    secrets_are_stored_keyed_by_the_stores_pepper,
    legacy_key_hashes_move_to_the_keyed_hash_on_first_use,
    legacy_device_token_hashes_move_to_the_keyed_hash_on_first_use,
);

/// HMAC-SHA256 of `secret` under the server's pepper, read from its key store.
async fn keyed(s: &TestServer, secret: &str) -> [u8; 32] {
    let pepper = s.state.store.key_pepper().await.expect("pepper");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&pepper).expect("any key length");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().into()
}

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

async fn stored_key_hash(s: &TestServer, id: &str) -> [u8; 32] {
    let keys = s.state.store.api_keys().await.expect("keys");
    keys.into_iter().find(|k| k.id == id).expect("stored").secret_hash
}

async fn secrets_are_stored_keyed_by_the_stores_pepper(backend: Backend) {
    let second = match &backend {
        Backend::Embedded => Backend::Embedded,
        Backend::Postgres(_) => Backend::Postgres(
            consentry_store::testing::TestDatabase::create().await.expect("a second database"),
        ),
    };
    let s = TestServer::start_on(backend).await;
    let (id, secret) = s.create_key("crm", &["check"]).await;
    let stored = stored_key_hash(&s, &id).await;
    assert_ne!(stored, sha256(&secret), "not a plain SHA-256 of the secret");
    assert_eq!(stored, keyed(&s, &secret).await, "HMAC-SHA256 under the key store's pepper");

    // Device tokens alike.
    let body = json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
        "purposes": ["analytics"]});
    let paired = s.post("/v1/subjects/kim/devices", ADMIN_KEY, &body, 201).await;
    let token = str_of(&paired["token"]);
    let store = &s.state.store;
    assert!(store.device_by_token_hash(&sha256(token)).await.expect("lookup").is_none());
    let found = store.device_by_token_hash(&keyed(&s, token).await).await.expect("lookup").expect("found");
    assert_eq!(found.id, str_of(&paired["id"]));

    // Another store has another pepper: the same bootstrap secret is stored as another hash.
    let other = TestServer::start_on(second).await;
    let admin = |keys: Vec<ApiKey>| keys.into_iter().find(|k| k.name == "admin").expect("admin").secret_hash;
    let (here, there) = (
        admin(store.api_keys().await.expect("keys")),
        admin(other.state.store.api_keys().await.expect("keys")),
    );
    assert_ne!(
        store.key_pepper().await.expect("pepper"),
        other.state.store.key_pepper().await.expect("pepper")
    );
    assert_ne!(here, there, "one secret, two stores, two hashes");
    assert_eq!((here, there), (keyed(&s, ADMIN_KEY).await, keyed(&other, ADMIN_KEY).await));
}

async fn legacy_key_hashes_move_to_the_keyed_hash_on_first_use(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let secret = "csk_stored-before-the-pepper-0123456789abcdef";
    let legacy = ApiKey {
        id: "key_legacy".into(),
        name: "legacy".into(),
        scopes: vec!["admin".into()],
        secret_hash: sha256(secret),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    s.state.store.insert_api_key(legacy).await.expect("insert the old way");
    s.get("/v1/keys", secret, 200).await;
    assert_eq!(stored_key_hash(&s, "key_legacy").await, keyed(&s, secret).await, "moved on first use");
    assert!(s.state.store.api_key_by_hash(&sha256(secret)).await.expect("lookup").is_none());
    s.get("/v1/keys", secret, 200).await;
    // A node that never cached it finds it by the keyed hash.
    let restarted = TestServer::start_in(s.stop().await, |_| {}).await;
    restarted.get("/v1/keys", secret, 200).await;
    assert_code(
        &restarted.get("/v1/keys", "csk_not-a-key-0123456789abcdef0123456789", 401).await,
        "unauthorized",
    );
}

async fn legacy_device_token_hashes_move_to_the_keyed_hash_on_first_use(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let token = "cdt_paired-before-the-pepper-0123456789abcdef";
    let record = DeviceRecord {
        id: "dev_legacy".into(),
        subject: SubjectId::new("kim").expect("id"),
        name: "Old speaker".into(),
        kind: "speaker".into(),
        categories: vec!["user.device.telemetry".into()],
        purposes: vec!["analytics".into()],
        created_at: Timestamp::now(),
        last_seen: None,
    };
    let store = &s.state.store;
    store.create_device(NewDevice { record, token_hash: sha256(token) }).await.expect("pair the old way");
    assert_eq!(s.send(reqwest::Method::GET, "/v1/device/consent", token, None).await.status, 200);
    assert!(
        store.device_by_token_hash(&sha256(token)).await.expect("lookup").is_none(),
        "moved on first use"
    );
    let found = store.device_by_token_hash(&keyed(&s, token).await).await.expect("lookup").expect("found");
    assert_eq!(found.id, "dev_legacy");
    assert_eq!(s.send(reqwest::Method::GET, "/v1/device/consent", token, None).await.status, 200);
}

async fn create_list_and_revoke(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let created = s
        .post("/v1/keys", ADMIN_KEY, &json!({"name": "crm", "scopes": ["check", "consent:write"]}), 201)
        .await;
    let id = str_of(&created["id"]).to_owned();
    let secret = str_of(&created["key"]).to_owned();
    assert_eq!(created["name"], "crm");
    assert_eq!(created["scopes"], json!(["check", "consent:write"]));
    assert!(secret.starts_with("csk_") && secret.len() > 40, "{secret}");
    assert!(created["created_at"].is_string());

    // The new key works for what its scopes allow.
    s.post("/v1/check", &secret, &json!({"subject": "kim", "purpose": "service"}), 200).await;

    let reply = s.send(reqwest::Method::GET, "/v1/keys", ADMIN_KEY, None).await;
    assert_eq!(reply.status, 200);
    assert!(!reply.text.contains(&secret), "the list never shows a secret");
    assert!(!reply.text.contains(ADMIN_KEY), "the list never shows a secret");
    let list = reply.json();
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "the bootstrap admin key and crm: {keys:?}");
    for k in keys {
        assert!(k.get("key").is_none(), "no secret field: {k}");
        assert!(k["id"].is_string() && k["name"].is_string() && k["scopes"].is_array());
    }
    let admin = keys.iter().find(|k| k["name"] == "admin").expect("admin key listed");
    assert_eq!(admin["scopes"], json!(["admin"]));
    let crm = keys.iter().find(|k| k["id"] == id.as_str()).expect("crm listed");
    assert_eq!(crm["scopes"], created["scopes"]);

    let p = s.post("/v1/keys", ADMIN_KEY, &json!({"name": "crm", "scopes": ["check"]}), 409).await;
    assert_code(&p, "conflict");

    let out = s.delete(&format!("/v1/keys/{id}"), ADMIN_KEY, 204).await;
    assert!(out.is_null(), "204 has no body");
    let p = s.post("/v1/check", &secret, &json!({"subject": "kim", "purpose": "service"}), 401).await;
    assert_code(&p, "unauthorized");
    let p = s.delete(&format!("/v1/keys/{id}"), ADMIN_KEY, 404).await;
    assert_code(&p, "not_found");
    let list = s.get("/v1/keys", ADMIN_KEY, 200).await;
    assert!(list["keys"].as_array().expect("keys").iter().all(|k| k["id"] != id.as_str()));

    // A revoked key's name is free again; the new key has a new secret.
    let again = s.post("/v1/keys", ADMIN_KEY, &json!({"name": "crm", "scopes": ["check"]}), 201).await;
    assert_ne!(str_of(&again["key"]), secret);
    assert_ne!(str_of(&again["id"]), id);
}

async fn unknown_scopes_and_bad_names_are_refused(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let p = s.post("/v1/keys", ADMIN_KEY, &json!({"name": "x", "scopes": ["check", "superuser"]}), 422).await;
    assert_code(&p, "validation_failed");
    assert_eq!(p["errors"][0]["path"], "scopes[1]");
    let p = s.post("/v1/keys", ADMIN_KEY, &json!({"name": "bad/name", "scopes": ["check"]}), 422).await;
    assert_code(&p, "validation_failed");
    let p = s
        .post("/v1/keys", ADMIN_KEY, &json!({"name": "x", "scopes": ["check"], "secret": "mine"}), 422)
        .await;
    assert_code(&p, "validation_failed");
    let list = s.get("/v1/keys", ADMIN_KEY, 200).await;
    assert_eq!(list["keys"].as_array().expect("keys").len(), 1, "only the admin key");
}

async fn the_admin_key_can_be_revoked_by_another_admin(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let (_, other_admin) = s.create_key("ops", &["admin"]).await;
    let list = s.get("/v1/keys", &other_admin, 200).await;
    let first = list["keys"].as_array().expect("keys").iter().find(|k| k["name"] == "admin").expect("admin");
    s.delete(&format!("/v1/keys/{}", str_of(&first["id"])), &other_admin, 204).await;
    assert_code(&s.get("/v1/keys", ADMIN_KEY, 401).await, "unauthorized");
    s.get("/v1/keys", &other_admin, 200).await;
}
