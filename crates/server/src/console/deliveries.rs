//! The console's deliveries: every destination with its state and the outbox's health, one destination's
//! deliveries by state (dead letters with their error), replay (from a dead letter on, or since a time),
//! pause and resume, from [`consentry_service::console::deliveries`].

use axum::extract::{Path, State};
use axum::response::Response;
use consentry_core::Timestamp;
use consentry_service::Error;
use consentry_service::console::deliveries::{self as service, Attempts, Deliveries, Success};
use consentry_service::destinations::{DeliveryList, DestinationOut};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{Chart, Line};
use super::extract::{Act, PageQuery};
use super::{Stop, Visit, page, see_other};
use crate::state::AppState;
use crate::web::i18n::Lang;

const HERE: &str = "/console/deliveries";
const STATES: [&str; 3] = ["pending", "delivered", "dead"];

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    status: Option<String>,
    after: Option<i64>,
    done: Option<String>,
}

fn state_of(lang: Lang, d: &DestinationOut) -> String {
    let mut words =
        vec![lang.t(if d.paused { "console-destination-paused" } else { "console-destination-active" })];
    if d.flagged {
        words.push(lang.t("console-destination-flagged"));
    }
    words.join(", ")
}

/// `GET /console/deliveries`.
pub(super) async fn list(State(state): State<AppState>, visit: Visit) -> Response {
    let result = service::overview(&state).await.map_err(Stop::from);
    visit.page(&state, result.map(|d| render_list(&state, &visit, &d)))
}

/// How old an oldest undelivered message is, in words.
fn lag_words(lang: Lang, lag: Option<f64>) -> String {
    lag.map_or_else(
        || lang.t("console-outbox-no-lag"),
        |s| lang.t_with("console-outbox-lag", [("seconds", format!("{s:.0}").into())]),
    )
}

/// A success rate with its attempts ("75.0 % of 4"), or a dash without attempts.
fn rate_words(lang: Lang, a: Attempts) -> String {
    a.rate().map_or_else(
        || "–".to_owned(),
        |r| {
            lang.t_with(
                "console-success-of",
                [("rate", format!("{r:.1}").into()), ("attempts", (a.ok + a.failed).into())],
            )
        },
    )
}

/// The destination's success rate over the last hour (a bucket a minute) and day (a bucket an hour).
fn success_charts(lang: Lang, s: &Success) -> Markup {
    let chart = |id: &'static str, title: &str, axis: &str, buckets: &[(Timestamp, Attempts)]| Chart {
        id,
        title: lang.t(title),
        x_label: lang.t(axis),
        y_label: lang.t("console-axis-success"),
        buckets: buckets.iter().map(|(t, _)| t.to_string()[11..16].to_owned()).collect(),
        lines: vec![Line {
            name: lang.t("console-success-line"),
            values: buckets.iter().map(|(_, a)| a.rate()).collect(),
        }],
        percent: true,
        table_label: lang.t("console-chart-table"),
        none: "–".into(),
    };
    html! {
        section aria-labelledby="success" {
            h2 id="success" { (lang.t("console-success-title")) }
            (chart("success-hour", "console-chart-success-hour", "console-axis-minute", &s.hour).render())
            (chart("success-day", "console-chart-success-day", "console-axis-hour", &s.day).render())
        }
    }
}

