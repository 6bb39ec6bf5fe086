//! Conformance checks of an export's pages ([`Store::export_page`](crate::Store::export_page)), run with
//! the vault's ([`conformance_vault_suite!`](crate::conformance_vault_suite)): they link subjects.

use std::collections::HashMap;
use std::sync::Arc;

use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};

use super::fixtures::{change, subject};
use crate::links::LinkPlan;
use crate::requests::SubjectErasure;
use crate::vault::Kek;
use crate::{ExportRow, Store};

/// Every page of an export, `size` positions a page, to the ledger's end.
async fn export(store: &Arc<dyn Store>, history: bool, size: u64) -> Vec<ExportRow> {
    let end = store.ledger_head().await.expect("head").events;
    let mut all = Vec::new();
    for after in (0..end).step_by(size as usize) {
        let page = store.export_page(after, after + size, history).await.expect("export page");
        assert!(page.iter().all(|r| r.seq > after && r.seq <= after + size), "the page's positions only");
        if history {
            assert_eq!(page.len() as u64, size.min(end - after), "every position of the history");
        }
        all.extend(page);
    }
    all
}

/// What the ledger's own pages say of the same event.
fn expected(subject: Option<SubjectId>, e: Event, survivors: &HashMap<SubjectId, SubjectId>) -> ExportRow {
    ExportRow {
        survivor: subject.as_ref().and_then(|s| survivors.get(s).cloned()),
        subject,
        seq: e.seq,
        pseudonym: e.pseudonym,
        purpose: e.purpose,
        action: e.action,
        scope: e.scope,
        notice: e.notice,
        notice_version: e.notice_version,
        collection_point: e.collection_point,
        recorded_at: e.recorded_at,
        expires_at: e.expires_at,
        jurisdiction: e.jurisdiction,
        occurred_at: e.occurred_at,
    }
}

/// An export's pages hold what the ledger's own pages hold, every field a line writes: the history's all
/// events (an erased subject's without a subject), the current state's the statements in force (an
/// erased subject's left out), each with the survivor of a linked id; whatever the page size.
pub async fn export_pages_hold_what_the_ledger_holds(store: Arc<dyn Store>) {
    let kek = Kek::generate().unwrap_or_else(|e| panic!("kek: {e}"));
    let (ann, bo, anon, acct, gone) =
        (subject("ann"), subject("bo"), subject("anon"), subject("acct"), subject("gone"));
    let at = |s: i64| Timestamp::from_micros(1_600_000_000_000_000 + s * 1_000_000);
    let imported = NewEvent {
        occurred_at: Some(at(1)),
        expires_at: Some(at(9_000)),
        jurisdiction: Some("EU".into()),
        scope: Scope::new(vec!["email".into()], vec!["web".into(), "sms".into()], vec!["partner".into()]),
        ..change("marketing", Action::Grant, &[])
    };
    store.append(&ann, vec![imported, change("analytics", Action::Grant, &["email"])]).await.expect("append");
    let located = NewEvent { jurisdiction: Some("US-CA".into()), ..change("", Action::Locate, &[]) };
    store.append(&bo, vec![located, change("analytics", Action::Withdraw, &[])]).await.expect("append");
    store.append(&anon, vec![change("analytics", Action::Grant, &[])]).await.expect("append");
    store.append(&acct, vec![change("marketing", Action::Deny, &[])]).await.expect("append");
    store.append(&gone, vec![change("analytics", Action::Grant, &[])]).await.expect("append");
    store.append(&ann, vec![change("analytics", Action::Withdraw, &["email"])]).await.expect("append");
    let plan = LinkPlan { from: anon.clone(), kek, merge: Box::new(|_| Vec::new()), seal: None };
    store.link_subjects(&acct, plan).await.expect("link").unwrap_or_else(|r| panic!("refused: {r:?}"));
    let erasure = SubjectErasure { subject: gone.clone(), at: at(2), notices: Vec::new() };
    store.erase_subject(erasure).await.expect("erase");
    assert!(store.destroy_subject_key(&gone).await.expect("destroy the key"));
    let survivors: HashMap<SubjectId, SubjectId> = store
        .survivors_among(vec![ann, bo, anon, acct, gone])
        .await
        .expect("survivors")
        .into_iter()
        .collect();
    assert_eq!(survivors.len(), 1, "anon is linked into acct");

    let history: Vec<ExportRow> = store
        .subject_events_page(0, 1000)
        .await
        .expect("events")
        .into_iter()
        .map(|(s, e)| expected(s, e, &survivors))
        .collect();
    assert_eq!(history.len(), 8);
    assert_eq!(history.iter().filter(|r| r.subject.is_none()).count(), 1, "the erased subject's event");
    let current: Vec<ExportRow> = store
        .current_page(0, 1000)
        .await
        .expect("state")
        .into_iter()
        .map(|(s, e)| expected(Some(s), e, &survivors))
        .collect();
    for size in [1, 2, 1000] {
        assert_eq!(export(&store, true, size).await, history, "history, {size} a page");
        assert_eq!(export(&store, false, size).await, current, "current state, {size} a page");
    }
}
