//! IAB Tech Lab GPP strings (Global Privacy Platform, "Consent String Specification" v1): the header with
//! its Fibonacci-coded section ids, then one `~`-separated section per id.
//!
//! Sections decoded: `tcfeuv2` (2, a TC string), `uspv1` (6), `usnat` (7), `usca` (8), `usva` (9),
//! `usco` (10), `usut` (11), `usct` (12). Every other section is kept as its text (`{"opaque": "..."}`) and
//! written back unchanged.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::bits::{Padding, Reader, Writer};
use super::tcf::{self, TcString};
use super::us::{UsSection, UspV1};
use super::{MAX_STRING_LEN, Signal, SignalError};

const GPP: Signal = Signal::Gpp;

/// The client-side API prefix of every section id the IAB has assigned (Sections/Section Information).
const NAMES: [(u16, &str); 25] = [
    (1, "tcfeuv1"),
    (2, "tcfeuv2"),
    (5, "tcfcav1"),
    (6, "uspv1"),
    (7, "usnat"),
    (8, "usca"),
    (9, "usva"),
    (10, "usco"),
    (11, "usut"),
    (12, "usct"),
    (13, "usfl"),
    (14, "usmt"),
    (15, "usor"),
    (16, "ustx"),
    (17, "usde"),
    (18, "usia"),
    (19, "usne"),
    (20, "usnh"),
    (21, "usnj"),
    (22, "ustn"),
    (23, "usmn"),
    (24, "usmd"),
    (25, "usin"),
    (26, "usky"),
    (27, "usri"),
];

/// A section's name: the IAB's prefix, or `section_<id>` for an id without one.
pub fn section_name(id: u16) -> String {
    NAMES.iter().find(|(i, _)| *i == id).map_or_else(|| format!("section_{id}"), |(_, n)| (*n).to_owned())
}

fn section_id(name: &str) -> Option<u16> {
    NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(i, _)| *i)
        .or_else(|| name.strip_prefix("section_").and_then(|n| n.parse().ok()).filter(|&i| i > 0))
}

fn static_name(id: u16) -> &'static str {
    NAMES.iter().find(|(i, _)| *i == id).map_or("section", |(_, n)| n)
}

/// One section's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GppSection {
    Tcf(Box<TcString>),
    Usp(UspV1),
    Us(UsSection),
    /// A section this codec does not read, kept as it was written.
    Opaque(String),
}

/// A GPP string's values: the section ids in order and each section by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GppString {
    pub sections: Vec<(u16, GppSection)>,
}

impl GppString {
    pub fn section_ids(&self) -> Vec<u16> {
        self.sections.iter().map(|(id, _)| *id).collect()
    }

    pub fn section(&self, id: u16) -> Option<&GppSection> {
        self.sections.iter().find(|(i, _)| *i == id).map(|(_, s)| s)
    }

    /// Builds the values from JSON `{"section_ids"?: [...], "sections": {"<name>": {...}}}`; errors name
    /// the field (`sections.usnat.sale_opt_out`).
    pub fn from_json(value: Value) -> Result<Self, SignalError> {
        let Value::Object(mut map) = value else {
            return Err(SignalError::field(GPP, "gpp", "must be an object"));
        };
        let declared = match map.remove("section_ids") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Vec<u16>>(v)
                    .map_err(|_| SignalError::field(GPP, "section_ids", "must be a list of section ids"))?,
            ),
        };
        let sections = match map.remove("sections") {
            Some(Value::Object(s)) => s,
            _ => return Err(SignalError::field(GPP, "sections", "must be an object of sections by name")),
        };
        if let Some(unknown) = map.keys().next() {
            return Err(SignalError::field(GPP, unknown.clone(), "is not a field of a GPP string"));
        }
        let mut out = Vec::with_capacity(sections.len());
        for (name, value) in sections {
            let id = section_id(&name)
                .ok_or_else(|| SignalError::field(GPP, format!("sections.{name}"), "is not a GPP section"))?;
            let section = match (id, value) {
                (2, v) => GppSection::Tcf(Box::new(
                    serde_json::from_value(v)
                        .map_err(|e| SignalError::field(GPP, "sections.tcfeuv2", e.to_string()))?,
                )),
                (6, v) => GppSection::Usp(
                    serde_json::from_value(v)
                        .map_err(|e| SignalError::field(GPP, "sections.uspv1", e.to_string()))?,
                ),
                (7..=12, v) => GppSection::Us(UsSection::from_json(id, static_name(id), v)?),
                (_, Value::Object(mut o)) if o.len() == 1 && o.contains_key("opaque") => {
                    match o.remove("opaque") {
                        Some(Value::String(text)) if !text.contains('~') => GppSection::Opaque(text),
                        _ => {
                            return Err(SignalError::field(
                                GPP,
                                format!("sections.{name}.opaque"),
                                "must be the section's text, without ~",
                            ));
                        }
                    }
                }
                _ => {
                    return Err(SignalError::field(
                        GPP,
                        format!("sections.{name}"),
                        "this section is only carried as {\"opaque\": \"<its text>\"}",
                    ));
                }
            };
            out.push((id, section));
        }
        out.sort_by_key(|(id, _)| *id);
        let ids: Vec<u16> = out.iter().map(|(id, _)| *id).collect();
        if declared.is_some_and(|d| d != ids) {
            return Err(SignalError::field(
                GPP,
                "section_ids",
                "must list the ids of the sections given, ascending",
            ));
        }
        Ok(Self { sections: out })
    }

    pub fn to_json(&self) -> Value {
        let mut sections = serde_json::Map::new();
        for (id, section) in &self.sections {
            let v = match section {
                GppSection::Tcf(tc) => serde_json::to_value(tc).unwrap_or(Value::Null),
                GppSection::Usp(u) => serde_json::to_value(u).unwrap_or(Value::Null),
                GppSection::Us(u) => u.to_json(),
                GppSection::Opaque(text) => serde_json::json!({ "opaque": text }),
            };
            sections.insert(section_name(*id), v);
        }
        serde_json::json!({ "section_ids": self.section_ids(), "sections": sections })
    }
}

