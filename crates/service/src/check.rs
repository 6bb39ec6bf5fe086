//! `/v1/check`: decisions from memory. The hot path: the body is parsed borrowing from the request
//! buffer, the engine allocates nothing, and nothing touches the store.

use std::borrow::Cow;

use consentry_core::ledger::event_id;

use consentry_core::{Decision, Query, QueryError, Reason, SubjectId, Timestamp};

use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use crate::error::{Error, Result};

use crate::state::Services;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub subject: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub purpose: Cow<'a, str>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub recipient: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    /// `granted`, `no_consent`, `withdrawn`, `denied`, `expired`, `objected`, `restricted`,
    /// `not_covered`, `gpc_opt_out`, `basis_contract`, `basis_legitimate_interest`, ...
    #[schema(value_type = String)]
    pub reason: Reason,
    /// The ledger event the answer rests on.
    pub event_id: Option<String>,
}

impl From<Decision> for CheckResponse {
    fn from(d: Decision) -> Self {
        CheckResponse { allowed: d.allowed, reason: d.reason, event_id: d.event_seq.map(event_id) }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest<'a> {
    #[serde(borrow)]
    pub checks: Vec<CheckRequest<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per check, in the order asked.
    pub results: Vec<CheckResponse>,
}

pub fn decide(state: &Services, c: &CheckRequest<'_>, now: Timestamp, at: &str) -> Result<Decision> {
    if let Err(e) = SubjectId::validate(&c.subject) {
        return Err(Error::validation(format!("{at}subject"), format!("the subject id {e}")));
    }
    let q = Query {
        subject: &c.subject,
        purpose: &c.purpose,
        category: c.category.as_deref(),
        channel: c.channel.as_deref(),
        recipient: c.recipient.as_deref(),
    };
    let d = state.engine.check(&q, now).map_err(|e| match e {
        QueryError::UnknownPurpose => Error::UnknownPurpose(c.purpose.to_string()),
        QueryError::UnknownCategory => Error::UnknownCategory(q.category.unwrap_or("").to_owned()),
        QueryError::UnknownChannel => Error::UnknownChannel(q.channel.unwrap_or("").to_owned()),
        QueryError::UnknownRecipient => Error::UnknownRecipient(q.recipient.unwrap_or("").to_owned()),
    })?;
    // A subject the engine holds, or whose answer rests on an event, is known: it is counted for the
    // access log, and it cannot be erased (erasure forgets it). Only unknown subjects pay for the
    // erasure look-up, and only once something was erased.
    let known = d.event_seq.is_some() || state.engine.contains(q.subject);
    let d = if !known && state.erasures.is_erased(q.subject) {
        Decision { allowed: false, reason: Reason::Erased, event_seq: None }
    } else {
        d
    };
    state.metrics.record_check(d.allowed, d.reason);
    // Count checks of subjects Consentry knows (never per-check rows, never labels).
    if known {
        state.access.checked(q.subject, q.purpose, now);
    }
    Ok(d)
}
