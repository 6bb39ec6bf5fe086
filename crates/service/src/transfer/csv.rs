//! CSV imports: a header row naming the columns, then one change per row (RFC 4180: fields separated by
//! commas, quoted with `"` when they hold a comma, a quote or a line break). Each row becomes the same
//! fields as a JSON line ([`ChangeLine`](super::line::ChangeLine)):
//!
//! | column | field |
//! | --- | --- |
//! | `source_id`, `subject`, `purpose`, `action`, `occurred_at` | the same (required) |
//! | `categories`, `channels`, `recipients` | the lists, their items separated by `\|` |
//! | `expires_at`, `collection_point` | the same |
//! | `notice_key`, `notice_version`, `notice_text`, `notice_language` | `notice.key`, `.version`, `.text`, `.language` |
//! | `evidence` | JSON (an object, or any JSON value) |
//! | `identifiers` | `type:value` items separated by `\|`, e.g. `email:ana@example.com\|account:A-17` |
//! | `jurisdiction` | the same |
//! | `age_birth_date`, `age_band`, `age_stated_on` | `age.birth_date`, `.age_band`, `.stated_on` |
//!
//! Columns may come in any order; an empty cell is an absent field; a column the table does not name
//! stops the import before anything is read (so that a misspelt column never drops data silently). Line
//! numbers count rows (blank lines are none), the header being line 1. Parsed with `csv-core`, the sans-I/O parser of the `csv`
//! crate, from the stream a chunk at a time.

use std::io::Write as _;

use csv_core::{ReadRecordResult, Reader};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::jsonl::Fields;
use super::line::{self, ChangeLine, LineError, Reason};
use super::reader::MAX_LINE;
use crate::error::{Error, Result};

/// Every column a header may name.
pub const COLUMNS: [&str; 21] = [
    "source_id",
    "subject",
    "purpose",
    "action",
    "occurred_at",
    "categories",
    "channels",
    "recipients",
    "expires_at",
    "collection_point",
    "notice_key",
    "notice_version",
    "notice_text",
    "notice_language",
    "evidence",
    "identifiers",
    "jurisdiction",
    "age_birth_date",
    "age_band",
    "age_stated_on",
    // Accepted and ignored: what an export from another platform often carries.
    "comment",
];

/// Most fields a row may have: a header names at most [`COLUMNS`], so a row with many more is refused
/// (`malformed_row`) without holding the position of each of its fields (a row of commas only would
/// otherwise grow the field table without a bound while its text stays short).
pub const MAX_FIELDS: usize = 256;

/// Rows of a CSV input as changes.
pub struct CsvLines<R> {
    inner: R,
    parser: Reader,
    header: Option<Vec<String>>,
    record: Vec<u8>,
    ends: Vec<usize>,
    number: u64,
    bytes: u64,
    finished: bool,
}

/// One row: its fields, or too long to read.
enum Row {
    Fields(Vec<String>),
    TooLong,
    TooManyFields,
    NotUtf8,
}

