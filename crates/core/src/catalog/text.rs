//! The catalogue's words in more than one language.
//!
//! Every entry's texts (`name`, `description`; a notice's `title` and `text`) are written in the
//! catalogue's `language` (default `en`), so documents written before translations existed keep their
//! meaning; each entry may add a `translations:` section with the same texts in other languages:
//!
//! ```yaml
//! language: en
//! purposes:
//!   - key: analytics
//!     name: Usage analytics
//!     translations:
//!       de: {name: Nutzungsanalyse}
//! ```
//!
//! A text missing in a language falls back to the catalogue's language. A notice is versioned per
//! language: each language's text has its own SHA-256 and its own version number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The language of a catalogue that does not name one.
pub const DEFAULT_LANGUAGE: &str = "en";

/// One entry's texts in one other language. Which fields an entry may translate depends on its kind
/// (checked by validation): `name` and `description` for categories, purposes, channels, recipients and
/// collection points, `title` and `text` for notices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// An entry's translations, by language tag.
pub type Translations = BTreeMap<String, Translation>;

/// The translation of `translations` for `lang`: the exact tag, else its primary language (`de-AT` → `de`).
pub fn translation<'a>(translations: &'a Translations, lang: &str) -> Option<&'a Translation> {
    if let Some(t) = translations.get(lang) {
        return Some(t);
    }
    let primary = primary(lang);
    translations
        .iter()
        .find(|(tag, _)| tag.eq_ignore_ascii_case(lang) || primary_eq(tag, primary))
        .map(|(_, t)| t)
}

/// The text in `lang` picked by `field` from `translations`, else `base` (the catalogue's language).
pub fn pick<'a>(
    base: &'a str,
    translations: &'a Translations,
    lang: &str,
    field: impl Fn(&'a Translation) -> Option<&'a String>,
) -> &'a str {
    translation(translations, lang).and_then(field).map_or(base, String::as_str)
}

/// Whether `a` and `b` are the same language (by primary subtag: `de-AT` is `de`).
pub fn same_language(a: &str, b: &str) -> bool {
    primary_eq(a, primary(b))
}

fn primary(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

fn primary_eq(tag: &str, primary_subtag: &str) -> bool {
    primary(tag).eq_ignore_ascii_case(primary_subtag)
}

/// Whether `tag` is a BCP 47 language tag as catalogues use them: 2-3 letters, then subtags of 1-8 letters
/// or digits, hyphen-separated (`en`, `de`, `de-CH`, `zh-Hant`).
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Which texts an entry has, for validation: names of the fields it may translate.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// `name` and `description`.
    Named { has_description: bool },
    /// `title` and `text`.
    Notice,
}

/// Checks one entry's translations: language tags, no translation in the catalogue's own language (its
/// texts are the entry's own fields), only fields the entry has, none empty.
pub(super) fn check(
    path: &str,
    translations: &Translations,
    kind: Kind,
    language: &str,
    push: &mut impl FnMut(String, String),
) {
    for (tag, t) in translations {
        let at = format!("{path}.translations.{tag}");
        if !is_language_tag(tag) {
            push(at.clone(), format!("{tag:?} is not a language tag such as \"de\" or \"de-CH\""));
        }
        if tag.eq_ignore_ascii_case(language) {
            push(
                at.clone(),
                format!("the catalogue's language is {language:?}: its texts are the entry's own fields"),
            );
        }
        let fields: [(&str, &Option<String>, bool); 4] = match kind {
            Kind::Named { has_description } => [
                ("name", &t.name, true),
                ("description", &t.description, has_description),
                ("title", &t.title, false),
                ("text", &t.text, false),
            ],
            Kind::Notice => [
                ("title", &t.title, true),
                ("text", &t.text, true),
                ("name", &t.name, false),
                ("description", &t.description, false),
            ],
        };
        for (field, value, allowed) in fields {
            match value {
                Some(_) if !allowed => push(
                    format!("{at}.{field}"),
                    format!("the entry has no {field} in the catalogue's language {language:?} to translate"),
                ),
                Some(v) if v.trim().is_empty() => push(format!("{at}.{field}"), "must not be empty".into()),
                _ => {}
            }
        }
        if matches!(kind, Kind::Notice) && t.text.is_none() {
            push(format!("{at}.text"), "a notice's translation needs its text".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "de", "de-CH", "zh-Hant", "gsw"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "english", "de_CH", "de-", "1a", "de-123456789"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn a_text_falls_back_to_the_primary_language_then_the_catalogue_language() {
        let mut tr = Translations::new();
        tr.insert("de".into(), Translation { name: Some("Analyse".into()), ..Translation::default() });
        let name = |lang| pick("Analytics", &tr, lang, |t| t.name.as_ref());
        assert_eq!(name("de"), "Analyse");
        assert_eq!(name("de-AT"), "Analyse");
        assert_eq!(name("en"), "Analytics");
        assert_eq!(name("fr"), "Analytics");
        assert_eq!(pick("Fallback", &tr, "de", |t| t.description.as_ref()), "Fallback");
        assert!(same_language("de-AT", "de") && !same_language("en", "de"));
    }
}
