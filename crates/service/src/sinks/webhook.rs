//! HTTP webhooks signed by the Standard Webhooks scheme.
//!
//! Each delivery is a POST of the CloudEvent with `content-type: application/cloudevents+json` and the
//! headers `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix seconds of this
//! attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. Secrets are shown
//! to people as `whsec_` + base64 of the key bytes, so receivers can use any Standard Webhooks library.
//!
//! A webhook reaches only addresses its [`AddressPolicy`] permits: an IP literal is checked here before
//! each send, a name by the client's [`crate::egress::Resolver`], which hands the connector nothing else.
//! Failures are recorded coarsely (`timeout`, `connection_failed`, `http_status <code>`,
//! `refused_address`, `invalid_url`) so that delivery errors do not map the network for whoever reads
//! them; the details go to the operator's log.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;

use super::{OutgoingEvent, Sink, SinkError};
use crate::egress::{AddressPolicy, caused_by_refusal};

/// What a shown secret starts with.
const SECRET_PREFIX: &str = "whsec_";
/// Key lengths the Standard Webhooks specification allows (24 to 64 bytes); new secrets use 32.
const SECRET_LENGTHS: std::ops::RangeInclusive<usize> = 24..=64;

/// Base64 that accepts secrets with or without their `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Delivers events to one HTTP endpoint.
#[derive(Clone)]
pub struct WebhookSink {
    /// `None` when the configured URL does not parse: every send then fails permanently.
    url: Option<reqwest::Url>,
    secret: Vec<u8>,
    timeout: Duration,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path and query may carry a receiver's token, so only the origin is shown; never the secret.
        f.debug_struct("WebhookSink")
            .field("origin", &self.url.as_ref().map(|u| u.origin().ascii_serialization()))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url` (an absolute `http(s)://` URL; any other makes every send fail
    /// permanently), signing with the key bytes `secret`, giving up on an attempt after `timeout`. `client`
    /// is shared between sinks; build it without redirects (`reqwest::redirect::Policy::none()`), since the
    /// specification counts a 3xx as a failure, without proxies, and with the DNS resolver
    /// [`crate::egress::Resolver`] of the same `policy`, which this sink applies to IP literals.
    pub fn new(
        url: impl AsRef<str>,
        secret: Vec<u8>,
        timeout: Duration,
        client: reqwest::Client,
        policy: Arc<AddressPolicy>,
    ) -> Self {
        let url = reqwest::Url::parse(url.as_ref()).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        Self { url, secret, timeout, client, policy }
    }

    /// Refuses a URL with credentials, or whose host is an IP literal the policy does not permit.
    fn check(&self, url: &reqwest::Url) -> Result<(), SinkError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SinkError::Permanent("invalid_url".to_owned()));
        }
        let host = url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        if let Some(ip) = literal.filter(|ip| !self.policy.permits(*ip)) {
            tracing::warn!(address = %ip, "a webhook points at a refused address");
            return Err(SinkError::Permanent("refused_address".to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn send(&self, event: &OutgoingEvent) -> Result<(), SinkError> {
        let Some(url) = &self.url else {
            return Err(SinkError::Permanent("invalid_url".to_owned()));
        };
        self.check(url)?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&self.secret, &event.id, timestamp, &event.body);
        let response = self
            .client
            .post(url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/cloudevents+json")
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.body.clone())
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SinkError::Retryable(format!("http_status {}", status.as_u16())))
        }
    }
}

/// A coarse reason for a failed request: whoever reads deliveries must not learn which ports are open or
/// what a host answered. The details go to the log, without the URL (which may hold a token).
fn classify(error: reqwest::Error) -> SinkError {
    let error = error.without_url();
    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "a webhook request failed");
    if caused_by_refusal(&error) {
        return SinkError::Permanent("refused_address".to_owned());
    }
    if error.is_builder() {
        // An event id or URL that cannot go into a request: trying again sends the same.
        return SinkError::Permanent("invalid_request".to_owned());
    }
    let reason = if error.is_timeout() { "timeout" } else { "connection_failed" };
    SinkError::Retryable(reason.to_owned())
}

/// The `webhook-signature` value for one attempt: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A new random signing key (32 bytes): its bytes and the `whsec_...` text to show once. Fails only when
/// the operating system has no randomness to give.
pub fn new_secret() -> Result<(Vec<u8>, String), consentry_store::StoreError> {
    let key: [u8; 32] = consentry_store::random_bytes()?;
    Ok((key.to_vec(), format!("{SECRET_PREFIX}{}", STANDARD.encode(key))))
}

