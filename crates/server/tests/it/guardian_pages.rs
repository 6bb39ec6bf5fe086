//! Children and guardians in the preference centre: a person who came of age while a guardian's grants
//! hold is asked to confirm or change them (confirming records their own grants; any own choice ends the
//! question), and a guardian manages a known child's choices from their own page, the child named only by
//! number and the changes recorded as the guardian's pseudonym; in English and German.

use serde_json::{Value, json};

use crate::preferences::{Visitor, csrf_of, decision, mint};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends, grant, str_of};

both_backends!(coming_of_age_asks_to_confirm_a_guardians_choices, a_guardian_manages_a_childs_choices);

const BANNER: &str = "You decide now";

/// A known child `child` with guardian `guardian`, who granted analytics and e-mail marketing for them.
async fn child_with_grants(s: &TestServer, child: &str, guardian: &str) {
    s.put(&format!("/v1/subjects/{child}/age"), ADMIN_KEY, &json!({"birth_date": "2016-05-01"}), 200).await;
    s.put(&format!("/v1/subjects/{guardian}/age"), ADMIN_KEY, &json!({"birth_date": "1985-01-01"}), 200)
        .await;
    s.post(&format!("/v1/subjects/{child}/guardians"), ADMIN_KEY, &json!({"guardian": guardian}), 201).await;
    for mut body in [grant("analytics", &[]), grant("marketing.direct", &["email"])] {
        body["actor"] = json!(format!("guardian:{guardian}"));
        s.post(&format!("/v1/subjects/{child}/consents"), ADMIN_KEY, &body, 201).await;
    }
}

async fn signed_in<'s>(s: &'s TestServer, subject: &str) -> Visitor<'s> {
    let mut v = Visitor::new(s);
    let minted = mint(s, subject, &json!({})).await;
    let page = v.open_link(str_of(&minted["token"])).await;
    assert_eq!(page.status, 200, "{}", page.text);
    v
}

async fn events(s: &TestServer, subject: &str) -> Vec<Value> {
    let out = s.get(&format!("/v1/subjects/{subject}/consents/history"), ADMIN_KEY, 200).await;
    out["events"].as_array().expect("events").clone()
}

