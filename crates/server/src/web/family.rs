//! Children and guardians in the preference centre, the routes: confirming the choices a guardian made
//! (the question is on the person's page, [`super::page`]), and a child's choices as their guardian sees
//! and changes them (`/preferences/children/{reference}`; the list of children is one of
//! [`super::sections`]). The use cases are in [`consentry_service::preferences`] (`preferences/family.rs`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use consentry_core::catalog::Basis;
use consentry_service::preferences::{self, ChildPage, Choice, Notice};
use maud::html;

use super::i18n::Lang;
use super::names::Names;
use super::page::{card, frame};
use super::sections::label;
use super::session::{CHILDREN, PATH, csrf_token};
use super::{LangParam, form, html as respond, keep_lang, lang_for, render, session, stop_page, visit};
use crate::state::AppState;

/// A child's choices and history, for their guardian.
fn child_page(state: &AppState, lang: Lang, csrf: &str, child: &ChildPage) -> String {
    let here = format!("{CHILDREN}/{}", child.child.reference);
    let name = label(lang, &child.child);
    let page = &child.page;
    let names = Names(&page.catalog.catalog, lang.code());
    let asked: Vec<&Choice> = page.choices.iter().filter(|c| c.purpose.basis == Basis::Consent).collect();
    let content = html! {
        p { a href=(PATH) { (lang.t("child-back")) } }
        h1 { (lang.t_with("child-title", [("child", name.as_str().into())])) }
        p class="lead" { (lang.t("child-intro")) }
        @if let Some(Notice::Saved(saved)) = &page.notice {
            div class="card done" role="status" id="saved" {
                @if saved.changed.is_empty() {
                    p class="strong" { (lang.t("nothing-changed")) }
                } @else {
                    p class="strong" { (lang.t("saved")) }
                    ul {
                        @for c in &saved.changed {
                            li {
                                strong { (lang.action(c.action)) }
                                ": " (names.purpose(&c.purpose))
                                @if !c.channels.is_empty() { " (" (names.channels(&c.channels)) ")" }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="choices" {
            h2 id="choices" { (lang.t("choices")) }
            p { (lang.t("choices-help")) }
            form method="post" action=(here) class="choices" {
                input type="hidden" name="csrf" value=(csrf);
                @for choice in &asked { (card(lang, csrf, page, choice)) }
                div class="actions" {
                    button type="submit" class="primary" { (lang.t("save")) }
                }
            }
        }
        (super::sections::history(lang, page))
    };
    frame(state, lang, &here, content)
}

fn render_child(
    state: &AppState,
    lang: Lang,
    token: &str,
    shown: consentry_service::Result<ChildPage>,
) -> Response {
    match shown {
        Ok(child) => {
            let csrf = csrf_token(state, token);
            respond(StatusCode::OK, child_page(state, lang, &csrf, &child))
        }
        Err(e) => stop_page(state, lang, super::Stop::from(e)),
    }
}

/// `GET /preferences/children/{reference}`: a child's choices, for the guardian of the session.
pub(super) async fn show_child(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    query: Query<LangParam>,
) -> Response {
    let chosen = query.0.lang;
    let mut response = match session(&state, &headers).await {
        Err(stop) => stop_page(&state, lang_for(chosen.as_deref(), &headers, None), stop),
        Ok((token, caller)) => {
            let lang = lang_for(chosen.as_deref(), &headers, Some(&caller));
            let shown = preferences::child_page(&state, &caller.subject, &reference).await;
            render_child(&state, lang, &token, shown)
        }
    };
    keep_lang(&state, chosen.as_deref(), &mut response);
    response
}

/// `POST /preferences/children/{reference}`: saves a child's choices as their guardian.
pub(super) async fn save_child(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    let (token, caller, form) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let saved = preferences::save_for_child(&state, &caller.subject, &reference, &form.choices).await;
    render_child(&state, lang, &token, saved)
}

/// `POST /preferences/confirm-guardian-choices`: the person confirms, as their own, the choices a guardian
/// made for them.
pub(super) async fn confirm(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (token, caller, form) = match form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(stop) => return stop_page(&state, lang_for(None, &headers, None), stop),
    };
    let lang = lang_for(None, &headers, Some(&caller));
    let page =
        preferences::confirm_guardian_choices(&state, &visit(&headers, &caller), &form.choices.versions)
            .await;
    render(&state, lang, &token, page)
}