impl<R: AsyncBufRead + Unpin> CsvLines<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            parser: Reader::new(),
            header: None,
            record: vec![0; 4096],
            ends: vec![0; 32],
            number: 0,
            bytes: 0,
            finished: false,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next row as raw fields, `None` at the end.
    async fn row(&mut self) -> std::io::Result<Option<Row>> {
        if self.finished {
            return Ok(None);
        }
        let (mut out, mut end) = (0, 0);
        let (mut too_long, mut too_many) = (false, false);
        loop {
            let chunk = self.inner.fill_buf().await?;
            let (result, nin, nout, nend) =
                self.parser.read_record(chunk, &mut self.record[out..], &mut self.ends[end..]);
            self.inner.consume(nin);
            self.bytes += nin as u64;
            out += nout;
            end += nend;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if self.record.len() >= MAX_LINE => {
                    // Keep parsing to the row's end, dropping what it holds.
                    too_long = true;
                    (out, end) = (0, 0);
                }
                ReadRecordResult::OutputFull => {
                    let len = self.record.len() * 2;
                    self.record.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull if self.ends.len() >= MAX_FIELDS => {
                    // Keep parsing to the row's end, dropping its fields.
                    too_many = true;
                    (out, end) = (0, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = (self.ends.len() * 2).min(MAX_FIELDS);
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    self.number += 1;
                    if too_long {
                        return Ok(Some(Row::TooLong));
                    }
                    if too_many {
                        return Ok(Some(Row::TooManyFields));
                    }
                    let mut fields = Vec::with_capacity(end);
                    let mut start = 0;
                    for &stop in &self.ends[..end] {
                        match std::str::from_utf8(&self.record[start..stop]) {
                            Ok(f) => fields.push(f.to_owned()),
                            Err(_) => return Ok(Some(Row::NotUtf8)),
                        }
                        start = stop;
                    }
                    return Ok(Some(Row::Fields(fields)));
                }
                ReadRecordResult::End => {
                    self.finished = true;
                    return Ok(None);
                }
            }
        }
    }

    /// The next row (its line number, and its change or why it is refused); `None` at the end. A header
    /// naming an unknown column, or none at all, is an error of the whole input.
    pub async fn next(
        &mut self,
    ) -> Result<Option<(u64, Option<std::result::Result<ChangeLine, LineError>>)>> {
        let io = |e: std::io::Error| Error::validation("body", format!("the input could not be read: {e}"));
        if self.header.is_none() {
            let header = match self.row().await.map_err(io)? {
                None => return Ok(None),
                Some(Row::Fields(fields)) => fields,
                Some(_) => return Err(Error::validation("header", "the CSV header does not read")),
            };
            let header: Vec<String> =
                header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_owned()).collect();
            if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
                return Err(Error::validation(
                    "header",
                    format!("unknown CSV column {unknown:?} (see docs/import.md)"),
                ));
            }
            self.header = Some(header);
        }
        let Some(row) = self.row().await.map_err(io)? else { return Ok(None) };
        let n = self.number;
        let fields = match row {
            Row::Fields(f) if f.len() == 1 && f[0].trim().is_empty() => return Ok(Some((n, None))),
            Row::Fields(f) => f,
            Row::TooLong => {
                return Ok(Some((
                    n,
                    Some(Err(LineError::new(n, Reason::LineTooLong, "the row is too long"))),
                )));
            }
            Row::NotUtf8 => {
                return Ok(Some((n, Some(Err(LineError::new(n, Reason::NotUtf8, "the row is not UTF-8"))))));
            }
            Row::TooManyFields => {
                let detail = format!("more than {MAX_FIELDS} fields");
                return Ok(Some((n, Some(Err(LineError::new(n, Reason::MalformedRow, detail))))));
            }
        };
        let header = self.header.as_deref().unwrap_or_default();
        Ok(Some((n, Some(to_change(n, header, fields)))))
    }
}

/// A row's fields under `header` as a change.
fn to_change(n: u64, header: &[String], fields: Vec<String>) -> std::result::Result<ChangeLine, LineError> {
    if fields.len() != header.len() {
        return Err(LineError::new(
            n,
            Reason::MalformedRow,
            format!("{} fields where the header names {}", fields.len(), header.len()),
        ));
    }
    let list = |cell: &str| -> Value {
        Value::Array(
            cell.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )
    };
    let mut map = Map::new();
    let mut notice = Map::new();
    let mut age = Map::new();
    for (column, cell) in header.iter().zip(fields) {
        if cell.trim().is_empty() {
            continue;
        }
        match column.as_str() {
            "categories" | "channels" | "recipients" => {
                map.insert(column.clone(), list(&cell));
            }
            "notice_key" => {
                notice.insert("key".into(), Value::String(cell));
            }
            "notice_version" => {
                let v: u32 = cell.trim().parse().map_err(|_| {
                    LineError::new(n, Reason::InvalidField, "notice_version is not a whole number")
                })?;
                notice.insert("version".into(), Value::from(v));
            }
            "notice_text" => {
                notice.insert("text".into(), Value::String(cell));
            }
            "notice_language" => {
                notice.insert("language".into(), Value::String(cell));
            }
            "evidence" => {
                let v: Value = serde_json::from_str(&cell)
                    .map_err(|_| LineError::new(n, Reason::InvalidField, "evidence is not JSON"))?;
                map.insert("evidence".into(), v);
            }
            "identifiers" => {
                let mut items = Vec::new();
                for item in cell.split('|').map(str::trim).filter(|s| !s.is_empty()) {
                    let (kind, value) = item.split_once(':').ok_or_else(|| {
                        LineError::new(n, Reason::InvalidField, "identifiers are type:value items")
                    })?;
                    items.push(serde_json::json!({"type": kind.trim(), "value": value.trim()}));
                }
                map.insert("identifiers".into(), Value::Array(items));
            }
            "age_birth_date" | "age_band" | "age_stated_on" => {
                let field = column.strip_prefix("age_").filter(|f| *f != "band").unwrap_or("age_band");
                age.insert(field.into(), Value::String(cell));
            }
            "comment" => {}
            _ => {
                map.insert(column.clone(), Value::String(cell));
            }
        }
    }
    if !notice.is_empty() {
        map.insert("notice".into(), Value::Object(notice));
    }
    if !age.is_empty() {
        map.insert("age".into(), Value::Object(age));
    }
    line::parse_value(n, Value::Object(map))
}

