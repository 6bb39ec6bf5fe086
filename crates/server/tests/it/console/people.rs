//! A person's page in the console: found by subject id and by identifier, where they stand, their history,
//! receipts (each verified), devices, vault records (metadata only), requests and access log; opening it
//! is in their access log with the purpose `console`; a `console:write` session mints a preference-centre
//! link (CSRF checked, refused to `console:read`); an erased person shows only that, an unknown id "not
//! found".

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::LOCATION;
use serde_json::json;

use super::{server_with_keys, sign_in};
use crate::preferences::{Visitor, csrf_of};
use crate::utils::{
    ADMIN_KEY, Backend, TestServer, access_entries, both_backends, entry, grant, str_of, withdraw,
};

/// What the vault holds for alice; it must never appear in the console.
pub const PAYLOAD: &str = "kitchen-temperature-21.5";

/// Alice with consents (two receipts), an e-mail address, a paired device, a vault record and a request;
/// bob erased. Returns alice's receipt ids (newest last), her request's id and her record's.
pub async fn seed_people(server: &TestServer) -> (Vec<String>, String, String) {
    let mut receipts = Vec::new();
    for purpose in ["marketing.direct", "analytics"] {
        let out = server.post("/v1/subjects/alice/consents", ADMIN_KEY, &grant(purpose, &[]), 201).await;
        receipts.push(str_of(&out["receipt"]["id"]).to_owned());
    }
    let email = json!({"type": "email", "value": "Alice@Example.com"});
    server.post("/v1/subjects/alice/identifiers", ADMIN_KEY, &email, 201).await;
    let speaker = json!({"name": "Kitchen speaker", "kind": "speaker",
        "categories": ["user.device.telemetry"], "purposes": ["analytics"]});
    let paired = server.post("/v1/subjects/alice/devices", ADMIN_KEY, &speaker, 201).await;
    // The speaker uses its token once: the console shows when it was last seen.
    let used = server.send(reqwest::Method::GET, "/v1/device/consent", str_of(&paired["token"]), None).await;
    assert_eq!(used.status, 200, "{}", used.text);
    let record = json!({"subject": "alice", "category": "user.device.telemetry", "purpose": "analytics",
        "content_type": "text/plain; charset=utf-8", "data": STANDARD.encode(PAYLOAD)});
    let record = server.post("/v1/records", ADMIN_KEY, &record, 201).await;
    let request =
        server.post("/v1/requests", ADMIN_KEY, &json!({"subject": "alice", "type": "access"}), 201).await;
    server.record("bob", &grant("analytics", &[])).await;
    server.post("/v1/requests", ADMIN_KEY, &json!({"subject": "bob", "type": "erasure"}), 201).await;
    (receipts, str_of(&request["id"]).to_owned(), str_of(&record["id"]).to_owned())
}

