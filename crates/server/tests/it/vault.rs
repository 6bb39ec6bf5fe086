//! The personal data vault end to end: consent-gated storage, reads (logged), listing, deletion, retention,
//! withdrawal, the body limit, `record.deleted` in the outbox, and no plaintext anywhere in the storage.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, TestServer, assert_code, at_rest, both_backends, outbox, paused_destination, str_of,
    withdraw,
};

both_backends!(
    records_are_stored_read_listed_and_deleted,
    a_record_without_consent_is_refused,
    no_plaintext_reaches_the_storage,
    the_sweeper_deletes_records_past_their_retention,
    withdrawal_deletes_the_records_and_says_how_many,
    the_record_size_is_limited,
    a_different_kek_is_refused,
    the_subject_manages_their_own_records_with_their_token,
);

const TELEMETRY: &str = "user.device.telemetry";

fn analytics_grant() -> Value {
    json!({
        "notice": "analytics",
        "collection_point": "mobile-app",
        "changes": [{"purpose": "analytics", "action": "grant"}],
    })
}

fn record(subject: &str, purpose: &str, category: &str, payload: &[u8]) -> Value {
    json!({
        "subject": subject,
        "category": category,
        "purpose": purpose,
        "content_type": "text/plain; charset=utf-8",
        "data": STANDARD.encode(payload),
    })
}

async fn store(s: &TestServer, body: &Value) -> Value {
    s.post("/v1/records", ADMIN_KEY, body, 201).await
}

async fn list(s: &TestServer, subject: &str, query: &str) -> Value {
    s.get(&format!("/v1/subjects/{subject}/records{query}"), ADMIN_KEY, 200).await
}

fn ids(listing: &Value) -> Vec<String> {
    listing["records"].as_array().expect("records").iter().map(|r| str_of(&r["id"]).to_owned()).collect()
}

/// A paused destination taking `record.deleted`: the outbox stores only messages some destination wants.
async fn wants_deletions(s: &TestServer) {
    paused_destination(s, &["record.deleted"]).await;
}

/// The `record.deleted` events in the outbox: `(record id, reason)`.
async fn deletions(s: &TestServer) -> Vec<(String, String)> {
    outbox(s)
        .await
        .into_iter()
        .filter(|(t, _)| t == "record.deleted")
        .map(|(_, p)| {
            assert_eq!(p["type"], "record.deleted");
            assert!(p.get("subject").is_none(), "the stored payload names no subject: {p}");
            (str_of(&p["data"]["record"]["id"]).to_owned(), str_of(&p["data"]["reason"]).to_owned())
        })
        .collect()
}

