//! The console's "People" pages: finding a person (by subject id, or by an identifier through its blind
//! index) and a person's page (where they stand, their history, receipts, devices, vault records'
//! metadata, requests and who read their data, and for `console:write` the form that mints a
//! preference-centre link), from [`consentry_service::console::person`]. A receipt's verification and the
//! minting itself are in [`super::person_acts`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use consentry_core::{Event, Timestamp};
use consentry_service::Error;
use consentry_service::console::person::{self as service, Found, Pages, Person, Standing};
use consentry_service::identifiers::TYPES;
use maud::{Markup, html};
use serde::Deserialize;

use super::extract::PageQuery;
use super::{Fields, MAX_FIELDS, Stop, Visit, html, page, see_other, session};
use crate::state::AppState;
use crate::web::i18n::Lang;

pub(super) const HERE: &str = "/console/people";

/// The address of `subject`'s page.
pub(super) fn person_path(subject: &str) -> String {
    let mut path = String::from(HERE);
    path.push('/');
    path.extend(form_urlencoded::byte_serialize(subject.as_bytes()));
    path
}

#[derive(Debug, Deserialize)]
pub(super) struct FindParams {
    subject: Option<String>,
}

/// `GET /console/people`: the look-up forms; with `?subject=` the person's page.
pub(super) async fn find(State(state): State<AppState>, visit: Visit, q: PageQuery<FindParams>) -> Response {
    match q.0.subject.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(subject) => visit.answer(&state, see_other(&person_path(subject))),
        None => {
            let body = render_find(&state, &visit, None);
            visit.answer(&state, html(StatusCode::OK, body))
        }
    }
}

/// `POST /console/people`: the person an identifier names (a form, so the identifier stays out of
/// addresses and logs). Looking is allowed to `console:read`; the CSRF token is checked.
pub(super) async fn find_by_identifier(State(state): State<AppState>, visit: Visit, body: Bytes) -> Response {
    let fields = Fields::parse(&body, MAX_FIELDS);
    if !session::csrf_valid(&state, session::FORMS, &visit.token, fields.get("csrf")) {
        return visit.stop(&state, Stop::Csrf);
    }
    let kind = fields.get("type").unwrap_or("");
    let value = fields.get("value").unwrap_or("");
    let response = match service::find(&state, &visit.caller, &format!("{kind}:{value}")).await {
        Ok(Some(subject)) => see_other(&person_path(subject.as_str())),
        Ok(None) => html(StatusCode::NOT_FOUND, render_find(&state, &visit, Some("console-person-no-match"))),
        Err(Error::Validation { .. } | Error::UnknownIdentifierType { .. }) => html(
            StatusCode::BAD_REQUEST,
            render_find(&state, &visit, Some("console-person-identifier-invalid")),
        ),
        Err(e) => visit.stop(&state, Stop::from(e)),
    };
    visit.answer(&state, response)
}

