//! IAB Europe TCF v2 TC strings (specification "Consent string and vendor list formats v2", TCF 2.2 and
//! 2.3): the core segment and the optional disclosed-vendors, allowed-vendors and publisher-TC segments.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::bits::{self, MAX_IDS, Padding, Reader, Writer};
use super::{MAX_STRING_LEN, Signal, SignalError};

const TCF: Signal = Signal::Tcf;

/// The newest TCF policy version this codec knows (TCF 2.3; 2.2 was 4).
pub const LATEST_POLICY_VERSION: u8 = 5;

/// A TC string's values, with the IAB's field names in snake case. Every id set is a sorted list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcString {
    #[serde(default = "two")]
    pub version: u8,
    pub created: Deciseconds,
    pub last_updated: Deciseconds,
    pub cmp_id: u16,
    pub cmp_version: u16,
    #[serde(default)]
    pub consent_screen: u8,
    pub consent_language: String,
    pub vendor_list_version: u16,
    pub tcf_policy_version: u8,
    #[serde(default = "yes")]
    pub is_service_specific: bool,
    #[serde(default)]
    pub use_non_standard_texts: bool,
    #[serde(default)]
    pub special_feature_opt_ins: Vec<u8>,
    #[serde(default)]
    pub purposes_consent: Vec<u8>,
    #[serde(default)]
    pub purposes_li_transparency: Vec<u8>,
    #[serde(default)]
    pub purpose_one_treatment: bool,
    #[serde(default = "aa")]
    pub publisher_cc: String,
    #[serde(default)]
    pub vendor_consents: Vec<u16>,
    #[serde(default)]
    pub vendor_li: Vec<u16>,
    #[serde(default)]
    pub publisher_restrictions: Vec<PublisherRestriction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosed_vendors: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_vendors: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_tc: Option<PublisherTc>,
}

fn two() -> u8 {
    2
}
fn yes() -> bool {
    true
}
fn aa() -> String {
    "AA".to_owned()
}

/// A publisher's restriction of a purpose for some vendors: 0 not allowed, 1 requires consent, 2 requires
/// legitimate interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherRestriction {
    pub purpose: u8,
    pub restriction_type: u8,
    pub vendors: Vec<u16>,
}

/// The publisher's own purposes (the publisher-TC segment).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherTc {
    #[serde(default)]
    pub pub_purposes_consent: Vec<u8>,
    #[serde(default)]
    pub pub_purposes_li: Vec<u8>,
    #[serde(default)]
    pub num_custom_purposes: u8,
    #[serde(default)]
    pub custom_purposes_consent: Vec<u8>,
    #[serde(default)]
    pub custom_purposes_li: Vec<u8>,
}

/// A time as the TCF encodes it: tenths of a second since 1970 in 36 bits. Written as RFC 3339 in UTC with
/// the tenth when it is not 0; a finer time given to the encoder is cut to the tenth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deciseconds(u64);

impl Deciseconds {
    pub const MAX: u64 = (1 << 36) - 1;

    pub fn new(ds: u64) -> Option<Self> {
        (ds <= Self::MAX).then_some(Self(ds))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn from_offset(t: OffsetDateTime) -> Option<Self> {
        let ds = t.unix_timestamp_nanos().checked_div(100_000_000)?;
        u64::try_from(ds).ok().and_then(Self::new)
    }

    pub fn to_offset(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 100_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl Serialize for Deciseconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // RFC 3339 writes the fraction only as far as it goes: `...:00Z`, `...:00.5Z`.
        let text = self
            .to_offset()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Deciseconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let t = OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| serde::de::Error::custom("not an RFC 3339 time"))?;
        Self::from_offset(t)
            .ok_or_else(|| serde::de::Error::custom("outside the years 1970 to 2187 a TC string holds"))
    }
}

const CORE: &str = "core";

/// Decodes a TC string. Refuses TCF v1, unknown or repeated segments, and any segment that ends inside a
/// field, naming the segment and the bit offset.
pub fn decode(s: &str) -> Result<TcString, SignalError> {
    if s.len() > MAX_STRING_LEN {
        return Err(SignalError::at(TCF, "string", 0, format!("longer than {MAX_STRING_LEN} characters")));
    }
    let mut parts = s.split('.');
    let core = parts.next().unwrap_or_default();
    if core.is_empty() {
        return Err(SignalError::at(TCF, CORE, 0, "the string is empty"));
    }
    let mut tc = decode_core(core)?;
    for (i, part) in parts.enumerate() {
        decode_segment(&mut tc, i + 2, part)?;
    }
    Ok(tc)
}

