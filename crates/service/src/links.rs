//! Linking two subjects: `POST /v1/subjects/{subject}/links` with `{"from"}` merges the record of `from`
//! (an app install's anonymous id) into the subject (the account it signed in to), the **survivor**.
//!
//! 1. **Choices merge** by [`consentry_core::link`]'s rule: per purpose and scope the most recent explicit
//!    choice by its original time wins, a grant only where it provably allows nothing that neither record
//!    allowed. The merge reads both records inside the store's write that orders every ledger append
//!    ([`LinkStore::link_subjects`](consentry_store::LinkStore::link_subjects)), so no consent write of
//!    either id slips between the read and the merge; a write for `from` after the link is refused by the
//!    store and goes to the survivor instead ([`crate::consents`]). Each carried choice is a ledger event
//!    of the survivor with actor `link:<pseudonym of from>` and its original time (`occurred_at`).
//! 2. **Everything else moves** in the same write: identifiers and vault records (re-sealed under the
//!    survivor's data key), paired devices and data subject requests; `from`'s current state goes.
//! 3. **An alias**: `from` now names the survivor ([`aliases::Aliases`]), on this node at once, on the
//!    others within the follower's refresh, and after a restart: checks, subject tokens, devices and
//!    `{subject}` routes under the old id reach the person, and answers name the survivor.
//!
//! Refused: a link to oneself (422), an unknown `from` (404), a `from` that is already an alias (409
//! `subject_linked`), an erased subject (410). A survivor that is itself an alias is resolved to its own
//! survivor. Unlinking is not offered: what merged cannot be told apart again.

pub mod aliases;

use consentry_core::link::{self as rule, Places};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::{
    LinkPlan, LinkRefusal, LinkedSubjects, Sealed, SealedReceipt, Sealer, StoreError, Wants,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::consents::EventOut;
use crate::error::{Error, Result};
use crate::events;
use crate::receipts::{self, ReceiptContext, ReceiptProof, new_receipt_id};
use crate::state::Services;

/// The record to merge into the subject of the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    /// The other subject id (e.g. an app install's anonymous id); it becomes an alias of this subject.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub from: String,
}

/// What moved to the survivor.
#[derive(Debug, Serialize, ToSchema)]
pub struct Moved {
    pub identifiers: u64,
    pub records: u64,
    pub devices: u64,
    pub requests: u64,
}

/// The result of a link.
#[derive(Debug, Serialize, ToSchema)]
pub struct Linked {
    /// The surviving subject id.
    pub subject: String,
    /// The id merged into it, now an alias of it.
    pub from: String,
    /// The choices of `from` carried over, recorded for the survivor (actor `link:…`, their original time
    /// as `occurred_at`).
    pub events: Vec<EventOut>,
    /// The receipt of the carried choices; `null` when none was carried.
    pub receipt: Option<ReceiptProof>,
    pub moved: Moved,
}

