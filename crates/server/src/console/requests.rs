//! The console's requests: the queue (filtered by status, type and overdue, a page at a time) and a
//! request's page (its tasks and history; extend or reject with a reason, mark a task complete, download
//! the export), from [`consentry_service::console::requests`].

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentry_core::Timestamp;
use consentry_service::Error;
use consentry_service::console::requests as service;
use consentry_service::export::Language;
use consentry_service::requests::{RequestList, RequestOut};
use maud::{Markup, html};
use serde::Deserialize;

use super::extract::{Act, PageQuery};
use super::{Stop, Visit, page, see_other};
use crate::state::AppState;
use crate::web::i18n::Lang;

const HERE: &str = "/console/requests";
const STATUSES: [&str; 4] = ["received", "in_progress", "completed", "rejected"];
const KINDS: [&str; 6] = ["access", "portability", "erasure", "rectification", "restriction", "objection"];

#[derive(Debug, Deserialize)]
pub(super) struct QueueParams {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    overdue: Option<String>,
    after: Option<String>,
}

/// Whole days from `now` to the deadline `due` (negative once past), rounded towards the deadline.
fn days_left(due: &str, now: Timestamp) -> Option<i64> {
    let due = Timestamp::parse(due)?;
    let micros = due.micros() - now.micros();
    Some(micros.div_euclid(86_400_000_000) + i64::from(micros.rem_euclid(86_400_000_000) > 0))
}

fn due_cell(lang: Lang, r: &RequestOut, now: Timestamp) -> Markup {
    let days = days_left(&r.due_at, now).unwrap_or(0);
    html! {
        (r.due_at.get(..10).unwrap_or(&r.due_at)) br;
        @if r.overdue {
            span class="overdue" { (lang.t_with("console-request-overdue-by", [("days", (-days).into())])) }
        } @else if r.closed_at.is_none() {
            span class="muted" { (lang.t_with("console-request-days-left", [("days", days.into())])) }
        }
    }
}

/// `GET /console/requests`.
pub(super) async fn queue(
    State(state): State<AppState>,
    visit: Visit,
    q: PageQuery<QueueParams>,
) -> Response {
    let q = q.0;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (status, kind) = (nonempty(&q.status), nonempty(&q.kind));
    let overdue = q.overdue.as_deref() == Some("1");
    let list = service::queue(&state, status.clone(), kind.clone(), overdue, nonempty(&q.after)).await;
    let result = match list {
        Ok(list) => {
            let filters = Filters { status, kind, overdue, first: q.after.is_none() };
            Ok(render_queue(&state, &visit, &list, &filters))
        }
        Err(Error::InvalidQuery(_)) => Err(Stop::Invalid("console-request-filter-invalid")),
        Err(e) => Err(Stop::from(e)),
    };
    visit.page(&state, result)
}

struct Filters {
    status: Option<String>,
    kind: Option<String>,
    overdue: bool,
    first: bool,
}

impl Filters {
    /// The queue's address with these filters (and `after`).
    fn link(&self, after: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &self.status {
            q.append_pair("status", s);
        }
        if let Some(k) = &self.kind {
            q.append_pair("type", k);
        }
        if self.overdue {
            q.append_pair("overdue", "1");
        }
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        let q = q.finish();
        if q.is_empty() { HERE.to_owned() } else { format!("{HERE}?{q}") }
    }
}

