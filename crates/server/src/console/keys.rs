//! The console's "Audit and keys" page: verify the ledger, list, make (the secret shown once) and revoke
//! API keys, and the signing keys with their JWKS.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_service::Error;
use consentry_service::console::keys::{self as service, KeysPage};
use consentry_service::keys::CreatedKey;
use maud::{Markup, html};
use serde::Deserialize;

use super::extract::{Act, PageQuery};
use super::{Stop, Visit, html, page, see_other};
use crate::state::AppState;
use crate::web::i18n::Lang;

const HERE: &str = "/console/keys";

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    page: Option<usize>,
    before: Option<u64>,
    verify: Option<String>,
    done: Option<String>,
}

/// `GET /console/keys`.
pub(super) async fn show(State(state): State<AppState>, visit: Visit, q: PageQuery<Params>) -> Response {
    let q = q.0;
    let verify = q.verify.is_some();
    let response = match service::page(&state, &visit.caller, q.page.unwrap_or(0), q.before, verify).await {
        Ok(p) => {
            let note =
                q.done.as_deref().filter(|d| *d == "revoked").map(|_| visit.lang.t("console-key-revoked"));
            render(&state, &visit, StatusCode::OK, &p, None, note.as_deref())
        }
        Err(e) => visit.stop(&state, Stop::from(e)),
    };
    visit.answer(&state, response)
}

/// `POST /console/keys`: makes a key and shows its secret, once.
pub(super) async fn create(State(state): State<AppState>, Act { visit, fields }: Act) -> Response {
    let scopes: Vec<String> = fields.all("scope").map(str::to_owned).collect();
    let name = fields.get("name").unwrap_or("");
    match service::create(&state, &visit.caller, name, scopes).await {
        Ok(created) => match service::page(&state, &visit.caller, 0, None, false).await {
            Ok(p) => render(&state, &visit, StatusCode::CREATED, &p, Some(&created), None),
            Err(e) => visit.stop(&state, Stop::from(e)),
        },
        Err(Error::Validation { .. }) => visit.stop(&state, Stop::Invalid("console-key-invalid")),
        Err(Error::Conflict(_)) => visit.stop(&state, Stop::Invalid("console-key-name-taken")),
        Err(e) => visit.stop(&state, Stop::from(e)),
    }
}

/// `POST /console/keys/{id}/revoke`.
pub(super) async fn revoke(State(state): State<AppState>, Path(id): Path<String>, act: Act) -> Response {
    match service::revoke(&state, &act.visit.caller, &id).await {
        Ok(()) => see_other("/console/keys?done=revoked"),
        Err(e) => act.visit.stop(&state, Stop::from(e)),
    }
}

