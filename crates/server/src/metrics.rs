//! Middleware that counts and times every HTTP request into the service layer's metrics, and the
//! exposition format a scrape asks for.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use consentry_service::metrics::Format;

use crate::state::AppState;

/// The exposition format the scrape's `Accept` header asks for (the Prometheus text format 0.0.4 unless
/// it prefers OpenMetrics).
pub fn format(headers: &HeaderMap) -> Format {
    Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// Counts and times every request by its route template (never the concrete path, which would carry
/// subject ids).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.record_http(route, method, status, started.elapsed().as_secs_f64());
    response
}
