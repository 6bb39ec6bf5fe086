//! The catalogue's `identifier_types`: kinds of identifiers a brand attaches to people beyond the built-in
//! ones (`email`, `phone`, `account`, `device_serial`, `advertising_id`), such as a loyalty card number or
//! a customer number of a sister company.
//!
//! Each declares its key (the `type` the API takes: a lower-case letter, then up to 39 lower-case letters,
//! digits and underscores, never a built-in type's) and how a value is normalised before it is indexed, so
//! that one identifier has one stored form: `trim` (the default: surrounding white space removed),
//! `lowercase` (trimmed and lower-cased, for values compared without case) or `none` (kept exactly as
//! given). Whatever the rule, a value is 1 to 256 characters without control characters.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::CatalogDocument;

/// The identifier types every installation knows, with rules of their own in the service layer.
pub const BUILT_IN_IDENTIFIER_TYPES: [&str; 5] =
    ["email", "phone", "account", "device_serial", "advertising_id"];

/// Longest key of an identifier type.
const MAX_KEY: usize = 40;

/// A kind of identifier the catalogue declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierType {
    /// The `type` of the identifier in the API, e.g. `loyalty_card`.
    pub key: String,
    /// How a value becomes its one stored form.
    #[serde(default)]
    pub normalise: Normalisation,
}

/// How a value of a catalogue-defined identifier type is normalised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// Surrounding white space removed.
    #[default]
    Trim,
    /// Trimmed and lower-cased (Unicode's lower case).
    Lowercase,
    /// Kept exactly as given.
    None,
}

impl Normalisation {
    /// `value` in its stored form under this rule.
    pub fn apply(self, value: &str) -> String {
        match self {
            Normalisation::Trim => value.trim().to_owned(),
            Normalisation::Lowercase => value.trim().to_lowercase(),
            Normalisation::None => value.to_owned(),
        }
    }
}

/// Whether `key` has the syntax of an identifier type's key.
pub fn is_identifier_type_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= MAX_KEY
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks `identifier_types`: each key's syntax, no built-in type declared again, no key twice.
pub(super) fn check(doc: &CatalogDocument, push: &mut impl FnMut(String, String)) {
    let mut seen = HashSet::new();
    for (i, t) in doc.identifier_types.iter().enumerate() {
        let path = format!("identifier_types[{i}].key");
        let key = t.key.as_str();
        if !is_identifier_type_key(key) {
            push(
                path,
                format!(
                    "invalid identifier type {key:?}: a lower-case letter, then up to {} lower-case letters, digits or underscores",
                    MAX_KEY - 1
                ),
            );
        } else if BUILT_IN_IDENTIFIER_TYPES.contains(&key) {
            push(path, format!("{key:?} is a built-in identifier type; it cannot be declared again"));
        } else if !seen.insert(key) {
            push(path, format!("duplicate identifier type {key:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_rules() {
        for good in ["loyalty_card", "a", "crm2", &"x".repeat(40)] {
            assert!(is_identifier_type_key(good), "{good}");
        }
        for bad in ["", "Loyalty", "2fa", "_x", "loyalty-card", "a:b", "käse", &"x".repeat(41)] {
            assert!(!is_identifier_type_key(bad), "{bad}");
        }
        assert_eq!(Normalisation::Trim.apply("  AB 1 "), "AB 1");
        assert_eq!(Normalisation::Lowercase.apply("  ÄB 1 "), "äb 1");
        assert_eq!(Normalisation::None.apply("  AB 1 "), "  AB 1 ");
    }

    #[test]
    fn the_catalogue_checks_its_types() {
        let doc: CatalogDocument = serde_json::from_value(serde_json::json!({
            "identifier_types": [
                {"key": "loyalty_card"},
                {"key": "crm_id", "normalise": "lowercase"},
                {"key": "loyalty_card", "normalise": "none"},
                {"key": "email"},
                {"key": "Bad-Key"}
            ]
        }))
        .expect("parses");
        assert_eq!(doc.identifier_types[1].normalise, Normalisation::Lowercase);
        assert_eq!(doc.identifier_types[0].normalise, Normalisation::Trim, "the default");
        let mut problems = Vec::new();
        check(&doc, &mut |path, message| problems.push((path, message)));
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["identifier_types[2].key", "identifier_types[3].key", "identifier_types[4].key"],
            "{problems:?}"
        );
        let unknown = serde_json::from_value::<CatalogDocument>(serde_json::json!({
            "identifier_types": [{"key": "x", "normalize": "trim"}]
        }));
        assert!(unknown.is_err(), "unknown fields are refused");
        let rule = serde_json::from_value::<CatalogDocument>(serde_json::json!({
            "identifier_types": [{"key": "x", "normalise": "upper"}]
        }));
        assert!(rule.is_err(), "unknown rules are refused");
    }
}
