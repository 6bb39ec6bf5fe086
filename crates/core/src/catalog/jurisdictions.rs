//! The catalogue's `jurisdictions`: the places whose consent rules the engine applies, each with its regime
//! per kind of purpose and its age of digital consent.
//!
//! A purpose declares its kinds (`kinds: [sale]`, `[targeted_advertising]`, `[sensitive_data]`, ...); a
//! jurisdiction says, per kind, whether the law there lets the purpose run until the person opts out
//! (`opt_out`, as US state laws do for sale, sharing and targeted advertising) or only with consent
//! (`opt_in`, as under the GDPR). A purpose is under `opt_out` in a place only when it has at least one
//! kind and every one of its kinds is `opt_out` there; anything else (no kinds, a kind the place does not
//! list) is `opt_in`, today's default deny.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CatalogDocument, Translations};

/// What a purpose does, as privacy laws tell purposes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurposeKind {
    /// Selling personal data (for money or other valuable consideration).
    Sale,
    /// Sharing for cross-context behavioural advertising (the CCPA's "sharing").
    Sharing,
    /// Targeted advertising from activities across others' sites and apps.
    TargetedAdvertising,
    /// Profiling in furtherance of decisions with legal or similarly significant effects.
    Profiling,
    /// Processing sensitive data (special categories, precise geolocation, children's data, ...).
    SensitiveData,
}

impl PurposeKind {
    pub const ALL: [PurposeKind; 5] = [
        PurposeKind::Sale,
        PurposeKind::Sharing,
        PurposeKind::TargetedAdvertising,
        PurposeKind::Profiling,
        PurposeKind::SensitiveData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PurposeKind::Sale => "sale",
            PurposeKind::Sharing => "sharing",
            PurposeKind::TargetedAdvertising => "targeted_advertising",
            PurposeKind::Profiling => "profiling",
            PurposeKind::SensitiveData => "sensitive_data",
        }
    }
}

/// Whether a kind of purpose needs consent first or runs until the person opts out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Nothing without a grant (the GDPR's consent; Consentry's default deny).
    #[default]
    OptIn,
    /// Allowed until the person opts out (withdraws, objects, denies, or sends GPC).
    OptOut,
}

impl Regime {
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::OptIn => "opt_in",
            Regime::OptOut => "opt_out",
        }
    }
}

/// One place and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    /// ISO 3166-1 alpha-2 (`DE`) or ISO 3166-2 (`US-CA`).
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The age from which a person consents alone (GDPR Art. 8 and its national choices); `None` where
    /// the law sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_of_digital_consent: Option<u8>,
    /// Regime per kind of purpose; a kind not listed is `opt_in`.
    #[serde(default)]
    pub regimes: BTreeMap<PurposeKind, Regime>,
    /// The entry's texts in other languages than the catalogue's.
    #[serde(default, skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

impl Jurisdiction {
    /// The regime of a purpose with `kinds` here: `opt_out` only when it has kinds and every one is
    /// `opt_out`.
    pub fn regime_of(&self, kinds: &[PurposeKind]) -> Regime {
        let all_opt_out =
            !kinds.is_empty() && kinds.iter().all(|k| self.regimes.get(k) == Some(&Regime::OptOut));
        if all_opt_out { Regime::OptOut } else { Regime::OptIn }
    }
}

/// The ISO 3166-1 alpha-2 codes officially assigned (ISO 3166 Maintenance Agency, 2026).
const ISO_3166_1: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO \
BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER \
ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN \
IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH \
MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN \
PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ \
TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Whether `key` is an assigned ISO 3166-1 alpha-2 code, or an ISO 3166-2 subdivision code of one (the
/// country, a hyphen, one to three capital letters or digits).
pub fn is_place_code(key: &str) -> bool {
    let (country, subdivision) = match key.split_once('-') {
        Some((c, s)) => (c, Some(s)),
        None => (key, None),
    };
    let assigned = country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && ISO_3166_1.split(' ').any(|c| c == country);
    assigned
        && subdivision.is_none_or(|s| {
            (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// Checks the section: place codes, duplicates, names, ages.
pub(super) fn check(doc: &CatalogDocument, push: &mut impl FnMut(String, String)) {
    let mut seen = std::collections::HashSet::new();
    for (i, j) in doc.jurisdictions.iter().enumerate() {
        let at = format!("jurisdictions[{i}]");
        if !is_place_code(&j.key) {
            push(
                format!("{at}.key"),
                format!(
                    "{:?} is not an ISO 3166-1 alpha-2 code (\"DE\") or an ISO 3166-2 code (\"US-CA\")",
                    j.key
                ),
            );
        }
        if !seen.insert(j.key.as_str()) {
            push(format!("{at}.key"), format!("duplicate key {:?}", j.key));
        }
        if j.name.trim().is_empty() {
            push(format!("{at}.name"), "must not be empty".into());
        }
        if j.age_of_digital_consent.is_some_and(|a| !(1..=21).contains(&a)) {
            push(format!("{at}.age_of_digital_consent"), "must lie between 1 and 21".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_codes() {
        assert_eq!(ISO_3166_1.split(' ').count(), 249);
        for ok in ["DE", "GB", "US-CA", "FR-75C", "BR", "CH", "ES-M"] {
            assert!(is_place_code(ok), "{ok}");
        }
        for bad in ["", "de", "UK", "EU", "XX", "US-", "US-ABCD", "US-ca", "USA", "US_CA", "D", "US-C-A"] {
            assert!(!is_place_code(bad), "{bad}");
        }
    }

    #[test]
    fn opt_out_only_when_every_kind_is() {
        let j = Jurisdiction {
            key: "US-CA".into(),
            name: "California".into(),
            description: None,
            age_of_digital_consent: Some(16),
            regimes: [(PurposeKind::Sale, Regime::OptOut), (PurposeKind::SensitiveData, Regime::OptIn)]
                .into_iter()
                .collect(),
            translations: Translations::new(),
        };
        assert_eq!(j.regime_of(&[]), Regime::OptIn);
        assert_eq!(j.regime_of(&[PurposeKind::Sale]), Regime::OptOut);
        assert_eq!(j.regime_of(&[PurposeKind::Sale, PurposeKind::SensitiveData]), Regime::OptIn);
        assert_eq!(j.regime_of(&[PurposeKind::Sale, PurposeKind::Profiling]), Regime::OptIn);
    }
}
