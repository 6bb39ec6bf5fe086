//! The line format of imports and exports: one consent change per line, and its checks against the
//! catalogue. A line that fails a check is reported with a stable reason code ([`Reason`]) and never stops
//! the run.

use consentry_core::catalog::{Basis, Catalog, ChangeError};
use consentry_core::{Action, Scope, SubjectId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::guardians::age::StatedAge;

/// One change as a line says it (JSON Lines; CSV maps its columns to the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeLine {
    /// The change's id at its source: with the import's source name, what makes it unique. Re-importing
    /// a line with the same id changes nothing.
    pub source_id: String,
    /// The brand's id of the person.
    pub subject: String,
    /// A purpose of the catalogue; none on a `locate` line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purpose: String,
    /// `grant`, `deny`, `withdraw`, `object`, `restrict`, `renew` or `expire`; or `locate`, which only
    /// sets the subject's `jurisdiction`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// When the change was originally made (RFC 3339); not in the future (beyond [`MAX_SKEW`]).
    pub occurred_at: String,
    /// The subject's jurisdiction (a key of the catalogue's `jurisdictions`) from this change on, as a
    /// live change or `locate` sets it; required on a `locate` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// When a grant lapses (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The notice the person was shown; required for a grant or renewal of a consent purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<String>,
    /// The original receipt, IP address, user agent, form id...: free JSON, whose SHA-256 the event
    /// carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    /// Identifiers to attach to the subject (`{"type": "email", "value": "..."}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<IdentifierLine>,
    /// What is known of the subject's age (a birth date or an age band, and the day it was stated), as
    /// `PUT /v1/subjects/{subject}/age` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<StatedAge>,
}

/// Which version of a notice: by its `version` in Consentry, or by its `text` (a text the catalogue does
/// not hold becomes a version marked imported); neither: the current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeRef {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// Why a line was not imported: a stable code (the error file's and the API's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a JSON object.
    MalformedJson,
    /// A CSV row with more or fewer fields than the header, or a field that does not read.
    MalformedRow,
    /// A required field is absent or empty.
    MissingField,
    /// A field has the wrong type, or the line has a field the format does not know.
    InvalidField,
    LineTooLong,
    NotUtf8,
    InvalidSubject,
    UnknownAction,
    /// `occurred_at` or `expires_at` is not an RFC 3339 time.
    InvalidTime,
    /// `occurred_at` lies in the future.
    OccurredInFuture,
    UnknownPurpose,
    UnknownCategory,
    UnknownChannel,
    UnknownRecipient,
    /// The action is not one the purpose's basis allows (only `object` and `restrict` without consent).
    ActionNotAllowed,
    /// A category, channel or recipient the purpose does not declare.
    NotInPurpose,
    UnknownNotice,
    /// A grant under another notice than its purpose names, or without one.
    NoticeMismatch,
    UnknownCollectionPoint,
    /// `expires_at` on a change that is not a grant or renewal.
    InvalidExpiry,
    InvalidIdentifier,
    /// The identifier belongs to another subject; the change itself was imported.
    IdentifierTaken,
    /// The line names identifiers, and the caller may not attach them (it lacks `identifiers:write`).
    IdentifiersNotAllowed,
    /// The line states an age, and the caller may not set one (it lacks `consent:write`).
    AgeNotAllowed,
    SubjectErased,
    /// A jurisdiction the catalogue does not declare.
    UnknownJurisdiction,
    /// The evidence is larger than [`MAX_EVIDENCE`] as compact JSON.
    EvidenceTooLarge,
    /// An `age` that does not read (a wrong date, an unknown band, both or neither).
    InvalidAge,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::MalformedRow => "malformed_row",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::LineTooLong => "line_too_long",
            Reason::NotUtf8 => "not_utf8",
            Reason::InvalidSubject => "invalid_subject",
            Reason::UnknownAction => "unknown_action",
            Reason::InvalidTime => "invalid_time",
            Reason::OccurredInFuture => "occurred_in_future",
            Reason::UnknownPurpose => "unknown_purpose",
            Reason::UnknownCategory => "unknown_category",
            Reason::UnknownChannel => "unknown_channel",
            Reason::UnknownRecipient => "unknown_recipient",
            Reason::ActionNotAllowed => "action_not_allowed",
            Reason::NotInPurpose => "not_in_purpose",
            Reason::UnknownNotice => "unknown_notice",
            Reason::NoticeMismatch => "notice_mismatch",
            Reason::UnknownCollectionPoint => "unknown_collection_point",
            Reason::InvalidExpiry => "invalid_expiry",
            Reason::InvalidIdentifier => "invalid_identifier",
            Reason::IdentifierTaken => "identifier_taken",
            Reason::IdentifiersNotAllowed => "identifiers_not_allowed",
            Reason::AgeNotAllowed => "age_not_allowed",
            Reason::SubjectErased => "subject_erased",
            Reason::UnknownJurisdiction => "unknown_jurisdiction",
            Reason::EvidenceTooLarge => "evidence_too_large",
            Reason::InvalidAge => "invalid_age",
        }
    }
}

