//! The `consentry` binary end to end: init, keys, catalog apply, serve, a hard kill and SIGTERM.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_consentry");
/// A bootstrap admin key for tests that do not look at key printing: 41 printable characters.
const BOOT_KEY: &str = "cli-test-bootstrap-admin-key-0123456789ab";
const READY_WITHIN: Duration = Duration::from_secs(10);

/// `consentry <args>` with no `CONSENTRY_*` variable inherited from the test's environment.
fn consentry(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CONSENTRY_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = consentry(args).envs(env.iter().copied()).output().expect("run consentry");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every `csk_` token in `text`.
fn tokens(text: &str) -> Vec<&str> {
    text.split_whitespace().filter(|w| w.starts_with("csk_")).collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A `consentry serve` child process; killed when dropped, whatever happened.
struct Server {
    child: Child,
    base: String,
    out: PathBuf,
    err: PathBuf,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Serves `data`, logging into `logs`, and waits until `/healthz` answers.
    async fn start(data: &Path, logs: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let out = logs.join(format!("serve-{port}.out"));
        let err = logs.join(format!("serve-{port}.err"));
        let child = consentry(&["serve", "--data", path_str(data), "--listen", &listen])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn consentry serve");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let mut server = Server { child, base: format!("http://{listen}"), out, err, http };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("consentry serve exited early ({status}):\n{}", server.logs());
            }
            let ready = server.http.get(format!("{}/healthz", server.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "not ready within {READY_WITHIN:?}:\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far.
    fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&self.out), read(&self.err))
    }

    /// Sends a JSON request; returns the status and the JSON body (`null` when empty).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.logs()));
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, json)
    }

    /// Waits for the process to exit on its own, at most `within`.
    async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }
}

fn grant_body() -> Value {
    json!({
        "notice": "marketing.direct",
        "collection_point": "web-signup",
        "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"]}],
    })
}