/// The CSV header of an export, in [`COLUMNS`] order (without `comment`).
pub fn header() -> String {
    COLUMNS[..COLUMNS.len() - 1].join(",")
}

/// Appends one change as a CSV row under [`header`] (without its line break) to `out`, straight from the
/// line's fields: no text per cell.
pub(super) fn write_row(out: &mut Vec<u8>, f: &Fields<'_>) {
    let notice = f.notice.map(|n| &n.reference);
    let _ = write!(out, "evt_{},", f.seq);
    cell(out, &[f.subject]);
    out.push(b',');
    cell(out, &[f.purpose]);
    out.push(b',');
    cell(out, &[f.action]);
    let _ = write!(out, ",{},", f.occurred_at);
    list(out, f.categories.iter().map(|c| [c.as_str()]));
    out.push(b',');
    list(out, f.channels.iter().map(|c| [c.as_str()]));
    out.push(b',');
    list(out, f.recipients.iter().map(|c| [c.as_str()]));
    out.push(b',');
    if let Some(t) = f.expires_at {
        let _ = write!(out, "{t}");
    }
    out.push(b',');
    cell(out, &[f.collection_point.unwrap_or_default()]);
    out.push(b',');
    cell(out, &[notice.map_or("", |n| n.key.as_str())]);
    out.push(b',');
    if let Some(v) = notice.and_then(|n| n.version) {
        let _ = write!(out, "{v}");
    }
    out.push(b',');
    cell(out, &[notice.and_then(|n| n.text.as_deref()).unwrap_or_default()]);
    out.push(b',');
    cell(out, &[notice.and_then(|n| n.language.as_deref()).unwrap_or_default()]);
    out.push(b',');
    if let Some(evidence) = f.evidence {
        let json = line::canonical_json(evidence);
        cell(out, &[std::str::from_utf8(&json).unwrap_or_default()]);
    }
    out.push(b',');
    list(out, f.identifiers.iter().map(|i| [i.kind.as_str(), ":", i.value.as_str()]));
    out.push(b',');
    cell(out, &[f.jurisdiction.unwrap_or_default()]);
    let age = f.age;
    for part in [
        age.and_then(|a| a.birth_date.as_deref()),
        age.and_then(|a| a.age_band.as_deref()),
        age.and_then(|a| a.stated_on.as_deref()),
    ] {
        out.push(b',');
        cell(out, &[part.unwrap_or_default()]);
    }
}

/// Whether a cell holding `text` is quoted (RFC 4180): when it holds a comma, a quote or a line break.
fn needs_quotes(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// A cell made of `parts`, quoted (its quotes doubled) when any part needs it.
fn cell(out: &mut Vec<u8>, parts: &[&str]) {
    let quoted = parts.iter().any(|p| needs_quotes(p));
    if quoted {
        out.push(b'"');
    }
    for part in parts {
        push(out, part, quoted);
    }
    if quoted {
        out.push(b'"');
    }
}

/// A cell of `items` (each made of its parts) separated by `|`, quoted as a whole when any needs it.
fn list<'a, const N: usize>(out: &mut Vec<u8>, items: impl Iterator<Item = [&'a str; N]> + Clone) {
    let quoted = items.clone().any(|i| i.iter().any(|p| needs_quotes(p)));
    if quoted {
        out.push(b'"');
    }
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.push(b'|');
        }
        for part in item {
            push(out, part, quoted);
        }
    }
    if quoted {
        out.push(b'"');
    }
}

