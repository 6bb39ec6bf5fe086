//! The US sections of a GPP string: the national section (`usnat`), the state sections of California,
//! Virginia, Colorado, Utah and Connecticut, and the older US Privacy string (`uspv1`).
//!
//! The bit sections share one shape (a six-bit version, then two-bit fields and lists of two-bit fields,
//! then an optional GPC sub-section), so one table per section drives both directions. Field names are the
//! IAB's (`SaleOptOut` becomes `sale_opt_out`). Two-bit values: 0 not applicable, 1 yes (opted out, notice
//! given, consent), 2 no; 3 is undefined and refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bits::{Padding, Reader, Writer};
use super::{Signal, SignalError};

const GPP: Signal = Signal::Gpp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    List(usize),
}

use Kind::{Int, List};

const NOTICE_NAT: [&str; 6] = [
    "sharing_notice",
    "sale_opt_out_notice",
    "sharing_opt_out_notice",
    "targeted_advertising_opt_out_notice",
    "sensitive_data_processing_opt_out_notice",
    "sensitive_data_limit_use_notice",
];

const MSPA: [&str; 3] =
    ["mspa_covered_transaction", "mspa_opt_out_option_mode", "mspa_service_provider_mode"];

/// The fields of one section after its version, in order, and whether it may carry a GPC sub-section.
/// `legacy` picks usnat's first layout (12 sensitive categories, 2 child consents).
fn layout(id: u16, legacy: bool) -> Option<(Vec<(&'static str, Kind)>, bool)> {
    let ints = |names: &[&'static str]| names.iter().map(|n| (*n, Int)).collect::<Vec<_>>();
    let mut f: Vec<(&'static str, Kind)>;
    let gpc;
    match id {
        7 => {
            f = ints(&NOTICE_NAT);
            f.extend(ints(&["sale_opt_out", "sharing_opt_out", "targeted_advertising_opt_out"]));
            let (sdp, kc) = if legacy { (12, 2) } else { (16, 3) };
            f.push(("sensitive_data_processing", List(sdp)));
            f.push(("known_child_sensitive_data_consents", List(kc)));
            f.push(("personal_data_consents", Int));
            gpc = true;
        }
        8 => {
            f = ints(&["sale_opt_out_notice", "sharing_opt_out_notice", "sensitive_data_limit_use_notice"]);
            f.extend(ints(&["sale_opt_out", "sharing_opt_out"]));
            f.push(("sensitive_data_processing", List(9)));
            f.push(("known_child_sensitive_data_consents", List(2)));
            f.push(("personal_data_consents", Int));
            gpc = true;
        }
        9 | 10 | 12 => {
            f = ints(&["sharing_notice", "sale_opt_out_notice", "targeted_advertising_opt_out_notice"]);
            f.extend(ints(&["sale_opt_out", "targeted_advertising_opt_out"]));
            f.push(("sensitive_data_processing", List(if id == 10 { 7 } else { 8 })));
            f.push(("known_child_sensitive_data_consents", if id == 12 { List(3) } else { Int }));
            gpc = id != 9;
        }
        11 => {
            f = ints(&[
                "sharing_notice",
                "sale_opt_out_notice",
                "targeted_advertising_opt_out_notice",
                "sensitive_data_processing_opt_out_notice",
                "sale_opt_out",
                "targeted_advertising_opt_out",
            ]);
            f.push(("sensitive_data_processing", List(8)));
            f.push(("known_child_sensitive_data_consents", Int));
            gpc = false;
        }
        _ => return None,
    }
    f.extend(ints(&MSPA));
    Some((f, gpc))
}

/// The current version of each section this codec writes by default.
fn latest_version(id: u16) -> u8 {
    if id == 7 { 2 } else { 1 }
}

fn bit_len(fields: &[(&str, Kind)]) -> usize {
    6 + fields.iter().map(|(_, k)| if let List(n) = k { 2 * n } else { 2 }).sum::<usize>()
}

/// One value of a US section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UsValue {
    Int(u8),
    List(Vec<u8>),
}

/// A decoded US section: its fields in the IAB's order, and `gpc` when the GPC sub-section is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsSection {
    pub id: u16,
    pub version: u8,
    pub fields: Vec<(&'static str, UsValue)>,
    pub gpc: Option<bool>,
}

impl UsSection {
    /// A two-bit field's value, if the section has the field.
    pub fn int(&self, name: &str) -> Option<u8> {
        self.fields.iter().find(|(n, _)| *n == name).and_then(|(_, v)| match v {
            UsValue::Int(i) => Some(*i),
            UsValue::List(_) => None,
        })
    }

    /// A list field's values, if the section has the field.
    pub fn list(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(n, _)| *n == name).and_then(|(_, v)| match v {
            UsValue::List(l) => Some(l.as_slice()),
            UsValue::Int(_) => None,
        })
    }

    pub(crate) fn decode(id: u16, name: &'static str, text: &str) -> Result<Self, SignalError> {
        let mut parts = text.split('.');
        let core = parts.next().unwrap_or_default();
        let mut r = Reader::new(GPP, name, core)?;
        let version = r.u8(6, "version")?;
        if version == 0 {
            return Err(r.error(0, "version 0 is not defined"));
        }
        let (full, gpc_allowed) = layout(id, false).ok_or_else(|| r.error(0, "not a US section"))?;
        // usnat's first layout (12 sensitive categories, 2 child consents) is told by length, as iabgpp-es
        // tells it: a section shorter than the second layout was written in the first. The lists are then
        // given in the length of the version the section names (version 1: 12 and 2; later: 16 and 3, the
        // categories a first-layout string cannot hold being 0, not applicable).
        let legacy = id == 7 && r.len() < bit_len(&full);
        let (read_layout, _) = layout(id, legacy).ok_or_else(|| r.error(0, "not a US section"))?;
        let (shown_layout, _) =
            layout(id, id == 7 && version == 1).ok_or_else(|| r.error(0, "not a US section"))?;
        let mut fields = Vec::with_capacity(read_layout.len());
        for ((field, kind), (_, shown)) in read_layout.into_iter().zip(shown_layout) {
            let at = r.pos();
            let value = match (kind, shown) {
                (List(n), List(m)) => {
                    let mut l = (0..n).map(|_| r.u8(2, field)).collect::<Result<Vec<_>, _>>()?;
                    l.resize(m, 0);
                    UsValue::List(l)
                }
                _ => UsValue::Int(r.u8(2, field)?),
            };
            check_value(field, &value).map_err(|reason| r.error(at, reason))?;
            fields.push((field, value));
        }
        let gpc = match parts.next() {
            None => None,
            Some(_) if !gpc_allowed => return Err(r.error(r.pos(), "this section has no GPC sub-section")),
            Some(sub) => {
                let mut g = Reader::new(GPP, name, sub)?;
                let kind = g.u8(2, "gpc_segment_type")?;
                if kind != 1 {
                    return Err(g.error(0, format!("sub-section type {kind} is not GPC (1)")));
                }
                Some(g.flag("gpc")?)
            }
        };
        if parts.next().is_some() {
            return Err(SignalError::at(GPP, name, 0, "more sub-sections than the core and GPC"));
        }
        Ok(Self { id, version, fields, gpc })
    }

    pub(crate) fn encode(&self) -> Result<String, SignalError> {
        let legacy = self.id == 7 && self.version == 1;
        let (fields_layout, gpc_allowed) = layout(self.id, legacy)
            .ok_or_else(|| SignalError::field(GPP, "section_ids", "not a US section"))?;
        let mut w = Writer::default();
        w.uint(u64::from(self.version), 6);
        for (field, kind) in fields_layout {
            match (kind, self.fields.iter().find(|(n, _)| *n == field).map(|(_, v)| v)) {
                (Int, Some(UsValue::Int(v))) => w.uint(u64::from(*v), 2),
                (List(n), Some(UsValue::List(l))) if l.len() == n => {
                    l.iter().for_each(|v| w.uint(u64::from(*v), 2))
                }
                _ => return Err(SignalError::field(GPP, field, "missing or of the wrong shape")),
            }
        }
        let mut out = w.finish(Padding::Compressed);
        match self.gpc {
            Some(_) if !gpc_allowed => {
                return Err(SignalError::field(GPP, "gpc", "this section has no GPC sub-section"));
            }
            Some(gpc) => {
                let mut g = Writer::default();
                g.uint(1, 2);
                g.flag(gpc);
                out.push('.');
                out.push_str(&g.finish(Padding::Compressed));
            }
            None => {}
        }
        Ok(out)
    }

    /// Builds a section from JSON values, checking every field: missing two-bit fields are 0 (not
    /// applicable), missing lists all 0, a missing version the newest; `mspa_covered_transaction` is
    /// required. Errors name the field as `<section>.<field>`.
    pub(crate) fn from_json(id: u16, name: &str, value: Value) -> Result<Self, SignalError> {
        let Value::Object(map) = value else {
            return Err(SignalError::field(GPP, name.to_owned(), "must be an object"));
        };
        let mut map: BTreeMap<String, Value> = map.into_iter().collect();
        let at = |f: &str| format!("sections.{name}.{f}");
        let version = match map.remove("version") {
            None => latest_version(id),
            Some(v) => v.as_u64().filter(|v| (1..=63).contains(v)).map(|v| v as u8).ok_or_else(|| {
                SignalError::field(GPP, at("version"), "must be a whole number from 1 to 63")
            })?,
        };
        let gpc = match map.remove("gpc") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => return Err(SignalError::field(GPP, at("gpc"), "must be true or false")),
        };
        let legacy = id == 7 && version == 1;
        let (fields_layout, gpc_allowed) =
            layout(id, legacy).ok_or_else(|| SignalError::field(GPP, name.to_owned(), "not a US section"))?;
        if gpc.is_some() && !gpc_allowed {
            return Err(SignalError::field(GPP, at("gpc"), "this section has no GPC sub-section"));
        }
        let mut fields = Vec::with_capacity(fields_layout.len());
        for (field, kind) in fields_layout {
            let given = map.remove(field);
            if given.is_none() && field == "mspa_covered_transaction" {
                return Err(SignalError::field(GPP, at(field), "is required (1 yes, 2 no)"));
            }
            let value =
                match (kind, given) {
                    (Int, None) => UsValue::Int(0),
                    (List(n), None) => UsValue::List(vec![0; n]),
                    (Int, Some(v)) => UsValue::Int(two_bits(&v).ok_or_else(|| {
                        SignalError::field(GPP, at(field), "must be 0 (not applicable), 1 (yes) or 2 (no)")
                    })?),
                    (List(n), Some(Value::Array(items))) if items.len() == n => {
                        UsValue::List(items.iter().map(two_bits).collect::<Option<_>>().ok_or_else(|| {
                            SignalError::field(GPP, at(field), "each value must be 0, 1 or 2")
                        })?)
                    }
                    (List(n), Some(_)) => {
                        return Err(SignalError::field(
                            GPP,
                            at(field),
                            format!("must be a list of {n} values 0, 1 or 2"),
                        ));
                    }
                };
            check_value(field, &value).map_err(|reason| SignalError::field(GPP, at(field), reason))?;
            fields.push((field, value));
        }
        if let Some(unknown) = map.keys().next() {
            return Err(SignalError::field(GPP, at(unknown), "is not a field of this section"));
        }
        Ok(Self { id, version, fields, gpc })
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("version".into(), self.version.into());
        for (name, value) in &self.fields {
            let v = match value {
                UsValue::Int(i) => Value::from(*i),
                UsValue::List(l) => Value::from(l.clone()),
            };
            map.insert((*name).into(), v);
        }
        if let Some(gpc) = self.gpc {
            map.insert("gpc".into(), gpc.into());
        }
        Value::Object(map)
    }
}

