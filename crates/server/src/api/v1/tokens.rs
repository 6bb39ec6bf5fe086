//! `/v1/subjects/{subject}/tokens`: a service mints a short-lived subject token and a preference-centre
//! link that carries it.

use consentry_service::tokens::*;

use std::sync::Arc;

use axum::body::Bytes;

use axum::extract::State;

use axum::http::StatusCode;

use consentry_core::Timestamp;

use crate::auth::{
    Caller, SUBJECT_TOKEN_TTL_DEFAULT, SUBJECT_TOKEN_TTL_MAX, SUBJECT_TOKEN_TTL_MIN, Scope,
    mint_subject_token,
};

use crate::error::{ApiError, ApiResult, Problem};

use crate::extract::{Json, SubjectPath, parse_json};

use crate::state::AppState;

/// Mint a subject token and a preference-centre link for one person. The body is optional.
#[utoipa::path(post, path = "/v1/subjects/{subject}/tokens", tag = "subjects",
    params(("subject" = String, Path, description = "The brand's own id of the person")),
    request_body(content = Option<MintToken>),
    responses((status = 201, body = MintedTokenOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn mint(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    SubjectPath(subject): SubjectPath,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MintedTokenOut>)> {
    caller.require(Scope::ConsentWrite)?;
    let request: MintToken =
        if body.iter().all(u8::is_ascii_whitespace) { MintToken::default() } else { parse_json(&body)? };
    let ttl = request.ttl.unwrap_or(SUBJECT_TOKEN_TTL_DEFAULT);
    if !(SUBJECT_TOKEN_TTL_MIN..=SUBJECT_TOKEN_TTL_MAX).contains(&ttl) {
        return Err(ApiError::validation(
            "/ttl",
            format!("must be between {SUBJECT_TOKEN_TTL_MIN} and {SUBJECT_TOKEN_TTL_MAX} seconds"),
        ));
    }
    if let Some(locale) = &request.locale
        && !is_language_tag(locale)
    {
        return Err(ApiError::validation("/locale", "must be a language tag such as `de` or `en-GB`"));
    }
    let minted = mint_subject_token(&state, &subject, ttl, request.locale, Timestamp::now())?;
    let url = format!("{}/preferences?token={}", state.config.public_url(), minted.token);
    Ok((
        StatusCode::CREATED,
        Json(MintedTokenOut { token: minted.token, url, expires_at: minted.expires_at.to_string() }),
    ))
}
