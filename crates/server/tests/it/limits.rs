//! Connection-level limits (security hardening 13.8): the header-read and idle timeouts, the global
//! connection limit, the per-device limit of open snapshot streams, and failed authentication limited per
//! client address (an IPv6 client by its /64). Each test configures short limits of its own; the storage
//! backend plays no part.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::utils::{ADMIN_KEY, NO_KEY, TestServer, assert_code, str_of};

/// Far longer than any limit configured here: a connection still open then was never going to close.
const GENEROUS: Duration = Duration::from_secs(8);

async fn connect(server: &TestServer) -> TcpStream {
    let addr = server.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// How long until the server closes `stream` (reading and discarding what it sends), `None` if it is
/// still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.is_ok().then(|| start.elapsed())
}

/// Sends `GET path` on `stream` (kept alive) and reads the response's status, or `None` when no complete
/// response head came within `wait`.
async fn get_on(stream: &mut TcpStream, path: &str, wait: Duration) -> Option<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let length: usize = text
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.ok()?;
        text.split(' ').nth(1)?.parse().ok()
    })
    .await;
    read.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_sending_nothing_or_part_of_a_head_is_closed_after_the_header_timeout() {
    let server = TestServer::with_config(|c| {
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 30;
    })
    .await;
    let mut silent = connect(&server).await;
    let waited = closed_within(&mut silent, GENEROUS).await.expect("a silent connection is closed");
    assert!(waited >= Duration::from_millis(900), "not before the timeout: {waited:?}");

    // Slowloris: a head trickled in, a byte every 200 ms, never finished.
    let mut slow = connect(&server).await;
    let start = Instant::now();
    let closed = tokio::time::timeout(GENEROUS, async {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        closed_within(&mut slow, GENEROUS).await;
    })
    .await;
    assert!(closed.is_ok(), "a trickled head is closed, not waited for");
    assert!(start.elapsed() < Duration::from_secs(5), "by the header timeout: {:?}", start.elapsed());

    // On a kept-alive connection the next head is timed from its first byte, under the idle timeout.
    let mut kept = connect(&server).await;
    assert_eq!(get_on(&mut kept, "/healthz", GENEROUS).await, Some(200));
    kept.write_all(b"GET /healthz HTTP/1.1\r\n").await.expect("write");
    let waited = closed_within(&mut kept, GENEROUS).await.expect("a half-sent second head is closed");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_but_a_live_stream_is_not() {
    let server = TestServer::with_config(|c| {
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 2;
    })
    .await;
    let mut kept = connect(&server).await;
    assert_eq!(get_on(&mut kept, "/healthz", GENEROUS).await, Some(200));
    let waited = closed_within(&mut kept, GENEROUS).await.expect("an idle connection is closed");
    assert!(
        waited >= Duration::from_millis(1800),
        "after the idle timeout, not the header timeout: {waited:?}"
    );

    // A device's event stream sends nothing but keep-alive comments for longer than the idle timeout,
    // and stays open.
    let (_, token) = pair(&server, "user-idle").await;
    let mut stream = open_stream(&server, &token).await;
    assert_eq!(stream.status().as_u16(), 200);
    let alive = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = stream.chunk().await.expect("a live stream") {
            assert!(!chunk.is_empty());
        }
    })
    .await;
    assert!(alive.is_err(), "the stream is still open after 5 s (2.5 idle timeouts)");
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_connection_waits_until_one_closes() {
    let server = TestServer::with_config(|c| {
        c.max_connections = 2;
        c.header_read_timeout_secs = 30;
        c.idle_timeout_secs = 30;
    })
    .await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    assert_eq!(get_on(&mut first, "/healthz", GENEROUS).await, Some(200));
    assert_eq!(get_on(&mut second, "/healthz", GENEROUS).await, Some(200));
    // The kernel completes the handshake (the backlog), but the server does not take the connection.
    let mut third = connect(&server).await;
    assert_eq!(get_on(&mut third, "/healthz", Duration::from_secs(1)).await, None, "not served while full");
    drop(first);
    let mut answer = None;
    let deadline = Instant::now() + GENEROUS;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while answer.is_none() && Instant::now() < deadline {
        // The request sent above is answered once a slot frees.
        match tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await {
            Ok(Ok(1)) => {
                head.push(byte[0]);
                if head.ends_with(b"\r\n\r\n") {
                    answer = Some(String::from_utf8_lossy(&head).to_string());
                }
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let answer = answer.expect("the waiting connection is served once one closes");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(get_on(&mut second, "/healthz", GENEROUS).await, Some(200), "the others go on");
    drop((second, third));
    server.stop().await;
}

/// Pairs a device for `subject`; returns (id, token).
async fn pair(server: &TestServer, subject: &str) -> (String, String) {
    let body = json!({"name": "Speaker", "kind": "speaker", "categories": ["user.device.telemetry"],
                      "purposes": ["analytics"]});
    let out = server.post(&format!("/v1/subjects/{subject}/devices"), ADMIN_KEY, &body, 201).await;
    (str_of(&out["id"]).to_owned(), str_of(&out["token"]).to_owned())
}

async fn open_stream(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/v1/device/consent/stream", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_holds_at_most_its_limit_of_streams_and_a_closed_one_frees_a_slot() {
    // The default limit of streams; a short idle timeout makes the keep-alive comments frequent, so the
    // server notices a closed stream within a second or two at worst.
    let server = TestServer::with_config(|c| c.idle_timeout_secs = 4).await;
    let (_, token) = pair(&server, "user-streams").await;
    let (_, other) = pair(&server, "user-streams").await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let stream = open_stream(&server, &token).await;
        assert_eq!(stream.status().as_u16(), 200, "the default limit is 4");
        open.push(stream);
    }
    let refused = open_stream(&server, &token).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.expect("a problem");
    assert_code(&problem, "too_many_streams");
    assert_eq!(open_stream(&server, &other).await.status().as_u16(), 200, "another device is not limited");

    drop(open.pop());
    let deadline = Instant::now() + GENEROUS;
    loop {
        let again = open_stream(&server, &token).await;
        if again.status().as_u16() == 200 {
            break;
        }
        assert_eq!(again.status().as_u16(), 429);
        assert!(Instant::now() < deadline, "a closed stream frees its slot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(open);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_limited_per_address() {
    let server = TestServer::with_config(|c| {
        c.auth_failures_burst = 3;
        c.auth_failures_per_minute = 60;
    })
    .await;
    for _ in 0..3 {
        server.get("/v1/catalog", "csk_guess-0123456789", 401).await;
    }
    let limited = server.send(reqwest::Method::GET, "/v1/catalog", "csk_guess-0123456789", None).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_code(&limited.json(), "too_many_failed_attempts");
    let retry: u64 = limited.headers["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Held before the credential is read: a valid key from the same address waits too.
    assert_code(&server.get("/v1/catalog", ADMIN_KEY, 429).await, "too_many_failed_attempts");
    server.get("/healthz", NO_KEY, 200).await;

    // Another address is not held.
    let elsewhere = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .expect("client");
    let reply = elsewhere
        .get(format!("{}/v1/catalog", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status().as_u16(), 200);

    // After the wait it works again, one attempt per second.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    server.get("/v1/catalog", ADMIN_KEY, 200).await;
    server.get("/v1/catalog", "csk_guess-0123456789", 401).await;
    server.get("/v1/catalog", ADMIN_KEY, 429).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_preference_centre_link_counts_as_a_failed_authentication() {
    let server = TestServer::with_config(|c| {
        c.auth_failures_burst = 2;
        c.auth_failures_per_minute = 1;
    })
    .await;
    for _ in 0..2 {
        let page = reqwest::get(format!("{}/preferences?token=forged", server.base)).await.expect("send");
        assert_eq!(page.status().as_u16(), 401, "a page saying the link is not valid");
    }
    let limited = server.get("/v1/catalog", ADMIN_KEY, 429).await;
    assert_code(&limited, "too_many_failed_attempts");
    server.stop().await;
}

/// A raw request from this host with the given `X-Forwarded-For` lines; its status.
async fn status_with_forwarded(server: &TestServer, key: &str, forwarded: &[&[u8]]) -> u16 {
    let mut stream = connect(server).await;
    let mut head =
        format!("GET /v1/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n").into_bytes();
    for line in forwarded {
        head.extend_from_slice(b"X-Forwarded-For: ");
        head.extend_from_slice(line);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    stream.write_all(&head).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(GENEROUS, stream.read_to_end(&mut answer)).await.expect("answered").expect("read");
    let text = String::from_utf8_lossy(&answer);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status line: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let server = TestServer::with_config(|c| {
        c.auth_failures_burst = 2;
        c.auth_failures_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()];
    })
    .await;
    let guess = "csk_guess-0123456789";
    // The client's own claim left of what the proxies appended is not believed; bytes that are not
    // ASCII in it spoil nothing.
    for _ in 0..2 {
        assert_eq!(status_with_forwarded(&server, guess, &[b"caf\xe9, 198.51.100.7, 10.1.2.3"]).await, 401);
    }
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"198.51.100.7"]).await, 429);
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"1.1.1.1", b"198.51.100.7:4711"]).await, 429);
    // Another client behind the same proxy is not held, nor is the proxy itself.
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"198.51.100.8"]).await, 200);
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[]).await, 200);
    // A bad hop reached before any client's address leaves the proxy's own address.
    for _ in 0..2 {
        assert_eq!(status_with_forwarded(&server, guess, &[b"198.51.100.9, unknown"]).await, 401);
    }
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[]).await, 429);
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"198.51.100.9"]).await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let server = TestServer::with_config(|c| {
        c.auth_failures_burst = 2;
        c.auth_failures_per_minute = 1;
    })
    .await;
    for n in 0..2 {
        let claim = format!("198.51.100.{n}");
        assert_eq!(status_with_forwarded(&server, "csk_guess-0123456789", &[claim.as_bytes()]).await, 401);
    }
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"198.51.100.200"]).await, 429);
    server.stop().await;
}

/// An IPv6 client is counted by its /64, the block one subscriber holds and picks addresses from: failures
/// from two addresses of one /64 share one budget, while another /64 has its own (as the verification
/// limits count it, by the same address block).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_is_limited_by_its_64() {
    let server = TestServer::with_config(|c| {
        c.auth_failures_burst = 2;
        c.auth_failures_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let guess = "csk_guess-0123456789";
    assert_eq!(status_with_forwarded(&server, guess, &[b"2001:db8:1:2::1"]).await, 401);
    assert_eq!(
        status_with_forwarded(&server, guess, &[b"[2001:db8:1:2:ffff:ffff:ffff:fffe]:4711"]).await,
        401
    );
    // The budget of 2001:db8:1:2::/64 is spent, whichever of its addresses asks next.
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"2001:db8:1:2::abcd"]).await, 429);
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"2001:db8:1:2::1"]).await, 429);
    // The next /64 is someone else.
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"2001:db8:1:3::1"]).await, 200);
    assert_eq!(status_with_forwarded(&server, guess, &[b"2001:db8:1:3::1"]).await, 401);
    assert_eq!(status_with_forwarded(&server, ADMIN_KEY, &[b"2001:db8:1:3::2"]).await, 200);
    server.stop().await;
}
