//! Offline verification of Consentry's proofs: signed consent receipts and exported ledgers with their
//! signed checkpoints. Needs only the JWKS Consentry publishes; no call to Consentry is made.
//!
//! # The exported-ledger format (JSON Lines)
//!
//! One JSON object per line (`\n` or `\r\n`), no blank lines. First every event, in sequence order:
//!
//! `{"type":"event","seq":..,"subject":..,"purpose":..,"action":..,"categories":[..],"channels":[..],
//! "recipients":[..],"notice":..,"notice_version":..,"notice_hash":..,"collection_point":..,"actor":..,
//! "recorded_at":..,"expires_at":..,"prev_hash":..,"hash":..}`
//!
//! carrying every hashed field of the event (see `consentry_core::ledger`; `subject` is the pseudonym and
//! timestamps use the ledger's exact rendering), and nothing else. Then checkpoint lines
//! `{"type":"checkpoint","jws":".."}`, each a JWS of a [`Checkpoint`] signed by a key of the JWKS.
//!
//! [`verify_export`] checks every link of the chain and every checkpoint: its signature, and that the
//! file holds the `events` events it claims with its `head` as the hash of the last of them, which finds
//! events cut off the end. The server's audit endpoint runs the same rules through [`LedgerAudit`] (or
//! [`verify_chain_with_checkpoints`]) on the events it reads from its store.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::io::BufRead;

use consentry_core::Timestamp;
use consentry_core::ledger::{Action, BreakKind, ChainVerifier, Event, GENESIS_HASH, Scope};
pub use consentry_core::proof::{Checkpoint, ConsentReceipt, Jwk, Jwks, JwsError};
use consentry_core::proof::{RECEIPT_SCHEMA, verify_jws};
use serde::{Deserialize, Serialize};

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The JWS itself: malformed, another algorithm, unknown kid or a bad signature.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// The signature holds, but the payload is not a consent receipt.
    #[error("the signed payload is not a consent receipt")]
    NotAReceipt,
    /// A receipt of a schema this version does not know.
    #[error("unsupported receipt schema (expected {RECEIPT_SCHEMA})")]
    UnsupportedSchema,
}

/// Verifies a receipt JWS against Consentry's JWKS and returns the receipt.
pub fn verify_receipt(jws: &str, jwks: &Jwks) -> Result<ConsentReceipt, VerifyError> {
    let (_, payload) = verify_jws(jws, jwks)?;
    let receipt: ConsentReceipt = serde_json::from_slice(&payload).map_err(|_| VerifyError::NotAReceipt)?;
    if receipt.schema_version.split(';').next().map(str::trim) != Some(RECEIPT_SCHEMA) {
        return Err(VerifyError::UnsupportedSchema);
    }
    Ok(receipt)
}

/// What kind of problem an audit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line that is not a valid event or checkpoint line, or an event after the checkpoints.
    Malformed,
    /// An event's hash does not match its content: the event was changed.
    HashMismatch,
    /// An event's `prev_hash` is not the previous event's hash.
    PrevHashMismatch,
    /// Not the next sequence number: an event removed, reordered or inserted.
    SequenceGap,
    /// A checkpoint whose JWS does not verify (bad signature, unknown kid, other algorithm) or whose
    /// payload is not a checkpoint.
    BadCheckpoint,
    /// A checkpoint claims more events than there are: events were cut off the end.
    Truncated,
    /// A checkpoint's head is not the hash of the event it counts up to.
    HeadMismatch,
}

impl From<BreakKind> for ProblemKind {
    fn from(kind: BreakKind) -> Self {
        match kind {
            BreakKind::HashMismatch => ProblemKind::HashMismatch,
            BreakKind::PrevHashMismatch => ProblemKind::PrevHashMismatch,
            BreakKind::SequenceGap => ProblemKind::SequenceGap,
        }
    }
}

