//! Test harness: a real Consentry server in-process on a random port, on either storage backend, and a
//! small client for it.

use std::time::Duration;

use consentry_server::Config;
use consentry_store::StoreConfig;
use consentry_store::testing::TestDatabase;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The bootstrap admin key of every test server: 40 printable characters, so none is generated or printed.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789-abcdefghijklmn";
/// Pass as the key to send no `Authorization` header at all.
pub const NO_KEY: &str = "";

const _: () = assert!(ADMIN_KEY.len() == 40);

/// The storage backend a test server runs on. A PostgreSQL backend owns a fresh database of its own,
/// dropped when the last server on it has stopped and the backend itself is dropped.
#[derive(Debug)]
pub enum Backend {
    /// The embedded SQLite store in the server's data folder.
    Embedded,
    /// PostgreSQL, in this database.
    Postgres(TestDatabase),
}

/// Defines, for each named `async fn name(backend: Backend)` in scope, a module `name` with two tests:
/// `name::embedded` and `name::postgres` (skipped with a notice when PostgreSQL is unreachable, a failure
/// under `CONSENTRY_REQUIRE_SERVICES=1`).
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::utils::Backend::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = ::consentry_store::testing::TestDatabase::create().await else { return };
                super::$name($crate::utils::Backend::Postgres(db)).await;
            }
        }
    )+};
}
pub(crate) use both_backends;

/// Where a server keeps its state: a data folder, and the backend. [`TestServer::stop`] hands it back so
/// that a new server can start on the same state with [`TestServer::start_in`].
#[derive(Debug)]
pub struct Storage {
    dir: TempDir,
    backend: Backend,
}

impl Storage {
    /// Fresh, empty storage on `backend`.
    pub fn new(backend: Backend) -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir"), backend }
    }

    /// A copy of this storage, left by a stopped server: the data folder's files and, on PostgreSQL, the
    /// database (what restoring a backup of it gives).
    pub async fn duplicate(&self) -> Self {
        fn copy(from: &std::path::Path, to: &std::path::Path) {
            std::fs::create_dir_all(to).expect("create a folder");
            for entry in std::fs::read_dir(from).expect("read a folder") {
                let entry = entry.expect("a folder entry");
                let target = to.join(entry.file_name());
                if entry.file_type().expect("a file type").is_dir() {
                    copy(&entry.path(), &target);
                } else {
                    std::fs::copy(entry.path(), &target).expect("copy a file");
                }
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        copy(self.dir.path(), dir.path());
        let backend = match &self.backend {
            Backend::Embedded => Backend::Embedded,
            Backend::Postgres(db) => Backend::Postgres(db.copy().await),
        };
        Self { dir, backend }
    }

    /// The store configuration for opening this storage directly (no server may be running on an
    /// embedded one).
    pub fn store_config(&self) -> StoreConfig {
        match &self.backend {
            Backend::Embedded => StoreConfig::embedded(self.dir.path().join("data")),
            Backend::Postgres(db) => StoreConfig::postgres(db.url.clone()),
        }
    }

    /// The data folder (the embedded store's files, the key file).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The PostgreSQL database, when on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        match &self.backend {
            Backend::Embedded => None,
            Backend::Postgres(db) => Some(&db.url),
        }
    }

    /// Points `config` at this storage.
    pub fn configure(&self, config: &mut Config) {
        config.data = self.dir.path().join("data");
        config.database_url = match &self.backend {
            Backend::Embedded => None,
            Backend::Postgres(db) => Some(db.url.clone()),
        };
    }
}

/// A running server on `127.0.0.1:<random>` with storage of its own.
pub struct TestServer {
    pub base: String,
    /// The running server's state, for tests that drive a worker with a clock of their own.
    pub state: consentry_service::Services,
    client: reqwest::Client,
    task: JoinHandle<std::io::Result<()>>,
    /// Signals shutdown when dropped: a server dropped without [`TestServer::stop`] starts to stop before
    /// its storage (declared after it, so dropped after it) goes.
    shutdown: DropGuard,
    storage: Storage,
}

