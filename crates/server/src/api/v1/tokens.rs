//! `/v1/subjects/{subject}/tokens`: a service mints a short-lived subject token and a preference-centre
//! link (needs `tokens:mint`); a service with `tokens:mint` or the person's own token revokes all the
//! person's tokens. Both are in the subject's access log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consentry_service::access::Reader;
use consentry_service::tokens::{self, MintToken, MintedTokenOut, REVOKE_ROUTE};

use crate::auth::{Caller, Principal, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, SubjectPath, parse_json, require_object, stated_purpose};
use crate::state::AppState;

/// Mint a subject token and a preference-centre link for one person (a service key with `tokens:mint`).
/// The body is optional. The minting is in the person's access log under the key's name, with the purpose
/// stated in `X-Consentry-Purpose`.
#[utoipa::path(post, operation_id = "mintSubjectToken", path = "/v1/subjects/{subject}/tokens", tag = "subjects",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body(content = Option<MintToken>),
    responses((status = 201, body = MintedTokenOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["tokens:mint"])))]
pub async fn mint(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MintedTokenOut>)> {
    caller.require(Scope::TokensMint)?;
    // No body, or JSON `null`, asks for the defaults.
    let request: MintToken = if body.iter().all(u8::is_ascii_whitespace) {
        MintToken::default()
    } else {
        require_object(&body, true)?;
        parse_json::<Option<MintToken>>(&body)?.unwrap_or_default()
    };
    Ok((
        StatusCode::CREATED,
        Json(tokens::mint(&state, &caller, &subject, request, stated_purpose(&headers)).await?),
    ))
}

/// Revoke every subject token of one person issued up to now: API tokens, preference-centre links and
/// sessions, on every node as soon as this answers. A service key with `tokens:mint`, or the person's own
/// subject token ("sign out everywhere"; the token itself stops working too). Tokens minted afterwards
/// work. A revoked token is answered 401 `unauthorized`, like any other refused token. The revocation is in
/// the person's access log.
#[utoipa::path(delete, operation_id = "revokeSubjectTokens", path = "/v1/subjects/{subject}/tokens", tag = "subjects",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    responses((status = 204, description = "Revoked"), (status = 400, body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 410, body = Problem)),
    security(("bearer" = ["tokens:mint"]), ("subject_token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    SubjectPath(subject): SubjectPath,
) -> ApiResult<StatusCode> {
    principal.require_subject(&subject, Scope::TokensMint)?;
    let reader = Reader::new(&principal, REVOKE_ROUTE, stated_purpose(&headers));
    tokens::revoke(&state, &subject, reader).await?;
    Ok(StatusCode::NO_CONTENT)
}
