//! The preference centre's pages as maud templates: the frame every page shares, the page of choices (with
//! "sign out everywhere" at its end), the confirmation before erasing, and the page for a request that
//! cannot go on. The sections below the
//! choices (history, receipts, access, devices, data, requests) are in [`super::sections`].
//!
//! Every word comes from the message files ([`super::i18n`]) or from the catalogue; maud escapes every
//! value it inserts, so only the markup written here is markup.

use consentry_core::Reason;
use consentry_core::catalog::{Basis, same_language};
use consentry_service::preferences::{Choice, GpcNote, Notice, Page};
use consentry_store::NoticeVersion;
use maud::{Markup, PreEscaped, html};

use super::i18n::Lang;
use super::names::Names;
use super::sections;
use super::session::{CONFIRM, PATH};

/// The confirmation page of "delete my data".
pub const ERASE: &str = "/preferences/erase";
use crate::state::AppState;

/// A whole page: the head, the header with the language switch (each language's link to `here`, which
/// keeps the choice in a cookie), `content` in `<main>`, and the footer with whom to ask.
pub(super) fn frame(state: &AppState, lang: Lang, here: &str, content: Markup) -> String {
    let title = lang.t("title");
    let c = &state.config.controller;
    let contact =
        lang.t_with("contact", [("contact", c.contact.as_str().into()), ("email", c.email.as_str().into())]);
    let page = html! {
        // maud's DOCTYPE is upper-case; ours has always been written as HTML5 suggests.
        (PreEscaped("<!doctype html>"))
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href="/preferences/style.css";
                script src="/preferences/choices.js" defer {}
            }
            body {
                a class="skip" href="#main" { (lang.t("skip-link")) }
                header class="top" {
                    div class="wrap" {
                        p class="brand" { (title) }
                        nav class="langs" aria-label=(lang.t("language-label")) {
                            ul {
                                @for other in Lang::ALL {
                                    li {
                                        @if other == lang {
                                            span aria-current="true" lang=(other.code()) {
                                                (other.t("language-name"))
                                            }
                                        } @else {
                                            a href={ (here) "?lang=" (other.code()) } lang=(other.code())
                                                hreflang=(other.code()) { (other.t("language-name")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" class="wrap" tabindex="-1" { (content) }
                footer class="wrap" { p { (contact) } }
            }
        }
    };
    page.into_string()
}

/// A page for a request that cannot go on: what happened and the way forward.
pub fn message(state: &AppState, lang: Lang, title: &str, body: &str, back: bool) -> String {
    message_to(state, lang, title, body, back.then_some((PATH, "back")))
}

/// A page for a request that cannot go on, with a button to `way` (a path and its message id).
pub fn message_to(
    state: &AppState,
    lang: Lang,
    title: &str,
    body: &str,
    way: Option<(&str, &str)>,
) -> String {
    let content = html! {
        section class="card notice" {
            h1 { (title) }
            p { (body) }
            @if let Some((href, label)) = way {
                p { a class="button" href=(href) { (lang.t(label)) } }
            }
        }
    };
    frame(state, lang, PATH, content)
}

/// A link for another person was opened while someone is signed in: ask before switching, naming neither.
pub fn confirm_switch(state: &AppState, lang: Lang, csrf: &str, link: &str) -> String {
    let content = html! {
        section class="card notice" {
            h1 { (lang.t("switch-title")) }
            p { (lang.t("switch-body")) }
            form method="post" action={ (PATH) "/switch" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(link);
                div class="row" {
                    button type="submit" { (lang.t("switch-confirm")) }
                    a href=(PATH) { (lang.t("switch-cancel")) }
                }
            }
        }
    };
    frame(state, lang, PATH, content)
}

/// The confirmation step of "delete my data": what will happen, in plain words, and the one button.
pub fn confirm_erasure(state: &AppState, lang: Lang, csrf: &str) -> String {
    let items = ["erase-records", "erase-devices", "erase-ledger", "erase-downstream", "erase-page"];
    let content = html! {
        section class="card notice" {
            h1 { (lang.t("erase-title")) }
            p { (lang.t("erase-intro")) }
            ul {
                @for item in items { li { (lang.t(item)) } }
            }
            p class="strong" { (lang.t("erase-final")) }
            form method="post" action=(ERASE) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                div class="row" {
                    button type="submit" class="danger" { (lang.t("erase-confirm")) }
                    a href=(PATH) { (lang.t("erase-cancel")) }
                }
            }
        }
    };
    frame(state, lang, ERASE, content)
}

/// The preference centre: the person's choices and everything else the page shows about them.
pub fn preferences(state: &AppState, lang: Lang, csrf: &str, page: &Page) -> String {
    let intro = lang.t_with("intro", [("controller", state.config.controller.name.as_str().into())]);
    let mut sections_nav = vec![
        ("choices", lang.t("choices")),
        ("others", lang.t("others")),
        ("history", lang.t("history")),
        ("receipts", lang.t("receipts")),
        ("access", lang.t("access")),
        ("devices", lang.t("devices")),
        ("data", lang.t("data")),
        ("requests", lang.t("requests")),
        ("sign-out", lang.t("sign-out-title")),
    ];
    if !page.children.is_empty() {
        sections_nav.insert(2, ("children", lang.t("children")));
    }
    let (asked, not_asked): (Vec<&Choice>, Vec<&Choice>) =
        page.choices.iter().partition(|c| c.purpose.basis == Basis::Consent);
    let content = html! {
        h1 { (lang.t("title")) }
        p class="lead" { (intro) }
        nav class="sections" aria-label=(lang.t("sections-label")) {
            ul {
                @for (id, label) in &sections_nav {
                    li { a href={ "#" (id) } { (label) } }
                }
            }
        }
        (gpc_note(lang, page))
        (notice(lang, page))
        (came_of_age(lang, csrf, page))
        section aria-labelledby="choices" {
            h2 id="choices" { (lang.t("choices")) }
            p { (lang.t("choices-help")) }
            form method="post" action=(PATH) class="choices" {
                input type="hidden" name="csrf" value=(csrf);
                @for choice in &asked { (card(lang, csrf, page, choice)) }
                div class="actions" {
                    button type="submit" class="primary" { (lang.t("save")) }
                }
            }
            form method="post" action={ (PATH) "/withdraw-all" } class="withdraw" {
                input type="hidden" name="csrf" value=(csrf);
                // The notice versions the person saw, so withdrawing is recorded under them.
                @for choice in &asked {
                    @if let Some(n) = shown_notice(page, choice, lang) {
                        input type="hidden" name="v" value={ (n.key) "|" (n.version) };
                    }
                }
                button type="submit" class="secondary" { (lang.t("withdraw-all")) }
                p class="muted" { (lang.t("withdraw-all-help")) }
            }
        }
        @if !not_asked.is_empty() {
            section aria-labelledby="others" {
                h2 id="others" { (lang.t("others")) }
                p { (lang.t("no-consent-needed")) }
                @for choice in &not_asked { (card(lang, csrf, page, choice)) }
            }
        }
        (sections::children(lang, page))
        (sections::history(lang, page))
        (sections::receipts(state, lang, page))
        (sections::access(lang, page))
        (sections::devices(lang, csrf, page))
        (sections::data(lang, csrf, page))
        (sections::requests(lang, csrf, page))
        section aria-labelledby="sign-out" {
            h2 id="sign-out" { (lang.t("sign-out-title")) }
            p { (lang.t("sign-out-help")) }
            form method="post" action={ (PATH) "/sign-out" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" class="secondary" { (lang.t("sign-out")) }
            }
        }
    };
    frame(state, lang, PATH, content)
}

/// The notice (its current version in the page's language, else in the catalogue's own) that `choice`'s
/// purpose is shown with, if any. The form posts this version back, so a change is recorded under the
/// text in the language the person read.
pub(super) fn shown_notice<'p>(page: &'p Page, choice: &Choice, lang: Lang) -> Option<&'p NoticeVersion> {
    let key = choice.purpose.notice.as_ref()?;
    let versions = || page.catalog.stored.notices.iter().filter(|n| &n.key == key);
    versions().find(|n| same_language(&n.language, lang.code())).or_else(|| versions().next())
}

/// For a person who came of age while choices a guardian made hold: what those are, "confirm" and a way
/// to the choices to change them. A region with a heading, right below what the request did.
fn came_of_age(lang: Lang, csrf: &str, page: &Page) -> Markup {
    let Some(came) = &page.came_of_age else { return html! {} };
    let names = Names(&page.catalog.catalog, lang.code());
    let confirmed: Vec<&Choice> =
        page.choices.iter().filter(|c| came.purposes.contains(&c.purpose.key)).collect();
    html! {
        section class="card info came-of-age" aria-labelledby="came-of-age" {
            h2 id="came-of-age" { (lang.t("came-of-age-title")) }
            p { (lang.t("came-of-age-body")) }
            ul {
                @for purpose in &came.purposes { li { (names.purpose(purpose)) } }
            }
            form method="post" action=(CONFIRM) {
                input type="hidden" name="csrf" value=(csrf);
                // The notice versions the page shows, so the person's grants are recorded under them.
                @for choice in &confirmed {
                    @if let Some(n) = shown_notice(page, choice, lang) {
                        input type="hidden" name="v" value={ (n.key) "|" (n.version) };
                    }
                }
                div class="row" {
                    button type="submit" class="primary" { (lang.t("came-of-age-confirm")) }
                    a class="button" href="#choices" { (lang.t("came-of-age-change")) }
                }
            }
        }
    }
}

/// What the Global Privacy Control signal did on this request.
fn gpc_note(lang: Lang, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    html! {
        @match &page.gpc {
            Some(GpcNote::Recorded(purposes)) => {
                @let list = names.purposes(purposes);
                div class="card info" role="status" {
                    p { (lang.t_with("gpc-recorded", [("purposes", list.into())])) }
                }
            },
            Some(GpcNote::Honoured) => {
                div class="card info" { p { (lang.t("gpc-honoured")) } }
            },
            None => {},
        }
    }
}

/// What the request just did, at the top of the page.
fn notice(lang: Lang, page: &Page) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    let short = match &page.notice {
        Some(Notice::Deleted(n)) => Some(lang.t_with("data-deleted", [("count", (*n).into())])),
        Some(Notice::Unpaired) => Some(lang.t("device-unpaired")),
        Some(Notice::Requested(due)) => {
            Some(lang.t_with("request-received", [("date", lang.date_time(*due).into())]))
        }
        Some(Notice::Saved(_)) | None => None,
    };
    html! {
        @if let Some(text) = short {
            div class="card done" role="status" id="saved" { p class="strong" { (text) } }
        }
        @if let Some(Notice::Saved(saved)) = &page.notice {
            div class="card done" role="status" id="saved" {
                @if saved.changed.is_empty() && saved.needs_guardian.is_empty() {
                    p class="strong" { (lang.t("nothing-changed")) }
                }
                @if !saved.needs_guardian.is_empty() {
                    p class="strong" { (lang.t("guardian-needed")) }
                    ul {
                        @for c in &saved.needs_guardian {
                            li {
                                (names.purpose(&c.purpose))
                                @if !c.channels.is_empty() { " (" (names.channels(&c.channels)) ")" }
                            }
                        }
                    }
                }
                @if !saved.changed.is_empty() {
                    p class="strong" { (lang.t("saved")) }
                    h2 class="small" { (lang.t("what-changed")) }
                    ul {
                        @for c in &saved.changed {
                            li {
                                strong { (lang.action(c.action)) }
                                ": " (names.purpose(&c.purpose))
                                @if !c.channels.is_empty() { " (" (names.channels(&c.channels)) ")" }
                            }
                        }
                    }
                    @if saved.records_deleted > 0 {
                        p { (lang.t_with("records-deleted", [("count", saved.records_deleted.into())])) }
                    }
                    @for id in &saved.receipts {
                        @let what = sections::receipt_proves(lang, page, id);
                        p {
                            (lang.t("receipt-label")) ": " (what) " · "
                            a href={ (PATH) "/receipts/" (id) } download="" {
                                (lang.t("download"))
                                span class="vh" { " " (lang.t_with("receipt-of", [("what", what.as_str().into())])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One purpose: what it is for, what it uses, on which basis; for consent, the person's choice.
pub(super) fn card(lang: Lang, csrf: &str, page: &Page, choice: &Choice) -> Markup {
    let names = Names(&page.catalog.catalog, lang.code());
    let p = &choice.purpose;
    let consent = p.basis == Basis::Consent;
    let name = p.name_in(lang.code());
    let pid = format!("p-{}", p.key);
    let class = if p.key.contains('.') { "card purpose sub" } else { "card purpose" };
    let badge = choice.decision.map(|d| {
        // A purpose agreed to only through some of its channels shows as agreed.
        let shown = if consent && !d.allowed && choice.allowed {
            lang.t("state-granted")
        } else {
            lang.reason(d.reason)
        };
        (if choice.allowed && consent { "badge on" } else { "badge" }, shown)
    });
    let since = html! {
        @match choice.since {
            Some(t) => time datetime=(t) { (lang.date_time(t)) },
            None => (lang.t("never-chosen")),
        }
    };
    // Where the page says "you may object" (GDPR Art. 21: legitimate interest, public task), a way to.
    let objectable = matches!(p.basis, Basis::LegitimateInterest | Basis::PublicTask);
    let objected = choice.decision.is_some_and(|d| d.reason == Reason::Objected);
    html! {
        article class=(class) aria-labelledby={ (pid) "-name" } {
            div class="head" {
                h3 id={ (pid) "-name" } { (name) }
                @if let Some((class, shown)) = &badge { span class=(class) { (shown) } }
            }
            dl {
                dt { (lang.t("what-for")) }
                dd { (p.description_in(lang.code()).unwrap_or(name)) }
                @if !p.categories.is_empty() {
                    dt { (lang.t("data-used")) }
                    dd { (names.categories(&p.categories)) }
                }
                @if !p.recipients.is_empty() {
                    dt { (lang.t("recipients")) }
                    dd { (names.recipients(&p.recipients)) }
                }
                dt { (lang.t("legal-basis")) }
                dd { (lang.basis(p.basis)) }
                @if consent {
                    dt { (lang.t("since")) }
                    dd { (since) }
                }
            }
            @if let Some(actor) = &choice.signal {
                p class="muted signal-note" { (lang.t_with("signal-note", [("what", lang.actor(actor).into())])) }
            }
            @if objectable && !objected {
                form method="post" action={ (PATH) "/object" } class="object" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="purpose" value=(p.key);
                    p class="muted" { (lang.t("object-help")) }
                    button type="submit" class="secondary"
                        aria-label=(lang.t_with("object-named", [("purpose", name.into())])) {
                        (lang.t("object"))
                    }
                }
            }
            @if consent {
                div class="check main" {
                    input type="checkbox" id=(pid) name="p" value=(p.key) data-purpose=(p.key)
                        checked=[choice.allowed.then_some("")];
                    label for=(pid) { (lang.t_with("agree-to", [("purpose", name.into())])) }
                }
                @if !choice.channels.is_empty() {
                    fieldset class="channels" {
                        legend { (lang.t("channels-legend")) }
                        div class="grid" {
                            @for (ch, d) in &choice.channels {
                                @let cid = format!("c-{}-{ch}", p.key);
                                div class="check" {
                                    input type="checkbox" id=(cid) name="c" value={ (p.key) "|" (ch) }
                                        data-purpose=(p.key) data-channel=(ch)
                                        checked=[d.is_some_and(|d| d.allowed).then_some("")];
                                    label for=(cid) { (names.channel(ch)) }
                                }
                            }
                        }
                    }
                }
                @if let Some(n) = shown_notice(page, choice, lang) {
                    input type="hidden" name="v" value={ (n.key) "|" (n.version) };
                    details {
                        summary { (lang.t_with("notice-summary", [("version", n.version.into())])) }
                        div lang=(n.language) class="notice-text" {
                            h4 { (n.title) }
                            p { (n.text) }
                        }
                    }
                }
            }
        }
    }
}