/// A response as received, before any interpretation.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        if self.text.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.text))
    }
}

impl TestServer {
    /// A server on the embedded store, with `adjust` applied to the configuration.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::with_config_on(Backend::Embedded, adjust).await
    }

    /// A server on fresh storage on `backend` with the default configuration.
    pub async fn start_on(backend: Backend) -> Self {
        Self::with_config_on(backend, |_| {}).await
    }

    /// A server on fresh storage on `backend`, with `adjust` applied to the configuration.
    pub async fn with_config_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(Storage::new(backend), adjust).await
    }

    /// A server on `storage` (fresh, or left by an earlier server's [`TestServer::stop`]).
    pub async fn start_in(storage: Storage, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            // The tests' receivers and brokers listen on loopback, which a fresh install refuses.
            allow_private_destinations: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            // Every test client is 127.0.0.1, and some send hundreds of bad credentials on purpose (the
            // scopes matrix): failed authentication is limited here only where a test asks for it
            // (limits.rs), as the production default would refuse them.
            auth_failures_burst: 100_000,
            auth_failures_per_minute: 60_000,
            ..Config::default()
        };
        storage.configure(&mut config);
        adjust(&mut config);
        config.validate().expect("test configuration is valid");
        let opened = consentry_server::open(config).await.expect("the server opens");
        assert!(opened.generated_admin_key.is_none(), "a bootstrap key was given, so none is generated");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let token = CancellationToken::new();
        let state = opened.state.clone();
        let task = tokio::spawn(consentry_server::serve(opened.state, listener, token.clone()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self { base: format!("http://{addr}"), state, client, task, shutdown: token.drop_guard(), storage }
    }

    /// The storage this server runs on (to inspect its files or tables while it runs).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Signals shutdown, waits for the server to finish (and close its store), and hands back the storage.
    pub async fn stop(self) -> Storage {
        let Self { client, task, shutdown, storage, .. } = self;
        drop(client);
        drop(shutdown);
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the server stops within its drain bound")
            .expect("the server task does not panic")
            .expect("the server ends without an I/O error");
        storage
    }

    /// Sends one request; `key` empty sends no credentials; `body` is (content type, bytes).
    /// Every response must be below 500, and every error must be a well-formed problem document.
    pub async fn send(&self, method: Method, path: &str, key: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if !key.is_empty() {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some((content_type, bytes)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_else(|e| panic!("{method} {path}: body: {e}"));
        let reply = Reply { status, headers, text };
        assert!(status < 500, "{method} {path} answered {status}: {}", reply.text);
        if status >= 400 {
            assert_problem_shape(&reply, &format!("{method} {path}"));
        }
        reply
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<(&str, Vec<u8>)>,
        status: u16,
    ) -> Value {
        let reply = self.send(method.clone(), path, key, body).await;
        assert_eq!(reply.status, status, "{method} {path}: unexpected status; body: {}", reply.text);
        reply.json()
    }

    pub async fn get(&self, path: &str, key: &str, status: u16) -> Value {
        self.expect(Method::GET, path, key, None, status).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value, status: u16) -> Value {
        self.expect(Method::POST, path, key, Some(json_body(body)), status).await
    }

    pub async fn put(&self, path: &str, key: &str, body: &Value, status: u16) -> Value {
        self.expect(Method::PUT, path, key, Some(json_body(body)), status).await
    }

    pub async fn delete(&self, path: &str, key: &str, status: u16) -> Value {
        self.expect(Method::DELETE, path, key, None, status).await
    }

    /// A request with a body sent exactly as given.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
        status: u16,
    ) -> Value {
        self.expect(method, path, key, Some((content_type, body.into())), status).await
    }

    /// `POST /v1/check` for one subject, purpose and optional channel, expecting 200.
    pub async fn check(&self, subject: &str, purpose: &str, channel: Option<&str>) -> Value {
        let mut body = json!({"subject": subject, "purpose": purpose});
        if let Some(channel) = channel {
            body["channel"] = json!(channel);
        }
        self.post("/v1/check", ADMIN_KEY, &body, 200).await
    }

    /// Records `body` for `subject`, expecting 201; returns the events.
    pub async fn record(&self, subject: &str, body: &Value) -> Vec<Value> {
        let out = self.post(&format!("/v1/subjects/{subject}/consents"), ADMIN_KEY, body, 201).await;
        out["events"].as_array().expect("events").clone()
    }

    /// Creates a key with `scopes`; returns (id, secret).
    pub async fn create_key(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let out = self.post("/v1/keys", ADMIN_KEY, &json!({"name": name, "scopes": scopes}), 201).await;
        (str_of(&out["id"]).to_owned(), str_of(&out["key"]).to_owned())
    }
}

fn json_body(body: &Value) -> (&'static str, Vec<u8>) {
    ("application/json", serde_json::to_vec(body).expect("serialise"))
}

/// A grant of `purpose` on `channels`, under the purpose's own notice.
pub fn grant(purpose: &str, channels: &[&str]) -> Value {
    json!({
        "notice": purpose,
        "collection_point": "web-signup",
        "changes": [{"purpose": purpose, "action": "grant", "channels": channels}],
    })
}

/// A withdrawal of `purpose` as a whole.
pub fn withdraw(purpose: &str) -> Value {
    json!({"changes": [{"purpose": purpose, "action": "withdraw"}]})
}

/// A check's `(allowed, reason)`: `body` posted to `/v1/check` with the admin key.
pub async fn decided(s: &TestServer, body: Value) -> (bool, String) {
    let d = s.post("/v1/check", ADMIN_KEY, &body, 200).await;
    (d["allowed"].as_bool().expect("allowed"), str_of(&d["reason"]).to_owned())
}

/// The `(allowed, reason)` a check is expected to answer, to compare with [`decided`].
pub fn answer(allowed: bool, reason: &str) -> (bool, String) {
    (allowed, reason.to_owned())
}

pub fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// Asserts the RFC 9457 shape every error must have.
fn assert_problem_shape(reply: &Reply, what: &str) {
    assert!(
        reply.content_type().starts_with("application/problem+json"),
        "{what}: error {} has content type {:?}, not application/problem+json; body: {:?}",
        reply.status,
        reply.content_type(),
        reply.text
    );
    let p: Value = serde_json::from_str(&reply.text)
        .unwrap_or_else(|e| panic!("{what}: problem body is not JSON ({e}): {:?}", reply.text));
    for field in ["type", "title", "detail", "code"] {
        assert!(p[field].is_string(), "{what}: problem lacks a string `{field}`: {p}");
    }
    assert_eq!(p["status"].as_u64(), Some(u64::from(reply.status)), "{what}: problem status: {p}");
    assert_eq!(
        str_of(&p["type"]),
        format!("urn:consentry:problem:{}", str_of(&p["code"])),
        "{what}: problem type names its code"
    );
}

/// Asserts that `problem` carries `code`.
pub fn assert_code(problem: &Value, code: &str) {
    assert_eq!(problem["code"].as_str(), Some(code), "problem: {problem}");
}

/// The route an access-log entry names for minting a subject token.
pub const MINT_ROUTE: &str = "POST /v1/subjects/{subject}/tokens";
/// The route an access-log entry names for reading the access log.
pub const ACCESS_LOG_ROUTE: &str = "GET /v1/subjects/{subject}/access-log";

/// The subject's access-log entries (caller, route, purpose), newest first, without the admin's reads of
/// the log itself (each poll is one), once there are at least `n` (polled for up to 5 s).
pub async fn access_entries(s: &TestServer, subject: &str, n: usize) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.get(&format!("/v1/subjects/{subject}/access-log?limit=1000"), ADMIN_KEY, 200).await;
        let found: Vec<(String, String, String)> = log["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| !(e["caller"] == "admin" && e["route"] == ACCESS_LOG_ROUTE))
            .map(|e| {
                (
                    str_of(&e["caller"]).to_owned(),
                    str_of(&e["route"]).to_owned(),
                    str_of(&e["purpose"]).to_owned(),
                )
            })
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} access-log entries did not appear within 5 s: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn entry(caller: &str, route: &str, purpose: &str) -> (String, String, String) {
    (caller.to_owned(), route.to_owned(), purpose.to_owned())
}

/// Where any of `needles` is at rest in `s`'s storage: every file under its data folder (recursively), and
/// on PostgreSQL every table of the data and key-store schemas (each row as text, so also bytea in hex,
/// which is looked for too). Names the files and `schema.table`s found.
pub async fn at_rest(s: &TestServer, needles: &[Vec<u8>]) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("data folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let hexes: Vec<Vec<u8>> = needles
        .iter()
        .map(|n| n.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes())
        .collect();
    let holds = |bytes: &[u8], with_hex: bool| {
        let hex = if with_hex { hexes.as_slice() } else { &[] };
        needles.iter().chain(hex).any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
    };
    let mut files = Vec::new();
    walk(&s.storage().data_dir(), &mut files);
    let mut found: Vec<String> = files
        .into_iter()
        .filter(|f| holds(&std::fs::read(f).expect("read"), false))
        .map(|f| f.display().to_string())
        .collect();
    if let Some(url) = s.storage().database_url() {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT schemaname::text, tablename::text FROM pg_tables
             WHERE schemaname IN ('public', 'consentry_keystore')",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        assert!(tables.iter().any(|(_, t)| t == "records"), "the scan sees the data tables: {tables:?}");
        for (schema, table) in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {schema}.{table} t"))
                .fetch_all(&pool)
                .await
                .expect("rows");
            if rows.iter().any(|r| holds(r.as_bytes(), true)) {
                found.push(format!("{schema}.{table}"));
            }
        }
        pool.close().await;
    }
    found
}