fn render_list(state: &AppState, visit: &Visit, d: &Deliveries) -> String {
    let lang = visit.lang;
    let lag = lag_words(lang, d.lag_seconds);
    let content = html! {
        dl class="card" id="outbox" {
            dt { (lang.t("console-outbox-oldest")) } dd { (lag) }
            dt { (lang.t("console-dead-letters")) } dd { (d.dead_letters) }
        }
        @if d.destinations.is_empty() {
            p class="card" { (lang.t("console-destinations-none")) }
        } @else {
            div class="scroll" tabindex="0" {
                table id="destinations" {
                    caption class="vh" { (lang.t("console-nav-deliveries")) }
                    thead { tr {
                        @for id in ["console-destination", "console-destination-kind", "console-destination-state", "console-outbox-oldest", "console-success-hour", "console-success-day", "console-destination-types"] {
                            th scope="col" { (lang.t(id)) }
                        }
                    } }
                    tbody {
                        @for ((dest, dest_lag), (hour, day)) in d.destinations.iter().zip(&d.lags).zip(&d.success) {
                            tr {
                                th scope="row" data-label=(lang.t("console-destination")) { a href={ (HERE) "/" (dest.id) } { (dest.name) } }
                                td data-label=(lang.t("console-destination-kind")) { (dest.kind) }
                                td data-label=(lang.t("console-destination-state")) class=[dest.flagged.then_some("overdue")] { (state_of(lang, dest)) }
                                td data-label=(lang.t("console-outbox-oldest")) { (lag_words(lang, *dest_lag)) }
                                td data-label=(lang.t("console-success-hour")) { (rate_words(lang, *hour)) }
                                td data-label=(lang.t("console-success-day")) { (rate_words(lang, *day)) }
                                td data-label=(lang.t("console-destination-types")) { code { (dest.event_types.join(", ")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-nav-deliveries"), content)
}

/// `GET /console/deliveries/{id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    q: PageQuery<Params>,
) -> Response {
    let q = q.0;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let result = match service::destination(&state, &id, status, q.after).await {
        Ok((d, lag, success, list)) => {
            Ok(render_destination(&state, &visit, (&d, lag, &success), &list, status, q.done.as_deref()))
        }
        Err(Error::InvalidQuery(_)) => Err(Stop::Invalid("console-delivery-filter-invalid")),
        Err(e) => Err(Stop::from(e)),
    };
    visit.page(&state, result)
}

fn status_word(lang: Lang, status: &str) -> String {
    lang.t(match status {
        "pending" => "console-delivery-pending",
        "delivered" => "console-delivery-delivered",
        _ => "console-delivery-dead",
    })
}

fn render_destination(
    state: &AppState,
    visit: &Visit,
    (d, lag, success): (&DestinationOut, Option<f64>, &Success),
    list: &DeliveryList,
    status: Option<&str>,
    done: Option<&str>,
) -> String {
    let lang = visit.lang;
    let csrf = visit.csrf(state);
    let here = format!("{HERE}/{}", d.id);
    let filter_link = |s: Option<&str>, after: Option<i64>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = s {
            q.append_pair("status", s);
        }
        if let Some(a) = after {
            q.append_pair("after", &a.to_string());
        }
        let q = q.finish();
        if q.is_empty() { here.clone() } else { format!("{here}?{q}") }
    };
    let note: Option<Markup> = match done {
        Some("replayed") => Some(html! { (lang.t("console-replayed")) }),
        Some("replayed-one") => Some(html! { (lang.t("console-replayed-one")) }),
        Some("paused") => Some(html! { (lang.t("console-paused")) }),
        Some("resumed") => Some(html! { (lang.t("console-resumed")) }),
        _ => None,
    };
    let content = html! {
        @if let Some(n) = note { p class="card done" role="status" { (n) } }
        dl class="card" {
            dt { (lang.t("console-destination-state")) } dd id="destination-state" { (state_of(lang, d)) }
            dt { (lang.t("console-outbox-oldest")) } dd id="destination-lag" { (lag_words(lang, lag)) }
            dt { (lang.t("console-destination-kind")) } dd { (d.kind) }
            dt { (lang.t("console-destination-types")) } dd { code { (d.event_types.join(", ")) } }
        }
        (success_charts(lang, success))
        @if visit.caller.can_act {
            div class="row" {
                form method="post" action={ (here) (if d.paused { "/resume" } else { "/pause" }) } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" class="secondary" id="pause" { (lang.t(if d.paused { "console-resume" } else { "console-pause" })) }
                }
            }
            form class="card" method="post" action={ (here) "/replay" } id="replay-since" {
                input type="hidden" name="csrf" value=(csrf);
                label for="since" { (lang.t("console-replay-since")) }
                input type="datetime-local" id="since" name="since" required step="1";
                p class="row" { button type="submit" class="secondary" { (lang.t("console-replay")) } }
            }
        }
        nav class="ranges" aria-label=(lang.t("console-delivery-filter")) {
            ul {
                li { a href=(filter_link(None, None)) aria-current=[status.is_none().then_some("page")] { (lang.t("console-any")) } }
                @for s in STATES {
                    li { a href=(filter_link(Some(s), None)) aria-current=[(status == Some(s)).then_some("page")] { (status_word(lang, s)) } }
                }
            }
        }
        @if list.deliveries.is_empty() {
            p class="card" { (lang.t("console-deliveries-none")) }
        } @else {
            div class="scroll" tabindex="0" {
                table id="deliveries" {
                    caption class="vh" { (lang.t("console-nav-deliveries")) }
                    thead { tr {
                        @for id in ["console-delivery", "console-delivery-type", "console-delivery-status", "console-delivery-attempts", "console-delivery-error", "console-delivery-created"] {
                            th scope="col" { (lang.t(id)) }
                        }
                        @if visit.caller.can_act { th scope="col" { (lang.t("console-key-actions")) } }
                    } }
                    tbody {
                        @for r in &list.deliveries {
                            tr {
                                th scope="row" data-label=(lang.t("console-delivery")) { (r.id) }
                                td data-label=(lang.t("console-delivery-type")) { code { (r.event_type) } }
                                td data-label=(lang.t("console-delivery-status")) { (status_word(lang, &r.status)) }
                                td data-label=(lang.t("console-delivery-attempts")) { (r.attempts) }
                                td data-label=(lang.t("console-delivery-error")) { (r.last_error.as_deref().unwrap_or("–")) }
                                td data-label=(lang.t("console-delivery-created")) { (r.created_at) }
                                @if visit.caller.can_act {
                                    td data-label=(lang.t("console-key-actions")) {
                                        @if r.status == "dead" {
                                            form class="inline" method="post" action={ (here) "/dead-letters/" (r.id) "/replay" } {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button type="submit" class="link" aria-label=(lang.t_with("console-replay-one-label", [("id", r.id.into())])) { (lang.t("console-replay-one")) }
                                            }
                                            " · "
                                            form class="inline" method="post" action={ (here) "/replay" } {
                                                input type="hidden" name="csrf" value=(csrf);
                                                input type="hidden" name="from_id" value=(r.id);
                                                button type="submit" class="link" aria-label=(lang.t_with("console-replay-from-label", [("id", r.id.into())])) { (lang.t("console-replay-from")) }
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
        @if list.next.is_some() || status.is_some() {
            nav class="pager" aria-label=(lang.t("console-pages")) {
                @if let Some(next) = list.next { a href=(filter_link(status, Some(next))) rel="next" { (lang.t("console-page-next")) } }
            }
        }
    };
    page::frame(state, lang, Some(visit), HERE, &d.name, content)
}

/// `POST /console/deliveries/{id}/replay`: from a delivery id (`from_id`) or a time (`since`, UTC).
pub(super) async fn replay(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    let Act { visit, fields } = act;
    let from_id = fields.get("from_id").and_then(|v| v.parse::<i64>().ok());
    // A `datetime-local` field has no zone: the page says it is UTC.
    let since = fields.get("since").filter(|s| !s.is_empty()).map(|s| {
        let with_seconds = if s.len() == 16 { format!("{s}:00") } else { s.to_owned() };
        Timestamp::parse(&format!("{with_seconds}Z"))
    });
    let since = match since {
        Some(None) => return visit.stop(&state, Stop::Invalid("console-replay-invalid")),
        Some(Some(t)) => Some(t),
        None => None,
    };
    match service::replay(&state, &visit.caller, &id, from_id, since).await {
        Ok(_) => see_other(&format!("{HERE}/{id}?done=replayed")),
        Err(Error::Validation { .. }) => visit.stop(&state, Stop::Invalid("console-replay-invalid")),
        Err(Error::ReplayOutOfReach(_)) => visit.stop(&state, Stop::Invalid("console-replay-out-of-reach")),
        Err(e) => visit.stop(&state, Stop::from(e)),
    }
}

async fn set_paused(state: &AppState, visit: &Visit, id: &str, paused: bool) -> Response {
    match service::set_paused(state, &visit.caller, id, paused).await {
        Ok(_) => see_other(&format!("{HERE}/{id}?done={}", if paused { "paused" } else { "resumed" })),
        Err(e) => visit.stop(state, Stop::from(e)),
    }
}

/// `POST /console/deliveries/{id}/dead-letters/{outbox_id}/replay`: that dead letter alone.
pub(super) async fn replay_one(
    State(state): State<AppState>,
    Path((id, outbox_id)): Path<(String, i64)>,
    act: Act,
) -> Response {
    match service::replay_dead_letter(&state, &act.visit.caller, &id, outbox_id).await {
        Ok(()) => see_other(&format!("{HERE}/{id}?status=dead&done=replayed-one")),
        Err(e) => act.visit.stop(&state, Stop::from(e)),
    }
}

/// `POST /console/deliveries/{id}/pause`.
pub(super) async fn pause(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    set_paused(&state, &act.visit, &id, true).await
}

/// `POST /console/deliveries/{id}/resume`.
pub(super) async fn resume(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    set_paused(&state, &act.visit, &id, false).await
}
