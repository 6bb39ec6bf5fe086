//! The preference centre's "my data": the person's records in the vault, to look at, play, download and
//! delete (one, or every record of a kind), through [`consentry_service::preferences`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use consentry_core::ids::Key;
use consentry_service::preferences::{self, Deletion};
use serde::Deserialize;

use super::{Stop, form, lang_for, render, session, stop_page, visit};
use crate::payload::record_payload;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct PayloadParams {
    download: Option<String>,
}

/// `GET /preferences/data/{id}`: one of the person's records as stored, shown in the browser (sandboxed:
/// it never runs as a page of ours) or, with `?download=1`, as a file.
pub async fn payload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<PayloadParams>,
) -> Response {
    let (_, caller) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let record = match preferences::record_payload(&state, &caller.subject, &id).await {
        Ok(r) => r,
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    let attachment = params.download.is_some().then_some(id.as_str());
    record_payload(record.data, &record.meta.content_type, attachment)
        .unwrap_or_else(|_| stop_page(&state, lang, Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// `GET /preferences/history/{id}/evidence`: the evidence one of the person's changes came with (an
/// imported change's), as JSON shown in the browser (sandboxed, like a record).
pub async fn evidence(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_, caller) = match session(&state, &headers).await {
        Ok(s) => s,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let json = match preferences::evidence(&state, &caller.subject, &id).await {
        Ok(j) => j,
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    record_payload(json, "application/json", None)
        .unwrap_or_else(|_| stop_page(&state, lang, Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// Deletes the record `id`, or (without one) every record of the kind the form names.
async fn delete(state: &AppState, headers: &HeaderMap, body: &[u8], id: Option<String>) -> Response {
    let (token, caller, form) = match form(state, headers, body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(state, lang_for(None, headers, None), stop),
    };
    let lang = lang_for(None, headers, Some(&caller));
    let which = match id {
        Some(id) => Deletion::Record(id),
        // A form without a kind of data, or with one that is no catalogue key, is malformed.
        None => match form.category.and_then(|c| Key::new(c).ok()) {
            Some(category) => Deletion::Category(category),
            None => return stop_page(state, lang, Stop::Failed(StatusCode::BAD_REQUEST)),
        },
    };
    let page = preferences::delete_records(state, &visit(headers, &caller), which).await;
    render(state, lang, &token, page)
}

/// `POST /preferences/data/{id}/delete`: deletes one record.
pub async fn delete_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    delete(&state, &headers, &body, Some(id)).await
}

/// `POST /preferences/data/delete-category`: deletes every record of a kind (and the kinds under it).
pub async fn delete_category(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    delete(&state, &headers, &body, None).await
}
