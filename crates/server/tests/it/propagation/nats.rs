//! NATS JetStream: each event stored under `<prefix>.<type>` with its CloudEvent id as `Nats-Msg-Id`, read
//! back by a client of our own.

use std::time::{Duration, Instant};

use consentry_store::testing::unreachable_service;
use serde_json::{Value, json};

use super::{PURPOSE, deliveries, eventually, unique};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of, withdraw};

both_backends!(nats_jetstream_stores_each_event_under_its_type_with_its_id);

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// The stream the sink creates for `prefix` (see `sinks::nats::stream_name_for`).
fn stream_name(prefix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_uppercase() } else { '_' })
        .collect();
    format!("CONSENTRY_{cleaned}")
}

async fn nats_jetstream_stores_each_event_under_its_type_with_its_id(backend: Backend) {
    let client = match async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(NATS_URL)
        .await
    {
        Ok(client) => client,
        Err(e) => {
            unreachable_service("NATS", &e.to_string());
            return;
        }
    };
    let js = async_nats::jetstream::new(client);
    let prefix = format!("ctest.{}", unique());
    let name = stream_name(&prefix);
    assert_eq!(stream_name("ctest.ab12"), "CONSENTRY_CTEST_AB12");
    // Deletes the stream however this test ends.
    let _cleanup = DeleteStream(name.clone());

    let s = TestServer::start_on(backend).await;
    let body = json!({"name": "bus", "kind": "nats", "url": NATS_URL, "subject": prefix, "event_types": ["consent.*"]});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    assert_eq!((&d["kind"], &d["subject"], &d["url"]), (&json!("nats"), &json!(prefix), &json!(NATS_URL)));
    assert!(d.get("secret").is_none() && d.get("topic").is_none(), "{d}");
    let granted = s.record("nats-subject", &grant(PURPOSE, &["email"])).await;
    let withdrawn = s.record("nats-subject", &withdraw(PURPOSE)).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let stream = loop {
        if let Ok(mut stream) = js.get_stream(&name).await
            && stream.info().await.is_ok_and(|info| info.state.messages >= 2)
        {
            break stream;
        }
        assert!(Instant::now() < deadline, "{name}: two messages not stored within 15 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    for (seq, (kind, placed)) in
        [("consent.granted", &granted[0]), ("consent.withdrawn", &withdrawn[0])].into_iter().enumerate()
    {
        let m = stream.get_raw_message(seq as u64 + 1).await.expect("stored message");
        assert_eq!(m.subject.as_str(), format!("{prefix}.{kind}"));
        let e: Value = serde_json::from_slice(&m.payload).expect("CloudEvent JSON");
        assert_eq!(
            (&e["specversion"], &e["type"], &e["id"]),
            (&json!("1.0"), &json!(kind), &placed["id"]),
            "{e}"
        );
        assert_eq!(
            (&e["subject"], &e["data"]["event"]["seq"]),
            (&json!("nats-subject"), &placed["seq"]),
            "{e}"
        );
        let id = m.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_owned());
        assert_eq!(id.as_deref(), Some(str_of(&e["id"])), "Nats-Msg-Id is the CloudEvent id");
    }
    let id = str_of(&d["id"]).to_owned();
    let done = eventually("deliveries recorded", Duration::from_secs(5), || {
        let (s, id) = (&s, &id);
        async move {
            let done = deliveries(s, id, Some("delivered")).await;
            (done.len() == 2).then_some(done)
        }
    })
    .await;
    assert!(done.iter().all(|d| d["attempts"] == 1), "{done:?}");
    drop(s.stop().await);
}

/// Deletes a JetStream stream when dropped (also while unwinding), on a runtime of its own.
struct DeleteStream(String);

impl Drop for DeleteStream {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(client) = async_nats::connect(NATS_URL).await {
                    let _ = async_nats::jetstream::new(client).delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}
