//! Import and export (docs/import.md) on both backends: bad lines of every kind reported, nothing imported
//! twice, an interrupted import resumed, an old imported grant never overriding a later live withdrawal
//! (also after a restart), strict mode, and export → import into a fresh store giving the same answers,
//! ages, identifiers and evidence, with a linked id's events under its survivor.

use std::collections::HashSet;

use consentry_service::transfer::import::{self, ImportOptions};
use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{
    ADMIN_KEY, Backend, Storage, TestServer, access_entries, assert_code, both_backends, entry, str_of,
    withdraw,
};

fn line(source_id: &str, subject: &str, purpose: &str, action: &str, at: &str) -> Value {
    let mut l = json!({"source_id": source_id, "subject": subject, "purpose": purpose, "action": action,
                       "occurred_at": at});
    if action == "grant" {
        l["notice"] = json!({"key": purpose});
    }
    l
}

fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

async fn import(server: &TestServer, query: &str, body: &str) -> Value {
    server
        .raw(
            Method::POST,
            &format!("/v1/import{query}"),
            ADMIN_KEY,
            "application/x-ndjson",
            body.to_owned(),
            200,
        )
        .await
}

async fn answer(server: &TestServer, subject: &str, purpose: &str, channel: Option<&str>) -> (bool, String) {
    let d = server.check(subject, purpose, channel).await;
    (d["allowed"].as_bool().expect("allowed"), str_of(&d["reason"]).to_owned())
}

async fn history(server: &TestServer, subject: &str) -> Vec<Value> {
    let h = server.get(&format!("/v1/subjects/{subject}/consents/history"), ADMIN_KEY, 200).await;
    h["events"].as_array().expect("events").clone()
}

async fn import_is_idempotent_and_ordered(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    // Live now: ana withdraws the newsletter.
    server.record("ana", &withdraw("marketing.direct")).await;
    let good = [
        // An old grant of ana's, imported after her live withdrawal: it must not win.
        line("r1", "ana", "marketing.direct", "grant", "2023-04-01T10:00:00Z"),
        // bo: granted, then withdrawn, then granted again; listed out of order.
        line("r3", "bo", "analytics", "grant", "2024-06-01T00:00:00Z"),
        line("r2", "bo", "analytics", "withdraw", "2023-06-01T00:00:00Z"),
        line("r4", "bo", "analytics", "grant", "2022-06-01T00:00:00Z"),
    ];
    let mut text = jsonl(&good);
    // Bad lines of every kind, each with its reason.
    let bad = [
        ("{not json", "malformed_json"),
        (r#"{"source_id":"x","subject":"cy","purpose":"analytics","action":"grant"}"#, "missing_field"),
        (
            &*line("x2", "cy", "no.such.purpose", "withdraw", "2023-01-01T00:00:00Z").to_string(),
            "unknown_purpose",
        ),
        (&*line("x3", "cy", "analytics", "withdraw", "last tuesday").to_string(), "invalid_time"),
        (&*line("x4", "cy", "analytics", "agree", "2023-01-01T00:00:00Z").to_string(), "unknown_action"),
        (
            &*line("x5", "cy", "analytics", "withdraw", "2999-01-01T00:00:00Z").to_string(),
            "occurred_in_future",
        ),
        (
            r#"{"source_id":"x6","subject":"cy","purpose":"analytics","action":"grant","occurred_at":"2023-01-01T00:00:00Z"}"#,
            "notice_mismatch",
        ),
    ];
    for (l, _) in &bad {
        text.push_str(l);
        text.push('\n');
    }
    let report = import(&server, "?source=ot", &text).await;
    assert_eq!(
        (report["lines"].as_u64(), report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(11), Some(4), Some(7)),
        "{report}"
    );
    let reasons: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["line"].as_u64().expect("line"), str_of(&e["reason"])))
        .collect();
    let expected: Vec<(u64, &str)> = bad.iter().enumerate().map(|(i, (_, r))| (i as u64 + 5, *r)).collect();
    assert_eq!(reasons, expected);

    assert_eq!(answer(&server, "ana", "marketing.direct", None).await, (false, "withdrawn".to_owned()));
    assert_eq!(answer(&server, "bo", "analytics", None).await, (true, "granted".to_owned()));
    // bo's history: in the order the changes were made, each with its original time and the import actor.
    let bo = history(&server, "bo").await;
    let times: Vec<&str> = bo.iter().map(|e| str_of(&e["occurred_at"])).collect();
    assert_eq!(
        times,
        ["2022-06-01T00:00:00.000000Z", "2023-06-01T00:00:00.000000Z", "2024-06-01T00:00:00.000000Z"]
    );
    assert!(bo.iter().all(|e| e["actor"] == "import:ot"));

    // The same file again, and one that overlaps it: nothing twice.
    let again = import(&server, "?source=ot", &text).await;
    assert_eq!((again["imported"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(4)), "{again}");
    let overlap =
        jsonl(&[good[1].clone(), line("r5", "bo", "analytics", "withdraw", "2025-01-01T00:00:00Z")]);
    let more = import(&server, "?source=ot", &overlap).await;
    assert_eq!((more["imported"].as_u64(), more["skipped"].as_u64()), (Some(1), Some(1)), "{more}");
    assert_eq!(history(&server, "bo").await.len(), 4);
    assert_eq!(answer(&server, "bo", "analytics", None).await, (false, "withdrawn".to_owned()));
    // Another source's r5 is another change.
    let other = import(
        &server,
        "?source=fides",
        &jsonl(&[line("r5", "bo", "analytics", "grant", "2023-01-01T00:00:00Z")]),
    )
    .await;
    assert_eq!(other["imported"].as_u64(), Some(1));
    assert_eq!(answer(&server, "bo", "analytics", None).await, (false, "withdrawn".to_owned()));

    // The ledger still verifies, and a restart (the engine rebuilt from the stored state) answers alike.
    let audit = server.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!(audit["ok"], true, "{audit}");
    let storage = server.stop().await;
    let server = TestServer::start_in(storage, |_| {}).await;
    assert_eq!(answer(&server, "ana", "marketing.direct", None).await, (false, "withdrawn".to_owned()));
    assert_eq!(answer(&server, "bo", "analytics", None).await, (false, "withdrawn".to_owned()));
    let current = server.get("/v1/subjects/ana/consents", ADMIN_KEY, 200).await;
    let statements = current["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{current}");
    assert_eq!(statements[0]["action"], "withdraw");
    server.stop().await;
}

