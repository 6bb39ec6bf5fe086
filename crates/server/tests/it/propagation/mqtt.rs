//! MQTT: a subscriber on the broker receives each event at QoS 1 under `<prefix>/<type>`.

use std::time::Duration;

use consentry_store::testing::unreachable_service;
use serde_json::{Value, json};

use super::{PURPOSE, unique};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, withdraw};

both_backends!(mqtt_subscribers_receive_each_event_at_qos_1);

async fn mqtt_subscribers_receive_each_event_at_qos_1(backend: Backend) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let prefix = format!("consentry-test/{}", unique());
    let mut options = MqttOptions::new(format!("consentry-test-sub-{}", unique()), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    client.subscribe(format!("{prefix}/#"), QoS::AtLeastOnce).await.expect("subscribe");
    let subscribed = tokio::time::timeout(Duration::from_secs(5), async {
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
    if let Err(why) = subscribed {
        unreachable_service("Mosquitto (MQTT)", &why);
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });

    let s = TestServer::start_on(backend).await;
    let body = json!({"name": "iot", "kind": "mqtt", "url": "mqtt://127.0.0.1:1883", "topic": prefix, "event_types": ["consent.*"]});
    let d = s.post("/v1/destinations", ADMIN_KEY, &body, 201).await;
    assert_eq!((&d["kind"], &d["topic"]), (&json!("mqtt"), &json!(prefix)));
    assert!(d.get("secret").is_none() && d.get("subject").is_none(), "{d}");
    let granted = s.record("mqtt-subject", &grant(PURPOSE, &["email"])).await;
    let withdrawn = s.record("mqtt-subject", &withdraw(PURPOSE)).await;

    for (kind, placed) in [("consent.granted", &granted[0]), ("consent.withdrawn", &withdrawn[0])] {
        let p = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} on {prefix}/# within 15 s"))
            .expect("the subscriber runs");
        assert_eq!(p.topic, format!("{prefix}/{kind}"));
        assert_eq!(p.qos, QoS::AtLeastOnce);
        let e: Value = serde_json::from_slice(&p.payload).expect("CloudEvent JSON");
        assert_eq!(
            (&e["specversion"], &e["type"], &e["id"]),
            (&json!("1.0"), &json!(kind), &placed["id"]),
            "{e}"
        );
        let source = json!(s.state.config.event_source());
        assert_eq!((&e["subject"], &e["source"]), (&json!("mqtt-subject"), &source), "{e}");
        assert_eq!(e["data"]["event"]["hash"], placed["hash"], "{e}");
    }
    let _ = client.disconnect().await;
    pump.abort();
    drop(s.stop().await);
}
