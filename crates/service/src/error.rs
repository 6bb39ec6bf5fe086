//! The error every use case returns: a kind with a stable machine-readable `code` and a human detail.
//!
//! The faces map it to their own shape (the HTTP API to an RFC 9457 problem, the preference centre to a
//! page, the CLI to a message). Internal causes are logged here, with the place they came from, and never
//! carry personal data; what a caller reads of them is only "internal".

use std::panic::Location;

use consentry_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One problem inside a request, with the JSON path of the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    pub path: String,
    pub message: String,
}

/// What kind of failure an [`Error`] is; each face maps it to its own answer (the API to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Unauthorized,
    Forbidden,
    BadRequest,
    Unprocessable,
    NotFound,
    TooLarge,
    UnsupportedMediaType,
    Conflict,
    MethodNotAllowed,
    Gone,
    /// Refused for now; the caller may try again after [`Error::retry_after`].
    TooManyRequests,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// An identifier type neither built in nor declared by the catalogue; `errors` names the field.
    #[error("{detail}")]
    UnknownIdentifierType { detail: String, errors: Vec<FieldProblem> },
    #[error("unknown recipient {0:?}")]
    UnknownRecipient(String),
    /// The detail names the field and the key.
    #[error("{0}")]
    UnknownJurisdiction(String),
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
    /// A TC or GPP string that cannot be read, or values that cannot be written as one; `code` is
    /// `invalid_tc_string` or `invalid_gpp_string`.
    #[error("{detail}")]
    InvalidSignal { code: &'static str, detail: String, errors: Vec<FieldProblem> },
    #[error("the catalogue is not valid: {} problem(s)", .0.len())]
    InvalidCatalog(Vec<FieldProblem>),
    /// Storing personal data that the subject's consent (or another basis) does not cover right now.
    #[error("{0}")]
    ConsentRequired(String),
    /// A known child's consent given without a guardian (GDPR Art. 8): `errors` names each refused change
    /// (the request's refusals may have been recorded: the detail says so).
    #[error("{detail}")]
    GuardianRequired { detail: String, errors: Vec<FieldProblem> },
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
    /// A link from an id that is already an alias of a subject (`subject_linked`).
    #[error("{0}")]
    SubjectLinked(String),
    #[error("{0}")]
    Gone(String),
    /// A device holding as many open snapshot streams as it may (`max_streams_per_device`).
    #[error("this device already holds {0} open streams on this node; close one first")]
    TooManyStreams(usize),
    /// A client address that failed authentication too often; nothing it sends is checked until then.
    #[error("too many failed authentication attempts from this address; try again in {0} s")]
    TooManyFailedAttempts(u64),
    /// Verifications started too often for one identifier or from one client address.
    #[error("too many verifications started for this identifier or from this address; try again in {0} s")]
    TooManyVerifications(u64),
    /// No way to send the code is configured for the identifier's type (`smtp_url` for an e-mail address,
    /// `sms_webhook_url` for a phone number): no code can be sent.
    #[error("verification of this type of identifier (by e-mail or by SMS) is not set up on this server")]
    VerificationUnavailable,
    /// A code that does not confirm the verification.
    #[error("the code does not match; {remaining} attempt(s) left")]
    WrongCode { remaining: u32 },
    /// A verification past its time, used, or out of attempts.
    #[error("this verification has ended (expired, used, or out of attempts); start a new one")]
    VerificationEnded,
    /// A replay from before the destination was created or older than the outbox keeps.
    #[error("{0}")]
    ReplayOutOfReach(String),
    #[error("the service is shutting down")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl Error {
    /// Logs `cause` with the caller's location and returns the opaque 500.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = Location::caller();
        tracing::error!(error = %cause, file = at.file(), line = at.line(), "internal error");
        Error::Internal
    }

    /// 422 `unknown_jurisdiction`: `field` names `key`, which the catalogue's `jurisdictions` lack.
    pub fn unknown_jurisdiction(field: &str, key: &str) -> Self {
        Error::UnknownJurisdiction(format!("{field}: {key:?} is not among the catalogue's jurisdictions"))
    }

    pub fn validation(path: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::Validation {
            detail: message.clone(),
            errors: vec![FieldProblem { path: path.into(), message }],
        }
    }

    /// The kind of failure, its stable code and a short title.
    pub fn parts(&self) -> (ErrorKind, &'static str, &'static str) {
        use ErrorKind as K;
        match self {
            Error::Unauthorized => (K::Unauthorized, "unauthorized", "Unauthorized"),
            Error::Forbidden(_) | Error::WrongPrincipal(_) | Error::DeviceForbidden(_) => {
                (K::Forbidden, "forbidden", "Forbidden")
            }
            Error::InvalidJson(_) => (K::BadRequest, "invalid_json", "Malformed JSON"),
            Error::Validation { .. } => (K::Unprocessable, "validation_failed", "Validation failed"),
            Error::ReplayOutOfReach(_) => (K::Unprocessable, "replay_out_of_reach", "Replay out of reach"),
            Error::InvalidQuery(_) => (K::BadRequest, "invalid_query", "Invalid query string"),
            Error::InvalidSubject(_) => (K::BadRequest, "invalid_subject", "Invalid subject id"),
            Error::UnknownPurpose(_) => (K::Unprocessable, "unknown_purpose", "Unknown purpose"),
            Error::UnknownCategory(_) => (K::Unprocessable, "unknown_category", "Unknown data category"),
            Error::UnknownChannel(_) => (K::Unprocessable, "unknown_channel", "Unknown channel"),
            Error::UnknownIdentifierType { .. } => {
                (K::Unprocessable, "unknown_identifier_type", "Unknown identifier type")
            }
            Error::UnknownRecipient(_) => (K::Unprocessable, "unknown_recipient", "Unknown recipient"),
            Error::UnknownJurisdiction(_) => {
                (K::Unprocessable, "unknown_jurisdiction", "Unknown jurisdiction")
            }
            Error::UnknownNotice(_) => (K::Unprocessable, "unknown_notice", "Unknown notice"),
            Error::UnknownCollectionPoint(_) => {
                (K::Unprocessable, "unknown_collection_point", "Unknown collection point")
            }
            Error::ActionNotAllowed(_) => {
                (K::Unprocessable, "action_not_allowed", "Action not allowed for this purpose")
            }
            Error::NotInPurpose(_) => (K::Unprocessable, "not_in_purpose", "Scope outside the purpose"),
            Error::NoticeMismatch(_) => (K::Unprocessable, "notice_mismatch", "Wrong notice"),
            Error::InvalidCatalog(_) => (K::Unprocessable, "invalid_catalog", "Invalid catalogue"),
            Error::InvalidSignal { code, .. } => (K::Unprocessable, *code, "Invalid consent signal"),
            Error::ConsentRequired(_) => (K::Forbidden, "consent_required", "Consent required"),
            Error::GuardianRequired { .. } => (K::Forbidden, "guardian_required", "A guardian must consent"),
            Error::NotFound(_) => (K::NotFound, "not_found", "Not found"),
            Error::PayloadTooLarge(_) | Error::RecordTooLarge(_) => {
                (K::TooLarge, "payload_too_large", "Payload too large")
            }
            Error::UnsupportedMediaType(_) => {
                (K::UnsupportedMediaType, "unsupported_media_type", "Unsupported media type")
            }
            Error::Conflict(_) => (K::Conflict, "conflict", "Conflict"),
            Error::MethodNotAllowed => (K::MethodNotAllowed, "method_not_allowed", "Method not allowed"),
            Error::SubjectErased => (K::Gone, "subject_erased", "Subject erased"),
            Error::SubjectLinked(_) => (K::Conflict, "subject_linked", "Subject already linked"),
            Error::Gone(_) => (K::Gone, "gone", "Gone"),
            Error::TooManyStreams(_) => (K::TooManyRequests, "too_many_streams", "Too many open streams"),
            Error::TooManyFailedAttempts(_) => {
                (K::TooManyRequests, "too_many_failed_attempts", "Too many failed authentication attempts")
            }
            Error::TooManyVerifications(_) => {
                (K::TooManyRequests, "too_many_verifications", "Too many verifications")
            }
            Error::VerificationUnavailable => {
                (K::Unavailable, "verification_unavailable", "Verification unavailable")
            }
            Error::WrongCode { .. } => (K::Unprocessable, "wrong_code", "Wrong code"),
            Error::VerificationEnded => (K::Gone, "verification_ended", "Verification ended"),
            Error::Unavailable => (K::Unavailable, "unavailable", "Service unavailable"),
            Error::Internal => (K::Internal, "internal", "Internal server error"),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.parts().0
    }

    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The attempts a verification has left after a wrong code.
    pub fn remaining_attempts(&self) -> Option<u32> {
        match self {
            Error::WrongCode { remaining } => Some(*remaining),
            _ => None,
        }
    }

    /// Seconds after which a refusal for now may be tried again (HTTP's `Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            // A stream ends when its device closes it; a moment is a fair first wait.
            Error::TooManyStreams(_) => Some(STREAM_RETRY_AFTER_SECS),
            Error::TooManyFailedAttempts(secs) | Error::TooManyVerifications(secs) => Some(*secs),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    #[track_caller]
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Error::Conflict(message),
            StoreError::Closed => Error::Unavailable,
            StoreError::Linked(_) => {
                Error::SubjectLinked("the subject was linked into another subject meanwhile; retry".into())
            }
            StoreError::OutOfReach(message) => Error::ReplayOutOfReach(message),
            other => Error::internal(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `Retry-After` of a refused snapshot stream.
const STREAM_RETRY_AFTER_SECS: u64 = 5;