/// The first problem an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// 1-based line of an exported file, when the caller gave lines.
    pub line: Option<u64>,
    /// 0-based position of the offending event among the events pushed.
    pub event_index: Option<u64>,
    /// 0-based position of the offending checkpoint among the checkpoints pushed.
    pub checkpoint_index: Option<u64>,
    /// The sequence number found at the break, the first one missing, or the one a checkpoint's head
    /// should be the hash of.
    pub seq: Option<u64>,
    pub kind: ProblemKind,
    /// A sentence for people; holds no personal data (the ledger holds none).
    pub problem: String,
}

/// The outcome of an audit. `events`, `head` and `checkpoints` describe what verified before the first
/// problem, if any: the number of events that verified in order, the hash of the last of them (the
/// genesis hash when none did) and the number of checkpoints that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub events: u64,
    pub head: String,
    pub checkpoints: u64,
    pub first_bad: Option<AuditProblem>,
}

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

/// A checkpoint that verified, waiting for the events it counts.
#[derive(Debug, Clone)]
struct PendingCheckpoint {
    index: u64,
    line: Option<u64>,
    head: String,
}

/// Checks a ledger and its checkpoints as they stream by; the one set of rules behind [`verify_export`],
/// [`verify_chain_with_checkpoints`] and the server's audit endpoint.
///
/// Push events in ledger order with [`push_event`](Self::push_event) and checkpoints with
/// [`push_checkpoint`](Self::push_checkpoint), in any interleaving: a checkpoint ahead of the events is
/// checked when its last event arrives (or found cut off by [`finish`](Self::finish)); one behind them is
/// checked against the hashes kept so far (32 bytes per event; see
/// [`without_hash_history`](Self::without_hash_history) when all checkpoints come first). The first
/// problem stops the audit: every push after it returns `false` and is ignored.
#[derive(Debug)]
pub struct LedgerAudit<'k> {
    jwks: &'k Jwks,
    chain: ChainVerifier,
    /// Events that verified in order.
    events: u64,
    events_pushed: u64,
    checkpoints_ok: u64,
    checkpoints_pushed: u64,
    /// No more events will come: checkpoints ahead of the events are cut off.
    events_ended: bool,
    keep_hashes: bool,
    /// `hashes[i]` is the hash of the event with sequence number `i + 1`.
    hashes: Vec<[u8; 32]>,
    /// Verified checkpoints ahead of the events, by the number of events they count.
    pending: BTreeMap<u64, Vec<PendingCheckpoint>>,
    first_bad: Option<AuditProblem>,
}

impl<'k> LedgerAudit<'k> {
    pub fn new(jwks: &'k Jwks) -> Self {
        Self {
            jwks,
            chain: ChainVerifier::new(),
            events: 0,
            events_pushed: 0,
            checkpoints_ok: 0,
            checkpoints_pushed: 0,
            events_ended: false,
            keep_hashes: true,
            hashes: Vec::new(),
            pending: BTreeMap::new(),
            first_bad: None,
        }
    }

    /// Keeps no event hashes, for callers that push every checkpoint before the events (the server).
    /// A checkpoint pushed after the events it counts can then only be checked when it counts all of
    /// them (or none); any other is reported as a problem.
    pub fn without_hash_history(mut self) -> Self {
        self.keep_hashes = false;
        self.hashes = Vec::new();
        self
    }

    /// Whether no problem has been found so far.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }

    fn fail(&mut self, problem: AuditProblem) -> bool {
        if self.first_bad.is_none() {
            self.first_bad = Some(problem);
        }
        false
    }

