//! The catalogue's `frameworks` mapping, both ways, on the default catalogue.

use std::collections::HashSet;

use crate::catalog::{Catalog, CatalogDocument};
use crate::ledger::{Action, Scope};
use crate::signals::apply::{self, Decide, SignalChange};
use crate::signals::gpp::GppString;
use crate::signals::tcf::{self, Deciseconds};

fn catalog(edit: impl FnOnce(&mut CatalogDocument)) -> Catalog {
    let mut doc = CatalogDocument::default_catalog();
    edit(&mut doc);
    Catalog::validate(doc).expect("valid catalogue")
}

fn change(purpose: &str, action: Action, categories: &[&str], recipients: &[&str]) -> SignalChange {
    let owned = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
    SignalChange {
        purpose: purpose.into(),
        action,
        scope: Scope::new(owned(categories), vec![], owned(recipients)),
    }
}

fn tc(purposes: &[u8], vendors: &[u16], publisher: Option<&[u8]>) -> tcf::TcString {
    let mut tc: tcf::TcString = serde_json::from_value(serde_json::json!({
        "created": "2026-11-30T10:00:00Z", "last_updated": "2026-11-30T10:00:00Z", "cmp_id": 12,
        "cmp_version": 1, "consent_language": "DE", "vendor_list_version": 140, "tcf_policy_version": 5,
        "purposes_consent": purposes, "vendor_consents": vendors, "disclosed_vendors": vendors
    }))
    .expect("values");
    tc.publisher_tc =
        publisher.map(|p| tcf::PublisherTc { pub_purposes_consent: p.to_vec(), ..Default::default() });
    tc
}

#[test]
fn tcf_purposes_grant_when_every_mapped_purpose_has_consent() {
    let c = catalog(|_| {});
    let got = apply::changes_from_tcf(&c, &tc(&[1, 4, 7, 8], &[], None));
    assert_eq!(
        got,
        [
            change("analytics", Action::Deny, &[], &[]),
            change("marketing.personalised_offers", Action::Grant, &[], &[])
        ]
    );
    // The publisher segment speaks for the brand's own purposes when present.
    let got = apply::changes_from_tcf(&c, &tc(&[4], &[], Some(&[7, 8, 9])));
    assert_eq!(
        got,
        [
            change("analytics", Action::Grant, &[], &[]),
            change("marketing.personalised_offers", Action::Deny, &[], &[])
        ]
    );
}

#[test]
fn tcf_vendors_without_consent_are_denied_as_recipients() {
    let c = catalog(|doc| {
        let tcf = doc.frameworks.as_mut().and_then(|f| f.tcf.as_mut()).expect("tcf mapping");
        tcf.purposes.insert(1, vec!["third_party.sharing".into()]);
        tcf.vendors.insert(4040, "ad_partners".into());
    });
    let got = apply::changes_from_tcf(&c, &tc(&[1], &[], None));
    assert!(got.contains(&change("third_party.sharing", Action::Grant, &[], &[])));
    assert!(got.contains(&change("third_party.sharing", Action::Deny, &[], &["ad_partners"])));
    let got = apply::changes_from_tcf(&c, &tc(&[1], &[4040], None));
    assert!(!got.iter().any(|c| c.action == Action::Deny && c.purpose == "third_party.sharing"));
}

