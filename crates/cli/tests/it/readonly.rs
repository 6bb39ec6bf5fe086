//! The read-only commands beside a running server on the same data folder (SQLite WAL readers, no folder
//! lock), their refusals of a folder they cannot read, the help text, and logs without colour codes.

use consentry_service::auth::Scope;
use serde_json::json;
use tempfile::TempDir;

use crate::commands::{BOOT_KEY, Server, path_str, post_grant, run, stop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_work_while_the_server_runs() {
    let tmp = TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let env = [
        ("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY),
        ("CONSENTRY_ALLOW_PRIVATE_DESTINATIONS", "127.0.0.0/8,::1/128"),
    ];
    let server = Server::start(&data, tmp.path(), &env).await;
    let body = json!({"name": "crm", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                      "event_types": ["consent.*"]});
    let (status, d) = server.call(reqwest::Method::POST, "/v1/destinations", BOOT_KEY, Some(&body)).await;
    assert_eq!(status, 201, "{d}");
    let destination = d["id"].as_str().expect("destination id").to_owned();
    post_grant(&server, "reader-1").await;
    let dir = path_str(&data);

    let keys = run(&["keys", "list", "--data", dir], &[]);
    assert!(keys.status.success(), "keys list: {}", keys.stderr);
    assert!(keys.stdout.lines().any(|l| l.split('\t').nth(2) == Some("admin")), "{}", keys.stdout);
    assert!(!keys.stdout.contains(BOOT_KEY), "never a secret");

    let verify = run(&["audit", "verify", "--data", dir], &[]);
    assert!(verify.status.success(), "audit verify: {}", verify.stderr);
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).expect("a JSON report");
    assert_eq!(report["ok"], true, "{report}");

    let export = run(&["audit", "export", "--data", dir], &[]);
    assert!(export.status.success(), "audit export: {}", export.stderr);
    assert!(!export.stdout.lines().collect::<Vec<_>>().is_empty(), "the grant's event is exported");

    let list = run(&["destinations", "list", "--data", dir], &[]);
    assert!(list.status.success(), "destinations list: {}", list.stderr);
    assert!(list.stdout.contains(&destination), "{}", list.stdout);

    let deliveries = run(&["destinations", "deliveries", &destination, "--data", dir], &[]);
    assert!(deliveries.status.success(), "destinations deliveries: {}", deliveries.stderr);
    assert!(deliveries.stdout.contains("consent.granted"), "{}", deliveries.stdout);

    // A command that writes still finds the folder in use.
    let create = run(&["keys", "create", "--data", dir, "--name", "x", "--scope", "check"], &[]);
    assert!(!create.status.success());
    assert!(create.stderr.contains("in use by another Consentry process"), "{}", create.stderr);

    // The server goes on writing after the readers, and its logs (stderr is a file) carry no colour codes.
    post_grant(&server, "reader-2").await;
    assert!(!server.logs().contains('\u{1b}'), "ANSI escape codes in a log file:\n{}", server.logs());
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_command_never_creates_or_migrates_a_store() {
    let tmp = TempDir::new().expect("tmp");
    let missing = tmp.path().join("missing");
    let none = run(&["keys", "list", "--data", path_str(&missing)], &[]);
    assert!(!none.status.success());
    assert!(none.stderr.contains("run `consentry init` first"), "{}", none.stderr);
    assert!(!missing.exists(), "a read-only command created the folder");

    let data = tmp.path().join("data");
    let init = run(&["init", "--data", path_str(&data)], &[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)]);
    assert!(init.status.success(), "{}", init.stderr);
    let db = data.join("consentry.db");
    let set_version = |v: i64| {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.pragma_update(None, "user_version", v).expect("set user_version");
    };
    let version = || {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).expect("user_version")
    };
    let current = version();

    set_version(current - 1);
    let old = run(&["audit", "verify", "--data", path_str(&data)], &[]);
    assert!(!old.status.success());
    assert!(old.stderr.contains("older than"), "{}", old.stderr);
    assert_eq!(version(), current - 1, "a read-only command migrated the store");

    set_version(current + 1);
    let new = run(&["destinations", "list", "--data", path_str(&data)], &[]);
    assert!(!new.status.success());
    assert!(new.stderr.contains("newer than"), "{}", new.stderr);

    set_version(current);
    let fine = run(&["keys", "list", "--data", path_str(&data)], &[]);
    assert!(fine.status.success(), "{}", fine.stderr);
}

#[test]
fn keys_create_help_lists_every_scope() {
    let help = run(&["keys", "create", "--help"], &[]);
    assert!(help.status.success(), "{}", help.stderr);
    for scope in Scope::ALL {
        assert!(help.stdout.contains(scope.as_str()), "{} missing:\n{}", scope.as_str(), help.stdout);
    }
    let wrong = run(&["keys", "create", "--name", "x", "--scope", "everything"], &[]);
    assert!(!wrong.status.success());
    assert!(wrong.stderr.contains("possible values"), "{}", wrong.stderr);
}