    /// Checks the next event; `line` is where it was read from, if anywhere. Returns `false` once the
    /// audit has found a problem.
    pub fn push_event(&mut self, event: &Event, line: Option<u64>) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        let index = self.events_pushed;
        self.events_pushed += 1;
        if self.events_ended {
            return self.fail(AuditProblem {
                line,
                event_index: Some(index),
                checkpoint_index: None,
                seq: Some(event.seq),
                kind: ProblemKind::Malformed,
                problem: "an event after the checkpoints".into(),
            });
        }
        let expected = self.events + 1;
        if !self.chain.push(event) {
            let kind = self.chain.first_break().map_or(ProblemKind::Malformed, |b| b.problem.into());
            let problem = match kind {
                ProblemKind::SequenceGap => format!("expected event {expected}, found event {}", event.seq),
                ProblemKind::PrevHashMismatch => {
                    format!("event {}: prev_hash is not the hash of the event before it", event.seq)
                }
                _ => format!(
                    "event {}: its hash does not match its content (the event was changed)",
                    event.seq
                ),
            };
            return self.fail(AuditProblem {
                line,
                event_index: Some(index),
                checkpoint_index: None,
                seq: Some(event.seq),
                kind,
                problem,
            });
        }
        self.events += 1;
        if self.keep_hashes {
            let mut hash = [0; 32];
            // A verified hash is the lowercase hex of a SHA-256, so this always decodes.
            if hex::decode_to_slice(&event.hash, &mut hash).is_ok() {
                self.hashes.push(hash);
            }
        }
        if let Some(waiting) = self.pending.remove(&self.events) {
            for checkpoint in waiting {
                if !self.check_head(&checkpoint, self.events) {
                    return false;
                }
            }
        }
        true
    }

    /// Checks a checkpoint JWS; `line` is where it was read from, if anywhere. Returns `false` once the
    /// audit has found a problem.
    pub fn push_checkpoint(&mut self, jws: &str, line: Option<u64>) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        let index = self.checkpoints_pushed;
        self.checkpoints_pushed += 1;
        let bad = |problem: String| AuditProblem {
            line,
            event_index: None,
            checkpoint_index: Some(index),
            seq: None,
            kind: ProblemKind::BadCheckpoint,
            problem,
        };
        let payload = match verify_jws(jws, self.jwks) {
            Ok((_, payload)) => payload,
            Err(e) => return self.fail(bad(format!("checkpoint: {e}"))),
        };
        let checkpoint: Checkpoint = match serde_json::from_slice(&payload) {
            Ok(c) => c,
            Err(_) => return self.fail(bad("checkpoint: the signed payload is not a checkpoint".into())),
        };
        let pending = PendingCheckpoint { index, line, head: checkpoint.head };
        if checkpoint.events <= self.events {
            self.check_head(&pending, checkpoint.events)
        } else if self.events_ended {
            self.cut_off(&pending, checkpoint.events)
        } else {
            self.pending.entry(checkpoint.events).or_default().push(pending);
            true
        }
    }

    /// Records a problem the caller found (an unreadable or unparsable line, say) unless one was found
    /// before. Always returns `false`.
    pub fn push_malformed(&mut self, line: Option<u64>, problem: impl Into<String>) -> bool {
        self.fail(AuditProblem {
            line,
            event_index: None,
            checkpoint_index: None,
            seq: None,
            kind: ProblemKind::Malformed,
            problem: problem.into(),
        })
    }

    /// Declares that no more events will come: checkpoints counting more events than verified are cut
    /// off, and a later event is a problem. [`finish`](Self::finish) does this itself.
    pub fn end_events(&mut self) -> bool {
        self.events_ended = true;
        if self.first_bad.is_some() {
            return false;
        }
        let first = self
            .pending
            .iter()
            .flat_map(|(&events, waiting)| waiting.iter().map(move |c| (events, c)))
            .min_by_key(|(_, c)| c.index)
            .map(|(events, c)| (events, c.clone()));
        match first {
            Some((events, checkpoint)) => self.cut_off(&checkpoint, events),
            None => true,
        }
    }

    /// Ends the audit.
    pub fn finish(mut self) -> AuditReport {
        self.end_events();
        AuditReport {
            ok: self.first_bad.is_none(),
            events: self.events,
            head: self.chain.head().to_owned(),
            checkpoints: self.checkpoints_ok,
            first_bad: self.first_bad,
        }
    }

    fn cut_off(&mut self, checkpoint: &PendingCheckpoint, events: u64) -> bool {
        let present = self.events;
        self.fail(AuditProblem {
            line: checkpoint.line,
            event_index: None,
            checkpoint_index: Some(checkpoint.index),
            seq: Some(present + 1),
            kind: ProblemKind::Truncated,
            problem: format!(
                "checkpoint counts {events} events but only {present} are present: events were cut off the end"
            ),
        })
    }

    /// Compares a verified checkpoint's head with the hash of event `events` (`events <= self.events`).
    fn check_head(&mut self, checkpoint: &PendingCheckpoint, events: u64) -> bool {
        let expected = if events == 0 {
            Some(GENESIS_HASH.to_owned())
        } else if events == self.events {
            Some(self.chain.head().to_owned())
        } else {
            usize::try_from(events - 1).ok().and_then(|i| self.hashes.get(i)).map(hex::encode)
        };
        let problem = match expected {
            Some(hash) if hash == checkpoint.head => {
                self.checkpoints_ok += 1;
                return true;
            }
            Some(_) => {
                (ProblemKind::HeadMismatch, format!("checkpoint head is not the hash of event {events}"))
            }
            None => (
                ProblemKind::Malformed,
                format!("checkpoint for event {events} pushed after it while event hashes are not kept"),
            ),
        };
        self.fail(AuditProblem {
            line: checkpoint.line,
            event_index: None,
            checkpoint_index: Some(checkpoint.index),
            seq: Some(events),
            kind: problem.0,
            problem: problem.1,
        })
    }
}

