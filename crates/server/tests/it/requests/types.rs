//! Every request type end to end: access and portability (the export archive), restriction, objection,
//! rectification and erasure, and the list that filters them.

use std::io::Read;
use std::time::{Duration, Instant};

use consentry_core::Timestamp;
use serde_json::{Value, json};

use super::{bytes, changes, request};
use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(every_type_end_to_end);

pub(super) fn unzip(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).expect("a ZIP archive");
    (0..zip.len())
        .map(|i| {
            let mut file = zip.by_index(i).expect("entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("read entry (CRC checked)");
            (file.name().expect("a UTF-8 name").into_owned(), content)
        })
        .collect()
}

async fn every_type_end_to_end(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("ann", &grant("marketing.direct", &["email", "sms"])).await;
    s.record("ann", &grant("analytics", &[])).await;
    s.get("/v1/subjects/ann/consents", ADMIN_KEY, 200).await;
    // The access log is written in batches: wait until that read is in it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/v1/subjects/ann/access-log", ADMIN_KEY, 200).await["entries"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "the read was not logged within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let reading = json!({"subject": "ann", "category": "user.device.telemetry", "purpose": "analytics",
                         "json": {"steps": 1200}});
    let record_id = str_of(&s.post("/v1/records", ADMIN_KEY, &reading, 201).await["id"]).to_owned();
    let voice = json!({"subject": "ann", "category": "user.device.telemetry", "purpose": "analytics",
                       "content_type": "audio/ogg", "data": "T2dnUwACAAAA"});
    s.post("/v1/records", ADMIN_KEY, &voice, 201).await;
    let speaker = json!({"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                         "purposes": ["analytics"]});
    let device = s.post("/v1/subjects/ann/devices", ADMIN_KEY, &speaker, 201).await;

    // Access: the export is ready at once and nothing else is waited for.
    let access = request(&s, "ann", "access", None).await;
    assert!(str_of(&access["id"]).starts_with("req_"), "{access}");
    assert_eq!((str_of(&access["type"]), str_of(&access["status"])), ("access", "completed"));
    assert_eq!(changes(&access), ["received", "started", "own_part_done", "completed"]);
    let received = Timestamp::parse(str_of(&access["received_at"])).expect("received_at");
    let due = Timestamp::parse(str_of(&access["due_at"])).expect("due_at");
    let days = (due.micros() - received.micros()) / 86_400_000_000;
    assert!((28..=31).contains(&days), "due one calendar month later: {days} days");
    assert_eq!(access["overdue"], false);
    let url = str_of(&access["export"]["url"]).to_owned();
    let (status, archive) = bytes(&s, &url).await;
    assert_eq!(status, 200);
    let files = unzip(&archive);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"data.json") && names.contains(&"index.html"), "{names:?}");
    let data: Value = serde_json::from_slice(&files.iter().find(|(n, _)| n == "data.json").expect("data").1)
        .expect("data.json is JSON");
    assert_eq!(data["subject"], "ann");
    let current = s.get("/v1/subjects/ann/consents", ADMIN_KEY, 200).await;
    assert_eq!(
        data["consents"]["current"], current["statements"],
        "current statements as the API shows them"
    );
    let history = s.get("/v1/subjects/ann/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(data["consents"]["history"], history["events"], "the full history");
    assert_eq!(data["receipts"].as_array().map(Vec::len), Some(2), "one receipt per recorded change");
    let receipt_id = str_of(&data["receipts"][0]["id"]);
    let receipt = s.get(&format!("/v1/receipts/{receipt_id}?format=jws"), ADMIN_KEY, 200).await;
    assert_eq!(receipt["jws"], data["receipts"][0]["jws"]);
    assert!(
        data["access_log"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["route"] == "GET /v1/subjects/{subject}/consents")),
        "the access log: {}",
        data["access_log"]
    );
    assert_eq!(data["requests"][0]["id"], access["id"]);
    assert_eq!(data["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&data["devices"][0]["id"], &data["devices"][0]["name"]),
        (&device["id"], &json!("Kitchen speaker"))
    );
    assert!(!data.to_string().contains(str_of(&device["token"])), "never a device token");
    let records = data["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!((&records[0]["id"], &records[0]["content"]), (&json!(record_id), &json!({"steps": 1200})));
    assert_eq!(
        (&records[0]["category"], &records[0]["purpose"]),
        (&json!("user.device.telemetry"), &json!("analytics"))
    );
    assert_eq!(records[1]["content"], Value::Null, "audio only as its file");
    for r in records {
        let file = files.iter().find(|(n, _)| n == str_of(&r["file"])).expect("the payload file");
        assert_eq!(file.1.len() as u64, r["size"].as_u64().expect("size"));
    }
    let audio = files.iter().find(|(n, _)| n.ends_with(".ogg")).expect("the audio file");
    assert_eq!(audio.1, b"OggS\x00\x02\x00\x00\x00");
    let html = String::from_utf8(files.iter().find(|(n, _)| n == "index.html").expect("html").1.clone())
        .expect("UTF-8");
    assert!(html.contains("<html lang=\"en\">") && html.contains("right of access"), "{html}");

    // Portability: the same archive, said so.
    let port = request(&s, "ann", "portability", None).await;
    let (status, archive) = bytes(&s, str_of(&port["export"]["url"])).await;
    assert_eq!(status, 200);
    let html = unzip(&archive).into_iter().find(|(n, _)| n == "index.html").expect("html").1;
    assert!(String::from_utf8_lossy(&html).contains("data portability"));

    // Restriction of one purpose: a `restrict` event through the consent path; checks deny.
    let r = request(&s, "ann", "restriction", Some(json!({"purpose": "marketing.direct"}))).await;
    assert_eq!(r["status"], "completed");
    let check = s.check("ann", "marketing.direct", Some("email")).await;
    assert_eq!((check["allowed"].as_bool(), str_of(&check["reason"])), (Some(false), "restricted"));
    assert_eq!(s.check("ann", "analytics", None).await["allowed"], true, "other purposes untouched");
    let history = s.get("/v1/subjects/ann/consents/history", ADMIN_KEY, 200).await;
    let last = history["events"].as_array().and_then(|e| e.last()).cloned().expect("events");
    assert_eq!((str_of(&last["action"]), str_of(&last["purpose"])), ("restrict", "marketing.direct"));
    assert!(str_of(&last["actor"]).starts_with("key:"), "{last}");

    // Objection to every purpose: analytics (consent) and a legitimate-interest purpose are denied.
    s.record("bob", &grant("analytics", &[])).await;
    let before = s.check("bob", "service.improvement", None).await;
    assert_eq!(before["allowed"], true, "{before}");
    let o = request(&s, "bob", "objection", None).await;
    assert_eq!(o["status"], "completed");
    for purpose in ["analytics", "service.improvement"] {
        let check = s.check("bob", purpose, None).await;
        assert_eq!(
            (check["allowed"].as_bool(), str_of(&check["reason"])),
            (Some(false), "objected"),
            "{purpose}"
        );
    }

    // Rectification of a vault record: replaced through the vault, the new content never kept with the
    // request; one that names no record is recorded for the privacy team.
    let fix = request(
        &s,
        "ann",
        "rectification",
        Some(json!({"record": record_id, "json": {"steps": 1300}, "note": "the counter was off"})),
    )
    .await;
    assert_eq!(fix["status"], "completed");
    assert_eq!(fix["details"], json!({"record": record_id, "note": "the counter was off"}));
    let note = str_of(&fix["history"][2]["note"]);
    assert!(note.starts_with(&format!("replaced vault record {record_id} with rec_")), "{note}");
    let new_id = note.split_whitespace().nth(5).expect("new id");
    assert_code(&s.get(&format!("/v1/records/{record_id}"), ADMIN_KEY, 404).await, "not_found");
    let replaced = s.get(&format!("/v1/records/{new_id}"), ADMIN_KEY, 200).await;
    assert_eq!(replaced, json!({"steps": 1300}));
    let p = s
        .post(
            "/v1/requests",
            ADMIN_KEY,
            &json!({"subject": "bob", "type": "rectification",
        "details": {"record": new_id, "json": {}}}),
            422,
        )
        .await;
    assert_eq!(p["errors"][0]["path"], "details.record", "another subject's record: {p}");
    let fix =
        request(&s, "ann", "rectification", Some(json!({"note": "my e-mail is ann@example.org"}))).await;
    assert_eq!(fix["status"], "completed");
    assert_eq!(fix["details"]["note"], "my e-mail is ann@example.org");
    assert!(str_of(&fix["history"][2]["note"]).contains("recorded"), "{fix}");

    // Erasure (more in its own test).
    let erase = request(&s, "bob", "erasure", None).await;
    assert_eq!(erase["status"], "completed");
    assert_eq!(s.check("bob", "analytics", None).await["reason"], "erased");

    // The list filters by type and status, in pages.
    let list = s.get("/v1/requests?type=access", ADMIN_KEY, 200).await;
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(1));
    let page = s.get("/v1/requests?limit=2", ADMIN_KEY, 200).await;
    assert_eq!(page["requests"].as_array().map(Vec::len), Some(2));
    let next = str_of(&page["next"]).to_owned();
    let rest = s.get(&format!("/v1/requests?limit=10&after={next}"), ADMIN_KEY, 200).await;
    assert_eq!(rest["requests"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        s.get("/v1/requests?status=completed", ADMIN_KEY, 200).await["requests"].as_array().map(Vec::len),
        Some(7)
    );
    assert_eq!(
        s.get("/v1/requests?subject=ann", ADMIN_KEY, 200).await["requests"].as_array().map(Vec::len),
        Some(5)
    );
    s.stop().await;
}