async fn strict_imports_all_or_nothing(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let mut text = jsonl(&[line("s1", "di", "analytics", "withdraw", "2023-01-01T00:00:00Z")]);
    text.push_str("{broken\n");
    let report = import(&server, "?source=ot&strict=true", &text).await;
    assert_eq!(
        (report["aborted"].as_bool(), report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(true), Some(0), Some(1)),
        "{report}"
    );
    assert!(history(&server, "di").await.is_empty());
    let report = import(
        &server,
        "?source=ot&strict=true",
        &jsonl(&[line("s1", "di", "analytics", "withdraw", "2023-01-01T00:00:00Z")]),
    )
    .await;
    assert_eq!(
        (report["aborted"].as_bool(), report["imported"].as_u64()),
        (Some(false), Some(1)),
        "{report}"
    );
    // CSV goes the same way, and a wrong media type or source is refused.
    let csv = "source_id,subject,purpose,action,occurred_at,channels\ns2,di,marketing.direct,withdraw,2023-01-01T00:00:00Z,email|sms\n";
    let report = server.raw(Method::POST, "/v1/import?source=ot", ADMIN_KEY, "text/csv", csv, 200).await;
    assert_eq!(report["imported"].as_u64(), Some(1), "{report}");
    server.raw(Method::POST, "/v1/import", ADMIN_KEY, "application/json", "{}", 415).await;
    server.raw(Method::POST, "/v1/import?source=a%20b", ADMIN_KEY, "application/x-ndjson", "", 422).await;

    // A strict body is spooled to be checked whole, up to a bound: one byte over is refused, nothing written.
    let body = jsonl(&[line("s3", "el", "analytics", "withdraw", "2023-01-01T00:00:00Z")]);
    let options =
        ImportOptions { strict: true, max_spool: body.len() as u64 - 1, ..ImportOptions::new("ot") };
    let refused = import::run_stream(&server.state, &options, body.as_bytes(), &mut ()).await;
    let e = refused.expect_err("over the bound");
    assert_eq!(e.code(), "payload_too_large", "{e}");
    assert!(history(&server, "el").await.is_empty());
    let options = ImportOptions { max_spool: body.len() as u64, ..options };
    let report =
        import::run_stream(&server.state, &options, body.as_bytes(), &mut ()).await.expect("at the bound");
    assert_eq!((report.imported, report.aborted), (1, false));
    server.stop().await;
}

