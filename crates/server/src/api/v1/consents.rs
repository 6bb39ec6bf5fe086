//! `/v1/subjects/{subject}/consents`: record changes in the ledger, read the current state and history.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::consents::{
    self, CurrentConsents, History, HistoryPage, RecordConsents, RecordedConsents,
};
use consentry_service::evidence::{self, EvidenceOut};
use consentry_service::guardians::writes::require_reader;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Principal, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query, SubjectPath, stated_purpose};
use crate::state::AppState;

/// Record consent changes under one notice version; answers once they are durable.
///
/// A change made with the subject's own token is in their access log (caller `subject`). A known child's
/// consent needs a guardian: their own token or a service key naming `"actor": "guardian:<id>"`, both
/// recorded as `guardian:<pseudonym of the guardian>` (the ledger names no one by subject id);
/// withdrawals are always taken.
#[utoipa::path(post, operation_id = "recordConsents", path = "/v1/subjects/{subject}/consents", tag = "consents",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body = RecordConsents,
    responses((status = 201, body = RecordedConsents), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 413, body = Problem),
              (status = 422, body = Problem, description = "`unknown_purpose`, `unknown_category`, `unknown_channel`, \
               `unknown_recipient`, `unknown_notice` or `unknown_collection_point` for a key the catalogue lacks; \
               `action_not_allowed` for an action the purpose does not allow; `not_in_purpose` for a category, channel \
               or recipient outside the purpose; `notice_mismatch` for a notice or version other than the purpose's; \
               `validation_failed` for a grant without its notice, or an `actor` that names no recorded guardian"),
              (status = 403, body = Problem, description = "`guardian_required`: the subject is a known child and the change \
               grants or renews a consent purpose without a guardian (or moves the child's jurisdiction); `forbidden` for \
               other credentials that may not write here")),
    security(("bearer" = ["consent:write"]), ("subject_token" = [])))]
pub async fn record(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<RecordConsents>,
) -> ApiResult<(StatusCode, Json<RecordedConsents>)> {
    // Who may write (the person, a guardian of theirs, a key with `consent:write`) is decided with the
    // actor the change is recorded as.
    let reader = Reader::action(&principal, "POST /v1/subjects/{subject}/consents", stated_purpose(&headers));
    let recorded = consents::record(&state, &principal, &subject, body, reader).await?;
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// The subject's current state: a decision per purpose and channel, and the statements behind them.
#[utoipa::path(get, operation_id = "getConsents", path = "/v1/subjects/{subject}/consents", tag = "consents",
    params(("subject" = String, Path)),
    responses((status = 200, body = CurrentConsents), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<Json<CurrentConsents>> {
    let guardian = require_reader(&state, &principal, &subject, Scope::ConsentRead).await?;
    let reader = Reader::new(&principal, "GET /v1/subjects/{subject}/consents", stated_purpose(&headers))
        .by_guardian(guardian.as_deref());
    Ok(Json(consents::current(&state, &subject, reader).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Return events after this event id (the `next` of the previous page).
    #[param(pattern = "^evt_0*[1-9][0-9]{0,17}$")]
    pub after: Option<String>,
}

/// The subject's ledger events, oldest first, paginated.
#[utoipa::path(get, operation_id = "getConsentHistory", path = "/v1/subjects/{subject}/consents/history", tag = "consents",
    params(("subject" = String, Path), HistoryParams),
    responses((status = 200, body = History), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<History>> {
    let guardian = require_reader(&state, &principal, &subject, Scope::ConsentRead).await?;
    let page = HistoryPage { limit: params.limit, after: params.after };
    let reader =
        Reader::new(&principal, "GET /v1/subjects/{subject}/consents/history", stated_purpose(&headers))
            .by_guardian(guardian.as_deref());
    Ok(Json(consents::history(&state, &subject, page, reader).await?))
}

/// The evidence an event of the subject's history came with (an imported change's: the original receipt,
/// IP address, user agent, form id), stored encrypted under the subject's key; its `sha256` is the
/// `evidence` the event carries. The read is in the subject's access log.
#[utoipa::path(get, operation_id = "getEventEvidence", path = "/v1/subjects/{subject}/consents/history/{id}/evidence",
    tag = "consents",
    params(("subject" = String, Path), ("id" = String, Path, description = "The event's id, e.g. `evt_42`")),
    responses((status = 200, body = EvidenceOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem),
              (status = 404, body = Problem, description = "`not_found`: no such event of the subject, or none \
               of its evidence is stored")),
    security(("bearer" = ["consent:read"]), ("subject_token" = [])))]
pub async fn evidence(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<EvidenceOut>> {
    let guardian = require_reader(&state, &principal, &subject, Scope::ConsentRead).await?;
    let reader = Reader::new(
        &principal,
        "GET /v1/subjects/{subject}/consents/history/{id}/evidence",
        stated_purpose(&headers),
    )
    .by_guardian(guardian.as_deref());
    Ok(Json(evidence::read(&state, &subject, &id, reader).await?))
}