/// The key bytes of a `whsec_` + base64 secret (padding optional), or `None` when `text` is not one or its
/// key is not 24 to 64 bytes long.
pub fn parse_secret(text: &str) -> Option<Vec<u8>> {
    let encoded = text.trim().strip_prefix(SECRET_PREFIX)?;
    let key = LENIENT.decode(encoded).ok()?;
    SECRET_LENGTHS.contains(&key.len()).then_some(key)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use tokio::sync::mpsc;

    use super::*;
    use crate::sinks::tests::event;

    /// What the test receiver saw.
    struct Received {
        headers: HeaderMap,
        body: Bytes,
    }

    /// How the test receiver answers.
    #[derive(Clone, Copy)]
    enum Answer {
        Status(StatusCode),
        Hang,
    }

    #[derive(Clone)]
    struct Receiver {
        seen: mpsc::UnboundedSender<Received>,
        answer: Answer,
    }

    async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let _ = r.seen.send(Received { headers, body });
        match r.answer {
            Answer::Status(status) => status,
            Answer::Hang => std::future::pending().await,
        }
    }

    /// Starts a receiver on 127.0.0.1:0; returns its URL, what it receives and its task.
    async fn receiver(
        answer: Answer,
    ) -> (reqwest::Url, mpsc::UnboundedReceiver<Received>, tokio::task::JoinHandle<()>) {
        let (seen, rx) = mpsc::unbounded_channel();
        let app = Router::new().route("/hook", post(receive)).with_state(Arc::new(Receiver { seen, answer }));
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = reqwest::Url::parse(&format!("http://{addr}/hook")).unwrap_or_else(|e| panic!("url: {e}"));
        (url, rx, task)
    }

    /// A policy letting the tests reach their receivers on loopback.
    fn loopback() -> Arc<AddressPolicy> {
        Arc::new(AddressPolicy::parse(&["127.0.0.0/8", "::1/128"]).unwrap_or_else(|e| panic!("{e}")))
    }

    fn client_for(policy: &Arc<AddressPolicy>) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(crate::egress::Resolver(Arc::clone(policy))))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    }

    fn client() -> reqwest::Client {
        client_for(&loopback())
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap_or_else(|e| panic!("header {name}: {e}"))
    }

    #[tokio::test]
    async fn a_2xx_is_success_and_the_signature_verifies_independently() {
        let (url, mut seen, server) = receiver(Answer::Status(StatusCode::NO_CONTENT)).await;
        let (key, text) = new_secret().unwrap_or_else(|e| panic!("secret: {e}"));
        assert!(text.starts_with("whsec_"));
        assert_eq!(parse_secret(&text).as_deref(), Some(key.as_slice()));
        let sink = WebhookSink::new(url, key.clone(), Duration::from_secs(5), client(), loopback());
        let event = event("evt_01");

        sink.send(&event).await.unwrap_or_else(|e| panic!("send: {e}"));

        let got = seen.recv().await.unwrap_or_else(|| panic!("the receiver saw nothing"));
        assert_eq!(got.body.as_ref(), event.body.as_slice());
        assert_eq!(header(&got.headers, "content-type"), "application/cloudevents+json");
        assert_eq!(header(&got.headers, "webhook-id"), "evt_01");
        let timestamp: i64 =
            header(&got.headers, "webhook-timestamp").parse().unwrap_or_else(|e| panic!("timestamp: {e}"));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - timestamp).abs() <= 60, "timestamp {timestamp} is not now ({now})");

        // Recompute the signature without `sign`: HMAC-SHA256 over exactly `id.timestamp.body`.
        let mut signed = format!("evt_01.{timestamp}.").into_bytes();
        signed.extend_from_slice(&got.body);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!());
        mac.update(&signed);
        let signature = header(&got.headers, "webhook-signature");
        let encoded = signature.strip_prefix("v1,").unwrap_or_else(|| panic!("not a v1 signature"));
        let bytes = STANDARD.decode(encoded).unwrap_or_else(|e| panic!("signature base64: {e}"));
        mac.verify_slice(&bytes).unwrap_or_else(|_| panic!("the signature does not verify"));
        server.abort();
    }

    #[tokio::test]
    async fn an_error_status_is_retryable_and_names_only_the_status() {
        let (url, _seen, server) = receiver(Answer::Status(StatusCode::INTERNAL_SERVER_ERROR)).await;
        let (key, text) = new_secret().unwrap_or_else(|e| panic!("secret: {e}"));
        let sink = WebhookSink::new(url, key, Duration::from_secs(5), client(), loopback());
        let err = sink.send(&event("evt_02")).await.err().unwrap_or_else(|| panic!("a 500 was accepted"));
        assert_eq!(err, SinkError::Retryable("http_status 500".to_owned()));
        let message = err.to_string();
        assert!(
            !message.contains(&text) && !message.contains("specversion") && !message.contains("127.0.0.1")
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_hanging_receiver_times_out_as_retryable() {
        let (url, mut seen, server) = receiver(Answer::Hang).await;
        let key = vec![3; 32];
        let sink = WebhookSink::new(url, key, Duration::from_millis(200), client(), loopback());
        let started = Instant::now();
        let err = sink.send(&event("evt_03")).await.err().unwrap_or_else(|| panic!("a hang was accepted"));
        assert_eq!(err, SinkError::Retryable("timeout".to_owned()));
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(seen.recv().await.is_some(), "the request reached the receiver");
        server.abort();
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retryable() {
        // A port that was just free: nothing listens there now.
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}"));
        drop(listener);
        let url = reqwest::Url::parse(&format!("http://{addr}/hook")).unwrap_or_else(|e| panic!("url: {e}"));
        let sink = WebhookSink::new(url, vec![7; 32], Duration::from_secs(5), client(), loopback());
        let err = sink.send(&event("evt_04")).await.err().unwrap_or_else(|| panic!("nothing listens"));
        assert_eq!(err, SinkError::Retryable("connection_failed".to_owned()));
    }

    #[tokio::test]
    async fn refused_addresses_are_never_connected_to() {
        let (url, mut seen, server) = receiver(Answer::Status(StatusCode::NO_CONTENT)).await;
        let port = url.port().unwrap_or_else(|| panic!("port"));
        let closed = Arc::new(AddressPolicy::default());
        for target in [
            format!("http://127.0.0.1:{port}/hook"),
            format!("http://2130706433:{port}/hook"),
            format!("http://127.1:{port}/hook"),
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            format!("http://localhost:{port}/hook"),
        ] {
            let sink = WebhookSink::new(
                &target,
                vec![1; 32],
                Duration::from_secs(5),
                client_for(&closed),
                Arc::clone(&closed),
            );
            let err = sink.send(&event("evt_06")).await.err().unwrap_or_else(|| panic!("{target} accepted"));
            assert_eq!(err, SinkError::Permanent("refused_address".to_owned()), "{target}");
        }
        let with_credentials = format!("http://user:pass@127.0.0.1:{port}/hook");
        let sink =
            WebhookSink::new(&with_credentials, vec![1; 32], Duration::from_secs(5), client(), loopback());
        let err = sink.send(&event("evt_07")).await.err().unwrap_or_else(|| panic!("credentials accepted"));
        assert_eq!(err, SinkError::Permanent("invalid_url".to_owned()));
        assert!(seen.try_recv().is_err(), "a refused send reached the receiver");
        server.abort();
    }

    #[test]
    fn sign_matches_the_standard_webhooks_test_vector() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_else(|| panic!("secret"));
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn parse_secret_accepts_only_whsec_base64_of_an_allowed_length() {
        let key = [42u8; 32];
        let padded = format!("whsec_{}", STANDARD.encode(key));
        assert_eq!(parse_secret(&padded).as_deref(), Some(key.as_slice()));
        assert_eq!(parse_secret(padded.trim_end_matches('=')).as_deref(), Some(key.as_slice()));
        assert_eq!(parse_secret(&STANDARD.encode(key)), None, "no prefix");
        assert_eq!(parse_secret("whsec_not base64!"), None);
        assert_eq!(parse_secret(&format!("whsec_{}", STANDARD.encode([1u8; 16]))), None, "too short");
        assert_eq!(parse_secret(&format!("whsec_{}", STANDARD.encode([1u8; 65]))), None, "too long");
        let fresh = || new_secret().unwrap_or_else(|e| panic!("secret: {e}")).0;
        assert_ne!(fresh(), fresh());
    }

    #[tokio::test]
    async fn an_invalid_url_is_permanent() {
        for url in ["not a url", "ftp://example.org/hook", "/relative"] {
            let sink = WebhookSink::new(url, vec![1; 32], Duration::from_secs(1), client(), loopback());
            let err = sink.send(&event("evt_05")).await.err().unwrap_or_else(|| panic!("{url} accepted"));
            assert!(matches!(err, SinkError::Permanent(_)), "{url}: {err}");
        }
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_the_path() {
        let url = reqwest::Url::parse("https://hooks.example/in/tok3n?k=v").unwrap_or_else(|e| panic!("{e}"));
        let sink = WebhookSink::new(
            url,
            b"super-secret-key-bytes-000000000".to_vec(),
            Duration::from_secs(1),
            client(),
            loopback(),
        );
        let shown = format!("{sink:?}");
        assert!(shown.contains("https://hooks.example"), "{shown}");
        assert!(!shown.contains("tok3n") && !shown.contains("super-secret"), "{shown}");
    }
}
