//! The console in a real browser (Debian's headless Chromium over WebDriver), on both backends with the
//! same seeded data: sign in through the form, open every page, check that the charts are SVG with the
//! expected lines and that their tables hold the seeded numbers, extend a request and mark its task done,
//! replay a dead letter, apply a catalogue from its comparison page, make a key, sign out. Every page is
//! photographed at 1280 and 390 px under `<CARGO_TARGET_DIR>/screenshots/console/`, must not scroll
//! sideways at 390 px, must have every control reachable with the Tab key with a visible focus ring, and
//! axe-core (from npm, installed by `.ci/run` under `~/.cache/consentry/axe`) must report no violation of
//! impact serious or critical.
//!
//! Skipped with a notice when Chromium, chromedriver or axe-core is absent; a failure under
//! `CONSENTRY_REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::overview::seed;
use super::requests::seed_requests;
use crate::browser::{Browser, CHROMEDRIVER, CHROMIUM, screenshots};
use crate::utils::{ADMIN_KEY, Backend, TestServer, str_of};

/// Where `.ci/run` installs axe-core.
pub(crate) fn axe_path() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/consentry/axe/node_modules/axe-core/axe.min.js")
}

/// Runs axe-core on the page; the violations of impact serious or critical.
pub(crate) async fn serious_violations(browser: &Browser, axe: &str) -> Vec<Value> {
    browser.script(&format!("{axe}\nreturn true;")).await;
    let found = browser
        .post(
            "/execute/async",
            json!({"script": "var done = arguments[arguments.length - 1];
                axe.run(document, {resultTypes: ['violations']})
                  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                      nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
                  .catch(e => done([{id: 'axe failed', impact: 'critical', nodes: [String(e)]}]));",
                   "args": []}),
        )
        .await;
    found
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect()
}

/// Presses Tab through the page: every link, button, field and summary gets the focus in turn, each with
/// a visible outline.
async fn every_control_takes_the_focus(browser: &Browser) {
    let result = browser
        .script(
            "var wanted = Array.from(document.querySelectorAll(
                 'a[href], button, input:not([type=hidden]), summary, [tabindex=\"0\"]'))
               .filter(e => e.checkVisibility());
             return wanted.length;",
        )
        .await;
    let wanted = result.as_u64().unwrap_or(0);
    let mut reached = std::collections::BTreeSet::new();
    browser.script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);").await;
    // A date field takes a Tab per part: room for those, stopping once every control had the focus.
    for _ in 0..wanted * 3 + 5 {
        if reached.len() as u64 >= wanted {
            break;
        }
        browser
            .post(
                "/actions",
                json!({"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]}),
            )
            .await;
        let focused = browser
            .script(
                "var e = document.activeElement; if (!e || e === document.body) return null;
                 var all = Array.from(document.querySelectorAll(
                     'a[href], button, input:not([type=hidden]), summary, [tabindex=\"0\"]'));
                 var s = getComputedStyle(e);
                 return {index: all.indexOf(e), outline: s.outlineStyle, width: parseFloat(s.outlineWidth),
                         html: e.outerHTML.slice(0, 100), page: location.href};",
            )
            .await;
        if focused.is_null() {
            continue;
        }
        assert!(
            focused["outline"] != "none" && focused["width"].as_f64().unwrap_or(0.0) >= 2.0,
            "a visible focus ring: {focused}"
        );
        reached.insert(focused["index"].as_i64().unwrap_or(-1));
    }
    let missed = browser
        .script(&format!(
            "var reached = {:?};
             return Array.from(document.querySelectorAll(
                 'a[href], button, input:not([type=hidden]), summary, [tabindex=\"0\"]'))
               .map((e, i) => [i, e]).filter(p => p[1].checkVisibility() && !reached.includes(p[0]))
               .map(p => p[1].outerHTML.slice(0, 120));",
            reached.iter().collect::<Vec<_>>()
        ))
        .await;
    assert!(
        reached.len() as u64 >= wanted,
        "Tab reached {} of {wanted} controls; not: {missed}",
        reached.len()
    );
}

/// Photographs the page at both widths, checks it fits 390 px, the keyboard and axe-core.
async fn check_page(browser: &Browser, axe: &str, dir: &Path, name: &str) {
    browser.screenshot(1280, &dir.join(format!("{name}-1280.png"))).await;
    every_control_takes_the_focus(browser).await;
    browser.script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);").await;
    let overflow = browser.screenshot(390, &dir.join(format!("{name}-390.png"))).await;
    assert_eq!(overflow, 0, "{name}: no sideways scrolling at 390 px");
    let violations = serious_violations(browser, axe).await;
    assert!(violations.is_empty(), "{name}: axe-core: {violations:#?}");
    browser.post("/window/rect", json!({"width": 1280, "height": 900})).await;
}

