//! Renders the preference centre and its error pages. Every word comes from [`super::i18n`] or from the
//! catalogue; every value is escaped by [`super::html::Html`].

use std::collections::HashMap;

use consentry_core::catalog::{Basis, Purpose};
use consentry_core::ledger::event_id;
use consentry_core::{Decision, Event, Query, Timestamp};
use consentry_store::vault::RecordMeta;
use consentry_store::{AccessRecord, DeviceRecord, StoredReceipt};

use super::html::Html;
use super::i18n::{Lang, Messages, fill};
use super::save::Changed;
use crate::state::AppState;
use consentry_service::CatalogView;
use consentry_service::requests::RequestOut;

/// What the Global Privacy Control signal did on this request.
#[derive(Debug)]
pub enum GpcNote {
    /// Recorded now, for these purposes.
    Recorded(Vec<String>),
    /// Sent, and already recorded earlier.
    Honoured,
}

/// The result of saving, shown above the form.
#[derive(Debug)]
pub struct Outcome {
    pub changed: Vec<Changed>,
    pub receipts: Vec<String>,
    /// Vault records deleted because consent for their purpose was withdrawn.
    pub records_deleted: u64,
}

/// What the request just did, shown at the top of the page.
#[derive(Debug)]
pub enum Notice {
    Saved(Outcome),
    /// Records deleted from "my data".
    Deleted(u64),
    /// A device was unpaired.
    Unpaired,
    /// A copy of the data was asked for; the answer is due by then.
    Requested(Timestamp),
}

/// Everything the page shows about one person.
#[derive(Debug)]
pub struct PageData {
    pub lang: Lang,
    pub csrf: String,
    pub subject: String,
    /// The statements in force (latest per purpose and scope).
    pub current: Vec<Event>,
    /// Newest first.
    pub history: Vec<Event>,
    pub receipts: Vec<StoredReceipt>,
    pub access: Vec<AccessRecord>,
    pub checks: Vec<(String, u64, Timestamp)>,
    pub gpc: Option<GpcNote>,
    pub notice: Option<Notice>,
    /// The person's records in the vault, newest first.
    pub records: Vec<RecordMeta>,
    pub devices: Vec<DeviceRecord>,
    /// Newest first.
    pub requests: Vec<RequestOut>,
}

/// The page head, header with the language switch, and the opening of `<main>`.
fn start(h: &mut Html, lang: Lang, title: &str, switch_to: Option<&str>) {
    let m = lang.messages();
    h.raw("<!doctype html>").open("html", &[("lang", lang.code())]);
    h.raw("<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.raw("<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">");
    h.el("title", &[], title);
    h.raw("<link rel=\"stylesheet\" href=\"/preferences/style.css\">");
    h.raw("<script src=\"/preferences/choices.js\" defer></script></head><body>");
    h.el("a", &[("class", "skip"), ("href", "#main")], m.skip_link);
    h.raw("<header class=\"top\"><div class=\"wrap\">");
    h.el("p", &[("class", "brand")], title);
    if let Some(base) = switch_to {
        h.open("nav", &[("class", "langs"), ("aria-label", m.language_label)]).raw("<ul>");
        for other in Lang::ALL {
            let om = other.messages();
            h.raw("<li>");
            if other == lang {
                h.el("span", &[("aria-current", "true"), ("lang", other.code())], om.language_name);
            } else {
                let href = format!("{base}?lang={}", other.code());
                h.el(
                    "a",
                    &[("href", &href), ("lang", other.code()), ("hreflang", other.code())],
                    om.language_name,
                );
            }
            h.raw("</li>");
        }
        h.raw("</ul></nav>");
    }
    h.raw("</div></header><main id=\"main\" class=\"wrap\" tabindex=\"-1\">");
}

fn end(h: &mut Html, state: &AppState, m: &Messages) {
    h.raw("</main><footer class=\"wrap\">");
    let c = &state.config.controller;
    let text = fill(&fill(m.contact, "contact", &c.contact), "email", &c.email);
    h.el("p", &[], &text);
    h.raw("</footer></body></html>");
}

/// A page for a request that cannot go on: what happened and the way forward.
pub fn message(state: &AppState, lang: Lang, title: &str, body: &str, back: bool) -> String {
    let m = lang.messages();
    let mut h = Html::new();
    start(&mut h, lang, m.title, None);
    h.raw("<section class=\"card notice\">").el("h1", &[], title).el("p", &[], body);
    if back {
        h.raw("<p>").open("a", &[("class", "button"), ("href", super::session::PATH)]).text(m.back);
        h.raw("</a></p>");
    }
    h.raw("</section>");
    end(&mut h, state, m);
    h.finish()
}