async fn records_are_stored_read_listed_and_deleted(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    wants_deletions(&s).await;
    s.record("vera", &analytics_grant()).await;
    let t0 = Timestamp::now();
    let text = store(&s, &record("vera", "analytics", TELEMETRY, b"fan speed 3")).await;
    let id = str_of(&text["id"]).to_owned();
    assert_eq!(text["subject"], "vera");
    assert_eq!(text["category"], TELEMETRY);
    assert_eq!(text["purpose"], "analytics");
    assert_eq!(text["content_type"], "text/plain; charset=utf-8");
    assert_eq!(text["size"], 11);
    assert_eq!(text["device_id"], Value::Null);
    let collected = Timestamp::parse(str_of(&text["collected_at"])).expect("time");
    let delete_after = Timestamp::parse(str_of(&text["delete_after"])).expect("time");
    assert!(collected >= t0);
    assert_eq!(delete_after, collected.plus_seconds(365 * 86_400), "the category's 365 days of retention");

    let collected_at = Timestamp::now().plus_seconds(-7200).to_string();
    let json_body = json!({"subject": "vera", "category": TELEMETRY, "purpose": "service.provision",
                           "json": {"crashes": 2, "firmware": "1.4.2"}, "collected_at": collected_at});
    let js = store(&s, &json_body).await;
    let js_id = str_of(&js["id"]).to_owned();
    assert_eq!(js["content_type"], "application/json");
    assert_eq!(js["collected_at"], collected_at);

    // The payload comes back as stored, with its media type.
    let reply = s.send(Method::GET, &format!("/v1/records/{id}"), ADMIN_KEY, None).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, "fan speed 3"));
    assert_eq!(reply.content_type(), "text/plain; charset=utf-8");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let reply = s.send(Method::GET, &format!("/v1/records/{js_id}"), ADMIN_KEY, None).await;
    assert_eq!(reply.json(), json!({"crashes": 2, "firmware": "1.4.2"}));

    // Listing: newest first, filters, pages.
    assert_eq!(ids(&list(&s, "vera", "").await), vec![js_id.clone(), id.clone()]);
    assert_eq!(ids(&list(&s, "vera", "?purpose=analytics").await), vec![id.clone()]);
    assert_eq!(
        ids(&list(&s, "vera", "?category=user.device").await).len(),
        2,
        "a category covers those under it"
    );
    assert!(ids(&list(&s, "vera", "?category=user.contact").await).is_empty());
    assert!(ids(&list(&s, "vera", "?device=dev_x").await).is_empty());
    let hour_ago = Timestamp::now().plus_seconds(-3600).to_string();
    assert_eq!(ids(&list(&s, "vera", &format!("?from={hour_ago}")).await), vec![id.clone()]);
    assert_eq!(ids(&list(&s, "vera", &format!("?until={hour_ago}")).await), vec![js_id.clone()]);
    let page = list(&s, "vera", "?limit=1").await;
    assert_eq!(ids(&page), vec![js_id.clone()]);
    let next = str_of(&page["next"]).to_owned();
    let page = list(&s, "vera", &format!("?limit=1&cursor={next}")).await;
    assert_eq!(ids(&page), vec![id.clone()]);
    assert!(ids(&list(&s, "nobody", "").await).is_empty());
    assert_code(&s.get("/v1/subjects/vera/records?cursor=evt_1", ADMIN_KEY, 400).await, "invalid_query");
    assert_code(&s.get("/v1/subjects/vera/records?limit=0", ADMIN_KEY, 400).await, "invalid_query");
    assert_code(
        &s.get("/v1/subjects/vera/records?category=Not%20a%20key", ADMIN_KEY, 400).await,
        "invalid_query",
    );

    // Every read is in the subject's access log.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.get("/v1/subjects/vera/access-log?limit=1000", ADMIN_KEY, 200).await;
        let routes: Vec<&str> =
            log["entries"].as_array().expect("entries").iter().filter_map(|e| e["route"].as_str()).collect();
        let reads = routes.iter().filter(|r| **r == "GET /v1/records/{id}").count();
        let lists = routes.iter().filter(|r| **r == "GET /v1/subjects/{subject}/records").count();
        if reads == 2 && lists >= 9 {
            break;
        }
        assert!(Instant::now() < deadline, "record reads missing from the access log: {routes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Scopes: records:read reads, records:write writes.
    let (_, reader) = s.create_key("reader", &["records:read"]).await;
    let (_, writer) = s.create_key("writer", &["records:write"]).await;
    let (_, checker) = s.create_key("checker", &["check"]).await;
    assert_eq!(s.send(Method::GET, &format!("/v1/records/{id}"), &reader, None).await.status, 200);
    assert_code(
        &s.post("/v1/records", &reader, &record("vera", "analytics", TELEMETRY, b"x"), 403).await,
        "forbidden",
    );
    assert_code(&s.get(&format!("/v1/records/{id}"), &writer, 403).await, "forbidden");
    assert_code(&s.get("/v1/subjects/vera/records", &checker, 403).await, "forbidden");
    assert_code(&s.delete(&format!("/v1/records/{id}"), &reader, 403).await, "forbidden");
    assert_code(&s.get(&format!("/v1/records/{id}"), "", 401).await, "unauthorized");
    store(&s, &record("vera", "analytics", TELEMETRY, b"by the writer")).await;
    let third = ids(&list(&s, "vera", "?purpose=analytics").await)[0].clone();

    // Bad input.
    let bad = |patch: Value| {
        let mut body = record("vera", "analytics", TELEMETRY, b"x");
        for (k, v) in patch.as_object().expect("object") {
            if v.is_null() {
                body.as_object_mut().expect("object").remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (patch, status, code) in [
        (json!({"category": "user.nope"}), 422, "unknown_category"),
        (json!({"purpose": "nope"}), 422, "unknown_purpose"),
        (json!({"data": "not base64!"}), 422, "validation_failed"),
        (json!({"data": ""}), 422, "validation_failed"),
        (json!({"json": {"a": 1}}), 422, "validation_failed"),
        (json!({"data": null}), 422, "validation_failed"),
        (json!({"content_type": null}), 422, "validation_failed"),
        (json!({"content_type": "text plain"}), 422, "validation_failed"),
        (json!({"subject": null}), 422, "validation_failed"),
        (json!({"subject": ""}), 400, "invalid_subject"),
        (json!({"collected_at": Timestamp::now().plus_seconds(3600).to_string()}), 422, "validation_failed"),
        (json!({"collected_at": "yesterday"}), 422, "validation_failed"),
        (json!({"colour": "red"}), 422, "validation_failed"),
    ] {
        assert_code(&s.post("/v1/records", ADMIN_KEY, &bad(patch.clone()), status).await, code);
    }
    assert_code(
        &s.raw(Method::POST, "/v1/records", ADMIN_KEY, "application/json", "{", 400).await,
        "invalid_json",
    );
    assert_code(&s.get("/v1/records/rec_nope", ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.get(&format!("/v1/records/rec_{}", "0".repeat(32)), ADMIN_KEY, 404).await, "not_found");

    // Deleting one, then a category.
    assert_eq!(s.send(Method::DELETE, &format!("/v1/records/{id}"), ADMIN_KEY, None).await.status, 204);
    assert_code(&s.get(&format!("/v1/records/{id}"), ADMIN_KEY, 404).await, "not_found");
    assert_code(&s.delete(&format!("/v1/records/{id}"), ADMIN_KEY, 404).await, "not_found");
    let out = s.delete("/v1/subjects/vera/records?category=user.contact", ADMIN_KEY, 200).await;
    assert_eq!(out, json!({"deleted": 0}));
    let out = s.delete("/v1/subjects/vera/records?category=user.device", &writer, 200).await;
    assert_eq!(out, json!({"deleted": 2}));
    assert!(ids(&list(&s, "vera", "").await).is_empty());
    assert_code(&s.delete("/v1/subjects/vera/records?category=..", ADMIN_KEY, 400).await, "invalid_query");

    // Each deletion went to the outbox, committed with it.
    let mut got = deletions(&s).await;
    got.sort();
    let mut want =
        vec![(id, "request".to_owned()), (js_id, "request".to_owned()), (third, "request".to_owned())];
    want.sort();
    assert_eq!(got, want);
    s.stop().await;
}

async fn a_record_without_consent_is_refused(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let refused = s.post("/v1/records", ADMIN_KEY, &record("walt", "analytics", TELEMETRY, b"x"), 403).await;
    assert_code(&refused, "consent_required");
    let detail = str_of(&refused["detail"]);
    assert!(
        detail.contains("analytics") && detail.contains(TELEMETRY) && detail.contains("no_consent"),
        "{detail}"
    );

    // A grant covering only e-mail does not cover the phone number.
    s.record(
        "walt",
        &json!({"notice": "marketing.direct", "changes": [
            {"purpose": "marketing.direct", "action": "grant", "categories": ["user.contact.email"]}]}),
    )
    .await;
    store(&s, &record("walt", "marketing.direct", "user.contact.email", b"walt@example.com")).await;
    let refused = s
        .post(
            "/v1/records",
            ADMIN_KEY,
            &record("walt", "marketing.direct", "user.contact.phone", b"+1 555"),
            403,
        )
        .await;
    assert_code(&refused, "consent_required");
    // A category the purpose does not declare is refused too.
    let refused = s
        .post(
            "/v1/records",
            ADMIN_KEY,
            &record("walt", "marketing.direct", "user.biometric.voice", b"ogg"),
            403,
        )
        .await;
    assert_code(&refused, "consent_required");

    // A contract needs no consent; an objection to a legitimate interest ends it.
    store(&s, &record("walt", "service.provision", TELEMETRY, b"ok")).await;
    store(&s, &record("walt", "service.improvement", TELEMETRY, b"ok")).await;
    let objection = s
        .post(
            "/v1/subjects/walt/consents",
            ADMIN_KEY,
            &json!({"changes": [{"purpose": "service.improvement", "action": "object"}]}),
            201,
        )
        .await;
    assert_eq!(objection["records_deleted"], 1, "the objection deleted what was kept for it");
    let refused =
        s.post("/v1/records", ADMIN_KEY, &record("walt", "service.improvement", TELEMETRY, b"x"), 403).await;
    assert!(str_of(&refused["detail"]).contains("objected"), "{refused}");
    s.stop().await;
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts that no file of the data folder and (on PostgreSQL) no table holds any of `needles`.
async fn assert_nowhere(s: &TestServer, needles: &[Vec<u8>]) {
    let dir = s.storage().data_dir();
    let found = files(&dir);
    if s.storage().database_url().is_none() {
        assert!(
            found.iter().any(|f| f.ends_with("consentry.db")),
            "the data folder holds the store: {found:?}"
        );
        assert!(found.iter().any(|f| f.ends_with("keys.db")), "and the key store: {found:?}");
    }
    assert!(found.iter().any(|f| f.ends_with("kek")), "and the key file: {found:?}");
    let holding = at_rest(s, needles).await;
    assert!(holding.is_empty(), "holding the plaintext: {holding:?}");
}

async fn no_plaintext_reaches_the_storage(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("xena", &analytics_grant()).await;
    let marker = format!("MARKER-{}-PLAINTEXT", Timestamp::now().micros());
    let mut payload = b"voice clip: ".to_vec();
    payload.extend_from_slice(marker.as_bytes());
    payload.extend(std::iter::repeat_n(b'.', 4096));
    let a = store(&s, &record("xena", "analytics", TELEMETRY, &payload)).await;
    let json_marker = format!("JSON-{marker}");
    let b = store(
        &s,
        &json!({"subject": "xena", "category": TELEMETRY, "purpose": "analytics", "json": {"note": json_marker}}),
    )
    .await;
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&a["id"])), ADMIN_KEY, None).await;
    assert_eq!(reply.text.as_bytes(), payload.as_slice(), "stored and read back");
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&b["id"])), ADMIN_KEY, None).await;
    assert_eq!(reply.json()["note"], json_marker);

    let needles = vec![
        marker.clone().into_bytes(),
        json_marker.clone().into_bytes(),
        STANDARD.encode(&payload).into_bytes()[..32].to_vec(),
    ];
    assert_nowhere(&s, &needles).await;
    // After a clean stop too (the write-ahead logs checkpointed into the database files).
    let storage = s.stop().await;
    let s = TestServer::start_in(storage, |_| {}).await;
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&a["id"])), ADMIN_KEY, None).await;
    assert_eq!(reply.text.as_bytes(), payload.as_slice(), "readable after a restart with the same key file");
    assert_nowhere(&s, &needles).await;
    s.stop().await;
}

