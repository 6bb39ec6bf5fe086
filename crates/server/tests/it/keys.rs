//! API keys: create (secret shown once), list (never secrets), revoke (refused at once), conflicts.

use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, str_of};

both_backends!(
    create_list_and_revoke,
    unknown_scopes_and_bad_names_are_refused,
    the_admin_key_can_be_revoked_by_another_admin,
);

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
