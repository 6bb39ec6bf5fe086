//! A person's consent signals: a TC or GPP string recorded as consent evidence through the catalogue's
//! `frameworks` mapping (`POST /v1/subjects/{subject}/signals`), and the person's current decisions given
//! back as a TC string, a GPP string or Google Consent Mode (`GET`).

use std::collections::BTreeMap;

use consentry_core::ledger::{ACTOR_GPP, ACTOR_TCF};
use consentry_core::signals::apply::{self, Decide, SignalChange};
use consentry_core::signals::tcf::Deciseconds;
use consentry_core::signals::{GppSection, gpp, string_sha256, tcf};
use consentry_core::{Engine, NewEvent, Query, Reason, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Either, decode_gpp, decode_tcf, one_of, signal_error};
use crate::access::Reader;
use crate::consents::{EventOut, append_events};
use crate::error::{Error, Result};
use crate::receipts::ReceiptProof;
use crate::state::Services;

/// A string a person's consent tool wrote: exactly one of `tcf` and `gpp`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSignal {
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub tcf: Option<String>,
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub gpp: Option<String>,
    /// Where the string was collected (a catalogue collection point).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub collection_point: Option<String>,
}

/// What a signal recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedSignal {
    /// `sha256:<hex>` of the string: the evidence each event carries.
    pub evidence: String,
    /// The events recorded now; empty when this string was recorded before or maps to nothing.
    pub events: Vec<EventOut>,
    /// The receipt of the events recorded now.
    pub receipt: Option<ReceiptProof>,
    /// Whether this string had been recorded for the person before (nothing new is recorded then).
    pub already_recorded: bool,
    pub records_deleted: u64,
}

/// Records what a string says for `subject`, once: a string whose evidence is already in the person's
/// ledger records nothing, so a consent tool re-sending its cookie on every visit never undoes a later
/// choice. A TC string (or a GPP string's `tcfeuv2` section) must pass the TCF's policy checks.
pub async fn record(
    state: &Services,
    subject: &SubjectId,
    body: RecordSignal,
    reader: Reader<'_>,
) -> Result<RecordedSignal> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let view = state.catalog();
    if let Some(cp) = &body.collection_point
        && view.catalog.collection_point(cp).is_none()
    {
        return Err(Error::UnknownCollectionPoint(cp.clone()));
    }
    let (text, actor, changes) = match one_of(body.tcf, body.gpp)? {
        Either::Tcf(text) => {
            let tc = decode_tcf(&text)?;
            tc.check_policy().map_err(signal_error)?;
            let changes = apply::changes_from_tcf(&view.catalog, &tc);
            (text, ACTOR_TCF, changes)
        }
        Either::Gpp(text) => {
            let g = decode_gpp(&text)?;
            for (_, section) in &g.sections {
                if let GppSection::Tcf(tc) = section {
                    tc.check_policy().map_err(|e| {
                        signal_error(e.within(consentry_core::signals::Signal::Gpp, "sections.tcfeuv2"))
                    })?;
                }
            }
            let changes = apply::changes_from_gpp(&view.catalog, &g);
            (text, ACTOR_GPP, changes)
        }
    };
    let evidence = format!("sha256:{}", string_sha256(&text));
    reader.log(&state.access, subject);
    let nothing = |already_recorded| RecordedSignal {
        evidence: evidence.clone(),
        events: Vec::new(),
        receipt: None,
        already_recorded,
        records_deleted: 0,
    };
    if recorded_before(state, subject, &evidence).await? {
        return Ok(nothing(true));
    }
    if changes.is_empty() {
        return Ok(nothing(false));
    }
    let events = changes
        .into_iter()
        .enumerate()
        .map(|(i, c)| new_event(&view.catalog, i, c, actor, &evidence, body.collection_point.clone()))
        .collect::<Result<Vec<_>>>()?;
    let recorded = append_events(state, subject, &view, events, None, body.collection_point).await?;
    Ok(RecordedSignal {
        evidence,
        events: recorded.events,
        receipt: Some(recorded.receipt),
        already_recorded: false,
        records_deleted: recorded.records_deleted,
    })
}