/// The look-up page, with a note of what the last look-up found (or did not).
fn render_find(state: &AppState, visit: &Visit, note: Option<&str>) -> String {
    let lang = visit.lang;
    let content = html! {
        @if let Some(id) = note { p class="card problem" role="alert" id="find-note" { (lang.t(id)) } }
        (find_forms(state, visit))
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-nav-people"), content)
}

/// The two look-up forms: by subject id (a plain GET) and by identifier (POST).
fn find_forms(state: &AppState, visit: &Visit) -> Markup {
    let lang = visit.lang;
    html! {
        form class="card" method="get" action=(HERE) id="find-subject" {
            h2 class="small" { (lang.t("console-person-by-subject")) }
            label for="subject" { (lang.t("console-person-subject")) }
            input type="text" id="subject" name="subject" required maxlength="128" autocomplete="off" spellcheck="false";
            p class="row" { button type="submit" class="primary" { (lang.t("console-person-open")) } }
        }
        form class="card" method="post" action=(HERE) id="find-identifier" {
            h2 class="small" { (lang.t("console-person-by-identifier")) }
            p class="muted" { (lang.t("console-person-identifier-intro")) }
            input type="hidden" name="csrf" value=(visit.csrf(state));
            label for="identifier-type" { (lang.t("console-person-identifier-type")) }
            select id="identifier-type" name="type" {
                @for t in TYPES { option value=(t) { (t) } }
                @for t in &state.catalog().catalog.document().identifier_types { option value=(t.key) { (t.key) } }
            }
            label for="identifier-value" { (lang.t("console-person-identifier-value")) }
            input type="text" id="identifier-value" name="value" required maxlength="320" autocomplete="off" spellcheck="false";
            p class="row" { button type="submit" class="primary" { (lang.t("console-person-find")) } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PersonParams {
    history_before: Option<u64>,
    access_before: Option<i64>,
    requests_after: Option<String>,
}

/// `GET /console/people/{subject}`.
pub(super) async fn show(
    State(state): State<AppState>,
    visit: Visit,
    Path(subject): Path<String>,
    q: PageQuery<PersonParams>,
) -> Response {
    let q = q.0;
    let pages = Pages {
        history_before: q.history_before,
        access_before: q.access_before,
        requests_after: q.requests_after.filter(|a| !a.is_empty()),
    };
    let response = match service::person(&state, &visit.caller, &subject, pages.clone()).await {
        Ok(Found::Person(p)) => html(StatusCode::OK, render(&state, &visit, &p, &pages)),
        Ok(Found::Erased) => html(StatusCode::GONE, gone(&state, &visit, &subject, "console-person-erased")),
        Ok(Found::Unknown) => {
            html(StatusCode::NOT_FOUND, gone(&state, &visit, &subject, "console-person-unknown"))
        }
        Err(Error::InvalidQuery(_)) => visit.stop(&state, Stop::Invalid("console-person-page-invalid")),
        Err(e) => visit.stop(&state, Stop::from(e)),
    };
    visit.answer(&state, response)
}

/// The page of a subject id with nothing to show: erased, or unknown.
fn gone(state: &AppState, visit: &Visit, subject: &str, why: &str) -> String {
    let lang = visit.lang;
    let content = html! {
        p class="card info" role="status" id="person-state" { (lang.t(why)) }
        (find_forms(state, visit))
    };
    let title = lang.t_with("console-person-title", [("subject", subject.into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// A date and time as the console shows them.
fn when(lang: Lang, t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) { (lang.date_time(t)) } }
}

/// An event's scope in words: its categories, channels and recipients, or "the whole purpose".
fn scope(lang: Lang, e: &Event) -> String {
    let s = &e.scope;
    let parts: Vec<String> = [
        (&s.categories, "console-scope-categories"),
        (&s.channels, "console-scope-channels"),
        (&s.recipients, "console-scope-recipients"),
    ]
    .into_iter()
    .filter(|(list, _)| !list.is_empty())
    .map(|(list, id)| format!("{}: {}", lang.t(id), list.join(", ")))
    .collect();
    if parts.is_empty() { lang.t("console-scope-whole") } else { parts.join("; ") }
}

/// A notice and its version, or a dash.
fn notice(e: &Event) -> String {
    match (&e.notice, e.notice_version) {
        (Some(n), Some(v)) => format!("{n} v{v}"),
        (Some(n), None) => n.clone(),
        _ => "–".to_owned(),
    }
}

/// The state of a purpose as a whole, in the console's words.
fn state_of(lang: Lang, s: &Standing) -> Markup {
    match &s.decision {
        None => html! { "–" },
        Some(d) => html! {
            span class=(if d.allowed { "strong" } else { "" }) { (lang.t(if d.allowed { "console-person-allowed" } else { "console-person-not-allowed" })) }
            br;
            span class="muted" { (lang.t(reason_id(d.reason))) }
        },
    }
}

/// The console's message id for a decision's reason.
fn reason_id(reason: consentry_core::Reason) -> &'static str {
    use consentry_core::Reason as R;
    match reason {
        R::Granted => "console-reason-granted",
        R::NoConsent | R::NotCovered => "console-reason-no-consent",
        R::Withdrawn => "console-reason-withdrawn",
        R::Denied => "console-reason-denied",
        R::Expired => "console-reason-expired",
        R::Objected => "console-reason-objected",
        R::Restricted => "console-reason-restricted",
        R::GpcOptOut => "console-reason-gpc",
        R::NotOptedOut => "console-reason-not-opted-out",
        R::Erased => "console-reason-erased",
        R::GuardianRequired => "console-reason-guardian-required",
        R::ChildProtected => "console-reason-child-protected",
        R::BasisContract
        | R::BasisLegitimateInterest
        | R::BasisLegalObligation
        | R::BasisVitalInterest
        | R::BasisPublicTask => "console-reason-basis",
    }
}

/// A table's head of the message ids `cols`.
fn head(lang: Lang, cols: &[&str]) -> Markup {
    html! { thead { tr { @for id in cols { th scope="col" { (lang.t(id)) } } } } }
}

/// A person's page.
fn render(state: &AppState, visit: &Visit, p: &Person, pages: &Pages) -> String {
    let lang = visit.lang;
    let subject = p.subject.as_str();
    let here = person_path(subject);
    let name = |key: &str| p.catalog.catalog.purpose(key).map_or(key, |x| x.name_in(lang.code())).to_owned();
    let content = html! {
        p class="muted" { (lang.t("console-person-logged")) }
        nav class="card" aria-label=(lang.t("console-person-sections")) {
            ul class="jump" {
                @for (id, label) in [("choices", "console-person-choices"), ("history", "console-person-history"), ("receipts", "console-person-receipts"), ("devices", "console-person-devices"), ("records", "console-person-records"), ("requests", "console-person-requests"), ("access", "console-person-access")] {
                    li { a href={ "#" (id) } { (lang.t(label)) } }
                }
            }
        }
        section aria-labelledby="choices" {
            h2 id="choices" { (lang.t("console-person-choices")) }
            div class="scroll" tabindex="0" {
                table id="standing" {
                    caption class="vh" { (lang.t("console-person-choices")) }
                    (head(lang, &["console-purpose", "console-catalogue-basis", "console-person-state", "console-person-in-force"]))
                    tbody {
                        @for s in &p.standings {
                            tr {
                                th scope="row" data-label=(lang.t("console-purpose")) { (s.purpose.name_in(lang.code())) br; code class="muted" { (s.purpose.key) } }
                                td data-label=(lang.t("console-catalogue-basis")) { (lang.basis(s.purpose.basis)) }
                                td data-label=(lang.t("console-person-state")) { (state_of(lang, s)) }
                                td data-label=(lang.t("console-person-in-force")) {
                                    @if s.statements.is_empty() { span class="muted" { (lang.t("console-person-none-said")) } }
                                    @for e in &s.statements {
                                        p { span class="strong" { (lang.action(e.action)) } " · " (scope(lang, e)) " · " (notice(e)) " · " (when(lang, e.recorded_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (mint_form(state, visit, subject))
        section aria-labelledby="history" {
            h2 id="history" { (lang.t("console-person-history")) }
            @if p.history.is_empty() {
                p { (lang.t("console-person-no-history")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="person-history" {
                        caption class="vh" { (lang.t("console-person-history")) }
                        (head(lang, &["console-person-when", "console-purpose", "console-person-action", "console-person-scope", "console-catalogue-notice", "console-person-actor"]))
                        tbody {
                            @for e in &p.history {
                                tr {
                                    th scope="row" data-label=(lang.t("console-person-when")) { (when(lang, e.recorded_at)) }
                                    td data-label=(lang.t("console-purpose")) { @if e.purpose.is_empty() { "–" } @else { (name(&e.purpose)) } }
                                    td data-label=(lang.t("console-person-action")) { (lang.action(e.action)) }
                                    td data-label=(lang.t("console-person-scope")) { (scope(lang, e)) }
                                    td data-label=(lang.t("console-catalogue-notice")) { (notice(e)) }
                                    td data-label=(lang.t("console-person-actor")) { code { (e.actor) } }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, Pager { here: &here, anchor: "#history", param: "history_before", first: pages.history_before.is_none(), next: p.history_next.map(|s| s.to_string()), label: "console-person-older" }))
        }
        section aria-labelledby="receipts" {
            h2 id="receipts" { (lang.t("console-person-receipts")) }
            @if p.receipts.is_empty() {
                p { (lang.t("console-person-no-receipts")) }
            } @else {
                p class="muted" { (lang.t_with("console-person-newest", [("count", service::PER_PAGE.into())])) }
                div class="scroll" tabindex="0" {
                    table id="person-receipts" {
                        caption class="vh" { (lang.t("console-person-receipts")) }
                        (head(lang, &["console-person-receipt", "console-person-issued", "console-person-events", "console-person-verify"]))
                        tbody {
                            @for r in &p.receipts {
                                tr {
                                    th scope="row" data-label=(lang.t("console-person-receipt")) { code { (r.id) } }
                                    td data-label=(lang.t("console-person-issued")) { (when(lang, r.created_at)) }
                                    td data-label=(lang.t("console-person-events")) { (r.last_seq.saturating_sub(r.first_seq) + 1) }
                                    td data-label=(lang.t("console-person-verify")) {
                                        a href={ (here) "/receipts/" (r.id) } { (lang.t_with("console-person-verify-label", [("id", r.id.as_str().into())])) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (devices_and_records(lang, p, visit.caller.can_act))
        (requests(lang, &here, p, pages))
        (access(lang, &here, p, pages))
    };
    let title = lang.t_with("console-person-title", [("subject", subject.into())]);
    page::frame(state, lang, Some(visit), HERE, &title, content)
}

/// The lifetimes a link may be minted with: seconds, and the message id of their name.
const LIFETIMES: [(u64, &str); 3] =
    [(3600, "console-link-hour"), (86_400, "console-link-day"), (604_800, "console-link-week")];

/// The form that mints a link, for a session that may act.
fn mint_form(state: &AppState, visit: &Visit, subject: &str) -> Markup {
    let lang = visit.lang;
    html! {
        @if visit.caller.can_act {
            form class="card" method="post" action={ (person_path(subject)) "/link" } id="mint" {
                h2 class="small" { (lang.t("console-link-title")) }
                p { (lang.t("console-link-intro")) }
                input type="hidden" name="csrf" value=(visit.csrf(state));
                label for="ttl" { (lang.t("console-link-valid")) }
                select id="ttl" name="ttl" {
                    @for (seconds, id) in LIFETIMES { option value=(seconds) selected[seconds == 86_400] { (lang.t(id)) } }
                }
                p class="row" { button type="submit" class="primary" { (lang.t("console-link-mint")) } }
            }
        }
    }
}

/// The links to a list's first page (unless it is shown) and its next; `param` carries `next`.
struct Pager<'a> {
    here: &'a str,
    anchor: &'a str,
    param: &'a str,
    first: bool,
    next: Option<String>,
    label: &'a str,
}

fn pager(lang: Lang, pager: Pager<'_>) -> Markup {
    let Pager { here, anchor, param, first, next, label: older } = pager;
    html! {
        @if !first || next.is_some() {
        nav class="pager" aria-label=(lang.t("console-pages")) {
            @if !first { a href={ (here) (anchor) } { (lang.t("console-page-first")) } }
            @if let Some(next) = next {
                a href={ (here) "?" (param) "=" (form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()) (anchor) } rel="next" { (lang.t(older)) }
            }
        }
        }
    }
}

/// The person's paired devices and their vault records (metadata only).
fn devices_and_records(lang: Lang, p: &Person, can_open: bool) -> Markup {
    let here = person_path(p.subject.as_str());
    let mut cols = vec![
        "console-person-category",
        "console-purpose",
        "console-person-created",
        "console-person-size",
        "console-person-delete-after",
    ];
    if can_open {
        cols.push("console-record-content");
    }
    html! {
        section aria-labelledby="devices" {
            h2 id="devices" { (lang.t("console-person-devices")) }
            @if p.devices.is_empty() {
                p { (lang.t("console-person-no-devices")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="person-devices" {
                        caption class="vh" { (lang.t("console-person-devices")) }
                        (head(lang, &["console-catalogue-name", "console-catalogue-kind", "console-person-paired", "console-person-last-seen", "console-person-device-id"]))
                        tbody {
                            @for d in &p.devices {
                                tr {
                                    th scope="row" data-label=(lang.t("console-catalogue-name")) { (d.name) }
                                    td data-label=(lang.t("console-catalogue-kind")) { (d.kind) }
                                    td data-label=(lang.t("console-person-paired")) { (when(lang, d.created_at)) }
                                    td data-label=(lang.t("console-person-last-seen")) {
                                        @match d.last_seen { Some(t) => { (when(lang, t)) } None => { span class="muted" { (lang.t("console-person-never-seen")) } } }
                                    }
                                    td data-label=(lang.t("console-person-device-id")) { code { (d.id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="records" {
            h2 id="records" { (lang.t("console-person-records")) }
            p class="muted" { (lang.t(if can_open { "console-person-records-intro-write" } else { "console-person-records-intro" })) }
            @if p.records.is_empty() {
                p { (lang.t("console-person-no-records")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="person-records" {
                        caption class="vh" { (lang.t("console-person-records")) }
                        (head(lang, &cols))
                        tbody {
                            @for r in &p.records {
                                tr {
                                    th scope="row" data-label=(lang.t("console-person-category")) { code { (r.category) } }
                                    td data-label=(lang.t("console-purpose")) { code { (r.purpose) } }
                                    td data-label=(lang.t("console-person-created")) { (when(lang, r.collected_at)) }
                                    td data-label=(lang.t("console-person-size")) { (lang.t_with("console-person-bytes", [("bytes", r.size.into())])) }
                                    td data-label=(lang.t("console-person-delete-after")) { @match r.delete_after { Some(t) => { (when(lang, t)) } None => { "–" } } }
                                    @if can_open {
                                        td data-label=(lang.t("console-record-content")) {
                                            a href={ (here) "/records/" (r.id) } { (lang.t("console-record-open")) span class="vh" { " " (r.id) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The person's requests, a page at a time.
fn requests(lang: Lang, here: &str, p: &Person, pages: &Pages) -> Markup {
    html! {
        section aria-labelledby="requests" {
            h2 id="requests" { (lang.t("console-person-requests")) }
            @if p.requests.requests.is_empty() {
                p { (lang.t("console-person-no-requests")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="person-requests" {
                        caption class="vh" { (lang.t("console-person-requests")) }
                        (head(lang, &["console-request", "console-request-type", "console-request-status", "console-request-due"]))
                        tbody {
                            @for r in &p.requests.requests {
                                tr {
                                    th scope="row" data-label=(lang.t("console-request")) { a href={ "/console/requests/" (r.id) } { code { (r.id) } } }
                                    td data-label=(lang.t("console-request-type")) { (lang.request_type(&r.kind)) }
                                    td data-label=(lang.t("console-request-status")) { (lang.request_status(&r.status)) }
                                    td data-label=(lang.t("console-request-due")) {
                                        (r.due_at.get(..10).unwrap_or(&r.due_at))
                                        @if r.overdue { " " span class="overdue" { (lang.t("console-person-overdue")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, Pager { here, anchor: "#requests", param: "requests_after", first: pages.requests_after.is_none(), next: p.requests.next.clone(), label: "console-page-next" }))
        }
    }
}

/// Who read the person's data (newest first, a page at a time) and their checks counted per purpose.
fn access(lang: Lang, here: &str, p: &Person, pages: &Pages) -> Markup {
    html! {
        section aria-labelledby="access" {
            h2 id="access" { (lang.t("console-person-access")) }
            @if p.access.is_empty() {
                p { (lang.t("console-person-no-access")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="person-access" {
                        caption class="vh" { (lang.t("console-person-access")) }
                        (head(lang, &["console-person-when", "console-person-caller", "console-person-route", "console-person-purpose"]))
                        tbody {
                            @for a in &p.access {
                                tr {
                                    th scope="row" data-label=(lang.t("console-person-when")) { (when(lang, a.at)) }
                                    td data-label=(lang.t("console-person-caller")) { code { (a.caller) } }
                                    td data-label=(lang.t("console-person-route")) { code { (a.route) } }
                                    td data-label=(lang.t("console-person-purpose")) { (a.purpose) }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, Pager { here, anchor: "#access", param: "access_before", first: pages.access_before.is_none(), next: p.access_next.map(|a| a.to_string()), label: "console-person-older" }))
            @if !p.checks.is_empty() {
                h3 { (lang.t("console-person-checks")) }
                ul class="log" id="person-checks" {
                    @for (purpose, count, last) in &p.checks {
                        li { (lang.t_with("console-person-checked", [("purpose", purpose.as_str().into()), ("count", (*count).into())])) " " span class="meta" { (when(lang, *last)) } }
                    }
                }
            }
        }
    }
}