fn names<'c>(list: &[String], name: impl Fn(&str) -> Option<&'c str>) -> String {
    list.iter().map(|k| name(k).unwrap_or(k.as_str())).collect::<Vec<_>>().join(", ")
}

/// The purposes a person can choose on: those based on consent.
pub fn consent_purposes(view: &CatalogView) -> impl Iterator<Item = &Purpose> {
    view.catalog.document().purposes.iter().filter(|p| p.basis == Basis::Consent)
}

/// The preference centre.
pub fn preferences(state: &AppState, view: &CatalogView, data: &PageData) -> String {
    let lang = data.lang;
    let m = lang.messages();
    let catalog = &view.catalog;
    let now = Timestamp::now();
    let decide = |purpose: &str, channel: Option<&str>| -> Option<Decision> {
        let q = Query { subject: &data.subject, purpose, category: None, channel, recipient: None };
        state.engine.check(&q, now).ok()
    };
    let by_seq: HashMap<u64, &Event> = data.current.iter().map(|e| (e.seq, e)).collect();
    let purpose_name = |k: &str| catalog.purpose(k).map_or(k, |p| p.name.as_str()).to_owned();

    let mut h = Html::new();
    start(&mut h, lang, m.title, Some(super::session::PATH));
    h.el("h1", &[], m.title);
    let intro = fill(m.intro, "controller", &state.config.controller.name);
    h.el("p", &[("class", "lead")], &intro);

    h.open("nav", &[("class", "sections"), ("aria-label", m.sections_label)]).raw("<ul>");
    for (id, label) in [
        ("choices", m.choices),
        ("others", m.others),
        ("history", m.history),
        ("receipts", m.receipts),
        ("access", m.access),
    ] {
        let href = format!("#{id}");
        h.raw("<li>").el("a", &[("href", &href)], label).raw("</li>");
    }
    h.raw("</ul></nav>");

    match &data.gpc {
        Some(GpcNote::Recorded(purposes)) => {
            let list = purposes.iter().map(|p| purpose_name(p)).collect::<Vec<_>>().join(", ");
            h.open("div", &[("class", "card info"), ("role", "status")])
                .el("p", &[], &fill(m.gpc_recorded, "purposes", &list))
                .close("div");
        }
        Some(GpcNote::Honoured) => {
            h.open("div", &[("class", "card info")]).el("p", &[], m.gpc_honoured).close("div");
        }
        None => {}
    }

    let short_notice = match &data.notice {
        Some(Notice::Deleted(n)) => Some(fill(m.data_deleted, "count", &n.to_string())),
        Some(Notice::Unpaired) => Some(m.device_unpaired.to_owned()),
        Some(Notice::Requested(due)) => Some(fill(m.request_received, "date", &lang.date_time(*due))),
        _ => None,
    };
    if let Some(text) = short_notice {
        h.open("div", &[("class", "card done"), ("role", "status"), ("id", "saved")]);
        h.el("p", &[("class", "strong")], &text).close("div");
    }
    if let Some(Notice::Saved(outcome)) = &data.notice {
        h.open("div", &[("class", "card done"), ("role", "status"), ("id", "saved")]);
        if outcome.changed.is_empty() {
            h.el("p", &[("class", "strong")], m.nothing_changed);
        } else {
            h.el("p", &[("class", "strong")], m.saved).el("h2", &[("class", "small")], m.what_changed);
            h.raw("<ul>");
            for c in &outcome.changed {
                let what = if c.channels.is_empty() {
                    purpose_name(&c.purpose)
                } else {
                    let channels = names(&c.channels, |k| catalog.channel(k).map(|c| c.name.as_str()));
                    format!("{} ({channels})", purpose_name(&c.purpose))
                };
                h.raw("<li>").el("strong", &[], m.action(c.action)).text(": ").text(&what).raw("</li>");
            }
            h.raw("</ul>");
            if outcome.records_deleted > 0 {
                let text = fill(m.records_deleted, "count", &outcome.records_deleted.to_string());
                h.el("p", &[], &text);
            }
            for id in &outcome.receipts {
                let href = format!("{}/receipts/{id}", super::session::PATH);
                h.raw("<p>").text(m.receipt_label).text(": ").el("code", &[], id).text(" · ");
                h.el("a", &[("href", &href), ("download", "")], m.download).raw("</p>");
            }
        }
        h.close("div");
    }

    // My choices.
    h.raw("<section aria-labelledby=\"choices\">").el("h2", &[("id", "choices")], m.choices);
    h.el("p", &[], m.choices_help);
    h.open("form", &[("method", "post"), ("action", super::session::PATH), ("class", "choices")]);
    h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
    let card = |h: &mut Html, p: &Purpose| {
        let consent = p.basis == Basis::Consent;
        let decision = decide(&p.key, None);
        let channel_decisions: Vec<(&str, Option<Decision>)> =
            p.channels.iter().map(|ch| (ch.as_str(), decide(&p.key, Some(ch)))).collect();
        let allowed = decision.is_some_and(|d| d.allowed)
            || channel_decisions.iter().any(|(_, d)| d.is_some_and(|d| d.allowed));
        let depth = p.key.matches('.').count();
        let class = if depth > 0 { "card purpose sub" } else { "card purpose" };
        let pid = format!("p-{}", p.key);
        h.open("article", &[("class", class), ("aria-labelledby", &format!("{pid}-name"))]);
        h.raw("<div class=\"head\">");
        h.el("h3", &[("id", &format!("{pid}-name"))], &p.name);
        if let Some(d) = decision {
            let shown = if consent && !d.allowed && allowed { m.state_granted } else { m.reason(d.reason) };
            let badge = if allowed && consent { "badge on" } else { "badge" };
            h.el("span", &[("class", badge)], shown);
        }
        h.raw("</div>");
        h.raw("<dl>");
        h.el("dt", &[], m.what_for).el("dd", &[], p.description.as_deref().unwrap_or(&p.name));
        if !p.categories.is_empty() {
            let list = names(&p.categories, |k| catalog.category(k).map(|c| c.name.as_str()));
            h.el("dt", &[], m.data_used).el("dd", &[], &list);
        }
        if !p.recipients.is_empty() {
            let list = names(&p.recipients, |k| catalog.recipient(k).map(|r| r.name.as_str()));
            h.el("dt", &[], m.recipients).el("dd", &[], &list);
        }
        h.el("dt", &[], m.legal_basis).el("dd", &[], m.basis(p.basis));
        if consent {
            // The latest event behind the purpose's decisions: when the person's choice began to hold.
            let since = std::iter::once(decision)
                .chain(channel_decisions.iter().map(|(_, d)| *d))
                .flatten()
                .filter_map(|d| d.event_seq)
                .filter_map(|seq| by_seq.get(&seq))
                .map(|e| e.recorded_at)
                .max();
            let since = since.map_or_else(|| m.never_chosen.to_owned(), |t| lang.date_time(t));
            h.el("dt", &[], m.since).el("dd", &[], &since);
        }
        h.raw("</dl>");
        if !consent {
            h.close("article");
            return;
        }
        let agree = fill(m.agree_to, "purpose", &p.name);
        h.raw("<div class=\"check main\">");
        let mut attrs = vec![
            ("type", "checkbox"),
            ("id", pid.as_str()),
            ("name", "p"),
            ("value", p.key.as_str()),
            ("data-purpose", p.key.as_str()),
        ];
        if allowed {
            attrs.push(("checked", ""));
        }
        h.open("input", &attrs).el("label", &[("for", &pid)], &agree).raw("</div>");
        if !channel_decisions.is_empty() {
            h.raw("<fieldset class=\"channels\">")
                .el("legend", &[], m.channels_legend)
                .raw("<div class=\"grid\">");
            for (ch, d) in &channel_decisions {
                let cid = format!("c-{}-{ch}", p.key);
                let value = format!("{}|{ch}", p.key);
                let mut attrs = vec![
                    ("type", "checkbox"),
                    ("id", cid.as_str()),
                    ("name", "c"),
                    ("value", value.as_str()),
                    ("data-purpose", p.key.as_str()),
                    ("data-channel", ch),
                ];
                if d.is_some_and(|d| d.allowed) {
                    attrs.push(("checked", ""));
                }
                let label = catalog.channel(ch).map_or(*ch, |c| c.name.as_str());
                h.raw("<div class=\"check\">").open("input", &attrs).el("label", &[("for", &cid)], label);
                h.raw("</div>");
            }
            h.raw("</div></fieldset>");
        }
        if let Some(notice_key) = &p.notice
            && let Some(n) = view.stored.notices.iter().find(|n| &n.key == notice_key)
        {
            let version = n.version.to_string();
            let value = format!("{}|{}", n.key, n.version);
            h.open("input", &[("type", "hidden"), ("name", "v"), ("value", &value)]);
            h.raw("<details>").el("summary", &[], &fill(m.notice_summary, "version", &version));
            h.open("div", &[("lang", &n.language), ("class", "notice-text")]).el("h4", &[], &n.title);
            h.el("p", &[], &n.text).close("div").raw("</details>");
        }
        h.close("article");
    };
    let (asked, not_asked): (Vec<&Purpose>, Vec<&Purpose>) =
        catalog.document().purposes.iter().partition(|p| p.basis == Basis::Consent);
    for p in asked {
        card(&mut h, p);
    }
    h.raw("<div class=\"actions\">");
    h.el("button", &[("type", "submit"), ("class", "primary")], m.save).raw("</div>");
    h.close("form");
    let withdraw_action = format!("{}/withdraw-all", super::session::PATH);
    h.open("form", &[("method", "post"), ("action", &withdraw_action), ("class", "withdraw")]);
    h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
    for p in consent_purposes(view) {
        if let Some(n) = p.notice.as_ref().and_then(|k| view.stored.notices.iter().find(|n| &n.key == k)) {
            let value = format!("{}|{}", n.key, n.version);
            h.open("input", &[("type", "hidden"), ("name", "v"), ("value", &value)]);
        }
    }
    h.el("button", &[("type", "submit"), ("class", "secondary")], m.withdraw_all);
    h.el("p", &[("class", "muted")], m.withdraw_all_help).close("form");
    h.raw("</section>");

    // What is done without asking.
    if !not_asked.is_empty() {
        h.raw("<section aria-labelledby=\"others\">").el("h2", &[("id", "others")], m.others);
        h.el("p", &[], m.no_consent_needed);
        for p in not_asked {
            card(&mut h, p);
        }
        h.raw("</section>");
    }

    // My history.
    h.raw("<section aria-labelledby=\"history\">").el("h2", &[("id", "history")], m.history);
    if data.history.is_empty() {
        h.el("p", &[("class", "muted")], m.history_empty);
    } else {
        h.raw("<ol class=\"log\">");
        for e in &data.history {
            h.open("li", &[("id", &event_id(e.seq))]);
            h.el("time", &[("datetime", &e.recorded_at.to_string())], &lang.date_time(e.recorded_at));
            h.raw("<p>").el("strong", &[], m.action(e.action)).text(": ").text(&purpose_name(&e.purpose));
            if !e.scope.channels.is_empty() {
                let channels = names(&e.scope.channels, |k| catalog.channel(k).map(|c| c.name.as_str()));
                h.text(" (").text(&channels).text(")");
            }
            h.raw("</p><p class=\"meta\">").text(m.by).text(": ").text(m.actor(&e.actor));
            if let Some(cp) = &e.collection_point {
                let name = catalog.collection_point(cp).map_or(cp.as_str(), |c| c.name.as_str());
                h.text(" · ").text(m.at_point).text(": ").text(name);
            }
            if let (Some(n), Some(v)) = (&e.notice, e.notice_version) {
                h.text(" · ").text(m.notice_version).text(": ").text(n).text(" v").text(&v.to_string());
            }
            h.raw("</p></li>");
        }
        h.raw("</ol>");
    }
    h.raw("</section>");

    // My receipts.
    h.raw("<section aria-labelledby=\"receipts\">").el("h2", &[("id", "receipts")], m.receipts);
    let jwks = format!("{}/.well-known/jwks.json", state.config.public_url());
    h.el("p", &[], &fill(m.receipts_help, "jwks", &jwks));
    if data.receipts.is_empty() {
        h.el("p", &[("class", "muted")], m.receipts_empty);
    } else {
        h.raw("<ul class=\"receipts\">");
        for r in &data.receipts {
            let href = format!("{}/receipts/{}", super::session::PATH, r.id);
            h.raw("<li>").el(
                "time",
                &[("datetime", &r.created_at.to_string())],
                &lang.date_time(r.created_at),
            );
            h.text(" ").el("code", &[], &r.id).text(" ");
            h.el("a", &[("href", &href), ("download", "")], m.download).raw("</li>");
        }
        h.raw("</ul>");
    }
    h.raw("</section>");

    // Who used my data.
    h.raw("<section aria-labelledby=\"access\">").el("h2", &[("id", "access")], m.access);
    h.el("p", &[], m.access_help);
    if data.access.is_empty() && data.checks.is_empty() {
        h.el("p", &[("class", "muted")], m.access_empty);
    }
    if !data.access.is_empty() {
        h.raw("<ol class=\"log\">");
        for a in &data.access {
            let who = if a.caller == "subject" { m.actor_subject } else { a.caller.as_str() };
            h.raw("<li>").el("time", &[("datetime", &a.at.to_string())], &lang.date_time(a.at));
            h.raw("<p>").el("strong", &[], who).raw("</p><p class=\"meta\">");
            h.text(m.access_reason).text(": ").text(&a.purpose).raw("</p></li>");
        }
        h.raw("</ol>");
    }
    for (purpose, count, last) in &data.checks {
        let text = fill(
            &fill(&fill(m.checks, "purpose", &purpose_name(purpose)), "count", &count.to_string()),
            "date",
            &lang.date_time(*last),
        );
        h.el("p", &[("class", "meta")], &text);
    }
    h.raw("</section>");
    devices_section(&mut h, view, data);
    data_section(&mut h, view, data);
    requests_section(&mut h, data);
    end(&mut h, state, m);
    h.finish()
}

