//! The console's catalogue: the current catalogue as tables (categories as a tree), a new document
//! uploaded (a file in a plain form, no script) and compared with it, and applied only from that
//! comparison's page ([`consentry_service::console::catalogue`]).
//!
//! The diff page's apply form sends the document back (base64: a browser would turn its line ends into
//! CRLF) with the catalogue version it was compared with and its SHA-256: a document changed on the way, or a catalogue another person applied meanwhile, is refused
//! (409) instead of applied unseen.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry_core::catalog::{CatalogDocument, DataCategory, RecipientKind};
use consentry_service::Error;
use consentry_service::console::catalogue::{self as service, ChangeKind, Diff};
use consentry_service::error::FieldProblem;
use maud::{Markup, html};
use serde::Deserialize;

use super::extract::{Act, PageQuery, authorise};
use super::{Stop, Visit, html, page, see_other};
use crate::state::AppState;
use crate::web::i18n::Lang;

const HERE: &str = "/console/catalogue";

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    done: Option<u64>,
}

/// `GET /console/catalogue`.
pub(super) async fn show(State(state): State<AppState>, visit: Visit, q: PageQuery<Params>) -> Response {
    let body = render_current(&state, &visit, q.0.done);
    visit.page(&state, Ok(body))
}

/// `POST /console/catalogue/diff`: a document uploaded as a file (`multipart/form-data`), compared with
/// the current catalogue.
pub(super) async fn diff(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let upload = match multipart {
        Ok(m) => read_upload(m).await,
        Err(_) => Err(None),
    };
    let upload = match upload {
        Ok(u) => u,
        Err(csrf) => {
            return match authorise(&state, &headers, csrf.as_deref()).await {
                Ok(visit) => visit.stop(&state, Stop::Invalid("console-catalogue-unreadable")),
                Err(stopped) => stopped,
            };
        }
    };
    let visit = match authorise(&state, &headers, upload.csrf.as_deref()).await {
        Ok(v) => v,
        Err(stopped) => return stopped,
    };
    if upload.document.iter().all(u8::is_ascii_whitespace) {
        return visit.stop(&state, Stop::Invalid("console-catalogue-empty"));
    }
    let media_type = service::media_type(upload.file_name.as_deref(), &upload.document);
    match service::diff(&state, media_type, &upload.document).await {
        Ok(diff) => html(StatusCode::OK, render_diff(&state, &visit, &diff)),
        Err(Error::InvalidCatalog(problems)) => {
            html(StatusCode::UNPROCESSABLE_ENTITY, render_problems(&state, &visit, &problems))
        }
        Err(Error::Validation { .. }) => visit.stop(&state, Stop::Invalid("console-catalogue-unreadable")),
        Err(e) => visit.stop(&state, Stop::from(e)),
    }
}

/// An uploaded form's fields.
struct Upload {
    csrf: Option<String>,
    file_name: Option<String>,
    document: Vec<u8>,
}

/// Reads the upload form; a form that cannot be read gives back its CSRF token when it got that far.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, Option<String>> {
    let mut upload = Upload { csrf: None, file_name: None, document: Vec::new() };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(upload),
            Err(_) => return Err(upload.csrf),
        };
        match field.name() {
            Some("csrf") => upload.csrf = field.text().await.ok(),
            Some("document") => {
                upload.file_name = field.file_name().map(str::to_owned);
                match field.bytes().await {
                    Ok(b) => upload.document = b.to_vec(),
                    Err(_) => return Err(upload.csrf),
                }
            }
            _ => {}
        }
    }
}