/// Waits (30 s at most) until the page's address ends with `suffix`: a form's answer may still be loading
/// when its click returns.
async fn wait_for_url(browser: &Browser, suffix: &str) {
    for _ in 0..150 {
        if str_of(&browser.get("/url").await).ends_with(suffix) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the page did not reach …{suffix}");
}

/// The seeded numbers of today's row in a chart's table, by line: (line, cell).
async fn today_row(browser: &Browser, chart: &str) -> Value {
    let today = consentry_core::Timestamp::now().to_string()[..10].to_owned();
    browser
        .script(&format!(
            "var f = document.getElementById('chart-{chart}');
             var heads = Array.from(f.querySelectorAll('thead th')).map(t => t.textContent);
             var row = Array.from(f.querySelectorAll('tbody tr'))
               .find(r => r.querySelector('th').textContent === '{today}');
             var cells = Array.from(row.querySelectorAll('td')).map(t => t.textContent);
             var out = {{}}; cells.forEach((c, i) => out[heads[i + 1]] = c);
             out.svg = f.querySelectorAll('svg[role=img]').length;
             out.legend = Array.from(f.querySelectorAll('svg text')).map(t => t.textContent);
             return out;"
        ))
        .await
}

async fn walk_the_console(backend: Backend, label: &str, axe: &str) {
    let (server, _, write) = super::server_with_keys(backend).await;
    seed(&server).await;
    let (crm, access, _) = seed_requests(&server).await;
    let dir = screenshots().join("console");
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    let browser = Browser::start().await;
    browser.post("/window/rect", json!({"width": 1280, "height": 900})).await;

    browser.go(&format!("{}/console", server.base)).await;
    assert_eq!(str_of(&browser.get("/url").await), format!("{}/console/sign-in", server.base));
    check_page(&browser, axe, &dir, &format!("{label}-sign-in")).await;
    let field = browser.find("#key").await;
    browser.post(&format!("/element/{field}/value"), json!({"text": write})).await;
    let submit = browser.find("form button[type=submit].primary").await;
    browser.post(&format!("/element/{submit}/click"), json!({})).await;
    browser.find("#standing").await;
    assert_eq!(str_of(&browser.get("/url").await), format!("{}/console", server.base));

    // The rollups and the tally settle within a few seconds.
    let mut settled = false;
    for _ in 0..50 {
        browser.go(&format!("{}/console?range=7d", server.base)).await;
        let text = browser.script("return document.body.innerText").await;
        let standing = browser.script("return document.querySelector('#standing tbody').innerText").await;
        if !str_of(&text).contains("Counting") && str_of(&standing).contains("marketing.direct\t1") {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(settled, "the overview settled");
    let grants = today_row(&browser, "grants").await;
    assert_eq!(
        (&grants["News and offers"], &grants["Usage analytics"]),
        (&json!("2"), &json!("1")),
        "{grants}"
    );
    assert_eq!(grants["svg"], 1, "one SVG image");
    for line in ["News and offers", "Usage analytics"] {
        assert!(grants["legend"].as_array().is_some_and(|l| l.contains(&json!(line))), "legend: {grants}");
    }
    let rate = today_row(&browser, "opt-in").await;
    assert_eq!(rate["Usage analytics"], "50.0 %", "{rate}");
    check_page(&browser, axe, &dir, &format!("{label}-overview-7d")).await;
    for range in ["30d", "12m"] {
        browser.go(&format!("{}/console?range={range}", server.base)).await;
        let withdrawals = browser.find("#chart-withdrawals svg").await;
        assert!(!withdrawals.is_empty());
        for chart in ["checks", "denied", "requests"] {
            assert!(!browser.find(&format!("#chart-{chart} svg[role=img]")).await.is_empty(), "{chart}");
        }
        check_page(&browser, axe, &dir, &format!("{label}-overview-{range}")).await;
    }
    browser.go(&format!("{}/console?range=30d&lang=de", server.base)).await;
    let german = browser.script("return document.querySelector('h1').textContent").await;
    assert_eq!(german, "Übersicht");
    check_page(&browser, axe, &dir, &format!("{label}-overview-30d-de")).await;
    browser.go(&format!("{}/console?lang=en", server.base)).await;

    // Requests: the queue, then extend one and mark its task done.
    browser.go(&format!("{}/console/requests", server.base)).await;
    browser.find("#queue").await;
    check_page(&browser, axe, &dir, &format!("{label}-requests")).await;
    let link = browser.find(&format!("a[href='/console/requests/{access}']")).await;
    browser.post(&format!("/element/{link}/click"), json!({})).await;
    browser.find("#extend").await;
    check_page(&browser, axe, &dir, &format!("{label}-request")).await;
    let reason = browser.find("#extend-reason").await;
    browser.post(&format!("/element/{reason}/value"), json!({"text": "Several systems to search"})).await;
    let extend = browser.find("#extend button[type=submit]").await;
    browser.post(&format!("/element/{extend}/click"), json!({})).await;
    let done = browser.find("p.card.done").await;
    assert_eq!(str_of(&browser.get(&format!("/element/{done}/text")).await), "The deadline was extended.");
    let complete = browser.find(&format!("form.task[action$='/tasks/{crm}/complete'] button")).await;
    browser.post(&format!("/element/{complete}/click"), json!({})).await;
    // The page before has a status too: wait for the one the form led to.
    wait_for_url(&browser, "?done=task").await;
    let status = browser.find("#status").await;
    assert_eq!(str_of(&browser.get(&format!("/element/{status}/text")).await), "Done", "completed");
    let history = browser.script("return document.getElementById('request-history').innerText").await;
    assert!(str_of(&history).contains("console:privacy-officer"), "{history}");

    // Deliveries: the destination's dead letters (it refuses every delivery), one replayed.
    browser.go(&format!("{}/console/deliveries", server.base)).await;
    browser.find("#destinations").await;
    check_page(&browser, axe, &dir, &format!("{label}-deliveries")).await;
    let mut dead = false;
    for _ in 0..50 {
        browser.go(&format!("{}/console/deliveries/{crm}?status=dead", server.base)).await;
        if browser.script("return document.getElementById('deliveries') !== null").await == true {
            dead = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(dead, "a dead letter");
    for chart in ["success-hour", "success-day"] {
        assert!(!browser.find(&format!("#chart-{chart} svg[role=img]")).await.is_empty(), "{chart}");
    }
    check_page(&browser, axe, &dir, &format!("{label}-dead-letters")).await;
    let replay = browser.find("#deliveries form[action$='/replay'][action*='/dead-letters/'] button").await;
    browser.post(&format!("/element/{replay}/click"), json!({})).await;
    let done = browser.find("p.card.done").await;
    assert_eq!(
        str_of(&browser.get(&format!("/element/{done}/text")).await),
        "The dead letter is queued again, alone."
    );

    // The catalogue: its tables, a changed document uploaded, compared and applied from the comparison.
    browser.go(&format!("{}/console/catalogue", server.base)).await;
    browser.find("#category-tree").await;
    check_page(&browser, axe, &dir, &format!("{label}-catalogue")).await;
    let file = dir.join(format!("{label}-catalogue.json"));
    std::fs::write(&file, super::catalogue::changed_catalogue()).expect("the catalogue file");
    let input = browser.find("#document").await;
    browser.post(&format!("/element/{input}/value"), json!({"text": file.display().to_string()})).await;
    let compare = browser.find("#upload button[type=submit]").await;
    browser.post(&format!("/element/{compare}/click"), json!({})).await;
    browser.find("#apply").await;
    let people = browser.script("return document.getElementById('diff-notices').innerText").await;
    assert!(str_of(&people).contains("1 person agreed to version"), "alice's analytics consent: {people}");
    check_page(&browser, axe, &dir, &format!("{label}-catalogue-diff")).await;
    let apply = browser.find("#apply button[type=submit]").await;
    browser.post(&format!("/element/{apply}/click"), json!({})).await;
    let applied = browser.find("#applied").await;
    assert!(str_of(&browser.get(&format!("/element/{applied}/text")).await).contains("is applied"));
    let _ = std::fs::remove_file(&file);

    // Audit and keys: verify the ledger, make a key (shown once).
    browser.go(&format!("{}/console/keys?verify=1", server.base)).await;
    let verified = browser.find("#verification").await;
    assert!(str_of(&browser.get(&format!("/element/{verified}/text")).await).contains("intact"));
    check_page(&browser, axe, &dir, &format!("{label}-keys")).await;
    let name = browser.find("#key-name").await;
    browser.post(&format!("/element/{name}/value"), json!({"text": "dpo-laptop"})).await;
    let scope = browser.find("#scope-console-read").await;
    browser.post(&format!("/element/{scope}/click"), json!({})).await;
    let create = browser.find("form.card button.primary").await;
    browser.post(&format!("/element/{create}/click"), json!({})).await;
    let secret = browser.find("#new-key").await;
    assert!(str_of(&browser.get(&format!("/element/{secret}/text")).await).starts_with("csk_"));
    check_page(&browser, axe, &dir, &format!("{label}-key-created")).await;

    walk_a_person(&browser, &server, axe, &dir, label).await;

    let out = browser.find("form.sign-out button").await;
    browser.post(&format!("/element/{out}/click"), json!({})).await;
    browser.find("#key").await;
    browser.go(&format!("{}/console", server.base)).await;
    assert_eq!(str_of(&browser.get("/url").await), format!("{}/console/sign-in", server.base), "signed out");
    browser.close().await;
}

/// People: alice (the seeds' consents and request, and a vault record) found by her subject id, her page,
/// a receipt verified, a vault record's page (the form that opens it for a stated purpose), a
/// preference-centre link minted.
async fn walk_a_person(browser: &Browser, server: &TestServer, axe: &str, dir: &Path, label: &str) {
    let base = &server.base;
    let record = json!({"subject": "alice", "category": "user.device.telemetry", "purpose": "analytics",
        "content_type": "text/plain; charset=utf-8", "data": "MjEuNQ=="});
    server.post("/v1/records", ADMIN_KEY, &record, 201).await;
    browser.go(&format!("{base}/console/people")).await;
    browser.find("#find-identifier").await;
    check_page(browser, axe, dir, &format!("{label}-people")).await;
    let field = browser.find("#subject").await;
    browser.post(&format!("/element/{field}/value"), json!({"text": "alice"})).await;
    let open = browser.find("#find-subject button[type=submit]").await;
    browser.post(&format!("/element/{open}/click"), json!({})).await;
    browser.find("#standing").await;
    assert_eq!(str_of(&browser.get("/url").await), format!("{base}/console/people/alice"));
    let standing = browser.script("return document.getElementById('standing').innerText").await;
    assert!(str_of(&standing).contains("analytics v1"), "{standing}");
    check_page(browser, axe, dir, &format!("{label}-person")).await;
    let verify = browser.find("#person-receipts a[href*='/receipts/']").await;
    browser.post(&format!("/element/{verify}/click"), json!({})).await;
    let verified = browser.find("#verification").await;
    let result = browser.get(&format!("/element/{verified}/text")).await;
    assert!(str_of(&result).starts_with("The receipt verifies"), "{result}");
    check_page(browser, axe, dir, &format!("{label}-receipt-verified")).await;
    browser.go(&format!("{base}/console/people/alice")).await;
    let open = browser.find("#person-records a[href*='/records/']").await;
    browser.post(&format!("/element/{open}/click"), json!({})).await;
    browser.find("#open-record").await;
    check_page(browser, axe, dir, &format!("{label}-vault-record")).await;
    browser.go(&format!("{base}/console/people/alice")).await;
    let mint = browser.find("#mint button[type=submit]").await;
    browser.post(&format!("/element/{mint}/click"), json!({})).await;
    let link = browser.find("#new-link").await;
    let link = browser.get(&format!("/element/{link}/text")).await;
    assert!(str_of(&link).contains("/preferences?token="), "{link}");
    check_page(browser, axe, dir, &format!("{label}-link-minted")).await;
}

/// The axe-core source, when Chromium, ChromeDriver and axe-core are all installed; otherwise `None`, after
/// the skip notice (a failure where `CONSENTRY_REQUIRE_SERVICES=1`).
pub(crate) fn browser_tools() -> Option<String> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        consentry_store::testing::unreachable_service(
            "Chromium",
            "install Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
        );
        return None;
    }
    let Ok(axe) = std::fs::read_to_string(axe_path()) else {
        consentry_store::testing::unreachable_service(
            "axe-core",
            "install it with `npm install --prefix ~/.cache/consentry/axe axe-core` (as .ci/run does)",
        );
        return None;
    };
    Some(axe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_on_both_backends() {
    let Some(axe) = browser_tools() else { return };
    walk_the_console(Backend::Embedded, "embedded", &axe).await;
    if let Some(db) = consentry_store::testing::TestDatabase::create().await {
        walk_the_console(Backend::Postgres(db), "postgres", &axe).await;
    }
}
