//! `/v1/verifications`: a person without a token proves they control an e-mail address or a phone number,
//! and gets a subject token for their own routes and preference centre. Open to anyone (no credential): the rules
//! (the same answer for known and unknown addresses, hashed single-use codes, attempts, limits) are in
//! [`consentry_service::verification`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use consentry_service::tokens::MintedTokenOut;
use consentry_service::verification::{
    self, Client, ConfirmVerification, StartVerification, VerificationStarted,
};

use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::Json;
use crate::state::AppState;

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

/// Start verifying an e-mail address or a phone number. If a subject holds it (see identifiers), a 6-digit
/// code valid for 10 minutes is mailed to the address, or sent to the number by SMS through the operator's
/// gateway, in the language of `lang` or `Accept-Language` (English or German). The answer is 202 with an
/// id whether or not anyone holds it: it never tells. Limited per identifier and per client (429 with
/// `Retry-After`: when several limits are reached, the longest wait).
#[utoipa::path(post, operation_id = "startVerification", path = "/v1/verifications", tag = "verifications",
    request_body = StartVerification,
    responses((status = 202, body = VerificationStarted, description = "Started; a code was mailed if the address is known (the answer does not say)"),
              (status = 422, body = Problem, description = "`validation_failed`: not `email:` and an e-mail address, nor `phone:` and a phone number"),
              (status = 429, body = Problem, description = "`too_many_verifications`: this identifier or this client started as many as it may this hour (or day)"),
              (status = 503, body = Problem, description = "`verification_unavailable`: no mail server (`smtp_url`) for an e-mail address, no SMS gateway (`sms_webhook_url`) for a phone number")),
    security(()))]
pub async fn start(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Json(body): Json<StartVerification>,
) -> ApiResult<(StatusCode, Json<VerificationStarted>)> {
    let address = crate::client::ClientAddr::of(&extensions);
    let client = Client { address, accept_language: accept_language(&headers) };
    Ok((StatusCode::ACCEPTED, Json(verification::start(&state, body, client).await?)))
}

/// Confirm a verification with the code received: a subject token (`token`, for the person's own
/// `/v1/subjects/{subject}/...` routes, requests and preferences; no service route) and a preference-centre
/// link (`url`), for one hour. A verification confirms once; after 5 wrong codes, or 10 minutes, it is dead.
#[utoipa::path(post, operation_id = "confirmVerification", path = "/v1/verifications/{id}/confirm", tag = "verifications",
    params(("id" = String, Path, description = "The id `POST /v1/verifications` answered")),
    request_body = ConfirmVerification,
    responses((status = 200, body = MintedTokenOut),
              (status = 404, body = Problem, description = "`not_found`: no such verification"),
              (status = 410, body = Problem, description = "`verification_ended`: expired, used, or out of attempts"),
              (status = 422, body = Problem, description = "`wrong_code`: the code does not match (`remaining_attempts` says how many are left); `validation_failed`: not 6 digits")),
    security(()))]
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Json(body): Json<ConfirmVerification>,
) -> ApiResult<Json<MintedTokenOut>> {
    let Path(id) = path.map_err(|_| ApiError(Error::NotFound("verification")))?;
    Ok(Json(verification::confirm(&state, &id, body, accept_language(&headers)).await?))
}
