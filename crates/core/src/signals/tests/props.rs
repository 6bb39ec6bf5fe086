//! Property tests: every valid value round-trips through its string, and no input makes a decoder panic.

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use crate::signals::gpp::{self, GppSection, GppString};
use crate::signals::tcf::{self, Deciseconds, PublisherRestriction, PublisherTc, TcString};
use crate::signals::{UsSection, UsValue, UspV1};

fn ids<T: Ord + Copy + std::fmt::Debug + 'static>(
    s: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = Vec<T>> {
    btree_set(s, 0..max).prop_map(|s| s.into_iter().collect())
}

fn vendors() -> impl Strategy<Value = Vec<u16>> {
    prop_oneof![
        ids(1u16..200, 40),
        ids(1u16..=u16::MAX, 6),
        (1u16..3000, 1u16..400).prop_map(|(a, n)| (a..a.saturating_add(n)).collect())
    ]
}

fn letters() -> impl Strategy<Value = String> {
    "[A-Z]{2}"
}

fn tc_string() -> impl Strategy<Value = TcString> {
    let publisher = (0u8..=63).prop_flat_map(|n| {
        let custom = if n == 0 { Just(Vec::new()).boxed() } else { ids(1u8..=n, 8).boxed() };
        (ids(1u8..=24, 8), ids(1u8..=24, 8), Just(n), custom.clone(), custom)
    });
    let head = (
        0..=Deciseconds::MAX,
        0..=Deciseconds::MAX,
        0u16..4096,
        0u16..4096,
        0u8..64,
        letters(),
        0u16..4096,
        0u8..64,
    );
    let flags = (any::<bool>(), any::<bool>(), any::<bool>(), letters());
    let sets = (ids(1u8..=12, 12), ids(1u8..=24, 24), ids(1u8..=24, 24), vendors(), vendors());
    let restrictions = vec((1u8..=24, 0u8..=2, vendors()), 0..4);
    let optional =
        (proptest::option::of(vendors()), proptest::option::of(vendors()), proptest::option::of(publisher));
    (head, flags, sets, restrictions, optional).prop_map(|(h, f, s, r, o)| TcString {
        version: 2,
        created: Deciseconds::new(h.0).unwrap_or(Deciseconds::new(0).expect("0")),
        last_updated: Deciseconds::new(h.1).unwrap_or(Deciseconds::new(0).expect("0")),
        cmp_id: h.2,
        cmp_version: h.3,
        consent_screen: h.4,
        consent_language: h.5,
        vendor_list_version: h.6,
        tcf_policy_version: h.7,
        is_service_specific: f.0,
        use_non_standard_texts: f.1,
        special_feature_opt_ins: s.0,
        purposes_consent: s.1,
        purposes_li_transparency: s.2,
        purpose_one_treatment: f.2,
        publisher_cc: f.3,
        vendor_consents: s.3,
        vendor_li: s.4,
        publisher_restrictions: r
            .into_iter()
            .map(|(purpose, restriction_type, vendors)| PublisherRestriction {
                purpose,
                restriction_type,
                vendors,
            })
            .collect(),
        disclosed_vendors: o.0,
        allowed_vendors: o.1,
        publisher_tc: o.2.map(|p| PublisherTc {
            pub_purposes_consent: p.0,
            pub_purposes_li: p.1,
            num_custom_purposes: p.2,
            custom_purposes_consent: p.3,
            custom_purposes_li: p.4,
        }),
    })
}

