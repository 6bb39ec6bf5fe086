//! What the console does for one person beyond showing them: a receipt's verification (rebuilt from the
//! ledger, proven against the signed checkpoint, its signature checked) and, for `console:write`, a
//! preference-centre link minted for them and shown once, and a vault record's content opened for a
//! purpose the officer states (in the person's access log with that purpose).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_service::Error;
use consentry_service::console::person::{self as service, Link, ProofFailure, Verified};
use consentry_store::vault::RecordMeta;
use maud::{Markup, html};

use super::extract::Act;
use super::person::{HERE, person_path};
use super::{Stop, Visit, html, page};
use crate::payload::record_payload;
use crate::state::AppState;
use crate::web::i18n::Lang;

/// `POST /console/people/{subject}/link`: mints a preference-centre link and shows it, once.
pub(super) async fn mint(State(state): State<AppState>, Path(subject): Path<String>, act: Act) -> Response {
    let Act { visit, fields } = act;
    let Some(ttl) = fields.get("ttl").and_then(|t| t.parse::<u64>().ok()) else {
        return visit.stop(&state, Stop::Invalid("console-link-invalid"));
    };
    match service::mint_link(&state, &visit.caller, &subject, ttl).await {
        Ok(link) => html(StatusCode::CREATED, minted(&state, &visit, &subject, &link)),
        Err(Error::Validation { .. }) => visit.stop(&state, Stop::Invalid("console-link-invalid")),
        Err(Error::SubjectErased) => visit.stop(&state, Stop::NotFound),
        Err(e) => visit.stop(&state, Stop::from(e)),
    }
}

