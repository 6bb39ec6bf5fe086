//! Sending the verification code of a phone number by SMS: a signed POST of a JSON body to the operator's
//! SMS gateway (`sms_webhook_url`), which turns it into a text message.
//!
//! The request is signed like every webhook ([`crate::sinks::webhook::sign`], Standard Webhooks):
//! `webhook-id` (the verification's id), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`
//! under `sms_webhook_secret` (`whsec_` + base64). The body is
//! `{"type": "verification.code", "id", "to" (E.164), "code", "text", "lang"}`. It goes only where
//! destinations may go ([`AddressPolicy`], `allow_private_destinations`): an IP literal is checked before
//! the request and a name by the [`Resolver`], never following a redirect nor a proxy.
//!
//! Each attempt has `webhook_timeout_secs`. A failure that may pass (no connection, a timeout, a 5xx, a
//! 429) is tried again, at most [`MAX_ATTEMPTS`] attempts in all, waiting [`FIRST_WAIT`] and then twice as
//! long each time; a 429's `Retry-After` (in seconds) is waited for instead when it is longer, up to
//! [`MAX_RETRY_AFTER`] (a gateway asking for more is not tried again: the code would arrive late). Every
//! attempt carries the same `webhook-id` (the verification's id) and body, so a gateway that got an
//! attempt whose answer was lost can tell the retry is the same message (Standard Webhooks' idempotency);
//! each is signed anew with its own `webhook-timestamp`. A refused address, another 4xx or a body that
//! cannot be written is final. The sender runs after the answer (see [`super::start`]), so the retries
//! never delay it. Failures are logged without the number or the code, and the person can start again.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use crate::egress::{AddressPolicy, Resolver, caused_by_refusal};
use crate::sinks::webhook::{parse_secret, sign};

/// Attempts at most for one message, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// The wait before the second attempt; each further wait is twice the one before.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest `Retry-After` waited for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug)]
enum Failure {
    /// Trying again may work; a 429's `Retry-After`, when it gave one in seconds.
    Transient { reason: String, retry_after: Option<Duration> },
    /// Trying again will not help.
    Final(String),
}

/// The wait before attempt `next` (2 for the first retry), or `None` when no retry is due.
fn wait_before(next: u32, retry_after: Option<Duration>) -> Option<Duration> {
    if next > MAX_ATTEMPTS {
        return None;
    }
    let backoff = FIRST_WAIT.saturating_mul(1 << (next - 2).min(16));
    match retry_after {
        Some(asked) if asked > MAX_RETRY_AFTER => None,
        Some(asked) => Some(asked.max(backoff)),
        None => Some(backoff),
    }
}

/// A `Retry-After` given in seconds (an HTTP date is not waited for: the backoff applies).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What the gateway receives.
#[derive(Debug, Serialize)]
pub struct SmsMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The verification's id (also `webhook-id`).
    pub id: &'a str,
    /// The phone number, E.164.
    pub to: &'a str,
    pub code: &'a str,
    /// The message to send, in `lang`.
    pub text: &'a str,
    pub lang: &'a str,
}

/// Checks `sms_webhook_url`: an absolute `https://` URL without credentials, or `http://` to a loopback
/// address (a gateway on the same machine): a phone number and its code never cross a network in clear.
pub fn webhook_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text).map_err(|_| "must be an absolute http:// or https:// URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an absolute http:// or https:// URL".into());
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !loopback {
        return Err(
            "must be https:// (http:// only to a loopback address): it carries phone numbers and codes"
                .into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (the body is signed with sms_webhook_secret)".into());
    }
    Ok(url)
}

/// Checks `sms_webhook_secret`: `whsec_` and base64 of 24 to 64 bytes.
pub fn webhook_secret(text: &str) -> Result<Vec<u8>, String> {
    parse_secret(text).ok_or_else(|| "must be whsec_ and base64 of 24 to 64 random bytes".to_owned())
}