fn decode_core(text: &str) -> Result<TcString, SignalError> {
    let mut r = Reader::new(TCF, CORE, text)?;
    let version = r.u8(6, "version")?;
    match version {
        2 => {}
        1 => return Err(r.error(0, "TCF v1 strings are not supported (invalid since 2020)")),
        v => return Err(r.error(0, format!("version {v} is not TCF v2"))),
    }
    let created = Deciseconds(r.uint(36, "created")?);
    let last_updated = Deciseconds(r.uint(36, "last_updated")?);
    let cmp_id = r.u16(12, "cmp_id")?;
    let cmp_version = r.u16(12, "cmp_version")?;
    let consent_screen = r.u8(6, "consent_screen")?;
    let consent_language = r.letters("consent_language")?;
    let vendor_list_version = r.u16(12, "vendor_list_version")?;
    let tcf_policy_version = r.u8(6, "tcf_policy_version")?;
    let is_service_specific = r.flag("is_service_specific")?;
    let use_non_standard_texts = r.flag("use_non_standard_texts")?;
    let special_feature_opt_ins = small(r.bitfield(12, "special_feature_opt_ins")?);
    let purposes_consent = small(r.bitfield(24, "purposes_consent")?);
    let purposes_li_transparency = small(r.bitfield(24, "purposes_li_transparency")?);
    let purpose_one_treatment = r.flag("purpose_one_treatment")?;
    let publisher_cc = r.letters("publisher_cc")?;
    let vendor_consents = r.vendor_set("vendor_consents")?;
    let vendor_li = r.vendor_set("vendor_li")?;
    let count = r.uint(12, "publisher_restrictions")?;
    let mut publisher_restrictions = Vec::new();
    for _ in 0..count {
        let at = r.pos();
        let purpose = r.u8(6, "publisher_restrictions")?;
        let restriction_type = r.u8(2, "publisher_restrictions")?;
        if !(1..=24).contains(&purpose) {
            return Err(
                r.error(at, format!("a publisher restriction names purpose {purpose}, outside 1 to 24"))
            );
        }
        if restriction_type == 3 {
            return Err(r.error(at + 6, "a publisher restriction has the undefined type 3"));
        }
        let vendors = r.int_ranges("publisher_restrictions")?;
        publisher_restrictions.push(PublisherRestriction { purpose, restriction_type, vendors });
    }
    Ok(TcString {
        version,
        created,
        last_updated,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        tcf_policy_version,
        is_service_specific,
        use_non_standard_texts,
        special_feature_opt_ins,
        purposes_consent,
        purposes_li_transparency,
        purpose_one_treatment,
        publisher_cc,
        vendor_consents,
        vendor_li,
        publisher_restrictions,
        disclosed_vendors: None,
        allowed_vendors: None,
        publisher_tc: None,
    })
}

fn decode_segment(tc: &mut TcString, index: usize, text: &str) -> Result<(), SignalError> {
    let name = match index {
        2 => "segment 2",
        3 => "segment 3",
        _ => "segment 4",
    };
    if index > 4 {
        return Err(SignalError::at(TCF, name, 0, "a TC string has at most four segments"));
    }
    let mut r = Reader::new(TCF, name, text)?;
    let kind = r.u8(3, "segment_type")?;
    let repeated = || r_error(name, format!("segment type {kind} appears twice"));
    match kind {
        1 if tc.disclosed_vendors.is_none() => {
            tc.disclosed_vendors = Some(r.vendor_set("disclosed_vendors")?)
        }
        2 if tc.allowed_vendors.is_none() => tc.allowed_vendors = Some(r.vendor_set("allowed_vendors")?),
        3 if tc.publisher_tc.is_none() => {
            let pub_purposes_consent = small(r.bitfield(24, "pub_purposes_consent")?);
            let pub_purposes_li = small(r.bitfield(24, "pub_purposes_li")?);
            let num_custom_purposes = r.u8(6, "num_custom_purposes")?;
            let n = usize::from(num_custom_purposes);
            let custom_purposes_consent = small(r.bitfield(n, "custom_purposes_consent")?);
            let custom_purposes_li = small(r.bitfield(n, "custom_purposes_li")?);
            tc.publisher_tc = Some(PublisherTc {
                pub_purposes_consent,
                pub_purposes_li,
                num_custom_purposes,
                custom_purposes_consent,
                custom_purposes_li,
            });
        }
        1..=3 => return Err(repeated()),
        k => return Err(r.error(0, format!("unknown segment type {k}"))),
    }
    Ok(())
}

fn r_error(segment: &'static str, reason: String) -> SignalError {
    SignalError::at(TCF, segment, 0, reason)
}