fn render(
    state: &AppState,
    visit: &Visit,
    status: StatusCode,
    p: &KeysPage,
    created: Option<&CreatedKey>,
    note: Option<&str>,
) -> Response {
    let lang = visit.lang;
    let csrf = visit.csrf(state);
    let content = html! {
        @if let Some(note) = note { p class="card done" role="status" { (note) } }
        @if let Some(c) = created { (created_key(lang, c)) }
        section aria-labelledby="audit" {
            h2 id="audit" { (lang.t("console-audit-title")) }
            @match &p.verification {
                None => { p { (lang.t("console-audit-intro")) } }
                Some(v) if v.ok => {
                    p class="card done" role="status" id="verification" {
                        (lang.t_with("console-audit-ok", [("events", v.events.into()), ("checkpoints", v.checkpoints.into())]))
                        " " code { (v.head) }
                    }
                }
                Some(v) if v.first_bad.is_none() => {
                    // The chain held; the tree did not.
                    p class="card problem" role="alert" id="verification" { (lang.t("console-audit-tree-broken")) }
                }
                Some(v) => {
                    p class="card problem" role="alert" id="verification" {
                        (lang.t_with("console-audit-broken", [("events", v.events.into())]))
                        @if let Some(seq) = v.first_bad.as_ref().and_then(|b| b.seq) { " " code { "seq " (seq) } }
                    }
                }
            }
            form method="get" action=(HERE) {
                input type="hidden" name="verify" value="1";
                button type="submit" class="secondary" { (lang.t("console-audit-run")) }
            }
        }
        (checkpoints(lang, p))
        section aria-labelledby="keys" {
            h2 id="keys" { (lang.t("console-keys-title")) }
            div class="scroll" tabindex="0" {
                table {
                    caption class="vh" { (lang.t("console-keys-title")) }
                    thead { tr {
                        th scope="col" { (lang.t("console-key-name")) }
                        th scope="col" { (lang.t("console-key-scopes")) }
                        th scope="col" { (lang.t("console-key-created")) }
                        @if visit.caller.can_act { th scope="col" { (lang.t("console-key-actions")) } }
                    } }
                    tbody {
                        @for k in &p.keys {
                            tr {
                                td data-label=(lang.t("console-key-name")) { (k.name) br; code { (k.id) } }
                                td data-label=(lang.t("console-key-scopes")) { (k.scopes.join(", ")) }
                                td data-label=(lang.t("console-key-created")) { (k.created_at) }
                                @if visit.caller.can_act {
                                    td data-label=(lang.t("console-key-actions")) {
                                        form class="inline" method="post" action={ (HERE) "/" (k.id) "/revoke" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" class="link" aria-label=(lang.t_with("console-key-revoke-label", [("name", k.name.as_str().into())])) {
                                                (lang.t("console-key-revoke"))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, HERE, p.page, p.more))
            @if visit.caller.can_act {
                form class="card" method="post" action=(HERE) {
                    input type="hidden" name="csrf" value=(csrf);
                    h3 { (lang.t("console-key-new")) }
                    label for="key-name" { (lang.t("console-key-name")) }
                    input id="key-name" name="name" type="text" required maxlength="64" autocomplete="off";
                    fieldset {
                        legend { (lang.t("console-key-scopes")) }
                        div class="grid" {
                            @for s in &p.grantable {
                                div class="check" {
                                    input type="checkbox" name="scope" value=(s.as_str()) id={ "scope-" (s.as_str().replace(':', "-")) };
                                    label for={ "scope-" (s.as_str().replace(':', "-")) } { code { (s.as_str()) } }
                                }
                            }
                        }
                    }
                    p class="row" { button type="submit" class="primary" { (lang.t("console-key-create")) } }
                }
            }
        }
        section aria-labelledby="signing" {
            h2 id="signing" { (lang.t("console-signing-title")) }
            div class="scroll" tabindex="0" {
                table {
                    caption class="vh" { (lang.t("console-signing-title")) }
                    thead { tr {
                        th scope="col" { "kid" }
                        th scope="col" { (lang.t("console-key-created")) }
                        th scope="col" { (lang.t("console-signing-current")) }
                    } }
                    tbody {
                        @for k in &p.signing {
                            tr {
                                td data-label="kid" { code { (k.kid) } }
                                td data-label=(lang.t("console-key-created")) { (k.created_at) }
                                td data-label=(lang.t("console-signing-current")) { @if k.current { (lang.t("console-yes")) } @else { (lang.t("console-no")) } }
                            }
                        }
                    }
                }
            }
            details {
                summary { (lang.t("console-jwks")) " (" code { "/.well-known/jwks.json" } ")" }
                pre class="json" tabindex="0" { (p.jwks) }
            }
        }
    };
    html(status, page::frame(state, lang, Some(visit), HERE, &lang.t("console-nav-keys"), content))
}

/// The transparency log's latest signed checkpoints, the newest's signed note in full.
fn checkpoints(lang: Lang, p: &KeysPage) -> Markup {
    html! {
        section aria-labelledby="checkpoints-title" {
            h2 id="checkpoints-title" { (lang.t("console-checkpoints-title")) }
            @if p.checkpoints.is_empty() {
                p class="card" { (lang.t("console-checkpoints-none")) }
            } @else {
                div class="scroll" tabindex="0" {
                    table id="checkpoints" {
                        caption class="vh" { (lang.t("console-checkpoints-title")) }
                        thead { tr {
                            @for id in ["console-checkpoint-size", "console-checkpoint-root", "console-checkpoint-signed"] {
                                th scope="col" { (lang.t(id)) }
                            }
                        } }
                        tbody {
                            @for c in &p.checkpoints {
                                tr {
                                    th scope="row" data-label=(lang.t("console-checkpoint-size")) { (c.size) }
                                    td data-label=(lang.t("console-checkpoint-root")) { code { (STANDARD.encode(c.root).get(..16).unwrap_or_default()) "…" } }
                                    td data-label=(lang.t("console-checkpoint-signed")) { (lang.date_time(c.created_at)) }
                                }
                            }
                        }
                    }
                }
                @if let Some(first) = p.checkpoints.first() {
                    details {
                        summary { (lang.t_with("console-checkpoint-note", [("size", first.size.into())])) }
                        pre class="json" tabindex="0" { (first.note) }
                    }
                }
            }
            @if let Some(before) = p.older {
                nav class="pager" aria-label=(lang.t("console-checkpoints-title")) {
                    a href={ (HERE) "?before=" (before) } rel="next" { (lang.t("console-checkpoints-older")) }
                }
            }
        }
    }
}

fn created_key(lang: Lang, c: &CreatedKey) -> Markup {
    html! {
        section class="card done" role="status" aria-labelledby="created" {
            h2 id="created" class="small" { (lang.t_with("console-key-created-title", [("name", c.name.as_str().into())])) }
            p { (lang.t("console-key-shown-once")) }
            p { code id="new-key" { (c.key) } }
        }
    }
}

/// Links to the previous and next page of a list at `here` (which takes `?page=`).
pub(super) fn pager(lang: Lang, here: &str, page: usize, more: bool) -> Markup {
    let sep = if here.contains('?') { '&' } else { '?' };
    html! {
        @if page > 0 || more {
            nav class="pager" aria-label=(lang.t("console-pages")) {
                @if page > 0 { a href={ (here) (sep) "page=" (page - 1) } rel="prev" { (lang.t("console-page-previous")) } }
                span { (lang.t_with("console-page-number", [("page", (page + 1).into())])) }
                @if more { a href={ (here) (sep) "page=" (page + 1) } rel="next" { (lang.t("console-page-next")) } }
            }
        }
    }
}
