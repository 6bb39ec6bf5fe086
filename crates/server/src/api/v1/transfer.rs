//! `POST /v1/import` and `GET /v1/export/consents`: consents moving in from another platform and out,
//! streamed both ways (docs/import.md). The rules are in [`consentry_service::transfer`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_core::Timestamp;
use consentry_service::transfer::export::{ExportOptions, Exporter};
use consentry_service::transfer::import::{self, Format, ImportOptions, ImportReport, Observer};
use consentry_service::transfer::line::LineError;
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Error, Problem};
use crate::extract::{Json, Query, stated_purpose};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The platform the changes come from (letters, digits, `.`, `_`, `-`; default `import`): with each
    /// line's `source_id`, what makes a change unique, and the actor `import:<source>`.
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$")]
    pub source: Option<String>,
    /// All or nothing: every line is checked first, and nothing is written if one is refused.
    pub strict: Option<bool>,
}

/// Counts what the run did; the refused lines are in the answer.
struct Quiet;

impl Observer for Quiet {
    fn refused(&mut self, _error: &LineError) {}
}

/// The format a body's `Content-Type` names.
fn format_of(request: &Request) -> Result<Format, ApiError> {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-ndjson" | "application/jsonl" | "application/json-lines") => {
            Ok(Format::JsonLines)
        }
        Some("text/csv") => Ok(Format::Csv),
        _ => Err(ApiError(Error::UnsupportedMediaType(
            "send JSON Lines as application/x-ndjson, or CSV as text/csv".into(),
        ))),
    }
}

/// Import consent changes from another platform: one change per line, as JSON Lines
/// (`application/x-ndjson`) or CSV with the documented header (`text/csv`), streamed (never held whole).
/// Each imported change keeps its original time (`occurred_at`) and the actor `import:<source>`; one
/// already imported (the same `source` and `source_id`) is not imported again, so sending the same or an
/// overlapping file again, or the rest of an interrupted one, imports each change once. Refused lines do
/// not stop the run: the answer counts them and lists the first 1,000 with their line number and reason.
#[utoipa::path(post, operation_id = "importConsents", path = "/v1/import", tag = "transfer", params(ImportQuery),
    request_body(content = String, description = "JSON Lines or CSV, one change per line (docs/import.md)",
        content((String = "application/x-ndjson"), (String = "text/csv"))),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 413, body = Problem, description = "`payload_too_large`: a strict import's body over 1 GiB (it is spooled to be checked whole; without `strict` any size streams)"),
              (status = 415, body = Problem),
              (status = 422, body = Problem, description = "`validation_failed` for a bad `source`, a CSV header naming an unknown column, or a body that could not be read")),
    security(("bearer" = ["import:write"])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    Query(query): Query<ImportQuery>,
    request: Request,
) -> ApiResult<Json<ImportReport>> {
    caller.require(Scope::ImportWrite)?;
    let format = format_of(&request)?;
    let options = ImportOptions {
        format,
        strict: query.strict.unwrap_or(false),
        identifiers: caller.require(Scope::IdentifiersWrite).is_ok(),
        ages: caller.require(Scope::ConsentWrite).is_ok(),
        ..ImportOptions::new(query.source.unwrap_or_else(|| "import".to_owned()))
    };
    options.validate()?;
    let body = request.into_body().into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(body);
    let report = import::run_stream(&state, &options, reader, &mut Quiet).await?;
    tracing::info!(
        by = %caller.key_id,
        source = %options.source,
        imported = report.imported,
        skipped = report.skipped,
        failed = report.failed,
        "import finished"
    );
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Only what was recorded at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Every event, not only the statements in force.
    pub history: Option<bool>,
    /// `jsonl` (default) or `csv`.
    #[param(pattern = "^(jsonl|csv)$")]
    pub format: Option<String>,
    /// Each subject's identifiers (their values) on their first line; the key needs `identifiers:read`
    /// as well.
    pub identifiers: Option<bool>,
    /// Each event's evidence (the original receipt, IP address, user agent); the key needs
    /// `consent:read` as well, as reading one subject's evidence does.
    pub evidence: Option<bool>,
    /// Each subject's age (birth date or band) on their first line; the key needs `consent:read` as well,
    /// as reading one subject's age does.
    pub ages: Option<bool>,
}

/// Export every subject's consents in the line format `POST /v1/import` reads, streamed: the statements in
/// force (or, with `history=true`, every event); with `evidence=true` each event's evidence and with
/// `ages=true` each subject's age (both needing `consent:read` too), and with `identifiers=true` their
/// identifiers (needing `identifiers:read`), so that importing the export into a fresh store gives the
/// same current state and the same answers to checks. Each subject whose evidence, age or identifiers went
/// out is written to their access log.
#[utoipa::path(get, operation_id = "exportConsents", path = "/v1/export/consents", tag = "transfer", params(ExportQuery),
    responses((status = 200, description = "One change per line", content(
                  (String = "application/x-ndjson"), (String = "text/csv"))),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["export:read"])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    headers: HeaderMap,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::ExportRead)?;
    let format = match query.format.as_deref() {
        None | Some("jsonl") => Format::JsonLines,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError(Error::InvalidQuery("format must be jsonl or csv".into()))),
    };
    let identifiers = query.identifiers.unwrap_or(false);
    if identifiers {
        // Identifiers decide who can prove to be the person: only for a key that may read them anyway.
        caller.require(Scope::IdentifiersRead)?;
    }
    // Evidence (IP addresses, user agents) and ages (birth dates) are each person's own data: only for a
    // key that may read them one subject at a time.
    let evidence = query.evidence.unwrap_or(false);
    let ages = query.ages.unwrap_or(false);
    if evidence || ages {
        caller.require(Scope::ConsentRead)?;
    }
    let options = ExportOptions {
        format,
        since: query.since,
        history: query.history.unwrap_or(false),
        identifiers,
        evidence,
        ages,
    };
    tracing::info!(by = %caller.key_id, history = options.history, identifiers, evidence, ages, "consents exported");
    let exporter = Exporter::new(state.store.clone(), options).with_vault(state.kek.clone()).logged_as(
        state.0.clone(),
        &caller.key_name,
        stated_purpose(&headers),
    );
    let pages = futures_util::stream::try_unfold(exporter, |mut exporter| async move {
        match exporter.next_page().await {
            Ok(Some(page)) => Ok(Some((page, exporter))),
            Ok(None) => Ok(None),
            Err(e) => {
                // The status is sent already: the stream stops short, and the cause is logged.
                tracing::error!(error = %e, "consent export failed");
                Err(std::io::Error::other("the export failed"))
            }
        }
    });
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(pages)).into_response();
    let content_type = match format {
        Format::JsonLines => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
