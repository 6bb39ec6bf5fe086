//! The current state keeps an objection and a restriction apart from the consent choice, and an import
//! announces as in force only what is in force once its write is applied, as the writing transaction sees
//! the state (not as some node's memory did before).

use std::sync::Arc;

use consentry_core::{Action, Event, Timestamp};

use super::fixtures::{change, subject};
use super::outbox::{claim, destination, everything, fan_out_all};
use crate::{ImportKeys, OutboxMessage, Sealed, Sealer, Store};

fn actions(events: &[Event]) -> Vec<Action> {
    events.iter().map(|e| e.action).collect()
}

pub async fn objections_stand_apart_in_the_current_state(store: Arc<dyn Store>) {
    let s = subject("objector");
    store.append(&s, vec![change("marketing", Action::Object, &[])]).await.expect("object");
    store.append(&s, vec![change("marketing", Action::Withdraw, &[])]).await.expect("withdraw");
    // The withdrawal answers the consent question; the objection stands beside it.
    assert_eq!(actions(&store.current(&s).await.expect("current")), [Action::Object, Action::Withdraw]);
    // A restriction is a third stance; a later objection replaces the earlier one only; a grant replaces the
    // withdrawal only.
    store.append(&s, vec![change("marketing", Action::Restrict, &[])]).await.expect("restrict");
    store.append(&s, vec![change("marketing", Action::Object, &[])]).await.expect("object again");
    store.append(&s, vec![change("marketing", Action::Grant, &[])]).await.expect("grant");
    let current = store.current(&s).await.expect("current");
    assert_eq!(actions(&current), [Action::Restrict, Action::Object, Action::Grant]);
    assert_eq!(current.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
    // What the engine is warmed from at start holds the same.
    let page = store.current_page(0, 100).await.expect("page");
    let warmed: Vec<Action> = page.iter().filter(|(who, _)| *who == s).map(|(_, e)| e.action).collect();
    assert_eq!(warmed, [Action::Restrict, Action::Object, Action::Grant]);
}

fn keys(ids: &[&str]) -> ImportKeys {
    ImportKeys { source: "ot".into(), ids: ids.iter().map(|i| (*i).to_owned()).collect() }
}

/// A sealer as an import's: each placed event's message offered as in force, naming its seq.
fn in_force_sealer() -> Sealer {
    Box::new(|placed: &[Event], _: &crate::Wants<'_>| {
        let in_force = placed
            .iter()
            .map(|e| {
                let m = OutboxMessage {
                    event_type: format!("consent.{}", e.action.as_str()),
                    payload: format!(r#"{{"seq":{}}}"#, e.seq),
                    event: None,
                };
                (e.seq, m)
            })
            .collect();
        Ok(Sealed { receipt: None, outbox: Vec::new(), in_force })
    })
}

fn year(y: i64) -> Option<Timestamp> {
    Some(Timestamp::from_micros((y - 1970) * 365 * 86_400 * 1_000_000))
}

/// The seqs whose messages reached the outbox, in outbox order.
async fn announced(store: &Arc<dyn Store>) -> Vec<u64> {
    fan_out_all(store, "all", &everything).await;
    let mut out = Vec::new();
    // One message per subject is out at a time: claim until none is left.
    loop {
        let claimed = claim(store, Timestamp::now()).await;
        if claimed.is_empty() {
            return out;
        }
        for c in claimed {
            let v: serde_json::Value = serde_json::from_str(&c.payload).expect("json");
            out.push(v["seq"].as_u64().expect("seq"));
            let done = crate::DeliveryOutcome::Delivered { at: Timestamp::now() };
            store.complete_delivery(&c.destination_id, c.outbox_id, done).await.expect("complete");
        }
    }
}

pub async fn imports_announce_only_what_is_in_force(store: Arc<dyn Store>) {
    store.create_destination(destination("all", &["*"])).await.expect("create");
    // A withdrawal committed before the import (on another node, or just before: nothing but the store
    // knows it yet); the import's grant from 2023 is older and not in force.
    let ana = subject("ana");
    let (w, _) =
        store.append_sealed(&ana, vec![change("analytics", Action::Withdraw, &[])], None).await.expect("w");
    let mut old = change("analytics", Action::Grant, &[]);
    old.occurred_at = year(2023);
    let (placed, _) =
        store.append_imported(&ana, keys(&["a1"]), vec![old], Some(in_force_sealer())).await.expect("import");
    assert_eq!(placed.len(), 1);
    assert_eq!(announced(&store).await, Vec::<u64>::new(), "withdrawn at {}", w[0].seq);
    // An older grant that also sets the subject's place: the place is new and recorded, the grant is still
    // not in force, and nothing is announced for it.
    let mut located = change("analytics", Action::Grant, &[]);
    located.occurred_at = year(2023);
    located.jurisdiction = Some("US-CA".to_owned());
    let (placed, _) = store
        .append_imported(&ana, keys(&["a2"]), vec![located], Some(in_force_sealer()))
        .await
        .expect("import with a place");
    assert_eq!(placed.len(), 1);
    assert_eq!(announced(&store).await, Vec::<u64>::new(), "a place is no consent");

    // A file holding a grant then a withdrawal of one subject: only the withdrawal is in force.
    let bo = subject("bo");
    let mut grant = change("analytics", Action::Grant, &[]);
    grant.occurred_at = year(2022);
    let mut withdraw = change("analytics", Action::Withdraw, &[]);
    withdraw.occurred_at = year(2023);
    // And an objection before both: it stands beside them, in force too.
    let mut object = change("analytics", Action::Object, &[]);
    object.occurred_at = year(2021);
    let (placed, _) = store
        .append_imported(
            &bo,
            keys(&["b1", "b2", "b3"]),
            vec![grant, withdraw, object],
            Some(in_force_sealer()),
        )
        .await
        .expect("import");
    assert_eq!(announced(&store).await, [placed[1].seq, placed[2].seq]);

    // A live withdrawal racing an import of an older grant: whichever is placed first, the grant is
    // announced only if it was in force when placed, i.e. placed before the withdrawal (also when the two
    // share a group commit: each request is judged as placed).
    for round in 0..6 {
        let who = subject(&format!("racer{round}"));
        let live = {
            let (store, who) = (store.clone(), who.clone());
            tokio::spawn(async move {
                store.append(&who, vec![change("marketing", Action::Withdraw, &[])]).await.expect("live")
            })
        };
        let imported = {
            let (store, who) = (store.clone(), who.clone());
            tokio::spawn(async move {
                let mut g = change("marketing", Action::Grant, &[]);
                g.occurred_at = year(2020);
                let id = format!("r{round}");
                store
                    .append_imported(&who, keys(&[id.as_str()]), vec![g], Some(in_force_sealer()))
                    .await
                    .expect("import")
                    .0
            })
        };
        let (live, imported) = (live.await.expect("task"), imported.await.expect("task"));
        let (w, g) = (live[0].seq, imported[0].seq);
        let expected: Vec<u64> = if g < w { vec![g] } else { Vec::new() };
        assert_eq!(announced(&store).await, expected, "round {round}: withdrawal {w}, grant {g}");
        let current = store.current(&who).await.expect("current");
        assert_eq!(actions(&current), [Action::Withdraw], "round {round}");
    }

    // The import's grant sent first and the live withdrawal right after, in one poll: most often one group
    // commit takes both. The grant was in force as placed (before the withdrawal), so it is announced,
    // however the writer grouped them.
    for round in 0..6 {
        let who = subject(&format!("grouped{round}"));
        let mut g = change("marketing", Action::Grant, &[]);
        g.occurred_at = year(2020);
        let id = format!("g{round}");
        let (imported, live) = tokio::join!(
            store.append_imported(&who, keys(&[id.as_str()]), vec![g], Some(in_force_sealer())),
            store.append(&who, vec![change("marketing", Action::Withdraw, &[])])
        );
        let (g, w) = (imported.expect("import").0[0].seq, live.expect("live")[0].seq);
        assert!(g < w, "sent first, placed first");
        assert_eq!(announced(&store).await, [g], "round {round}: grant {g}, withdrawal {w}");
    }
}