#[test]
fn gpp_opt_outs_and_consents() {
    let c = catalog(|_| {});
    let gpp = GppString::from_json(serde_json::json!({"sections": {
        "usnat": {"sale_opt_out": 1, "sharing_opt_out": 2, "targeted_advertising_opt_out": 2,
                  "sensitive_data_processing": [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
                  "mspa_covered_transaction": 2},
        "usca": {"sharing_opt_out": 1, "mspa_covered_transaction": 2}
    }}))
    .expect("values");
    let got = apply::changes_from_gpp(&c, &gpp);
    assert_eq!(
        got,
        [
            change("third_party.sharing", Action::Withdraw, &[], &[]),
            change("marketing.personalised_offers", Action::Grant, &["user.location.precise"], &[]),
        ]
    );
    // GPC in a sub-section opts out of sale and sharing; "did not opt out" records nothing.
    let gpp = GppString::from_json(serde_json::json!({"sections": {
        "usco": {"sale_opt_out": 2, "mspa_covered_transaction": 1, "gpc": true},
        "uspv1": {"notice": "Y", "opt_out_sale": "N", "lspa_covered": "N"}
    }}))
    .expect("values");
    assert_eq!(
        apply::changes_from_gpp(&c, &gpp),
        [change("third_party.sharing", Action::Withdraw, &[], &[])]
    );
}

struct Allowed(HashSet<&'static str>);

impl Decide for Allowed {
    fn allowed(&self, purpose: &str, _category: Option<&str>, _recipient: Option<&str>) -> bool {
        self.0.contains(purpose)
    }
    fn consented(&self, purpose: &str, _category: Option<&str>, _recipient: Option<&str>) -> bool {
        self.0.contains(purpose)
    }
    fn gpc(&self, _purpose: &str) -> bool {
        false
    }
}

#[test]
fn state_as_signals() {
    let c = catalog(|_| {});
    let now = Deciseconds::new(17_650_000_000).expect("time");
    let d = Allowed(["analytics"].into_iter().collect());
    let tc = apply::tcf_from_state(&c, &d, now).expect("mapped");
    assert_eq!(tc.purposes_consent, [7, 8, 9]);
    tc.check_policy().expect("a valid TCF 2.3 string");
    let text = tcf::encode(&tc).expect("encodes");
    // Read back, the string says what the state says.
    assert_eq!(
        apply::changes_from_tcf(&c, &tcf::decode(&text).expect("decodes")),
        [
            change("analytics", Action::Grant, &[], &[]),
            change("marketing.personalised_offers", Action::Deny, &[], &[])
        ]
    );
    let gpp = apply::gpp_from_state(&c, &d, now).expect("mapped");
    let json = gpp.to_json();
    assert_eq!(json["section_ids"], serde_json::json!([2, 7]));
    assert_eq!(json["sections"]["usnat"]["sale_opt_out"], 1);
    assert_eq!(json["sections"]["usnat"]["targeted_advertising_opt_out"], 1);
    crate::signals::gpp::encode(&gpp).expect("encodes");
    let mode = apply::consent_mode_from_state(&c, &d).expect("mapped");
    assert_eq!(mode["analytics_storage"], "granted");
    assert_eq!(mode["ad_storage"], "denied");
    assert_eq!(mode.len(), 4);
}

#[test]
fn frameworks_are_validated() {
    let mut doc = CatalogDocument::default_catalog();
    let f = doc.frameworks.as_mut().expect("frameworks");
    let tcf = f.tcf.as_mut().expect("tcf");
    tcf.purposes.insert(25, vec!["analytics".into()]);
    tcf.purposes.insert(2, vec!["service.provision".into()]);
    tcf.vendors.insert(0, "nobody".into());
    tcf.publisher_cc = "d".into();
    let gpp = f.gpp.as_mut().expect("gpp");
    gpp.sensitive_data_processing.insert(
        17,
        crate::catalog::SignalTarget {
            purposes: vec!["analytics".into()],
            categories: vec!["user.location.precise".into()],
        },
    );
    let problems = Catalog::validate(doc).expect_err("refused");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "frameworks.tcf.purposes.25",
        "frameworks.tcf.purposes.2[0]",
        "frameworks.tcf.vendors.0",
        "frameworks.tcf.publisher_cc",
        "frameworks.gpp.sensitive_data_processing.17",
        "frameworks.gpp.sensitive_data_processing.17.categories[0]",
    ] {
        assert!(paths.contains(&expected), "{expected} in {paths:?}");
    }
}
