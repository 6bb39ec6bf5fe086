//! The console's overview: where people stand on each consent purpose now, and charts of what happened
//! over 7 days, 30 days or 12 months (from the rollups, [`consentry_service::console::overview`]).

use axum::extract::State;
use axum::response::Response;
use consentry_service::console::overview::{self as service, Overview, Range};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{Chart, Line};
use super::extract::PageQuery;
use super::session::PATH;
use super::{Stop, Visit, page};
use crate::state::AppState;
use crate::web::i18n::Lang;

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    range: Option<String>,
}

/// `GET /console`.
pub(super) async fn show(State(state): State<AppState>, visit: Visit, q: PageQuery<Params>) -> Response {
    let range = match q.0.range.as_deref() {
        None => Range::Month,
        Some(r) => match Range::parse(r) {
            Some(r) => r,
            None => return visit.stop(&state, Stop::Invalid("console-range-invalid")),
        },
    };
    let result = service::overview(&state, range).await.map_err(Stop::from);
    visit.page(&state, result.map(|o| render(&state, &visit, &o)))
}

/// The label of a bucket: its day (`2026-03-05`), or for twelve months its month (`2026-03`).
fn bucket_label(range: Range, b: service::Bucket) -> String {
    let day = b.start().to_string();
    match range {
        Range::Year => day[..7].to_owned(),
        Range::Week | Range::Month => day[..10].to_owned(),
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} %"))
}

/// The overview page.
fn render(state: &AppState, visit: &Visit, o: &Overview) -> String {
    let lang = visit.lang;
    let catalog = state.catalog();
    let name = |key: &str| catalog.catalog.purpose(key).map_or(key, |p| p.name_in(lang.code())).to_owned();
    let buckets: Vec<String> = o.buckets.iter().map(|b| bucket_label(o.range, *b)).collect();
    let axis = lang.t(if o.range == Range::Year { "console-axis-month" } else { "console-axis-day" });
    let chart = |id: &'static str, title: &str, y: &str, lines: Vec<Line>, percent: bool| Chart {
        id,
        title: lang.t(title),
        x_label: axis.clone(),
        y_label: lang.t(y),
        buckets: buckets.clone(),
        lines,
        percent,
        table_label: lang.t("console-chart-table"),
        none: "–".into(),
    };
    let per_purpose = |pick: &dyn Fn(&service::Series) -> Vec<Option<f64>>| -> Vec<Line> {
        o.series.iter().map(|s| Line { name: name(&s.purpose), values: pick(s) }).collect()
    };
    let counts = |v: &[u64]| v.iter().map(|n| Some(*n as f64)).collect::<Vec<_>>();
    let charts = [
        chart(
            "grants",
            "console-chart-grants",
            "console-axis-people",
            per_purpose(&|s| counts(&s.grants)),
            false,
        ),
        chart(
            "withdrawals",
            "console-chart-withdrawals",
            "console-axis-people",
            per_purpose(&|s| counts(&s.withdrawals)),
            false,
        ),
        chart(
            "opt-in",
            "console-chart-opt-in",
            "console-axis-percent",
            per_purpose(&|s| s.opt_in_rate()),
            true,
        ),
        chart(
            "checks",
            "console-chart-checks",
            "console-axis-checks",
            per_purpose(&|s| counts(&s.checks)),
            false,
        ),
        chart(
            "denied",
            "console-chart-denied",
            "console-axis-checks",
            per_purpose(&|s| counts(&s.denied)),
            false,
        ),
        chart(
            "gpc",
            "console-chart-gpc",
            "console-axis-signals",
            vec![Line { name: lang.t("console-gpc-line"), values: counts(&o.gpc) }],
            false,
        ),
    ];
    let requests = chart(
        "requests",
        "console-chart-requests",
        "console-axis-requests",
        vec![
            Line { name: lang.t("console-requests-received"), values: counts(&o.requests.received) },
            Line { name: lang.t("console-requests-completed"), values: counts(&o.requests.completed) },
            Line { name: lang.t("console-requests-overdue"), values: counts(&o.requests.overdue) },
        ],
        false,
    );
    let content = html! {
        (range_switch(lang, o.range))
        @if o.counted_to < o.ledger_head {
            p class="muted" role="status" {
                (lang.t_with("console-counting", [("counted", o.counted_to.into()), ("head", o.ledger_head.into())]))
            }
        }
        section aria-labelledby="now" {
            h2 id="now" { (lang.t("console-now-title")) }
            div class="scroll" tabindex="0" {
                table id="standing" {
                    caption class="vh" { (lang.t("console-now-title")) }
                    thead { tr {
                        th scope="col" { (lang.t("console-purpose")) }
                        @for id in ["console-agreed", "console-refused", "console-withdrew", "console-other", "console-never", "console-opt-in-rate"] {
                            th scope="col" { (lang.t(id)) }
                        }
                    } }
                    tbody {
                        @for s in &o.standing {
                            tr {
                                th scope="row" data-label=(lang.t("console-purpose")) { (name(&s.purpose)) br; code { (s.purpose) } }
                                @for (id, value) in [
                                    ("console-agreed", s.agreed.to_string()),
                                    ("console-refused", s.refused.to_string()),
                                    ("console-withdrew", s.withdrew.to_string()),
                                    ("console-other", s.other.to_string()),
                                    ("console-never", s.never_answered.to_string()),
                                    ("console-opt-in-rate", percent(s.opt_in_rate())),
                                ] {
                                    td data-label=(lang.t(id)) { (value) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="time" {
            h2 id="time" { (lang.t("console-time-title")) }
            @for c in &charts { (c.render()) }
        }
        section aria-labelledby="requests" {
            h2 id="requests" { (lang.t("console-requests-title")) }
            p id="overdue" class=[(o.overdue_requests > 0).then_some("overdue")] {
                (lang.t_with("console-overdue", [("requests", o.overdue_requests.into()), ("tasks", o.overdue_tasks.into())]))
            }
            (requests.render())
        }
    };
    page::frame(state, lang, Some(visit), PATH, &lang.t("console-nav-overview"), content)
}

fn range_switch(lang: Lang, current: Range) -> Markup {
    html! {
        nav class="ranges" aria-label=(lang.t("console-range-label")) {
            ul {
                @for r in Range::ALL {
                    li {
                        @let label = lang.t(match r { Range::Week => "console-range-7d", Range::Month => "console-range-30d", Range::Year => "console-range-12m" });
                        @if r == current {
                            a href={ (PATH) "?range=" (r.code()) } aria-current="page" { (label) }
                        } @else {
                            a href={ (PATH) "?range=" (r.code()) } { (label) }
                        }
                    }
                }
            }
        }
    }
}
