//! The catalogue page: the current catalogue as tables, a document uploaded and compared with it (entries
//! added and changed, the notice that gets a new version and how many people's consents rest on the
//! version it replaces), applied only from the comparison (its catalogue version and document hash sent
//! back: a changed document or a catalogue that moved on is refused), an invalid document's problems
//! listed, and a `console:read` session refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::catalog::CatalogDocument;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::{server_with_keys, sign_in};
use crate::preferences::{Page, Visitor, csrf_of};
use crate::utils::{ADMIN_KEY, Backend, both_backends, grant, withdraw};

/// The default catalogue with a channel added, the analytics purpose and the first jurisdiction renamed and
/// the analytics notice's English text changed, as JSON.
pub fn changed_catalogue() -> Vec<u8> {
    let mut doc = serde_json::to_value(CatalogDocument::default_catalog()).expect("the catalogue as JSON");
    doc["channels"].as_array_mut().expect("channels").push(json!({"key": "fax", "name": "Fax"}));
    for p in doc["purposes"].as_array_mut().expect("purposes") {
        if p["key"] == "analytics" {
            p["name"] = json!("Usage statistics");
        }
    }
    doc["jurisdictions"][0]["name"] = json!("Renamed place");
    for n in doc["notices"].as_array_mut().expect("notices") {
        if n["key"] == "analytics" {
            let text = format!("{} We now also count page views.", n["text"].as_str().expect("text"));
            n["text"] = json!(text);
        }
    }
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

/// The value of the hidden field `name` of the page's apply form.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.text.find(&marker).unwrap_or_else(|| panic!("no {name}: {}", page.text)) + marker.len();
    let raw = page.text[at..].split('"').next().expect("value");
    raw.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Posts a `multipart/form-data` form as `v`: (name, file name for a file, value).
pub async fn post_multipart(v: &mut Visitor<'_>, path: &str, fields: &[(&str, Option<&str>, &[u8])]) -> Page {
    const BOUNDARY: &str = "consentry-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(file) = file {
            body.extend_from_slice(
                format!("; filename=\"{file}\"\r\nContent-Type: application/octet-stream").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let request = v
        .client
        .post(format!("{}{path}", v.server.base))
        .header(CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body);
    v.send(request, &format!("POST {path}")).await
}

fn refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The version of notice `key` in `language` now.
async fn notice_version(server: &crate::utils::TestServer, key: &str, language: &str) -> u64 {
    let catalog = server.get("/v1/catalog", ADMIN_KEY, 200).await;
    catalog["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .find(|n| n["key"] == key && n["language"] == language)
        .and_then(|n| n["version"].as_u64())
        .expect("the notice's version")
}

async fn a_catalogue_is_compared_before_it_is_applied(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    for who in ["alice", "bob", "carol"] {
        server.record(who, &grant("analytics", &[])).await;
    }
    server.record("carol", &withdraw("analytics")).await;
    server.record("dave", &grant("marketing.direct", &[])).await;
    let analytics = notice_version(&server, "analytics", "en").await;
    let base = server.get("/v1/catalog", ADMIN_KEY, 200).await["version"].as_u64().expect("version");

    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;
    let page = officer.get("/console/catalogue").await;
    assert_eq!(page.status, 200, "{}", page.text);
    for shown in ["id=\"category-tree\"", "user.contact.email", "id=\"purpose-table\"", "id=\"notice-table\""]
    {
        assert!(page.text.contains(shown), "{shown}: {}", page.text);
    }
    assert!(page.text.contains("enctype=\"multipart/form-data\""), "an upload form: {}", page.text);
    let csrf = csrf_of(&page.text);

    let document = changed_catalogue();
    let diff = post_multipart(
        &mut officer,
        "/console/catalogue/diff",
        &[("csrf", None, csrf.as_bytes()), ("document", Some("catalogue.json"), &document)],
    )
    .await;
    assert_eq!(diff.status, 200, "{}", diff.text);
    let changes: Vec<&str> = diff.text.split("<tr class=\"diff-").skip(1).collect();
    assert!(changes.iter().any(|r| r.starts_with("added") && r.contains("<code>fax</code>")), "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|r| r.starts_with("changed") && r.contains("Purposes") && r.contains("<code>name</code>")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|r| r.starts_with("changed") && r.contains("<code>text</code>")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|r| r.starts_with("changed")
            && r.contains("Jurisdictions")
            && r.contains("<code>name</code>")),
        "{changes:?}"
    );
    assert_eq!(changes.len(), 4, "nothing else changes: {changes:?}");
    let people = format!("2 people agreed to version {analytics} of analytics.");
    assert!(diff.text.contains(&people), "alice and bob, not carol who withdrew: {}", diff.text);
    let notices = diff.text.split("id=\"diff-notices\"").nth(1).and_then(|t| t.split("</ul>").next());
    let notices = notices.expect("the notices that get a new version");
    assert!(!notices.contains("marketing.direct"), "its notice keeps its version: {notices}");
    assert_eq!(hidden(&diff, "base"), base.to_string());

    // A console:read session can neither compare nor apply.
    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let viewer_csrf = csrf_of(&viewer.get("/console/catalogue").await.text);
    let refused = post_multipart(
        &mut viewer,
        "/console/catalogue/diff",
        &[("csrf", None, viewer_csrf.as_bytes()), ("document", Some("c.json"), &document)],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let fields = |csrf: &str, document: &str| -> Vec<(String, String)> {
        vec![
            ("csrf".into(), csrf.to_owned()),
            ("base".into(), hidden(&diff, "base")),
            ("sha256".into(), hidden(&diff, "sha256")),
            ("media_type".into(), hidden(&diff, "media_type")),
            ("document".into(), document.to_owned()),
        ]
    };
    let text = hidden(&diff, "document");
    assert_eq!(
        STANDARD.decode(&text).expect("base64"),
        document,
        "the apply form sends the compared document back"
    );
    let viewer_apply = fields(&viewer_csrf, &text);
    assert_eq!(viewer.post_form("/console/catalogue/apply", &refs(&viewer_apply)).await.status, 403);

    // A document other than the one compared is refused.
    let other =
        String::from_utf8(document.clone()).expect("UTF-8").replace("Usage statistics", "Something else");
    let other = STANDARD.encode(other);
    let tampered = fields(&csrf, &other);
    let refused = officer.post_form("/console/catalogue/apply", &refs(&tampered)).await;
    assert_eq!(refused.status, 409, "{}", refused.text);

    let apply = fields(&csrf, &text);
    let applied = officer.post_form("/console/catalogue/apply", &refs(&apply)).await;
    assert_eq!(applied.status, 303, "{}", applied.text);
    assert_eq!(applied.header(reqwest::header::LOCATION), format!("/console/catalogue?done={}", base + 1));
    let catalog: Value = server.get("/v1/catalog", ADMIN_KEY, 200).await;
    assert_eq!(catalog["version"], base + 1);
    assert!(catalog["document"]["channels"].as_array().expect("channels").iter().any(|c| c["key"] == "fax"));
    assert!(notice_version(&server, "analytics", "en").await > analytics, "a new version of the notice");
    let shown = officer.get(&format!("/console/catalogue?done={}", base + 1)).await;
    assert!(shown.text.contains("id=\"applied\""), "{}", shown.text);

    // The same comparison again: the catalogue moved on since.
    let stale = officer.post_form("/console/catalogue/apply", &refs(&apply)).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert_eq!(server.get("/v1/catalog", ADMIN_KEY, 200).await["version"], base + 1);

    // The applied document compared again changes nothing; a broken one lists its problems.
    let same = post_multipart(
        &mut officer,
        "/console/catalogue/diff",
        &[("csrf", None, csrf.as_bytes()), ("document", Some("catalogue.json"), &document)],
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert!(same.text.contains("id=\"diff-none\"") && !same.text.contains("id=\"apply\""), "{}", same.text);
    let broken = b"purposes:\n  - key: p\n    name: P\n    basis: consent\n    categories: [nowhere]\n";
    let invalid = post_multipart(
        &mut officer,
        "/console/catalogue/diff",
        &[("csrf", None, csrf.as_bytes()), ("document", Some("broken.yaml"), broken)],
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    assert!(invalid.text.contains("id=\"catalogue-problems\""), "{}", invalid.text);
    let empty =
        post_multipart(&mut officer, "/console/catalogue/diff", &[("csrf", None, csrf.as_bytes())]).await;
    assert_eq!(empty.status, 400, "no document: {}", empty.text);
    let unreadable = officer.post_form("/console/catalogue/diff", &[("csrf", &csrf)]).await;
    assert_eq!(unreadable.status, 403, "not a multipart form, so no token read: {}", unreadable.text);
    let forged = post_multipart(
        &mut officer,
        "/console/catalogue/diff",
        &[("document", Some("catalogue.json"), &document)],
    )
    .await;
    assert_eq!(forged.status, 403, "no CSRF token: {}", forged.text);
}

both_backends!(a_catalogue_is_compared_before_it_is_applied);
