//! The catalogue's validation, its default document and its translations.
use super::*;

fn problems_of(yaml: &str) -> Vec<CatalogProblem> {
    let doc = CatalogDocument::from_yaml(yaml).expect("parses");
    Catalog::validate(doc).err().unwrap_or_default()
}

#[test]
fn default_catalogue_is_valid_and_complete() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    for c in [
        "user.contact.email",
        "user.contact.phone",
        "user.contact.address",
        "user.demographic.date_of_birth",
        "user.biometric.voice",
        "user.location.precise",
        "user.device.telemetry",
        "user.behavior.purchase_history",
    ] {
        let cat = catalog.category(c).unwrap_or_else(|| panic!("category {c}"));
        assert!(cat.dpv.is_some(), "{c} names its DPV term");
    }
    assert!(catalog.category("user.biometric.voice").is_some_and(|c| c.sensitive));
    for (p, basis) in [
        ("service.provision", Basis::Contract),
        ("service.improvement", Basis::LegitimateInterest),
        ("marketing.direct", Basis::Consent),
        ("marketing.personalised_offers", Basis::Consent),
        ("analytics", Basis::Consent),
        ("third_party.sharing", Basis::Consent),
    ] {
        let purpose = catalog.purpose(p).unwrap_or_else(|| panic!("purpose {p}"));
        assert_eq!(purpose.basis, basis, "{p}");
        assert!(purpose.dpv.is_some(), "{p} names its DPV term");
        if basis == Basis::Consent {
            assert_eq!(purpose.notice.as_deref(), Some(p), "notice keyed like its purpose");
        }
    }
    assert!(catalog.purpose("third_party.sharing").is_some_and(|p| p.sale_or_sharing));
    for ch in ["email", "sms", "push", "in_app", "on_device", "voice", "postal", "phone"] {
        assert!(catalog.channel(ch).is_some(), "channel {ch}");
    }
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let problems = problems_of(
        r#"
data_categories:
  - {key: user.contact, name: Contact}
  - {key: User, name: Bad}
  - {key: user.contact, name: Dup}
purposes:
  - {key: marketing, name: M, basis: consent}
  - {key: analytics, name: A, basis: consent, notice: nope, channels: [pigeon], categories: [user.x]}
channels: []
"#,
    );
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"data_categories[0].key"), "unknown parent: {paths:?}");
    assert!(paths.contains(&"data_categories[1].key"), "bad syntax: {paths:?}");
    assert!(paths.contains(&"data_categories[2].key"), "duplicate: {paths:?}");
    assert!(paths.contains(&"purposes[0].notice"), "consent without notice: {paths:?}");
    assert!(paths.contains(&"purposes[1].notice"), "unknown notice: {paths:?}");
    assert!(paths.contains(&"purposes[1].channels[0]"), "unknown channel: {paths:?}");
    assert!(paths.contains(&"purposes[1].categories[0]"), "unknown category: {paths:?}");
}

#[test]
fn on_withdraw_defaults_to_delete_and_keeping_needs_a_retention() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    assert!(catalog.document().purposes.iter().all(|p| p.on_withdraw == OnWithdraw::Delete));
    assert_eq!(catalog.retention_days("user.biometric.voice"), Some(548));
    assert_eq!(catalog.retention_days("user.contact"), None);
    let base = r#"
data_categories:
  - {key: user, name: U}
  - {key: user.logs, name: L, retention_days: 30}
  - {key: user.logs.audio, name: A}
  - {key: user.notes, name: N}
notices:
  - {key: n, title: T, language: en, text: Text}
