//! The `consentry` binary end to end: init, keys, catalog apply, serve, a hard kill and SIGTERM.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_consentry");
/// A bootstrap admin key for tests that do not look at key printing: 41 printable characters.
pub(crate) const BOOT_KEY: &str = "cli-test-bootstrap-admin-key-0123456789ab";
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

pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
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

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A `consentry serve` child process; killed when dropped, whatever happened.
pub(crate) struct Server {
    pub(crate) child: Child,
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
    pub(crate) async fn start(data: &Path, logs: &Path, env: &[(&str, &str)]) -> Server {
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
    /// The server's address, `http://127.0.0.1:<port>`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&self.out), read(&self.err))
    }

    /// Sends a JSON request; returns the status and the JSON body (`null` when empty).
    pub(crate) async fn call(
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

// Proof of consent: `audit export`, `audit verify` (of a file with a JWKS, and of a store) and
// `keys rotate-signing`, on ledgers written by `consentry serve`.

/// Stops a served instance with SIGTERM, which signs a last checkpoint, and waits for a clean exit.
pub(crate) async fn stop(mut server: Server) {
    let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().expect("run kill");
    assert!(kill.success());
    let status = server.wait_exit(Duration::from_secs(10)).await;
    let status = status.unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", server.logs()));
    assert_eq!(status.code(), Some(0), "exit status {status}:\n{}", server.logs());
}

pub(crate) async fn post_grant(server: &Server, subject: &str) -> Value {
    let path = format!("/v1/subjects/{subject}/consents");
    let (status, out) = server.call(reqwest::Method::POST, &path, BOOT_KEY, Some(&grant_body())).await;
    assert_eq!(status, 201, "{out}");
    out
}

/// A data folder holding 5 events and checkpoints for 3 and for 5 events, written by `consentry serve`
/// across a restart; and the JWKS it published.
async fn served_ledger(tmp: &TempDir) -> (PathBuf, Value) {
    let data = tmp.path().join("data");
    let env = [("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)];
    let server = Server::start(&data, tmp.path(), &env).await;
    for subject in ["p1", "p2", "p3"] {
        post_grant(&server, subject).await;
    }
    let (status, jwks) = server.call(reqwest::Method::GET, "/.well-known/jwks.json", "", None).await;
    assert_eq!(status, 200, "{jwks}");
    stop(server).await;
    old_checkpoint(&data).await;
    let server = Server::start(&data, tmp.path(), &env).await;
    for subject in ["p4", "p5"] {
        post_grant(&server, subject).await;
    }
    stop(server).await;
    old_checkpoint(&data).await;
    (data, jwks)
}

/// Signs a JWS checkpoint of the ledger head with the current signing key and stores it, as builds before the
/// transparency log did at shutdown: stores keep those, and the audit still checks them (no server may be
/// running on `data`).
async fn old_checkpoint(data: &Path) {
    use consentry_core::proof::{Checkpoint, SigningKey};
    let store = open_store(data).await;
    let keys = store.signing_keys().await.expect("signing keys");
    let current = keys.iter().find(|k| k.current).expect("a current signing key");
    let key = SigningKey::from_secret(current.kid.clone(), current.secret);
    let head = store.ledger_head().await.expect("head");
    let checkpoint = Checkpoint::new(head.events, head.head.clone(), consentry_core::Timestamp::now());
    store.insert_checkpoint(head.events, &head.head, &key.sign_jws(&checkpoint)).await.expect("stored");
    store.close().await;
}

/// Opens the embedded store in `data`, waiting up to 10 s for a store this process closed just before to
/// let go of the folder's lock (closing releases it in the background).
async fn open_store(data: &Path) -> std::sync::Arc<dyn consentry_store::Store> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match consentry_store::open(consentry_store::StoreConfig::embedded(data)).await {
            Err(consentry_store::StoreError::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => return opened.expect("open"),
        }
    }
}

/// The JWKS built from the store's signing keys (no server may be running on `data`).
async fn stored_jwks(data: &Path) -> (consentry_core::proof::Jwks, Vec<consentry_store::SigningKeyRecord>) {
    let store = open_store(data).await;
    let keys = store.signing_keys().await.expect("signing keys");
    store.close().await;
    let jwks = keys.iter().map(|k| consentry_core::proof::Jwk::ed25519(k.kid.clone(), &k.public)).collect();
    (jwks, keys)
}

fn export(data: &Path) -> Vec<String> {
    let out = run(&["audit", "export", "--data", path_str(data)], &[]);
    assert!(out.status.success(), "audit export failed: {}", out.stderr);
    out.stdout.lines().map(str::to_owned).collect()
}

/// `consentry audit verify --file <lines> --jwks <jwks>`.
fn verify_file(tmp: &TempDir, name: &str, lines: &[String], jwks: &Path) -> (Run, PathBuf) {
    let file = tmp.path().join(name);
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    let out = run(&["audit", "verify", "--file", path_str(&file), "--jwks", path_str(jwks)], &[]);
    (out, file)
}

/// Asserts a failed verification that names `line` of `file` on stderr, and `kind` in its report.
#[track_caller]
fn fails_at(out: &(Run, PathBuf), line: u64, kind: &str) {
    let (out, file) = out;
    assert!(!out.status.success(), "{} verified:\n{}", file.display(), out.stdout);
    let named = format!("{}: line {line}: ", file.display());
    assert!(out.stderr.contains(&named), "stderr does not name line {line}:\n{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    assert_eq!(report["ok"], false);
    assert_eq!(
        (&report["first_bad"]["line"], &report["first_bad"]["kind"]),
        (&json!(line), &json!(kind)),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_ledger_verifies_and_each_change_is_found_by_line() {
    let tmp = TempDir::new().expect("tmp");
    let (data, served) = served_ledger(&tmp).await;
    let (from_store, _) = stored_jwks(&data).await;
    assert_eq!(
        serde_json::to_value(&from_store).expect("JSON"),
        served,
        "the served JWKS is the stored keys"
    );
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&served).expect("JSON")).expect("write");

    let good = export(&data);
    assert_eq!(good.len(), 7, "5 events, 2 checkpoints:\n{}", good.join("\n"));
    for (i, line) in good.iter().enumerate() {
        let v: Value = serde_json::from_str(line).expect("JSON line");
        if i < 5 {
            assert_eq!((&v["type"], &v["seq"]), (&json!("event"), &json!(i + 1)), "{line}");
            assert!(!line.contains("\"p1\"") && !line.contains("\"p2\""), "subject ids stay out: {line}");
        } else {
            assert_eq!(v["type"], "checkpoint", "{line}");
        }
    }
    let (out, _) = verify_file(&tmp, "ledger.jsonl", &good, &jwks);
    assert!(out.status.success(), "the export does not verify:\n{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    assert_eq!(
        (&report["ok"], &report["events"], &report["checkpoints"]),
        (&json!(true), &json!(5), &json!(2))
    );
    assert_eq!(report["first_bad"], Value::Null);

    let mut changed = good.clone();
    changed[1] = good[1].replacen(r#""purpose":"marketing.direct""#, r#""purpose":"marketing.dIrect""#, 1);
    assert_ne!(changed[1], good[1]);
    fails_at(&verify_file(&tmp, "changed.jsonl", &changed, &jwks), 2, "hash_mismatch");

    let mut removed = good.clone();
    removed.remove(2);
    fails_at(&verify_file(&tmp, "removed.jsonl", &removed, &jwks), 3, "sequence_gap");

    let mut swapped = good.clone();
    swapped.swap(1, 2);
    fails_at(&verify_file(&tmp, "swapped.jsonl", &swapped, &jwks), 2, "sequence_gap");

    let mut inserted = good.clone();
    inserted.insert(2, good[1].clone());
    fails_at(&verify_file(&tmp, "inserted.jsonl", &inserted, &jwks), 3, "sequence_gap");

    // The last two events cut off, the checkpoints kept: the one for 5 events (now line 5) finds it.
    let mut cut = good.clone();
    cut.drain(3..5);
    fails_at(&verify_file(&tmp, "cut.jsonl", &cut, &jwks), 5, "truncated");

    let mut forged = good.clone();
    let jws = serde_json::from_str::<Value>(&good[6]).expect("JSON")["jws"].as_str().expect("jws").to_owned();
    let altered = format!("{}AAAAAAAA", &jws[..jws.len() - 8]);
    assert_ne!(altered, jws);
    forged[6] = json!({"type": "checkpoint", "jws": altered}).to_string();
    fails_at(&verify_file(&tmp, "forged.jsonl", &forged, &jwks), 7, "bad_checkpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_of_a_store_names_the_changed_event() {
    let tmp = TempDir::new().expect("tmp");
    let (data, _) = served_ledger(&tmp).await;
    let d = path_str(&data);
    let out = run(&["audit", "verify", "--data", d], &[]);
    assert!(out.status.success(), "an intact store does not verify:\n{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    assert_eq!(
        (&report["ok"], &report["events"], &report["checkpoints"]),
        (&json!(true), &json!(5), &json!(2))
    );

    // Changed directly in the database, as someone with access to it could (triggers dropped first).
    let conn = rusqlite::Connection::open(data.join("consentry.db")).expect("open the data file");
    let refused = conn.execute("UPDATE events SET purpose = 'x' WHERE seq = 2", []);
    assert!(refused.is_err(), "the ledger is append-only");
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET purpose = 'X' || substr(purpose, 2) WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);

    let out = run(&["audit", "verify", "--data", d], &[]);
    assert!(!out.status.success(), "a changed event verified:\n{}", out.stdout);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    let bad = &report["first_bad"];
    assert_eq!((&bad["seq"], &bad["kind"]), (&json!(2), &json!("hash_mismatch")), "{report}");
    assert!(out.stderr.contains("event 2"), "stderr names the event:\n{}", out.stderr);
    // The sequence number is printed as a number, not as Rust's `Some(2)`.
    assert!(!out.stderr.contains("Some("), "stderr shows a Rust Option:\n{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_signing_prints_a_new_kid_that_signs_from_the_next_start() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let d = path_str(&data);
    let env = [("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)];
    let server = Server::start(&data, tmp.path(), &env).await;
    let first = post_grant(&server, "r1").await;
    stop(server).await;
    old_checkpoint(&data).await;
    let (_, before) = stored_jwks(&data).await;
    assert_eq!(before.len(), 1);
    let old_kid = before[0].kid.clone();

    let out = run(&["keys", "rotate-signing", "--data", d], &[]);
    assert!(out.status.success(), "rotate-signing failed: {}", out.stderr);
    let (jwks, after) = stored_jwks(&data).await;
    assert_eq!(after.len(), 2, "the old key stays for verification");
    let current: Vec<_> = after.iter().filter(|k| k.current).collect();
    assert_eq!(current.len(), 1);
    let new_kid = current[0].kid.clone();
    assert_ne!(new_kid, old_kid);
    assert!(out.stdout.contains(&new_kid), "the new kid is printed:\n{}", out.stdout);
    assert!(!out.stdout.contains(&old_kid), "{}", out.stdout);
    assert_eq!(jwks.find(&new_kid).and_then(|k| k.thumbprint()), Some(new_kid.clone()));

    let server = Server::start(&data, tmp.path(), &env).await;
    let (_, served) = server.call(reqwest::Method::GET, "/.well-known/jwks.json", "", None).await;
    assert_eq!(served, serde_json::to_value(&jwks).expect("JSON"), "both keys are published");
    let second = post_grant(&server, "r2").await;
    stop(server).await;
    old_checkpoint(&data).await;
    // Each receipt names the key that signs it as a JWS (`?format=jws`): the one current when it was made.
    for (out, kid) in [(&first, &old_kid), (&second, &new_kid)] {
        assert_eq!(out["receipt"]["payload"]["consentry"]["kid"].as_str(), Some(kid.as_str()), "{out}");
    }
    let jwks_file = tmp.path().join("jwks.json");
    std::fs::write(&jwks_file, serde_json::to_vec(&served).expect("JSON")).expect("write");
    let (out, _) = verify_file(&tmp, "ledger.jsonl", &export(&data), &jwks_file);
    assert!(out.status.success(), "checkpoints of both keys verify:\n{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    assert_eq!((&report["events"], &report["checkpoints"]), (&json!(2), &json!(2)));
}

/// `consentry audit verify` rebuilds the Merkle tree from the events and checks every signed tree
/// checkpoint against it; given an earlier checkpoint (`--since-checkpoint`), it finds a ledger cut back
/// with its later checkpoints removed, which nothing left in the store shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_the_tree_and_finds_a_cut_with_an_earlier_checkpoint() {
    let tmp = TempDir::new().expect("tmp");
    let (data, _) = served_ledger(&tmp).await;
    let d = path_str(&data);
    let out = run(&["audit", "verify", "--data", d], &[]);
    assert!(out.status.success(), "an intact store does not verify:\n{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    let tree = &report["tree"];
    assert_eq!((&tree["ok"], &tree["size"]), (&json!(true), &json!(5)), "{report}");
    assert!(tree["checkpoints"].as_u64().is_some_and(|n| n >= 1), "{report}");

    // The newest checkpoint, as someone kept it (a receipt carries one).
    let conn = rusqlite::Connection::open(data.join("consentry.db")).expect("open the data file");
    let note: String = conn
        .query_row("SELECT note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1", [], |r| r.get(0))
        .expect("a stored tree checkpoint");
    assert!(note.contains("\n5\n"), "signed at five events: {note}");
    let kept = tmp.path().join("kept.checkpoint");
    std::fs::write(&kept, &note).expect("write");
    let receipt = tmp.path().join("receipt.json");
    std::fs::write(&receipt, json!({"receipt": {"checkpoint": note}}).to_string()).expect("write");
    for given in [&kept, &receipt] {
        let out = run(&["audit", "verify", "--data", d, "--since-checkpoint", path_str(given)], &[]);
        assert!(out.status.success(), "the kept checkpoint does not verify:\n{}{}", out.stdout, out.stderr);
    }

    // The last two events cut off, with every checkpoint, tree node and state that named them.
    conn.execute_batch(
        "DROP TRIGGER events_no_delete; DROP TRIGGER tlog_nodes_no_delete;
         DELETE FROM consent_state WHERE seq > 3; DELETE FROM receipts WHERE last_seq > 3;
         DELETE FROM events WHERE seq > 3; DELETE FROM tlog_nodes WHERE ((idx + 1) << level) > 3;
         DELETE FROM tlog_checkpoints WHERE size > 3; DELETE FROM checkpoints WHERE events > 3;",
    )
    .expect("cut the ledger");
    drop(conn);
    let out = run(&["audit", "verify", "--data", d], &[]);
    assert!(out.status.success(), "what is left is consistent in itself:\n{}{}", out.stdout, out.stderr);
    let out = run(&["audit", "verify", "--data", d, "--since-checkpoint", path_str(&kept)], &[]);
    assert!(!out.status.success(), "a cut ledger verified against an earlier checkpoint:\n{}", out.stdout);
    let report: Value = serde_json::from_str(&out.stdout).expect("a JSON report");
    assert_eq!(report["tree"]["ok"], false, "{report}");
    assert!(out.stderr.contains("cut off the end"), "stderr says what happened:\n{}", out.stderr);

    // A forged checkpoint (another root under the genuine signature) is refused.
    let lines: Vec<&str> = note.split('\n').collect();
    let forged = note.replacen(lines[2], "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 1);
    std::fs::write(&kept, forged).expect("write");
    let out = run(&["audit", "verify", "--data", d, "--since-checkpoint", path_str(&kept)], &[]);
    assert!(!out.status.success(), "a forged checkpoint verified:\n{}", out.stdout);
    assert!(out.stderr.contains("does not verify"), "{}", out.stderr);
}
