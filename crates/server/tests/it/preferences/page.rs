//! The preference centre's page as a person moves through it: a navigation that reaches every section, the
//! language switch on every page, objecting where the page says one may, receipts named by what they prove.

use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use serde_json::json;

use super::{Visitor, csrf_of, decision, token_for};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of};

/// The ids of the page's sections (`<h2 id="…">`) and the targets of its section navigation.
fn sections_and_links(page: &str) -> (Vec<String>, Vec<String>) {
    let ids = page.split("<h2 id=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_owned);
    let nav_at = page.find("<nav class=\"sections\"").expect("the section navigation");
    let nav = &page[nav_at..nav_at + page[nav_at..].find("</nav>").expect("its end")];
    let links = nav.split("href=\"#").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_owned);
    (ids.collect(), links.collect())
}

async fn the_navigation_reaches_every_section_and_every_page_switches_language(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    let (sections, links) = sections_and_links(&page.text);
    for id in
        ["choices", "others", "history", "receipts", "access", "devices", "data", "requests", "sign-out"]
    {
        assert!(sections.contains(&id.to_owned()), "section {id}: {sections:?}");
    }
    assert_eq!(links, sections, "one link to each section, in the page's order");

    // The confirmation before erasing has the switch too, and it keeps the choice.
    let erase = v.get("/preferences/erase").await;
    assert!(erase.text.contains("href=\"/preferences/erase?lang=de\""), "{}", erase.text);
    let german = v.get("/preferences/erase?lang=de").await;
    assert!(german.text.starts_with("<!doctype html><html lang=\"de\">"));
    assert!(german.header(SET_COOKIE).contains("consentry_lang=de"), "the choice is kept");
    let page = v.get("/preferences").await;
    assert!(page.text.starts_with("<!doctype html><html lang=\"de\">"), "kept on the next page");
    // A page for a request that cannot go on has it as well.
    let mut stranger = Visitor::new(&server);
    let stop = stranger.get("/preferences").await;
    assert_eq!(stop.status, 401);
    assert!(stop.text.contains("href=\"/preferences?lang=de\""), "{}", stop.text);
}

async fn one_can_object_where_the_page_says_so(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    // "Fixing and improving our products" is based on legitimate interest: the page says one may object,
    // and offers it; "Providing our services" (a contract) does not.
    assert!(page.text.contains("Our legitimate interest (you may object)"));
    assert_eq!(page.text.matches("action=\"/preferences/object\"").count(), 1, "{}", page.text);
    assert!(page.text.contains("value=\"service.improvement\""));
    assert!(page.text.contains("aria-label=\"Object to Fixing and improving our products\""));
    let csrf = csrf_of(&page.text);

    assert_eq!(v.post_form("/preferences/object", &[("purpose", "service.improvement")]).await.status, 403);
    let refused = v.post_form("/preferences/object", &[("csrf", &csrf), ("purpose", "marketing")]).await;
    assert_eq!(refused.status, 404, "consent is withdrawn, not objected to");
    let page =
        v.post_form("/preferences/object", &[("csrf", &csrf), ("purpose", "service.improvement")]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Objected</strong>: Fixing and improving our products"), "{}", page.text);
    assert!(!page.text.contains("action=\"/preferences/object\""), "objected: nothing more to object to");
    let (allowed, reason) = decision(&server, "alice", "service.improvement", None).await;
    assert_eq!((allowed, reason.as_str()), (false, "objected"));
    // Its receipt is named by what it proves.
    assert!(page.text.contains("Receipt: Objected: Fixing and improving our products"), "{}", page.text);
}

async fn receipts_are_named_by_what_they_prove(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    server.record("alice", &grant("marketing.direct", &["email"])).await;
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    let at = page.text.find("<ul class=\"receipts\">").expect("the receipts");
    let receipts = &page.text[at..at + page.text[at..].find("</ul>").expect("their end")];
    assert!(receipts.contains("<p class=\"strong\">Agreed: News and offers (E-mail)</p>"), "{receipts}");
    assert!(
        receipts
            .contains("Download<span class=\"vh\"> the receipt for Agreed: News and offers (E-mail)</span>"),
        "the link's name says what it downloads: {receipts}"
    );
    v.extra.push(("accept-language", "de"));
    let page = v.get("/preferences?lang=de").await;
    assert!(page.text.contains("Zugestimmt: Neuigkeiten und Angebote (E-Mail)"), "{}", page.text);
}

/// The voice assistant's recordings: played on the page from the person's own download route, and deleted
/// when they withdraw consent to keeping them.
async fn voice_recordings_play_and_go_with_the_consent(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let body =
        json!({"notice": "voice_history", "changes": [{"purpose": "voice_history", "action": "grant"}]});
    server.record("alice", &body).await;
    let record = json!({"subject": "alice", "category": "user.biometric.voice", "purpose": "voice_history",
                        "content_type": "audio/ogg", "data": "T2dnUwACAAAA"});
    let stored = server.post("/v1/records", ADMIN_KEY, &record, 201).await;
    let id = str_of(&stored["id"]).to_owned();
    let mut v = Visitor::new(&server);
    let page = v.open_link(&token_for(&server, "alice").await).await;
    assert!(page.text.contains("Keeping your voice recordings") && page.text.contains("Voice recordings"));
    let player = format!("<audio controls=\"\" preload=\"none\" src=\"/preferences/data/{id}\">");
    assert!(page.text.contains(&player), "{}", page.text);
    let played = v.get(&format!("/preferences/data/{id}")).await;
    assert_eq!((played.status, played.header(CONTENT_TYPE)), (200, "audio/ogg"));
    // Unticking the purpose withdraws consent, and its recordings go with it (on_withdraw: delete).
    let csrf = csrf_of(&page.text);
    let page = v.post_form("/preferences", &[("csrf", &csrf)]).await;
    assert!(page.text.contains("Withdrew</strong>: Keeping your voice recordings"), "{}", page.text);
    assert!(!page.text.contains(&player), "the recording is gone from the page");
    assert_eq!(v.get(&format!("/preferences/data/{id}")).await.status, 404);
}

both_backends!(
    voice_recordings_play_and_go_with_the_consent,
    the_navigation_reaches_every_section_and_every_page_switches_language,
    one_can_object_where_the_page_says_so,
    receipts_are_named_by_what_they_prove,
);
