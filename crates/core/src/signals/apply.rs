//! Signals and the catalogue: what a decoded TC or GPP string says about the catalogue's purposes (the
//! changes to record), and the other way round, a person's current decisions written as a TC string, a
//! GPP string or Google Consent Mode parameters. The catalogue's `frameworks` section is the mapping
//! (`docs/signals.md` states the rules).

use std::collections::BTreeMap;

use super::gpp::{GppSection, GppString};
use super::tcf::{Deciseconds, PublisherTc, TcString};
use super::us::{UsSection, UsValue};
use crate::catalog::{Basis, Catalog, GppFramework, SignalTarget, TcfFramework};
use crate::ledger::{Action, Scope};

/// One change a signal makes to a catalogue purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalChange {
    pub purpose: String,
    pub action: Action,
    pub scope: Scope,
}

/// Collects changes, one per purpose and scope; a negative statement wins over a grant of the same
/// purpose and scope (two fields of one string that disagree are read as the more protective).
#[derive(Debug, Default)]
struct Changes(Vec<SignalChange>);

impl Changes {
    fn add(&mut self, purpose: &str, action: Action, scope: Scope) {
        match self.0.iter_mut().find(|c| c.purpose == purpose && c.scope == scope) {
            Some(c) if !action.is_positive() => c.action = action,
            Some(_) => {}
            None => self.0.push(SignalChange { purpose: purpose.to_owned(), action, scope }),
        }
    }

    fn into_vec(self) -> Vec<SignalChange> {
        self.0
    }
}

fn scoped(categories: &[String], recipients: &[String]) -> Scope {
    Scope::new(categories.to_vec(), Vec::new(), recipients.to_vec())
}

/// The changes a TC string makes. The publisher's own purposes (the publisher-TC segment) are read when
/// the string has that segment, the vendors' purposes otherwise: the brand is the publisher.
pub fn changes_from_tcf(catalog: &Catalog, tc: &TcString) -> Vec<SignalChange> {
    let mut out = Changes::default();
    if let Some(f) = catalog.document().frameworks.as_ref().and_then(|f| f.tcf.as_ref()) {
        tcf_into(catalog, f, tc, &mut out);
    }
    out.into_vec()
}

/// Per catalogue purpose, whether every TCF purpose and special feature mapped to it holds in `consented`.
fn tcf_purposes(f: &TcfFramework, consented: impl Fn(bool, u8) -> bool) -> BTreeMap<&str, bool> {
    let mut out: BTreeMap<&str, bool> = BTreeMap::new();
    let mapped = f.purposes.iter().map(|(id, ps)| (false, *id, ps));
    let special = f.special_features.iter().map(|(id, ps)| (true, *id, ps));
    for (is_special, id, purposes) in mapped.chain(special) {
        let yes = consented(is_special, id);
        for p in purposes {
            let slot = out.entry(p.as_str()).or_insert(true);
            *slot &= yes;
        }
    }
    out
}

fn tcf_into(catalog: &Catalog, f: &TcfFramework, tc: &TcString, out: &mut Changes) {
    let purposes = tc.publisher_tc.as_ref().map_or(&tc.purposes_consent, |p| &p.pub_purposes_consent);
    let decided = tcf_purposes(f, |special, id| {
        if special { tc.special_feature_opt_ins.contains(&id) } else { purposes.contains(&id) }
    });
    for (purpose, granted) in &decided {
        out.add(purpose, if *granted { Action::Grant } else { Action::Deny }, Scope::default());
        if !granted {
            continue;
        }
        // A mapped vendor without consent: denied for the purposes that name its recipient.
        let Some(p) = catalog.purpose(purpose) else { continue };
        for (vendor, recipient) in &f.vendors {
            let names = p.recipients.is_empty() || p.recipients.contains(recipient);
            if names && !tc.vendor_consents.contains(vendor) {
                out.add(purpose, Action::Deny, scoped(&[], std::slice::from_ref(recipient)));
            }
        }
    }
}

/// The changes a GPP string makes: its `tcfeuv2` section as a TC string, and its US sections' opt-outs
/// and consents through `frameworks.gpp`.
pub fn changes_from_gpp(catalog: &Catalog, gpp: &GppString) -> Vec<SignalChange> {
    let mut out = Changes::default();
    let frameworks = catalog.document().frameworks.as_ref();
    let tcf = frameworks.and_then(|f| f.tcf.as_ref());
    let mapping = frameworks.and_then(|f| f.gpp.as_ref());
    for (_, section) in &gpp.sections {
        match (section, tcf, mapping) {
            (GppSection::Tcf(tc), Some(f), _) => tcf_into(catalog, f, tc, &mut out),
            (GppSection::Usp(u), _, Some(m)) if u.opt_out_sale == 'Y' => {
                opt_out(catalog, m.sale_opt_out.as_ref(), &mut out);
            }
            (GppSection::Us(us), _, Some(m)) => us_into(catalog, m, us, &mut out),
            _ => {}
        }
    }
    out.into_vec()
}