/// Purpose and feature ids fit a byte (bit fields of at most 63 bits).
fn small(ids: Vec<u16>) -> Vec<u8> {
    ids.into_iter().map(|i| i as u8).collect()
}

/// Encodes the values as a TC string, after checking every value's range; errors name the field.
pub fn encode(tc: &TcString) -> Result<String, SignalError> {
    let tc = normalised(tc);
    validate(&tc)?;
    let mut w = Writer::default();
    w.uint(u64::from(tc.version), 6);
    w.uint(tc.created.0, 36);
    w.uint(tc.last_updated.0, 36);
    w.uint(u64::from(tc.cmp_id), 12);
    w.uint(u64::from(tc.cmp_version), 12);
    w.uint(u64::from(tc.consent_screen), 6);
    w.letters(&tc.consent_language);
    w.uint(u64::from(tc.vendor_list_version), 12);
    w.uint(u64::from(tc.tcf_policy_version), 6);
    w.flag(tc.is_service_specific);
    w.flag(tc.use_non_standard_texts);
    w.bitfield(&wide(&tc.special_feature_opt_ins), 12);
    w.bitfield(&wide(&tc.purposes_consent), 24);
    w.bitfield(&wide(&tc.purposes_li_transparency), 24);
    w.flag(tc.purpose_one_treatment);
    w.letters(&tc.publisher_cc);
    w.vendor_set(&tc.vendor_consents);
    w.vendor_set(&tc.vendor_li);
    w.uint(tc.publisher_restrictions.len() as u64, 12);
    for pr in &tc.publisher_restrictions {
        w.uint(u64::from(pr.purpose), 6);
        w.uint(u64::from(pr.restriction_type), 2);
        w.int_ranges(&pr.vendors);
    }
    let mut out = w.finish(Padding::Traditional);
    for (kind, ids) in [(1u64, &tc.disclosed_vendors), (2, &tc.allowed_vendors)] {
        if let Some(ids) = ids {
            let mut w = Writer::default();
            w.uint(kind, 3);
            w.vendor_set(ids);
            out.push('.');
            out.push_str(&w.finish(Padding::Traditional));
        }
    }
    if let Some(p) = &tc.publisher_tc {
        let mut w = Writer::default();
        w.uint(3, 3);
        w.bitfield(&wide(&p.pub_purposes_consent), 24);
        w.bitfield(&wide(&p.pub_purposes_li), 24);
        w.uint(u64::from(p.num_custom_purposes), 6);
        w.bitfield(&wide(&p.custom_purposes_consent), usize::from(p.num_custom_purposes));
        w.bitfield(&wide(&p.custom_purposes_li), usize::from(p.num_custom_purposes));
        out.push('.');
        out.push_str(&w.finish(Padding::Traditional));
    }
    Ok(out)
}

fn wide(ids: &[u8]) -> Vec<u16> {
    ids.iter().map(|&i| u16::from(i)).collect()
}

fn sort<T: Ord + Copy>(ids: &[T]) -> Vec<T> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// The same values with every id set sorted and without repeats, and the two-letter codes upper case.
fn normalised(tc: &TcString) -> TcString {
    let mut tc = tc.clone();
    tc.consent_language = tc.consent_language.to_ascii_uppercase();
    tc.publisher_cc = tc.publisher_cc.to_ascii_uppercase();
    for set in [&mut tc.special_feature_opt_ins, &mut tc.purposes_consent, &mut tc.purposes_li_transparency] {
        *set = sort(set);
    }
    for set in [&mut tc.vendor_consents, &mut tc.vendor_li] {
        *set = sort(set);
    }
    for pr in &mut tc.publisher_restrictions {
        pr.vendors = sort(&pr.vendors);
    }
    for set in [&mut tc.disclosed_vendors, &mut tc.allowed_vendors].into_iter().flatten() {
        *set = sort(set);
    }
    if let Some(p) = &mut tc.publisher_tc {
        for set in [
            &mut p.pub_purposes_consent,
            &mut p.pub_purposes_li,
            &mut p.custom_purposes_consent,
            &mut p.custom_purposes_li,
        ] {
            *set = sort(set);
        }
    }
    tc
}

fn check_max(field: &'static str, value: u64, bits: u32) -> Result<(), SignalError> {
    let max = (1u64 << bits) - 1;
    if value > max {
        return Err(SignalError::field(TCF, field, format!("must be at most {max}")));
    }
    Ok(())
}

fn check_letters(field: &'static str, value: &str) -> Result<(), SignalError> {
    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(SignalError::field(TCF, field, "must be two letters A-Z"));
    }
    Ok(())
}