fn render_queue(state: &AppState, visit: &Visit, list: &RequestList, f: &Filters) -> String {
    let lang = visit.lang;
    let now = Timestamp::now();
    let content = html! {
        form class="card filters" method="get" action=(HERE) {
            div class="row" {
                label for="status" { (lang.t("console-request-status")) }
                select id="status" name="status" {
                    option value="" { (lang.t("console-any")) }
                    @for s in STATUSES {
                        option value=(s) selected[f.status.as_deref() == Some(s)] { (lang.request_status(s)) }
                    }
                }
                label for="type" { (lang.t("console-request-type")) }
                select id="type" name="type" {
                    option value="" { (lang.t("console-any")) }
                    @for k in KINDS {
                        option value=(k) selected[f.kind.as_deref() == Some(k)] { (lang.request_type(k)) }
                    }
                }
                span class="check" {
                    input type="checkbox" id="overdue" name="overdue" value="1" checked[f.overdue];
                    label for="overdue" { (lang.t("console-request-only-overdue")) }
                }
                button type="submit" class="secondary" { (lang.t("console-filter")) }
            }
        }
        @if list.requests.is_empty() {
            p class="card" id="no-requests" { (lang.t("console-requests-none")) }
        } @else {
            div class="scroll" tabindex="0" {
                table id="queue" {
                    caption class="vh" { (lang.t("console-nav-requests")) }
                    thead { tr {
                        @for id in ["console-request", "console-request-type", "console-request-status", "console-request-subject", "console-request-received", "console-request-due", "console-request-tasks"] {
                            th scope="col" { (lang.t(id)) }
                        }
                    } }
                    tbody {
                        @for r in &list.requests {
                            tr {
                                th scope="row" data-label=(lang.t("console-request")) {
                                    a href={ (HERE) "/" (r.id) } { code { (r.id) } }
                                }
                                td data-label=(lang.t("console-request-type")) { (lang.request_type(&r.kind)) }
                                td data-label=(lang.t("console-request-status")) { (lang.request_status(&r.status)) }
                                td data-label=(lang.t("console-request-subject")) {
                                    @match &r.subject { Some(s) => { code { (s) } } None => { (lang.t("console-erased")) } }
                                }
                                td data-label=(lang.t("console-request-received")) { (r.received_at.get(..10).unwrap_or(&r.received_at)) }
                                td data-label=(lang.t("console-request-due")) { (due_cell(lang, r, now)) }
                                td data-label=(lang.t("console-request-tasks")) { (r.pending_tasks) }
                            }
                        }
                    }
                }
            }
        }
        @if !f.first || list.next.is_some() {
            nav class="pager" aria-label=(lang.t("console-pages")) {
                @if !f.first { a href=(f.link(None)) { (lang.t("console-page-first")) } }
                @if let Some(next) = &list.next { a href=(f.link(Some(next))) rel="next" { (lang.t("console-page-next")) } }
            }
        }
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-nav-requests"), content)
}

#[derive(Debug, Deserialize)]
pub(super) struct RequestParams {
    done: Option<String>,
}

/// `GET /console/requests/{id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    q: PageQuery<RequestParams>,
) -> Response {
    let result = service::request(&state, &visit.caller, &id).await.map_err(Stop::from);
    visit.page(&state, result.map(|r| render_request(&state, &visit, &r, q.0.done.as_deref())))
}

