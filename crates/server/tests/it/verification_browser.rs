//! "Manage my data" in a real browser (Debian's headless Chromium over WebDriver, as in `browser.rs`): a
//! person types their e-mail address, receives the code at a real SMTP server on loopback, types a wrong
//! code and then the right one, and lands in their preference centre, signed in. Every page of the flow
//! (the address form, the code form, the code form with its error) must show no axe-core violation of
//! impact serious or critical, and is photographed at 390 px under `<CARGO_TARGET_DIR>/screenshots/`
//! without scrolling sideways.
//!
//! Skipped with a notice when Chromium, chromedriver, axe-core or the SMTP sink is absent; a failure under
//! `CONSENTRY_REQUIRE_SERVICES=1`.

use serde_json::{Value, json};

use crate::browser::{Browser, screenshots};
use crate::console::browser::{browser_tools, serious_violations};
use crate::smtp::SmtpSink;
use crate::utils::{ADMIN_KEY, Backend, TestServer, grant, str_of};

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = browser.find(css).await;
    browser.post(&format!("/element/{field}/clear"), json!({})).await;
    browser.post(&format!("/element/{field}/value"), json!({"text": text})).await;
}

async fn click(browser: &Browser, css: &str) {
    let button = browser.find(css).await;
    browser.post(&format!("/element/{button}/click"), json!({})).await;
}

/// The page has no serious or critical axe violation and does not scroll sideways at 390 px.
async fn accessible(browser: &Browser, axe: &str, name: &str) {
    let violations = serious_violations(browser, axe).await;
    assert!(violations.is_empty(), "{name}: axe reports {violations:#?}");
    let file = screenshots().join(format!("manage-my-data-{name}-390.png"));
    let overflow = browser.screenshot(390, &file).await;
    assert_eq!(overflow, 0, "{name} scrolls sideways at 390 px");
    browser.post("/window/rect", json!({"width": 1280, "height": 900})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manage_my_data_in_chromium() {
    let Some(axe) = browser_tools() else { return };
    let Some(sink) = SmtpSink::start() else { return };
    let url = sink.url();
    let server = TestServer::with_config_on(Backend::Embedded, move |c| {
        c.smtp_url = Some(url);
        c.smtp_from = Some("Example Brand <privacy@example.com>".to_owned());
    })
    .await;
    let body = json!({"type": "email", "value": "mira@example.com"});
    server.post("/v1/subjects/mira/identifiers", ADMIN_KEY, &body, 201).await;
    server.record("mira", &grant("marketing.direct", &["email"])).await;

    let browser = Browser::start().await;
    browser.post("/window/rect", json!({"width": 1280, "height": 900})).await;
    browser.go(&format!("{}/preferences/start", server.base)).await;
    let label = browser.script("return document.querySelector('label[for=email]') !== null").await;
    assert_eq!(label, json!(true), "the address field has its label");
    accessible(&browser, &axe, "address").await;

    type_into(&browser, "input#email", "Mira@Example.com").await;
    click(&browser, "form button[type=submit]").await;
    browser.find("input#code").await;
    accessible(&browser, &axe, "code").await;
    let code = sink.wait_for(1).await.remove(0).code();

    let wrong = if code == "000000" { "000001" } else { "000000" };
    type_into(&browser, "input#code", wrong).await;
    click(&browser, "form button[type=submit]").await;
    // The old page's code field is found too until the answer has replaced it: wait for the answer's text.
    let mut text = Value::Null;
    for _ in 0..50 {
        text = browser.script("return document.body.innerText").await;
        if str_of(&text).contains('4') {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(str_of(&text).contains('4'), "the attempts left are shown: {text}");
    browser.find("input#code").await;
    accessible(&browser, &axe, "wrong-code").await;

    type_into(&browser, "input#code", &code).await;
    click(&browser, "form button[type=submit]").await;
    // Signed in: the preference centre, its token out of the address bar, mira's choices on the page.
    browser.find("form.choices").await;
    let at = browser.get("/url").await;
    assert_eq!(str_of(&at), format!("{}/preferences", server.base), "in the preference centre");
    let checked = browser
        .script("return Array.from(document.querySelectorAll('form.choices input[type=checkbox]:checked')).length")
        .await;
    assert!(checked.as_u64().is_some_and(|n| n >= 1), "mira's grant is shown: {checked}");
    browser.close().await;
    server.stop().await;
}