/// An identifier decides who can later prove to be the person (verified requesters), so `import:write`
/// alone cannot attach one: such a line is refused, and the same line goes in with `identifiers:write` too.
async fn identifiers_need_their_own_scope(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_, import_only) = server.create_key("importer", &["import:write"]).await;
    let (_, both) = server.create_key("importer-ids", &["import:write", "identifiers:write"]).await;
    let mut l = line("i1", "ed", "analytics", "withdraw", "2023-01-01T00:00:00Z");
    l["identifiers"] = json!([{"type": "email", "value": "ed@example.com"}]);
    let body = jsonl(&[l]);
    let report = server
        .raw(Method::POST, "/v1/import?source=ot", &import_only, "application/x-ndjson", body.clone(), 200)
        .await;
    assert_eq!((report["imported"].as_u64(), report["failed"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(str_of(&report["errors"][0]["reason"]), "identifiers_not_allowed");
    let found = server.get("/v1/subjects?identifier=email:ed@example.com", ADMIN_KEY, 200).await;
    assert_eq!(found["subjects"].as_array().map(Vec::len), Some(0), "{found}");
    let report =
        server.raw(Method::POST, "/v1/import?source=ot", &both, "application/x-ndjson", body, 200).await;
    assert_eq!(report["imported"].as_u64(), Some(1), "{report}");
    let found = server.get("/v1/subjects?identifier=email:ed@example.com", ADMIN_KEY, 200).await;
    assert_eq!(str_of(&found["subjects"][0]["subject"]), "ed", "{found}");
    server.stop().await;
}

/// An age decides whether a child's own grants count, so `import:write` alone cannot state one (as
/// `PUT /v1/subjects/{subject}/age` needs `consent:write`): a line that states one is refused, and goes in with
/// `consent:write` too.
async fn ages_need_consent_write(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_, import_only) = server.create_key("importer", &["import:write"]).await;
    let (_, both) = server.create_key("importer-ages", &["import:write", "consent:write"]).await;
    let mut l = line("a1", "kit", "analytics", "withdraw", "2023-01-01T00:00:00Z");
    l["age"] = json!({"age_band": "18+"});
    let body = jsonl(&[l]);
    let report = server
        .raw(Method::POST, "/v1/import?source=ot", &import_only, "application/x-ndjson", body.clone(), 200)
        .await;
    assert_eq!((report["imported"].as_u64(), report["failed"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(str_of(&report["errors"][0]["reason"]), "age_not_allowed", "{report}");
    server.get("/v1/subjects/kit/age", ADMIN_KEY, 404).await;
    let report =
        server.raw(Method::POST, "/v1/import?source=ot", &both, "application/x-ndjson", body, 200).await;
    assert_eq!(report["imported"].as_u64(), Some(1), "{report}");
    let age = server.get("/v1/subjects/kit/age", ADMIN_KEY, 200).await;
    assert!(age.to_string().contains("18+"), "{age}");
    server.stop().await;
}

/// `export:read` alone gives the consents, not what the vault holds of each person: evidence (IP addresses,
/// user agents) needs `evidence=true` and ages `ages=true`, each with `consent:read` too (the scope that
/// reads them one subject at a time), and each subject whose evidence or age went out finds the export in
/// their access log; a plain export logs nobody.
async fn evidence_and_ages_need_consent_read(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let mut l = line("v1", "liv", "analytics", "withdraw", "2023-01-01T00:00:00Z");
    l["age"] = json!({"birth_date": "2014-05-01"});
    l["evidence"] = json!({"ip": "198.51.100.9"});
    let other = line("v2", "max", "analytics", "withdraw", "2023-01-01T00:00:00Z");
    assert_eq!(import(&server, "?source=ot", &jsonl(&[l, other])).await["imported"].as_u64(), Some(2));
    let (_, export_only) = server.create_key("exporter", &["export:read"]).await;
    let (_, reader) = server.create_key("auditor", &["export:read", "consent:read"]).await;
    for history in [false, true] {
        let plain = server
            .send(Method::GET, &format!("/v1/export/consents?history={history}"), &export_only, None)
            .await;
        assert_eq!(plain.status, 200, "{}", plain.text);
        assert!(plain.text.contains("\"liv\""), "{}", plain.text);
        assert!(!plain.text.contains("198.51.100.9") && !plain.text.contains("2014-05-01"), "{}", plain.text);
        for asked in ["evidence=true", "ages=true", "evidence=true&ages=true"] {
            let path = format!("/v1/export/consents?history={history}&{asked}");
            assert_code(&server.get(&path, &export_only, 403).await, "forbidden");
        }
    }
    // The plain exports logged nobody; the full one logs liv (whose evidence and age went out), not max.
    let full = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("{}/v1/export/consents?evidence=true&ages=true", server.base))
        .bearer_auth(&reader)
        .header("X-Consentry-Purpose", "migration")
        .send()
        .await
        .expect("request");
    assert_eq!(full.status().as_u16(), 200);
    let full = full.text().await.expect("body");
    assert!(full.contains("198.51.100.9") && full.contains("2014-05-01"), "{full}");
    let only_evidence = server.send(Method::GET, "/v1/export/consents?evidence=true", &reader, None).await;
    assert!(only_evidence.text.contains("198.51.100.9") && !only_evidence.text.contains("2014-05-01"));
    let logged = access_entries(&server, "liv", 2).await;
    assert_eq!(
        logged,
        [
            entry("auditor", "GET /v1/export/consents", "unspecified"),
            entry("auditor", "GET /v1/export/consents", "migration")
        ]
    );
    let max = server.get("/v1/subjects/max/access-log", ADMIN_KEY, 200).await;
    assert!(!max.to_string().contains("export"), "{max}");
    server.stop().await;
}

/// The export keeps nothing from page to page: each page reads its own subjects' aliases, first lines and
/// ages. With two lines a page, every subject's lines span pages, and still each subject's age and
/// identifiers go out once, on their first line, in the current state and in the history.
async fn a_subject_over_several_pages_gets_its_age_once(backend: Backend) {
    use consentry_service::transfer::export::{ExportOptions, Exporter};
    let server = TestServer::start_on(backend).await;
    let mut lines = Vec::new();
    for (n, purpose) in ["analytics", "marketing", "marketing.direct"].into_iter().enumerate() {
        for subject in ["pia", "quin", "rue"] {
            let at = format!("2023-0{}-01T00:00:00Z", n + 1);
            let mut l = line(&format!("{subject}-{n}"), subject, purpose, "withdraw", &at);
            if n == 1 {
                l["age"] = json!({"age_band": "18+"});
                l["identifiers"] = json!([{"type": "email", "value": format!("{subject}@example.com")}]);
            }
            lines.push(l);
        }
    }
    assert_eq!(import(&server, "?source=ot", &jsonl(&lines)).await["imported"].as_u64(), Some(9));
    for history in [false, true] {
        let options = ExportOptions {
            history,
            ages: true,
            identifiers: true,
            evidence: true,
            ..ExportOptions::default()
        };
        let mut exporter = Exporter::new(server.state.store.clone(), options)
            .with_vault(server.state.kek.clone())
            .paged_by(2);
        let mut out = String::new();
        while let Some(page) = exporter.next_page().await.expect("a page") {
            out.push_str(&page);
        }
        let exported: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(exported.len(), 9, "history={history}: {out}");
        for subject in ["pia", "quin", "rue"] {
            let theirs: Vec<&Value> = exported.iter().filter(|l| l["subject"] == subject).collect();
            let aged: Vec<usize> = (0..theirs.len()).filter(|&i| theirs[i].get("age").is_some()).collect();
            let identified: Vec<usize> =
                (0..theirs.len()).filter(|&i| theirs[i].get("identifiers").is_some()).collect();
            assert_eq!((aged, identified), (vec![0], vec![0]), "{subject}, history={history}: {out}");
            assert_eq!(theirs[0]["identifiers"][0]["value"], format!("{subject}@example.com"));
        }
    }
    server.stop().await;
}

/// A statement in force replaced while an export runs moves to its newer event's position, past where the
/// export began: the export reads on to the ledger's end, so the subject is not left out.
async fn a_statement_replaced_during_an_export_is_not_left_out(backend: Backend) {
    use consentry_service::transfer::export::{ExportOptions, Exporter};
    let server = TestServer::start_on(backend).await;
    let subjects: Vec<String> = (0..10).map(|i| format!("mover-{i}")).collect();
    let lines: Vec<Value> = subjects
        .iter()
        .map(|s| line(&format!("m-{s}"), s, "analytics", "withdraw", "2023-01-01T00:00:00Z"))
        .collect();
    assert_eq!(import(&server, "?source=ot", &jsonl(&lines)).await["imported"].as_u64(), Some(10));
    let mut exporter = Exporter::new(server.state.store.clone(), ExportOptions::default()).paged_by(1);
    let mut out = exporter.next_page().await.expect("a page").expect("the first page");
    // mover-8's withdrawal (position 9, not read yet) is replaced by a newer one at position 11.
    server.record("mover-8", &withdraw("analytics")).await;
    while let Some(page) = exporter.next_page().await.expect("a page") {
        out.push_str(&page);
    }
    let exported: HashSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON")["subject"].as_str().expect("subject").to_owned()
        })
        .collect();
    assert_eq!(exported, subjects.into_iter().collect::<HashSet<_>>(), "{out}");
    server.stop().await;
}

/// A reader that gives `limit` bytes of `data`, then fails: a connection cut half-way.
struct Cut {
    data: Vec<u8>,
    at: usize,
    limit: usize,
}

impl tokio::io::AsyncRead for Cut {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at >= self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other("connection cut")));
        }
        let n = buf.remaining().min(self.limit - self.at).min(8192);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        std::task::Poll::Ready(Ok(()))
    }
}

