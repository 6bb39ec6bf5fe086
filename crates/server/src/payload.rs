//! The one way a stored vault record's payload is sent to a browser or a client, by the API, the
//! preference centre and the console alike: personal data that must never be cached, sniffed into
//! another type, or run as a page of this origin.

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue, InvalidHeaderValue};
use axum::response::{IntoResponse, Response};

/// A 200 with `data` as `content_type`, and a download named `attachment` when one is given. An error
/// when the stored content type is not a header value (the caller decides what to show then).
pub(crate) fn record_payload(
    data: impl Into<Body>,
    content_type: &str,
    attachment: Option<&str>,
) -> Result<Response, InvalidHeaderValue> {
    let content_type = HeaderValue::from_str(content_type)?;
    let mut response = (StatusCode::OK, data.into()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Personal data shown in a browser must not run as a page of this origin.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if let Some(Ok(v)) =
        attachment.map(|name| HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
