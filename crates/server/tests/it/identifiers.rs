//! Identifiers end to end: normalised, stored encrypted with a blind index, one subject at a time (409
//! without naming the other), listed masked unless the caller may see them, found by look-up, deleted,
//! gone with an erasure, and never at rest in plain text.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, at_rest, both_backends, str_of};

both_backends!(
    catalogue_identifier_types_are_accepted_and_unknown_ones_refused,
    identifiers_are_normalised_listed_found_and_deleted,
    identifier_values_never_rest_in_plain_text
);

fn add_path(subject: &str) -> String {
    format!("/v1/subjects/{subject}/identifiers")
}

async fn add(s: &TestServer, subject: &str, kind: &str, value: &str, status: u16) -> Value {
    s.post(&add_path(subject), ADMIN_KEY, &json!({"type": kind, "value": value}), status).await
}

async fn found(s: &TestServer, identifier: &str) -> Vec<String> {
    let out = s.get(&format!("/v1/subjects?identifier={identifier}"), ADMIN_KEY, 200).await;
    out["subjects"].as_array().expect("subjects").iter().map(|m| str_of(&m["subject"]).to_owned()).collect()
}

fn values(list: &Value) -> Vec<(String, bool)> {
    list["identifiers"]
        .as_array()
        .expect("identifiers")
        .iter()
        .map(|i| (str_of(&i["value"]).to_owned(), i["masked"].as_bool().expect("masked")))
        .collect()
}

/// A type the catalogue declares is taken (normalised by its rule, found by look-up, refused for another
/// subject like any); one it does not, or no longer, declares is 422 `unknown_identifier_type`; the
/// catalogue refuses a bad declaration.
async fn catalogue_identifier_types_are_accepted_and_unknown_ones_refused(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let refused = add(&s, "cat-ana", "loyalty_card", "LC-1", 422).await;
    assert_code(&refused, "unknown_identifier_type");
    assert_eq!(refused["errors"][0]["path"], "type");

    let mut doc = s.get("/v1/catalog", ADMIN_KEY, 200).await["document"].clone();
    let original = doc.clone();
    doc["identifier_types"] = json!([{"key": "email"}, {"key": "Loyalty-Card"}]);
    let bad = s.put("/v1/catalog", ADMIN_KEY, &doc, 422).await;
    assert_code(&bad, "invalid_catalog");
    let paths: Vec<&str> =
        bad["errors"].as_array().expect("errors").iter().map(|e| str_of(&e["path"])).collect();
    assert_eq!(paths, ["identifier_types[0].key", "identifier_types[1].key"], "{bad}");

    doc["identifier_types"] = json!([
        {"key": "loyalty_card"},
        {"key": "crm_id", "normalise": "lowercase"},
        {"key": "ticket", "normalise": "none"}
    ]);
    s.put("/v1/catalog", ADMIN_KEY, &doc, 200).await;
    let card = add(&s, "cat-ana", "loyalty_card", "  LC-0042 ", 201).await;
    assert_eq!((card["type"].as_str(), card["value"].as_str()), (Some("loyalty_card"), Some("LC-0042")));
    assert_eq!(add(&s, "cat-ana", "crm_id", " AbC-7 ", 201).await["value"], "abc-7");
    assert_eq!(add(&s, "cat-ana", "crm_id", "ABC-7", 200).await["value"], "abc-7", "the same one");
    assert_eq!(add(&s, "cat-ana", "ticket", " T 1", 201).await["value"], " T 1", "kept as given");
    assert_code(&add(&s, "cat-ben", "loyalty_card", "LC-0042", 409).await, "conflict");
    assert_code(&add(&s, "cat-ana", "loyalty_card", "  ", 422).await, "validation_failed");
    assert_eq!(found(&s, "loyalty_card:LC-0042").await, ["cat-ana"]);
    assert_eq!(found(&s, "crm_id:abc-7").await, ["cat-ana"]);
    assert!(found(&s, "loyalty_card:LC-0043").await.is_empty());
    // The same value under another type is another identifier.
    add(&s, "cat-ben", "account", "LC-0042", 201).await;
    assert_eq!(found(&s, "account:LC-0042").await, ["cat-ben"]);

    // Once the catalogue drops the type, it is unknown again (stored ones are still listed).
    s.put("/v1/catalog", ADMIN_KEY, &original, 200).await;
    assert_code(&add(&s, "cat-ana", "loyalty_card", "LC-9", 422).await, "unknown_identifier_type");
    let listed = s.get(&add_path("cat-ana"), ADMIN_KEY, 200).await;
    assert_eq!(listed["identifiers"].as_array().map(Vec::len), Some(3));
    let lookup = s.get("/v1/subjects?identifier=loyalty_card:LC-0042", ADMIN_KEY, 422).await;
    assert_code(&lookup, "unknown_identifier_type");
    assert_eq!(lookup["errors"][0]["path"], "identifier");
    s.stop().await;
}

