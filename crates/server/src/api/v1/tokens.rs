//! `/v1/subjects/{subject}/tokens`: a service mints a short-lived subject token and a preference-centre
//! link that carries it. Needs `tokens:mint`; the minting is in the subject's access log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consentry_service::tokens::{self, MintToken, MintedTokenOut};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, SubjectPath, parse_json, stated_purpose};
use crate::state::AppState;

/// Mint a subject token and a preference-centre link for one person (a service key with `tokens:mint`).
/// The body is optional. The minting is in the person's access log under the key's name, with the purpose
/// stated in `X-Consentry-Purpose`.
#[utoipa::path(post, path = "/v1/subjects/{subject}/tokens", tag = "subjects",
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
    let request: MintToken =
        if body.iter().all(u8::is_ascii_whitespace) { MintToken::default() } else { parse_json(&body)? };
    Ok((
        StatusCode::CREATED,
        Json(tokens::mint(&state, &caller, &subject, request, stated_purpose(&headers))?),
    ))
}