/// A line refused: its number, the reason and a short explanation (never the line's values, which may
/// name the person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineError {
    pub line: u64,
    pub reason: Reason,
    pub detail: String,
}

impl LineError {
    pub fn new(line: u64, reason: Reason, detail: impl Into<String>) -> Self {
        Self { line, reason, detail: detail.into() }
    }
}

/// The fields every line must carry (`purpose` all but a `locate` line, [`check`] says so).
const REQUIRED: [&str; 4] = ["source_id", "subject", "action", "occurred_at"];

/// How far ahead of the importing machine's clock an `occurred_at` may lie (another machine's clock, an
/// export just written): 5 minutes. Such a change is taken as made at the import's start, so it never
/// sorts after a change recorded live after the import.
pub const MAX_SKEW_SECS: i64 = 300;

/// [`MAX_SKEW_SECS`] as the line format's documentation names it.
pub const MAX_SKEW: &str = "5 minutes";

/// The largest evidence a line may carry: 16 KiB of compact JSON (keys sorted). A larger one refuses the
/// line (`evidence_too_large`).
pub const MAX_EVIDENCE: usize = 16 * 1024;

/// [`MAX_EVIDENCE`] as the line format's documentation names it.
pub const MAX_EVIDENCE_TEXT: &str = "16 KiB";

/// Reads one line of JSON as a change.
pub fn parse(number: u64, text: &str) -> Result<ChangeLine, LineError> {
    // Most lines are good: read straight into the change, without a JSON tree first. Any line that does
    // not read so (or lacks a required field) is read again the slow way, which tells why. Only an object:
    // serde would also read a JSON array into the change's fields by position.
    if text.trim_start().starts_with('{')
        && let Ok(line) = serde_json::from_str::<ChangeLine>(text)
        && [&line.source_id, &line.subject, &line.action, &line.occurred_at]
            .iter()
            .all(|f| !f.trim().is_empty())
    {
        return Ok(line);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|_| LineError::new(number, Reason::MalformedJson, "the line is not a JSON object"))?;
    parse_value(number, value)
}

/// Reads a JSON value (a line's, or a CSV row's fields) as a change.
pub fn parse_value(number: u64, value: Value) -> Result<ChangeLine, LineError> {
    let Value::Object(map) = &value else {
        return Err(LineError::new(number, Reason::MalformedJson, "the line is not a JSON object"));
    };
    for field in REQUIRED {
        match map.get(field) {
            None | Some(Value::Null) => {
                return Err(LineError::new(number, Reason::MissingField, format!("{field} is missing")));
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(LineError::new(number, Reason::MissingField, format!("{field} is empty")));
            }
            Some(_) => {}
        }
    }
    serde_json::from_value(value).map_err(|e| LineError::new(number, Reason::InvalidField, field_problem(&e)))
}

