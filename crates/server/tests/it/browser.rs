//! A real browser on the preference centre: Debian's headless Chromium, driven over WebDriver
//! (chromedriver) with a few JSON calls. Open a preference link, untick e-mail marketing, save; the API then
//! answers `withdrawn` for that purpose and channel and keeps SMS. Screenshots at desktop and phone width
//! go to `<CARGO_TARGET_DIR>/screenshots/` (default `target/screenshots/`). The German page then shows no
//! English text of the catalogue. The section navigation reaches every section, times are shown in the
//! browser's time zone, and a focused control is not hidden under the sticky save bar. The export's guide
//! (`index.html`, opened from the archive) has the same look and reads at 390 px.
//!
//! Skipped with a notice when Chromium or chromedriver is absent; a failure under
//! `CONSENTRY_REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::preferences::german::{english_catalogue_texts, shown};
use crate::preferences::{decision, mint};
use crate::utils::{TestServer, grant, str_of};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver session on a chromedriver of our own.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("addr").port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // The reader's own time zone, which the page's times are shown in.
            .env("TZ", "Europe/Berlin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready");
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session =
            r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_owned();
        let browser = Self { http, session: format!("{base}/session/{session}"), driver, _profile: profile };
        // A form's submission may still be loading when the click returns: look for elements for a while.
        browser.post("/timeouts", json!({"implicit": 15_000, "pageLoad": 30_000})).await;
        browser
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r: Value = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            .json()
            .await
            .expect("json");
        assert!(r["value"]["error"].is_null(), "{method} {path}: {r}");
        r["value"].clone()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn go(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn find(&self, css: &str) -> String {
        let found = self.post("/element", json!({"using": "css selector", "value": css})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {found}")).to_owned()
    }

    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// A full-page screenshot at `width` CSS pixels, and the page's width there.
    pub async fn screenshot(&self, width: u32, file: &Path) -> u64 {
        self.post("/window/rect", json!({"width": width, "height": 900})).await;
        let height =
            self.script("return document.documentElement.scrollHeight").await.as_u64().unwrap_or(900);
        self.post("/window/rect", json!({"width": width, "height": height.clamp(600, 12_000)})).await;
        let scroll_width =
            self.script("return document.documentElement.scrollWidth").await.as_u64().unwrap_or(0);
        let client_width =
            self.script("return document.documentElement.clientWidth").await.as_u64().unwrap_or(0);
        let png = self.get("/screenshot").await;
        let bytes = STANDARD.decode(str_of(&png)).expect("base64 PNG");
        std::fs::write(file, bytes).expect("write screenshot");
        scroll_width.saturating_sub(client_width)
    }

    pub async fn close(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
    }
}

/// `<CARGO_TARGET_DIR>/screenshots`.
pub fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untick_email_marketing_in_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        consentry_store::testing::unreachable_service(
            "Chromium",
            "install Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
        );
        return;
    }
    let server = TestServer::start_on(crate::utils::Backend::Embedded).await;
    server.record("alice", &grant("marketing.direct", &["email", "sms"])).await;
    server.record("alice", &grant("analytics", &[])).await;
    // Something in every section: a paired device and a stored recording.
    let pair = json!({"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                      "purposes": ["analytics"]});
    server.post("/v1/subjects/alice/devices", crate::utils::ADMIN_KEY, &pair, 201).await;
    let record = json!({"subject": "alice", "category": "user.device.telemetry", "purpose": "analytics",
                        "content_type": "audio/wav", "data": STANDARD.encode(b"RIFF....WAVEfmt ")});
    server.post("/v1/records", crate::utils::ADMIN_KEY, &record, 201).await;
    let token = mint(&server, "alice", &json!({})).await;
    let link = format!("{}/preferences?token={}", server.base, str_of(&token["token"]));

    let browser = Browser::start().await;
    browser.post("/window/rect", json!({"width": 1280, "height": 900})).await;
    browser.go(&link).await;
    let url = browser.get("/url").await;
    assert_eq!(str_of(&url), format!("{}/preferences", server.base), "the token left the address bar");
    // The section navigation reaches every section.
    let nav = browser
        .script(
            "var links = Array.from(document.querySelectorAll('nav.sections a')).map(a => a.hash.slice(1));
             var ids = Array.from(document.querySelectorAll('main h2[id]')).map(h => h.id);
             return {links: links, ids: ids};",
        )
        .await;
    assert_eq!(nav["links"], nav["ids"], "a link to every section");
    assert!(nav["ids"].as_array().is_some_and(|ids| ids.len() >= 9), "{nav}");
    // Times in the reader's zone, the server's UTC text kept as the title.
    let time = browser
        .script("var t = document.querySelector('time[datetime]'); return [t.textContent, t.title];")
        .await;
    let (local, utc) = (str_of(&time[0]), str_of(&time[1]));
    assert!(utc.ends_with("UTC") && !local.contains("UTC") && local != utc, "{time}");
    // A control focused near the bottom of the screen is not hidden under the sticky save bar.
    let hidden = browser
        .script(
            "var boxes = document.querySelectorAll('form.choices input[type=checkbox]');
             var last = boxes[boxes.length - 1];
             // Scrolled so that it sits at the bottom of the window, under the bar: in view, but covered.
             window.scrollTo(0, window.scrollY + last.getBoundingClientRect().bottom - window.innerHeight + 4);
             last.focus();
             var bar = document.querySelector('form.choices .actions').getBoundingClientRect();
             return last.getBoundingClientRect().bottom > bar.top;",
        )
        .await;
    assert_eq!(hidden, false, "the focused checkbox clears the save bar");
    let dir = screenshots();
    let overflow = browser.screenshot(1280, &dir.join("preferences-desktop-before.png")).await;
    assert_eq!(overflow, 0, "no sideways scrolling on a desktop");

    let email = browser.find("input[data-purpose='marketing.direct'][data-channel='email']").await;
    let sms = browser.find("input[data-purpose='marketing.direct'][data-channel='sms']").await;
    assert_eq!(browser.get(&format!("/element/{email}/selected")).await, true, "granted: ticked");
    assert_eq!(browser.get(&format!("/element/{sms}/selected")).await, true);
    let push = browser.find("input[data-purpose='marketing.direct'][data-channel='push']").await;
    assert_eq!(browser.get(&format!("/element/{push}/selected")).await, false, "nothing pre-ticked");
    // The enhancing script: agreeing to a purpose with no channel chosen ticks its channels; disagreeing
    // unticks them again.
    let offers = browser.find("input[name='p'][data-purpose='marketing.personalised_offers']").await;
    let offers_push =
        browser.find("input[data-purpose='marketing.personalised_offers'][data-channel='push']").await;
    browser.post(&format!("/element/{offers}/click"), json!({})).await;
    assert_eq!(browser.get(&format!("/element/{offers_push}/selected")).await, true, "the script ran");
    browser.post(&format!("/element/{offers}/click"), json!({})).await;
    assert_eq!(browser.get(&format!("/element/{offers_push}/selected")).await, false);
    browser.post(&format!("/element/{email}/click"), json!({})).await;
    let save = browser.find("form.choices button[type='submit']").await;
    browser.post(&format!("/element/{save}/click"), json!({})).await;
    let saved = browser.find("#saved").await;
    let text = browser.get(&format!("/element/{saved}/text")).await;
    assert!(str_of(&text).contains("What changed"), "{text}");

    assert_eq!(
        decision(&server, "alice", "marketing.direct", Some("email")).await,
        (false, "withdrawn".to_owned())
    );
    assert_eq!(
        decision(&server, "alice", "marketing.direct", Some("sms")).await,
        (true, "granted".to_owned())
    );
    assert_eq!(decision(&server, "alice", "analytics", None).await, (true, "granted".to_owned()));

    let overflow = browser.screenshot(1280, &dir.join("preferences-desktop.png")).await;
    assert_eq!(overflow, 0, "no sideways scrolling on a desktop");
    let overflow = browser.screenshot(390, &dir.join("preferences-390.png")).await;
    assert_eq!(overflow, 0, "no sideways scrolling at 390 px");
    browser.go(&format!("{}/preferences?lang=de", server.base)).await;
    browser.screenshot(390, &dir.join("preferences-390-de.png")).await;
    // What a German reader sees (text and accessible labels) holds no English word of the catalogue.
    let seen = browser
        .script(
            "return document.body.innerText + ' ' + Array.from(document.querySelectorAll('[aria-label]'))
               .map(e => e.getAttribute('aria-label')).join(' ')",
        )
        .await;
    assert!(str_of(&seen).contains("Neuigkeiten und Angebote"), "the German page: {seen}");
    let english = english_catalogue_texts();
    assert_eq!(shown(str_of(&seen), &english), Vec::<&str>::new(), "English on the German page");

    // The export's guide, opened from the archive as a file: the same look, readable at 390 px.
    let asked = json!({"subject": "alice", "type": "access"});
    let request = server.post("/v1/requests", crate::utils::ADMIN_KEY, &asked, 201).await;
    let zip = reqwest::Client::new()
        .get(format!("{}{}", server.base, str_of(&request["export"]["url"])))
        .bearer_auth(crate::utils::ADMIN_KEY)
        .header("accept-language", "de")
        .send()
        .await
        .expect("the export")
        .bytes()
        .await
        .expect("its bytes");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a ZIP");
    let unpacked = tempfile::tempdir().expect("a folder");
    archive.extract(unpacked.path()).expect("unpacked");
    browser.go(&format!("file://{}", unpacked.path().join("index.html").display())).await;
    let lang = browser.script("return document.documentElement.lang").await;
    assert_eq!(lang, "de", "the guide in the language asked for");
    let styled = browser.script("return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(styled, "rgb(244, 246, 249)", "the preference centre's stylesheet, inline");
    let overflow = browser.screenshot(390, &dir.join("export-guide-390-de.png")).await;
    assert_eq!(overflow, 0, "the guide reads at 390 px without sideways scrolling");
    browser.close().await;
}
