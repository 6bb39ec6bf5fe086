//! The console's frame (head, header with the sections, the language switch and signing out, `<main>`),
//! the sign-in form and the page for a request that cannot go on. The pages themselves are in their own
//! modules ([`super::overview`], [`super::keys`]).

use maud::{Markup, PreEscaped, html};

use super::Visit;
use super::session::PATH;
use crate::state::AppState;
use crate::web::i18n::Lang;

/// The console's sections: address and message id of its name.
const SECTIONS: [(&str, &str); 6] = [
    (PATH, "console-nav-overview"),
    ("/console/requests", "console-nav-requests"),
    ("/console/people", "console-nav-people"),
    ("/console/deliveries", "console-nav-deliveries"),
    ("/console/catalogue", "console-nav-catalogue"),
    ("/console/keys", "console-nav-keys"),
];

/// A whole page: `here` is its address (the language links point there), `title` its `<h1>`.
pub fn frame(
    state: &AppState,
    lang: Lang,
    visit: Option<&Visit>,
    here: &str,
    title: &str,
    content: Markup,
) -> String {
    let brand = lang.t("console-title");
    let page = html! {
        (PreEscaped("<!doctype html>"))
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex";
                title { (title) " · " (brand) }
                link rel="stylesheet" href="/preferences/style.css";
                link rel="stylesheet" href="/console/console.css";
            }
            body class="console" {
                a class="skip" href="#main" { (lang.t("console-skip-link")) }
                header class="top" {
                    div class="wrap" {
                        p class="brand" { (brand) }
                        @if let Some(v) = visit {
                            nav class="console-nav" aria-label=(lang.t("console-nav-label")) {
                                ul {
                                    @for (href, id) in SECTIONS {
                                        li {
                                            @if href == here {
                                                a href=(href) aria-current="page" { (lang.t(id)) }
                                            } @else {
                                                a href=(href) { (lang.t(id)) }
                                            }
                                        }
                                    }
                                }
                            }
                            form class="inline sign-out" method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(v.csrf(state));
                                span class="who" {
                                    (v.caller.key_name) " · "
                                    (lang.t(if v.caller.can_act { "console-role-write" } else { "console-role-read" }))
                                }
                                " "
                                button type="submit" class="link" { (lang.t("console-sign-out")) }
                            }
                        }
                        nav class="langs" aria-label=(lang.t("language-label")) {
                            ul {
                                @for other in Lang::ALL {
                                    li {
                                        @if other == lang {
                                            span aria-current="true" lang=(other.code()) { (other.t("language-name")) }
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
                main id="main" class="wrap" tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    page.into_string()
}

/// A page for a request that cannot go on.
pub fn message(state: &AppState, lang: Lang, visit: Option<&Visit>, title: &str, body: &str) -> String {
    let content = html! {
        section class="card notice" {
            p { (body) }
            p {
                @if visit.is_some() {
                    a class="button" href=(PATH) { (lang.t("console-back")) }
                } @else {
                    a class="button" href="/console/sign-in" { (lang.t("console-sign-in")) }
                }
            }
        }
    };
    frame(state, lang, visit, PATH, title, content)
}

/// The sign-in form; `note` says what happened before (a wrong key, signed out).
pub fn sign_in(state: &AppState, lang: Lang, csrf: &str, note: Option<&str>) -> String {
    let content = html! {
        @if let Some(note) = note {
            p class="card info" role="status" { (note) }
        }
        form class="card" method="post" action="/console/sign-in" {
            input type="hidden" name="csrf" value=(csrf);
            p { (lang.t("console-sign-in-intro")) }
            label for="key" { (lang.t("console-sign-in-key")) }
            input id="key" name="key" type="password" autocomplete="off" required
                spellcheck="false" autocapitalize="off";
            p class="row" { button type="submit" class="primary" { (lang.t("console-sign-in")) } }
        }
    };
    frame(state, lang, None, "/console/sign-in", &lang.t("console-sign-in-title"), content)
}
