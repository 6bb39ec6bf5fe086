//! Decisions from memory: may this subject's data be used for this purpose, now? The hot path: requests
//! borrow from the caller's buffer, the engine allocates nothing, and nothing touches the store.

use std::borrow::Cow;

use consentry_core::ledger::event_id;
use consentry_core::{Decision, Dimension, Query, QueryError, Reason, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::state::Services;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest<'a> {
    /// The brand's own id of the person.
    #[serde(borrow)]
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub subject: Cow<'a, str>,
    /// A purpose of the catalogue (422 `unknown_purpose` for one it lacks).
    #[serde(borrow)]
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub purpose: Cow<'a, str>,
    /// A data category of the catalogue (422 `unknown_category`); none: every category of the purpose.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub category: Option<Cow<'a, str>>,
    /// A channel of the catalogue (422 `unknown_channel`).
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub channel: Option<Cow<'a, str>>,
    /// A recipient of the catalogue (422 `unknown_recipient`).
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    pub recipient: Option<Cow<'a, str>>,
    /// A place of the catalogue's `jurisdictions` (ISO 3166-1 alpha-2 or ISO 3166-2) whose rules decide
    /// (422 `unknown_jurisdiction`); none: the subject's own jurisdiction if a consent write set one,
    /// else opt-in everywhere. Under opt-out a purpose is allowed (`not_opted_out`) until the person opts
    /// out.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, min_length = 2, max_length = 6, pattern = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", example = "US-CA")]
    pub jurisdiction: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    /// `granted`, `no_consent`, `withdrawn`, `denied`, `expired`, `objected`, `restricted`,
    /// `not_covered`, `gpc_opt_out`, `not_opted_out` (allowed: an opt-out regime, and no opt-out),
    /// `guardian_required` (a known child without a guardian's grant), `child_protected` (sale or
    /// sharing for a known child: never allowed), `basis_contract`, `basis_legitimate_interest`, ...
    #[schema(value_type = String)]
    pub reason: Reason,
    /// The ledger event the answer rests on.
    pub event_id: Option<String>,
    /// Present exactly when `reason` is `not_covered`: which part of the question was not covered:
    /// `category`, `channel` or `recipient` (the first of these, in this order, when several were not).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "category")]
    pub not_covered: Option<Dimension>,
}

impl From<Decision> for CheckResponse {
    fn from(d: Decision) -> Self {
        CheckResponse {
            allowed: d.allowed,
            reason: d.reason,
            event_id: d.event_seq.map(event_id),
            not_covered: d.not_covered,
        }
    }
}

/// One decision for `principal`. A paired device may ask about its own subject only, naming a data category,
/// within the categories and purposes it declared; which other principals may ask is the face's to check.
pub fn one(services: &Services, principal: &Principal, c: &CheckRequest<'_>) -> Result<CheckResponse> {
    if let Principal::Household(_) = principal {
        return Err(Error::DeviceForbidden("a household's device decides from its snapshot".into()));
    }
    if let Principal::Device(device) = principal {
        // A device paired under an id since linked into another subject asks about either id.
        let survivor = services.aliases.resolve(&c.subject);
        device.require_subject(survivor.as_deref().unwrap_or(&c.subject))?;
        let Some(category) = c.category.as_deref() else {
            return Err(Error::DeviceForbidden("a device names the data category it asks about".into()));
        };
        device.require(category, &c.purpose)?;
    }
    Ok(decide(services, c, Timestamp::now(), None)?.into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest<'a> {
    /// 1 to `check_batch_max` checks (10,000 by default; more is 422 `validation_failed`).
    #[serde(borrow)]
    #[schema(min_items = 1)]
    pub checks: Vec<CheckRequest<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per check, in the order asked.
    pub results: Vec<CheckResponse>,
}

/// One decision; `index` is the check's place in a batch, named only in an error (so a batch allocates
/// nothing per check on the way to its answers).
fn decide(state: &Services, c: &CheckRequest<'_>, now: Timestamp, index: Option<usize>) -> Result<Decision> {
    if let Err(e) = SubjectId::validate(&c.subject) {
        let path = index.map_or_else(|| "subject".to_owned(), |i| format!("checks[{i}].subject"));
        return Err(Error::validation(path, format!("the subject id {e}")));
    }
    // An id linked into another subject answers for the survivor.
    let survivor = state.aliases.resolve(&c.subject);
    let q = Query {
        subject: survivor.as_deref().unwrap_or(&c.subject),
        purpose: &c.purpose,
        category: c.category.as_deref(),
        channel: c.channel.as_deref(),
        recipient: c.recipient.as_deref(),
        jurisdiction: c.jurisdiction.as_deref(),
    };
    let d = state.engine.check(&q, now).map_err(|e| match e {
        QueryError::UnknownPurpose => Error::UnknownPurpose(c.purpose.to_string()),
        QueryError::UnknownCategory => Error::UnknownCategory(q.category.unwrap_or("").to_owned()),
        QueryError::UnknownChannel => Error::UnknownChannel(q.channel.unwrap_or("").to_owned()),
        QueryError::UnknownRecipient => Error::UnknownRecipient(q.recipient.unwrap_or("").to_owned()),
        QueryError::UnknownJurisdiction => {
            let path =
                index.map_or_else(|| "jurisdiction".to_owned(), |i| format!("checks[{i}].jurisdiction"));
            Error::unknown_jurisdiction(&path, q.jurisdiction.unwrap_or(""))
        }
    })?;
    // A subject the engine holds, or whose answer rests on an event, is known: it is counted for the
    // access log, and it cannot be erased (erasure forgets it). Only unknown subjects pay for the
    // erasure look-up, and only once something was erased.
    let known = d.event_seq.is_some() || state.engine.contains(q.subject);
    let d =
        if !known && state.erasures.is_erased(q.subject) { Decision::new(Reason::Erased, None) } else { d };
    state.metrics.record_check(d.reason);
    // The console's checks per purpose: two atomic additions, written by a worker.
    state.purpose_checks.count(q.purpose, d.allowed);
    // Count checks of subjects Consentry knows (never per-check rows, never labels).
    if known {
        state.access.checked(q.subject, q.purpose, now);
    }
    Ok(d)
}

/// Many decisions at one instant, in the order asked: between 1 and the configured maximum.
pub fn batch(services: &Services, b: &BatchRequest<'_>) -> Result<BatchResponse> {
    let max = services.config.check_batch_max;
    if b.checks.is_empty() || b.checks.len() > max {
        return Err(Error::validation("checks", format!("send between 1 and {max} checks")));
    }
    let now = Timestamp::now();
    let results = b
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| decide(services, c, now, Some(i)).map(CheckResponse::from))
        .collect::<Result<Vec<_>>>()?;
    Ok(BatchResponse { results })
}