/// What serde found wrong, without the value: its messages quote a wrong string or an unknown name
/// (`invalid type: string "ana@example.com", expected ...`), and a line's values may name a person. Only
/// what was expected is kept, which the format itself defines.
fn field_problem(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(", expected ") {
        Some(at) => {
            format!("a field has the wrong type or value (expected {})", &message[at + ", expected ".len()..])
        }
        None => "a field has the wrong type or value, or is not part of the format".to_owned(),
    }
}

/// A change checked against the catalogue, ready to become a ledger event.
#[derive(Debug, Clone)]
pub struct Checked {
    pub line: u64,
    pub source_id: String,
    pub subject: SubjectId,
    pub purpose: String,
    pub action: Action,
    pub scope: Scope,
    /// When the change took effect: the line's `occurred_at`, or the import's start for one ahead of it
    /// (within [`MAX_SKEW_SECS`]).
    pub occurred_at: Timestamp,
    pub jurisdiction: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub notice: Option<NoticeRef>,
    pub collection_point: Option<String>,
    /// `sha256:<hex>` of the evidence's JSON, and the JSON.
    pub evidence: Option<(String, Vec<u8>)>,
    pub identifiers: Vec<IdentifierLine>,
    pub age: Option<StatedAge>,
}

fn time(number: u64, field: &str, text: &str) -> Result<Timestamp, LineError> {
    Timestamp::parse(text.trim()).ok_or_else(|| {
        LineError::new(number, Reason::InvalidTime, format!("{field} is not an RFC 3339 time"))
    })
}

/// Checks a line against the catalogue at `now`. The notice's version is resolved later (it may need the
/// store); here only its key is checked.
pub fn check(number: u64, line: ChangeLine, catalog: &Catalog, now: Timestamp) -> Result<Checked, LineError> {
    let err = |reason, detail: String| LineError::new(number, reason, detail);
    let subject = SubjectId::new(line.subject.trim())
        .map_err(|e| err(Reason::InvalidSubject, format!("subject: {e}")))?;
    let action = Action::parse(line.action.trim()).ok_or_else(|| {
        err(
            Reason::UnknownAction,
            "action must be grant, deny, withdraw, object, restrict, renew, expire or locate".into(),
        )
    })?;
    let occurred_at = time(number, "occurred_at", &line.occurred_at)?;
    if occurred_at.micros() > now.micros().saturating_add(MAX_SKEW_SECS * 1_000_000) {
        return Err(err(Reason::OccurredInFuture, format!("occurred_at lies over {MAX_SKEW} in the future")));
    }
    let occurred_at = occurred_at.min(now);
    if let Some(problem) = line.age.as_ref().and_then(|a| a.problem(now)) {
        return Err(err(Reason::InvalidAge, format!("age: {problem}")));
    }
    let jurisdiction = line.jurisdiction.as_deref().map(str::trim).map(str::to_owned);
    if let Some(j) = &jurisdiction
        && catalog.jurisdiction(j).is_none()
    {
        return Err(err(Reason::UnknownJurisdiction, "the catalogue declares no such jurisdiction".into()));
    }
    if action == Action::Locate {
        return locate(number, line, jurisdiction, occurred_at);
    }
    if line.purpose.trim().is_empty() {
        return Err(err(Reason::MissingField, "purpose is missing".into()));
    }
    let expires_at = line.expires_at.as_deref().map(|t| time(number, "expires_at", t)).transpose()?;
    if expires_at.is_some() && !action.is_positive() {
        return Err(err(Reason::InvalidExpiry, "only a grant or renewal can expire".into()));
    }
    let purpose_key = line.purpose.trim().to_owned();
    let scope = Scope::new(line.categories, line.channels, line.recipients);
    // `expire` is Consentry's own action live, but another platform's lapse is history to keep: it is
    // checked as the withdrawal it amounts to.
    let checked_as = if action == Action::Expire { Action::Withdraw } else { action };
    catalog.check_change(&purpose_key, checked_as, &scope).map_err(|e| {
        let reason = match &e {
            ChangeError::UnknownPurpose => Reason::UnknownPurpose,
            ChangeError::UnknownCategory(_) => Reason::UnknownCategory,
            ChangeError::UnknownChannel(_) => Reason::UnknownChannel,
            ChangeError::UnknownRecipient(_) => Reason::UnknownRecipient,
            ChangeError::ActionNotForBasis { .. } | ChangeError::SystemOnlyAction => Reason::ActionNotAllowed,
            ChangeError::OutsidePurpose { .. } => Reason::NotInPurpose,
        };
        err(reason, e.to_string())
    })?;
    let purpose =
        catalog.purpose(&purpose_key).ok_or_else(|| err(Reason::UnknownPurpose, "unknown purpose".into()))?;
    if let Some(n) = &line.notice
        && catalog.notice(&n.key).is_none()
    {
        return Err(err(Reason::UnknownNotice, "the catalogue has no such notice".into()));
    }
    if action.is_positive() && purpose.basis == Basis::Consent {
        let named = line.notice.as_ref().map(|n| n.key.as_str());
        if named.is_none() || named != purpose.notice.as_deref() {
            return Err(err(
                Reason::NoticeMismatch,
                "consent must be given under the notice its purpose names".into(),
            ));
        }
    }
    if let Some(cp) = &line.collection_point
        && catalog.collection_point(cp).is_none()
    {
        return Err(err(Reason::UnknownCollectionPoint, "the catalogue has no such collection point".into()));
    }
    let evidence = evidence(number, line.evidence)?;
    Ok(Checked {
        line: number,
        source_id: line.source_id.trim().to_owned(),
        subject,
        purpose: purpose_key,
        action,
        scope,
        occurred_at,
        jurisdiction,
        expires_at,
        notice: line.notice,
        collection_point: line.collection_point,
        evidence,
        identifiers: line.identifiers,
        age: line.age,
    })
}