async fn the_sweeper_deletes_records_past_their_retention(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.retention_interval_secs = 1).await;
    wants_deletions(&s).await;
    // Telemetry is kept 365 days: collected 365 days ago less 3 s, it is due in 3 s.
    let almost = Timestamp::now().plus_seconds(-365 * 86_400 + 3).to_string();
    let mut body = record("yuri", "service.provision", TELEMETRY, b"old");
    body["collected_at"] = json!(almost);
    let old = store(&s, &body).await;
    let old_id = str_of(&old["id"]).to_owned();
    let fresh = store(&s, &record("yuri", "service.provision", TELEMETRY, b"new")).await;
    // One whose retention already ended is not taken at all.
    let mut body = record("yuri", "service.provision", TELEMETRY, b"older");
    body["collected_at"] = json!(Timestamp::now().plus_seconds(-366 * 86_400).to_string());
    assert_code(&s.post("/v1/records", ADMIN_KEY, &body, 422).await, "validation_failed");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = ids(&list(&s, "yuri", "").await);
        if !left.contains(&old_id) {
            assert_eq!(left, vec![str_of(&fresh["id"]).to_owned()], "the fresh one stays");
            break;
        }
        assert!(Instant::now() < deadline, "the sweeper did not delete the record within 15 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_code(&s.get(&format!("/v1/records/{old_id}"), ADMIN_KEY, 404).await, "not_found");
    assert_eq!(deletions(&s).await, vec![(old_id, "retention".to_owned())]);
    s.stop().await;
}