async fn an_interrupted_import_resumes(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let lines: Vec<Value> = (0..10_000)
        .map(|i: u32| {
            line(
                &format!("c{i}"),
                &format!("s{}", i % 1_000),
                "analytics",
                if i.is_multiple_of(3) { "withdraw" } else { "deny" },
                "2023-01-01T00:00:00Z",
            )
        })
        .collect();
    let text = jsonl(&lines);
    // Batches of 1,000 (an import's default is larger than this input): the run stops between batches.
    let options = ImportOptions { batch: 1_000, ..ImportOptions::new("cut") };
    // Cut after two thirds: the batches committed before stay.
    let cut = Cut { data: text.clone().into_bytes(), at: 0, limit: text.len() * 2 / 3 };
    let failed = import::run_stream(&server.state, &options, cut, &mut ()).await;
    assert!(failed.is_err(), "the cut is reported");
    let first: u64 = server.get("/v1/audit/verify", ADMIN_KEY, 200).await["events"].as_u64().expect("events");
    assert!((1_000..10_000).contains(&first), "some batches committed: {first}");
    assert_eq!(first % 1_000, 0, "whole batches committed: {first}");
    // Running the whole input again imports the rest, each line once.
    let report = import(&server, "?source=cut", &text).await;
    assert_eq!(
        report["imported"].as_u64().expect("n") + report["skipped"].as_u64().expect("n"),
        10_000,
        "{report}"
    );
    assert_eq!(report["skipped"].as_u64(), Some(first), "{report}");
    let audit = server.get("/v1/audit/verify", ADMIN_KEY, 200).await;
    assert_eq!((audit["ok"].as_bool(), audit["events"].as_u64()), (Some(true), Some(10_000)), "{audit}");
    assert_eq!(history(&server, "s7").await.len(), 10);
    server.stop().await;
}

