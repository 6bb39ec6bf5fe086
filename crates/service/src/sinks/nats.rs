//! NATS JetStream: each event is published to `<prefix>.<event type>` and counts as delivered once the
//! stream has stored it (the JetStream ack). The `Nats-Msg-Id` header carries the event id, so a retry
//! of an event the stream already holds is dropped by the stream's duplicate window (two minutes unless
//! the stream says otherwise).

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_trait::async_trait;

use super::{OutgoingEvent, Sink, SinkError};

/// How long to wait for the server to answer a connect, a stream request or a publish.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes events to a JetStream stream.
#[derive(Clone)]
pub struct NatsSink {
    jetstream: jetstream::Context,
    prefix: String,
    stream: String,
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink").field("prefix", &self.prefix).field("stream", &self.stream).finish()
    }
}

impl NatsSink {
    /// Connects to `url` (`nats://host:4222`, `tls://...`; credentials in the URL are used) and makes sure
    /// a stream stores `<subject_prefix>.>`: a stream that already covers it is used, else the stream
    /// [`stream_name_for`]`(subject_prefix)` is created with the server's defaults (file storage, no limits).
    /// After this first connection the client reconnects by itself.
    pub async fn connect(url: &str, subject_prefix: &str) -> Result<Self, SinkError> {
        if !is_literal_subject(subject_prefix) {
            return Err(SinkError::Permanent(
                "the NATS subject prefix must be a subject without wildcards or spaces".to_owned(),
            ));
        }
        let client = async_nats::ConnectOptions::new()
            .name("consentry")
            .connection_timeout(TIMEOUT)
            // Only the servers the destination names (checked by the dispatcher), never those a server
            // advertises: those could point anywhere.
            .ignore_discovered_servers()
            .connect(url)
            .await
            .map_err(|e| match e.kind() {
                async_nats::ConnectErrorKind::ServerParse => {
                    SinkError::Permanent("the NATS URL is not valid".to_owned())
                }
                kind => SinkError::Retryable(format!("cannot connect to NATS: {kind}")),
            })?;
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(TIMEOUT);
        let stream = ensure_stream(&jetstream, subject_prefix).await?;
        Ok(Self { jetstream, prefix: subject_prefix.to_owned(), stream })
    }

    /// The stream that stores this sink's events.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The subject an event of `event_type` is published to.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.prefix)
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn send(&self, event: &OutgoingEvent) -> Result<(), SinkError> {
        if !is_literal_subject(&event.event_type) {
            return Err(SinkError::Permanent("the event type is not a valid NATS subject part".to_owned()));
        }
        let publish = PublishMessage::build()
            .payload(event.body.clone().into())
            .message_id(&event.id)
            .header("Content-Type", "application/cloudevents+json");
        let ack = self
            .jetstream
            .send_publish(self.subject(&event.event_type), publish)
            .await
            .map_err(|e| SinkError::Retryable(format!("NATS publish failed: {}", e.kind())))?;
        ack.await.map_err(|e| SinkError::Retryable(format!("no JetStream acknowledgement: {}", e.kind())))?;
        Ok(())
    }
}

/// The stream this sink creates for `prefix` when none covers it: `CONSENTRY_` + the prefix in capitals
/// with every character a stream name may not hold (`.`, wildcards, separators) as `_`.
pub fn stream_name_for(prefix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_uppercase() } else { '_' })
        .collect();
    format!("CONSENTRY_{cleaned}")
}

/// Finds or creates the stream that stores `<prefix>.>`; returns its name.
async fn ensure_stream(js: &jetstream::Context, prefix: &str) -> Result<String, SinkError> {
    let wanted = format!("{prefix}.>");
    let name = match js.stream_by_subject(wanted.clone()).await {
        Ok(name) => name,
        Err(e) if matches!(e.kind(), jetstream::context::GetStreamByNameErrorKind::NotFound) => {
            let config = stream::Config {
                name: stream_name_for(prefix),
                subjects: vec![wanted.clone()],
                description: Some("Consentry consent events".to_owned()),
                ..Default::default()
            };
            js.get_or_create_stream(config)
                .await
                .map_err(|e| {
                    SinkError::Retryable(format!("cannot create the JetStream stream: {}", e.kind()))
                })?
                .cached_info()
                .config
                .name
                .clone()
        }
        Err(e) => {
            return Err(SinkError::Retryable(format!("cannot look up JetStream streams: {}", e.kind())));
        }
    };
    // A stream that only overlaps (say it stores `<prefix>.consent.granted`), or one of the same name made
    // for other subjects, would leave some events without a home: refuse it now rather than at each send.
    let stream = js
        .get_stream(&name)
        .await
        .map_err(|e| SinkError::Retryable(format!("cannot read the JetStream stream: {}", e.kind())))?;
    if stream.cached_info().config.subjects.iter().any(|s| covers(s, &wanted)) {
        Ok(name)
    } else {
        Err(SinkError::Permanent(format!("the JetStream stream {name} does not store all of {wanted}")))
    }
}

/// Whether the subject pattern `pattern` matches every subject that `filter` matches.
fn covers(pattern: &str, filter: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut filter = filter.split('.');
    loop {
        match (pattern.next(), filter.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) | (Some(_), None) | (None, Some(_)) => return false,
            (Some("*"), Some(f)) if f != ">" => {}
            (Some(p), Some(f)) if p == f && f != "*" => {}
            (Some(_), Some(_)) => return false,
            (None, None) => return true,
        }
    }
}