/// A US section with random values, built through the same JSON path the API uses.
fn us_section(id: u16) -> impl Strategy<Value = UsSection> {
    let name = match id {
        7 => "usnat",
        8 => "usca",
        9 => "usva",
        10 => "usco",
        11 => "usut",
        _ => "usct",
    };
    let template =
        UsSection::from_json(id, name, serde_json::json!({"mspa_covered_transaction": 1})).expect("template");
    let gpc_allowed = id != 9 && id != 11;
    let shapes: Vec<Option<usize>> = template
        .fields
        .iter()
        .map(|(_, v)| match v {
            UsValue::Int(_) => None,
            UsValue::List(l) => Some(l.len()),
        })
        .collect();
    let values = shapes
        .into_iter()
        .map(|shape| match shape {
            None => (0u8..=2).prop_map(UsValue::Int).boxed(),
            Some(n) => vec(0u8..=2, n).prop_map(UsValue::List).boxed(),
        })
        .collect::<Vec<_>>();
    (values, proptest::option::of(any::<bool>()), 1u8..=2).prop_map(move |(values, gpc, covered)| {
        let mut s = template.clone();
        for ((name, slot), v) in s.fields.iter_mut().zip(values) {
            *slot = if *name == "mspa_covered_transaction" { UsValue::Int(covered) } else { v };
        }
        s.gpc = if gpc_allowed { gpc } else { None };
        s
    })
}

fn usp() -> impl Strategy<Value = UspV1> {
    let flag = prop_oneof![Just('Y'), Just('N'), Just('-')];
    (flag.clone(), flag.clone(), flag).prop_map(|(notice, opt_out_sale, lspa_covered)| UspV1 {
        version: 1,
        notice,
        opt_out_sale,
        lspa_covered,
    })
}

fn gpp_string() -> impl Strategy<Value = GppString> {
    let section = prop_oneof![
        tc_string().prop_map(|t| (2u16, GppSection::Tcf(Box::new(t)))),
        usp().prop_map(|u| (6u16, GppSection::Usp(u))),
        (7u16..=12).prop_flat_map(|id| us_section(id).prop_map(move |s| (id, GppSection::Us(s)))),
        (13u16..400, "[A-Za-z0-9_.-]{0,20}").prop_map(|(id, t)| (id, GppSection::Opaque(t))),
    ];
    vec(section, 0..5).prop_map(|mut sections| {
        sections.sort_by_key(|(id, _)| *id);
        sections.dedup_by_key(|(id, _)| *id);
        GppString { sections }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tc_strings_round_trip(tc in tc_string()) {
        let text = tcf::encode(&tc).expect("valid values encode");
        prop_assert_eq!(tcf::decode(&text).expect("own strings decode"), tc);
    }

    #[test]
    fn gpp_strings_round_trip(g in gpp_string()) {
        let text = gpp::encode(&g).expect("valid values encode");
        let back = gpp::decode(&text).expect("own strings decode");
        prop_assert_eq!(&back, &g);
        // And through the JSON the API speaks.
        prop_assert_eq!(GppString::from_json(g.to_json()).expect("own JSON reads"), g);
    }

    #[test]
    fn tc_json_round_trips(tc in tc_string()) {
        let json = serde_json::to_value(&tc).expect("json");
        prop_assert_eq!(serde_json::from_value::<TcString>(json).expect("reads"), tc);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = tcf::decode(&text);
        let _ = gpp::decode(&text);
    }

    #[test]
    fn random_base64url_never_panics(core in "[A-Za-z0-9_-]{0,120}", rest in "([.~][A-Za-z0-9_-]{0,60}){0,4}") {
        let text = format!("{core}{rest}");
        let _ = tcf::decode(&text);
        let _ = gpp::decode(&text);
        let _ = gpp::decode(&format!("DBACNYA~{text}~1YNN"));
        let _ = gpp::decode(&format!("DBABMA~C{text}"));
    }

    #[test]
    fn random_json_never_panics(v in json_value()) {
        let _ = GppString::from_json(v.clone());
        let _ = GppString::from_json(serde_json::json!({"sections": {"usnat": v.clone(), "tcfeuv2": v}}));
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("sale_opt_out".to_owned()),
                    Just("mspa_covered_transaction".to_owned()),
                    Just("sensitive_data_processing".to_owned()),
                    Just("gpc".to_owned()),
                    Just("sections".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
