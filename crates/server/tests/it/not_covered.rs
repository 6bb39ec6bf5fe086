//! A `not_covered` check answer names what was not covered (category, channel or recipient), alone and in
//! a batch; no other answer carries the field.

use serde_json::json;

use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant};

both_backends!(not_covered_names_the_dimension);

async fn not_covered_names_the_dimension(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.record("nc-1", &grant("marketing.direct", &["email"])).await;
    let cases = [
        // The grant is for e-mail only.
        (json!({"channel": "sms"}), Some("channel")),
        (json!({}), Some("channel")),
        // Outside what the purpose declares: the catalogue decides, before any grant.
        (json!({"category": "user.device.telemetry", "channel": "email"}), Some("category")),
        (json!({"category": "user.device.telemetry", "channel": "in_app"}), Some("category")),
        (json!({"channel": "email", "recipient": "analytics_provider"}), Some("recipient")),
        (json!({"channel": "email"}), None),
    ];
    let mut batch = Vec::new();
    for (extra, dimension) in &cases {
        let mut body = json!({"subject": "nc-1", "purpose": "marketing.direct"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let answer = s.post("/v1/check", ADMIN_KEY, &body, 200).await;
        match dimension {
            Some(d) => {
                assert_eq!(answer["reason"], "not_covered", "{body}: {answer}");
                assert_eq!(answer["not_covered"], *d, "{body}: {answer}");
            }
            None => {
                assert_ne!(answer["reason"], "not_covered", "{body}: {answer}");
                assert!(answer.get("not_covered").is_none(), "only not_covered names one: {answer}");
            }
        }
        batch.push(body);
    }
    let out = s.post("/v1/check/batch", ADMIN_KEY, &json!({"checks": batch}), 200).await;
    let results = out["results"].as_array().expect("results");
    for ((_, dimension), answer) in cases.iter().zip(results) {
        assert_eq!(answer.get("not_covered").and_then(|v| v.as_str()), *dimension, "{answer}");
    }
    let none = s
        .post("/v1/check", ADMIN_KEY, &json!({"subject": "nobody", "purpose": "marketing.direct"}), 200)
        .await;
    assert_eq!(none["reason"], "no_consent");
    assert!(none.get("not_covered").is_none(), "{none}");
}