async fn withdrawal_deletes_the_records_and_says_how_many(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    wants_deletions(&s).await;
    let granted = s.post("/v1/subjects/zoe/consents", ADMIN_KEY, &analytics_grant(), 201).await;
    assert_eq!(granted["records_deleted"], 0);
    s.record("zack", &analytics_grant()).await;
    let a1 = store(&s, &record("zoe", "analytics", TELEMETRY, b"one")).await;
    let a2 = store(&s, &record("zoe", "analytics", "user.behavior.purchase_history", b"two")).await;
    let kept = store(&s, &record("zoe", "service.provision", TELEMETRY, b"contract")).await;
    let other = store(&s, &record("zack", "analytics", TELEMETRY, b"not zoe's")).await;

    let out = s.post("/v1/subjects/zoe/consents", ADMIN_KEY, &withdraw("analytics"), 201).await;
    assert_eq!(out["records_deleted"], 2);
    assert_eq!(ids(&list(&s, "zoe", "").await), vec![str_of(&kept["id"]).to_owned()]);
    assert_eq!(ids(&list(&s, "zack", "").await), vec![str_of(&other["id"]).to_owned()]);
    let mut got = deletions(&s).await;
    got.sort();
    let mut want: Vec<(String, String)> =
        [&a1, &a2].iter().map(|r| (str_of(&r["id"]).to_owned(), "withdrawal".to_owned())).collect();
    want.sort();
    assert_eq!(got, want);
    // Withdrawn: nothing more is taken.
    assert_code(
        &s.post("/v1/records", ADMIN_KEY, &record("zoe", "analytics", TELEMETRY, b"x"), 403).await,
        "consent_required",
    );

    // A purpose that keeps its records until their retention ends.
    let catalog = consentry_core::catalog::DEFAULT_CATALOG_YAML.replace(
        "    notice: analytics\n    on_withdraw: delete\n",
        "    notice: analytics\n    on_withdraw: keep_until_retention\n",
    );
    assert!(catalog.contains("keep_until_retention"));
    s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", catalog, 200).await;
    s.record("zoe", &analytics_grant()).await;
    let held = store(&s, &record("zoe", "analytics", TELEMETRY, b"held")).await;
    let out = s.post("/v1/subjects/zoe/consents", ADMIN_KEY, &withdraw("analytics"), 201).await;
    assert_eq!(out["records_deleted"], 0);
    assert!(ids(&list(&s, "zoe", "").await).contains(&str_of(&held["id"]).to_owned()));
    s.stop().await;
}

