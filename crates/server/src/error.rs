//! The API's one error type and its one mapping to an RFC 9457 problem response.
//!
//! Every error leaves as `application/problem+json` with a stable `code`: the service layer's errors
//! ([`consentry_service::Error`]) by their kind, and the few only HTTP can raise (a malformed body, a wrong
//! media type, a body over the limit, a method the route lacks). 5xx bodies say nothing internal; the
//! service layer logged their cause where it arose.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use consentry_service::error::{Error, ErrorKind, FieldProblem};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:consentry:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// After a wrong verification code (`wrong_code`): how many attempts are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
}

/// An error as the API answers it: a service error, with its status chosen by kind.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    #[track_caller]
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl ApiError {
    /// Logs `cause` with the caller's location and returns the opaque 500.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError(Error::internal(cause))
    }

    pub fn validation(path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError(Error::validation(path, message))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }
}

/// The HTTP status of each kind of service error.
pub fn status(kind: ErrorKind) -> StatusCode {
    use ErrorKind as K;
    use StatusCode as S;
    match kind {
        K::Unauthorized => S::UNAUTHORIZED,
        K::Forbidden => S::FORBIDDEN,
        K::BadRequest => S::BAD_REQUEST,
        K::Unprocessable => S::UNPROCESSABLE_ENTITY,
        K::NotFound => S::NOT_FOUND,
        K::TooLarge => S::PAYLOAD_TOO_LARGE,
        K::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
        K::Conflict => S::CONFLICT,
        K::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
        K::Gone => S::GONE,
        K::TooManyRequests => S::TOO_MANY_REQUESTS,
        K::Unavailable => S::SERVICE_UNAVAILABLE,
        K::Internal => S::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, code, title) = self.0.parts();
        let status = status(kind);
        let retry_after = self.0.retry_after();
        let remaining_attempts = self.0.remaining_attempts();
        let detail = match &self.0 {
            // Never say more than this about a server-side failure.
            Error::Internal => "The server could not complete the request. It has been logged.".to_owned(),
            other => other.to_string(),
        };
        let errors = match self.0 {
            Error::Validation { errors, .. }
            | Error::GuardianRequired { errors, .. }
            | Error::UnknownIdentifierType { errors, .. }
            | Error::InvalidCatalog(errors)
            | Error::InvalidSignal { errors, .. } => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("urn:consentry:problem:{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            errors,
            remaining_attempts,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