async fn coming_of_age_asks_to_confirm_a_guardians_choices(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    child_with_grants(&s, "kid", "mum").await;
    let mut v = signed_in(&s, "kid").await;
    assert!(!v.get("/preferences").await.text.contains(BANNER), "a child is not asked");
    // The brand now knows them as an adult: they came of age.
    s.put("/v1/subjects/kid/age", ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    let page = v.get("/preferences").await;
    assert!(page.text.contains(BANNER), "{}", page.text);
    for words in [
        "aria-labelledby=\"came-of-age\"",
        "<h2 id=\"came-of-age\">",
        "Usage analytics",
        "action=\"/preferences/confirm-guardian-choices\"",
        "href=\"#choices\"",
        "By: A parent or guardian",
    ] {
        assert!(page.text.contains(words), "{words}");
    }
    let german = v.get("/preferences?lang=de").await;
    assert!(german.text.contains("Sie entscheiden jetzt selbst") && german.text.contains("Ein Elternteil"));
    let _ = v.get("/preferences?lang=en").await;
    // Without the form's CSRF token: refused.
    assert_eq!(v.post_form("/preferences/confirm-guardian-choices", &[]).await.status, 403);
    let csrf = csrf_of(&page.text);
    let done = v.post_form("/preferences/confirm-guardian-choices", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(!done.text.contains(BANNER) && done.text.contains("Your choices are saved."), "{}", done.text);
    let own: Vec<(String, Value)> = events(&s, "kid")
        .await
        .into_iter()
        .filter(|e| e["actor"] == "subject")
        .map(|e| (str_of(&e["purpose"]).to_owned(), e["channels"].clone()))
        .collect();
    assert_eq!(own, [("analytics".to_owned(), json!([])), ("marketing.direct".to_owned(), json!(["email"]))]);
    assert_eq!(decision(&s, "kid", "marketing.direct", Some("email")).await, (true, "granted".into()));
    assert!(!v.get("/preferences").await.text.contains(BANNER), "answered");
    // Nothing left to confirm: not found.
    let again = v.post_form("/preferences/confirm-guardian-choices", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 404);

    // "Change": any choice of their own ends the question too; but not one they made as a child, before
    // the brand re-stated them as an adult (they came of age then, not when "18+" says).
    child_with_grants(&s, "kid2", "dad").await;
    let minted = mint(&s, "kid2", &json!({})).await;
    let refusal = json!({"changes": [{"purpose": "marketing.personalised_offers", "action": "withdraw"}]});
    s.post("/v1/subjects/kid2/consents", str_of(&minted["token"]), &refusal, 201).await;
    s.put("/v1/subjects/kid2/age", ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    let mut v = signed_in(&s, "kid2").await;
    let page = v.get("/preferences").await;
    assert!(page.text.contains(BANNER));
    let saved = v.post_form("/preferences", &[("csrf", &csrf_of(&page.text)), ("p", "analytics")]).await;
    assert_eq!(saved.status, 200);
    assert!(!saved.text.contains(BANNER), "{}", saved.text);
    assert_eq!(decision(&s, "kid2", "marketing.direct", Some("email")).await.1, "withdrawn");
    s.stop().await;
}

async fn a_guardian_manages_a_childs_choices(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    child_with_grants(&s, "kid-7xq", "mum").await;
    let mut mum = signed_in(&s, "mum").await;
    let page = mum.get("/preferences").await;
    assert!(page.text.contains("<h2 id=\"children\">Your children</h2>"), "{}", page.text);
    assert!(page.text.contains("href=\"#children\""), "in the section navigation");
    assert!(!page.text.contains("kid-7xq"), "the child is named by number only");
    let at = page.text.find("href=\"/preferences/children/").expect("a child's link") + 6;
    let path = page.text[at..].split('"').next().expect("path").to_owned();
    assert!(page.text.contains("Manage the choices of Child 1"));

    let child = mum.get(&path).await;
    assert_eq!(child.status, 200, "{}", child.text);
    assert!(child.text.contains("Choices for Child 1") && !child.text.contains("kid-7xq"));
    assert!(child.text.contains("data-purpose=\"analytics\" checked"), "the guardian's grant holds");
    assert!(child.text.contains("<main id=\"main\""), "the page's landmarks");
    let german = mum.get(&format!("{path}?lang=de")).await;
    assert!(german.text.contains("Entscheidungen für Kind 1"), "{}", german.text);
    let _ = mum.get(&format!("{path}?lang=en")).await;
    // Untick analytics, tick SMS too: recorded for the child as the guardian, by pseudonym.
    assert_eq!(mum.post_form(&path, &[("p", "marketing.direct")]).await.status, 403, "no CSRF token");
    let csrf = csrf_of(&child.text);
    let fields = [
        ("csrf", csrf.as_str()),
        ("p", "marketing.direct"),
        ("c", "marketing.direct|email"),
        ("c", "marketing.direct|sms"),
    ];
    let saved = mum.post_form(&path, &fields).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert!(saved.text.contains("Your choices are saved."), "{}", saved.text);
    let recorded = events(&s, "kid-7xq").await;
    let last = &recorded[recorded.len() - 2..];
    let guardian_actor = str_of(&recorded[0]["actor"]).to_owned();
    assert!(guardian_actor.starts_with("guardian:") && !guardian_actor.contains("mum"), "{guardian_actor}");
    for e in last {
        assert_eq!(e["actor"], json!(guardian_actor), "{e}");
    }
    // A known child without a guardian's grant in force: the engine says a guardian is needed.
    assert_eq!(decision(&s, "kid-7xq", "analytics", None).await, (false, "guardian_required".into()));
    assert_eq!(decision(&s, "kid-7xq", "marketing.direct", Some("sms")).await, (true, "granted".into()));

    // Someone else, a made-up reference: not found.
    let mut ben = signed_in(&s, "ben").await;
    assert_eq!(ben.get(&path).await.status, 404);
    assert_eq!(mum.get("/preferences/children/00112233445566778899aabbccddeeff").await.status, 404);
    // The child sees the guardian's changes in their history.
    let mut kid = signed_in(&s, "kid-7xq").await;
    // And in who used their data: the guardian's view and save, named as a parent or guardian (the log
    // holds the guardian's pseudonym, never their id), in English and German.
    let logged = crate::utils::access_entries(&s, "kid-7xq", 3).await;
    let by_guardian: Vec<&str> = logged
        .iter()
        .filter(|(caller, _, _)| caller == &guardian_actor)
        .map(|(_, route, _)| route.as_str())
        .collect();
    for route in ["preferences: a guardian's view", "preferences: a guardian's save"] {
        assert!(by_guardian.contains(&route), "{route} in {logged:?}");
    }
    assert!(logged.iter().all(|(caller, _, _)| !caller.contains("mum")), "{logged:?}");
    let own = kid.get("/preferences").await.text;
    assert!(own.contains("By: A parent or guardian"));
    assert!(own.contains("<strong>A parent or guardian</strong>"), "{own}");
    let german = kid.get("/preferences?lang=de").await.text;
    assert!(german.contains("<strong>Ein Elternteil oder Vormund</strong>"), "{german}");
    let _ = kid.get("/preferences?lang=en").await;
    // Once the child came of age, the guardian no longer manages their choices.
    s.put("/v1/subjects/kid-7xq/age", ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    assert_eq!(mum.get(&path).await.status, 404);
    assert!(!mum.get("/preferences").await.text.contains("id=\"children\""));
    s.stop().await;
}
