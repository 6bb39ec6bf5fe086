//! The one application error type, and its one mapping to an RFC 9457 problem response.
//!
//! Every error leaves as `application/problem+json` with a stable `code`. 5xx bodies say nothing
//! internal; their cause is logged here, with the place it came from, and never carries personal data.

use std::panic::Location;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One problem inside a request, with the JSON path of the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    pub path: String,
    pub message: String,
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown credentials")]
    Unauthorized,
    #[error("the credentials lack the scope {0}")]
    Forbidden(&'static str),
    /// A device acting outside its subject or its declared categories and purposes.
    #[error("{0}")]
    DeviceForbidden(String),
    /// Genuine credentials of the wrong kind or for another subject.
    #[error("{0}")]
    WrongPrincipal(&'static str),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{detail}")]
    Validation { detail: String, errors: Vec<FieldProblem> },
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidSubject(String),
    #[error("unknown purpose {0:?}")]
    UnknownPurpose(String),
    #[error("unknown data category {0:?}")]
    UnknownCategory(String),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("unknown recipient {0:?}")]
    UnknownRecipient(String),
    #[error("{0}")]
    UnknownNotice(String),
    #[error("unknown collection point {0:?}")]
    UnknownCollectionPoint(String),
    #[error("{0}")]
    ActionNotAllowed(String),
    #[error("{0}")]
    NotInPurpose(String),
    #[error("{0}")]
    NoticeMismatch(String),
    #[error("the catalogue is not valid: {} problem(s)", .0.len())]
    InvalidCatalog(Vec<FieldProblem>),
    /// Storing personal data that the subject's consent (or another basis) does not cover right now.
    #[error("{0}")]
    ConsentRequired(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the request body is larger than the {0} bytes accepted")]
    PayloadTooLarge(usize),
    #[error("the record's payload is larger than the {0} bytes accepted (max_record_bytes)")]
    RecordTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("this subject was erased; nothing is kept about them")]
    SubjectErased,
    #[error("{0}")]
    Gone(String),
    #[error("the service is shutting down")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// Logs `cause` with the caller's location and returns the opaque 500.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = Location::caller();
        tracing::error!(error = %cause, file = at.file(), line = at.line(), "internal error");
        ApiError::Internal
    }

    pub fn validation(path: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Validation {
            detail: message.clone(),
            errors: vec![FieldProblem { path: path.into(), message }],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::Unauthorized => (S::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) | ApiError::WrongPrincipal(_) | ApiError::DeviceForbidden(_) => {
                (S::FORBIDDEN, "forbidden", "Forbidden")
            }
            ApiError::InvalidJson(_) => (S::BAD_REQUEST, "invalid_json", "Malformed JSON"),
            ApiError::Validation { .. } => {
                (S::UNPROCESSABLE_ENTITY, "validation_failed", "Validation failed")
            }
            ApiError::InvalidQuery(_) => (S::BAD_REQUEST, "invalid_query", "Invalid query string"),
            ApiError::InvalidSubject(_) => (S::BAD_REQUEST, "invalid_subject", "Invalid subject id"),
            ApiError::UnknownPurpose(_) => (S::UNPROCESSABLE_ENTITY, "unknown_purpose", "Unknown purpose"),
            ApiError::UnknownCategory(_) => {
                (S::UNPROCESSABLE_ENTITY, "unknown_category", "Unknown data category")
            }
            ApiError::UnknownChannel(_) => (S::UNPROCESSABLE_ENTITY, "unknown_channel", "Unknown channel"),
            ApiError::UnknownRecipient(_) => {
                (S::UNPROCESSABLE_ENTITY, "unknown_recipient", "Unknown recipient")
            }
            ApiError::UnknownNotice(_) => (S::UNPROCESSABLE_ENTITY, "unknown_notice", "Unknown notice"),
            ApiError::UnknownCollectionPoint(_) => {
                (S::UNPROCESSABLE_ENTITY, "unknown_collection_point", "Unknown collection point")
            }
            ApiError::ActionNotAllowed(_) => {
                (S::UNPROCESSABLE_ENTITY, "action_not_allowed", "Action not allowed for this purpose")
            }
            ApiError::NotInPurpose(_) => {
                (S::UNPROCESSABLE_ENTITY, "not_in_purpose", "Scope outside the purpose")
            }
            ApiError::NoticeMismatch(_) => (S::UNPROCESSABLE_ENTITY, "notice_mismatch", "Wrong notice"),
            ApiError::InvalidCatalog(_) => (S::UNPROCESSABLE_ENTITY, "invalid_catalog", "Invalid catalogue"),
            ApiError::ConsentRequired(_) => (S::FORBIDDEN, "consent_required", "Consent required"),
            ApiError::NotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
            ApiError::PayloadTooLarge(_) | ApiError::RecordTooLarge(_) => {
                (S::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large")
            }
            ApiError::UnsupportedMediaType(_) => {
                (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            ApiError::Conflict(_) => (S::CONFLICT, "conflict", "Conflict"),
            ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            ApiError::SubjectErased => (S::GONE, "subject_erased", "Subject erased"),
            ApiError::Gone(_) => (S::GONE, "gone", "Gone"),
            ApiError::Unavailable => (S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal => (S::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }

    pub fn code(&self) -> &'static str {
        self.parts().1
    }
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Closed => ApiError::Unavailable,
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let detail = match &self {
            // Never say more than this about a server-side failure.
            ApiError::Internal => "The server could not complete the request. It has been logged.".to_owned(),
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Validation { errors, .. } | ApiError::InvalidCatalog(errors) => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("urn:consentry:problem:{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