/// My data: the person's records in the vault.
fn data_section(h: &mut Html, view: &CatalogView, data: &PageData) {
    let lang = data.lang;
    let m = lang.messages();
    let catalog = &view.catalog;
    let path = super::session::PATH;
    h.raw("<section aria-labelledby=\"data\">").el("h2", &[("id", "data")], m.data);
    h.el("p", &[], m.data_help);
    if data.records.is_empty() {
        h.el("p", &[("class", "muted")], m.data_empty).raw("</section>");
        return;
    }
    h.raw("<ol class=\"log records\">");
    for r in &data.records {
        let category = catalog.category(&r.category).map_or(r.category.as_str(), |c| c.name.as_str());
        let purpose = catalog.purpose(&r.purpose).map_or(r.purpose.as_str(), |p| p.name.as_str());
        let href = format!("{path}/data/{}", r.id);
        h.raw("<li>").el(
            "time",
            &[("datetime", &r.collected_at.to_string())],
            &lang.date_time(r.collected_at),
        );
        h.raw("<p>").el("strong", &[], category).text(" · ").text(purpose).raw("</p>");
        let size = fill(m.size_bytes, "size", &r.size.to_string());
        h.el("p", &[("class", "meta")], &format!("{} · {size}", r.content_type));
        if r.content_type.starts_with("audio/") {
            h.open("audio", &[("controls", ""), ("preload", "none"), ("src", &href)]).close("audio");
        }
        h.raw("<div class=\"row\">");
        let essence = r.content_type.split(';').next().unwrap_or("").trim();
        if essence == "application/json" || essence.ends_with("+json") || essence.starts_with("text/") {
            h.el("a", &[("href", &href)], m.view);
        }
        let download = format!("{href}?download=1");
        h.el("a", &[("href", &download), ("download", "")], m.download);
        let action = format!("{href}/delete");
        h.open("form", &[("method", "post"), ("action", &action), ("class", "inline")]);
        h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
        let label = fill(m.delete_item, "what", category);
        h.el("button", &[("type", "submit"), ("class", "link"), ("aria-label", &label)], m.delete);
        h.raw("</form></div></li>");
    }
    h.raw("</ol>");
    // Delete a whole kind of data: the kinds the person has records of.
    let mut kinds: Vec<&str> = data.records.iter().map(|r| r.category.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let action = format!("{path}/data/delete-category");
    h.open("form", &[("method", "post"), ("action", &action), ("class", "card")]);
    h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
    h.el("label", &[("for", "delete-category")], m.delete_category_label);
    h.raw("<div class=\"row\">").open("select", &[("id", "delete-category"), ("name", "category")]);
    for k in kinds {
        let name = catalog.category(k).map_or(k, |c| c.name.as_str());
        h.el("option", &[("value", k)], name);
    }
    h.raw("</select>").el("button", &[("type", "submit"), ("class", "secondary")], m.delete_category);
    h.raw("</div></form></section>");
}

/// My devices: what is paired, and unpairing.
fn devices_section(h: &mut Html, view: &CatalogView, data: &PageData) {
    let lang = data.lang;
    let m = lang.messages();
    let catalog = &view.catalog;
    h.raw("<section aria-labelledby=\"devices\">").el("h2", &[("id", "devices")], m.devices);
    h.el("p", &[], m.devices_help);
    if data.devices.is_empty() {
        h.el("p", &[("class", "muted")], m.devices_empty).raw("</section>");
        return;
    }
    h.raw("<ul class=\"log\">");
    for d in &data.devices {
        h.raw("<li>").el("p", &[("class", "strong")], &d.name);
        let since = fill(m.paired_since, "date", &lang.date_time(d.created_at));
        h.el("p", &[("class", "meta")], &format!("{} · {since}", d.kind));
        let purposes = names(&d.purposes, |k| catalog.purpose(k).map(|p| p.name.as_str()));
        let categories = names(&d.categories, |k| catalog.category(k).map(|c| c.name.as_str()));
        h.raw("<p>").text(&fill(&fill(m.device_uses, "categories", &categories), "purposes", &purposes));
        h.raw("</p>");
        let action = format!("{}/devices/{}/unpair", super::session::PATH, d.id);
        h.open("form", &[("method", "post"), ("action", &action)]);
        h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
        let label = fill(m.unpair_named, "device", &d.name);
        h.el("button", &[("type", "submit"), ("class", "secondary"), ("aria-label", &label)], m.unpair);
        h.raw("</form></li>");
    }
    h.raw("</ul></section>");
}

/// My requests: their state and due dates, "download my data" and "delete my data".
fn requests_section(h: &mut Html, data: &PageData) {
    let lang = data.lang;
    let m = lang.messages();
    let path = super::session::PATH;
    let when = |text: &str| Timestamp::parse(text).map_or_else(|| text.to_owned(), |t| lang.date_time(t));
    h.raw("<section aria-labelledby=\"requests\">").el("h2", &[("id", "requests")], m.requests);
    h.el("p", &[], m.requests_help);
    if data.requests.is_empty() {
        h.el("p", &[("class", "muted")], m.requests_empty);
    } else {
        h.raw("<ul class=\"log\">");
        for r in &data.requests {
            h.raw("<li>").el("p", &[("class", "strong")], m.request_type(&r.kind));
            let state = m.request_status(&r.status);
            let received = fill(m.received_on, "date", &when(&r.received_at));
            h.el("p", &[("class", "meta")], &format!("{state} · {received}"));
            if r.status == "received" || r.status == "in_progress" {
                let due = fill(m.due_by, "date", &when(&r.due_at));
                let class = if r.overdue { "overdue" } else { "meta" };
                h.el("p", &[("class", class)], &due);
            }
            if let Some(export) = &r.export {
                let href = format!("{path}/requests/{}/export", r.id);
                let until = fill(m.export_until, "date", &when(&export.available_until));
                h.raw("<p>").el("a", &[("href", &href), ("download", "")], m.download_export);
                h.text(" (").text(&until).text(")").raw("</p>");
            }
            h.raw("</li>");
        }
        h.raw("</ul>");
    }
    let copy = format!("{path}/requests/access");
    h.open("form", &[("method", "post"), ("action", &copy), ("class", "card")]);
    h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", &data.csrf)]);
    h.el("p", &[], m.download_data_help);
    h.el("button", &[("type", "submit"), ("class", "secondary")], m.download_data).raw("</form>");
    let erase = format!("{path}/erase");
    h.raw("<div class=\"card\">").el("p", &[], m.delete_data_help);
    h.el("a", &[("class", "button danger"), ("href", &erase)], m.delete_data).raw("</div>");
    h.raw("</section>");
}

/// The confirmation step of "delete my data": what will happen, in plain words, and the one button.
pub fn confirm_erasure(state: &AppState, lang: Lang, csrf: &str) -> String {
    let m = lang.messages();
    let mut h = Html::new();
    start(&mut h, lang, m.title, None);
    h.raw("<section class=\"card notice\">").el("h1", &[], m.erase_title).el("p", &[], m.erase_intro);
    h.raw("<ul>");
    for item in [m.erase_records, m.erase_devices, m.erase_ledger, m.erase_downstream, m.erase_page] {
        h.el("li", &[], item);
    }
    h.raw("</ul>").el("p", &[("class", "strong")], m.erase_final);
    let action = format!("{}/erase", super::session::PATH);
    h.open("form", &[("method", "post"), ("action", &action)]);
    h.open("input", &[("type", "hidden"), ("name", "csrf"), ("value", csrf)]);
    h.open("input", &[("type", "hidden"), ("name", "confirm"), ("value", "yes")]);
    h.raw("<div class=\"row\">").el("button", &[("type", "submit"), ("class", "danger")], m.erase_confirm);
    h.el("a", &[("href", super::session::PATH)], m.erase_cancel).raw("</div></form></section>");
    end(&mut h, state, m);
    h.finish()
}