/// Verifies events (in ledger order) and checkpoint JWSs with [`LedgerAudit`]: the checkpoints are
/// checked first-pushed, so no event hash is kept. Problems carry `event_index` / `checkpoint_index`,
/// no line.
pub fn verify_chain_with_checkpoints<E, C>(
    events: impl IntoIterator<Item = E>,
    checkpoints: impl IntoIterator<Item = C>,
    jwks: &Jwks,
) -> AuditReport
where
    E: Borrow<Event>,
    C: AsRef<str>,
{
    let mut audit = LedgerAudit::new(jwks).without_hash_history();
    for jws in checkpoints {
        if !audit.push_checkpoint(jws.as_ref(), None) {
            return audit.finish();
        }
    }
    for event in events {
        if !audit.push_event(event.borrow(), None) {
            break;
        }
    }
    audit.finish()
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
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum LineIn {
    Event(Box<EventLineIn>),
    Checkpoint { jws: String },
}

enum ExportLine {
    Event(Box<Event>),
    Checkpoint(String),
}

/// A timestamp in exactly the ledger's rendering (anything else would not be what was hashed).
fn ledger_time(text: &str, field: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).filter(|t| t.to_string() == text).ok_or_else(|| {
        format!("{field} is not a timestamp in the ledger's rendering (2026-01-31T12:00:00.000000Z)")
    })
}