fn opt_out(catalog: &Catalog, target: Option<&SignalTarget>, out: &mut Changes) {
    let Some(t) = target else { return };
    for purpose in &t.purposes {
        let Some(p) = catalog.purpose(purpose) else { continue };
        let action = if p.basis == Basis::Consent { Action::Withdraw } else { Action::Object };
        out.add(purpose, action, scoped(&t.categories, &[]));
    }
}

fn consent(target: &SignalTarget, value: u8, out: &mut Changes) {
    let action = match value {
        1 => Action::Deny,
        2 => Action::Grant,
        _ => return,
    };
    for purpose in &target.purposes {
        out.add(purpose, action, scoped(&target.categories, &[]));
    }
}

fn us_into(catalog: &Catalog, m: &GppFramework, us: &UsSection, out: &mut Changes) {
    for (field, target) in [
        ("sale_opt_out", &m.sale_opt_out),
        ("sharing_opt_out", &m.sharing_opt_out),
        ("targeted_advertising_opt_out", &m.targeted_advertising_opt_out),
    ] {
        if us.int(field) == Some(1) {
            opt_out(catalog, target.as_ref(), out);
        }
    }
    if us.gpc == Some(true) {
        opt_out(catalog, m.sale_opt_out.as_ref(), out);
        opt_out(catalog, m.sharing_opt_out.as_ref(), out);
    }
    // The consent fields' numbering is usnat's; the state sections number their categories otherwise.
    if us.id != 7 {
        return;
    }
    for (field, map) in [
        ("sensitive_data_processing", &m.sensitive_data_processing),
        ("known_child_sensitive_data_consents", &m.known_child_sensitive_data_consents),
    ] {
        let values = us.list(field).unwrap_or_default();
        for (n, target) in map {
            if let Some(&v) = values.get(usize::from(*n).wrapping_sub(1)) {
                consent(target, v, out);
            }
        }
    }
    if let (Some(t), Some(v)) = (&m.personal_data_consents, us.int("personal_data_consents")) {
        consent(t, v, out);
    }
}

/// The person's current decisions, as the engine gives them. A purpose the engine does not know is not
/// allowed.
pub trait Decide {
    /// Whether a use is allowed now: the purpose, and optionally a category and a recipient.
    fn allowed(&self, purpose: &str, category: Option<&str>, recipient: Option<&str>) -> bool;

    /// Whether the use is allowed because the person consented (or a basis other than consent allows it):
    /// `allowed` less what runs only until the person opts out (`not_opted_out`, an opt-out regime). A
    /// TC string's consent bits say the person consented, so they are made from this, never from `allowed`.
    fn consented(&self, purpose: &str, category: Option<&str>, recipient: Option<&str>) -> bool;

    /// Whether the purpose's denial comes from a Global Privacy Control signal.
    fn gpc(&self, purpose: &str) -> bool;
}

fn all_allowed(d: &dyn Decide, purposes: &[String]) -> bool {
    !purposes.is_empty() && purposes.iter().all(|p| d.allowed(p, None, None))
}

fn target_allowed(d: &dyn Decide, t: &SignalTarget) -> bool {
    if t.categories.is_empty() {
        return all_allowed(d, &t.purposes);
    }
    !t.purposes.is_empty()
        && t.purposes.iter().all(|p| t.categories.iter().all(|c| d.allowed(p, Some(c), None)))
}

/// The person's current decisions as a TC string's values (TCF 2.3: the disclosed vendors are the mapped
/// ones, and the publisher segment carries the same purposes, the brand being the publisher). `None`
/// without `frameworks.tcf`.
pub fn tcf_from_state(catalog: &Catalog, d: &dyn Decide, now: Deciseconds) -> Option<TcString> {
    let f = catalog.document().frameworks.as_ref()?.tcf.as_ref()?;
    let consented = |ps: &[String]| !ps.is_empty() && ps.iter().all(|p| d.consented(p, None, None));
    let set = |map: &BTreeMap<u8, Vec<String>>| -> Vec<u8> {
        map.iter().filter(|(_, ps)| consented(ps)).map(|(id, _)| *id).collect()
    };
    let purposes_consent = set(&f.purposes);
    let mapped: Vec<&String> = f.purposes.values().chain(f.special_features.values()).flatten().collect();
    let vendor_consents = f
        .vendors
        .iter()
        .filter(|(_, recipient)| {
            let naming: Vec<&&String> = mapped
                .iter()
                .filter(|p| {
                    catalog
                        .purpose(p)
                        .is_some_and(|p| p.recipients.is_empty() || p.recipients.contains(recipient))
                })
                .collect();
            !naming.is_empty() && naming.iter().all(|p| d.consented(p, None, Some(recipient)))
        })
        .map(|(id, _)| *id)
        .collect();
    let language: String = catalog.document().language().chars().take(2).collect();
    Some(TcString {
        version: 2,
        created: now,
        last_updated: now,
        cmp_id: f.cmp_id,
        cmp_version: f.cmp_version,
        consent_screen: 0,
        consent_language: language.to_ascii_uppercase(),
        vendor_list_version: f.vendor_list_version,
        tcf_policy_version: f.tcf_policy_version,
        is_service_specific: true,
        use_non_standard_texts: false,
        special_feature_opt_ins: set(&f.special_features),
        purposes_consent: purposes_consent.clone(),
        purposes_li_transparency: Vec::new(),
        purpose_one_treatment: false,
        publisher_cc: f.publisher_cc.clone(),
        vendor_consents,
        vendor_li: Vec::new(),
        publisher_restrictions: Vec::new(),
        disclosed_vendors: Some(f.vendors.keys().copied().collect()),
        allowed_vendors: None,
        publisher_tc: Some(PublisherTc { pub_purposes_consent: purposes_consent, ..PublisherTc::default() }),
    })
}

