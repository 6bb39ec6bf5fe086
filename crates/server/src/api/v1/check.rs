//! `/v1/check`: decisions from memory. The hot path: the body is parsed borrowing from the request
//! buffer, the engine allocates nothing, and nothing touches the store.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::State;
use consentry_core::ledger::event_id;
use consentry_core::{Decision, Query, QueryError, Reason, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, JsonBody};
use crate::state::AppState;

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

fn decide(state: &AppState, c: &CheckRequest<'_>, now: Timestamp, at: &str) -> ApiResult<Decision> {
    if let Err(e) = SubjectId::validate(&c.subject) {
        return Err(ApiError::validation(format!("{at}subject"), format!("the subject id {e}")));
    }
    let q = Query {
        subject: &c.subject,
        purpose: &c.purpose,
        category: c.category.as_deref(),
        channel: c.channel.as_deref(),
        recipient: c.recipient.as_deref(),
    };
    let d = state.engine.check(&q, now).map_err(|e| match e {
        QueryError::UnknownPurpose => ApiError::UnknownPurpose(c.purpose.to_string()),
        QueryError::UnknownCategory => ApiError::UnknownCategory(q.category.unwrap_or("").to_owned()),
        QueryError::UnknownChannel => ApiError::UnknownChannel(q.channel.unwrap_or("").to_owned()),
        QueryError::UnknownRecipient => ApiError::UnknownRecipient(q.recipient.unwrap_or("").to_owned()),
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

/// May this subject's data be used for this purpose (and category, channel, recipient), now? A service
/// key needs `check`; a paired device may ask about its own subject only, naming a data category, within
/// the categories and purposes it declared (else 403).
#[utoipa::path(post, path = "/v1/check", tag = "check", request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<AppState>,
    caller: Principal,
    body: JsonBody,
) -> ApiResult<Json<CheckResponse>> {
    match &caller {
        Principal::Service(service) => service.require(Scope::Check)?,
        Principal::Subject(_) => {
            return Err(ApiError::WrongPrincipal("subject tokens may not use this route"));
        }
        Principal::Device(_) => {}
    }
    let c: CheckRequest<'_> = body.parse()?;
    if let Principal::Device(device) = &caller {
        device.require_subject(&c.subject)?;
        let Some(category) = c.category.as_deref() else {
            return Err(ApiError::DeviceForbidden("a device names the data category it asks about".into()));
        };
        device.require(category, &c.purpose)?;
    }
    Ok(Json(decide(&state, &c, Timestamp::now(), "")?.into()))
}

/// Many checks in one request (up to the configured maximum, 10,000 by default).
#[utoipa::path(post, path = "/v1/check/batch", tag = "check", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    body: JsonBody,
) -> ApiResult<Json<BatchResponse>> {
    caller.require(Scope::Check)?;
    let b: BatchRequest<'_> = body.parse()?;
    let max = state.config.check_batch_max;
    if b.checks.is_empty() || b.checks.len() > max {
        return Err(ApiError::validation("checks", format!("send between 1 and {max} checks")));
    }
    let now = Timestamp::now();
    let results = b
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| decide(&state, c, now, &format!("checks[{i}].")).map(CheckResponse::from))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(BatchResponse { results }))
}
