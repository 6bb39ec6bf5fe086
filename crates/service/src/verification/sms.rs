//! Sending the verification code of a phone number by SMS: a signed POST of a JSON body to the operator's
//! SMS gateway (`sms_webhook_url`), which turns it into a text message.
//!
//! The request is signed like every webhook ([`crate::sinks::webhook::sign`], Standard Webhooks):
//! `webhook-id` (the verification's id), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`
//! under `sms_webhook_secret` (`whsec_` + base64). The body is
//! `{"type": "verification.code", "id", "to" (E.164), "code", "text", "lang"}`. It goes only where
//! destinations may go ([`AddressPolicy`], `allow_private_destinations`): an IP literal is checked before
//! the request and a name by the [`Resolver`], never following a redirect nor a proxy. One attempt, within
//! `webhook_timeout_secs`; a failure is logged without the number, and the person can start again.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use crate::egress::{AddressPolicy, Resolver, caused_by_refusal};
use crate::sinks::webhook::{parse_secret, sign};

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

    /// Posts `message`. The error says what failed, without the number or the code.
    pub async fn send(&self, message: &SmsMessage<'_>) -> Result<(), String> {
        let host = self.url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        if literal.is_some_and(|ip| !self.policy.permits(ip)) {
            return Err(
                "refused_address: the SMS gateway's address is not allowed (allow_private_destinations)"
                    .into(),
            );
        }
        let body = serde_json::to_vec(message).map_err(|e| format!("the body cannot be written: {e}"))?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&self.secret, message.id, timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let e = e.without_url();
                if caused_by_refusal(&e) {
                    "refused_address: the SMS gateway resolves to an address that is not allowed".to_owned()
                } else if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection_failed".to_owned()
                }
            })?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("http_status {}", status.as_u16())) }
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
        assert!(err.starts_with("refused_address"), "{err}");
        assert!(!err.contains("+49"), "{err}");
    }
}
