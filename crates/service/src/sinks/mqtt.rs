//! MQTT 3.1.1: each event is published at QoS 1 to `<prefix>/<event type>` and counts as delivered when the
//! broker's PubAck for that publish arrives. [`MqttSink::publish_retained`] publishes retained messages
//! (device consent snapshots) on the same client code.
//!
//! rumqttc's event loop runs in a spawned task and reconnects by itself (clean sessions). It reports the
//! packet id each publish went out with and each PubAck that came back, and `send` matches the two. Sends
//! are serialised, so the publish on the wire is always the current one; a send that fails or is
//! abandoned throws its connection away (a new one is made by the next send), so a publish left queued
//! there can never be mistaken for a later one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::{OutgoingEvent, Sink, SinkError};

/// The longest a send waits, connecting included, for the broker's PubAck.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// The largest packet sent; a CloudEvent is far smaller.
const MAX_PACKET: usize = 1024 * 1024;
/// Waits between reconnection attempts, doubling up to the second.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(15));

/// Publishes events to an MQTT broker.
pub struct MqttSink {
    options: MqttOptions,
    prefix: String,
    /// The live connection; `None` after a failed send, until the next send makes a new one.
    conn: Mutex<Option<Conn>>,
}

impl fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, port) = self.options.broker_address();
        f.debug_struct("MqttSink")
            .field("broker", &format!("{host}:{port}"))
            .field("client_id", &self.options.client_id())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl MqttSink {
    /// Connects to `url` (`mqtt://host:port`, default port 1883; `mqtts://` for TLS with the system's
    /// roots, default port 8883; `user:password@` for credentials) as `client_id`, waiting for the broker's
    /// ConnAck, and publishes under `topic_prefix`.
    pub async fn connect(url: &str, topic_prefix: &str, client_id: &str) -> Result<Self, SinkError> {
        if !is_topic(topic_prefix) {
            return Err(SinkError::Permanent(
                "the MQTT topic prefix must be a topic name without wildcards".to_owned(),
            ));
        }
        if client_id.is_empty() {
            return Err(SinkError::Permanent("the MQTT client id must not be empty".to_owned()));
        }
        let options = options(url, client_id)?;
        let conn = tokio::time::timeout(ACK_WAIT, Conn::open(&options)).await.unwrap_or_else(|_| {
            Err(SinkError::Retryable("the MQTT broker did not answer in time".to_owned()))
        })?;
        Ok(Self { options, prefix: topic_prefix.to_owned(), conn: Mutex::new(Some(conn)) })
    }

    /// The topic an event of `event_type` is published to.
    pub fn topic(&self, event_type: &str) -> String {
        format!("{}/{event_type}", self.prefix)
    }

    /// Publishes `body` retained at QoS 1 to `<prefix>/<suffix>` and waits for the PubAck. An empty body
    /// clears the topic's retained message.
    pub async fn publish_retained(&self, suffix: &str, body: &[u8]) -> Result<(), SinkError> {
        self.publish_to(suffix, body, true).await
    }

    async fn publish_to(&self, suffix: &str, body: &[u8], retain: bool) -> Result<(), SinkError> {
        if !is_topic(suffix) {
            return Err(SinkError::Permanent("the topic suffix is not a valid MQTT topic part".to_owned()));
        }
        let topic = self.topic(suffix);
        // Fixed header (5), topic length (2), topic, packet id (2), payload.
        if 9 + topic.len() + body.len() > MAX_PACKET {
            return Err(SinkError::Permanent("the message is too large for an MQTT packet".to_owned()));
        }
        let mut slot = self.conn.lock().await;
        let outcome = tokio::time::timeout(ACK_WAIT, publish(&self.options, &mut slot, &topic, body, retain))
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::Retryable("no PubAck from the MQTT broker in time".to_owned()))
            });
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }
}

#[async_trait]
impl Sink for MqttSink {
    async fn send(&self, event: &OutgoingEvent) -> Result<(), SinkError> {
        self.publish_to(&event.event_type, &event.body, false).await
    }
}

/// Publishes on the connection in `slot`, making a new one when there is none or the last send on it did
/// not finish.
async fn publish(
    options: &MqttOptions,
    slot: &mut Option<Conn>,
    topic: &str,
    body: &[u8],
    retain: bool,
) -> Result<(), SinkError> {
    if slot.as_ref().is_none_or(|c| c.dirty) {
        *slot = None;
        *slot = Some(Conn::open(options).await?);
    }
    let Some(conn) = slot.as_mut() else { unreachable!("a connection was just put there") };
    conn.publish(topic, body, retain).await
}