/// The person's current decisions as a GPP string's values: `tcfeuv2` when the catalogue maps TCF, and
/// `usnat` when it maps GPP (an opt-out field 1 when a mapped purpose is not allowed, else 2; a consent
/// field 2 when allowed, else 1; unmapped fields 0; `gpc` when a sale or sharing purpose was opted out of
/// by Global Privacy Control). `None` when the catalogue maps neither.
pub fn gpp_from_state(catalog: &Catalog, d: &dyn Decide, now: Deciseconds) -> Option<GppString> {
    let mut sections = Vec::new();
    if let Some(tc) = tcf_from_state(catalog, d, now) {
        sections.push((2, GppSection::Tcf(Box::new(tc))));
    }
    if let Some(m) = catalog.document().frameworks.as_ref().and_then(|f| f.gpp.as_ref()) {
        sections.push((7, GppSection::Us(usnat_from_state(m, d))));
    }
    (!sections.is_empty()).then_some(GppString { sections })
}

fn usnat_from_state(m: &GppFramework, d: &dyn Decide) -> UsSection {
    let opt_out = |t: &Option<SignalTarget>| match t {
        None => 0,
        Some(t) if target_allowed(d, t) => 2,
        Some(_) => 1,
    };
    let consent = |t: Option<&SignalTarget>| match t {
        None => 0,
        Some(t) if target_allowed(d, t) => 2,
        Some(_) => 1,
    };
    let notice = |t: &Option<SignalTarget>| u8::from(t.is_some());
    let list = |map: &BTreeMap<u8, SignalTarget>, n: u8| (1..=n).map(|i| consent(map.get(&i))).collect();
    let gpc = [&m.sale_opt_out, &m.sharing_opt_out]
        .into_iter()
        .flatten()
        .flat_map(|t| &t.purposes)
        .any(|p| d.gpc(p));
    let fields = vec![
        ("sharing_notice", UsValue::Int(notice(&m.sharing_opt_out))),
        ("sale_opt_out_notice", UsValue::Int(notice(&m.sale_opt_out))),
        ("sharing_opt_out_notice", UsValue::Int(notice(&m.sharing_opt_out))),
        ("targeted_advertising_opt_out_notice", UsValue::Int(notice(&m.targeted_advertising_opt_out))),
        ("sensitive_data_processing_opt_out_notice", UsValue::Int(0)),
        ("sensitive_data_limit_use_notice", UsValue::Int(0)),
        ("sale_opt_out", UsValue::Int(opt_out(&m.sale_opt_out))),
        ("sharing_opt_out", UsValue::Int(opt_out(&m.sharing_opt_out))),
        ("targeted_advertising_opt_out", UsValue::Int(opt_out(&m.targeted_advertising_opt_out))),
        ("sensitive_data_processing", UsValue::List(list(&m.sensitive_data_processing, 16))),
        (
            "known_child_sensitive_data_consents",
            UsValue::List(list(&m.known_child_sensitive_data_consents, 3)),
        ),
        ("personal_data_consents", UsValue::Int(consent(m.personal_data_consents.as_ref()))),
        // Consentry is no party to the IAB's Multi-State Privacy Agreement.
        ("mspa_covered_transaction", UsValue::Int(2)),
        ("mspa_opt_out_option_mode", UsValue::Int(0)),
        ("mspa_service_provider_mode", UsValue::Int(0)),
    ];
    UsSection { id: 7, version: 2, fields, gpc: Some(gpc) }
}

/// Google Consent Mode v2: each parameter `granted` when every purpose mapped to it is allowed, else
/// `denied` (an unmapped parameter too). `None` without `frameworks.consent_mode`.
pub fn consent_mode_from_state(
    catalog: &Catalog,
    d: &dyn Decide,
) -> Option<BTreeMap<&'static str, &'static str>> {
    let m = catalog.document().frameworks.as_ref()?.consent_mode.as_ref()?;
    Some(
        m.parameters()
            .into_iter()
            .map(|(name, purposes)| (name, if all_allowed(d, purposes) { "granted" } else { "denied" }))
            .collect(),
    )
}