fn two_bits(v: &Value) -> Option<u8> {
    v.as_u64().filter(|v| *v <= 2).map(|v| v as u8)
}

fn check_value(field: &str, value: &UsValue) -> Result<(), &'static str> {
    let all = match value {
        UsValue::Int(i) => std::slice::from_ref(i),
        UsValue::List(l) => l.as_slice(),
    };
    if all.iter().any(|v| *v > 2) {
        return Err("holds the undefined value 3");
    }
    if field == "mspa_covered_transaction" && all.contains(&0) {
        return Err("mspa_covered_transaction must be 1 (yes) or 2 (no)");
    }
    Ok(())
}

/// The US Privacy string (CCPA), four characters: version `1`, then notice given, opted out of sale and
/// covered by the LSPA, each `Y`, `N` or `-` (not applicable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UspV1 {
    #[serde(default = "one")]
    pub version: u8,
    pub notice: char,
    pub opt_out_sale: char,
    pub lspa_covered: char,
}

fn one() -> u8 {
    1
}

impl UspV1 {
    pub(crate) fn decode(text: &str) -> Result<Self, SignalError> {
        let b = text.as_bytes();
        if b.len() != 4 {
            return Err(SignalError::at(GPP, "uspv1", 0, "must be four characters"));
        }
        if b[0] != b'1' {
            return Err(SignalError::at(GPP, "uspv1", 0, "version must be 1"));
        }
        for (i, c) in b.iter().enumerate().skip(1) {
            if !matches!(c, b'Y' | b'N' | b'-' | b'y' | b'n') {
                return Err(SignalError::at(GPP, "uspv1", i * 8, "each flag must be Y, N or -"));
            }
        }
        let up = |c: u8| char::from(c.to_ascii_uppercase());
        Ok(Self { version: 1, notice: up(b[1]), opt_out_sale: up(b[2]), lspa_covered: up(b[3]) })
    }

    pub(crate) fn encode(&self) -> Result<String, SignalError> {
        if self.version != 1 {
            return Err(SignalError::field(GPP, "sections.uspv1.version", "must be 1"));
        }
        let mut out = String::from("1");
        for (field, c) in [
            ("notice", self.notice),
            ("opt_out_sale", self.opt_out_sale),
            ("lspa_covered", self.lspa_covered),
        ] {
            if !matches!(c, 'Y' | 'N' | '-') {
                return Err(SignalError::field(GPP, format!("sections.uspv1.{field}"), "must be Y, N or -"));
            }
            out.push(c);
        }
        Ok(out)
    }
}
