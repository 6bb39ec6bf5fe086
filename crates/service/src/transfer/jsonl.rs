//! An export's JSON lines written straight into the page, byte for byte as serde writes a
//! [`ChangeLine`](super::line::ChangeLine) (its fields in order, empty ones left out), but without a
//! `ChangeLine` per line: no copy of each field, and a notice version's JSON (its text is most of a line)
//! made once per version and copied into every line that names it. The line's [`Fields`] are the CSV
//! writer's too ([`csv::write_row`](super::csv::write_row)).

use std::io::Write as _;

use consentry_core::Timestamp;
use serde_json::Value;

use super::line::{IdentifierLine, NoticeRef};
use crate::guardians::age::StatedAge;

/// A notice version as lines name it (by its text and language), with its JSON made once.
pub(super) struct Notice {
    pub reference: NoticeRef,
    /// `reference` as JSON.
    pub json: Vec<u8>,
}

impl Notice {
    pub fn new(reference: NoticeRef) -> Self {
        // A struct of strings always serialises into memory.
        let json = serde_json::to_vec(&reference).unwrap_or_default();
        Self { reference, json }
    }
}

/// One line's fields, borrowed from the event they come from.
pub(super) struct Fields<'a> {
    pub seq: u64,
    pub subject: &'a str,
    pub purpose: &'a str,
    pub action: &'a str,
    pub categories: &'a [String],
    pub channels: &'a [String],
    pub recipients: &'a [String],
    pub occurred_at: Timestamp,
    pub jurisdiction: Option<&'a str>,
    pub expires_at: Option<Timestamp>,
    pub notice: Option<&'a Notice>,
    pub collection_point: Option<&'a str>,
    pub evidence: Option<&'a Value>,
    pub identifiers: &'a [IdentifierLine],
    pub age: Option<&'a StatedAge>,
}

#[cfg(test)]
impl<'a> Fields<'a> {
    /// The fields of `line` placed at `seq`, as the export gives them (the tests' reference lines).
    pub(super) fn of_line(
        line: &'a super::line::ChangeLine,
        seq: u64,
        occurred_at: Timestamp,
        expires_at: Option<Timestamp>,
        notice: Option<&'a Notice>,
    ) -> Self {
        Fields {
            seq,
            subject: &line.subject,
            purpose: &line.purpose,
            action: &line.action,
            categories: &line.categories,
            channels: &line.channels,
            recipients: &line.recipients,
            occurred_at,
            jurisdiction: line.jurisdiction.as_deref(),
            expires_at,
            notice,
            collection_point: line.collection_point.as_deref(),
            evidence: line.evidence.as_ref(),
            identifiers: &line.identifiers,
            age: line.age.as_ref(),
        }
    }
}

/// Appends the line (without its line break) to `out`.
pub(super) fn write(out: &mut Vec<u8>, f: &Fields<'_>) {
    // Writing into a `Vec` never fails, and neither does serialising strings, lists of them, JSON values
    // or a struct of optional strings.
    let _ = write!(out, "{{\"source_id\":\"evt_{}\",\"subject\":", f.seq);
    string(out, f.subject);
    if !f.purpose.is_empty() {
        out.extend_from_slice(b",\"purpose\":");
        string(out, f.purpose);
    }
    out.extend_from_slice(b",\"action\":");
    string(out, f.action);
    list(out, "categories", f.categories);
    list(out, "channels", f.channels);
    list(out, "recipients", f.recipients);
    let _ = write!(out, ",\"occurred_at\":\"{}\"", f.occurred_at);
    if let Some(j) = f.jurisdiction {
        out.extend_from_slice(b",\"jurisdiction\":");
        string(out, j);
    }
    if let Some(t) = f.expires_at {
        let _ = write!(out, ",\"expires_at\":\"{t}\"");
    }
    if let Some(n) = f.notice {
        out.extend_from_slice(b",\"notice\":");
        out.extend_from_slice(&n.json);
    }
    if let Some(c) = f.collection_point {
        out.extend_from_slice(b",\"collection_point\":");
        string(out, c);
    }
    if let Some(e) = f.evidence {
        out.extend_from_slice(b",\"evidence\":");
        let _ = serde_json::to_writer(&mut *out, e);
    }
    if !f.identifiers.is_empty() {
        out.extend_from_slice(b",\"identifiers\":");
        let _ = serde_json::to_writer(&mut *out, f.identifiers);
    }
    if let Some(a) = f.age {
        out.extend_from_slice(b",\"age\":");
        let _ = serde_json::to_writer(&mut *out, a);
    }
    out.push(b'}');
}