async fn identifiers_are_normalised_listed_found_and_deleted(backend: Backend) {
    let s = TestServer::with_config_on(backend, |c| c.phone_default_region = Some("DE".into())).await;
    let email = add(&s, "ana", "email", "  Ana.Lima@Example.COM ", 201).await;
    assert_eq!(email["value"], "ana.lima@example.com");
    assert_eq!(email["type"], "email");
    assert!(str_of(&email["id"]).starts_with("idn_"), "{email}");
    // Again, in another spelling: the same identifier, unchanged.
    let again = add(&s, "ana", "email", "ana.lima@example.com", 200).await;
    assert_eq!(again["id"], email["id"]);
    // Read with the default region, stored in E.164.
    let phone = add(&s, "ana", "phone", "030 1234567", 201).await;
    assert_eq!(phone["value"], "+49301234567");
    add(&s, "ana", "phone", "+49 30 1234567", 200).await;
    add(&s, "ana", "advertising_id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", 201).await;

    // Another subject may not take it, and is not told whose it is.
    let taken = add(&s, "ben", "email", "ANA.LIMA@example.com", 409).await;
    assert_code(&taken, "conflict");
    assert!(!taken.to_string().contains("ana\""), "the holder is not named: {taken}");

    // Bad input names the field.
    let unknown = add(&s, "ana", "fax", "123", 422).await;
    assert_code(&unknown, "unknown_identifier_type");
    assert_eq!(unknown["errors"][0]["path"], "type", "{unknown}");
    for (kind, value, field) in [
        ("email", "ana-at-example.com", "value"),
        ("phone", "12", "value"),
        ("advertising_id", "not-a-uuid", "value"),
        ("account", "", "value"),
    ] {
        let p = add(&s, "ana", kind, value, 422).await;
        assert_code(&p, "validation_failed");
        assert_eq!(p["errors"][0]["path"], field, "{kind} {value:?}: {p}");
    }

    // Listed: in the clear for admin and for the person, masked for a key without identifiers:read.
    let full = s.get(&add_path("ana"), ADMIN_KEY, 200).await;
    assert_eq!(
        values(&full),
        [
            ("ana.lima@example.com".to_owned(), false),
            ("+49301234567".to_owned(), false),
            ("6d92078a-8246-4ba4-ae5b-76104861e7dc".to_owned(), false)
        ]
    );
    let (_, reader) = s.create_key("reader", &["consent:read"]).await;
    let masked = s.get(&add_path("ana"), &reader, 200).await;
    assert_eq!(
        values(&masked),
        [("a***@example.com".to_owned(), true), ("+***67".to_owned(), true), ("***e7dc".to_owned(), true)]
    );
    let (_, seer) = s.create_key("seer", &["consent:read", "identifiers:read"]).await;
    assert!(values(&s.get(&add_path("ana"), &seer, 200).await).iter().all(|(_, m)| !m));
    let minted = s.post("/v1/subjects/ana/tokens", ADMIN_KEY, &json!({}), 201).await;
    let token = str_of(&minted["token"]).to_owned();
    assert!(values(&s.get(&add_path("ana"), &token, 200).await).iter().all(|(_, m)| !m));
    s.get(&add_path("ben"), &token, 403).await;
    // The person may not attach identifiers (the brand vouches for them).
    s.post(&add_path("ana"), &token, &json!({"type": "email", "value": "x@example.com"}), 403).await;

    // Found by any spelling of the value; nothing for an unknown one.
    assert_eq!(found(&s, "email:ANA.LIMA@example.com").await, ["ana"]);
    assert_eq!(found(&s, "phone:%2B49301234567").await, ["ana"]);
    assert_eq!(found(&s, "phone:0301234567").await, ["ana"], "with the default region");
    assert!(found(&s, "email:nobody@example.com").await.is_empty());
    assert_code(&s.get("/v1/subjects?identifier=email", ADMIN_KEY, 422).await, "validation_failed");
    assert_code(&s.get("/v1/subjects?identifier=fax:1", ADMIN_KEY, 422).await, "unknown_identifier_type");
    assert_code(&s.get("/v1/subjects?identifier=email:nope", ADMIN_KEY, 422).await, "validation_failed");
    s.get("/v1/subjects?identifier=email:ana.lima@example.com", &reader, 403).await;
    s.get("/v1/subjects?identifier=email:ana.lima@example.com", &token, 403).await;

    // Deleted once, with its index entry: it is free for another subject then.
    let id = str_of(&email["id"]);
    s.delete(&format!("/v1/subjects/ben/identifiers/{id}"), ADMIN_KEY, 404).await;
    s.delete(&format!("/v1/subjects/ana/identifiers/{id}"), &token, 204).await;
    s.delete(&format!("/v1/subjects/ana/identifiers/{id}"), ADMIN_KEY, 404).await;
    assert!(found(&s, "email:ana.lima@example.com").await.is_empty());
    add(&s, "ben", "email", "ana.lima@example.com", 201).await;
    assert_eq!(found(&s, "email:ana.lima@example.com").await, ["ben"]);

    // The Rust client does the same.
    let client = consentry_client::Client::new(&s.base, ADMIN_KEY).expect("client");
    let added = client.add_identifier("cleo", "phone", "+49 151 12345678").await.expect("add");
    assert_eq!(added.value, "+4915112345678");
    assert_eq!(client.find_subject("phone", "+4915112345678").await.expect("find"), Some("cleo".into()));
    assert_eq!(client.identifiers("cleo").await.expect("list"), vec![added.clone()]);
    client.delete_identifier("cleo", &added.id).await.expect("delete");
    assert_eq!(client.find_subject("phone", "+4915112345678").await.expect("find"), None);
    let err = client.add_identifier("cleo", "email", "ben-has-it").await.expect_err("malformed");
    assert!(matches!(err, consentry_client::Error::Problem { status: 422, .. }), "{err:?}");
}

