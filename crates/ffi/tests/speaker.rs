//! The C example against a real server: a server starts in this process, a speaker is paired, its signed
//! snapshot and the server's JWKS are handed to `sdk/c/examples/speaker.c` (compiled here with
//! `cc -std=c11 -Wall -Wextra -Werror` against `libconsentry_device.a`), and every decision it prints must
//! equal what `POST /v1/check` answers the device for the same question. Then a newer snapshot replaces
//! the held one (and an older one does not), and the example runs under Valgrind with no error or leak.
//!
//! Needs `cc` and (for the last part) `valgrind`: without them the test skips with a notice, and fails
//! under `CONSENTRY_REQUIRE_SERVICES=1`, as in CI.

#![cfg(unix)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const ADMIN_KEY: &str = "ffi-test-admin-key-0123456789-abcdefghijk";
const SUBJECT: &str = "speaker-owner";

/// Everything the device declared at pairing, and questions across them: purposes (and those under
/// them), categories, channels and recipients, in and out of what each purpose and grant covers.
const CATEGORIES: [&str; 4] =
    ["user.device.telemetry", "user.biometric.voice", "user.biometric.voice.review", "user.contact.email"];
const PURPOSES: [&str; 8] = [
    "analytics",
    "voice_history",
    "voice_review",
    "service.improvement",
    "service.provision",
    "marketing",
    "marketing.direct",
    "marketing.personalised_offers",
];
const CHANNELS: [Option<&str>; 4] = [None, Some("on_device"), Some("email"), Some("voice")];
const RECIPIENTS: [Option<&str>; 3] = [None, Some("brand"), Some("analytics_provider")];

fn required_tool(name: &str) -> bool {
    let found =
        Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(
            std::env::var("CONSENTRY_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{name} is required (CONSENTRY_REQUIRE_SERVICES=1)"
        );
        println!("SKIP: {name} is not installed");
    }
    found
}

struct Server {
    base: String,
    http: reqwest::Client,
    stop: CancellationToken,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = consentry_server::Config {
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            ..consentry_server::Config::default()
        };
        config.data = data.path().join("data");
        config.validate().expect("valid configuration");
        let opened = consentry_server::open(config).await.expect("the server opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        tokio::spawn(consentry_server::serve(opened.state, listener, stop.clone()));
        let http =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        Self { base, http, stop, _data: data }
    }

    /// A request with a bearer token; the status and the body (JSON, or text as a JSON string).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body)).await
    }

    /// Records `changes` (a grant under the purpose's `notice`, as the server requires).
    async fn record(&self, notice: Option<&str>, changes: Value) {
        let path = format!("/v1/subjects/{SUBJECT}/consents");
        let (status, body) =
            self.post(&path, ADMIN_KEY, json!({ "notice": notice, "changes": changes })).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// One question, as a line of the example's input.
#[derive(Debug, Clone)]
struct Question {
    purpose: &'static str,
    category: &'static str,
    channel: Option<&'static str>,
    recipient: Option<&'static str>,
}

impl Question {
    fn line(&self) -> String {
        let or_dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
        format!("{} {} {} {}", self.purpose, self.category, or_dash(self.channel), or_dash(self.recipient))
    }
}

fn table() -> Vec<Question> {
    let mut out = Vec::new();
    for purpose in PURPOSES {
        for category in CATEGORIES {
            for channel in CHANNELS {
                for recipient in RECIPIENTS {
                    out.push(Question { purpose, category, channel, recipient });
                }
            }
        }
    }
    out
}

/// What the server answers the device, in the example's words: `allowed granted evt_1`,
/// `denied not_covered channel evt_1`, or `forbidden` for a question outside the device's declaration.
async fn server_answer(server: &Server, device_token: &str, q: &Question) -> String {
    let body = json!({
        "subject": SUBJECT, "purpose": q.purpose, "category": q.category,
        "channel": q.channel, "recipient": q.recipient,
    });
    let (status, d) = server.post("/v1/check", device_token, body).await;
    if status == 403 {
        return "forbidden".to_owned();
    }
    assert_eq!(status, 200, "{} -> {d}", q.line());
    let mut words = vec![
        if d["allowed"] == true { "allowed" } else { "denied" }.to_owned(),
        d["reason"].as_str().expect("reason").to_owned(),
    ];
    words.extend(d["not_covered"].as_str().map(str::to_owned));
    words.extend(d["event_id"].as_str().map(str::to_owned));
    words.join(" ")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `libconsentry_device.a`, which cargo built with this test, beside it (`target/<profile>/deps/`).
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let lib = exe.with_file_name("libconsentry_device.a");
    assert!(lib.is_file(), "{} is missing", lib.display());
    lib
}

/// Compiles the example as CI does; its path.
fn compile_example(out_dir: &Path) -> PathBuf {
    let root = repo_root();
    let binary = out_dir.join("speaker");
    let output = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-I"])
        .arg(root.join("sdk/c/include"))
        .arg(root.join("sdk/c/examples/speaker.c"))
        .arg(static_library())
        // What a Rust static library needs from the system on Linux (`rustc --print native-static-libs`).
        .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc", "-o"])
        .arg(&binary)
        .output()
        .expect("run cc");
    assert!(output.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&output.stderr));
    binary
}

