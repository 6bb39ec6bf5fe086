//! Linking: `POST /v1/subjects/{subject}/links`. The rules (the merge, what moves, the alias) are in
//! [`consentry_service::links`] and [`consentry_core::link`].

use axum::extract::State;
use consentry_service::links::{self, LinkIn, Linked};

use crate::auth::{Principal, Scope};
use crate::error::{ApiResult, Error, Problem};
use crate::extract::{Json, SubjectPath};
use crate::state::AppState;

/// Merge another subject's record into this one (an app install's anonymous id into the account it signed
/// in to). Per purpose and scope the most recent explicit choice by its original time wins; a grant is
/// carried only where the survivor then allows nothing that neither record allowed, and never past a
/// refusal at least as recent. Each carried choice is a ledger event of this subject with actor
/// `link:<the other's pseudonym>`. Identifiers, vault records, devices and requests move over, and the other
/// id becomes an alias: checks, tokens, devices and routes under it reach this subject. A `{subject}` that is
/// itself an alias is resolved to its survivor. Unlinking is not offered.
#[utoipa::path(post, operation_id = "linkSubjects", path = "/v1/subjects/{subject}/links", tag = "identifiers",
    params(("subject" = String, Path, description = "The surviving subject")),
    request_body = LinkIn,
    responses((status = 200, body = Linked), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem, description = "`not_found`: no subject is known by `from`"),
              (status = 409, body = Problem, description = "`subject_linked`: `from` is already linked into a subject"),
              (status = 410, body = Problem, description = "`subject_erased`: either subject was erased"),
              (status = 422, body = Problem, description = "`validation_failed`: `from` is this subject, or no subject id")),
    security(("bearer" = ["consent:write", "identifiers:write"])))]
pub async fn link(
    State(state): State<AppState>,
    caller: Principal,
    SubjectPath(subject): SubjectPath,
    Json(body): Json<LinkIn>,
) -> ApiResult<Json<Linked>> {
    let service = caller.service().ok_or(Error::WrongPrincipal("only a service key may link subjects"))?;
    service.require(Scope::ConsentWrite)?;
    service.require(Scope::IdentifiersWrite)?;
    Ok(Json(links::link(&state, &subject, body).await?))
}