/// A `locate` line: the subject's jurisdiction from `occurred_at` on, and nothing about a purpose.
fn locate(
    number: u64,
    line: ChangeLine,
    jurisdiction: Option<String>,
    occurred_at: Timestamp,
) -> Result<Checked, LineError> {
    let err = |reason, detail: &str| LineError::new(number, reason, detail);
    let subject = SubjectId::new(line.subject.trim())
        .map_err(|e| LineError::new(number, Reason::InvalidSubject, format!("subject: {e}")))?;
    let Some(jurisdiction) = jurisdiction else {
        return Err(err(Reason::MissingField, "a locate line names its jurisdiction"));
    };
    let about_a_purpose = !line.purpose.trim().is_empty()
        || !line.categories.is_empty()
        || !line.channels.is_empty()
        || !line.recipients.is_empty()
        || line.notice.is_some()
        || line.collection_point.is_some();
    if about_a_purpose {
        return Err(err(
            Reason::InvalidField,
            "a locate line names no purpose, scope, notice or collection point",
        ));
    }
    if line.expires_at.is_some() {
        return Err(err(Reason::InvalidExpiry, "only a grant or renewal can expire"));
    }
    let evidence = evidence(number, line.evidence)?;
    Ok(Checked {
        line: number,
        source_id: line.source_id.trim().to_owned(),
        subject,
        purpose: String::new(),
        action: Action::Locate,
        scope: Scope::default(),
        occurred_at,
        jurisdiction: Some(jurisdiction),
        expires_at: None,
        notice: None,
        collection_point: None,
        evidence,
        identifiers: line.identifiers,
        age: line.age,
    })
}

/// A line's evidence as compact JSON (keys sorted) and `sha256:<hex>` of it; refused over
/// [`MAX_EVIDENCE`].
fn evidence(number: u64, value: Option<Value>) -> Result<Option<(String, Vec<u8>)>, LineError> {
    let Some(value) = value else { return Ok(None) };
    let bytes = canonical_json(&value);
    if bytes.len() > MAX_EVIDENCE {
        return Err(LineError::new(
            number,
            Reason::EvidenceTooLarge,
            format!("the evidence is over {} as compact JSON", MAX_EVIDENCE_TEXT),
        ));
    }
    Ok(Some((format!("sha256:{}", hex::encode(Sha256::digest(&bytes))), bytes)))
}