fn parse_line(line: &str) -> Result<ExportLine, String> {
    let parsed: LineIn =
        serde_json::from_str(line).map_err(|e| format!("not an event or checkpoint line: {e}"))?;
    let e = match parsed {
        LineIn::Checkpoint { jws } => return Ok(ExportLine::Checkpoint(jws)),
        LineIn::Event(e) => e,
    };
    let recorded_at = ledger_time(&e.recorded_at, "recorded_at")?;
    let expires_at = e.expires_at.as_deref().map(|t| ledger_time(t, "expires_at")).transpose()?;
    Ok(ExportLine::Event(Box::new(Event {
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

/// Verifies an exported ledger (see the module documentation) against Consentry's JWKS. Stops at the
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

#[cfg(test)]
mod tests {
    use consentry_core::ledger::NewEvent;
    use consentry_core::proof::{SigningKey, state_for};

    use super::*;

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey::from_secret(kid.to_owned(), [byte; 32])
    }

    fn set(keys: &[&SigningKey]) -> Jwks {
        keys.iter().map(|k| k.public_jwk()).collect()
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + micros)
    }

    fn chain(n: u64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let new = NewEvent {
                    purpose: if seq % 2 == 0 { "analytics".into() } else { "marketing.direct".into() },
                    action: Action::ALL[(seq as usize) % Action::ALL.len()],
                    scope: Scope::new(
                        vec!["user.contact.email".into()],
                        if seq % 3 == 0 { vec![] } else { vec!["sms".into(), "email".into()] },
                        vec!["partner.\"quoted\" é".into()],
                    ),
                    notice: (seq != 2).then(|| "marketing.direct".into()),
                    notice_version: (seq != 2).then_some(3),
                    notice_hash: (seq != 2).then(|| "ab".repeat(32)),
                    collection_point: (seq % 2 == 1).then(|| "signup".into()),
                    actor: "key:k1".into(),
                    expires_at: (seq == 1).then(|| at(86_400_000_000)),
                };
                let e = Event::place(new, seq, format!("{seq:064x}"), at(seq as i64 * 1_000), prev.clone());
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    fn checkpoint(k: &SigningKey, events: &[Event], n: usize) -> String {
        let head = if n == 0 { GENESIS_HASH.to_owned() } else { events[n - 1].hash.clone() };
        k.sign_jws(&Checkpoint::new(n as u64, head, at(9_000_000)))
    }

    fn export(events: &[Event], checkpoints: &[String]) -> Vec<String> {
        events
            .iter()
            .map(export_event_line)
            .chain(checkpoints.iter().map(|c| export_checkpoint_line(c)))
            .collect()
    }

    fn verify(lines: &[String], jwks: &Jwks) -> ExportReport {
        let mut text = lines.join("\n");
        text.push('\n');
        verify_export(text.as_bytes(), jwks)
    }

    /// Asserts the first problem's line and kind.
    #[track_caller]
    fn fails_at(report: &ExportReport, line: u64, kind: ProblemKind) {
        assert!(!report.ok, "{report:?}");
        let p = report.first_bad.as_ref().expect("a problem");
        assert_eq!((p.line, p.kind), (line, kind), "{}", p.problem);
    }

    #[test]
    fn export_round_trips() {
        let k = key("k1", 1);
        let events = chain(5);
        let lines = export(&events, &[checkpoint(&k, &events, 3), checkpoint(&k, &events, 5)]);
        for (line, event) in lines.iter().zip(&events) {
            match parse_line(line) {
                Ok(ExportLine::Event(parsed)) => assert_eq!(&*parsed, event),
                _ => panic!("an event line"),
            }
        }
        let report = verify(&lines, &set(&[&k]));
        assert_eq!(
            report,
            ExportReport {
                ok: true,
                events: 5,
                head: events[4].hash.clone(),
                checkpoints: 2,
                first_bad: None
            }
        );
        // CRLF line ends and a missing final line break are fine too.
        assert!(verify_export(lines.join("\r\n").as_bytes(), &set(&[&k])).ok);
    }

    #[test]
    fn event_lines_have_the_documented_fields_in_order() {
        let events = chain(1);
        let line = export_event_line(&events[0]);
        let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
            .expect("object")
            .keys()
            .cloned()
            .collect();
        let mut expected = vec![
            "type",
            "seq",
            "subject",
            "purpose",
            "action",
            "categories",
            "channels",
            "recipients",
            "notice",
            "notice_version",
            "notice_hash",
            "collection_point",
            "actor",
            "recorded_at",
            "expires_at",
            "prev_hash",
            "hash",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert!(line.starts_with(r#"{"type":"event","seq":1,"subject":"#), "{line}");
        assert_eq!(export_checkpoint_line("a.b.c"), r#"{"type":"checkpoint","jws":"a.b.c"}"#);
    }

    #[test]
    fn empty_ledgers() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let report = verify_export(&b""[..], &jwks);
        assert!(report.ok && report.events == 0 && report.checkpoints == 0 && report.head == GENESIS_HASH);
        let report = verify(&export(&[], &[checkpoint(&k, &[], 0)]), &jwks);
        assert!(report.ok && report.checkpoints == 1, "{report:?}");
    }

    #[test]
    fn changed_removed_reordered_and_inserted_events_are_found() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let events = chain(5);
        let good = export(&events, &[checkpoint(&k, &events, 5)]);

        let mut changed = good.clone();
        changed[2] = export_event_line(&Event { actor: "subject".into(), ..events[2].clone() });
        fails_at(&verify(&changed, &jwks), 3, ProblemKind::HashMismatch);
        assert_eq!(verify(&changed, &jwks).first_bad.expect("bad").seq, Some(3));

        let mut removed = good.clone();
        removed.remove(1);
        fails_at(&verify(&removed, &jwks), 2, ProblemKind::SequenceGap);

        let mut reordered = good.clone();
        reordered.swap(2, 3);
        fails_at(&verify(&reordered, &jwks), 3, ProblemKind::SequenceGap);

        let mut duplicated = good.clone();
        duplicated.insert(2, good[1].clone());
        fails_at(&verify(&duplicated, &jwks), 3, ProblemKind::SequenceGap);

        // A forged event placed (and hashed) at the position of event 3 breaks the next link.
        let mut forged_chain = events.clone();
        forged_chain[2] = Event { actor: "subject".into(), ..events[2].clone() };
        forged_chain[2].hash = forged_chain[2].compute_hash();
        let forged = export(&forged_chain, &[checkpoint(&k, &events, 5)]);
        fails_at(&verify(&forged, &jwks), 4, ProblemKind::PrevHashMismatch);

        // An event inserted and every later one re-placed: the chain holds, the checkpoint does not.
        let mut rebuilt = events[..2].to_vec();
        for e in events[2..].iter().cloned() {
            let (seq, prev) = (rebuilt.len() as u64 + 1, rebuilt.last().expect("event").hash.clone());
            rebuilt.push(Event { seq, prev_hash: prev, ..e });
            let last = rebuilt.last_mut().expect("event");
            last.hash = last.compute_hash();
            if seq == 3 {
                let copy = Event { seq: 4, prev_hash: last.hash.clone(), ..last.clone() };
                rebuilt.push(copy);
                let last = rebuilt.last_mut().expect("event");
                last.hash = last.compute_hash();
            }
        }
        let mut inserted = export(&rebuilt, &[checkpoint(&k, &events, 5)]);
        fails_at(&verify(&inserted, &jwks), 7, ProblemKind::HeadMismatch);
        inserted.pop();
        assert!(verify(&inserted, &jwks).ok, "without a checkpoint a rebuilt chain cannot be told apart");
    }

    #[test]
    fn malformed_lines_are_found() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let events = chain(3);
        let good = export(&events, &[checkpoint(&k, &events, 3)]);
        let with = |index: usize, line: &str| {
            let mut lines = good.clone();
            lines[index] = line.to_owned();
            verify(&lines, &jwks)
        };
        fails_at(&with(1, "not json"), 2, ProblemKind::Malformed);
        fails_at(&with(1, ""), 2, ProblemKind::Malformed);
        fails_at(&with(1, r#"{"type":"note"}"#), 2, ProblemKind::Malformed);
        fails_at(&with(1, &good[1].replacen('{', r#"{"subject_id":"alice","#, 1)), 2, ProblemKind::Malformed);
        fails_at(
            &with(1, &good[1].replace(r#","hash":"#, r#","hash":"x","hash":"#)),
            2,
            ProblemKind::Malformed,
        );
        fails_at(&with(1, &good[1].replacen(r#""actor":"key:k1","#, "", 1)), 2, ProblemKind::Malformed);
        let non_canonical_time = events[1].recorded_at.to_string().replace(".002000Z", ".002Z");
        let line = good[1].replace(&events[1].recorded_at.to_string(), &non_canonical_time);
        assert_ne!(line, good[1]);
        fails_at(&with(1, &line), 2, ProblemKind::Malformed);
        fails_at(&with(3, r#"{"type":"checkpoint","jws":"a.b.c","extra":1}"#), 4, ProblemKind::Malformed);

        let mut not_utf8 = good.join("\n").into_bytes();
        not_utf8.splice(0..0, [b'{', 0xff, b'\n']);
        fails_at(&verify_export(&not_utf8[..], &jwks), 1, ProblemKind::Malformed);

        let mut late_event = good.clone();
        late_event.push(good[2].clone());
        fails_at(&verify(&late_event, &jwks), 5, ProblemKind::Malformed);
    }

    #[test]
    fn bad_checkpoints_are_found() {
        let (k1, stranger) = (key("k1", 1), key("k9", 9));
        let jwks = set(&[&k1]);
        let events = chain(3);
        let forged_key = key("k1", 2);
        let forged = export(&events, &[checkpoint(&k1, &events, 2), checkpoint(&forged_key, &events, 3)]);
        fails_at(&verify(&forged, &jwks), 5, ProblemKind::BadCheckpoint);
        let unknown = export(&events, &[checkpoint(&stranger, &events, 3)]);
        let report = verify(&unknown, &jwks);
        fails_at(&report, 4, ProblemKind::BadCheckpoint);
        assert!(report.first_bad.expect("bad").problem.contains("kid"));
        let not_a_checkpoint = export(&events, &[k1.sign_jws(&serde_json::json!({"hello": 1}))]);
        fails_at(&verify(&not_a_checkpoint, &jwks), 4, ProblemKind::BadCheckpoint);
        let garbage = export(&events, &["x.y.z".to_owned()]);
        fails_at(&verify(&garbage, &jwks), 4, ProblemKind::BadCheckpoint);
    }

    #[test]
    fn events_cut_off_the_end_are_found() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let events = chain(5);
        let checkpoints = [checkpoint(&k, &events, 2), checkpoint(&k, &events, 5)];

        // The last two events removed: the second checkpoint counts more events than there are.
        let cut = export(&events[..3], &checkpoints);
        let report = verify(&cut, &jwks);
        fails_at(&report, 5, ProblemKind::Truncated);
        assert_eq!((report.events, report.checkpoints), (3, 1));
        assert_eq!(report.first_bad.expect("bad").seq, Some(4));

        // Everything removed but the checkpoints.
        fails_at(&verify(&export(&[], &checkpoints), &jwks), 1, ProblemKind::Truncated);

        // A checkpoint whose head is not the hash of event `events` of this file.
        let other = k.sign_jws(&Checkpoint::new(4, events[4].hash.clone(), at(0)));
        fails_at(&verify(&export(&events, &[other]), &jwks), 6, ProblemKind::HeadMismatch);
    }

    #[test]
    fn rotated_keys_both_verify() {
        let (old, new) = (key("2026-01", 1), key("2026-07", 2));
        let events = chain(4);
        let lines = export(&events, &[checkpoint(&old, &events, 2), checkpoint(&new, &events, 4)]);
        let report = verify(&lines, &set(&[&old, &new]));
        assert!(report.ok && report.checkpoints == 2, "{report:?}");
        // A verifier that only has the new key cannot vouch for the old checkpoint.
        fails_at(&verify(&lines, &set(&[&new])), 5, ProblemKind::BadCheckpoint);
        // Nor one with only the old key for the new one.
        fails_at(&verify(&lines, &set(&[&old])), 6, ProblemKind::BadCheckpoint);
    }

    #[test]
    fn chain_with_checkpoints_first() {
        let (old, new) = (key("a", 1), key("b", 2));
        let jwks = set(&[&old, &new]);
        let events = chain(6);
        let checkpoints =
            vec![checkpoint(&old, &events, 0), checkpoint(&old, &events, 3), checkpoint(&new, &events, 6)];
        let report = verify_chain_with_checkpoints(&events, &checkpoints, &jwks);
        assert!(report.ok && report.events == 6 && report.checkpoints == 3, "{report:?}");
        assert_eq!(report.head, events[5].hash);

        let report = verify_chain_with_checkpoints(&events[..5], &checkpoints, &jwks);
        let p = report.first_bad.expect("cut off");
        assert_eq!(
            (p.kind, p.checkpoint_index, p.line, p.seq),
            (ProblemKind::Truncated, Some(2), None, Some(6))
        );

        let mut changed = events.clone();
        changed[3].actor = "subject".into();
        let p = verify_chain_with_checkpoints(changed, &checkpoints, &jwks).first_bad.expect("changed");
        assert_eq!((p.kind, p.event_index, p.seq), (ProblemKind::HashMismatch, Some(3), Some(4)));

        let wrong_head = vec![old.sign_jws(&Checkpoint::new(3, events[3].hash.clone(), at(0)))];
        let p = verify_chain_with_checkpoints(&events, &wrong_head, &jwks).first_bad.expect("head");
        assert_eq!((p.kind, p.checkpoint_index, p.seq), (ProblemKind::HeadMismatch, Some(0), Some(3)));

        let none: [&str; 0] = [];
        assert!(verify_chain_with_checkpoints(Vec::<Event>::new(), none, &jwks).ok);
    }

    #[test]
    fn checkpoints_after_events_need_kept_hashes() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let events = chain(4);
        let mut kept = LedgerAudit::new(&jwks);
        let mut forgetful = LedgerAudit::new(&jwks).without_hash_history();
        for e in &events {
            assert!(kept.push_event(e, None) && forgetful.push_event(e, None));
        }
        for n in [0, 4, 2] {
            assert!(kept.push_checkpoint(&checkpoint(&k, &events, n), None));
        }
        assert!(kept.finish().ok);
        assert!(forgetful.push_checkpoint(&checkpoint(&k, &events, 4), None));
        assert!(!forgetful.push_checkpoint(&checkpoint(&k, &events, 2), None));
        assert_eq!(forgetful.finish().first_bad.expect("bad").kind, ProblemKind::Malformed);
    }

    #[test]
    fn audit_reports_serialise() {
        let events = chain(2);
        let jwks = Jwks::default();
        let report = verify_chain_with_checkpoints(&events[1..], ["x"; 0], &jwks);
        assert_eq!(
            serde_json::to_value(&report).expect("json"),
            serde_json::json!({"ok": false, "events": 0, "head": GENESIS_HASH, "checkpoints": 0,
                "first_bad": {"line": null, "event_index": 0, "checkpoint_index": null, "seq": 2,
                    "kind": "sequence_gap", "problem": "expected event 1, found event 2"}})
        );
    }

    fn receipt(k: &SigningKey) -> (ConsentReceipt, String) {
        let events = chain(1);
        let receipt: ConsentReceipt = serde_json::from_value(serde_json::json!({
            "schema_version": consentry_core::proof::RECEIPT_SCHEMA_VERSION,
            "receipt_id": "rcpt_1", "iat": 1_800_000_000, "consent_timestamp": events[0].recorded_at,
            "jurisdiction": "EU", "pii_principal_id": "user-42",
            "pii_controllers": [{"name": "Brand", "contact": "DPO", "address": "1 Street", "email": "dpo@example.com"}],
            "collection_method": "web_form", "sensitive": false, "spi_categories": [],
            "purposes": [{"purpose": "marketing.direct", "name": "Direct marketing", "legal_basis": "consent",
                "consent_type": "explicit", "state": state_for(events[0].action),
                "categories": [{"key": "user.contact.email", "sensitive": false}], "channels": ["email"],
                "recipients": [{"key": "partner", "name": "Partner", "kind": "processor"}],
                "third_party_disclosure": true, "event": {"id": "evt_1", "seq": 1, "hash": events[0].hash,
                "prev_hash": GENESIS_HASH}, "recorded_at": events[0].recorded_at}],
            "ledger": {"first_seq": 1, "last_seq": 1, "head": events[0].hash}
        }))
        .expect("a receipt");
        let jws = k.sign_jws(&receipt);
        (receipt, jws)
    }

    #[test]
    fn receipts_verify() {
        let k = key("k1", 1);
        let (receipt, jws) = receipt(&k);
        assert_eq!(verify_receipt(&jws, &set(&[&k])), Ok(receipt.clone()));
        assert_eq!(
            verify_receipt(&jws, &set(&[&key("k2", 1)])),
            Err(VerifyError::Jws(JwsError::UnknownKid("k1".into())))
        );
        assert_eq!(
            verify_receipt(&jws, &set(&[&key("k1", 2)])),
            Err(VerifyError::Jws(JwsError::BadSignature))
        );
        let other_schema = k.sign_jws(&ConsentReceipt { schema_version: "kantara/1.1".into(), ..receipt });
        assert_eq!(verify_receipt(&other_schema, &set(&[&k])), Err(VerifyError::UnsupportedSchema));
        let checkpoint = k.sign_jws(&Checkpoint::new(0, GENESIS_HASH, at(0)));
        assert_eq!(verify_receipt(&checkpoint, &set(&[&k])), Err(VerifyError::NotAReceipt));
    }
}