fn validate(tc: &TcString) -> Result<(), SignalError> {
    if tc.version != 2 {
        return Err(SignalError::field(TCF, "version", "must be 2 (TCF v2)"));
    }
    check_max("cmp_id", u64::from(tc.cmp_id), 12)?;
    check_max("cmp_version", u64::from(tc.cmp_version), 12)?;
    check_max("consent_screen", u64::from(tc.consent_screen), 6)?;
    check_max("vendor_list_version", u64::from(tc.vendor_list_version), 12)?;
    check_max("tcf_policy_version", u64::from(tc.tcf_policy_version), 6)?;
    check_letters("consent_language", &tc.consent_language)?;
    check_letters("publisher_cc", &tc.publisher_cc)?;
    bits::check_ids(TCF, "special_feature_opt_ins", &tc.special_feature_opt_ins, 12)?;
    bits::check_ids(TCF, "purposes_consent", &tc.purposes_consent, 24)?;
    bits::check_ids(TCF, "purposes_li_transparency", &tc.purposes_li_transparency, 24)?;
    let vendor = u64::from(u16::MAX);
    bits::check_ids(TCF, "vendor_consents", &tc.vendor_consents, vendor)?;
    bits::check_ids(TCF, "vendor_li", &tc.vendor_li, vendor)?;
    check_max("publisher_restrictions", tc.publisher_restrictions.len() as u64, 12)?;
    let mut restricted = 0usize;
    for pr in &tc.publisher_restrictions {
        if !(1..=24).contains(&pr.purpose) {
            return Err(SignalError::field(
                TCF,
                "publisher_restrictions.purpose",
                "must lie between 1 and 24",
            ));
        }
        if pr.restriction_type > 2 {
            return Err(SignalError::field(
                TCF,
                "publisher_restrictions.restriction_type",
                "must be 0 (not allowed), 1 (require consent) or 2 (require legitimate interest)",
            ));
        }
        bits::check_ids(TCF, "publisher_restrictions.vendors", &pr.vendors, vendor)?;
        check_max("publisher_restrictions.vendors", bits::runs(&pr.vendors).len() as u64, 12)?;
        restricted += pr.vendors.len();
    }
    if let Some(ids) = &tc.disclosed_vendors {
        bits::check_ids(TCF, "disclosed_vendors", ids, vendor)?;
    }
    if let Some(ids) = &tc.allowed_vendors {
        bits::check_ids(TCF, "allowed_vendors", ids, vendor)?;
    }
    if restricted > MAX_IDS {
        return Err(SignalError::field(TCF, "publisher_restrictions", "names too many vendors"));
    }
    if let Some(p) = &tc.publisher_tc {
        bits::check_ids(TCF, "publisher_tc.pub_purposes_consent", &p.pub_purposes_consent, 24)?;
        bits::check_ids(TCF, "publisher_tc.pub_purposes_li", &p.pub_purposes_li, 24)?;
        check_max("publisher_tc.num_custom_purposes", u64::from(p.num_custom_purposes), 6)?;
        let n = u64::from(p.num_custom_purposes);
        bits::check_ids(TCF, "publisher_tc.custom_purposes_consent", &p.custom_purposes_consent, n)?;
        bits::check_ids(TCF, "publisher_tc.custom_purposes_li", &p.custom_purposes_li, n)?;
    }
    Ok(())
}

impl TcString {
    /// Whether the string may be taken as evidence of a person's choices today, by the TCF's policy rules:
    /// service-specific only (global scope is invalid since 2021), policy version 4 or later for strings
    /// created after 30 September 2023, the disclosed-vendors segment present from policy version 5
    /// (TCF 2.3), and no policy version newer than this codec knows.
    pub fn check_policy(&self) -> Result<(), SignalError> {
        // 2023-10-01T00:00:00Z in deciseconds.
        const TCF_2_2_CUTOVER: u64 = 16_961_184_000;
        if !self.is_service_specific {
            return Err(SignalError::field(
                TCF,
                "is_service_specific",
                "a TC string of global scope is invalid under the TCF policies",
            ));
        }
        let v = self.tcf_policy_version;
        if v < 2 || (v < 4 && self.created.0 >= TCF_2_2_CUTOVER) {
            return Err(SignalError::field(
                TCF,
                "tcf_policy_version",
                "policy versions before 4 are invalid for strings created after 30 September 2023",
            ));
        }
        if v > LATEST_POLICY_VERSION {
            return Err(SignalError::field(
                TCF,
                "tcf_policy_version",
                "a policy version newer than 5 is not known",
            ));
        }
        if v >= 5 && self.disclosed_vendors.is_none() {
            return Err(SignalError::field(
                TCF,
                "disclosed_vendors",
                "TCF 2.3 (policy version 5) requires the disclosed-vendors segment",
            ));
        }
        Ok(())
    }
}
