//! The preference centre's "my data": the person's records in the vault, to look at, play, download and
//! delete (one, or every record of a kind). Reads and deletions go through the vault's own code.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_core::ids::Key;
use consentry_store::vault::RecordSelection;
use serde::Deserialize;

use super::{Stop, form, lang_for, render, session, stop_page};
use crate::state::AppState;
use consentry_service::records::{delete_at_request, valid_record_id};

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
    if !valid_record_id(&id) {
        return stop_page(&state, lang, Stop::NotFound);
    }
    let record = match state.store.record(&state.kek, &id).await {
        Ok(Some(r)) if r.subject == caller.subject => r,
        // Someone else's record is as absent as an unknown one.
        Ok(_) => return stop_page(&state, lang, Stop::NotFound),
        Err(e) => return stop_page(&state, lang, Stop::from(e)),
    };
    let Ok(content_type) = HeaderValue::from_str(&record.meta.content_type) else {
        return stop_page(&state, lang, Stop::Failed(StatusCode::INTERNAL_SERVER_ERROR));
    };
    let mut response = (StatusCode::OK, record.data).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if params.download.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

async fn delete(state: &AppState, headers: &HeaderMap, body: &[u8], what: Option<&str>) -> Response {
    let (token, caller, wanted) = match form(state, headers, body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(state, lang_for(None, headers, None), stop),
    };
    let lang = lang_for(None, headers, Some(&caller));
    let selection = match what {
        Some(id) if valid_record_id(id) => {
            RecordSelection::Ids { subject: caller.subject.clone(), ids: vec![id.to_owned()] }
        }
        Some(_) => return stop_page(state, lang, Stop::NotFound),
        None => match wanted.category.as_deref().and_then(|c| Key::new(c).ok()) {
            Some(category) => RecordSelection::Subject {
                subject: caller.subject.clone(),
                category: Some(category.as_str().to_owned()),
            },
            None => return stop_page(state, lang, Stop::Failed(StatusCode::BAD_REQUEST)),
        },
    };
    let deleted = match delete_at_request(state, selection).await {
        Ok(n) => n,
        Err(e) => return stop_page(state, lang, Stop::from(e)),
    };
    let notice = super::page::Notice::Deleted(deleted);
    match render(state, headers, lang, &token, &caller.subject, Some(notice)).await {
        Ok(r) => r,
        Err(stop) => stop_page(state, lang, stop),
    }
}

/// `POST /preferences/data/{id}/delete`: deletes one record.
pub async fn delete_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    delete(&state, &headers, &body, Some(&id)).await
}

/// `POST /preferences/data/delete-category`: deletes every record of a kind (and the kinds under it).
pub async fn delete_category(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    delete(&state, &headers, &body, None).await
}
