//! The catalogue: applying YAML and JSON, listing every problem of a wrong one, notice versions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use consentry_core::catalog::DEFAULT_CATALOG_YAML;
use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, Backend, TestServer, assert_code, both_backends, grant, str_of};

both_backends!(
    yaml_and_json_apply_as_new_versions,
    a_wrong_catalogue_lists_every_problem_and_changes_nothing,
    changes_name_an_older_notice_version_or_fail_on_an_unknown_one,
    reading_consents_while_the_catalogue_changes_never_fails,
    deep_documents_are_refused_quickly,
);

fn index_of(list: &Value, key: &str) -> usize {
    list.as_array().expect("list").iter().position(|x| x["key"] == key).unwrap_or_else(|| panic!("{key}"))
}

fn notice<'a>(catalog: &'a Value, key: &str) -> &'a Value {
    &catalog["notices"][index_of(&catalog["notices"], key)]
}

/// The current version of notice `key` in `language`.
fn notice_in(catalog: &Value, key: &str, language: &str) -> Value {
    let notices = catalog["notices"].as_array().expect("notices");
    let found = notices.iter().find(|n| n["key"] == key && n["language"] == language);
    found.unwrap_or_else(|| panic!("{key} in {language}")).clone()
}

fn paths(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().expect("errors").iter().map(|e| str_of(&e["path"])).collect()
}

async fn yaml_and_json_apply_as_new_versions(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let v1 = s.get("/v1/catalog", ADMIN_KEY, 200).await;

    let v2 =
        s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", DEFAULT_CATALOG_YAML, 200).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["notices"], v1["notices"], "identical notice texts keep their versions");
    assert_eq!(s.get("/v1/catalog", ADMIN_KEY, 200).await["version"], 2);

    let mut doc = v2["document"].clone();
    let i = index_of(&doc["notices"], "marketing.direct");
    doc["notices"][i]["text"] = json!("News and offers, reworded.");
    let v3 = s.put("/v1/catalog", ADMIN_KEY, &doc, 200).await;
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["document"], doc);
    let old = notice(&v2, "marketing.direct");
    let new = notice(&v3, "marketing.direct");
    // Versions 1 and 2 are the English and German texts; the changed English one is the next.
    assert_eq!(new["version"], 3, "changed text is a new notice version");
    let german = |v: &Value| notice_in(v, "marketing.direct", "de");
    assert_eq!(german(&v3), german(&v2), "the German text is unchanged, and so is its version");
    assert_ne!(new["sha256"], old["sha256"]);
    assert_eq!(notice(&v3, "analytics"), notice(&v2, "analytics"), "other notices keep their version");

    // The same JSON again changes no notice version.
    let v4 = s.put("/v1/catalog", ADMIN_KEY, &doc, 200).await;
    assert_eq!(v4["version"], 4);
    assert_eq!(v4["notices"], v3["notices"]);

    // A YAML change that adds a channel is usable at once.
    let yaml = DEFAULT_CATALOG_YAML
        .replace("channels:\n  - key: email\n", "channels:\n  - key: fax\n    name: Fax\n  - key: email\n");
    assert_ne!(yaml, DEFAULT_CATALOG_YAML);
    let v5 =
        s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/x-yaml; charset=utf-8", yaml, 200).await;
    assert_eq!(v5["version"], 5);
    let c = s
        .post("/v1/check", ADMIN_KEY, &json!({"subject": "s", "purpose": "service", "channel": "fax"}), 200)
        .await;
    assert_eq!(c["allowed"], false, "fax lies outside the service purpose: {c}");
}