/// `POST /console/catalogue/apply`: applies the document a diff page showed (`console:write`).
pub(super) async fn apply(State(state): State<AppState>, act: Act) -> Response {
    let Act { visit, fields } = act;
    let document = fields.get("document").and_then(|d| STANDARD.decode(d).ok());
    let (Some(base), Some(sha256), Some(document)) =
        (fields.get("base").and_then(|b| b.parse::<u64>().ok()), fields.get("sha256"), document)
    else {
        return visit.stop(&state, Stop::Invalid("console-catalogue-unreadable"));
    };
    let media_type = fields.get("media_type").unwrap_or("application/yaml");
    match service::apply(&state, &visit.caller, base, sha256, media_type, &document).await {
        Ok(out) => see_other(&format!("{HERE}?done={}", out.version)),
        Err(Error::Conflict(_)) => visit.stop(&state, Stop::Conflict("console-catalogue-stale")),
        Err(Error::InvalidCatalog(problems)) => {
            html(StatusCode::UNPROCESSABLE_ENTITY, render_problems(&state, &visit, &problems))
        }
        Err(e) => visit.stop(&state, Stop::from(e)),
    }
}

/// The categories under `parent` (the top ones for none), as nested lists.
fn tree(lang: Lang, all: &[DataCategory], parent: Option<&str>) -> Markup {
    let children: Vec<&DataCategory> = all
        .iter()
        .filter(|c| {
            let above = c.key.rsplit_once('.').map(|(p, _)| p);
            match parent {
                Some(p) => above == Some(p),
                // A top category, or one whose parent the catalogue does not name.
                None => above.is_none_or(|a| !all.iter().any(|o| o.key == a)),
            }
        })
        .collect();
    html! {
        @if !children.is_empty() {
            ul class="tree" {
                @for c in children {
                    li {
                        span class="strong" { (c.name_in(lang.code())) } " " code { (c.key) }
                        @if c.sensitive { " · " span class="overdue" { (lang.t("console-catalogue-sensitive")) } }
                        @if let Some(days) = c.retention_days {
                            " · " (lang.t_with("console-catalogue-retention", [("days", days.into())]))
                        }
                        (tree(lang, all, Some(&c.key)))
                    }
                }
            }
        }
    }
}

fn recipient_kind(lang: Lang, kind: RecipientKind) -> String {
    lang.t(match kind {
        RecipientKind::Controller => "console-recipient-controller",
        RecipientKind::Processor => "console-recipient-processor",
        RecipientKind::ThirdParty => "console-recipient-third-party",
    })
}

fn keys(keys: &[String], none: &str) -> Markup {
    html! { @if keys.is_empty() { (none) } @else { code { (keys.join(", ")) } } }
}

