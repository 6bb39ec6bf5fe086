//! The audit of a ledger and its signed checkpoints as they stream by ([`LedgerAudit`]), and what it
//! reports: the one set of rules behind the export check, the server's audit endpoint and
//! [`verify_chain_with_checkpoints`].

use std::borrow::Borrow;
use std::collections::BTreeMap;

use consentry_core::ledger::{BreakKind, ChainVerifier, Event, GENESIS_HASH};
use consentry_core::proof::{Checkpoint, Jwks, JwsKind, verify_jws_kind};
use serde::Serialize;

/// What kind of problem an audit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line that is not a valid event or checkpoint line, or an event after the checkpoints.
    Malformed,
    /// An event's hash does not match its content: the event was changed, or the one before it was changed
    /// and its hash rewritten to match (the break then shows at this event, whose hash covers the previous
    /// one's).
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

/// A checkpoint that verified, waiting for the events it counts.
#[derive(Debug, Clone)]
struct PendingCheckpoint {
    index: u64,
    line: Option<u64>,
    head: String,
}

/// Checks a ledger and its checkpoints as they stream by; the one set of rules behind
/// [`verify_export`](super::verify_export), [`verify_chain_with_checkpoints`] and the server's audit
/// endpoint.
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
                // A changed event whose own hash was rewritten to match is found here, at the next event:
                // that one's hash covers the hash before it, which is no longer the one it was made after.
                _ if event.seq > 1 => format!(
                    "event {}: its hash does not match its content (this event was changed, or the one \
                     before it was changed and its hash rewritten)",
                    event.seq
                ),
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
        // Checkpoints signed before they had their own `typ` are stored for good: they still verify.
        let payload = match verify_jws_kind(jws, self.jwks, JwsKind::Checkpoint) {
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
