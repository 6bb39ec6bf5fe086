//! The catalogue: data categories, purposes, channels, recipients, notices and collection points (and
//! jurisdictions, signal frameworks, identifier types), applied as one document ("catalogue as code")
//! and validated as a whole.
//!
//! Parsing accepts YAML or JSON and rejects unknown fields, so a typo never silently changes meaning.
//! Validation collects every problem with its path instead of stopping at the first.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{Key, parent_key};
use crate::ledger::{Action, Scope};

mod frameworks;
mod identifiers;
mod jurisdictions;
mod text;

pub use frameworks::{ConsentModeFramework, Frameworks, GppFramework, SignalTarget, TcfFramework};
pub use identifiers::{BUILT_IN_IDENTIFIER_TYPES, IdentifierType, Normalisation, is_identifier_type_key};
pub use jurisdictions::{Jurisdiction, PurposeKind, Regime, is_place_code};
pub use text::{DEFAULT_LANGUAGE, Translation, Translations, is_language_tag, same_language};

/// The default catalogue installed on first start.
pub const DEFAULT_CATALOG_YAML: &str = include_str!("default_catalog.yaml");

/// The legal basis of a purpose (GDPR Art. 6(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Consent,
    Contract,
    LegitimateInterest,
    LegalObligation,
    VitalInterest,
    PublicTask,
}

/// What happens to the personal data records (the vault) held for a purpose when the person withdraws,
/// denies or objects to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnWithdraw {
    /// Delete them at once (the default).
    #[default]
    Delete,
    /// Keep them until their category's retention ends (e.g. records a law requires to be kept).
    KeepUntilRetention,
}

impl OnWithdraw {
    fn is_default(&self) -> bool {
        *self == OnWithdraw::Delete
    }
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Consent => "consent",
            Basis::Contract => "contract",
            Basis::LegitimateInterest => "legitimate_interest",
            Basis::LegalObligation => "legal_obligation",
            Basis::VitalInterest => "vital_interest",
            Basis::PublicTask => "public_task",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCategory {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpv: Option<String>,
    /// A special category of personal data (GDPR Art. 9).
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub basis: Basis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpv: Option<String>,
    /// Selling or sharing personal data (CCPA); Global Privacy Control opts out of these.
    #[serde(default)]
    pub sale_or_sharing: bool,
    /// What the purpose does as privacy laws tell purposes apart (`sale`, `targeted_advertising`, ...):
    /// picks its regime in each of the catalogue's `jurisdictions`. Empty: opt-in everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<PurposeKind>,
    /// Data categories the purpose uses. Empty: not limited by category.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Channels the purpose may use. Empty: not limited by channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Recipients of the data. Empty: not limited by recipient.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The notice a person is shown; required when the basis is consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// What happens to the vault's records held for this purpose when it is withdrawn, denied or
    /// objected to.
    #[serde(default, skip_serializing_if = "OnWithdraw::is_default")]
    pub on_withdraw: OnWithdraw,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    Controller,
    Processor,
    ThirdParty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub kind: RecipientKind,
    /// A downstream system that must learn of every change.
    #[serde(default)]
    pub downstream: bool,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub key: String,
    pub title: String,
    /// The language of `title` and `text`; default the catalogue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The exact text shown to a person. Its SHA-256 identifies the notice version.
    pub text: String,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionPoint {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub kind: CollectionPointKind,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionPointKind {
    WebForm,
    AppScreen,
    DeviceSetup,
    VoicePrompt,
    PreferenceCentre,
    InStore,
    Api,
}

/// The names and descriptions of categories, purposes, channels, recipients and collection points in a
/// language, falling back to the catalogue's own.
macro_rules! named_texts {
    ($($t:ty),*) => {$(
        impl $t {
            /// The name in `lang` (the catalogue's own where it has no translation).
            pub fn name_in(&self, lang: &str) -> &str {
                text::pick(&self.name, &self.translations, lang, |t| t.name.as_ref())
            }

            /// The description in `lang` (the catalogue's own where it has no translation).
            pub fn description_in(&self, lang: &str) -> Option<&str> {
                let base = self.description.as_deref()?;
                Some(text::pick(base, &self.translations, lang, |t| t.description.as_ref()))
            }
        }
    )*};
}

named_texts!(DataCategory, Purpose, Channel, Recipient, CollectionPoint, Jurisdiction);

/// A notice's title and text in one language: what one notice version holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeText<'a> {
    pub language: &'a str,
    pub title: &'a str,
    pub text: &'a str,
}

impl Notice {
    /// The notice in each of its languages, its own language (`language`, else `catalogue_language`)
    /// first.
    pub fn texts<'a>(&'a self, catalogue_language: &'a str) -> Vec<NoticeText<'a>> {
        let own = NoticeText {
            language: self.language.as_deref().unwrap_or(catalogue_language),
            title: &self.title,
            text: &self.text,
        };
        let translated = self.translations.iter().filter_map(|(tag, t)| {
            Some(NoticeText {
                language: tag,
                title: t.title.as_deref().unwrap_or(&self.title),
                text: t.text.as_deref()?,
            })
        });
        std::iter::once(own).chain(translated).collect()
    }
}

/// The catalogue as written by its authors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    /// The language of every entry's own texts (default `en`); other languages go in each entry's
    /// `translations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub data_categories: Vec<DataCategory>,
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    #[serde(default)]
    pub notices: Vec<Notice>,
    #[serde(default)]
    pub collection_points: Vec<CollectionPoint>,
    /// How consent signals (IAB TCF and GPP strings, Google Consent Mode) map to the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frameworks: Option<Frameworks>,
    /// The places whose rules a check may be decided by, with their regime per kind of purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<Jurisdiction>,
    /// Identifier types beyond the built-in ones, with how their values are normalised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier_types: Vec<IdentifierType>,
}

/// A document that could not be read at all (syntax, wrong types, unknown fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// One thing wrong with a document that parsed, with the path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogProblem {
    pub path: String,
    pub message: String,
}