/// The page showing a minted link, once.
fn minted(state: &AppState, visit: &Visit, subject: &str, link: &Link) -> String {
    let lang = visit.lang;
    let content = html! {
        section class="card done" role="status" aria-labelledby="minted" {
            h2 id="minted" class="small" { (lang.t("console-link-minted")) }
            p { (lang.t("console-link-shown-once")) }
            p { code id="new-link" class="wrap-anywhere" { (link.url) } }
            p { (lang.t("console-link-expires")) " " time datetime=(link.expires_at.to_string()) { (lang.date_time(link.expires_at)) } }
        }
        p { a class="button" href=(person_path(subject)) { (lang.t("console-person-back")) } }
    };
    let title = lang.t_with("console-person-title", [("subject", subject.into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// `GET /console/people/{subject}/receipts/{id}`: the receipt rebuilt and verified.
pub(super) async fn verify(
    State(state): State<AppState>,
    visit: Visit,
    Path((subject, id)): Path<(String, String)>,
) -> Response {
    let result = service::verify(&state, &visit.caller, &subject, &id).await.map_err(Stop::from);
    visit.page(&state, result.map(|v| render(&state, &visit, &v)))
}

/// The message id saying why a proof did not hold.
fn failure(f: ProofFailure) -> &'static str {
    match f {
        ProofFailure::Checkpoint => "console-verify-checkpoint-failed",
        ProofFailure::Malformed => "console-verify-malformed",
        ProofFailure::NotIncluded => "console-verify-not-included",
        ProofFailure::WrongEvent => "console-verify-wrong-event",
        ProofFailure::WrongSubject => "console-verify-wrong-subject",
    }
}

fn render(state: &AppState, visit: &Visit, v: &Verified) -> String {
    let lang = visit.lang;
    let content = html! {
        @if v.holds() {
            p class="card done" role="status" id="verification" { (lang.t("console-verify-holds")) }
        } @else {
            p class="card problem" role="alert" id="verification" { (lang.t("console-verify-fails")) }
        }
        dl class="card" {
            dt { (lang.t("console-request-subject")) } dd { a href=(person_path(v.subject.as_str())) { code { (v.subject.as_str()) } } }
            dt { (lang.t("console-person-issued")) } dd { time datetime=(v.created_at.to_string()) { (lang.date_time(v.created_at)) } }
            dt { (lang.t("console-verify-inclusion")) }
            dd id="inclusion" {
                @match &v.proof {
                    Ok(c) => {
                        (lang.t_with("console-verify-included", [("events", v.events.len().into()), ("size", c.size.into())]))
                        br; span class="muted" { (lang.t("console-checkpoint-root")) " " code { (STANDARD.encode(c.root)) } }
                    }
                    Err(f) => { span class="overdue" { (lang.t(failure(*f))) } }
                }
            }
            dt { (lang.t("console-verify-signature")) }
            dd id="signature" {
                @match &v.signature {
                    Some(kid) => { (lang.t("console-verify-signed")) " " code { (kid) } }
                    None => { span class="overdue" { (lang.t("console-verify-unsigned")) } }
                }
            }
        }
        (events(lang, v))
    };
    let title = lang.t_with("console-verify-title", [("id", v.id.as_str().into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// The events the receipt records.
fn events(lang: Lang, v: &Verified) -> Markup {
    html! {
        section aria-labelledby="receipt-events" {
            h2 id="receipt-events" { (lang.t("console-verify-events")) }
            div class="scroll" tabindex="0" {
                table id="receipt-events-table" {
                    caption class="vh" { (lang.t("console-verify-events")) }
                    thead { tr {
                        @for id in ["console-verify-seq", "console-purpose", "console-person-action"] { th scope="col" { (lang.t(id)) } }
                    } }
                    tbody {
                        @for (seq, purpose, action) in &v.events {
                            tr {
                                th scope="row" data-label=(lang.t("console-verify-seq")) { (seq) }
                                td data-label=(lang.t("console-purpose")) { code { (purpose) } }
                                td data-label=(lang.t("console-person-action")) { code { (action) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/people/{subject}/records/{id}`: a vault record's metadata and, for `console:write`, the
/// form that opens its content for a stated purpose.
pub(super) async fn record(
    State(state): State<AppState>,
    visit: Visit,
    Path((subject, id)): Path<(String, String)>,
) -> Response {
    let result = service::record(&state, &subject, &id).await.map_err(Stop::from);
    visit.page(&state, result.map(|meta| render_record(&state, &visit, &subject, &meta)))
}

fn render_record(state: &AppState, visit: &Visit, subject: &str, meta: &RecordMeta) -> String {
    let lang = visit.lang;
    let content = html! {
        dl class="card" {
            dt { (lang.t("console-request-subject")) } dd { a href=(person_path(subject)) { code { (subject) } } }
            dt { (lang.t("console-person-category")) } dd { code { (meta.category) } }
            dt { (lang.t("console-purpose")) } dd { code { (meta.purpose) } }
            dt { (lang.t("console-record-type")) } dd { code { (meta.content_type) } }
            dt { (lang.t("console-person-size")) } dd { (lang.t_with("console-person-bytes", [("bytes", meta.size.into())])) }
            dt { (lang.t("console-person-created")) } dd { (lang.date_time(meta.collected_at)) }
        }
        @if visit.caller.can_act {
            form class="card" method="post" action={ (person_path(subject)) "/records/" (meta.id) "/open" } id="open-record" {
                h2 class="small" { (lang.t("console-record-open-title")) }
                p { (lang.t("console-record-open-intro")) }
                input type="hidden" name="csrf" value=(visit.csrf(state));
                label for="purpose" { (lang.t("console-record-purpose")) }
                input type="text" id="purpose" name="purpose" required maxlength="128" autocomplete="off";
                p class="row" { button type="submit" class="primary" { (lang.t("console-record-open")) } }
            }
        } @else {
            p class="card info" { (lang.t("console-record-read-only")) }
        }
    };
    let title = lang.t_with("console-record-title", [("id", meta.id.as_str().into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// `POST /console/people/{subject}/records/{id}/open`: the record's content, as a download, for the
/// purpose the form states.
pub(super) async fn open_record(
    State(state): State<AppState>,
    Path((subject, id)): Path<(String, String)>,
    act: Act,
) -> Response {
    let Act { visit, fields } = act;
    let purpose = fields.get("purpose").unwrap_or("");
    let record = match service::open_record(&state, &visit.caller, &subject, &id, purpose).await {
        Ok(r) => r,
        Err(Error::Validation { .. }) => {
            return visit.stop(&state, Stop::Invalid("console-record-purpose-invalid"));
        }
        Err(e) => return visit.stop(&state, Stop::from(e)),
    };
    // A stored type that is no header value is sent as bytes rather than not at all.
    let content_type = match HeaderValue::from_str(&record.meta.content_type) {
        Ok(_) => record.meta.content_type.as_str(),
        Err(_) => "application/octet-stream",
    };
    record_payload(record.data, content_type, Some(&record.meta.id))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
