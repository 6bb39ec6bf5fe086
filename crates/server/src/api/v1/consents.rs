//! `/v1/subjects/{subject}/consents`: record changes in the ledger, read the current state and history.

use consentry_service::consents::*;

use axum::extract::State;

use axum::http::{HeaderMap, StatusCode};

use consentry_core::ledger::{event_id, parse_event_id};

use consentry_core::{Query as CheckQuery, Timestamp};

use serde::Deserialize;

use utoipa::IntoParams;

use crate::auth::{Principal, Scope};

use crate::error::{ApiError, ApiResult, Error, Problem};

use crate::extract::{Json, Query, SubjectPath};

use crate::state::AppState;

/// Record consent changes under one notice version; answers once they are durable.
#[utoipa::path(post, path = "/v1/subjects/{subject}/consents", tag = "consents",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = RecordConsents,
    responses((status = 201, body = RecordedConsents), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn record(
    State(state): State<AppState>,
    principal: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<RecordConsents>,
) -> ApiResult<(StatusCode, Json<RecordedConsents>)> {
    principal.require_subject(&subject, Scope::ConsentWrite)?;
    let recorded = record_changes(&state, &subject, body, &principal.actor()).await?;
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// The subject's current state: a decision per purpose and channel, and the statements behind them.
#[utoipa::path(get, path = "/v1/subjects/{subject}/consents", tag = "consents",
    params(("subject" = String, Path)),
    responses((status = 200, body = CurrentConsents), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<CurrentConsents>> {
    principal.require_subject(&subject, Scope::ConsentRead)?;
    log_read(
        &state,
        &principal,
        &subject,
        "GET /v1/subjects/{subject}/consents",
        crate::extract::stated_purpose(&headers),
    );
    let view = state.catalog();
    let now = Timestamp::now();
    // The engine may already hold a newer catalogue than `view` (a concurrent apply); a purpose or channel
    // it no longer knows is left out rather than failing the read.
    let decide = |purpose: &str, channel: Option<&str>| {
        let q = CheckQuery { subject: subject.as_str(), purpose, category: None, channel, recipient: None };
        state.engine.check(&q, now).ok()
    };
    let mut purposes = Vec::new();
    for p in &view.catalog.document().purposes {
        let Some(d) = decide(&p.key, None) else { continue };
        let mut channels = Vec::with_capacity(p.channels.len());
        for ch in &p.channels {
            let Some(cd) = decide(&p.key, Some(ch)) else { continue };
            channels.push(ChannelDecision {
                channel: ch.clone(),
                allowed: cd.allowed,
                reason: cd.reason.as_str().to_owned(),
                event_id: cd.event_seq.map(event_id),
            });
        }
        purposes.push(PurposeDecision {
            purpose: p.key.clone(),
            basis: p.basis.as_str().to_owned(),
            allowed: d.allowed,
            reason: d.reason.as_str().to_owned(),
            event_id: d.event_seq.map(event_id),
            channels,
        });
    }
    let statements =
        state.store.current(&subject).await?.into_iter().map(|e| EventOut::new(&subject, e)).collect();
    Ok(Json(CurrentConsents {
        subject: subject.into_string(),
        catalog_version: view.stored.version,
        purposes,
        statements,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Return events after this event id (the `next` of the previous page).
    pub after: Option<String>,
}

/// The subject's ledger events, oldest first, paginated.
#[utoipa::path(get, path = "/v1/subjects/{subject}/consents/history", tag = "consents",
    params(("subject" = String, Path), HistoryParams),
    responses((status = 200, body = History), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<History>> {
    principal.require_subject(&subject, Scope::ConsentRead)?;
    log_read(
        &state,
        &principal,
        &subject,
        "GET /v1/subjects/{subject}/consents/history",
        crate::extract::stated_purpose(&headers),
    );
    let limit = crate::extract::page_limit(params.limit, 1000)?;
    let after = match params.after.as_deref() {
        None => 0,
        Some(id) => parse_event_id(id).ok_or_else(|| {
            ApiError(Error::InvalidQuery("after must be an event id such as evt_42".into()))
        })?,
    };
    let events = state.store.history(&subject, after, limit).await?;
    let next = (events.len() == limit as usize).then(|| events.last().map(|e| event_id(e.seq))).flatten();
    let events = events.into_iter().map(|e| EventOut::new(&subject, e)).collect();
    Ok(Json(History { events, next }))
}