async fn a_wrong_catalogue_lists_every_problem_and_changes_nothing(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let before = s.get("/v1/catalog", ADMIN_KEY, 200).await;
    let mut doc = before["document"].clone();

    let cats = doc["data_categories"].as_array_mut().expect("categories");
    cats.push(json!({"key": "orphan.child", "name": "No parent"}));
    let orphan = format!("data_categories[{}].key", cats.len() - 1);
    let channels = doc["channels"].as_array_mut().expect("channels");
    channels.push(json!({"key": "email", "name": "E-mail again"}));
    let duplicate = format!("channels[{}].key", channels.len() - 1);
    channels.push(json!({"key": "Bad Key", "name": "Bad"}));
    let bad_syntax = format!("channels[{}].key", channels.len() - 1);
    let direct = index_of(&doc["purposes"], "marketing.direct");
    let cats = doc["purposes"][direct]["categories"].as_array_mut().expect("categories");
    cats.push(json!("user.nope"));
    let unknown_ref = format!("purposes[{direct}].categories[{}]", cats.len() - 1);
    let analytics = index_of(&doc["purposes"], "analytics");
    doc["purposes"][analytics].as_object_mut().expect("purpose").remove("notice");
    let no_notice = format!("purposes[{analytics}].notice");

    let p = s.put("/v1/catalog", ADMIN_KEY, &doc, 422).await;
    assert_code(&p, "invalid_catalog");
    let got = paths(&p);
    for want in [&orphan, &duplicate, &bad_syntax, &unknown_ref, &no_notice] {
        assert!(got.contains(&want.as_str()), "missing problem at {want}; got {got:?}");
    }
    for e in p["errors"].as_array().expect("errors") {
        assert!(!str_of(&e["message"]).is_empty());
    }

    let yaml = "data_categories:\n  - key: user.email\n    name: E-mail\npurposes:\n  - key: news\n    name: News\n    basis: consent\n    channels: [pigeon]\n";
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", yaml, 422).await;
    assert_code(&p, "invalid_catalog");
    let got = paths(&p);
    for want in ["data_categories[0].key", "purposes[0].channels[0]", "purposes[0].notice"] {
        assert!(got.contains(&want), "missing problem at {want}; got {got:?}");
    }

    // Unreadable documents (unknown field, broken YAML) are refused the same way.
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", "purposez: []\n", 422).await;
    assert_code(&p, "invalid_catalog");
    let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", "purposes: [\n", 422).await;
    assert_code(&p, "invalid_catalog");

    let after = s.get("/v1/catalog", ADMIN_KEY, 200).await;
    assert_eq!(after["version"], 1, "a rejected catalogue changes nothing");
    assert_eq!(after["document"], before["document"]);
    let c = s.check("someone", "analytics", None).await;
    assert_eq!(c["reason"], "no_consent", "the engine still uses the old catalogue: {c}");
}

/// A document nested 100,000 levels deep (libyaml takes quadratic time on one) is refused before it is
/// parsed, as YAML and as JSON, in well under the time a parse would take.
async fn deep_documents_are_refused_quickly(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let levels = 100_000;
    let flow = format!("purposes: {}", "[".repeat(levels));
    let block = format!("purposes:\n  {}x\n", "- ".repeat(levels));
    let json = format!("{{\"purposes\": {}}}", "[".repeat(levels));
    let cases = [("application/yaml", flow), ("application/yaml", block), ("application/json", json)];
    for (content_type, body) in cases {
        let started = std::time::Instant::now();
        let p = s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, content_type, body, 422).await;
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "{content_type} took {took:?}");
        assert_code(&p, "invalid_catalog");
        assert!(p.to_string().contains("nests deeper than 32 levels"), "a clear reason: {p}");
    }
    // A document within the bound still goes through the ordinary reading.
    let p =
        s.raw(Method::PUT, "/v1/catalog", ADMIN_KEY, "application/yaml", "purposes: [[[1]]]\n", 422).await;
    assert!(!p.to_string().contains("nests deeper"), "{p}");
    assert_eq!(s.get("/v1/catalog", ADMIN_KEY, 200).await["version"], 1, "nothing changed");
}