/// A paused destination taking `event_types`: the outbox stores only messages some destination wants, and
/// a paused one leaves them there to be read ([`outbox`]).
pub async fn paused_destination(s: &TestServer, event_types: &[&str]) {
    let body = json!({"name": "paused", "kind": "webhook", "url": "https://example.com/paused",
                      "event_types": event_types});
    let id = str_of(&s.post("/v1/destinations", ADMIN_KEY, &body, 201).await["id"]).to_owned();
    let pause = serde_json::to_vec(&json!({"paused": true})).expect("json");
    let path = format!("/v1/destinations/{id}");
    let paused = s.send(Method::PATCH, &path, ADMIN_KEY, Some(("application/json", pause))).await;
    assert_eq!(paused.status, 200);
}

/// The outbox's `(event type, payload)` rows, read straight from the store the server runs on (a consent
/// message's payload is its decision: the dispatcher builds the rest from the ledger event).
pub async fn outbox(s: &TestServer) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> = match s.storage().database_url() {
        None => {
            let path = s.storage().data_dir().join("consentry.db");
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("open the data file");
            let mut stmt =
                conn.prepare("SELECT event_type, payload FROM outbox ORDER BY id").expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .map(|r| r.expect("row"))
                .collect()
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let rows = sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("outbox");
            pool.close().await;
            rows
        }
    };
    rows.into_iter().map(|(t, p)| (t, serde_json::from_str(&p).expect("payload is JSON"))).collect()
}

/// A node of a cluster on one PostgreSQL database, served on its own loopback port.
pub struct Node {
    pub base: String,
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    pub async fn start(url: &str) -> Self {
        Self::start_with(url, None).await
    }

    /// A node beside `s` (on PostgreSQL), with its key-encryption key; `None` on the embedded store.
    pub async fn beside(s: &TestServer) -> Option<Self> {
        let url = s.storage().database_url()?.to_owned();
        Some(Self::start_with(&url, Some(s.storage().data_dir().join("kek"))).await)
    }

    async fn start_with(url: &str, kek_file: Option<std::path::PathBuf>) -> Self {
        let config = consentry_server::Config {
            data: std::env::temp_dir(),
            kek_file,
            database_url: Some(url.to_owned()),
            database_max_connections: 4,
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            shutdown_timeout_secs: 5,
            ..consentry_server::Config::default()
        };
        let opened = consentry_server::open(config).await.expect("node opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(consentry_server::serve(opened.state, listener, shutdown.clone()));
        Self { base, shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