impl Serialize for GppString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for GppString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_json(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Decodes a GPP string. Refuses a header that is not GPP v1, a section count that differs from the
/// header's, and any section its decoder refuses, naming the section and bit offset.
pub fn decode(s: &str) -> Result<GppString, SignalError> {
    if s.len() > MAX_STRING_LEN {
        return Err(SignalError::at(GPP, "string", 0, format!("longer than {MAX_STRING_LEN} characters")));
    }
    let mut parts = s.split('~');
    let header = parts.next().unwrap_or_default();
    let mut r = Reader::new(GPP, "header", header)?;
    let kind = r.u8(6, "type")?;
    if kind != 3 {
        return Err(r.error(0, format!("header type {kind} is not a GPP header (3)")));
    }
    let version = r.u8(6, "version")?;
    if version != 1 {
        return Err(r.error(6, format!("GPP version {version} is not known (1)")));
    }
    let ids = r.fibonacci_ranges("section_ids")?;
    let texts: Vec<&str> = parts.collect();
    if texts.len() != ids.len() {
        return Err(r.error(
            12,
            format!("the header lists {} sections but the string has {}", ids.len(), texts.len()),
        ));
    }
    let mut sections = Vec::with_capacity(ids.len());
    for (&id, text) in ids.iter().zip(texts) {
        let name = static_name(id);
        let section = match id {
            2 => GppSection::Tcf(Box::new(tcf::decode(text).map_err(|e| e.within(GPP, name))?)),
            6 => GppSection::Usp(UspV1::decode(text)?),
            7..=12 => GppSection::Us(UsSection::decode(id, name, text)?),
            _ => GppSection::Opaque(text.to_owned()),
        };
        sections.push((id, section));
    }
    Ok(GppString { sections })
}

/// Encodes the values as a GPP string; errors name the field.
pub fn encode(gpp: &GppString) -> Result<String, SignalError> {
    let ids = gpp.section_ids();
    let sorted = ids.windows(2).all(|w| w[0] < w[1]);
    if !sorted {
        return Err(SignalError::field(GPP, "section_ids", "must be ascending without repeats"));
    }
    if ids.contains(&0) {
        return Err(SignalError::field(GPP, "section_ids", "section id 0 does not exist"));
    }
    let mut w = Writer::default();
    w.uint(3, 6);
    w.uint(1, 6);
    w.fibonacci_ranges(&ids);
    let mut out = w.finish(Padding::Compressed);
    for (id, section) in &gpp.sections {
        let text = match section {
            GppSection::Tcf(tc) => tcf::encode(tc).map_err(|e| e.within(GPP, "sections.tcfeuv2"))?,
            GppSection::Usp(u) => u.encode()?,
            GppSection::Us(u) if u.id == *id => u.encode()?,
            GppSection::Opaque(text) if !text.contains('~') => text.clone(),
            _ => {
                return Err(SignalError::field(
                    GPP,
                    format!("sections.{}", section_name(*id)),
                    "does not fit its id",
                ));
            }
        };
        out.push('~');
        out.push_str(&text);
    }
    Ok(out)
}
