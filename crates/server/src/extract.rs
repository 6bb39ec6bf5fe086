//! Our own `Json` and `Query` extractors, so that every rejection leaves in the problem shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Error, FieldProblem};
use crate::state::AppState;

/// JSON body in, JSON out; bad input becomes `invalid_json` (syntax), `validation_failed` (shape),
/// `unsupported_media_type` or `payload_too_large`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        require_object(&bytes, false)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection, 0)),
        }
    }
}

/// Every request body of the API is a JSON object (or, where the body is optional, `null`). serde would
/// read a struct from an array of its fields too (`[null, null]`), which the document does not allow: the
/// top level is checked here, before the fields are read.
pub fn require_object(bytes: &[u8], null_too: bool) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') {
        return Ok(());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(e) => Err(ApiError(Error::InvalidJson(format!("the body is not valid JSON: {e}")))),
        Ok(_) if null_too && first == Some(b'n') => Ok(()),
        Ok(_) => Err(ApiError::validation("", "the body must be a JSON object")),
    }
}

/// The body limit in force, put in request extensions so rejections can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn json_rejection(rejection: JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field and what was expected; the path is in the source.
            let detail = std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string());
            // serde_path_to_error renders "path: message"; split it so the path stands alone.
            let (path, message) = match detail.split_once(": ") {
                Some((path, message)) if !path.contains(' ') => (path.to_owned(), message.to_owned()),
                _ => (String::new(), detail.clone()),
            };
            ApiError(Error::Validation { detail, errors: vec![FieldProblem { path, message }] })
        }
        JsonRejection::JsonSyntaxError(e) => {
            let message = std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string());
            ApiError(Error::InvalidJson(format!("the body is not valid JSON: {message}")))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError(Error::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        )),
        JsonRejection::BytesRejection(e) => {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::PayloadTooLarge(limit))
            } else {
                ApiError(Error::InvalidJson("the body could not be read".into()))
            }
        }
        other => ApiError(Error::InvalidJson(other.body_text())),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query string parameters; bad ones become `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError(Error::InvalidQuery(e.body_text())))
            }
            Err(other) => Err(ApiError(Error::InvalidQuery(other.body_text()))),
        }
    }
}

/// A request body that must be JSON, kept as bytes so handlers on the hot path can deserialise it
/// borrowing from the buffer.
#[derive(Debug, Clone)]
pub struct JsonBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError(Error::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            )));
        }
        body_bytes(req, state, limit).await.map(JsonBody)
    }
}

impl JsonBody {
    /// Deserialises the body; borrowing types (`&str`, `Cow<str>`) point into the buffer.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        require_object(&self.0, false)?;
        parse_json(&self.0)
    }
}

/// Reads the whole body within the configured limit.
pub async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::PayloadTooLarge(limit))
        } else {
            ApiError(Error::InvalidJson("the body could not be read".into()))
        }
    })
}

/// Deserialises JSON, sorting failures into `invalid_json` (syntax) and `validation_failed` (shape).
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            let message = e.to_string();
            ApiError(Error::Validation {
                detail: message.clone(),
                errors: vec![FieldProblem { path: String::new(), message }],
            })
        }
        _ => ApiError(Error::InvalidJson(format!("the body is not valid JSON: {e}"))),
    })
}

/// The `{subject}` path segment, validated; an id linked into another subject names the survivor.
#[derive(Debug, Clone)]
pub struct SubjectPath(pub consentry_core::SubjectId);

impl FromRequestParts<AppState> for SubjectPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        #[derive(serde::Deserialize)]
        struct P {
            subject: String,
        }
        let axum::extract::Path(p) =
            axum::extract::Path::<P>::from_request_parts(parts, state).await.map_err(|_| {
                ApiError(Error::InvalidSubject("the subject id in the path could not be read".into()))
            })?;
        consentry_core::SubjectId::new(p.subject)
            .map(|s| SubjectPath(state.aliases.survivor(s)))
            .map_err(|e| ApiError(Error::InvalidSubject(format!("the subject id {e}"))))
    }
}

/// The purpose a caller states for reading a subject's data, from `X-Consentry-Purpose`.
pub fn stated_purpose(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(consentry_service::access::PURPOSE_HEADER).and_then(|v| v.to_str().ok())
}