/// Merges `from` into `survivor` (see the module documentation).
pub async fn link(state: &Services, survivor: &SubjectId, body: LinkIn) -> Result<Linked> {
    let from =
        SubjectId::new(body.from).map_err(|e| Error::validation("from", format!("the subject id {e}")))?;
    let mut survivor = state.aliases.survivor(survivor.clone());
    if from == survivor {
        return Err(Error::validation("from", "a subject cannot be linked to itself"));
    }
    if state.aliases.resolve(from.as_str()).is_some() {
        return Err(already_linked());
    }
    // An age or a guardian relation does not move with a link (a child's record merged into an
    // account would lose what makes them a child, and their own grants would then count): refused.
    if state.engine.child_until(from.as_str()).is_some()
        || !state.store.guardians(&from).await?.is_empty()
        || !state.store.children(&from).await?.is_empty()
    {
        return Err(Error::Conflict(
            "`from` has an age or guardian relations recorded, which a link does not move, so it cannot be \
             merged into another subject; record them on the surviving subject instead"
                .into(),
        ));
    }
    // Nor does a household membership (the household's devices would keep a member whose statements
    // moved away): refused, so the operator takes `from` out of its households or adds the survivor.
    if !state.store.subject_households(&from).await?.is_empty() {
        return Err(Error::Conflict(
            "`from` is a member of a household, which a link does not move, so it cannot be merged into \
             another subject; remove it from its households (and add the surviving subject) first"
                .into(),
        ));
    }
    // A survivor linked on another node meanwhile: its own survivor, once.
    let mut tries = 0;
    let linked = loop {
        if state.erasures.is_erased(from.as_str()) || state.erasures.is_erased(survivor.as_str()) {
            return Err(Error::SubjectErased);
        }
        let (plan, receipt_id) = plan(state, &survivor, &from)?;
        match state.store.link_subjects(&survivor, plan).await {
            Ok(Ok(linked)) => break (linked, receipt_id),
            Ok(Err(LinkRefusal::Same)) => {
                return Err(Error::validation("from", "a subject cannot be linked to itself"));
            }
            Ok(Err(LinkRefusal::FromUnknown)) => return Err(Error::NotFound("subject named in `from`")),
            Ok(Err(LinkRefusal::FromLinked)) => return Err(already_linked()),
            Err(StoreError::Linked(next)) if tries == 0 => {
                state.aliases.link(survivor.as_str(), next.as_str());
                survivor = next;
                tries += 1;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (LinkedSubjects { events: placed, sealed, moved }, receipt_id) = linked;
    // This node: the survivor's new statements, `from` (and its aliases) forgotten and aliased.
    state.apply_committed(&survivor, &placed);
    state.engine.forget(from.as_str());
    state.aliases.link(from.as_str(), survivor.as_str());
    state.metrics.ledger_appends.inc_by(placed.len() as u64);
    state.metrics.subjects.set(state.engine.subject_count() as i64);
    state.dispatch_wake.notify_one();
    state.devices.subject_changed(&from);
    state.devices.subject_changed(&survivor);
    tracing::info!(events = placed.len(), devices = moved.devices.len(), "two subjects were linked");
    let receipt = match sealed {
        Some(sealed) if !placed.is_empty() => {
            Some(prove(state, &survivor, receipt_id, sealed, &placed).await?)
        }
        _ => None,
    };
    Ok(Linked {
        subject: survivor.as_str().to_owned(),
        from: from.as_str().to_owned(),
        events: placed.into_iter().map(|e| EventOut::new(&survivor, e)).collect(),
        receipt,
        moved: Moved {
            identifiers: moved.identifiers,
            records: moved.records,
            devices: moved.devices.len() as u64,
            requests: moved.requests,
        },
    })
}

fn already_linked() -> Error {
    Error::SubjectLinked("`from` is already linked into a subject".into())
}

/// The store's plan: the merge by the catalogue in force and where each record is, and the sealer of the
/// carried events (a receipt and their outbox messages, as for any consent change).
fn plan(state: &Services, survivor: &SubjectId, from: &SubjectId) -> Result<(LinkPlan, String)> {
    let view = state.catalog();
    let places_of = |s: &SubjectId| state.engine.subject_jurisdiction(s.as_str());
    let (into_place, from_place) = (places_of(survivor), places_of(from));
    let merge_view = std::sync::Arc::clone(&view);
    let merge = Box::new(move |read: consentry_store::LinkRead<'_>| {
        let places = Places { into: into_place.as_deref(), from: from_place.as_deref() };
        let actor = rule::actor(read.from_pseudonym);
        rule::carried(&merge_view.catalog, read.into, read.from, places, Timestamp::now())
            .into_iter()
            .map(|f| rule::carry(f, &actor))
            .collect()
    });
    let receipt_id = new_receipt_id()?;
    let kid = state.signing.current().kid().to_owned();
    let (sealing_state, sealing_subject, id) = (state.clone(), survivor.clone(), receipt_id.clone());
    let version = view.stored.version;
    let seal: Sealer = Box::new(move |placed: &[consentry_core::Event], wants: &Wants<'_>| {
        Ok(Sealed {
            receipt: Some(SealedReceipt { id, catalog_version: version, issued_at: Timestamp::now(), kid }),
            outbox: events::consent_messages(&sealing_state, &sealing_subject, placed, wants),
            in_force: Vec::new(),
        })
    });
    let plan = LinkPlan { from: from.clone(), kek: state.kek.clone(), merge, seal: Some(seal) };
    Ok((plan, receipt_id))
}

/// The receipt of the carried events, with its proof of inclusion.
async fn prove(
    state: &Services,
    survivor: &SubjectId,
    id: String,
    sealed: SealedReceipt,
    placed: &[consentry_core::Event],
) -> Result<ReceiptProof> {
    let view = state.catalog();
    let ctx = ReceiptContext {
        id: id.clone(),
        subject: survivor.clone(),
        controller: state.config.controller.clone(),
        notice: None,
        collection_point: None,
    };
    let signer = state.signing.current();
    let payload = receipts::build(&ctx, &view.catalog, placed, sealed.issued_at, &signer);
    receipts::prove(state, id, survivor, sealed.issued_at, payload, placed).await
}
