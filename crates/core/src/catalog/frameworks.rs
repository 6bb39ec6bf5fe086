//! The catalogue's `frameworks` section: how the advertising industry's consent signals (IAB TCF purposes,
//! special features and vendors; the GPP's US fields; Google Consent Mode's parameters) map to the
//! catalogue's purposes, categories and recipients, and what Consentry writes when it encodes a TC string.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Basis, CatalogDocument};

/// How each consent signal maps to the catalogue. A signal without a mapping records nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frameworks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcf: Option<TcfFramework>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpp: Option<GppFramework>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_mode: Option<ConsentModeFramework>,
}

/// IAB Europe TCF: purposes and special features to catalogue purposes, vendors to recipients, and the
/// header fields of the TC strings Consentry encodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcfFramework {
    /// The CMP id the IAB assigned to the brand's consent tool, written into encoded TC strings.
    pub cmp_id: u16,
    #[serde(default)]
    pub cmp_version: u16,
    /// The Global Vendor List version the mapping was written against.
    #[serde(default = "one")]
    pub vendor_list_version: u16,
    /// The TCF policy version written (5: TCF 2.3).
    #[serde(default = "five")]
    pub tcf_policy_version: u8,
    /// The publisher's country (two letters; `AA` for unknown).
    #[serde(default = "aa")]
    pub publisher_cc: String,
    /// TCF purpose id (1 to 24) → catalogue purposes with basis consent. A catalogue purpose is granted
    /// when every TCF purpose mapped to it has consent in the string, denied otherwise.
    #[serde(default)]
    pub purposes: BTreeMap<u8, Vec<String>>,
    /// TCF special feature id (1 to 12) → catalogue purposes with basis consent, as for purposes.
    #[serde(default)]
    pub special_features: BTreeMap<u8, Vec<String>>,
    /// TCF vendor id (1 to 65535) → a recipient. A mapped vendor without consent in the string is denied
    /// for the mapped purposes that name the recipient.
    #[serde(default)]
    pub vendors: BTreeMap<u16, String>,
}

fn one() -> u16 {
    1
}
fn five() -> u8 {
    5
}
fn aa() -> String {
    "AA".to_owned()
}

/// Catalogue purposes and, optionally, the categories a signal's field speaks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalTarget {
    pub purposes: Vec<String>,
    /// Empty: the whole purpose.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// The GPP's US fields. Opt-outs (1: opted out) withdraw the purposes (object, for a purpose not based on
/// consent) and are read from every US section that has the field, `uspv1`'s `opt_out_sale` and a GPC
/// sub-section's `gpc` (which opts out of sale and sharing) included. Consents (1: no consent, 2: consent)
/// deny or grant purposes with basis consent and are read from `usnat`, whose category numbering they use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GppFramework {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_opt_out: Option<SignalTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing_opt_out: Option<SignalTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeted_advertising_opt_out: Option<SignalTarget>,
    /// `usnat` `SensitiveDataProcessing` by the IAB's category number (1 to 16).
    #[serde(default)]
    pub sensitive_data_processing: BTreeMap<u8, SignalTarget>,
    /// `usnat` `KnownChildSensitiveDataConsents` by number (1 to 3).
    #[serde(default)]
    pub known_child_sensitive_data_consents: BTreeMap<u8, SignalTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data_consents: Option<SignalTarget>,
}

/// Google Consent Mode v2: each parameter is `granted` when every purpose listed is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentModeFramework {
    #[serde(default)]
    pub ad_storage: Vec<String>,
    #[serde(default)]
    pub analytics_storage: Vec<String>,
    #[serde(default)]
    pub ad_user_data: Vec<String>,
    #[serde(default)]
    pub ad_personalization: Vec<String>,
}