/// A subject (or part of one) without wildcards: dot-separated non-empty tokens without spaces.
fn is_literal_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{event, unique};

    fn url() -> String {
        std::env::var("CONSENTRY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
    }

    /// A JetStream context on the test server, or `None` (after the skip-or-fail rule) without one.
    async fn jetstream() -> Option<jetstream::Context> {
        match async_nats::ConnectOptions::new().connection_timeout(TIMEOUT).connect(url()).await {
            Ok(client) => Some(jetstream::new(client)),
            Err(e) => {
                consentry_store::testing::unreachable_service("NATS", &e.kind().to_string());
                None
            }
        }
    }

    /// Runs `body`, then deletes `streams` whether it passed or not.
    async fn with_cleanup<F>(js: &jetstream::Context, streams: Vec<String>, body: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(body).await;
        for name in streams {
            let _ = js.delete_stream(&name).await;
        }
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    #[tokio::test]
    async fn publishes_with_the_message_id_and_the_stream_drops_a_duplicate() {
        let Some(js) = jetstream().await else { return };
        let prefix = format!("ctest.{}", unique());
        let name = stream_name_for(&prefix);
        let js2 = js.clone();
        with_cleanup(&js, vec![name.clone()], async move {
            let sink = NatsSink::connect(&url(), &prefix).await.unwrap_or_else(|e| panic!("connect: {e}"));
            assert_eq!(sink.stream_name(), name);
            let first = event("evt_nats_1");
            sink.send(&first).await.unwrap_or_else(|e| panic!("send: {e}"));

            let mut stream = js2.get_stream(&name).await.unwrap_or_else(|e| panic!("stream: {e}"));
            let stored = stream
                .get_last_raw_message_by_subject(&format!("{prefix}.consent.granted"))
                .await
                .unwrap_or_else(|e| panic!("stored message: {e}"));
            assert_eq!(stored.payload.as_ref(), first.body.as_slice());
            let id = stored.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str());
            assert_eq!(id, Some("evt_nats_1"));

            // The same event again (a retry): acknowledged, but stored once.
            sink.send(&first).await.unwrap_or_else(|e| panic!("resend: {e}"));
            let info = stream.info().await.unwrap_or_else(|e| panic!("info: {e}"));
            assert_eq!(info.state.messages, 1);

            sink.send(&event("evt_nats_2")).await.unwrap_or_else(|e| panic!("second event: {e}"));
            let info = stream.info().await.unwrap_or_else(|e| panic!("info: {e}"));
            assert_eq!(info.state.messages, 2);
        })
        .await;
    }

    #[tokio::test]
    async fn an_existing_covering_stream_is_used_and_a_partial_one_refused() {
        let Some(js) = jetstream().await else { return };
        let id = unique();
        let (wide, narrow) = (format!("ctest.wide{id}"), format!("ctest.narrow{id}"));
        let (wide_stream, narrow_stream) = (format!("OPS_WIDE_{id}"), format!("OPS_NARROW_{id}"));
        let js2 = js.clone();
        with_cleanup(&js, vec![wide_stream.clone(), narrow_stream.clone()], async move {
            for (name, subject) in
                [(&wide_stream, format!("{wide}.>")), (&narrow_stream, format!("{narrow}.consent.granted"))]
            {
                let config =
                    stream::Config { name: name.clone(), subjects: vec![subject], ..Default::default() };
                js2.create_stream(config).await.unwrap_or_else(|e| panic!("create {name}: {e}"));
            }
            let sink = NatsSink::connect(&url(), &wide).await.unwrap_or_else(|e| panic!("connect: {e}"));
            assert_eq!(sink.stream_name(), wide_stream);
            sink.send(&event("evt_nats_3")).await.unwrap_or_else(|e| panic!("send: {e}"));

            let err = NatsSink::connect(&url(), &narrow).await.err().unwrap_or_else(|| panic!("accepted"));
            assert!(matches!(err, SinkError::Permanent(_)), "{err}");
        })
        .await;
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retryable() {
        let err =
            NatsSink::connect("nats://127.0.0.1:1", "ctest").await.err().unwrap_or_else(|| panic!("port 1"));
        assert!(err.is_retryable(), "{err}");
        let err =
            NatsSink::connect("nats://127.0.0.1:4222", "bad.*").await.err().unwrap_or_else(|| panic!("*"));
        assert!(matches!(err, SinkError::Permanent(_)), "{err}");
    }

    #[test]
    fn subject_rules() {
        assert!(covers(">", "a.>"));
        assert!(covers("a.>", "a.>"));
        assert!(covers("*.>", "a.b.>"));
        assert!(!covers("a.b", "a.>"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("a.b.>", "a.>"));
        assert!(!covers("b.>", "a.>"));
        assert!(is_literal_subject("consent.granted"));
        assert!(!is_literal_subject("consent..granted"));
        assert!(!is_literal_subject("consent.*"));
        assert!(!is_literal_subject("consent granted"));
        assert!(!is_literal_subject(""));
        assert_eq!(stream_name_for("acme.consent-events"), "CONSENTRY_ACME_CONSENT-EVENTS");
        assert_eq!(stream_name_for("a/b.c"), "CONSENTRY_A_B_C");
    }
}