/// `text` into a cell; in a quoted one with its quotes doubled.
fn push(out: &mut Vec<u8>, text: &str, quoted: bool) {
    if quoted && text.contains('"') {
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use consentry_core::Timestamp;

    use super::super::jsonl::Notice;
    use super::super::line::{IdentifierLine, NoticeRef};
    use super::*;
    use crate::guardians::age::StatedAge;

    async fn read(input: &str) -> Result<Vec<(u64, std::result::Result<ChangeLine, Reason>)>> {
        let mut r = CsvLines::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some((n, l)) = r.next().await? {
            if let Some(l) = l {
                out.push((n, l.map_err(|e| e.reason)));
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn rows_map_to_the_line_fields() {
        let input = "subject,source_id,purpose,action,occurred_at,channels,notice_key,notice_text,identifiers,evidence\n\
            u1,a1,marketing.direct,grant,2023-01-02T03:04:05Z,email|sms,marketing.direct,\"Say \"\"yes\"\",\nplease\",email:ana@example.com|account:A-1,\"{\"\"ip\"\":\"\"203.0.113.9\"\"}\"\n\
            \n\
            u2,a2,marketing.direct,withdraw,2023-01-02T03:04:05Z,,,,,\n\
            u3,a3,too,few\n";
        let rows = read(input).await.expect("reads");
        assert_eq!(rows.len(), 3);
        let (n, first) = &rows[0];
        let first = first.as_ref().expect("parses");
        assert_eq!(*n, 2);
        assert_eq!(first.channels, ["email", "sms"]);
        let notice = first.notice.as_ref().expect("notice");
        assert_eq!(notice.text.as_deref(), Some("Say \"yes\",\nplease"));
        assert_eq!(first.identifiers.len(), 2);
        assert_eq!(first.evidence, Some(serde_json::json!({"ip": "203.0.113.9"})));
        // Row numbers count the header but not the blank line, which is no row.
        assert_eq!(rows[1].0, 3);
        assert!(rows[1].1.as_ref().is_ok_and(|l| l.notice.is_none() && l.channels.is_empty()));
        assert_eq!(rows[2], (4, Err(Reason::MalformedRow)));
    }

    #[tokio::test]
    async fn rows_are_bounded_in_length_and_fields() {
        let header = "subject,source_id,purpose,action,occurred_at";
        let good = "u1,a1,analytics,withdraw,2023-01-02T03:04:05Z";
        let commas = ",".repeat(1_000_000);
        let long = format!("u2,\"{}\",analytics,withdraw,2023-01-02T03:04:05Z", "x".repeat(MAX_LINE));
        let input = format!("{header}\n{commas}\n{long}\n{good}\n");
        let mut r = CsvLines::new(input.as_bytes());
        let mut rows = Vec::new();
        while let Some((n, l)) = r.next().await.expect("reads") {
            rows.push((n, l.map(|l| l.map(|c| c.source_id).map_err(|e| e.reason))));
        }
        assert_eq!(
            rows,
            vec![
                (2, Some(Err(Reason::MalformedRow))),
                (3, Some(Err(Reason::LineTooLong))),
                (4, Some(Ok("a1".to_owned()))),
            ]
        );
        assert!(r.ends.len() <= MAX_FIELDS, "the field table stays bounded: {}", r.ends.len());
        assert!(r.record.len() <= 2 * MAX_LINE, "the row buffer stays bounded: {}", r.record.len());
    }

    #[tokio::test]
    async fn an_unknown_column_stops_the_import() {
        let e = read("subject,source_id,purpose,action,occured_at\n").await.expect_err("refused");
        assert_eq!(e.code(), "validation_failed");
    }

    /// A row as the export wrote it before it wrote rows in place: a text per cell, from a `ChangeLine`.
    fn reference_row(line: &ChangeLine) -> String {
        let quote = |cell: &str| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.to_owned()
            }
        };
        let join = |l: &[String]| l.join("|");
        let notice = line.notice.as_ref();
        let age = line.age.as_ref();
        let identifiers: Vec<String> =
            line.identifiers.iter().map(|i| format!("{}:{}", i.kind, i.value)).collect();
        let cells = [
            line.source_id.clone(),
            line.subject.clone(),
            line.purpose.clone(),
            line.action.clone(),
            line.occurred_at.clone(),
            join(&line.categories),
            join(&line.channels),
            join(&line.recipients),
            line.expires_at.clone().unwrap_or_default(),
            line.collection_point.clone().unwrap_or_default(),
            notice.map(|n| n.key.clone()).unwrap_or_default(),
            notice.and_then(|n| n.version).map(|v| v.to_string()).unwrap_or_default(),
            notice.and_then(|n| n.text.clone()).unwrap_or_default(),
            notice.and_then(|n| n.language.clone()).unwrap_or_default(),
            line.evidence
                .as_ref()
                .map(|v| String::from_utf8(line::canonical_json(v)).unwrap_or_default())
                .unwrap_or_default(),
            identifiers.join("|"),
            line.jurisdiction.clone().unwrap_or_default(),
            age.and_then(|a| a.birth_date.clone()).unwrap_or_default(),
            age.and_then(|a| a.age_band.clone()).unwrap_or_default(),
            age.and_then(|a| a.stated_on.clone()).unwrap_or_default(),
        ];
        cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
    }

    /// `line` (its source id `evt_<seq>`, its times as the export writes them) as [`write_row`] writes it.
    fn written(line: &ChangeLine) -> String {
        let seq = line.source_id.strip_prefix("evt_").and_then(|s| s.parse().ok()).expect("an event id");
        let time = |t: &str| Timestamp::parse(t).expect("time");
        let notice = line.notice.clone().map(Notice::new);
        let mut out = Vec::new();
        let fields = Fields::of_line(
            line,
            seq,
            time(&line.occurred_at),
            line.expires_at.as_deref().map(time),
            notice.as_ref(),
        );
        write_row(&mut out, &fields);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn rows_are_written_as_their_cells_were() {
        let bare = line::parse(
            1,
            r#"{"source_id":"evt_7","subject":"u1","action":"locate","jurisdiction":"EU","occurred_at":"2023-04-01T10:00:00.123456Z"}"#,
        )
        .expect("parses");
        let full = ChangeLine {
            source_id: "evt_18446744073709551615".into(),
            subject: "ana, \"the\" sub\rject\n ü 😀".into(),
            purpose: "marketing.direct".into(),
            action: "grant".into(),
            categories: vec!["email".into(), "a,b".into()],
            channels: vec!["web".into(), "sms".into()],
            recipients: vec!["x".into(), "y\"".into(), "z".into()],
            occurred_at: "2023-04-01T10:00:00.123456Z".into(),
            jurisdiction: Some("US-CA".into()),
            expires_at: Some("2024-12-31T23:59:59.000000Z".into()),
            notice: Some(NoticeRef {
                key: "marketing.direct".into(),
                version: Some(3),
                text: Some("We'd like to \"write\" to you.\r\nLine two, ß".into()),
                language: Some("de".into()),
            }),
            collection_point: Some("form \"a\"".into()),
            evidence: Some(
                serde_json::json!({"z": "1", "ip": "10.0.0.1", "a": {"c": [1, 2.5, null], "b": "x"}}),
            ),
            identifiers: vec![
                IdentifierLine { kind: "email".into(), value: "ana@example.com".into() },
                IdentifierLine { kind: "account".into(), value: "A,\"17\"".into() },
            ],
            age: Some(StatedAge {
                birth_date: Some("2010-01-02".into()),
                age_band: None,
                stated_on: Some("2023-01-01".into()),
            }),
        };
        let mut plain = full.clone();
        plain.subject = "ana".into();
        plain.categories = vec!["email".into()];
        plain.recipients = vec![];
        plain.identifiers.pop();
        plain.evidence = Some(serde_json::json!("one string"));
        plain.notice = Some(NoticeRef { key: "k".into(), version: None, text: None, language: None });
        plain.collection_point = None;
        plain.age = Some(StatedAge { birth_date: None, age_band: Some("13-15".into()), stated_on: None });
        for line in [bare, full, plain] {
            assert_eq!(written(&line), reference_row(&line));
        }
    }

    #[tokio::test]
    async fn rows_written_read_back_the_same() {
        let line = line::parse(1, r#"{"source_id":"evt_1","subject":"u,1","purpose":"p","action":"grant","occurred_at":"2023-01-02T03:04:05.000000Z","jurisdiction":"US-CA","channels":["email","sms"],"notice":{"key":"p","version":2},"evidence":{"b":1,"a":"x"},"identifiers":[{"type":"email","value":"a@example.com"}]}"#).expect("parses");
        let text = format!("{}\n{}\n", header(), written(&line));
        let rows = read(&text).await.expect("reads");
        assert_eq!(rows, vec![(2, Ok(line))]);
    }
}