/// A JSON string: copied as it is when nothing in it needs escaping (the usual case), else as serde
/// escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn list(out: &mut Vec<u8>, name: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::super::line::ChangeLine;
    use super::*;

    /// The line as serde writes it from a `ChangeLine`, and as [`write`] does.
    fn both(
        line: &ChangeLine,
        seq: u64,
        occurred: Timestamp,
        expires: Option<Timestamp>,
    ) -> (String, String) {
        let expected = serde_json::to_string(line).expect("serialises");
        let notice = line.notice.clone().map(Notice::new);
        let mut out = Vec::new();
        write(&mut out, &Fields::of_line(line, seq, occurred, expires, notice.as_ref()));
        (expected, String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn lines_are_written_as_serde_writes_them() {
        let at = Timestamp::parse("2023-04-01T10:00:00.123456Z").expect("time");
        let later = Timestamp::parse("2024-12-31T23:59:59Z").expect("time");
        let bare = ChangeLine {
            source_id: "evt_7".into(),
            subject: "u1".into(),
            purpose: String::new(),
            action: "locate".into(),
            categories: vec![],
            channels: vec![],
            recipients: vec![],
            occurred_at: at.to_string(),
            jurisdiction: None,
            expires_at: None,
            notice: None,
            collection_point: None,
            evidence: None,
            identifiers: vec![],
            age: None,
        };
        let (a, b) = both(&bare, 7, at, None);
        assert_eq!(a, b);
        // Every field, and strings that need escaping (quotes, backslashes, control characters, non-ASCII).
        let full = ChangeLine {
            source_id: "evt_18446744073709551615".into(),
            subject: "ana \"the\" \\ sub\u{1}ject\n ü 😀".into(),
            purpose: "marketing.direct".into(),
            action: "grant".into(),
            categories: vec!["email".into(), "a\tb".into()],
            channels: vec!["web".into()],
            recipients: vec!["x".into(), "y\"".into(), "z".into()],
            occurred_at: at.to_string(),
            jurisdiction: Some("EU\u{7f}".into()),
            expires_at: Some(later.to_string()),
            notice: Some(NoticeRef {
                key: "marketing.direct".into(),
                version: None,
                text: Some("We'd like to \"write\" to you.\r\nLine two \u{2028} ß".into()),
                language: Some("de".into()),
            }),
            collection_point: Some("form/\u{0}".into()),
            evidence: Some(serde_json::json!({"ip": "10.0.0.1", "z": [1, 2.5, null, true], "a": {"b": "c"}})),
            identifiers: vec![IdentifierLine { kind: "email".into(), value: "ana@example.com".into() }],
            age: Some(StatedAge {
                birth_date: Some("2010-01-02".into()),
                age_band: None,
                stated_on: Some("2023-01-01".into()),
            }),
        };
        let (a, b) = both(&full, u64::MAX, at, Some(later));
        assert_eq!(a, b);
        // Each optional field alone.
        let mut one = bare.clone();
        one.purpose = "analytics".into();
        one.action = "withdraw".into();
        one.channels = vec!["sms".into()];
        let (a, b) = both(&one, 7, at, None);
        assert_eq!(a, b);
        let mut noticed = one.clone();
        noticed.notice = Some(NoticeRef { key: "k".into(), version: Some(3), text: None, language: None });
        noticed.age = Some(StatedAge { birth_date: None, age_band: Some("13-15".into()), stated_on: None });
        let (a, b) = both(&noticed, 7, at, None);
        assert_eq!(a, b);
    }
}
