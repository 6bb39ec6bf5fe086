//! Deliveries from the console: the destinations and the outbox's health, a destination's dead letters with
//! their error, replay of one dead letter alone, from a dead letter on and since a time, pause and resume;
//! `console:read` refused.

use std::time::Duration;

use super::requests::seed_requests;
use super::{server_with_keys, sign_in};
use crate::preferences::{Page, Visitor, csrf_of};
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends};

/// The destination's page of dead letters once one is there (the seeded destination refuses every
/// delivery, and tests retry twice, quickly).
pub async fn dead_letters(v: &mut Visitor<'_>, destination: &str) -> Page {
    // Bounded at 30 s: a loaded machine (CI runs the whole suite on two cores) can be slow to retry.
    for _ in 0..300 {
        let page = v.get(&format!("/console/deliveries/{destination}?status=dead")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        if page.text.contains("<table id=\"deliveries\"") {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no dead letter");
}

async fn pending(server: &TestServer, destination: &str) -> usize {
    let list = server
        .get(&format!("/v1/destinations/{destination}/deliveries?status=pending"), ADMIN_KEY, 200)
        .await;
    list["deliveries"].as_array().map_or(0, Vec::len)
}

async fn dead_letters_are_replayed_from_the_console(backend: Backend) {
    let (server, read, write) = server_with_keys(backend).await;
    let (crm, _, _) = seed_requests(&server).await;
    let mut officer = Visitor::new(&server);
    sign_in(&mut officer, &write).await;
    dead_letters(&mut officer, &crm).await;
    // Both seeded deliveries settle (dead) before the counting below: one still retrying while the
    // destination is paused would go dead in the middle and hide the replay's effect.
    for _ in 0..300 {
        if pending(&server, &crm).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending(&server, &crm).await, 0, "the seeded deliveries went dead");
    let dead = dead_letters(&mut officer, &crm).await;
    assert!(dead.text.contains("flagged: a delivery went dead"), "{}", dead.text);
    let list = officer.get("/console/deliveries").await;
    assert!(list.text.contains(&format!("href=\"/console/deliveries/{crm}\"")), "{}", list.text);
    assert!(list.text.contains("Dead letters"), "{}", list.text);
    assert_eq!(officer.get(&format!("/console/deliveries/{crm}?status=lost")).await.status, 400);

    let at = dead.text.find("name=\"from_id\" value=\"").expect("a replay form") + 22;
    let from_id = dead.text[at..].split('"').next().expect("id").to_owned();
    let csrf = csrf_of(&dead.text);

    let mut viewer = Visitor::new(&server);
    sign_in(&mut viewer, &read).await;
    let seen = viewer.get(&format!("/console/deliveries/{crm}?status=dead")).await;
    assert!(!seen.text.contains("name=\"from_id\""), "no replay for console:read");
    let refused = viewer
        .post_form(
            &format!("/console/deliveries/{crm}/replay"),
            &[("csrf", &csrf_of(&seen.text)), ("from_id", &from_id)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    // Paused first, so the replayed deliveries stay pending to be counted.
    let paused = officer.post_form(&format!("/console/deliveries/{crm}/pause"), &[("csrf", &csrf)]).await;
    assert_eq!(paused.status, 303, "{}", paused.text);
    assert_eq!(server.get(&format!("/v1/destinations/{crm}"), ADMIN_KEY, 200).await["paused"], true);
    let before = pending(&server, &crm).await;
    // One dead letter alone: exactly one delivery is pending again, and it is no longer a dead letter.
    let one = format!("/console/deliveries/{crm}/dead-letters/{from_id}/replay");
    assert!(dead.text.contains(&format!("action=\"{one}\"")), "{}", dead.text);
    assert_eq!(viewer.post_form(&one, &[("csrf", &csrf_of(&seen.text))]).await.status, 403);
    let alone = officer.post_form(&one, &[("csrf", &csrf)]).await;
    assert_eq!(alone.status, 303, "{}", alone.text);
    assert_eq!(pending(&server, &crm).await, before + 1, "that one alone is pending again");
    // Paused, the destination's oldest undelivered message waits: its lag is shown, here and in the list.
    let shown = officer.get(&format!("/console/deliveries/{crm}")).await;
    let lag = shown.text.split("id=\"destination-lag\">").nth(1).and_then(|t| t.split('<').next());
    assert!(lag.is_some_and(|l| l.ends_with("seconds old")), "{lag:?}");
    let list = officer.get("/console/deliveries").await;
    assert!(list.text.contains("seconds old</td>"), "{}", list.text);
    let again = officer.post_form(&one, &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 404, "no longer a dead letter: {}", again.text);
    let replayed = officer
        .post_form(&format!("/console/deliveries/{crm}/replay"), &[("csrf", &csrf), ("from_id", &from_id)])
        .await;
    assert_eq!(replayed.status, 303, "{}", replayed.text);
    assert!(pending(&server, &crm).await > before, "the dead letter is pending again");
    let bad = officer
        .post_form(&format!("/console/deliveries/{crm}/replay"), &[("csrf", &csrf), ("since", "yesterday")])
        .await;
    assert_eq!(bad.status, 400);
    // From before the destination was created: refused, saying why; from its creation on: queued.
    let early = officer
        .post_form(
            &format!("/console/deliveries/{crm}/replay"),
            &[("csrf", &csrf), ("since", "2020-01-01T00:00")],
        )
        .await;
    assert_eq!(early.status, 400, "{}", early.text);
    assert!(early.text.contains("earlier than this destination can replay"), "{}", early.text);
    let created = server.get(&format!("/v1/destinations/{crm}"), ADMIN_KEY, 200).await["created_at"].clone();
    let created = created.as_str().and_then(|t| t.strip_suffix('Z')).expect("a UTC time").to_owned();
    let since = officer
        .post_form(&format!("/console/deliveries/{crm}/replay"), &[("csrf", &csrf), ("since", &created)])
        .await;
    assert_eq!(since.status, 303, "{}", since.text);
    let resumed = officer.post_form(&format!("/console/deliveries/{crm}/resume"), &[("csrf", &csrf)]).await;
    assert_eq!(resumed.status, 303);
    assert_eq!(server.get(&format!("/v1/destinations/{crm}"), ADMIN_KEY, 200).await["paused"], false);
}

both_backends!(dead_letters_are_replayed_from_the_console);
