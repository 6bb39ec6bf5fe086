//! A real SMTP server on loopback for the tests: Python's `aiosmtpd` (`fixtures/smtp_sink.py`), each
//! message it accepts a file in a folder of its own, read back here. Missing Python or `aiosmtpd` skips
//! the test with a notice (a failure under `CONSENTRY_REQUIRE_SERVICES=1`); `.ci/run` installs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/smtp_sink.py");

/// A running SMTP sink; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// One message as received: the envelope's recipients and the message's text.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub text: String,
}

impl Mail {
    /// The 6-digit code in the subject line (`Your code: 012345`).
    pub fn code(&self) -> String {
        let subject = self
            .text
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or_else(|| panic!("no subject: {}", self.text));
        let code: String = subject.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "a 6-digit code in {subject:?}");
        code
    }
}

impl SmtpSink {
    /// Starts a sink on a free loopback port; `None` (after the notice) when Python or aiosmtpd is missing.
    pub fn start() -> Option<Self> {
        let probe = Command::new("python3").args(["-c", "import aiosmtpd"]).status();
        if !probe.is_ok_and(|s| s.success()) {
            consentry_store::testing::unreachable_service(
                "an SMTP server (Python's aiosmtpd)",
                "install it: python3 -m pip install aiosmtpd",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("the sink says it is ready");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Some(Self { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read the sink's folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let raw = std::fs::read_to_string(&p).expect("read a message");
                let (first, text) = raw.split_once("\r\n").expect("the envelope line");
                Mail { to: first.trim_start_matches("X-Envelope-To: ").to_owned(), text: text.to_owned() }
            })
            .collect()
    }

    /// Waits (up to 15 s) until `n` messages have arrived, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < until, "{n} mail(s) expected, {} arrived", mails.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
