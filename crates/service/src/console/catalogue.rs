//! The console's catalogue page: what a new catalogue document would change before it is applied.
//!
//! An uploaded document is read and validated like `PUT /v1/catalog` would, then compared with the
//! current catalogue: entries added, removed or changed (with the fields that changed), the notice texts
//! that would get a new version, and for each notice version that would stop being current, how many
//! people's consents rest on it (an indexed count, [`consentry_store::ConsoleStore::notice_consents`]),
//! so the team knows whom to ask again. The diff names the catalogue version it was made against and the
//! document's SHA-256; applying ([`apply`]) takes both back and refuses when the catalogue moved on since.

use std::collections::BTreeMap;

use consentry_core::Timestamp;
use consentry_core::catalog::{CatalogDocument, notice_sha256};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ConsoleCaller;
use crate::catalog::{self, CatalogOut};
use crate::error::{Error, Result};
use crate::state::Services;

/// How an entry differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One entry of a section that differs: its key, and for a change, the fields that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub section: &'static str,
    pub key: String,
    pub kind: ChangeKind,
    pub fields: Vec<String>,
}

/// A notice text (one notice in one language) that would get a new version, or stop being current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeChange {
    pub key: String,
    pub language: String,
    /// The version current now in this language (none: a new notice or language).
    pub current: Option<u32>,
    /// Whether the new document drops this notice or language (else its text changes).
    pub dropped: bool,
    /// People whose consents rest on the current version.
    pub people: u64,
}

/// What applying a document would change.
#[derive(Debug, Clone)]
pub struct Diff {
    /// The catalogue version compared with; applying refuses once the catalogue is no longer at it.
    pub base: u64,
    /// SHA-256 (hex) of the document as uploaded.
    pub sha256: String,
    /// `application/json` or `application/yaml`.
    pub media_type: &'static str,
    /// The document as uploaded, for the apply form to send back.
    pub document: Vec<u8>,
    pub changes: Vec<Change>,
    pub notices: Vec<NoticeChange>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.notices.is_empty()
    }
}

/// The media type of an uploaded file: JSON when it starts with `{` (or its name ends in `.json`), YAML
/// otherwise.
pub fn media_type(file_name: Option<&str>, body: &[u8]) -> &'static str {
    let json_name = file_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".json"));
    let starts_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if json_name || starts_object { "application/json" } else { "application/yaml" }
}

/// SHA-256 of `body`, in hex.
pub fn sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Compares the document `body` (`media_type`) with the current catalogue. A document that does not read
/// or validate is refused as `PUT /v1/catalog` refuses it.
pub async fn diff(services: &Services, media_type: &'static str, body: &[u8]) -> Result<Diff> {
    if std::str::from_utf8(body).is_err() {
        return Err(Error::validation("document", "the document is not UTF-8 text"));
    }
    let new = catalog::read_off_runtime(media_type, body).await?;
    let view = services.catalog();
    let (old, new) = (&view.stored.document, new.document());
    let mut changes = Vec::new();
    if old.language() != new.language() {
        changes.push(Change {
            section: "language",
            key: new.language().to_owned(),
            kind: ChangeKind::Changed,
            fields: vec!["language".into()],
        });
    }
    compare("data_categories", &old.data_categories, &new.data_categories, |c| &c.key, &mut changes);
    compare("purposes", &old.purposes, &new.purposes, |p| &p.key, &mut changes);
    compare("channels", &old.channels, &new.channels, |c| &c.key, &mut changes);
    compare("recipients", &old.recipients, &new.recipients, |r| &r.key, &mut changes);
    compare("notices", &old.notices, &new.notices, |n| &n.key, &mut changes);
    compare("collection_points", &old.collection_points, &new.collection_points, |c| &c.key, &mut changes);
    compare("jurisdictions", &old.jurisdictions, &new.jurisdictions, |j| &j.key, &mut changes);
    if old.frameworks != new.frameworks {
        let kind = match (&old.frameworks, &new.frameworks) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        changes.push(Change { section: "frameworks", key: "frameworks".into(), kind, fields: vec![] });
    }
    let notices = notice_changes(services, &view.stored.notices, new).await?;
    let document = body.to_vec();
    Ok(Diff { base: view.stored.version, sha256: sha256(body), media_type, document, changes, notices })
}

/// The entries of one section that differ, by key: added, removed, and changed with their fields.
fn compare<T: PartialEq + Serialize>(
    section: &'static str,
    old: &[T],
    new: &[T],
    key: fn(&T) -> &String,
    out: &mut Vec<Change>,
) {
    let before: BTreeMap<&String, &T> = old.iter().map(|e| (key(e), e)).collect();
    let after: BTreeMap<&String, &T> = new.iter().map(|e| (key(e), e)).collect();
    for (k, e) in &after {
        match before.get(k) {
            None => out.push(Change { section, key: (*k).clone(), kind: ChangeKind::Added, fields: vec![] }),
            Some(was) if was != e => out.push(Change {
                section,
                key: (*k).clone(),
                kind: ChangeKind::Changed,
                fields: changed_fields(*was, *e),
            }),
            Some(_) => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push(Change { section, key: (*k).clone(), kind: ChangeKind::Removed, fields: vec![] });
    }
}

/// The names of the fields whose values differ between two entries.
fn changed_fields<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec![];
    };
    let mut names: Vec<String> =
        a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect();
    names.sort();
    names.dedup();
    names
}

/// The notice texts whose version would change: a new or changed text gets the notice's next version
/// (as the store decides it, by SHA-256 per language), a dropped one stops being current. For each
/// version that stops being current, how many people's consents rest on it.
async fn notice_changes(
    services: &Services,
    current: &[consentry_store::NoticeVersion],
    new: &CatalogDocument,
) -> Result<Vec<NoticeChange>> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    let mut kept = Vec::new();
    for notice in &new.notices {
        for t in notice.texts(new.language()) {
            let was = current.iter().find(|v| v.key == notice.key && v.language == t.language);
            kept.push((notice.key.as_str(), t.language));
            if was.is_some_and(|v| v.sha256 == notice_sha256(t.text)) {
                continue;
            }
            let people = match was {
                Some(v) => services.store.notice_consents(&v.key, v.version, now).await?,
                None => 0,
            };
            out.push(NoticeChange {
                key: notice.key.clone(),
                language: t.language.to_owned(),
                current: was.map(|v| v.version),
                dropped: false,
                people,
            });
        }
    }
    for v in current.iter().filter(|v| !kept.contains(&(v.key.as_str(), v.language.as_str()))) {
        out.push(NoticeChange {
            key: v.key.clone(),
            language: v.language.clone(),
            current: Some(v.version),
            dropped: true,
            people: services.store.notice_consents(&v.key, v.version, now).await?,
        });
    }
    Ok(out)
}

/// Applies the `document` (`media_type`) a diff showed, as `console:<key name>`: only when its
/// SHA-256 is `sha256` (the document the diff was made from) and the catalogue is still at version
/// `base` (409 otherwise). Needs `console:write`.
pub async fn apply(
    services: &Services,
    caller: &ConsoleCaller,
    base: u64,
    sha256_hex: &str,
    media_type: &str,
    document: &[u8],
) -> Result<CatalogOut> {
    caller.require_write()?;
    if sha256(document) != sha256_hex {
        return Err(Error::Conflict("the document is not the one compared: compare it again".into()));
    }
    let media_type = match media_type {
        "application/json" => "application/json",
        _ => "application/yaml",
    };
    catalog::apply_over(services, Some(base), media_type, document, &caller.actor()).await
}