impl CatalogDocument {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        serde_json::from_slice(bytes).map_err(|e| ParseError(e.to_string()))
    }

    pub fn from_yaml(text: &str) -> Result<Self, ParseError> {
        serde_norway::from_str(text).map_err(|e| ParseError(e.to_string()))
    }

    /// The language of the entries' own texts.
    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)
    }

    /// The default catalogue shipped with Consentry.
    pub fn default_catalog() -> Self {
        // The file is ours and covered by a test, so a failure here is a build defect, not an input error.
        #[allow(clippy::expect_used)]
        Self::from_yaml(DEFAULT_CATALOG_YAML).expect("the built-in default catalogue parses")
    }
}

/// The SHA-256 of a notice's exact text, lowercase hex: the identity of one notice version.
pub fn notice_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A validated catalogue with look-ups by key. Only [`Catalog::validate`] builds one.
#[derive(Debug, Clone)]
pub struct Catalog {
    doc: CatalogDocument,
    categories: HashMap<String, usize>,
    purposes: HashMap<String, usize>,
    channels: HashMap<String, usize>,
    recipients: HashMap<String, usize>,
    notices: HashMap<String, usize>,
    collection_points: HashMap<String, usize>,
    jurisdictions: HashMap<String, usize>,
}

/// The retention of category `key`: its own `retention_days`, else the nearest category above it that has
/// one.
fn retention_of(categories: &[DataCategory], key: &str) -> Option<u32> {
    let mut at = Some(key);
    while let Some(k) = at {
        if let Some(days) = categories.iter().find(|c| c.key == k).and_then(|c| c.retention_days) {
            return Some(days);
        }
        at = parent_key(k);
    }
    None
}

fn index_of<T>(items: &[T], key: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items.iter().enumerate().map(|(i, item)| (key(item).to_owned(), i)).collect()
}

