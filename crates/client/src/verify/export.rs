//! The exported-ledger file (JSON Lines; its format is in the [`crate::verify`] documentation): writing
//! its lines, reading them back exactly as hashed, and verifying a file with [`LedgerAudit`].

use std::io::BufRead;

use consentry_core::Timestamp;
use consentry_core::ledger::{Action, Event, Scope};
use consentry_core::proof::Jwks;
use serde::{Deserialize, Serialize};

use super::audit::{AuditReport, LedgerAudit, ProblemKind};

/// The outcome of [`verify_export`]: as [`AuditReport`], with the problem's 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    pub ok: bool,
    pub events: u64,
    pub head: String,
    pub checkpoints: u64,
    pub first_bad: Option<ExportProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportProblem {
    /// 1-based line number in the file.
    pub line: u64,
    pub seq: Option<u64>,
    pub kind: ProblemKind,
    pub problem: String,
}

impl From<AuditReport> for ExportReport {
    fn from(r: AuditReport) -> Self {
        Self {
            ok: r.ok,
            events: r.events,
            head: r.head,
            checkpoints: r.checkpoints,
            first_bad: r.first_bad.map(|p| ExportProblem {
                line: p.line.unwrap_or(0),
                seq: p.seq,
                kind: p.kind,
                problem: p.problem,
            }),
        }
    }
}

#[derive(Serialize)]
struct EventLineOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    subject: &'a str,
    purpose: &'a str,
    action: &'static str,
    categories: &'a [String],
    channels: &'a [String],
    recipients: &'a [String],
    notice: Option<&'a str>,
    notice_version: Option<u32>,
    notice_hash: Option<&'a str>,
    collection_point: Option<&'a str>,
    actor: &'a str,
    recorded_at: String,
    expires_at: Option<String>,
    prev_hash: &'a str,
    hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jurisdiction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: Option<String>,
}

#[derive(Serialize)]
struct CheckpointLineOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    jws: &'a str,
}

/// An event as one line of an export (without the line break).
pub fn export_event_line(event: &Event) -> String {
    let line = EventLineOut {
        kind: "event",
        seq: event.seq,
        subject: &event.pseudonym,
        purpose: &event.purpose,
        action: event.action.as_str(),
        categories: &event.scope.categories,
        channels: &event.scope.channels,
        recipients: &event.scope.recipients,
        notice: event.notice.as_deref(),
        notice_version: event.notice_version,
        notice_hash: event.notice_hash.as_deref(),
        collection_point: event.collection_point.as_deref(),
        actor: &event.actor,
        recorded_at: event.recorded_at.to_string(),
        expires_at: event.expires_at.map(|t| t.to_string()),
        prev_hash: &event.prev_hash,
        hash: &event.hash,
        evidence: event.evidence.as_deref(),
        jurisdiction: event.jurisdiction.as_deref(),
        occurred_at: event.occurred_at.map(|t| t.to_string()),
    };
    // Strings, integers and string lists always serialise.
    serde_json::to_string(&line).unwrap_or_default()
}

/// A checkpoint JWS as one line of an export (without the line break).
pub fn export_checkpoint_line(jws: &str) -> String {
    serde_json::to_string(&CheckpointLineOut { kind: "checkpoint", jws }).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLineIn {
    seq: u64,
    subject: String,
    purpose: String,
    action: Action,
    categories: Vec<String>,
    channels: Vec<String>,
    recipients: Vec<String>,
    notice: Option<String>,
    notice_version: Option<u32>,
    notice_hash: Option<String>,
    collection_point: Option<String>,
    actor: String,
    recorded_at: String,
    expires_at: Option<String>,
    prev_hash: String,
    hash: String,
    #[serde(default)]
    evidence: Option<String>,
    #[serde(default)]
    jurisdiction: Option<String>,
    #[serde(default)]
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum LineIn {
    Event(Box<EventLineIn>),
    Checkpoint { jws: String },
}

pub(super) enum ExportLine {
    Event(Box<Event>),
    Checkpoint(String),
}

/// A timestamp in exactly the ledger's rendering (anything else would not be what was hashed).
fn ledger_time(text: &str, field: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).filter(|t| t.to_string() == text).ok_or_else(|| {
        format!("{field} is not a timestamp in the ledger's rendering (2026-01-31T12:00:00.000000Z)")
    })
}

pub(super) fn parse_line(line: &str) -> Result<ExportLine, String> {
    let parsed: LineIn =
        serde_json::from_str(line).map_err(|e| format!("not an event or checkpoint line: {e}"))?;
    let e = match parsed {
        LineIn::Checkpoint { jws } => return Ok(ExportLine::Checkpoint(jws)),
        LineIn::Event(e) => e,
    };
    let recorded_at = ledger_time(&e.recorded_at, "recorded_at")?;
    let expires_at = e.expires_at.as_deref().map(|t| ledger_time(t, "expires_at")).transpose()?;
    let occurred_at = e.occurred_at.as_deref().map(|t| ledger_time(t, "occurred_at")).transpose()?;
    Ok(ExportLine::Event(Box::new(Event {
        evidence: e.evidence,
        jurisdiction: e.jurisdiction,
        occurred_at,
        seq: e.seq,
        pseudonym: e.subject,
        purpose: e.purpose,
        action: e.action,
        // Kept as written: the hash covers the lists exactly as they are.
        scope: Scope { categories: e.categories, channels: e.channels, recipients: e.recipients },
        notice: e.notice,
        notice_version: e.notice_version,
        notice_hash: e.notice_hash,
        collection_point: e.collection_point,
        actor: e.actor,
        recorded_at,
        expires_at,
        prev_hash: e.prev_hash,
        hash: e.hash,
    })))
}

/// Verifies an exported ledger (see the [`crate::verify`] documentation) against Consentry's JWKS. Stops at the
/// first problem and reports its 1-based line. An empty file is an empty ledger, which is ok.
pub fn verify_export(reader: impl BufRead, jwks: &Jwks) -> ExportReport {
    let mut audit = LedgerAudit::new(jwks);
    for (number, line) in (1u64..).zip(reader.lines()) {
        let line = match line {
            Ok(line) => line,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                audit.push_malformed(Some(number), "the line is not UTF-8");
                break;
            }
            Err(e) => {
                audit.push_malformed(Some(number), format!("the file could not be read: {e}"));
                break;
            }
        };
        let going_on = match parse_line(&line) {
            Ok(ExportLine::Event(event)) => audit.push_event(&event, Some(number)),
            Ok(ExportLine::Checkpoint(jws)) => {
                audit.end_events() && audit.push_checkpoint(&jws, Some(number))
            }
            Err(problem) => audit.push_malformed(Some(number), problem),
        };
        if !going_on {
            break;
        }
    }
    audit.finish().into()
}