impl ConsentModeFramework {
    /// The four parameters in Google's order, with their purposes.
    pub fn parameters(&self) -> [(&'static str, &[String]); 4] {
        [
            ("ad_storage", &self.ad_storage),
            ("analytics_storage", &self.analytics_storage),
            ("ad_user_data", &self.ad_user_data),
            ("ad_personalization", &self.ad_personalization),
        ]
    }
}

/// Checks the section against the rest of the document: ids in range, purposes, categories and recipients
/// the catalogue defines, and consent purposes wherever a signal grants.
pub(super) fn check(doc: &CatalogDocument, push: &mut impl FnMut(String, String)) {
    let Some(f) = &doc.frameworks else { return };
    let purpose = |key: &str| doc.purposes.iter().find(|p| p.key == key);
    let purposes =
        |path: String, keys: &[String], consent_only: bool, push: &mut dyn FnMut(String, String)| {
            if keys.is_empty() {
                push(path.clone(), "name at least one purpose".into());
            }
            for (i, key) in keys.iter().enumerate() {
                match purpose(key) {
                    None => push(format!("{path}[{i}]"), format!("unknown purpose {key:?}")),
                    Some(p) if consent_only && p.basis != Basis::Consent => push(
                        format!("{path}[{i}]"),
                        format!(
                            "{key:?} has basis {}; a signal can only grant or deny consent",
                            p.basis.as_str()
                        ),
                    ),
                    Some(_) => {}
                }
            }
        };
    if let Some(t) = &f.tcf {
        let at = "frameworks.tcf";
        if t.cmp_id > 4095 || t.cmp_version > 4095 || t.vendor_list_version > 4095 {
            push(
                format!("{at}.cmp_id"),
                "cmp_id, cmp_version and vendor_list_version are at most 4095".into(),
            );
        }
        if !(1..=63).contains(&t.tcf_policy_version) {
            push(format!("{at}.tcf_policy_version"), "must lie between 1 and 63".into());
        }
        if t.publisher_cc.len() != 2 || !t.publisher_cc.bytes().all(|b| b.is_ascii_uppercase()) {
            push(format!("{at}.publisher_cc"), "must be two capital letters".into());
        }
        for (id, keys) in &t.purposes {
            if !(1..=24).contains(id) {
                push(format!("{at}.purposes.{id}"), "TCF purposes are numbered 1 to 24".into());
            }
            purposes(format!("{at}.purposes.{id}"), keys, true, push);
        }
        for (id, keys) in &t.special_features {
            if !(1..=12).contains(id) {
                push(
                    format!("{at}.special_features.{id}"),
                    "TCF special features are numbered 1 to 12".into(),
                );
            }
            purposes(format!("{at}.special_features.{id}"), keys, true, push);
        }
        for (id, recipient) in &t.vendors {
            if *id == 0 {
                push(format!("{at}.vendors.0"), "TCF vendor ids start at 1".into());
            }
            if !doc.recipients.iter().any(|r| r.key == *recipient) {
                push(format!("{at}.vendors.{id}"), format!("unknown recipient {recipient:?}"));
            }
        }
    }
    if let Some(g) = &f.gpp {
        let at = "frameworks.gpp";
        let target =
            |path: String, t: &SignalTarget, consent_only: bool, push: &mut dyn FnMut(String, String)| {
                purposes(format!("{path}.purposes"), &t.purposes, consent_only, push);
                for (i, c) in t.categories.iter().enumerate() {
                    if !doc.data_categories.iter().any(|d| d.key == *c) {
                        push(format!("{path}.categories[{i}]"), format!("unknown data category {c:?}"));
                    }
                    // Each purpose must declare the category (or no categories at all), else a change could
                    // not be recorded.
                    for key in &t.purposes {
                        let outside = purpose(key).is_some_and(|p| {
                            !p.categories.is_empty()
                                && !p.categories.iter().any(|d| super::Catalog::category_within(c, d))
                        });
                        if outside {
                            push(
                                format!("{path}.categories[{i}]"),
                                format!("{c:?} is not among the categories of {key:?}"),
                            );
                        }
                    }
                }
            };
        for (name, t) in [
            ("sale_opt_out", &g.sale_opt_out),
            ("sharing_opt_out", &g.sharing_opt_out),
            ("targeted_advertising_opt_out", &g.targeted_advertising_opt_out),
        ] {
            if let Some(t) = t {
                target(format!("{at}.{name}"), t, false, push);
            }
        }
        for (name, map, max) in [
            ("sensitive_data_processing", &g.sensitive_data_processing, 16),
            ("known_child_sensitive_data_consents", &g.known_child_sensitive_data_consents, 3),
        ] {
            for (n, t) in map {
                if !(1..=max).contains(n) {
                    push(format!("{at}.{name}.{n}"), format!("usnat numbers these 1 to {max}"));
                }
                target(format!("{at}.{name}.{n}"), t, true, push);
            }
        }
        if let Some(t) = &g.personal_data_consents {
            target(format!("{at}.personal_data_consents"), t, true, push);
        }
    }
    if let Some(c) = &f.consent_mode {
        for (name, keys) in c.parameters() {
            if !keys.is_empty() {
                purposes(format!("frameworks.consent_mode.{name}"), keys, false, push);
            }
        }
    }
}