impl Catalog {
    /// Checks the whole document and either returns it ready for use or lists every problem.
    pub fn validate(doc: CatalogDocument) -> Result<Self, Vec<CatalogProblem>> {
        let mut problems = Vec::new();
        let mut push = |path: String, message: String| problems.push(CatalogProblem { path, message });

        fn keys_of<'a>(
            list: &'a str,
            keys: impl Iterator<Item = &'a str>,
            hierarchical: bool,
            push: &mut impl FnMut(String, String),
        ) -> HashSet<&'a str> {
            let mut seen = HashSet::new();
            let keys: Vec<&str> = keys.collect();
            for (i, key) in keys.iter().enumerate() {
                if let Err(e) = Key::validate(key) {
                    push(format!("{list}[{i}].key"), format!("invalid key {key:?}: {e}"));
                }
                if !seen.insert(*key) {
                    push(format!("{list}[{i}].key"), format!("duplicate key {key:?}"));
                }
            }
            if hierarchical {
                for (i, key) in keys.iter().enumerate() {
                    if let Some(parent) = parent_key(key).filter(|p| !seen.contains(p)) {
                        push(
                            format!("{list}[{i}].key"),
                            format!("{key:?} lies under {parent:?}, which is not defined"),
                        );
                    }
                }
            }
            seen
        }

        let categories =
            keys_of("data_categories", doc.data_categories.iter().map(|c| c.key.as_str()), true, &mut push);
        keys_of("purposes", doc.purposes.iter().map(|p| p.key.as_str()), true, &mut push);
        let channels = keys_of("channels", doc.channels.iter().map(|c| c.key.as_str()), false, &mut push);
        let recipients =
            keys_of("recipients", doc.recipients.iter().map(|r| r.key.as_str()), false, &mut push);
        let notices = keys_of("notices", doc.notices.iter().map(|n| n.key.as_str()), false, &mut push);
        keys_of("collection_points", doc.collection_points.iter().map(|c| c.key.as_str()), false, &mut push);

        for (i, c) in doc.data_categories.iter().enumerate() {
            if c.name.trim().is_empty() {
                push(format!("data_categories[{i}].name"), "must not be empty".into());
            }
        }
        for (i, p) in doc.purposes.iter().enumerate() {
            if p.name.trim().is_empty() {
                push(format!("purposes[{i}].name"), "must not be empty".into());
            }
            let refs: [(&str, &[String], &HashSet<&str>, &str); 3] = [
                ("categories", &p.categories, &categories, "data category"),
                ("channels", &p.channels, &channels, "channel"),
                ("recipients", &p.recipients, &recipients, "recipient"),
            ];
            for (field, list, known, what) in refs {
                for (j, key) in list.iter().enumerate() {
                    if !known.contains(key.as_str()) {
                        push(format!("purposes[{i}].{field}[{j}]"), format!("unknown {what} {key:?}"));
                    }
                }
            }
            match (&p.notice, p.basis) {
                (Some(n), _) if !notices.contains(n.as_str()) => {
                    push(format!("purposes[{i}].notice"), format!("unknown notice {n:?}"));
                }
                (None, Basis::Consent) => push(
                    format!("purposes[{i}].notice"),
                    format!("purpose {:?} has basis consent and so needs a notice", p.key),
                ),
                _ => {}
            }
            if p.on_withdraw == OnWithdraw::KeepUntilRetention {
                // Kept after a withdrawal only for a bounded time: every category needs a retention.
                if p.categories.is_empty() {
                    push(
                        format!("purposes[{i}].on_withdraw"),
                        "keep_until_retention needs the purpose to list its categories, each with a retention".into(),
                    );
                }
                for (j, key) in p.categories.iter().enumerate() {
                    if categories.contains(key.as_str()) && retention_of(&doc.data_categories, key).is_none()
                    {
                        push(
                            format!("purposes[{i}].categories[{j}]"),
                            format!(
                                "{key:?} has no retention_days (nor has a category above it), which keep_until_retention needs"
                            ),
                        );
                    }
                }
            }
        }
        for (i, c) in doc.data_categories.iter().enumerate() {
            if c.retention_days == Some(0) {
                push(format!("data_categories[{i}].retention_days"), "must be at least 1".into());
            }
        }
        let language = doc.language();
        if !is_language_tag(language) {
            push("language".into(), format!("{language:?} is not a language tag such as \"en\" or \"de\""));
        }
        let named = |has_description| text::Kind::Named { has_description };
        let entries =
            doc.data_categories
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (format!("data_categories[{i}]"), &c.translations, named(c.description.is_some()))
                })
                .chain(doc.purposes.iter().enumerate().map(|(i, p)| {
                    (format!("purposes[{i}]"), &p.translations, named(p.description.is_some()))
                }))
                .chain(doc.channels.iter().enumerate().map(|(i, c)| {
                    (format!("channels[{i}]"), &c.translations, named(c.description.is_some()))
                }))
                .chain(doc.recipients.iter().enumerate().map(|(i, r)| {
                    (format!("recipients[{i}]"), &r.translations, named(r.description.is_some()))
                }))
                .chain(doc.collection_points.iter().enumerate().map(|(i, c)| {
                    (format!("collection_points[{i}]"), &c.translations, named(c.description.is_some()))
                }))
                .chain(doc.jurisdictions.iter().enumerate().map(|(i, j)| {
                    (format!("jurisdictions[{i}]"), &j.translations, named(j.description.is_some()))
                }));
        for (path, translations, kind) in entries {
            text::check(&path, translations, kind, language, &mut push);
        }
        for (i, n) in doc.notices.iter().enumerate() {
            let own = n.language.as_deref().unwrap_or(language);
            text::check(&format!("notices[{i}]"), &n.translations, text::Kind::Notice, own, &mut push);
            if n.language.as_deref().is_some_and(|l| !is_language_tag(l)) {
                push(format!("notices[{i}].language"), format!("{own:?} is not a language tag"));
            }
            // A notice in several languages has one in the catalogue's, which a page without its reader's
            // language falls back to.
            let has_catalogue_language = own.eq_ignore_ascii_case(language)
                || n.translations.keys().any(|tag| tag.eq_ignore_ascii_case(language));
            if !n.translations.is_empty() && !has_catalogue_language {
                push(
                    format!("notices[{i}].translations"),
                    format!("a translated notice needs its text in the catalogue's language {language:?}"),
                );
            }
            if n.text.trim().is_empty() {
                push(format!("notices[{i}].text"), "must not be empty".into());
            }
            if n.title.trim().is_empty() {
                push(format!("notices[{i}].title"), "must not be empty".into());
            }
        }

        frameworks::check(&doc, &mut push);
        jurisdictions::check(&doc, &mut push);
        identifiers::check(&doc, &mut push);
        for (i, p) in doc.purposes.iter().enumerate() {
            let mut kinds = HashSet::new();
            for (j, kind) in p.kinds.iter().enumerate() {
                if !kinds.insert(kind) {
                    push(format!("purposes[{i}].kinds[{j}]"), format!("duplicate kind {:?}", kind.as_str()));
                }
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            categories: index_of(&doc.data_categories, |c| &c.key),
            purposes: index_of(&doc.purposes, |p| &p.key),
            channels: index_of(&doc.channels, |c| &c.key),
            recipients: index_of(&doc.recipients, |r| &r.key),
            notices: index_of(&doc.notices, |n| &n.key),
            collection_points: index_of(&doc.collection_points, |c| &c.key),
            jurisdictions: index_of(&doc.jurisdictions, |j| &j.key),
            doc,
        })
    }

    pub fn document(&self) -> &CatalogDocument {
        &self.doc
    }

    pub fn category(&self, key: &str) -> Option<&DataCategory> {
        self.categories.get(key).map(|&i| &self.doc.data_categories[i])
    }

    pub fn purpose(&self, key: &str) -> Option<&Purpose> {
        self.purposes.get(key).map(|&i| &self.doc.purposes[i])
    }

    pub fn channel(&self, key: &str) -> Option<&Channel> {
        self.channels.get(key).map(|&i| &self.doc.channels[i])
    }

    pub fn recipient(&self, key: &str) -> Option<&Recipient> {
        self.recipients.get(key).map(|&i| &self.doc.recipients[i])
    }

    pub fn notice(&self, key: &str) -> Option<&Notice> {
        self.notices.get(key).map(|&i| &self.doc.notices[i])
    }

    pub fn collection_point(&self, key: &str) -> Option<&CollectionPoint> {
        self.collection_points.get(key).map(|&i| &self.doc.collection_points[i])
    }

    /// The catalogue's declaration of identifier type `key` (a built-in type has none).
    pub fn identifier_type(&self, key: &str) -> Option<&IdentifierType> {
        self.doc.identifier_types.iter().find(|t| t.key == key)
    }

    pub fn jurisdiction(&self, key: &str) -> Option<&Jurisdiction> {
        self.jurisdictions.get(key).map(|&i| &self.doc.jurisdictions[i])
    }

    /// How many days records of category `key` are kept: its own `retention_days`, else that of the nearest
    /// category above it; `None` when none has one (kept until deleted).
    pub fn retention_days(&self, key: &str) -> Option<u32> {
        std::iter::successors(Some(key), |k| parent_key(k)).find_map(|k| self.category(k)?.retention_days)
    }

    /// Whether `key` is `ancestor` or lies under it in the category hierarchy.
    pub fn category_within(key: &str, ancestor: &str) -> bool {
        key == ancestor
            || (key.len() > ancestor.len()
                && key.starts_with(ancestor)
                && key.as_bytes()[ancestor.len()] == b'.')
    }

    /// Checks one requested consent change against the catalogue: known purpose, an action that fits the
    /// purpose's legal basis, and a scope inside what the purpose declares.
    pub fn check_change(&self, purpose: &str, action: Action, scope: &Scope) -> Result<(), ChangeError> {
        let p = self.purpose(purpose).ok_or(ChangeError::UnknownPurpose)?;
        if p.basis != Basis::Consent && !matches!(action, Action::Object | Action::Restrict) {
            return Err(ChangeError::ActionNotForBasis { basis: p.basis });
        }
        if matches!(action, Action::Expire) {
            return Err(ChangeError::SystemOnlyAction);
        }
        for c in &scope.categories {
            if self.category(c).is_none() {
                return Err(ChangeError::UnknownCategory(c.clone()));
            }
            if !p.categories.is_empty() && !p.categories.iter().any(|d| Self::category_within(c, d)) {
                return Err(ChangeError::OutsidePurpose { field: "categories", key: c.clone() });
            }
        }
        for ch in &scope.channels {
            if self.channel(ch).is_none() {
                return Err(ChangeError::UnknownChannel(ch.clone()));
            }
            if !p.channels.is_empty() && !p.channels.contains(ch) {
                return Err(ChangeError::OutsidePurpose { field: "channels", key: ch.clone() });
            }
        }
        for r in &scope.recipients {
            if self.recipient(r).is_none() {
                return Err(ChangeError::UnknownRecipient(r.clone()));
            }
            if !p.recipients.is_empty() && !p.recipients.contains(r) {
                return Err(ChangeError::OutsidePurpose { field: "recipients", key: r.clone() });
            }
        }
        Ok(())
    }
}

/// Why a requested consent change does not fit the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("unknown purpose")]
    UnknownPurpose,
    #[error("unknown data category {0:?}")]
    UnknownCategory(String),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("unknown recipient {0:?}")]
    UnknownRecipient(String),
    #[error("the purpose's legal basis is {}; only `object` and `restrict` apply to it", basis.as_str())]
    ActionNotForBasis { basis: Basis },
    #[error("`expire` is recorded by Consentry itself when a grant lapses")]
    SystemOnlyAction,
    #[error("{key:?} is not among the {field} the purpose declares")]
    OutsidePurpose { field: &'static str, key: String },
}

#[cfg(test)]
mod tests;
