//! The export's `index.html`: a page the person reads, offline, in their language. It carries the
//! preference centre's stylesheet inline (the archive has no server behind it) and shows their current
//! choices, their history as a table, their devices, identifiers, stated age and households, and their
//! stored records with links to the files beside it, with dates in words; `data.json` holds the same and
//! more for machines.

use consentry_core::Timestamp;
use consentry_core::catalog::Catalog;
use consentry_core::request::RequestKind;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::words::{Language, Word};
use crate::preferences::STYLESHEET;

/// The catalogue's names in the guide's language (the key where the catalogue has none).
struct Names<'c>(&'c Catalog, &'static str);

impl Names<'_> {
    fn purpose<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.purpose(key).map_or(key, |p| p.name_in(self.1))
    }

    fn category<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.category(key).map_or(key, |c| c.name_in(self.1))
    }

    fn list(&self, keys: &Value, name: impl for<'a> Fn(&'a Self, &'a str) -> &'a str) -> String {
        let keys = keys.as_array().map(Vec::as_slice).unwrap_or_default();
        let names: Vec<&str> = keys.iter().filter_map(Value::as_str).map(|k| name(self, k)).collect();
        names.join(", ")
    }

    fn channels(&self, keys: &Value) -> String {
        self.list(keys, |n, k| n.0.channel(k).map_or(k, |c| c.name_in(n.1)))
    }
}

fn count(data: &Value, pointer: &str) -> usize {
    data.pointer(pointer).and_then(Value::as_array).map_or(0, Vec::len)
}

fn items<'a>(data: &'a Value, pointer: &str) -> &'a [Value] {
    data.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("")
}