/// A table with a caption for screen readers, a row per entry.
fn table(id: &str, caption: &str, heads: &[String], rows: Markup) -> Markup {
    html! {
        div class="scroll" tabindex="0" {
            table id=(id) {
                caption class="vh" { (caption) }
                thead { tr { @for h in heads { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

fn render_current(state: &AppState, visit: &Visit, applied: Option<u64>) -> String {
    let lang = visit.lang;
    let view = state.catalog();
    let doc: &CatalogDocument = &view.stored.document;
    let any = lang.t("console-catalogue-any");
    let heads = |ids: &[&str]| ids.iter().map(|id| lang.t(id)).collect::<Vec<_>>();
    let content = html! {
        @if let Some(v) = applied {
            p class="card done" role="status" id="applied" { (lang.t_with("console-catalogue-applied", [("version", v.into())])) }
        }
        dl class="card" id="catalogue-version" {
            dt { (lang.t("console-catalogue-version")) } dd { (view.stored.version) }
            dt { (lang.t("console-catalogue-applied-at")) } dd { (lang.date_time(view.stored.applied_at)) }
            dt { (lang.t("console-catalogue-language")) } dd { code { (doc.language()) } }
        }
        @if visit.caller.can_act {
            form class="card" method="post" action={ (HERE) "/diff" } enctype="multipart/form-data" id="upload" {
                input type="hidden" name="csrf" value=(visit.csrf(state));
                h2 class="small" { (lang.t("console-catalogue-upload")) }
                p { (lang.t("console-catalogue-upload-intro")) }
                label for="document" { (lang.t("console-catalogue-file")) }
                input type="file" id="document" name="document" required accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml";
                p class="row" { button type="submit" class="primary" { (lang.t("console-catalogue-compare")) } }
            }
        }
        section aria-labelledby="categories" {
            h2 id="categories" { (lang.t("console-catalogue-categories")) }
            div class="card" id="category-tree" { (tree(lang, &doc.data_categories, None)) }
        }
        section aria-labelledby="purposes" {
            h2 id="purposes" { (lang.t("console-catalogue-purposes")) }
            (table("purpose-table", &lang.t("console-catalogue-purposes"),
                &heads(&["console-purpose", "console-catalogue-basis", "console-catalogue-notice", "console-catalogue-channels", "console-catalogue-recipients"]),
                html! { @for p in &doc.purposes {
                    tr {
                        th scope="row" data-label=(lang.t("console-purpose")) { (p.name_in(lang.code())) br; code { (p.key) } }
                        td data-label=(lang.t("console-catalogue-basis")) { (lang.basis(p.basis)) }
                        td data-label=(lang.t("console-catalogue-notice")) { @match &p.notice { Some(n) => { code { (n) } } None => { "–" } } }
                        td data-label=(lang.t("console-catalogue-channels")) { (keys(&p.channels, &any)) }
                        td data-label=(lang.t("console-catalogue-recipients")) { (keys(&p.recipients, &any)) }
                    }
                } }))
        }
        section aria-labelledby="channels" {
            h2 id="channels" { (lang.t("console-catalogue-channels")) }
            (table("channel-table", &lang.t("console-catalogue-channels"), &heads(&["console-catalogue-name", "console-catalogue-key"]),
                html! { @for c in &doc.channels {
                    tr {
                        th scope="row" data-label=(lang.t("console-catalogue-name")) { (c.name_in(lang.code())) }
                        td data-label=(lang.t("console-catalogue-key")) { code { (c.key) } }
                    }
                } }))
        }
        section aria-labelledby="recipients" {
            h2 id="recipients" { (lang.t("console-catalogue-recipients")) }
            (table("recipient-table", &lang.t("console-catalogue-recipients"),
                &heads(&["console-catalogue-name", "console-catalogue-key", "console-catalogue-kind", "console-catalogue-downstream"]),
                html! { @for r in &doc.recipients {
                    tr {
                        th scope="row" data-label=(lang.t("console-catalogue-name")) { (r.name_in(lang.code())) }
                        td data-label=(lang.t("console-catalogue-key")) { code { (r.key) } }
                        td data-label=(lang.t("console-catalogue-kind")) { (recipient_kind(lang, r.kind)) }
                        td data-label=(lang.t("console-catalogue-downstream")) { (lang.t(if r.downstream { "console-yes" } else { "console-no" })) }
                    }
                } }))
        }
        section aria-labelledby="notices" {
            h2 id="notices" { (lang.t("console-catalogue-notices")) }
            (table("notice-table", &lang.t("console-catalogue-notices"),
                &heads(&["console-catalogue-notice", "console-catalogue-notice-version", "console-catalogue-language", "console-catalogue-title"]),
                html! { @for n in &view.stored.notices {
                    tr {
                        th scope="row" data-label=(lang.t("console-catalogue-notice")) { code { (n.key) } }
                        td data-label=(lang.t("console-catalogue-notice-version")) { (n.version) }
                        td data-label=(lang.t("console-catalogue-language")) { code { (n.language) } }
                        td data-label=(lang.t("console-catalogue-title")) { (n.title) }
                    }
                } }))
        }
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-nav-catalogue"), content)
}

fn change_word(lang: Lang, kind: ChangeKind) -> String {
    lang.t(match kind {
        ChangeKind::Added => "console-diff-added",
        ChangeKind::Removed => "console-diff-removed",
        ChangeKind::Changed => "console-diff-changed",
    })
}

fn render_diff(state: &AppState, visit: &Visit, d: &Diff) -> String {
    let lang = visit.lang;
    let content = html! {
        p class="card" id="diff-base" {
            (lang.t_with("console-diff-intro", [("version", d.base.into())])) " "
            span class="muted" { "SHA-256 " code { (d.sha256.get(..16).unwrap_or(&d.sha256)) "…" } }
        }
        @if d.is_empty() {
            p class="card done" role="status" id="diff-none" { (lang.t("console-diff-none")) }
        } @else {
            @if !d.changes.is_empty() {
                section aria-labelledby="entries" {
                    h2 id="entries" { (lang.t("console-diff-entries")) }
                    div class="scroll" tabindex="0" {
                        table id="diff-changes" {
                            caption class="vh" { (lang.t("console-diff-entries")) }
                            thead { tr {
                                @for id in ["console-diff-section", "console-catalogue-key", "console-diff-change", "console-diff-fields"] {
                                    th scope="col" { (lang.t(id)) }
                                }
                            } }
                            tbody {
                                @for c in &d.changes {
                                    tr class={ "diff-" (change_word(Lang::En, c.kind)) } {
                                        td data-label=(lang.t("console-diff-section")) { (lang.t(&format!("console-section-{}", c.section.replace('_', "-")))) }
                                        th scope="row" data-label=(lang.t("console-catalogue-key")) { code { (c.key) } }
                                        td data-label=(lang.t("console-diff-change")) { (change_word(lang, c.kind)) }
                                        td data-label=(lang.t("console-diff-fields")) { @if c.fields.is_empty() { "–" } @else { code { (c.fields.join(", ")) } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !d.notices.is_empty() {
                section aria-labelledby="versions" {
                    h2 id="versions" { (lang.t("console-diff-notices")) }
                    ul class="log" id="diff-notices" {
                        @for n in &d.notices {
                            li {
                                p class="strong" {
                                    code { (n.key) } " (" code { (n.language) } ") · "
                                    @if n.dropped { (lang.t("console-diff-notice-dropped")) }
                                    @else if n.current.is_some() { (lang.t("console-diff-notice-new-version")) }
                                    @else { (lang.t("console-diff-notice-first")) }
                                }
                                @if let Some(v) = n.current {
                                    p class=[(n.people > 0).then_some("overdue")] {
                                        (lang.t_with("console-diff-people", [("people", n.people.into()), ("version", v.into()), ("notice", n.key.as_str().into())]))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form class="card" method="post" action={ (HERE) "/apply" } id="apply" {
                input type="hidden" name="csrf" value=(visit.csrf(state));
                input type="hidden" name="base" value=(d.base);
                input type="hidden" name="sha256" value=(d.sha256);
                input type="hidden" name="media_type" value=(d.media_type);
                input type="hidden" name="document" value=(STANDARD.encode(&d.document));
                p { (lang.t_with("console-diff-apply-intro", [("version", d.base.into())])) }
                p class="row" { button type="submit" class="primary" { (lang.t("console-diff-apply")) } }
            }
        }
        p { a href=(HERE) { (lang.t("console-diff-back")) } }
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-diff-title"), content)
}

fn render_problems(state: &AppState, visit: &Visit, problems: &[FieldProblem]) -> String {
    let lang = visit.lang;
    let content = html! {
        div class="card problem" role="alert" id="catalogue-problems" {
            p { (lang.t("console-catalogue-invalid")) }
            ul {
                @for p in problems.iter().take(100) {
                    li { @if !p.path.is_empty() { code { (p.path) } ": " } (p.message) }
                }
            }
        }
        p { a href=(HERE) { (lang.t("console-diff-back")) } }
    };
    page::frame(state, lang, Some(visit), HERE, &lang.t("console-diff-title"), content)
}