async fn identifier_values_never_rest_in_plain_text(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let values = [
        ("email", "zoe.identifier-scan@example.org"),
        ("phone", "+4915112345678"),
        ("account", "ACCOUNT-SCAN-77431"),
        ("device_serial", "SERIAL-SCAN-99120"),
    ];
    for (kind, value) in values {
        add(&s, "zoe", kind, value, 201).await;
    }
    assert_eq!(
        s.get(&add_path("zoe"), ADMIN_KEY, 200).await["identifiers"].as_array().map(Vec::len),
        Some(4)
    );
    let needles: Vec<Vec<u8>> = values.iter().map(|(_, v)| v.as_bytes().to_vec()).collect();
    let seen = at_rest(&s, &needles).await;
    assert!(seen.is_empty(), "identifier values at rest in plain text after the writes: {seen:?}");

    // Erasure takes the identifiers and their index entries: the look-up finds no one.
    s.post("/v1/requests", ADMIN_KEY, &json!({"subject": "zoe", "type": "erasure"}), 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !found(&s, "email:zoe.identifier-scan@example.org").await.is_empty() {
        assert!(Instant::now() < deadline, "the erasure did not remove the identifiers within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(found(&s, "account:ACCOUNT-SCAN-77431").await.is_empty());
    let seen = at_rest(&s, &needles).await;
    assert!(seen.is_empty(), "identifier values at rest in plain text after the erasure: {seen:?}");
    let rows = identifier_rows(&s).await;
    assert_eq!(rows, 0, "no identifier row (and so no index entry) is left");
    // Nor can one be added again: the erased person gets no new key.
    let again = json!({"type": "email", "value": "zoe.identifier-scan@example.org"});
    let p = s.post(&add_path("zoe"), ADMIN_KEY, &again, 410).await;
    assert_code(&p, "subject_erased");
    assert!(at_rest(&s, &needles).await.is_empty(), "the refused value is not at rest either");
}

/// How many identifier rows the store holds, read straight from its tables.
async fn identifier_rows(s: &TestServer) -> i64 {
    match s.storage().database_url() {
        None => {
            let path = s.storage().data_dir().join("consentry.db");
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("open the data file");
            conn.query_row("SELECT count(*) FROM identifiers", [], |r| r.get(0)).expect("count")
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let n =
                sqlx::query_scalar("SELECT count(*) FROM identifiers").fetch_one(&pool).await.expect("count");
            pool.close().await;
            n
        }
    }
}
