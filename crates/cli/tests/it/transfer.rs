//! `consentry import` and `consentry export consents` on a data folder: the summary and the error file,
//! nothing imported twice, a run killed half-way then resumed, and the export in the format the import
//! reads; and `consentry import --url --key` through a running server.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::commands::{BOOT_KEY, Server, path_str, run, stop};

fn line(source_id: &str, subject: &str, action: &str) -> String {
    let mut l = json!({"source_id": source_id, "subject": subject, "purpose": "analytics", "action": action,
                       "occurred_at": "2023-03-01T12:00:00Z"});
    if action == "grant" {
        l["notice"] = json!({"key": "analytics"});
    }
    format!("{l}\n")
}

fn init(data: &std::path::Path) {
    let init = run(&["init", "--data", path_str(data)], &[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", BOOT_KEY)]);
    assert!(init.status.success(), "{}", init.stderr);
}

#[test]
fn import_reports_bad_lines_and_never_imports_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    init(&data);
    let file = dir.path().join("consents.jsonl");
    let text = [
        line("a1", "ana", "grant"),
        "{this is not json\n".to_owned(),
        line("a2", "ana", "withdraw"),
        line("a3", "bo", "dance"),
        line("a4", "bo", "grant"),
    ]
    .concat();
    std::fs::write(&file, text).expect("write");
    let args = ["import", "--data", path_str(&data), "--file", path_str(&file), "--source", "ot"];
    let first = run(&args, &[]);
    assert!(first.status.success(), "{}", first.stderr);
    assert!(
        first.stdout.contains("5 lines: 3 imported, 0 already imported before, 2 refused"),
        "{}",
        first.stdout
    );
    let errors = std::fs::read_to_string(dir.path().join("consents.jsonl.errors.jsonl")).expect("error file");
    let errors: Vec<(u64, String)> = errors
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .map(|e| (e["line"].as_u64().expect("line"), e["reason"].as_str().expect("reason").to_owned()))
        .collect();
    assert_eq!(errors, [(2, "malformed_json".to_owned()), (4, "unknown_action".to_owned())]);
    let again = run(&args, &[]);
    assert!(again.stdout.contains("0 imported, 3 already imported before, 2 refused"), "{}", again.stdout);
    // Strict: one bad line, nothing imported, a failing exit.
    let strict = run(&[&args[..], &["--strict"]].concat(), &[]);
    assert!(!strict.status.success());
    assert!(strict.stdout.contains("nothing was imported"), "{}", strict.stdout);

    let export = run(&["export", "consents", "--data", path_str(&data), "--history"], &[]);
    assert!(export.status.success(), "{}", export.stderr);
    let lines: Vec<Value> =
        export.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["occurred_at"] == "2023-03-01T12:00:00.000000Z"), "{lines:?}");
}

#[test]
fn an_import_killed_half_way_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    init(&data);
    let file = dir.path().join("many.jsonl");
    let n = 60_000;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
    for i in 0..n {
        out.write_all(line(&format!("m{i}"), &format!("s{}", i % 5_000), "withdraw").as_bytes())
            .expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    let args = ["import", "--data", path_str(&data), "--file", path_str(&file), "--source", "big"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Killed (SIGKILL) once part of the file is in, as a crash would.
    let events = || {
        let conn = rusqlite::Connection::open(data.join("consentry.db")).expect("open");
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while events() == 0 && std::time::Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let before = events();
    let resumed = run(&args, &[]);
    assert!(resumed.status.success(), "{}", resumed.stderr);
    assert!(
        resumed.stdout.contains(&format!("{before} already imported before")),
        "{before}: {}",
        resumed.stdout
    );
    assert_eq!(events(), n, "every line once");
    let verify = run(&["audit", "verify", "--data", path_str(&data)], &[]);
    assert!(verify.status.success(), "{}", verify.stderr);
}

/// `consentry import --url URL --key KEY` streams the file to a running `consentry serve`: the server's
/// report as the summary, its refused lines in the error file, each change once however often it is run,
/// the changes in the server's state; a key the server does not know fails the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_a_running_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    init(&data);
    let server = Server::start(&data, dir.path(), &[]).await;
    let file = dir.path().join("remote.jsonl");
    let text =
        [line("r1", "ana", "grant"), "{this is not json\n".to_owned(), line("r2", "bo", "withdraw")].concat();
    std::fs::write(&file, text).expect("write");
    let url = server.base().to_owned();
    let args = ["import", "--url", &url, "--key", BOOT_KEY, "--file", path_str(&file), "--source", "ot"];
    let first = run(&args, &[]);
    assert!(first.status.success(), "{}\n{}", first.stderr, server.logs());
    assert!(
        first.stdout.contains("3 lines: 2 imported, 0 already imported before, 1 refused"),
        "{}",
        first.stdout
    );
    let errors = std::fs::read_to_string(dir.path().join("remote.jsonl.errors.jsonl")).expect("error file");
    let errors: Vec<Value> = errors.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((&errors[0]["line"], &errors[0]["reason"]), (&json!(2), &json!("malformed_json")));
    let again = run(&args, &[]);
    assert!(again.stdout.contains("0 imported, 2 already imported before, 1 refused"), "{}", again.stdout);
    let (status, ana) = server.call(reqwest::Method::GET, "/v1/subjects/ana/consents", BOOT_KEY, None).await;
    assert_eq!(status, 200, "{ana}");
    let statements = ana["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{ana}");
    assert_eq!((&statements[0]["action"], &statements[0]["actor"]), (&json!("grant"), &json!("import:ot")));
    let wrong = run(&["import", "--url", &url, "--key", "csk_not_a_key", "--file", path_str(&file)], &[]);
    assert!(!wrong.status.success());
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    // A file still going out when the server refuses the key (and may close the connection): the refusal
    // is what the operator reads, not a broken pipe.
    let big = dir.path().join("big.jsonl");
    std::fs::write(&big, line("r9", "cy", "grant").repeat(64 * 1024)).expect("write");
    let wrong = run(&["import", "--url", &url, "--key", "csk_not_a_key", "--file", path_str(&big)], &[]);
    assert!(!wrong.status.success());
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    stop(server).await;
}