fn new_event(
    catalog: &consentry_core::Catalog,
    i: usize,
    c: SignalChange,
    actor: &str,
    evidence: &str,
    collection_point: Option<String>,
) -> Result<NewEvent> {
    // The mapping was validated with the catalogue; a change it still refuses is the catalogue's fault.
    catalog.check_change(&c.purpose, c.action, &c.scope).map_err(|e| {
        Error::validation(
            format!("frameworks ({i})"),
            format!("the catalogue's mapping gives {:?}: {e}", c.purpose),
        )
    })?;
    Ok(NewEvent {
        purpose: c.purpose,
        action: c.action,
        scope: c.scope,
        notice: None,
        notice_version: None,
        notice_hash: None,
        collection_point,
        actor: actor.to_owned(),
        expires_at: None,
        evidence: Some(evidence.to_owned()),
        occurred_at: None,
        jurisdiction: None,
    })
}

/// Whether any event in the subject's ledger carries `evidence`.
async fn recorded_before(state: &Services, subject: &SubjectId, evidence: &str) -> Result<bool> {
    const PAGE: u32 = 1000;
    let mut after = 0;
    loop {
        let page = state.store.history(subject, after, PAGE).await?;
        if page.iter().any(|e| e.evidence.as_deref() == Some(evidence)) {
            return Ok(true);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => return Ok(false),
        }
    }
}

/// Which form `GET /v1/subjects/{subject}/signals` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalFormat {
    Tcf,
    Gpp,
    ConsentMode,
}

/// The person's current decisions in the form asked for: one of the three members.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpp: Option<String>,
    /// Google Consent Mode v2: `ad_storage`, `analytics_storage`, `ad_user_data`, `ad_personalization`,
    /// each `granted` or `denied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub consent_mode: Option<BTreeMap<&'static str, &'static str>>,
}

/// The engine's decisions for one subject, now.
struct Decisions<'a> {
    engine: &'a Engine,
    subject: &'a str,
    now: Timestamp,
}

impl Decisions<'_> {
    fn decide(
        &self,
        purpose: &str,
        category: Option<&str>,
        recipient: Option<&str>,
    ) -> Option<consentry_core::Decision> {
        let q =
            Query { subject: self.subject, purpose, category, channel: None, recipient, jurisdiction: None };
        self.engine.check(&q, self.now).ok()
    }
}

impl Decide for Decisions<'_> {
    fn allowed(&self, purpose: &str, category: Option<&str>, recipient: Option<&str>) -> bool {
        self.decide(purpose, category, recipient).is_some_and(|d| d.allowed)
    }

    fn consented(&self, purpose: &str, category: Option<&str>, recipient: Option<&str>) -> bool {
        self.decide(purpose, category, recipient)
            .is_some_and(|d| d.allowed && d.reason != Reason::NotOptedOut)
    }

    fn gpc(&self, purpose: &str) -> bool {
        self.decide(purpose, None, None).is_some_and(|d| d.reason == Reason::GpcOptOut)
    }
}

/// The subject's current decisions as a TC string, a GPP string or Consent Mode, through the catalogue's
/// mapping (422 when the catalogue has none for that form). A service's read is logged.
pub fn state(
    state: &Services,
    subject: &SubjectId,
    format: SignalFormat,
    reader: Reader<'_>,
) -> Result<SignalState> {
    reader.log(&state.access, subject);
    let view = state.catalog();
    let now = Timestamp::now();
    let d = Decisions { engine: &state.engine, subject: subject.as_str(), now };
    let ds = Deciseconds::from_offset(now.to_offset())
        .ok_or_else(|| Error::internal("the clock is out of range"))?;
    let unmapped =
        |what: &str| Error::validation("format", format!("the catalogue has no frameworks.{what} mapping"));
    let mut out = SignalState { tcf: None, gpp: None, consent_mode: None };
    match format {
        SignalFormat::Tcf => {
            let tc = apply::tcf_from_state(&view.catalog, &d, ds).ok_or_else(|| unmapped("tcf"))?;
            out.tcf = Some(tcf::encode(&tc).map_err(signal_error)?);
        }
        SignalFormat::Gpp => {
            let g = apply::gpp_from_state(&view.catalog, &d, ds)
                .ok_or_else(|| unmapped("gpp or frameworks.tcf"))?;
            out.gpp = Some(gpp::encode(&g).map_err(signal_error)?);
        }
        SignalFormat::ConsentMode => {
            out.consent_mode = Some(
                apply::consent_mode_from_state(&view.catalog, &d).ok_or_else(|| unmapped("consent_mode"))?,
            );
        }
    }
    Ok(out)
}
