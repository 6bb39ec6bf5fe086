//! What the conformance checks build their cases from: keys, subjects, consent changes, sealers, and a
//! check that the whole ledger is one chain.

use std::sync::Arc;

use consentry_core::ledger::ChainVerifier;
use consentry_core::{Action, Event, NewEvent, Scope, SubjectId, Timestamp};

use crate::{ApiKey, Sealed, SealedReceipt, Sealer, Store};

pub(super) fn key(name: &str, byte: u8) -> ApiKey {
    ApiKey {
        id: format!("key_{name}"),
        name: name.into(),
        scopes: vec!["check".into(), "consent:write".into()],
        secret_hash: [byte; 32],
        created_at: Timestamp::now(),
        revoked_at: None,
    }
}

pub(super) fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).unwrap_or_else(|e| panic!("test subject id: {e}"))
}

pub(super) fn change(purpose: &str, action: Action, channels: &[&str]) -> NewEvent {
    NewEvent {
        evidence: None,
        occurred_at: None,
        jurisdiction: None,
        purpose: purpose.into(),
        action,
        scope: Scope::new(vec![], channels.iter().map(|c| (*c).to_owned()).collect(), vec![]),
        notice: Some(purpose.into()),
        notice_version: Some(1),
        notice_hash: Some("ab".repeat(32)),
        collection_point: Some("web-signup".into()),
        actor: "key:test".into(),
        expires_at: None,
    }
}

/// What the test sealers sign: the seqs and the last hash of the events they were given.
pub(super) fn seal_text(events: &[Event]) -> String {
    match (events.first(), events.last()) {
        (Some(first), Some(last)) => format!("{}..{}:{}", first.seq, last.seq, last.hash),
        _ => "empty".into(),
    }
}

/// The catalogue version and issue time of the test sealers' receipts.
pub(super) const SEALED_CATALOG: u64 = 7;
pub(super) const SEALED_AT: Timestamp = Timestamp::from_micros(1_700_000_000_123_456);

/// What the test sealers seal: a receipt `id` (over any events).
pub(super) fn sealed_receipt(id: String, _events: &[Event]) -> SealedReceipt {
    SealedReceipt { id, catalog_version: SEALED_CATALOG, issued_at: SEALED_AT, kid: "kid-1".into() }
}

pub(super) fn sealer(id: &str) -> Sealer {
    let id = id.to_owned();
    Box::new(move |events: &[Event], _: &crate::Wants<'_>| {
        Ok(Sealed { receipt: Some(sealed_receipt(id, events)), outbox: Vec::new(), in_force: Vec::new() })
    })
}

pub(super) fn failing_sealer() -> Sealer {
    Box::new(|_: &[Event], _: &crate::Wants<'_>| Err("no signing key".to_owned()))
}

/// Every ledger event, checked as one chain; returns them.
pub(super) async fn verified_chain(store: &Arc<dyn Store>) -> Vec<Event> {
    let mut verifier = ChainVerifier::new();
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_page(after, 100).await.expect("page");
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert!(verifier.push(e), "chain breaks at {:?}", verifier.first_break());
        }
        after = page.last().map_or(after, |e| e.seq);
        all.extend(page);
    }
    assert_eq!(store.ledger_head().await.expect("head").head, verifier.head());
    all
}