async fn the_record_size_is_limited(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.max_record_bytes = 4096).await;
    store(&s, &record("uma", "service.provision", TELEMETRY, &[7u8; 4096])).await;
    let too_big = s
        .post("/v1/records", ADMIN_KEY, &record("uma", "service.provision", TELEMETRY, &[7u8; 4097]), 413)
        .await;
    assert_code(&too_big, "payload_too_large");
    assert!(str_of(&too_big["detail"]).contains("payload is larger than the 4096 bytes"), "{too_big}");
    let json_too_big = json!({"subject": "uma", "category": TELEMETRY, "purpose": "service.provision",
                              "json": {"text": "x".repeat(5000)}});
    assert_code(&s.post("/v1/records", ADMIN_KEY, &json_too_big, 413).await, "payload_too_large");
    // A body far past the route's limit is cut off while it is read.
    let huge = record("uma", "service.provision", TELEMETRY, &vec![7u8; 80 * 1024]);
    assert_code(&s.post("/v1/records", ADMIN_KEY, &huge, 413).await, "payload_too_large");
    assert_eq!(ids(&list(&s, "uma", "").await).len(), 1);
    s.stop().await;
}

async fn a_different_kek_is_refused(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let r = store(&s, &record("ivy", "service.provision", TELEMETRY, b"secret")).await;
    let storage = s.stop().await;
    // Another KEK than the one the vault was started with: the server does not start.
    let mut config = consentry_server::Config::default();
    storage.configure(&mut config);
    config.kek = Some(STANDARD.encode([9u8; 32]));
    let err = consentry_server::open(config).await.err().expect("refused");
    assert!(err.to_string().contains("key-encryption key"), "{err}");
    // The key file made on first start still opens it.
    let s = TestServer::start_in(storage, |_| {}).await;
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&r["id"])), ADMIN_KEY, None).await;
    assert_eq!(reply.text, "secret");
    s.stop().await;
}

