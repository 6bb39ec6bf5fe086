//! The preference centre in German: no English word of the catalogue on the page, and changes recorded
//! under the notice version in the language the page showed.

use consentry_core::catalog::CatalogDocument;
use reqwest::header::ACCEPT_LANGUAGE;
use serde_json::{Value, json};

use super::{Visitor, csrf_of, history, token_for};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of};

/// Every text of the default catalogue in its own language (English) that is not also German: not
/// repeated by its translation (a brand's name) nor a word of the German texts ("Post").
pub fn english_catalogue_texts() -> Vec<String> {
    let doc = CatalogDocument::default_catalog();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut add = |own: &str, german: Option<&String>| {
        if let Some(g) = german {
            pairs.push((own.to_owned(), g.clone()));
        }
    };
    macro_rules! named {
        ($list:expr) => {
            for e in &$list {
                let de = e.translations.get("de");
                add(&e.name, de.and_then(|t| t.name.as_ref()));
                if let Some(d) = &e.description {
                    add(d, de.and_then(|t| t.description.as_ref()));
                }
            }
        };
    }
    named!(doc.data_categories);
    named!(doc.purposes);
    named!(doc.channels);
    named!(doc.recipients);
    named!(doc.collection_points);
    for n in &doc.notices {
        let de = n.translations.get("de");
        add(&n.title, de.and_then(|t| t.title.as_ref()));
        add(&n.text, de.and_then(|t| t.text.as_ref()));
    }
    let german: Vec<&String> = pairs.iter().map(|(_, g)| g).collect();
    let texts = pairs.iter().filter(|(own, _)| !german.iter().any(|g| holds(g, own)));
    texts.map(|(own, _)| own.clone()).collect()
}

/// Whether `page` holds `text` as a whole (not inside a longer word: "Post" is not in "Postanschrift").
fn holds(page: &str, text: &str) -> bool {
    page.match_indices(text).any(|(at, _)| {
        let before = page[..at].chars().next_back();
        let after = page[at + text.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The texts of `texts` that `page` shows, raw or as HTML escapes them.
pub fn shown<'t>(page: &str, texts: &'t [String]) -> Vec<&'t str> {
    let escaped =
        |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    texts.iter().filter(|t| holds(page, t) || holds(page, &escaped(t))).map(String::as_str).collect()
}

/// The current version of notice `key` in `language`, from the API's catalogue.
async fn notice_version(server: &TestServer, key: &str, language: &str) -> u64 {
    let catalog = server.get("/v1/catalog", ADMIN_KEY, 200).await;
    let notices = catalog["notices"].as_array().expect("notices");
    let found = notices.iter().find(|n| n["key"] == key && n["language"] == language);
    found.and_then(|n| n["version"].as_u64()).unwrap_or_else(|| panic!("{key} in {language}: {catalog}"))
}

async fn the_german_page_shows_no_english_catalogue_text(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    // Something in every section that names the catalogue: history, receipts, checks, stored data.
    server.record("alice", &grant("marketing.direct", &["email", "postal"])).await;
    server
        .record(
            "alice",
            &json!({"notice": "voice_history", "changes": [{"purpose": "voice_history", "action": "grant"}]}),
        )
        .await;
    server
        .post(
            "/v1/records",
            ADMIN_KEY,
            &json!({"subject": "alice", "category": "user.biometric.voice", "purpose": "voice_history",
                    "content_type": "audio/ogg", "data": "T2dnUw=="}),
            201,
        )
        .await;
    server.post("/v1/check", ADMIN_KEY, &json!({"subject": "alice", "purpose": "voice_history"}), 200).await;
    let english = english_catalogue_texts();
    assert!(english.len() > 60, "{} texts", english.len());

    let mut v = Visitor::new(&server);
    v.extra.push((ACCEPT_LANGUAGE.as_str(), "de"));
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(page.text.starts_with("<!doctype html><html lang=\"de\">"));
    for german in
        ["Neuigkeiten und Angebote", "Briefpost", "Ihre Sprachaufnahmen aufbewahren", "Sprachaufnahmen"]
    {
        assert!(page.text.contains(german), "{german}");
    }
    assert_eq!(shown(&page.text, &english), Vec::<&str>::new(), "English on the German page");

    // Saving records the German notice version the page showed.
    let de = notice_version(&server, "analytics", "de").await;
    let en = notice_version(&server, "analytics", "en").await;
    assert_ne!(de, en);
    assert!(
        page.text.contains(&format!("name=\"v\" value=\"analytics|{de}\"")),
        "the German version is shown"
    );
    let csrf = csrf_of(&page.text);
    let saved = v
        .post_form(
            "/preferences",
            &[("csrf", &csrf), ("p", "analytics"), ("v", &format!("analytics|{de}")), ("p", "voice_history")],
        )
        .await;
    assert_eq!(shown(&saved.text, &english), Vec::<&str>::new(), "English after saving");
    let events: Vec<Value> = history(&server, "alice").await;
    let granted = events.iter().find(|e| e["purpose"] == "analytics").expect("analytics granted");
    let recorded = (str_of(&granted["action"]), granted["notice_version"].as_u64());
    assert_eq!(recorded, ("grant", Some(de)), "{granted}");

    // The copy of my data: its guide is in German too, with no English catalogue text.
    let filed = v.post_form("/preferences/requests/access", &[("csrf", &csrf)]).await;
    assert_eq!(filed.status, 303);
    let page = v.get("/preferences?done=copy-requested").await;
    let at = page.text.find("/preferences/requests/req_").expect("an export link");
    let link = page.text[at..].split('"').next().expect("the link").to_owned();
    let zip = v.bytes(&link).await;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a ZIP");
    let mut guide = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").expect("index.html"), &mut guide)
        .expect("UTF-8");
    assert!(guide.contains("<html lang=\"de\">") && guide.contains("Ihre Auswahl"), "{guide}");
    assert!(guide.contains("Nutzungsanalyse") && guide.contains("Sprachaufnahmen"), "{guide}");
    assert_eq!(shown(&guide, &english), Vec::<&str>::new(), "English in the German guide");

    // The English page shows the English texts and versions.
    let page = v.get("/preferences?lang=en").await;
    assert!(
        page.text.contains("News and offers") && page.text.contains(&format!("value=\"analytics|{en}\""))
    );
}

both_backends!(the_german_page_shows_no_english_catalogue_text);