async fn a_person_in_the_console(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    let (receipts, request, _) = seed_people(&server).await;
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;

    // The look-up page, linked from the navigation; a subject id leads to the person's page.
    let find = officer.get("/console/people").await;
    assert_eq!(find.status, 200, "{}", find.text);
    assert!(find.text.contains("href=\"/console/people\" aria-current=\"page\">People"), "{}", find.text);
    let opened = officer.get("/console/people?subject=alice").await;
    assert_eq!((opened.status, opened.header(LOCATION)), (303, "/console/people/alice"));

    let page = officer.get("/console/people/alice").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let text = &page.text;
    for seen in [
        "Person alice",
        "News and offers",
        "Usage analytics",
        "analytics v1",
        "Kitchen speaker",
        "user.device.telemetry",
        &format!("{} bytes", PAYLOAD.len()),
        &format!("href=\"/console/requests/{request}\""),
        &format!("/console/people/alice/receipts/{}", receipts[0]),
        &format!("/console/people/alice/receipts/{}", receipts[1]),
        "id=\"mint\"",
    ] {
        assert!(text.contains(seen), "{seen}: {text}");
    }
    assert!(!text.contains(PAYLOAD), "the vault's content is never shown");
    let devices = &text[text.find("id=\"person-devices\"").expect("the devices")..];
    let devices = &devices[..devices.find("</table>").expect("its end")];
    assert!(devices.contains("Last seen") && !devices.contains("not yet"), "seen: {devices}");
    assert!(!text.contains("Alice@Example.com") && !text.contains("alice@example.com"), "nor the e-mail");
    let history = &text[text.find("id=\"person-history\"").expect("the history")..];
    let analytics = history.find("Usage analytics").expect("analytics in the history");
    let news = history.find("News and offers").expect("news in the history");
    assert!(analytics < news, "newest first: {history}");

    // Opening the person is in their access log, under the key's name, for the purpose `console`.
    logged(&server, "alice", &["console: person"]).await;

    // Each receipt is rebuilt and verified; another person's is not found under alice.
    let verified = officer.get(&format!("/console/people/alice/receipts/{}", receipts[1])).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert!(verified.text.contains("The receipt verifies"), "{}", verified.text);
    assert!(verified.text.contains("1 event proven in the signed checkpoint"), "{}", verified.text);
    let carols = server.post("/v1/subjects/carol/consents", ADMIN_KEY, &grant("analytics", &[]), 201).await;
    let carols = str_of(&carols["receipt"]["id"]);
    assert_eq!(officer.get(&format!("/console/people/alice/receipts/{carols}")).await.status, 404);
    assert_eq!(officer.get("/console/people/alice/receipts/rcp_nothing").await.status, 404);

    // By identifier: normalised like the API's look-up, a form with its CSRF token.
    let csrf = csrf_of(&find.text);
    let by_email = officer
        .post_form("/console/people", &[("csrf", &csrf), ("type", "email"), ("value", " ALICE@example.com ")])
        .await;
    assert_eq!(
        (by_email.status, by_email.header(LOCATION)),
        (303, "/console/people/alice"),
        "{}",
        by_email.text
    );
    let nobody = officer
        .post_form("/console/people", &[("csrf", &csrf), ("type", "email"), ("value", "zed@example.com")])
        .await;
    assert_eq!(nobody.status, 404, "{}", nobody.text);
    assert!(nobody.text.contains("Nobody holds that identifier."), "{}", nobody.text);
    let bad =
        officer.post_form("/console/people", &[("csrf", &csrf), ("type", "email"), ("value", "zed")]).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let unknown =
        officer.post_form("/console/people", &[("csrf", &csrf), ("type", "fax"), ("value", "1")]).await;
    assert_eq!(unknown.status, 400, "an unknown type reads as a malformed identifier: {}", unknown.text);
    let forged =
        officer.post_form("/console/people", &[("type", "email"), ("value", "alice@example.com")]).await;
    assert_eq!(forged.status, 403, "a look-up without the CSRF token: {}", forged.text);

    // An erased person shows only that; an id nobody holds is not found.
    let erased = officer.get("/console/people/bob").await;
    assert_eq!(erased.status, 410, "{}", erased.text);
    assert!(erased.text.contains("This person was erased"), "{}", erased.text);
    assert!(!erased.text.contains("Usage analytics"), "nothing of theirs: {}", erased.text);
    let unknown = officer.get("/console/people/nobody-at-all").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.text.contains("Nobody with this subject id is known"), "{}", unknown.text);

    // A console:read session sees the person but cannot mint a link; the officer's form needs its token.
    let mint = "/console/people/alice/link";
    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let seen = viewer.get("/console/people/alice").await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert!(!seen.text.contains("id=\"mint\""), "no form to mint: {}", seen.text);
    let refused = viewer.post_form(mint, &[("csrf", &csrf_of(&seen.text)), ("ttl", "3600")]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("Your key may only look"), "{}", refused.text);
    let forged = officer.post_form(mint, &[("ttl", "3600")]).await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert!(forged.text.contains("This form has expired"), "{}", forged.text);
    assert_eq!(officer.post_form(mint, &[("csrf", &csrf), ("ttl", "5")]).await.status, 400);
    let minted = officer.post_form(mint, &[("csrf", &csrf), ("ttl", "3600")]).await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    let at = minted.text.find("/preferences?token=").expect("the link") + "/preferences?token=".len();
    let token: String =
        minted.text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    assert_eq!(minted.header(reqwest::header::CACHE_CONTROL), "no-store", "the link is not cached");
    let mut alice = Visitor::new(&server);
    let preferences = alice.open_link(&token).await;
    assert_eq!(preferences.status, 200, "the link opens alice's preference centre: {}", preferences.text);
    let again = Visitor::new(&server).get(&format!("/preferences?token={token}")).await;
    assert_ne!(again.status, 303, "a link opens once");
    assert_eq!(
        officer.post_form("/console/people/bob/link", &[("csrf", &csrf), ("ttl", "3600")]).await.status,
        404,
        "no link for an erased person"
    );
    let routes = [
        "console: mint preference-centre link",
        "console: verify receipt",
        "console: find a person by identifier",
    ];
    logged(&server, "alice", &routes).await;
}

