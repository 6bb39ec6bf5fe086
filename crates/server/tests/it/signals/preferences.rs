//! The preference centre says, in English and German, when a choice came from a consent signal.

use reqwest::header::ACCEPT_LANGUAGE;
use serde_json::json;

use crate::preferences::{Visitor, mint};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends};

async fn a_signal_s_choice_is_noted(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let values = json!({"tcf": {
        "created": "2026-11-30T10:00:00Z", "last_updated": "2026-11-30T10:00:00Z", "cmp_id": 12, "cmp_version": 3,
        "consent_language": "DE", "vendor_list_version": 140, "tcf_policy_version": 5,
        "purposes_consent": [7, 8, 9], "disclosed_vendors": [1]
    }});
    let tc = s.post("/v1/signals/encode", ADMIN_KEY, &values, 200).await["tcf"].clone();
    s.post("/v1/subjects/web-3/signals", ADMIN_KEY, &json!({"tcf": tc}), 201).await;

    let token = mint(&s, "web-3", &json!({})).await["token"].as_str().expect("token").to_owned();
    let mut v = Visitor::new(&s);
    let page = v.open_link(&token).await;
    // Two notes: analytics (granted) and personalised offers (denied); none on purposes the person never
    // chose on.
    assert_eq!(page.text.matches("Where this choice came from:").count(), 2, "{}", page.text);
    assert!(page.text.contains("The consent banner of our website or app (IAB TCF)"));
    let page = v.get("/preferences?lang=de").await;
    assert_eq!(page.text.matches("Woher diese Auswahl stammt:").count(), 2);
    assert!(page.text.contains("Das Einwilligungsbanner unserer Website oder App (IAB TCF)"));
    assert!(!page.text.contains("Where this choice came from"));

    // A person who never sent a signal sees no note.
    let mut other = Visitor::new(&s);
    other.extra.push((ACCEPT_LANGUAGE.as_str(), "en"));
    let fresh = mint(&s, "web-4", &json!({})).await["token"].as_str().expect("token").to_owned();
    let page = other.open_link(&fresh).await;
    assert!(page.text.contains("<html lang=\"en\">") && !page.text.contains("Where this choice came from"));
    s.stop().await;
}

both_backends!(a_signal_s_choice_is_noted);