/// Runs `program args…` with the questions on stdin; each answer's words after `->`.
fn run(
    program: &Path,
    wrapper: &[&str],
    args: &[&Path],
    device_id: &str,
    questions: &[Question],
) -> (Vec<String>, String) {
    let mut command = match wrapper.split_first() {
        Some((tool, tool_args)) => {
            let mut c = Command::new(tool);
            c.args(tool_args).arg(program);
            c
        }
        None => Command::new(program),
    };
    command.args(&args[..2]).arg(device_id).args(&args[2..]);
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run");
    let input: String = questions.iter().map(|q| q.line() + "\n").collect();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write questions");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{} failed ({}):\n{stderr}", program.display(), output.status);
    let answers = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split_once(" -> ").expect("an answer").1.to_owned())
        .collect();
    (answers, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_example_decides_as_the_server() {
    if !required_tool("cc") {
        return;
    }
    let server = Server::start().await;
    let soon = consentry_core::Timestamp::now().plus_seconds(2).to_string();
    let grants = [
        (
            "analytics",
            json!({"purpose": "analytics", "action": "grant", "channels": ["on_device"], "recipients": ["brand"]}),
        ),
        ("voice_history", json!({"purpose": "voice_history", "action": "grant"})),
        (
            "marketing.direct",
            json!({"purpose": "marketing.direct", "action": "grant", "channels": ["email"], "categories": ["user.contact.email"]}),
        ),
        (
            "marketing.personalised_offers",
            json!({"purpose": "marketing.personalised_offers", "action": "grant", "expires_at": soon}),
        ),
    ];
    for (notice, grant) in grants {
        server.record(Some(notice), json!([grant])).await;
    }
    server
        .record(
            None,
            json!([
                {"purpose": "voice_review", "action": "deny"},
                {"purpose": "service.improvement", "action": "object"},
                {"purpose": "marketing.direct", "action": "withdraw"},
            ]),
        )
        .await;
    // Past the grant's expiry, so that `expired` is among the answers.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (status, paired) = server
        .post(
            &format!("/v1/subjects/{SUBJECT}/devices"),
            ADMIN_KEY,
            json!({"name": "Kitchen speaker", "kind": "speaker",
                   "categories": ["user.device.telemetry", "user.biometric.voice", "user.contact.email"],
                   "purposes": ["analytics", "voice_history", "voice_review", "service", "marketing"]}),
        )
        .await;
    assert_eq!(status, 201, "{paired}");
    let (token, device_id) = (paired["token"].as_str().expect("token"), paired["id"].as_str().expect("id"));

    let dir = tempfile::tempdir().expect("temp dir");
    let example = compile_example(dir.path());
    let jwks = save(
        dir.path(),
        "jwks.json",
        &server.call(reqwest::Method::GET, "/.well-known/jwks.json", "", None).await,
    );
    let first = save(
        dir.path(),
        "first.jws",
        &server.call(reqwest::Method::GET, "/v1/device/consent", token, None).await,
    );

    // Every question of the table, and two outside what the device declared.
    let mut questions = table();
    let outside = [
        Question {
            purpose: "third_party.sharing",
            category: "user.contact.email",
            channel: None,
            recipient: None,
        },
        Question { purpose: "analytics", category: "user.location.precise", channel: None, recipient: None },
    ];
    questions.extend(outside.iter().cloned());
    let (answers, _) = run(&example, &[], &[&jwks, &first], device_id, &questions);
    assert_eq!(answers.len(), questions.len());
    let mut reasons = std::collections::BTreeSet::new();
    for (q, offline) in questions.iter().zip(&answers) {
        let online = server_answer(&server, token, q).await;
        if online == "forbidden" {
            // The server refuses the device a question outside its declaration; offline it is denied.
            assert!(offline.starts_with("denied not_covered"), "{} -> {offline}", q.line());
        } else {
            assert_eq!(offline, &online, "{}", q.line());
        }
        reasons.insert(offline.split(' ').nth(1).expect("reason").to_owned());
    }
    let allowed = answers.iter().filter(|a| a.starts_with("allowed")).count();
    assert!(questions.len() >= 30 && allowed >= 10 && allowed < questions.len() - 10, "{allowed} allowed");
    for reason in ["granted", "withdrawn", "denied", "objected", "expired", "not_covered", "basis_contract"] {
        assert!(reasons.contains(reason), "no question answered {reason}: {reasons:?}");
    }

    // A change on the server: a newer snapshot replaces the held one; the older one cannot come back.
    server.record(None, json!([{"purpose": "analytics", "action": "withdraw"}])).await;
    let second = save(
        dir.path(),
        "second.jws",
        &server.call(reqwest::Method::GET, "/v1/device/consent", token, None).await,
    );
    let analytics: Vec<Question> = table().into_iter().filter(|q| q.purpose == "analytics").collect();
    let mut online = Vec::new();
    for q in &analytics {
        online.push(server_answer(&server, token, q).await);
    }
    assert!(online.iter().all(|a| a.starts_with("denied")), "{online:?}");
    let (replaced, _) = run(&example, &[], &[&jwks, &first, &second], device_id, &analytics);
    assert_eq!(replaced, online);
    let (kept, stderr) = run(&example, &[], &[&jwks, &second, &first], device_id, &analytics);
    assert_eq!(kept, online, "the older snapshot did not replace the newer");
    assert!(stderr.contains("kept the held snapshot"), "{stderr}");

    // Under Valgrind: no invalid access, no uninitialised read, nothing leaked.
    if required_tool("valgrind") {
        let valgrind = [
            "valgrind",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
        ];
        let (checked, report) =
            run(&example, &valgrind, &[&jwks, &first, &second], device_id, &questions[..40]);
        assert_eq!(checked.len(), 40);
        assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
        assert!(
            report.contains("definitely lost: 0 bytes") || report.contains("no leaks are possible"),
            "{report}"
        );
    }
    server.stop.cancel();
}

fn save(dir: &Path, name: &str, (status, body): &(u16, Value)) -> PathBuf {
    assert_eq!(*status, 200, "{name}: {body}");
    let text = match body {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}
