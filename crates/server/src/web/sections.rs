//! The sections of the preference centre below the choices, as maud templates: my history, my receipts,
//! who used my data, my devices, my data (the vault) and my requests.

use consentry_core::ledger::event_id;
use consentry_core::{Event, Timestamp};
use consentry_service::preferences::{ChildLink, Page};
use consentry_store::StoredReceipt;
use maud::{Markup, html};

use super::i18n::Lang;
use super::names::Names;
use super::session::{CHILDREN, PATH};
use crate::state::AppState;

/// A guardian's children, each a link to their choices.
pub fn children(lang: Lang, page: &Page) -> Markup {
    html! {
        @if !page.children.is_empty() {
            section aria-labelledby="children" {
                h2 id="children" { (lang.t("children")) }
                p { (lang.t("children-help")) }
                ul {
                    @for child in &page.children {
                        li {
                            a href={ (CHILDREN) "/" (child.reference) } {
                                (lang.t_with("child-manage", [("child", label(lang, child).into())]))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a child is named on their guardian's pages: by number, nothing of the child.
pub fn label(lang: Lang, child: &ChildLink) -> String {
    lang.t_with("child-label", [("number", child.number.into())])
}

/// My history: the ledger's events about the person, newest first.
pub fn history(lang: Lang, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    html! {
        section aria-labelledby="history" {
            h2 id="history" { (lang.t("history")) }
            @if page.history.is_empty() {
                p class="muted" { (lang.t("history-empty")) }
            } @else {
                ol class="log" {
                    @for e in &page.history {
                        li id=(event_id(e.seq)) {
                            time datetime=(e.recorded_at) { (lang.date_time(e.recorded_at)) }
                            p {
                                strong { (lang.action(e.action)) }
                                ": " (names.subject_of(e))
                                @if !e.scope.channels.is_empty() {
                                    " (" (names.channels(&e.scope.channels)) ")"
                                }
                            }
                            p class="meta" {
                                (lang.t("by")) ": " (lang.actor(&e.actor))
                                @if let Some(cp) = &e.collection_point {
                                    " · " (lang.t("at-point")) ": " (names.collection_point(cp))
                                }
                                @if let (Some(n), Some(v)) = (&e.notice, e.notice_version) {
                                    " · " (lang.t("notice-version")) ": " (n) " v" (v)
                                }
                                @if page.evidence.contains(&e.seq) {
                                    " · "
                                    a href={ (PATH) "/history/" (event_id(e.seq)) "/evidence" } {
                                        (lang.t("evidence"))
                                        span class="vh" {
                                            " " (lang.t_with("evidence-of", [("when", lang.date_time(e.recorded_at).into())]))
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

/// My receipts, newest first, and how to check them.
pub fn receipts(state: &AppState, lang: Lang, page: &Page) -> Markup {
    let jwks = format!("{}/.well-known/jwks.json", state.config.public_url());
    html! {
        section aria-labelledby="receipts" {
            h2 id="receipts" { (lang.t("receipts")) }
            p { (lang.t_with("receipts-help", [("jwks", jwks.into())])) }
            @if page.receipts.is_empty() {
                p class="muted" { (lang.t("receipts-empty")) }
            } @else {
                ul class="receipts" {
                    @for r in &page.receipts {
                        @let what = proves(lang, page, r);
                        li {
                            p class="strong" { (what) }
                            p class="meta" {
                                time datetime=(r.created_at) { (lang.date_time(r.created_at)) }
                                " · " code { (r.id) } " · "
                                a href={ (PATH) "/receipts/" (r.id) } download="" {
                                    (lang.t("download"))
                                    span class="vh" {
                                        " " (lang.t_with("receipt-of", [("what", what.as_str().into())]))
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

/// What a receipt proves, in words: each change it seals ("Withdrew: News and offers (E-mail)"), from the
/// history the page holds; its id where the page does not hold them (an old receipt).
fn proves(lang: Lang, page: &Page, receipt: &StoredReceipt) -> String {
    let names = Names(&page.catalog.catalog, lang.code());
    let mut changes: Vec<&Event> =
        page.history.iter().filter(|e| (receipt.first_seq..=receipt.last_seq).contains(&e.seq)).collect();
    changes.sort_by_key(|e| e.seq);
    if changes.is_empty() {
        return receipt.id.clone();
    }
    let each = changes.iter().map(|e| {
        let mut text = format!("{}: {}", lang.action(e.action), names.subject_of(e));
        if !e.scope.channels.is_empty() {
            text.push_str(&format!(" ({})", names.channels(&e.scope.channels)));
        }
        text
    });
    each.collect::<Vec<_>>().join("; ")
}

/// What the receipt `id` proves, in words (its id when the page does not hold it).
pub fn receipt_proves(lang: Lang, page: &Page, id: &str) -> String {
    page.receipts.iter().find(|r| r.id == id).map_or_else(|| id.to_owned(), |r| proves(lang, page, r))
}

/// Who used my data: the access log, and how often the person's choices were checked.
pub fn access(lang: Lang, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    html! {
        section aria-labelledby="access" {
            h2 id="access" { (lang.t("access")) }
            p { (lang.t("access-help")) }
            @if page.access.is_empty() && page.checks.is_empty() {
                p class="muted" { (lang.t("access-empty")) }
            }
            @if !page.access.is_empty() {
                ol class="log" {
                    @for a in &page.access {
                        li {
                            time datetime=(a.at) { (lang.date_time(a.at)) }
                            p {
                                strong {
                                    @if a.caller == "subject" {
                                        (lang.t("actor-subject"))
                                    } @else if consentry_core::ledger::is_guardian_actor(&a.caller) {
                                        // Named by pseudonym in the log: the person reads who, not which id.
                                        (lang.t("actor-guardian"))
                                    } @else {
                                        (a.caller)
                                    }
                                }
                            }
                            // Where it came in: an API route, or what the person did on this page.
                            p class="meta" { code { (a.route) } }
                            p class="meta" { (lang.t("access-reason")) ": " (a.purpose) }
                        }
                    }
                }
            }
            @for (purpose, count, last) in &page.checks {
                p class="meta" {
                    (lang.t_with("checks", [
                        ("purpose", names.purpose(purpose).into()),
                        ("count", (*count).into()),
                        ("date", lang.date_time(*last).into()),
                    ]))
                }
            }
        }
    }
}

/// My devices: what is paired, and unpairing; and the devices the person shares with their household
/// (shown, not unpaired here: they are the household's).
pub fn devices(lang: Lang, csrf: &str, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    html! {
        section aria-labelledby="devices" {
            h2 id="devices" { (lang.t("devices")) }
            p { (lang.t("devices-help")) }
            @if page.devices.is_empty() {
                p class="muted" { (lang.t("devices-empty")) }
            } @else {
                ul class="log" {
                    @for d in &page.devices {
                        @let since = lang.date_time(d.created_at);
                        @let unpair = lang.t_with("unpair-named", [("device", d.name.as_str().into())]);
                        li {
                            p class="strong" { (d.name) }
                            p class="meta" {
                                (d.kind) " · " (lang.t_with("paired-since", [("date", since.into())]))
                            }
                            p {
                                (lang.t_with("device-uses", [
                                    ("categories", names.categories(&d.categories).into()),
                                    ("purposes", names.purposes(&d.purposes).into()),
                                ]))
                            }
                            form method="post" action={ (PATH) "/devices/" (d.id) "/unpair" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" class="secondary" aria-label=(unpair) {
                                    (lang.t("unpair"))
                                }
                            }
                        }
                    }
                }
            }
            @if !page.household_devices.is_empty() {
                h3 id="household-devices" { (lang.t("household-devices")) }
                p { (lang.t("household-devices-help")) }
                ul class="log" aria-labelledby="household-devices" {
                    @for d in &page.household_devices {
                        @let since = lang.date_time(d.created_at);
                        li {
                            p class="strong" { (d.name) }
                            p class="meta" {
                                (d.kind) " · " (lang.t_with("paired-since", [("date", since.into())]))
                            }
                            p {
                                (lang.t_with("device-uses", [
                                    ("categories", names.categories(&d.categories).into()),
                                    ("purposes", names.purposes(&d.purposes).into()),
                                ]))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a browser shows a payload of this type as text (JSON or `text/*`); others are only downloaded
/// or played.
fn viewable(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json") || essence.starts_with("text/")
}

/// My data: the person's records in the vault, to look at, play, download and delete.
pub fn data(lang: Lang, csrf: &str, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    // Delete a whole kind of data: the kinds the person has records of.
    let mut kinds: Vec<&str> = page.records.iter().map(|r| r.category.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    html! {
        section aria-labelledby="data" {
            h2 id="data" { (lang.t("data")) }
            p { (lang.t("data-help")) }
            @if page.records.is_empty() {
                p class="muted" { (lang.t("data-empty")) }
            } @else {
                ol class="log records" {
                    @for r in &page.records {
                        @let href = format!("{PATH}/data/{}", r.id);
                        @let category = names.category(&r.category);
                        @let label = lang.t_with("delete-item", [("what", category.into())]);
                        li {
                            time datetime=(r.collected_at) { (lang.date_time(r.collected_at)) }
                            p {
                                strong { (category) } " · " (names.purpose(&r.purpose))
                            }
                            p class="meta" {
                                (r.content_type) " · " (lang.t_with("size-bytes", [("size", r.size.into())]))
                            }
                            @if r.content_type.starts_with("audio/") {
                                audio controls="" preload="none" src=(href) {}
                            }
                            div class="row" {
                                @let named = format!("{category}, {}", lang.date_time(r.collected_at));
                                @if viewable(&r.content_type) {
                                    a href=(href) { (lang.t("view")) span class="vh" { " " (named) } }
                                }
                                a href={ (href) "?download=1" } download="" {
                                    (lang.t("download")) span class="vh" { " " (named) }
                                }
                                form method="post" action={ (href) "/delete" } class="inline" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" class="link" aria-label=(label) {
                                        (lang.t("delete"))
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ (PATH) "/data/delete-category" } class="card" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="delete-category" { (lang.t("delete-category-label")) }
                    div class="row" {
                        select id="delete-category" name="category" {
                            @for k in &kinds {
                                option value=(k) { (names.category(k)) }
                            }
                        }
                        button type="submit" class="secondary" { (lang.t("delete-category")) }
                    }
                }
            }
        }
    }
}

/// My requests: their state and due dates, "get a copy of my data" and "delete my data".
pub fn requests(lang: Lang, csrf: &str, page: &Page) -> Markup {
    let when = |text: &str| Timestamp::parse(text).map_or_else(|| text.to_owned(), |t| lang.date_time(t));
    html! {
        section aria-labelledby="requests" {
            h2 id="requests" { (lang.t("requests")) }
            p { (lang.t("requests-help")) }
            @if page.requests.is_empty() {
                p class="muted" { (lang.t("requests-empty")) }
            } @else {
                ul class="log" {
                    @for r in &page.requests {
                        li {
                            p class="strong" { (lang.request_type(&r.kind)) }
                            p class="meta" {
                                (lang.request_status(&r.status)) " · "
                                (lang.t_with("received-on", [("date", when(&r.received_at).into())]))
                            }
                            // While the request is open, when it is answered at the latest.
                            @if r.status == "received" || r.status == "in_progress" {
                                p class=(if r.overdue { "overdue" } else { "meta" }) {
                                    (lang.t_with("due-by", [("date", when(&r.due_at).into())]))
                                }
                            }
                            @if let Some(export) = &r.export {
                                p {
                                    a href={ (PATH) "/requests/" (r.id) "/export" } download="" {
                                        (lang.t("download-export"))
                                    }
                                    @let until = when(&export.available_until);
                                    " (" (lang.t_with("export-until", [("date", until.into())])) ")"
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action={ (PATH) "/requests/access" } class="card" {
                input type="hidden" name="csrf" value=(csrf);
                p { (lang.t("download-data-help")) }
                button type="submit" class="secondary" { (lang.t("download-data")) }
            }
            div class="card" {
                p { (lang.t("delete-data-help")) }
                a class="button danger" href={ (PATH) "/erase" } { (lang.t("delete-data")) }
            }
        }
    }
}