/// What the event-loop task tells the sink.
#[derive(Debug)]
enum Note {
    /// A publish went out with this packet id.
    Written(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
    /// The connection broke; the event loop is reconnecting.
    Down,
}

/// One client session with its event-loop task; dropping it stops the task.
struct Conn {
    client: AsyncClient,
    notes: mpsc::UnboundedReceiver<Note>,
    stop: CancellationToken,
    /// Set while a publish is under way: a send that was cancelled leaves it set.
    dirty: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Conn {
    /// Connects and waits for the broker's ConnAck, then hands the event loop to a task.
    async fn open(options: &MqttOptions) -> Result<Self, SinkError> {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), 16);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(SinkError::Retryable(format!("cannot connect to the MQTT broker: {e}")));
                }
            }
        }
        let (tx, notes) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(drive(eventloop, client.clone(), tx, stop.clone()));
        Ok(Self { client, notes, stop, dirty: false })
    }

    /// Publishes at QoS 1 and waits for the PubAck of that publish.
    async fn publish(&mut self, topic: &str, body: &[u8], retain: bool) -> Result<(), SinkError> {
        // Notes of earlier, finished sends (a Down is history too: the loop has reconnected or will).
        while self.notes.try_recv().is_ok() {}
        self.dirty = true;
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, body)
            .map_err(|_| SinkError::Retryable("the MQTT client is not running".to_owned()))?;
        let mut mine = None;
        loop {
            match self.notes.recv().await {
                Some(Note::Written(pkid)) if mine.is_none() => mine = Some(pkid),
                Some(Note::Acked(pkid)) if mine == Some(pkid) => {
                    self.dirty = false;
                    return Ok(());
                }
                Some(Note::Written(_) | Note::Acked(_)) => {}
                Some(Note::Down) => {
                    return Err(SinkError::Retryable("the MQTT connection broke".to_owned()));
                }
                None => return Err(SinkError::Retryable("the MQTT client stopped".to_owned())),
            }
        }
    }
}