/// Sends verification codes to the SMS gateway.
#[derive(Clone)]
pub struct SmsSender {
    url: reqwest::Url,
    secret: Vec<u8>,
    timeout: Duration,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl fmt::Debug for SmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path may carry a gateway's token: only the origin; never the secret.
        f.debug_struct("SmsSender")
            .field("origin", &self.url.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}

impl SmsSender {
    /// The sender of `url` and `secret` (both checked when the configuration was validated), reaching only
    /// what `policy` permits.
    pub fn new(url: &str, secret: &str, timeout: Duration, policy: AddressPolicy) -> Result<Self, String> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver(Arc::clone(&policy))))
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        Ok(Self { url: webhook_url(url)?, secret: webhook_secret(secret)?, timeout, client, policy })
    }

    /// Posts `message`, trying again after a failure that may pass (see the module's notes). Returns the
    /// attempts it took; the error says what failed last and after how many attempts, without the number
    /// or the code.
    pub async fn send(&self, message: &SmsMessage<'_>) -> Result<u32, String> {
        let body = serde_json::to_vec(message).map_err(|e| format!("the body cannot be written: {e}"))?;
        let mut attempt = 1;
        loop {
            let (reason, retry_after) = match self.attempt(message.id, &body).await {
                Ok(()) => return Ok(attempt),
                Err(Failure::Final(reason)) => return Err(format!("{reason} (attempt {attempt}, final)")),
                Err(Failure::Transient { reason, retry_after }) => (reason, retry_after),
            };
            let Some(wait) = wait_before(attempt + 1, retry_after) else {
                return Err(format!("{reason} (attempt {attempt}, giving up)"));
            };
            let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            tracing::debug!(attempt, error = %reason, wait_ms, "the SMS gateway failed; trying again");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One signed POST of `body`, under `webhook-id` `id`.
    async fn attempt(&self, id: &str, body: &[u8]) -> Result<(), Failure> {
        let host = self.url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        if literal.is_some_and(|ip| !self.policy.permits(ip)) {
            return Err(Failure::Final(
                "refused_address: the SMS gateway's address is not allowed (allow_private_destinations)"
                    .into(),
            ));
        }
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&self.secret, id, timestamp, body);
        let response = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                let e = e.without_url();
                let transient =
                    |reason: &str| Failure::Transient { reason: reason.into(), retry_after: None };
                if caused_by_refusal(&e) {
                    Failure::Final(
                        "refused_address: the SMS gateway resolves to an address that is not allowed".into(),
                    )
                } else if e.is_timeout() {
                    transient("timeout")
                } else {
                    transient("connection_failed")
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let reason = format!("http_status {}", status.as_u16());
        if status.is_server_error() {
            Err(Failure::Transient { reason, retry_after: None })
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Transient { reason, retry_after: retry_after(&response) })
        } else {
            Err(Failure::Final(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_secrets_are_checked() {
        assert!(webhook_url("https://sms.example.com/send?token=x").is_ok());
        assert!(webhook_url("http://127.0.0.1:9000/sms").is_ok());
        assert!(webhook_url("ftp://sms.example.com").is_err());
        assert!(webhook_url("sms.example.com/send").is_err());
        let err = webhook_url("https://user:secret@sms.example.com").expect_err("credentials");
        assert!(!err.contains("secret@"), "{err}");
        assert!(webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(webhook_secret("whsec_c2hvcnQ=").is_err(), "too short");
    }

    #[tokio::test]
    async fn a_refused_literal_is_never_contacted() {
        let sender = SmsSender::new(
            "http://127.0.0.1:9/sms",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Duration::from_secs(1),
            AddressPolicy::default(),
        )
        .expect("a sender");
        let message = SmsMessage {
            kind: "verification.code",
            id: "ver_1",
            to: "+49301234567",
            code: "123456",
            text: "x",
            lang: "en",
        };
        let err = sender.send(&message).await.expect_err("refused");
        assert!(err.starts_with("refused_address") && err.contains("attempt 1, final"), "{err}");
        assert!(!err.contains("+49"), "{err}");
    }

    #[test]
    fn retries_back_off_and_honour_a_short_retry_after() {
        let ms = Duration::from_millis;
        assert_eq!(wait_before(2, None), Some(ms(500)));
        assert_eq!(wait_before(3, None), Some(ms(1000)));
        assert_eq!(wait_before(4, None), Some(ms(2000)));
        assert_eq!(wait_before(MAX_ATTEMPTS + 1, None), None, "at most MAX_ATTEMPTS");
        assert_eq!(wait_before(2, Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
        assert_eq!(wait_before(3, Some(Duration::ZERO)), Some(ms(1000)), "never sooner than the backoff");
        assert_eq!(wait_before(2, Some(MAX_RETRY_AFTER + ms(1))), None, "too long a wait: given up");
    }
}
