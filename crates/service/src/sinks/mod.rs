//! Where consent changes go: one [`Sink`] per kind of downstream system.
//!
//! A sink delivers one [`OutgoingEvent`] (a CloudEvent, already encoded) and says whether it arrived. It does
//! no retrying of its own: a [`SinkError::Retryable`] asks the caller (the outbox worker) to try the same
//! event again later, with the same id, so every sink is at-least-once and receivers de-duplicate by the
//! event id (`webhook-id`, `Nats-Msg-Id`, the CloudEvent `id`).
//!
//! - [`WebhookSink`]: an HTTP POST signed by the Standard Webhooks scheme (HMAC-SHA256, `whsec_` secrets).
//! - [`NatsSink`]: a JetStream publish, acknowledged by the stream, de-duplicated by `Nats-Msg-Id`.
//! - [`MqttSink`]: an MQTT 3.1.1 publish at QoS 1, acknowledged by the broker's PubAck.
//!
//! Error messages are recorded on deliveries, which a `destinations` key reads: network failures say only
//! `timeout`, `connection_failed`, `http_status <code>` or `refused_address` (whether a port is open is
//! not theirs to learn); the details go to the operator's log. They never hold a secret, a URL's
//! credentials or the body.

pub mod mqtt;
pub mod nats;
pub mod webhook;

use async_trait::async_trait;

pub use mqtt::MqttSink;
pub use nats::NatsSink;
pub use webhook::{WebhookSink, new_secret, parse_secret, sign};

/// One event to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// The CloudEvent `id`; also the `webhook-id` and the `Nats-Msg-Id`, so it must stay the same across
    /// retries.
    pub id: String,
    /// The CloudEvent `type`, e.g. `consent.granted`; the last part of the NATS subject and the MQTT topic.
    pub event_type: String,
    /// The CloudEvent, encoded as JSON (structured mode), sent byte for byte.
    pub body: Vec<u8>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The destination may accept the same event later (it answered with an error, timed out or was
    /// unreachable).
    #[error("delivery failed, will retry: {0}")]
    Retryable(String),
    /// Trying again cannot help (the sink's configuration is wrong).
    #[error("delivery failed: {0}")]
    Permanent(String),
}

impl SinkError {
    /// Whether the same event may be tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Retryable(_))
    }
}

/// A destination for consent events.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Delivers `event`; `Ok` once the destination has acknowledged it.
    async fn send(&self, event: &OutgoingEvent) -> Result<(), SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique suffix for names that tests create on shared services.
    pub(super) fn unique() -> String {
        let bytes: [u8; 6] = consentry_store::random_bytes().unwrap_or_else(|e| panic!("randomness: {e}"));
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(super) fn event(id: &str) -> OutgoingEvent {
        // A fixed time, so that the same id makes the same body.
        let at = consentry_core::Timestamp::parse("2025-01-01T00:00:00Z").unwrap_or_else(|| panic!("a time"));
        let data = serde_json::json!({"event": {"id": id}});
        let event =
            crate::events::CloudEvent::new("urn:consentry:test", id.to_owned(), "consent.granted", at, data);
        OutgoingEvent {
            id: id.to_owned(),
            event_type: event.kind.clone(),
            body: event.to_json().into_bytes(),
        }
    }

    #[test]
    fn sinks_are_object_safe() {
        fn takes(_: &dyn Sink) {}
        let _ = takes;
        assert!(SinkError::Retryable("x".into()).is_retryable());
        assert!(!SinkError::Permanent("x".into()).is_retryable());
    }
}