/// Drives the event loop until `stop` fires or the sink is gone, reconnecting after errors.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    notes: mpsc::UnboundedSender<Note>,
    stop: CancellationToken,
) {
    let mut backoff = BACKOFF.0;
    loop {
        let polled = tokio::select! {
            () = stop.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        let note = match polled {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Note::Written(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => Note::Acked(ack.pkid),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF.0;
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the MQTT connection broke; reconnecting");
                let _ = notes.send(Note::Down);
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        if notes.send(note).is_err() {
            break;
        }
    }
    // Say goodbye when the connection is up; give up after a second.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// Client options from `url`.
fn options(url: &str, client_id: &str) -> Result<MqttOptions, SinkError> {
    let invalid = || SinkError::Permanent("the MQTT URL is not valid".to_owned());
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (tls, default_port) = match parsed.scheme() {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        _ => return Err(SinkError::Permanent("the MQTT URL must start with mqtt:// or mqtts://".to_owned())),
    };
    let mut options = MqttOptions::new(client_id, host, parsed.port().unwrap_or(default_port));
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    options.set_max_packet_size(64 * 1024, MAX_PACKET);
    if !parsed.username().is_empty() {
        let user = percent_decode(parsed.username()).ok_or_else(invalid)?;
        let password = percent_decode(parsed.password().unwrap_or_default()).ok_or_else(invalid)?;
        options.set_credentials(user, password);
    }
    if tls {
        options.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(tls_config()?))));
    }
    Ok(options)
}

/// TLS with the system's trusted roots, on our one crypto provider (ring).
fn tls_config() -> Result<rustls::ClientConfig, SinkError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(SinkError::Permanent("no trusted root certificates for mqtts://".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| SinkError::Permanent("TLS is not available".to_owned()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Decodes `%XX` escapes (URL user names and passwords); `None` for a broken escape or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A topic name (or part of one) we may publish to: non-empty, no wildcards, no NUL, not a `$` topic.
fn is_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() < 32 * 1024
        && !topic.starts_with('$')
        && !topic.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{event, unique};

    fn url() -> String {
        std::env::var("CONSENTRY_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_owned())
    }

    /// A subscriber to `topic` at QoS 1, or `None` (after the skip-or-fail rule) without a broker.
    async fn subscriber(topic: &str) -> Option<EventLoop> {
        let mut options = options(&url(), &format!("consentry-test-sub-{}", unique()))
            .unwrap_or_else(|e| panic!("test URL: {e}"));
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        client.subscribe(topic, QoS::AtLeastOnce).await.unwrap_or_else(|e| panic!("subscribe: {e}"));
        let subscribed = tokio::time::timeout(ACK_WAIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("no SubAck in time".to_owned()));
        match subscribed {
            Ok(()) => Some(eventloop),
            Err(why) => {
                consentry_store::testing::unreachable_service("Mosquitto (MQTT)", &why);
                None
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_receives_the_event_at_qos_1() {
        let prefix = format!("consentry-test/{}", unique());
        let topic = format!("{prefix}/consent.granted");
        let Some(mut sub) = subscriber(&topic).await else { return };
        let sink = MqttSink::connect(&url(), &prefix, &format!("consentry-test-pub-{}", unique()))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        assert_eq!(sink.topic("consent.granted"), topic);
        let sent = event("evt_mqtt_1");
        sink.send(&sent).await.unwrap_or_else(|e| panic!("send: {e}"));
        // A second send on the same connection matches its own PubAck too.
        sink.send(&event("evt_mqtt_2")).await.unwrap_or_else(|e| panic!("second send: {e}"));

        let mut received = Vec::new();
        tokio::time::timeout(ACK_WAIT, async {
            while received.len() < 2 {
                if let Event::Incoming(Packet::Publish(p)) =
                    sub.poll().await.unwrap_or_else(|e| panic!("subscriber: {e}"))
                {
                    received.push(p);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the subscriber received {} of 2 events", received.len()));
        assert_eq!(received[0].topic, topic);
        assert_eq!(received[0].qos, QoS::AtLeastOnce);
        assert_eq!(received[0].payload.as_ref(), sent.body.as_slice());
        assert_eq!(received[1].payload.as_ref(), event("evt_mqtt_2").body.as_slice());
    }

    #[tokio::test]
    async fn dropping_the_connection_stops_its_task() {
        if subscriber("consentry-test/probe").await.is_none() {
            return;
        }
        let sink = MqttSink::connect(&url(), "consentry-test", &format!("consentry-test-drop-{}", unique()))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        // The task holds the only sender of the notes: the channel closes when the task has ended.
        let mut conn = sink.conn.lock().await.take().unwrap_or_else(|| panic!("no connection"));
        let mut notes = std::mem::replace(&mut conn.notes, mpsc::unbounded_channel().1);
        drop(conn);
        drop(sink);
        tokio::time::timeout(Duration::from_secs(5), async { while notes.recv().await.is_some() {} })
            .await
            .unwrap_or_else(|_| panic!("the event-loop task kept running"));
    }

    #[tokio::test]
    async fn bad_configuration_is_permanent_and_no_broker_is_retryable() {
        for (url, prefix) in [
            ("http://127.0.0.1:1883", "p"),
            ("mqtt://", "p"),
            ("not a url", "p"),
            ("mqtt://127.0.0.1:1883", "p/#"),
            ("mqtt://127.0.0.1:1883", ""),
        ] {
            let err = MqttSink::connect(url, prefix, "c").await.err().unwrap_or_else(|| panic!("{url}"));
            assert!(matches!(err, SinkError::Permanent(_)), "{url} {prefix}: {err}");
        }
        let err =
            MqttSink::connect("mqtt://127.0.0.1:1", "p", "c").await.err().unwrap_or_else(|| panic!("1"));
        assert!(err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn mqtts_builds_a_ring_tls_config_and_fails_a_handshake_as_retryable() {
        // The system's roots may be missing on a bare machine; then the configuration is refused plainly.
        let o = match options("mqtts://127.0.0.1", "c") {
            Ok(o) => o,
            Err(e) => {
                eprintln!("SKIPPED: mqtts:// configuration ({e})");
                return;
            }
        };
        assert_eq!(o.broker_address().1, 8883);
        assert!(matches!(o.transport(), Transport::Tls(TlsConfiguration::Rustls(_))));
        // A TLS client against the plain listener (or nothing): a handshake or connect error, not a panic.
        let err =
            MqttSink::connect(&url().replacen("mqtt://", "mqtts://", 1), "p", &format!("c-{}", unique()))
                .await
                .err()
                .unwrap_or_else(|| panic!("TLS to a plain listener succeeded"));
        assert!(err.is_retryable(), "{err}");
    }

    #[test]
    fn urls_give_options() {
        let o = options("mqtt://127.0.0.1", "c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.broker_address(), ("127.0.0.1".to_owned(), 1883));
        let o = options("mqtt://u%40x:p%3Aw@[::1]:1884", "c").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.broker_address(), ("::1".to_owned(), 1884));
        let login = o.credentials().unwrap_or_else(|| panic!("no credentials"));
        assert_eq!((login.username.as_str(), login.password.as_str()), ("u@x", "p:w"));
        assert_eq!(percent_decode("%zz"), None);
        assert!(is_topic("acme/consent"));
        assert!(!is_topic("$SYS/x") && !is_topic("a/+") && !is_topic(""));
    }
}