/// The guide to the archive whose `data.json` is `data`, for a request of `kind`, available `until`.
pub(super) fn page(
    data: &Value,
    catalog: &Catalog,
    lang: Language,
    kind: RequestKind,
    until: Timestamp,
) -> String {
    let names = Names(catalog, lang.code());
    let t = |w| lang.t(w);
    let why = match kind {
        RequestKind::Portability => t(Word::IntroPortability),
        _ => t(Word::IntroAccess),
    };
    let current = items(data, "/consents/current");
    // Newest first, as the preference centre shows it.
    let history: Vec<&Value> = items(data, "/consents/history").iter().rev().collect();
    let devices = items(data, "/devices");
    let records = items(data, "/records");
    let identifiers = items(data, "/identifiers");
    let households = items(data, "/households");
    let age = &data["age"];
    let channels = |e: &Value| {
        let list = names.channels(&e["channels"]);
        if list.is_empty() { t(Word::AllChannels).to_owned() } else { list }
    };
    let markup: Markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t(Word::Title)) }
                style { (PreEscaped(STYLESHEET)) }
            }
            body {
                main class="wrap" {
                    h1 { (t(Word::Title)) }
                    p class="lead" {
                        (t(Word::IntroId)) " " code { (text(data, "subject")) } " " (why)
                    }
                    p {
                        (t(Word::Made)) " " (lang.when(text(data, "generated_at"))) "; "
                        (t(Word::Until)) " " (lang.date_time(until)) "."
                    }
                    p { code { "data.json" } ": " (t(Word::DataJson)) }

                    h2 id="choices" { (t(Word::Choices)) }
                    @if current.is_empty() {
                        p class="muted" { (t(Word::ChoicesEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::Purpose)) }
                                th scope="col" { (t(Word::State)) }
                                th scope="col" { (t(Word::Since)) }
                                th scope="col" { (t(Word::Channels)) }
                            } }
                            tbody {
                                @for e in current {
                                    tr {
                                        th scope="row" data-label=(t(Word::Purpose)) { (names.purpose(text(e, "purpose"))) }
                                        td data-label=(t(Word::State)) { (lang.action(text(e, "action"))) }
                                        td data-label=(t(Word::Since)) { (lang.when(text(e, "recorded_at"))) }
                                        td data-label=(t(Word::Channels)) { (channels(e)) }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="history" { (t(Word::History)) }
                    p { (t(Word::HistoryHelp)) }
                    @if history.is_empty() {
                        p class="muted" { (t(Word::HistoryEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::When)) }
                                th scope="col" { (t(Word::Change)) }
                                th scope="col" { (t(Word::Purpose)) }
                                th scope="col" { (t(Word::Channels)) }
                                th scope="col" { (t(Word::By)) }
                            } }
                            tbody {
                                @for e in &history {
                                    tr {
                                        td data-label=(t(Word::When)) { (lang.when(text(e, "recorded_at"))) }
                                        td data-label=(t(Word::Change)) { (lang.action(text(e, "action"))) }
                                        td data-label=(t(Word::Purpose)) { (names.purpose(text(e, "purpose"))) }
                                        td data-label=(t(Word::Channels)) { (channels(e)) }
                                        td data-label=(t(Word::By)) { (lang.actor(text(e, "actor"))) }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="devices" { (t(Word::Devices)) }
                    @if devices.is_empty() {
                        p class="muted" { (t(Word::DevicesEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::Device)) }
                                th scope="col" { (t(Word::PairedSince)) }
                                th scope="col" { (t(Word::Uses)) }
                            } }
                            tbody {
                                @for d in devices {
                                    tr {
                                        th scope="row" data-label=(t(Word::Device)) { (text(d, "name")) " (" (text(d, "kind")) ")" }
                                        td data-label=(t(Word::PairedSince)) { (lang.when(text(d, "paired_at"))) }
                                        td data-label=(t(Word::Uses)) {
                                            (names.list(&d["categories"], Names::category)) " · "
                                            (names.list(&d["purposes"], Names::purpose))
                                        }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="identifiers" { (t(Word::Identifiers)) }
                    @if identifiers.is_empty() {
                        p class="muted" { (t(Word::IdentifiersEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::IdentifierType)) }
                                th scope="col" { (t(Word::IdentifierValue)) }
                                th scope="col" { (t(Word::Added)) }
                            } }
                            tbody {
                                @for i in identifiers {
                                    tr {
                                        th scope="row" data-label=(t(Word::IdentifierType)) { code { (text(i, "type")) } }
                                        td data-label=(t(Word::IdentifierValue)) { (text(i, "value")) }
                                        td data-label=(t(Word::Added)) { (lang.when(text(i, "added_at"))) }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="age" { (t(Word::Age)) }
                    @if age.is_null() {
                        p class="muted" { (t(Word::AgeEmpty)) }
                    } @else {
                        dl {
                            @if let Some(birth) = age["birth_date"].as_str() {
                                dt { (t(Word::BirthDate)) } dd { (birth) }
                            }
                            @if let Some(band) = age["age_band"].as_str() {
                                dt { (t(Word::AgeBand)) } dd { (band) }
                            }
                            dt { (t(Word::StatedOn)) } dd { (text(age, "stated_on")) }
                        }
                    }

                    h2 id="households" { (t(Word::Households)) }
                    @if households.is_empty() {
                        p class="muted" { (t(Word::HouseholdsEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::Household)) }
                                th scope="col" { (t(Word::MemberSince)) }
                                th scope="col" { (t(Word::SharedDevices)) }
                            } }
                            tbody {
                                @for h in households {
                                    @let shared: Vec<&str> = items(h, "/devices").iter().map(|d| text(d, "name")).collect();
                                    tr {
                                        th scope="row" data-label=(t(Word::Household)) { (text(h, "name")) }
                                        td data-label=(t(Word::MemberSince)) { (lang.when(text(h, "joined_at"))) }
                                        td data-label=(t(Word::SharedDevices)) { (shared.join(", ")) }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="records" { (t(Word::Records)) }
                    p { (t(Word::RecordsHelp)) }
                    @if records.is_empty() {
                        p class="muted" { (t(Word::RecordsEmpty)) }
                    } @else {
                        table {
                            thead { tr {
                                th scope="col" { (t(Word::Collected)) }
                                th scope="col" { (t(Word::Kind)) }
                                th scope="col" { (t(Word::Purpose)) }
                                th scope="col" { (t(Word::DeletedBy)) }
                                th scope="col" { (t(Word::File)) }
                            } }
                            tbody {
                                @for r in records {
                                    @let file = text(r, "file");
                                    @let kind = names.category(text(r, "category"));
                                    @let collected = lang.when(text(r, "collected_at"));
                                    tr {
                                        td data-label=(t(Word::Collected)) { (collected) }
                                        td data-label=(t(Word::Kind)) { (kind) }
                                        td data-label=(t(Word::Purpose)) { (names.purpose(text(r, "purpose"))) }
                                        td data-label=(t(Word::DeletedBy)) {
                                            @match r["delete_after"].as_str() {
                                                Some(at) => (lang.when(at)),
                                                None => (t(Word::Kept)),
                                            }
                                        }
                                        td data-label=(t(Word::File)) {
                                            a href=(file) {
                                                (t(Word::Open))
                                                span class="vh" { " " (kind) ", " (collected) }
                                            }
                                            " " code { (file) } " (" (text(r, "content_type")) ")"
                                        }
                                    }
                                }
                            }
                        }
                    }

                    h2 id="more" { (t(Word::More)) }
                    ul {
                        li { (count(data, "/receipts")) " " (t(Word::Receipts)) }
                        li { (count(data, "/access_log")) " " (t(Word::Access)) }
                        li { (count(data, "/requests")) " " (t(Word::Requests)) }
                        li { (count(data, "/evidence")) " " (t(Word::Evidence)) }
                        li { (count(data, "/guardians")) " " (t(Word::Guardians)) }
                        li { (count(data, "/children")) " " (t(Word::Children)) }
                    }
                    p { (t(Word::Rights)) }
                }
            }
        }
    };
    markup.into_string()
}