/// Every answer the server gives for the subjects, over every purpose and channel of the catalogue.
async fn answers(
    server: &TestServer,
    subjects: &[&str],
) -> Vec<(String, String, Option<String>, bool, String)> {
    let catalog = server.get("/v1/catalog", ADMIN_KEY, 200).await;
    let mut out = Vec::new();
    for subject in subjects {
        for p in catalog["document"]["purposes"].as_array().expect("purposes") {
            let purpose = str_of(&p["key"]);
            let mut channels = vec![None];
            channels
                .extend(p["channels"].as_array().into_iter().flatten().map(|c| Some(str_of(c).to_owned())));
            for ch in channels {
                let (allowed, reason) = answer(server, subject, purpose, ch.as_deref()).await;
                out.push(((*subject).to_owned(), purpose.to_owned(), ch, allowed, reason));
            }
        }
    }
    out
}

async fn export_then_import_gives_the_same_answers(backend: Backend) {
    let embedded = matches!(backend, Backend::Embedded);
    let source = TestServer::start_on(backend).await;
    source.record("ana", &crate::utils::grant("marketing.direct", &["email", "sms"])).await;
    source
        .record(
            "ana",
            &json!({"changes": [{"purpose": "marketing.direct", "action": "withdraw", "channels": ["sms"]}]}),
        )
        .await;
    source.record("bo", &crate::utils::grant("analytics", &[])).await;
    // An old id linked into an account: its events come out under the survivor's id.
    source.record("jo", &withdraw("analytics")).await;
    source.record("ivy", &crate::utils::grant("marketing.direct", &["email"])).await;
    source.post("/v1/subjects/ivy/links", ADMIN_KEY, &json!({"from": "jo"}), 200).await;
    let imported = jsonl(&[
        json!({"source_id": "o1", "subject": "cy", "purpose": "marketing.direct", "action": "grant", "channels": ["email"],
               "occurred_at": "2023-01-01T00:00:00Z", "notice": {"key": "marketing.direct", "text": "An older text, not the catalogue's."},
               "evidence": {"receipt": "R-1", "ip": "198.51.100.4"},
               "identifiers": [{"type": "email", "value": "cy@example.com"}]}),
        line("o2", "bo", "analytics", "withdraw", "2020-01-01T00:00:00Z"),
        line("o3", "di", "marketing", "deny", "2023-01-01T00:00:00Z"),
        // A place goes with a change, or alone: Californians answer `not_opted_out` where others do not.
        json!({"source_id": "o4", "subject": "fay", "purpose": "analytics", "action": "withdraw",
               "occurred_at": "2023-01-01T00:00:00Z", "jurisdiction": "US-CA"}),
        json!({"source_id": "o5", "subject": "gil", "action": "locate", "occurred_at": "2023-01-01T00:00:00Z",
               "jurisdiction": "US-CA"}),
        // A German text keeps its language through the round trip.
        json!({"source_id": "o6", "subject": "hal", "purpose": "analytics", "action": "grant",
               "occurred_at": "2023-01-01T00:00:00Z",
               "notice": {"key": "analytics", "text": "Wir messen, wie Sie die App nutzen.", "language": "de"}}),
        // A child stays a child: an age stated on a day goes with the subject.
        json!({"source_id": "o7", "subject": "kim", "purpose": "analytics", "action": "grant",
               "occurred_at": "2024-01-01T00:00:00Z", "notice": {"key": "analytics"},
               "age": {"age_band": "13-15", "stated_on": "2024-01-01"}}),
    ]);
    assert_eq!(import(&source, "?source=ot", &imported).await["imported"].as_u64(), Some(7));
    source.put("/v1/subjects/eve/jurisdiction", ADMIN_KEY, &json!({"jurisdiction": "US-CA"}), 200).await;
    source.put("/v1/subjects/hal/age", ADMIN_KEY, &json!({"birth_date": "2014-05-01"}), 200).await;
    let subjects = ["ana", "bo", "cy", "di", "eve", "fay", "gil", "hal", "ivy", "kim", "nobody"];
    let expected = answers(&source, &subjects).await;
    let ages = [
        source.get("/v1/subjects/hal/age", ADMIN_KEY, 200).await,
        source.get("/v1/subjects/kim/age", ADMIN_KEY, 200).await,
    ];
    assert_eq!(ages[1]["child"], true, "{}", ages[1]);
    let cy_evidence = json!({"receipt": "R-1", "ip": "198.51.100.4"});

    for (history, format, content_type) in
        [(false, "jsonl", "application/x-ndjson"), (true, "csv", "text/csv")]
    {
        let path = format!(
            "/v1/export/consents?history={history}&format={format}&identifiers=true&evidence=true&ages=true"
        );
        let reply = source.send(Method::GET, &path, ADMIN_KEY, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.content_type().starts_with(content_type));
        // A fresh store: on PostgreSQL a second database.
        let target_backend = if embedded {
            Backend::Embedded
        } else {
            match consentry_store::testing::TestDatabase::create().await {
                Some(db) => Backend::Postgres(db),
                None => return,
            }
        };
        let target = TestServer::start_in(Storage::new(target_backend), |_| {}).await;
        let report = target
            .raw(
                Method::POST,
                "/v1/import?source=consentry",
                ADMIN_KEY,
                content_type,
                reply.text.clone(),
                200,
            )
            .await;
        assert_eq!(report["failed"].as_u64(), Some(0), "{report}");
        assert_eq!(answers(&target, &subjects).await, expected, "history={history}");
        for (subject, age) in ["hal", "kim"].into_iter().zip(&ages) {
            let moved = target.get(&format!("/v1/subjects/{subject}/age"), ADMIN_KEY, 200).await;
            assert_eq!(&moved, age, "{subject}'s age, history={history}");
        }
        let ids = target.get("/v1/subjects/cy/identifiers", ADMIN_KEY, 200).await;
        assert_eq!(ids["identifiers"][0]["value"], "cy@example.com", "{ids}");
        // The evidence came along, under the hash the event carries.
        let cy = target.get("/v1/subjects/cy/consents/history", ADMIN_KEY, 200).await;
        let with = cy["events"].as_array().expect("events").iter().find(|e| e["evidence_stored"] == true);
        let with = with.unwrap_or_else(|| panic!("cy's evidence, history={history}: {cy}"));
        let path = format!("/v1/subjects/cy/consents/history/{}/evidence", str_of(&with["id"]));
        let read = target.get(&path, ADMIN_KEY, 200).await;
        assert_eq!((&read["evidence"], &read["sha256"]), (&cy_evidence, &with["evidence"]));
        // The old id is no second person: its events are the survivor's.
        let jo = target.get("/v1/subjects/jo/consents/history", ADMIN_KEY, 200).await;
        assert_eq!(jo["events"].as_array().map(Vec::len), Some(0), "{jo}");
        for subject in ["eve", "fay", "gil"] {
            let place = target.get(&format!("/v1/subjects/{subject}/jurisdiction"), ADMIN_KEY, 200).await;
            assert_eq!(place["jurisdiction"], "US-CA", "{subject}: {place}");
        }
        let hal = target.get("/v1/subjects/hal/consents", ADMIN_KEY, 200).await;
        let version = hal["statements"][0]["notice_version"].as_u64().expect("a version");
        let notice = target.state.store.notice_version("analytics", version as u32).await.expect("read");
        let notice = notice.expect("the version");
        assert_eq!(
            (notice.language.as_str(), notice.text.as_str()),
            ("de", "Wir messen, wie Sie die App nutzen.")
        );
        // The imported text kept its own notice version; importing the export again adds nothing.
        let again = target
            .raw(Method::POST, "/v1/import?source=consentry", ADMIN_KEY, content_type, reply.text, 200)
            .await;
        assert_eq!(again["imported"].as_u64(), Some(0), "{again}");
        target.stop().await;
    }
    source.stop().await;
}