/// Waits (5 s at most) until `subject`'s access log holds an entry of the key `privacy-officer` with the
/// purpose `console` for each of `routes` (the log is written in batches).
async fn logged(server: &TestServer, subject: &str, routes: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = access_entries(server, subject, 0).await;
        let missing: Vec<&&str> =
            routes.iter().filter(|r| !log.contains(&entry("privacy-officer", r, "console"))).collect();
        if missing.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not in the access log: {missing:?} in {log:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The history pages back, newest first, 25 events a page.
async fn a_persons_lists_page(backend: Backend) {
    let (server, _, write) = server_with_keys(backend).await;
    for i in 0..30 {
        let body = if i % 2 == 0 { grant("analytics", &[]) } else { withdraw("analytics") };
        server.record("dora", &body).await;
    }
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;
    let first = officer.get("/console/people/dora").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rows = |text: &str| {
        let table = &text[text.find("id=\"person-history\"").expect("history")..];
        let table = &table[..table.find("</table>").expect("end")];
        table.matches("<tr>").count() - 1
    };
    assert_eq!(rows(&first.text), 25, "a page of 25");
    let at = first.text.find("?history_before=").expect("a next page") + "?history_before=".len();
    let before: String = first.text[at..].chars().take_while(char::is_ascii_digit).collect();
    let older = officer.get(&format!("/console/people/dora?history_before={before}")).await;
    assert_eq!(rows(&older.text), 5, "the five oldest");
    assert!(!older.text.contains("history_before="), "no page after the last");
    assert_eq!(officer.get("/console/people/dora?history_before=x").await.status, 400);
}

both_backends!(a_person_in_the_console, a_persons_lists_page);

/// A vault record's content opens only for `console:write`, with a stated purpose that goes into the
/// person's access log, and with the form's CSRF token; another person's record is not found.
async fn a_record_opens_for_a_stated_purpose(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    let (_, _, record) = seed_people(&server).await;
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;
    let person = officer.get("/console/people/alice").await;
    let page_path = format!("/console/people/alice/records/{record}");
    assert!(person.text.contains(&format!("href=\"{page_path}\"")), "{}", person.text);
    let page = officer.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("id=\"open-record\"") && !page.text.contains(PAYLOAD), "{}", page.text);
    let csrf = csrf_of(&page.text);
    let open = format!("{page_path}/open");
    let why = "Answering the person's complaint";
    assert_eq!(officer.post_form(&open, &[("csrf", &csrf), ("purpose", " ")]).await.status, 400);
    assert_eq!(officer.post_form(&open, &[("purpose", why)]).await.status, 403, "without the CSRF token");
    let opened = officer.post_form(&open, &[("csrf", &csrf), ("purpose", why)]).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert_eq!(opened.text, PAYLOAD);
    assert!(opened.header(reqwest::header::CONTENT_DISPOSITION).starts_with("attachment"));
    assert_eq!(opened.header(reqwest::header::CACHE_CONTROL), "no-store");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !access_entries(&server, "alice", 0).await.contains(&entry(
        "privacy-officer",
        "console: open record",
        why,
    )) {
        assert!(std::time::Instant::now() < deadline, "the opening with its purpose is in the access log");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.record("carol", &grant("analytics", &[])).await;
    assert_eq!(
        officer.get(&format!("/console/people/carol/records/{record}")).await.status,
        404,
        "not carol's"
    );
    assert_eq!(officer.get("/console/people/alice/records/rec_0").await.status, 404);

    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let seen = viewer.get("/console/people/alice").await;
    assert!(!seen.text.contains(&page_path), "no link to open a record: {}", seen.text);
    let page = viewer.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains("id=\"open-record\""), "{}", page.text);
    let refused = viewer.post_form(&open, &[("csrf", &csrf_of(&page.text)), ("purpose", why)]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(!refused.text.contains(PAYLOAD));
}

both_backends!(a_record_opens_for_a_stated_purpose);