fn check_body(subject: &str) -> Value {
    json!({"subject": subject, "purpose": "marketing.direct", "channel": "email"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_prints_the_admin_key_once() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let first = run(&["init", "--data", path_str(&data)], &[]);
    assert!(first.status.success(), "init failed: {}", first.stderr);
    let keys = tokens(&first.stdout);
    assert_eq!(keys.len(), 1, "one admin key is printed:\n{}", first.stdout);
    let admin = keys[0].to_owned();
    assert!(!first.stderr.contains(&admin), "the key goes to stdout only");
    assert!(first.stdout.contains("Catalogue version 1"), "{}", first.stdout);

    let second = run(&["init", "--data", path_str(&data)], &[]);
    assert!(second.status.success(), "second init failed: {}", second.stderr);
    assert!(tokens(&second.stdout).is_empty() && tokens(&second.stderr).is_empty(), "{}", second.stdout);

    let server = Server::start(&data, tmp.path(), &[]).await;
    let (status, list) = server.call(reqwest::Method::GET, "/v1/keys", &admin, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["keys"].as_array().map(Vec::len), Some(1));
    assert!(tokens(&server.logs()).is_empty(), "an initialised folder prints no key:\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_key_from_the_environment_is_never_printed() {
    let tmp = TempDir::new().expect("tmp");
    let secret = "env-given-admin-secret-Zq81xYw27LmNopQrstUv";
    let env = [("CONSENTRY_BOOTSTRAP_ADMIN_KEY", secret)];

    // Through `init`, then `serve`.
    let data = tmp.path().join("init-then-serve");
    let init = run(&["init", "--data", path_str(&data)], &env);
    assert!(init.status.success(), "init failed: {}", init.stderr);
    for text in [&init.stdout, &init.stderr] {
        assert!(!text.contains(secret), "the secret is printed:\n{text}");
        assert!(tokens(text).is_empty(), "no key is generated:\n{text}");
    }
    let server = Server::start(&data, tmp.path(), &env).await;
    let (status, _) = server.call(reqwest::Method::GET, "/v1/keys", secret, None).await;
    assert_eq!(status, 200);
    let (status, _) =
        server.call(reqwest::Method::POST, "/v1/subjects/e1/consents", secret, Some(&grant_body())).await;
    assert_eq!(status, 201);
    let logs = server.logs();
    assert!(!logs.contains(secret) && tokens(&logs).is_empty(), "serve printed a key:\n{logs}");
    drop(server);

    // Straight to `serve` on a fresh folder.
    let data = tmp.path().join("serve-only");
    let server = Server::start(&data, tmp.path(), &env).await;
    let (status, _) = server.call(reqwest::Method::GET, "/v1/catalog", secret, None).await;
    assert_eq!(status, 200);
    let logs = server.logs();
    assert!(!logs.contains(secret) && tokens(&logs).is_empty(), "serve printed a key:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_prints_a_scoped_key_that_the_server_honours() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let d = path_str(&data);
    assert!(run(&["init", "--data", d], &[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)]).status.success());
    let created = run(
        &["keys", "create", "--data", d, "--name", "crm", "--scope", "check", "--scope", "consent:write"],
        &[],
    );
    assert!(created.status.success(), "keys create failed: {}", created.stderr);
    let keys = tokens(&created.stdout);
    assert_eq!(keys.len(), 1, "{}", created.stdout);
    let key = keys[0].to_owned();
    assert!(created.stdout.contains("check, consent:write"), "{}", created.stdout);

    let bad = run(&["keys", "create", "--data", d, "--name", "x", "--scope", "superuser"], &[]);
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("superuser") && tokens(&bad.stdout).is_empty(), "{}", bad.stderr);
    let list = run(&["keys", "list", "--data", d], &[]);
    assert!(list.status.success() && list.stdout.contains("crm") && !list.stdout.contains(&key));

    let server = Server::start(&data, tmp.path(), &[]).await;
    let (status, c) = server.call(reqwest::Method::POST, "/v1/check", &key, Some(&check_body("k1"))).await;
    assert_eq!((status, &c["reason"]), (200, &json!("no_consent")), "{c}");
    let (status, _) =
        server.call(reqwest::Method::POST, "/v1/subjects/k1/consents", &key, Some(&grant_body())).await;
    assert_eq!(status, 201);
    let (status, p) = server.call(reqwest::Method::PUT, "/v1/catalog", &key, Some(&json!({}))).await;
    assert_eq!((status, &p["code"]), (403, &json!("forbidden")), "{p}");
    let (status, p) = server.call(reqwest::Method::GET, "/v1/keys", &key, None).await;
    assert_eq!((status, &p["code"]), (403, &json!("forbidden")), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_survives_kill_9() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let env = [("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)];
    let mut server = Server::start(&data, tmp.path(), &env).await;
    let (status, out) = server
        .call(reqwest::Method::POST, "/v1/subjects/durable/consents", BOOT_KEY, Some(&grant_body()))
        .await;
    assert_eq!(status, 201, "{out}");
    server.child.kill().expect("SIGKILL");
    let status = server.child.wait().expect("wait");
    assert!(!status.success(), "killed, not exited: {status}");
    drop(server);

    let server = Server::start(&data, tmp.path(), &env).await;
    let (status, c) =
        server.call(reqwest::Method::POST, "/v1/check", BOOT_KEY, Some(&check_body("durable"))).await;
    assert_eq!(status, 200);
    assert_eq!(c, json!({"allowed": true, "reason": "granted", "event_id": out["events"][0]["id"]}));
    let (status, h) =
        server.call(reqwest::Method::GET, "/v1/subjects/durable/consents/history", BOOT_KEY, None).await;
    assert_eq!(status, 200);
    assert_eq!(h["events"][0]["hash"], out["events"][0]["hash"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let drain = 2;
    let env = [("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY), ("CONSENTRY_SHUTDOWN_TIMEOUT_SECS", "2")];
    let mut server = Server::start(&data, tmp.path(), &env).await;
    let (status, _) =
        server.call(reqwest::Method::POST, "/v1/subjects/t1/consents", BOOT_KEY, Some(&grant_body())).await;
    assert_eq!(status, 201);
    let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().expect("run kill");
    assert!(kill.success());
    let status = server.wait_exit(Duration::from_secs(drain + 5)).await;
    let status = status.unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", server.logs()));
    assert_eq!(status.code(), Some(0), "exit status {status}:\n{}", server.logs());

    // The data folder is released and intact.
    let server = Server::start(&data, tmp.path(), &env).await;
    let (_, c) = server.call(reqwest::Method::POST, "/v1/check", BOOT_KEY, Some(&check_body("t1"))).await;
    assert_eq!(c["allowed"], true, "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_apply_reports_every_problem_or_applies_a_new_version() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let d = path_str(&data);
    assert!(run(&["init", "--data", d], &[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)]).status.success());

    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "data_categories:\n  - key: user.email\n    name: E-mail\n  - key: Bad_Key\n    name: Bad\n\
         purposes:\n  - key: news\n    name: News\n    basis: consent\n    channels: [pigeon]\n",
    )
    .expect("write");
    let out = run(&["catalog", "apply", "--data", d, path_str(&bad)], &[]);
    assert!(!out.status.success(), "a bad catalogue is refused");
    for path in
        ["data_categories[0].key", "data_categories[1].key", "purposes[0].channels[0]", "purposes[0].notice"]
    {
        assert!(out.stderr.contains(path), "{path} not reported:\n{}", out.stderr);
    }
    let unreadable = tmp.path().join("typo.yaml");
    std::fs::write(&unreadable, "purposez: []\n").expect("write");
    let out = run(&["catalog", "apply", "--data", d, path_str(&unreadable)], &[]);
    assert!(!out.status.success() && out.stderr.contains("purposez"), "{}", out.stderr);

    let good = tmp.path().join("good.yaml");
    std::fs::write(&good, consentry_core::catalog::DEFAULT_CATALOG_YAML).expect("write");
    let out = run(&["catalog", "apply", "--data", d, path_str(&good)], &[]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("version 2"), "{}", out.stdout);

    let json_file = tmp.path().join("good.json");
    let doc = consentry_core::catalog::CatalogDocument::default_catalog();
    std::fs::write(&json_file, serde_json::to_vec(&doc).expect("json")).expect("write");
    let out = run(&["catalog", "apply", "--data", d, path_str(&json_file)], &[]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("version 3"), "{}", out.stdout);

    let server = Server::start(&data, tmp.path(), &[]).await;
    let (status, catalog) = server.call(reqwest::Method::GET, "/v1/catalog", BOOT_KEY, None).await;
    assert_eq!((status, &catalog["version"]), (200, &json!(3)));
}

#[test]
fn openapi_prints_the_document() {
    let out = run(&["openapi"], &[]);
    assert!(out.status.success());
    assert_eq!(out.stdout, consentry_server::openapi::document());
}