/// An imported withdrawal deletes the records held under the withdrawn consent, as a live one does (the
/// import asks once per batch which subjects hold records); a subject the file leaves alone keeps theirs.
async fn an_imported_withdrawal_deletes_held_records(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let grant = json!({"notice": "analytics", "collection_point": "mobile-app",
                       "changes": [{"purpose": "analytics", "action": "grant"}]});
    for subject in ["ann", "bob"] {
        s.post(&format!("/v1/subjects/{subject}/consents"), ADMIN_KEY, &grant, 201).await;
        let record = json!({"subject": subject, "category": "user.device.telemetry", "purpose": "analytics",
                            "content_type": "text/plain; charset=utf-8", "data": "eA=="});
        s.post("/v1/records", ADMIN_KEY, &record, 201).await;
    }
    let now = consentry_core::Timestamp::now().to_string();
    let lines =
        [line("w1", "ann", "analytics", "withdraw", &now), line("w2", "cy", "analytics", "withdraw", &now)];
    let report = import(&s, "?source=wd", &jsonl(&lines)).await;
    assert_eq!(report["imported"].as_u64(), Some(2), "{report}");
    for (subject, left) in [("ann", 0), ("bob", 1)] {
        let listing = s.get(&format!("/v1/subjects/{subject}/records"), ADMIN_KEY, 200).await;
        assert_eq!(listing["records"].as_array().map(Vec::len), Some(left), "{subject}: {listing}");
    }
    s.stop().await;
}

both_backends!(
    an_imported_withdrawal_deletes_held_records,
    import_is_idempotent_and_ordered,
    strict_imports_all_or_nothing,
    an_interrupted_import_resumes,
    export_then_import_gives_the_same_answers,
    identifiers_need_their_own_scope,
    ages_need_consent_write,
    evidence_and_ages_need_consent_read,
    a_subject_over_several_pages_gets_its_age_once,
    a_statement_replaced_during_an_export_is_not_left_out
);