async fn changes_name_an_older_notice_version_or_fail_on_an_unknown_one(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let v1 = s.get("/v1/catalog", ADMIN_KEY, 200).await;
    let mut doc = v1["document"].clone();
    let i = index_of(&doc["notices"], "marketing.direct");
    doc["notices"][i]["text"] = json!("A second wording of the news and offers notice.");
    let v2 = s.put("/v1/catalog", ADMIN_KEY, &doc, 200).await;
    let old = notice(&v1, "marketing.direct");
    let new = notice(&v2, "marketing.direct");
    assert_eq!((old["version"].as_u64(), new["version"].as_u64()), (Some(1), Some(3)));
    let german = notice_in(&v2, "marketing.direct", "de");
    assert_eq!(german["version"], 2, "the German text keeps its version");

    let current = s.record("nora", &grant("marketing.direct", &["email"])).await;
    assert_eq!(current[0]["notice_version"], 3, "default: the current version in the catalogue's language");
    assert_eq!(current[0]["notice_hash"], new["sha256"]);

    let mut body = grant("marketing.direct", &["sms"]);
    body["notice_version"] = json!(1);
    let older = s.record("nora", &body).await;
    assert_eq!(older[0]["notice_version"], 1);
    assert_eq!(older[0]["notice_hash"], old["sha256"], "the hash of the version shown");
    assert_eq!(s.check("nora", "marketing.direct", Some("sms")).await["allowed"], true);

    body["notice_version"] = json!(2);
    let in_german = s.record("nora", &body).await;
    assert_eq!(in_german[0]["notice_version"], 2);
    assert_eq!(in_german[0]["notice_hash"], german["sha256"], "the German text's hash");

    body["notice_version"] = json!(99);
    let p = s.post("/v1/subjects/nora/consents", ADMIN_KEY, &body, 422).await;
    assert_code(&p, "unknown_notice");
    let mut body = grant("marketing.direct", &["sms"]);
    body["notice"] = json!("no.such.notice");
    let p = s.post("/v1/subjects/nora/consents", ADMIN_KEY, &body, 422).await;
    assert_code(&p, "unknown_notice");
    // A consent purpose must be granted under its own notice.
    body["notice"] = json!("analytics");
    let p = s.post("/v1/subjects/nora/consents", ADMIN_KEY, &body, 422).await;
    assert_code(&p, "notice_mismatch");

    let h = s.get("/v1/subjects/nora/consents/history", ADMIN_KEY, 200).await;
    assert_eq!(h["events"].as_array().expect("events").len(), 3, "refused changes record nothing");
}

/// Reading a subject's consents while catalogues that add and remove a purpose are applied must never
/// fail: each answer rests on one catalogue or the other.
async fn reading_consents_while_the_catalogue_changes_never_fails(backend: Backend) {
    let s = Arc::new(TestServer::start_on(backend).await);
    s.record("reader", &grant("marketing.direct", &["email"])).await;
    let base = s.get("/v1/catalog", ADMIN_KEY, 200).await["document"].clone();
    let mut extra = base.clone();
    extra["purposes"].as_array_mut().expect("purposes").push(
        json!({"key": "support", "name": "Support", "basis": "contract", "channels": ["email", "sms"]}),
    );
    extra["channels"].as_array_mut().expect("channels").push(json!({"key": "fax", "name": "Fax"}));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (s, done) = (Arc::clone(&s), Arc::clone(&done));
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                // `send` fails the test on any 5xx.
                let reply = s.send(Method::GET, "/v1/subjects/reader/consents", ADMIN_KEY, None).await;
                assert_eq!(reply.status, 200, "{}", reply.text);
                reads += 1;
            }
            reads
        }));
    }
    for i in 0..200 {
        s.put("/v1/catalog", ADMIN_KEY, if i % 2 == 0 { &extra } else { &base }, 200).await;
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.expect("reader task") > 0);
    }
}