purposes:
"#;
    let ok = format!(
        "{base}  - {{key: p, name: P, basis: consent, notice: n, categories: [user.logs.audio], on_withdraw: keep_until_retention}}\n"
    );
    let catalog = Catalog::validate(CatalogDocument::from_yaml(&ok).expect("parses")).expect("valid");
    assert_eq!(catalog.purpose("p").map(|p| p.on_withdraw), Some(OnWithdraw::KeepUntilRetention));
    assert_eq!(catalog.retention_days("user.logs.audio"), Some(30), "inherited from above");
    let serialised = serde_json::to_string(catalog.document()).expect("json");
    assert!(serialised.contains(r#""on_withdraw":"keep_until_retention""#), "{serialised}");
    let paths = |yaml: String| -> Vec<String> { problems_of(&yaml).into_iter().map(|p| p.path).collect() };
    let no_retention = format!(
        "{base}  - {{key: p, name: P, basis: consent, notice: n, categories: [user.notes], on_withdraw: keep_until_retention}}\n"
    );
    assert_eq!(paths(no_retention), vec!["purposes[0].categories[0]"]);
    let unbounded = format!(
        "{base}  - {{key: p, name: P, basis: consent, notice: n, on_withdraw: keep_until_retention}}\n"
    );
    assert_eq!(paths(unbounded), vec!["purposes[0].on_withdraw"]);
    assert!(
        CatalogDocument::from_yaml(&format!(
            "{base}  - {{key: p, name: P, basis: contract, on_withdraw: never}}\n"
        ))
        .is_err()
    );
    let zero = "data_categories:\n  - {key: user, name: U, retention_days: 0}\n".to_owned();
    assert_eq!(paths(zero), vec!["data_categories[0].retention_days"]);
}

#[test]
fn unknown_fields_are_rejected() {
    let err = CatalogDocument::from_yaml("purposes:\n  - {key: a, name: A, basis: contract, chanels: []}\n");
    assert!(err.is_err());
    assert!(CatalogDocument::from_json(br#"{"purposess": []}"#).is_err());
}

#[test]
fn category_hierarchy() {
    assert!(Catalog::category_within("user.contact.email", "user.contact"));
    assert!(Catalog::category_within("user.contact", "user.contact"));
    assert!(!Catalog::category_within("user.contactless", "user.contact"));
    assert!(!Catalog::category_within("user", "user.contact"));
}

#[test]
fn notice_hash_is_sha256_hex() {
    assert_eq!(notice_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/// Every text of the default catalogue in English and German, the German one differing from the English
/// except for names (the brand's).
#[test]
fn default_catalogue_speaks_english_and_german() {
    let doc = CatalogDocument::default_catalog();
    assert_eq!(doc.language(), "en");
    let named = doc
        .data_categories
        .iter()
        .map(|c| (&c.key, &c.name, &c.description, &c.translations))
        .chain(doc.purposes.iter().map(|p| (&p.key, &p.name, &p.description, &p.translations)))
        .chain(doc.channels.iter().map(|c| (&c.key, &c.name, &c.description, &c.translations)))
        .chain(doc.recipients.iter().map(|r| (&r.key, &r.name, &r.description, &r.translations)))
        .chain(doc.collection_points.iter().map(|c| (&c.key, &c.name, &c.description, &c.translations)));
    for (key, name, description, translations) in named {
        let de = translations.get("de").unwrap_or_else(|| panic!("{key} in German"));
        assert!(de.name.as_ref().is_some_and(|n| n != name || key == "brand"), "{key}'s German name");
        assert_eq!(de.description.is_some(), description.is_some(), "{key}'s German description");
        if description.is_some() {
            assert_ne!(de.description.as_ref(), description.as_ref(), "{key}'s German description");
        }
    }
    for n in &doc.notices {
        let texts = n.texts(doc.language());
        let languages: Vec<&str> = texts.iter().map(|t| t.language).collect();
        assert_eq!(languages, ["en", "de"], "{}", n.key);
        assert_ne!(texts[0].text, texts[1].text, "{}", n.key);
        assert_ne!(notice_sha256(texts[0].text), notice_sha256(texts[1].text), "{}", n.key);
    }
}

#[test]
fn texts_in_a_language_fall_back_to_the_catalogues() {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let p = catalog.purpose("analytics").expect("analytics");
    assert_eq!(p.name_in("de"), "Nutzungsanalyse");
    assert_eq!(p.name_in("de-CH"), "Nutzungsanalyse");
    assert_eq!(p.name_in("en"), "Usage analytics");
    assert_eq!(p.name_in("fr"), "Usage analytics");
    assert!(p.description_in("de").is_some_and(|d| d.starts_with("Wir messen")));
}

#[test]
fn translations_are_checked() {
    // A document written before translations existed is still valid and keeps its meaning.
    let legacy = "notices:\n  - {key: n, title: T, language: de, text: Text}\n";
    assert_eq!(problems_of(legacy), vec![]);
    let doc = CatalogDocument::from_yaml(legacy).expect("parses");
    assert_eq!(doc.notices[0].texts(doc.language())[0].language, "de");
    let paths = |yaml: &str| -> Vec<String> { problems_of(yaml).into_iter().map(|p| p.path).collect() };
    assert_eq!(
        paths(
            r#"
language: english
channels:
  - {key: a, name: A, translations: {de: {name: " "}, xx_y: {name: X}, en: {name: E}}}
  - {key: b, name: B, translations: {de: {name: B, description: Nope, title: T}}}
notices:
  - {key: n, title: T, language: de, text: Text, translations: {fr: {title: T, text: Texte}}}
  - {key: m, title: T, text: Text, translations: {de: {title: T}}}
"#
        ),
        vec![
            "language",
            "channels[0].translations.de.name",
            "channels[0].translations.xx_y",
            "channels[1].translations.de.description",
            "channels[1].translations.de.title",
            "notices[0].translations",
            "notices[1].translations.de.text",
        ]
    );
    assert!(
        CatalogDocument::from_yaml("channels:\n  - {key: a, name: A, translations: {de: {nam: A}}}\n")
            .is_err()
    );
    // Translations survive the stored JSON.
    let doc = CatalogDocument::default_catalog();
    let json = serde_json::to_vec(&doc).expect("json");
    assert_eq!(CatalogDocument::from_json(&json).expect("parses"), doc);
}