fn render_request(state: &AppState, visit: &Visit, r: &RequestOut, done: Option<&str>) -> String {
    let lang = visit.lang;
    let now = Timestamp::now();
    let csrf = visit.csrf(state);
    let here = format!("{HERE}/{}", r.id);
    let open = r.closed_at.is_none();
    let note = match done {
        Some("extended") => Some("console-request-extended"),
        Some("rejected") => Some("console-request-rejected"),
        Some("task") => Some("console-request-task-done"),
        _ => None,
    };
    let content = html! {
        @if let Some(id) = note { p class="card done" role="status" { (lang.t(id)) } }
        dl class="card" {
            dt { (lang.t("console-request-type")) } dd { (lang.request_type(&r.kind)) }
            dt { (lang.t("console-request-status")) } dd id="status" { (lang.request_status(&r.status)) }
            dt { (lang.t("console-request-subject")) }
            dd { @match &r.subject { Some(s) => { code { (s) } } None => { (lang.t("console-erased")) } } }
            dt { (lang.t("console-request-received")) } dd { (r.received_at) }
            dt { (lang.t("console-request-due")) } dd id="due" { (due_cell(lang, r, now)) }
            @if let Some(reason) = &r.reason { dt { (lang.t("console-request-reason")) } dd { (reason) } }
            @if let (Some(export), true) = (&r.export, visit.caller.can_act) {
                dt { (lang.t("console-request-export")) }
                dd { a href={ (here) "/export" } id="export" { (lang.t("console-request-download")) } " (" (lang.t_with("console-request-until", [("date", export.available_until.as_str().into())])) ")" }
            }
        }
        section aria-labelledby="tasks" {
            h2 id="tasks" { (lang.t("console-request-tasks-title")) }
            @if r.tasks.as_ref().is_none_or(Vec::is_empty) {
                p { (lang.t("console-request-no-tasks")) }
            } @else {
                ul class="log" {
                    @for t in r.tasks.iter().flatten() {
                        li {
                            p class="strong" { code { (t.destination_id) } " · " (lang.t(if t.status == "completed" { "console-task-completed" } else { "console-task-pending" })) }
                            @if let Some(n) = &t.note { p { (n) } }
                            @if t.status != "completed" && open && visit.caller.can_act {
                                form class="task" method="post" action={ (here) "/tasks/" (t.destination_id) "/complete" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    label for={ "note-" (t.destination_id) } { (lang.t("console-task-note")) }
                                    input type="text" id={ "note-" (t.destination_id) } name="note" maxlength="2000";
                                    button type="submit" class="secondary" { (lang.t_with("console-task-complete", [("destination", t.destination_id.as_str().into())])) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if open && visit.caller.can_act {
            section aria-labelledby="act" {
                h2 id="act" { (lang.t("console-request-act")) }
                form class="card" method="post" action={ (here) "/extend" } id="extend" {
                    input type="hidden" name="csrf" value=(csrf);
                    h3 { (lang.t("console-request-extend")) }
                    label for="months" { (lang.t("console-request-months")) }
                    select id="months" name="months" { option value="1" { "1" } option value="2" { "2" } }
                    label for="extend-reason" { (lang.t("console-request-reason")) }
                    textarea id="extend-reason" name="reason" required maxlength="2000" rows="3" {}
                    p class="row" { button type="submit" class="primary" { (lang.t("console-request-extend")) } }
                }
                form class="card" method="post" action={ (here) "/reject" } id="reject" {
                    input type="hidden" name="csrf" value=(csrf);
                    h3 { (lang.t("console-request-reject")) }
                    label for="reject-reason" { (lang.t("console-request-reason")) }
                    textarea id="reject-reason" name="reason" required maxlength="2000" rows="3" {}
                    p class="row" { button type="submit" class="danger" { (lang.t("console-request-reject")) } }
                }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { (lang.t("console-request-history")) }
            ul class="log" id="request-history" {
                @for h in r.history.iter().flatten() {
                    li {
                        p { time datetime=(h.at) { (h.at) } }
                        p class="strong" { code { (h.change) } " → " (lang.request_status(&h.status)) }
                        p class="meta" { (h.actor) }
                        @if let Some(n) = &h.note { p { (n) } }
                    }
                }
            }
        }
    };
    let title = lang.t_with("console-request-title", [("id", r.id.as_str().into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// What became of an action on a request: back to its page, or the page saying why not.
fn acted(
    state: &AppState,
    visit: &Visit,
    id: &str,
    done: &str,
    result: consentry_service::Result<RequestOut>,
) -> Response {
    match result {
        Ok(_) => see_other(&format!("{HERE}/{id}?done={done}")),
        Err(Error::Validation { .. }) => visit.stop(state, Stop::Invalid("console-request-invalid")),
        Err(Error::Conflict(_)) => visit.stop(state, Stop::Invalid("console-request-conflict")),
        Err(e) => visit.stop(state, Stop::from(e)),
    }
}

/// `POST /console/requests/{id}/extend`.
pub(super) async fn extend(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    let Act { visit, fields } = act;
    let Some(months) = fields.get("months").and_then(|m| m.parse::<u32>().ok()) else {
        return visit.stop(&state, Stop::Invalid("console-request-invalid"));
    };
    let reason = fields.get("reason").unwrap_or("").to_owned();
    let result = service::extend(&state, &visit.caller, &id, months, reason).await;
    acted(&state, &visit, &id, "extended", result)
}

/// `POST /console/requests/{id}/reject`.
pub(super) async fn reject(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    let Act { visit, fields } = act;
    let reason = fields.get("reason").unwrap_or("").to_owned();
    let result = service::reject(&state, &visit.caller, &id, reason).await;
    acted(&state, &visit, &id, "rejected", result)
}

/// `POST /console/requests/{id}/tasks/{destination}/complete`.
pub(super) async fn complete_task(
    State(state): State<AppState>,
    Path((id, destination)): Path<(String, String)>,
    act: Act,
) -> Response {
    let Act { visit, fields } = act;
    let note = fields.get("note").map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    let result = service::complete_task(&state, &visit.caller, &id, destination, note).await;
    acted(&state, &visit, &id, "task", result)
}

/// `GET /console/requests/{id}/export`: the ZIP, streamed as it is written (`console:write`).
pub(super) async fn export(State(state): State<AppState>, visit: Visit, Path(id): Path<String>) -> Response {
    let lang = Language::best(Some(visit.lang.code()));
    let archive = match service::export(&state, &visit.caller, &id, lang).await {
        Ok(a) => a,
        Err(e) => return visit.stop(&state, Stop::from(e)),
    };
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(archive)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let name = id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-', "");
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"consentry-export-{name}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}