async fn the_subject_manages_their_own_records_with_their_token(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mine = store(&s, &record("kim", "service.provision", TELEMETRY, b"kim's")).await;
    let more = store(&s, &record("kim", "service.provision", TELEMETRY, b"kim's too")).await;
    let theirs = store(&s, &record("lou", "service.provision", TELEMETRY, b"lou's")).await;
    let token = |subject: &str| {
        let path = format!("/v1/subjects/{subject}/tokens");
        let s = &s;
        async move { str_of(&s.post(&path, ADMIN_KEY, &json!({"ttl": 600}), 201).await["token"]).to_owned() }
    };
    let kim = token("kim").await;

    // Their own records: list, read, delete one, delete a category.
    let listed = s.get("/v1/subjects/kim/records", &kim, 200).await;
    assert_eq!(listed["records"].as_array().map(Vec::len), Some(2));
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&mine["id"])), &kim, None).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, "kim's"));
    let reply = s.send(Method::DELETE, &format!("/v1/records/{}", str_of(&mine["id"])), &kim, None).await;
    assert_eq!(reply.status, 204);

    // Never another subject's: their routes are forbidden, their record ids unknown.
    assert_code(&s.get("/v1/subjects/lou/records", &kim, 403).await, "forbidden");
    assert_code(&s.delete("/v1/subjects/lou/records", &kim, 403).await, "forbidden");
    assert_code(&s.get(&format!("/v1/records/{}", str_of(&theirs["id"])), &kim, 404).await, "not_found");
    assert_code(&s.delete(&format!("/v1/records/{}", str_of(&theirs["id"])), &kim, 404).await, "not_found");
    // Storing is for services (and devices).
    assert_code(
        &s.post("/v1/records", &kim, &record("kim", "service.provision", TELEMETRY, b"x"), 403).await,
        "forbidden",
    );

    let out = s.delete("/v1/subjects/kim/records?category=user.device", &kim, 200).await;
    assert_eq!(out, json!({"deleted": 1}));
    assert_code(&s.get(&format!("/v1/records/{}", str_of(&more["id"])), ADMIN_KEY, 404).await, "not_found");
    let reply = s.send(Method::GET, &format!("/v1/records/{}", str_of(&theirs["id"])), ADMIN_KEY, None).await;
    assert_eq!(reply.text, "lou's");
    s.stop().await;
}