/// `value` as compact JSON with every object's keys sorted: the bytes an evidence's hash is taken over,
/// the same however the source ordered its keys or spaced its JSON.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // A JSON value always serialises.
    serde_json::to_vec(&sorted(value)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::validate(consentry_core::catalog::CatalogDocument::default_catalog()).expect("valid")
    }

    fn reason(text: &str) -> Reason {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").expect("time");
        match parse(7, text).and_then(|l| check(7, l, &catalog(), now)) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => {
                assert_eq!(e.line, 7);
                e.reason
            }
        }
    }

    const GOOD: &str = r#"{"source_id":"a1","subject":"u1","purpose":"marketing.direct","action":"withdraw","occurred_at":"2023-04-01T10:00:00Z"}"#;

    #[test]
    fn every_kind_of_bad_line_has_its_reason() {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").expect("time");
        let good = check(1, parse(1, GOOD).expect("parses"), &catalog(), now).expect("checks");
        assert_eq!(good.action, Action::Withdraw);
        let cases = [
            ("{not json".to_owned(), Reason::MalformedJson),
            ("[1,2]".to_owned(), Reason::MalformedJson),
            (GOOD.replace(r#""purpose":"marketing.direct","#, ""), Reason::MissingField),
            (GOOD.replace(r#""source_id":"a1""#, r#""source_id":"  ""#), Reason::MissingField),
            (GOOD.replace('}', r#","colour":"red"}"#), Reason::InvalidField),
            (GOOD.replace(r#""subject":"u1""#, r#""subject":42"#), Reason::InvalidField),
            (GOOD.replace("withdraw", "agree"), Reason::UnknownAction),
            (GOOD.replace("withdraw", "locate"), Reason::MissingField),
            (
                GOOD.replace(r#""action":"withdraw""#, r#""action":"locate","jurisdiction":"US-CA""#),
                Reason::InvalidField,
            ),
            (
                GOOD.replace(r#""purpose":"marketing.direct","action":"withdraw""#, r#""action":"locate""#),
                Reason::MissingField,
            ),
            (GOOD.replace('}', r#","jurisdiction":"XX-NOWHERE"}"#), Reason::UnknownJurisdiction),
            (GOOD.replace("2023-04-01T10:00:00Z", "yesterday"), Reason::InvalidTime),
            (GOOD.replace("2023-04-01T10:00:00Z", "2030-01-01T00:00:00Z"), Reason::OccurredInFuture),
            (GOOD.replace("2023-04-01T10:00:00Z", "2026-06-01T00:05:01Z"), Reason::OccurredInFuture),
            (GOOD.replace("marketing.direct", "no.such.purpose"), Reason::UnknownPurpose),
            (GOOD.replace("withdraw", "grant"), Reason::NoticeMismatch),
            (GOOD.replace('}', r#","channels":["pigeon"]}"#), Reason::UnknownChannel),
            (GOOD.replace('}', r#","notice":{"key":"nope"}}"#), Reason::UnknownNotice),
            (GOOD.replace('}', r#","expires_at":"2027-01-01T00:00:00Z"}"#), Reason::InvalidExpiry),
            (GOOD.replace('}', r#","collection_point":"nowhere"}"#), Reason::UnknownCollectionPoint),
            (GOOD.replace(r#""subject":"u1""#, r#""subject":"has space""#), Reason::InvalidSubject),
            (GOOD.replace('}', r#","age":{"age_band":"10-12"}}"#), Reason::InvalidAge),
            (
                GOOD.replace('}', r#","age":{"birth_date":"2014-05-01","stated_on":"2030-01-01"}}"#),
                Reason::InvalidAge,
            ),
            (
                GOOD.replace('}', &format!(r#","evidence":{{"receipt":"{}"}}}}"#, "x".repeat(16 * 1024))),
                Reason::EvidenceTooLarge,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(reason(&text), expected, "{text}");
        }
    }

    #[test]
    fn a_time_slightly_ahead_is_taken_as_now_and_a_jurisdiction_is_kept() {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").expect("time");
        let ahead = GOOD.replace("2023-04-01T10:00:00Z", "2026-06-01T00:04:59Z");
        let c = check(1, parse(1, &ahead).expect("parses"), &catalog(), now).expect("within the skew");
        assert_eq!(c.occurred_at, now, "never after what is recorded live later");
        let placed = GOOD.replace('}', r#","jurisdiction":"US-CA"}"#);
        let c = check(1, parse(1, &placed).expect("parses"), &catalog(), now).expect("checks");
        assert_eq!(c.jurisdiction.as_deref(), Some("US-CA"));
        let locate = r#"{"source_id":"l1","subject":"u1","action":"locate","jurisdiction":"US-CA","occurred_at":"2023-04-01T10:00:00Z"}"#;
        let c = check(1, parse(1, locate).expect("parses"), &catalog(), now).expect("checks");
        assert_eq!(
            (c.action, c.purpose.as_str(), c.jurisdiction.as_deref()),
            (Action::Locate, "", Some("US-CA"))
        );
    }

    #[test]
    fn a_wrong_field_is_reported_without_its_value() {
        for text in [
            GOOD.replace('}', r#","channels":"ana@example.com"}"#),
            GOOD.replace('}', r#","ana@example.com":1}"#),
            GOOD.replace(r#""subject":"u1""#, r#""subject":["ana@example.com"]"#),
        ] {
            let e = parse(3, &text).expect_err("refused");
            assert_eq!(e.reason, Reason::InvalidField, "{text}");
            assert!(!e.detail.contains("ana@"), "{}", e.detail);
        }
    }

    #[test]
    fn a_line_reads_the_same_straight_or_through_a_json_tree() {
        let full = r#"{"source_id":" a1 ","subject":"u1","purpose":"marketing.direct","action":"grant","channels":["sms","email"],"occurred_at":"2023-04-01T10:00:00Z","expires_at":"2027-01-01T00:00:00Z","notice":{"key":"marketing.direct","text":"Hi","language":"en"},"collection_point":"web.signup","evidence":{"ip":"203.0.113.9","n":1.5e3},"identifiers":[{"type":"email","value":"a@example.com"}],"age":{"age_band":"16-17"},"jurisdiction":"US-CA"}"#;
        // A repeated key: a JSON tree keeps the last value, which the straight read refuses, so the line is
        // read the slow way and means what it meant before.
        let repeated = GOOD.replace(r#""source_id":"a1""#, r#""source_id":"a0","source_id":"a1""#);
        for text in [GOOD, full, repeated.as_str()] {
            let tree = parse_value(1, serde_json::from_str(text).expect("JSON")).expect("reads");
            assert_eq!(parse(1, text).expect("reads"), tree, "{text}");
        }
        assert_eq!(parse(1, &repeated).expect("reads").source_id, "a1");
        // An array holding the fields in order is not a line, however it would read by position.
        let array = r#"["a1","u1","marketing.direct","grant",[],[],[],"2023-04-01T10:00:00Z"]"#;
        assert_eq!(parse(1, array).expect_err("refused").reason, Reason::MalformedJson);
        // A required field present but empty, or null, is missing either way.
        for text in [
            GOOD.replace(r#""subject":"u1""#, r#""subject":" ""#),
            GOOD.replace(r#""subject":"u1""#, r#""subject":null"#),
        ] {
            assert_eq!(parse(1, &text).expect_err("refused").reason, Reason::MissingField, "{text}");
        }
    }

    #[test]
    fn evidence_is_hashed_as_written() {
        let now = Timestamp::parse("2026-06-01T00:00:00Z").expect("time");
        let text = GOOD.replace('}', r#","evidence":{"ip":"203.0.113.9","form":"f1"}}"#);
        let c = check(1, parse(1, &text).expect("parses"), &catalog(), now).expect("checks");
        let (hash, bytes) = c.evidence.expect("evidence");
        assert_eq!(bytes, br#"{"form":"f1","ip":"203.0.113.9"}"#);
        assert_eq!(hash, format!("sha256:{}", hex::encode(Sha256::digest(&bytes))));
    }
}
