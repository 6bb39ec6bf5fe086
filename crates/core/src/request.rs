//! Data subject requests (GDPR Art. 15–21) as a state machine: their kinds and states, the deadline
//! rules, and [`next`], the one pure function that decides what a change does to a request.
//!
//! A request goes `received → in_progress → completed | rejected`. Starting it, doing Consentry's own
//! part or completing a downstream task moves it to `in_progress`; it is `completed` as soon as its own
//! part is done and no task is pending, in the same change. A closed request (`completed` or `rejected`)
//! takes no more changes. Every change is kept as history entries ([`HistoryChange`]).
//!
//! A backend applies a change as "lock the request → load its [`RequestState`] → [`next`] → write back
//! [`Transition::state`], the changed task and the history entries", in one transaction, so nodes that
//! change one request at once apply their changes one after the other and the rules live only here.
//!
//! ```
//! use consentry_core::Timestamp;
//! use consentry_core::request::{self, RequestAction, RequestStatus};
//!
//! let received = Timestamp::from_micros(1_768_471_200_000_000);
//! // A new request: store `created.state` (its tasks pending) and `created.history`.
//! let created = request::receive(received, &["crm".to_owned()]);
//! // A change, in one transaction: lock the row, load its state, decide, write back.
//! let done = RequestAction::OwnPartDone { note: Some("export ready".into()) };
//! let t = request::next(&created.state, done, received.plus_seconds(60))?;
//! assert_eq!(t.state.status, RequestStatus::InProgress);
//! let confirm = RequestAction::CompleteTask { destination_id: "crm".into(), note: None };
//! let t = request::next(&t.state, confirm, received.plus_seconds(120))?;
//! assert_eq!(t.state.status, RequestStatus::Completed);
//! let changes: Vec<&str> = t.history.iter().map(|h| h.change.as_str()).collect();
//! assert_eq!(changes, ["task_completed", "completed"]);
//! # Ok::<(), consentry_core::request::Refusal>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// How long an export stays available once it is ready.
pub const EXPORT_DAYS: i64 = 7;
/// The most a deadline may be extended, in months beyond the first (Art. 12(3)).
pub const MAX_EXTENSION_MONTHS: u32 = 2;

/// A name that is not one of a closed set (a status, a kind, a change): what was expected, and the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a known {what}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

/// A closed set of names as stored and as shown in the API: `as_str`, `parse`, `FromStr`, `Display` and
/// serde all use the one table given here.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, UnknownName> {
                Self::parse(text).ok_or_else(|| UnknownName { what: $what, name: text.to_owned() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// The kinds of request, one per right.
    pub enum RequestKind as "request type" {
        /// Art. 15.
        Access = "access",
        /// Art. 20.
        Portability = "portability",
        /// Art. 17.
        Erasure = "erasure",
        /// Art. 16.
        Rectification = "rectification",
        /// Art. 18.
        Restriction = "restriction",
        /// Art. 21.
        Objection = "objection",
    }
}

impl RequestKind {
    /// Whether the subject gets an export.
    pub fn exports(self) -> bool {
        matches!(self, RequestKind::Access | RequestKind::Portability)
    }
}

names! {
    /// Where a request stands.
    pub enum RequestStatus as "request status" {
        Received = "received",
        InProgress = "in_progress",
        Completed = "completed",
        Rejected = "rejected",
    }
}

impl RequestStatus {
    /// Whether the request still takes changes (`received` or `in_progress`).
    pub fn is_open(self) -> bool {
        matches!(self, RequestStatus::Received | RequestStatus::InProgress)
    }
}

names! {
    /// Where one downstream system's part of a request stands.
    pub enum TaskStatus as "task status" {
        Pending = "pending",
        Completed = "completed",
    }
}

names! {
    /// What one history entry of a request records.
    pub enum HistoryChange as "request change" {
        Received = "received",
        Started = "started",
        OwnPartDone = "own_part_done",
        TaskCompleted = "task_completed",
        Extended = "extended",
        Rejected = "rejected",
        Completed = "completed",
        Overdue = "overdue",
    }
}

/// One downstream system's part of a request, as far as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub destination_id: String,
    pub status: TaskStatus,
    pub note: Option<String>,
    pub completed_at: Option<Timestamp>,
}

/// What the rules read of a request and what a change writes: its changeable fields and its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    pub status: RequestStatus,
    pub received_at: Timestamp,
    pub due_at: Timestamp,
    /// When Consentry's own part was done (for access and portability: when the export became available).
    pub own_done_at: Option<Timestamp>,
    /// When it was completed or rejected.
    pub closed_at: Option<Timestamp>,
    /// The latest stated reason (of an extension or a rejection).
    pub reason: Option<String>,
    /// When it was found overdue (and `request.overdue` sent), once per deadline.
    pub overdue_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub tasks: Vec<TaskState>,
}

impl RequestState {
    /// How many of its tasks are still pending.
    pub fn pending_tasks(&self) -> usize {
        self.tasks.iter().filter(|t| t.status == TaskStatus::Pending).count()
    }

    /// Open and past its deadline at `now`.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.status.is_open() && self.due_at <= now
    }
}

/// A change asked of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAction {
    /// Work on it begins.
    Start,
    /// Consentry's own part is done; `note` says what was done.
    OwnPartDone {
        note: Option<String>,
    },
    /// A downstream system confirmed its part.
    CompleteTask {
        destination_id: String,
        note: Option<String>,
    },
    /// The deadline moves `months` further (1 to [`MAX_EXTENSION_MONTHS`]), for `reason`.
    Extend {
        months: u32,
        reason: String,
    },
    Reject {
        reason: String,
    },
    /// The deadline passed: recorded once per deadline (an extension allows it again).
    MarkOverdue,
}

/// One entry of a request's history. Who made the change is the caller's to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub change: HistoryChange,
    /// The request's status after the change.
    pub status: RequestStatus,
    pub note: Option<String>,
}

/// What a change does: the request as it is afterwards, the task it changed, the history to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The request after the change: every field is to be written back (unchanged ones are as loaded).
    pub state: RequestState,
    /// The task the change completed, as it is now; the same entry is in `state.tasks`.
    pub task: Option<TaskState>,
    /// New history entries, oldest first (two when the change completes the request).
    pub history: Vec<HistoryEntry>,
}

/// Why a change was refused. The request is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request is closed (`completed` or `rejected`, named here) and takes no more changes.
    #[error("the request is {0}")]
    Closed(RequestStatus),
    /// The request has no task for that destination.
    #[error("the request has no task for this destination")]
    UnknownTask,
    #[error("the task is already completed")]
    TaskAlreadyCompleted,
    /// An extension of 0 months, or of more than [`MAX_EXTENSION_MONTHS`] at once.
    #[error("an extension is 1 to {MAX_EXTENSION_MONTHS} months")]
    ExtensionMonths(u32),
    /// The extension would move the deadline more than [`MAX_EXTENSION_MONTHS`] beyond the first.
    #[error("a deadline may move by at most {MAX_EXTENSION_MONTHS} further months in total")]
    ExtensionBeyondLimit,
    /// Marking overdue before the deadline.
    #[error("the request is not yet due")]
    NotDue,
    /// Marking overdue again for the same deadline.
    #[error("the request was already marked overdue")]
    AlreadyOverdue,
}

/// `t` plus `months` calendar months, the day clamped to the end of a shorter month (31 January plus one
/// month is 28 or 29 February), the time of day kept. `t` itself when the result would leave the calendar.
pub fn add_months(t: Timestamp, months: u32) -> Timestamp {
    let at = t.to_offset();
    let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + i64::from(months);
    let (Ok(year), Ok(month)) = (i32::try_from(total.div_euclid(12)), u8::try_from(total.rem_euclid(12) + 1))
    else {
        return t;
    };
    let Ok(month) = time::Month::try_from(month) else { return t };
    let day = at.day().min(time::util::days_in_month(month, year));
    match time::Date::from_calendar_date(year, month, day) {
        Ok(date) => Timestamp::from_offset(at.replace_date(date)),
        Err(_) => t,
    }
}

/// The first deadline of a request received at `received_at`: one calendar month later (Art. 12(3)).
pub fn initial_due_at(received_at: Timestamp) -> Timestamp {
    add_months(received_at, 1)
}

/// The latest deadline any extension may reach: [`MAX_EXTENSION_MONTHS`] beyond the first month.
pub fn latest_due_at(received_at: Timestamp) -> Timestamp {
    add_months(received_at, 1 + MAX_EXTENSION_MONTHS)
}

/// The deadline after extending `due_at` by `months`, for a request received at `received_at`.
pub fn extended_due_at(received_at: Timestamp, due_at: Timestamp, months: u32) -> Result<Timestamp, Refusal> {
    if !(1..=MAX_EXTENSION_MONTHS).contains(&months) {
        return Err(Refusal::ExtensionMonths(months));
    }
    let extended = add_months(due_at, months);
    if extended > latest_due_at(received_at) {
        return Err(Refusal::ExtensionBeyondLimit);
    }
    Ok(extended)
}

/// When an export made ready at `ready` stops being available.
pub fn export_until(ready: Timestamp) -> Timestamp {
    ready.plus_seconds(EXPORT_DAYS * 86_400)
}

/// A new request, received at `received_at` with one pending task per destination (named once each):
/// `received`, due in one calendar month, with its `received` history entry.
pub fn receive(received_at: Timestamp, destinations: &[String]) -> Transition {
    let mut tasks: Vec<TaskState> = Vec::with_capacity(destinations.len());
    for d in destinations {
        if !tasks.iter().any(|t| &t.destination_id == d) {
            tasks.push(TaskState {
                destination_id: d.clone(),
                status: TaskStatus::Pending,
                note: None,
                completed_at: None,
            });
        }
    }
    let state = RequestState {
        status: RequestStatus::Received,
        received_at,
        due_at: initial_due_at(received_at),
        own_done_at: None,
        closed_at: None,
        reason: None,
        overdue_at: None,
        updated_at: received_at,
        tasks,
    };
    let history = vec![HistoryEntry {
        at: received_at,
        change: HistoryChange::Received,
        status: RequestStatus::Received,
        note: None,
    }];
    Transition { state, task: None, history }
}

/// What `action` at `now` does to a request in `current` state, or why it may not happen.
///
/// Every change but [`RequestAction::MarkOverdue`] sets `updated_at`. `Start`, `OwnPartDone` and
/// `CompleteTask` move the request to `in_progress` (`Start` of a started request records another
/// `started` entry, and `OwnPartDone` again moves `own_done_at`); `Extend` keeps the status, moves the
/// deadline and clears `overdue_at`; `Reject` closes it. Afterwards an `in_progress` request whose own
/// part is done and that has no pending task is `completed`, with its own history entry.
pub fn next(current: &RequestState, action: RequestAction, now: Timestamp) -> Result<Transition, Refusal> {
    if !current.status.is_open() {
        return Err(Refusal::Closed(current.status));
    }
    let mut state = current.clone();
    let mut task = None;
    let (change, note) = match action {
        RequestAction::Start => {
            state.status = RequestStatus::InProgress;
            (HistoryChange::Started, None)
        }
        RequestAction::OwnPartDone { note } => {
            state.status = RequestStatus::InProgress;
            state.own_done_at = Some(now);
            (HistoryChange::OwnPartDone, note)
        }
        RequestAction::CompleteTask { destination_id, note } => {
            let found = state.tasks.iter_mut().find(|t| t.destination_id == destination_id);
            let Some(found) = found else { return Err(Refusal::UnknownTask) };
            if found.status != TaskStatus::Pending {
                return Err(Refusal::TaskAlreadyCompleted);
            }
            found.status = TaskStatus::Completed;
            found.note = note;
            found.completed_at = Some(now);
            task = Some(found.clone());
            state.status = RequestStatus::InProgress;
            // The history names the destination; the task keeps the note.
            (HistoryChange::TaskCompleted, Some(destination_id))
        }
        RequestAction::Extend { months, reason } => {
            state.due_at = extended_due_at(current.received_at, current.due_at, months)?;
            state.overdue_at = None;
            state.reason = Some(reason.clone());
            (HistoryChange::Extended, Some(reason))
        }
        RequestAction::Reject { reason } => {
            state.status = RequestStatus::Rejected;
            state.closed_at = Some(now);
            state.reason = Some(reason.clone());
            (HistoryChange::Rejected, Some(reason))
        }
        RequestAction::MarkOverdue => {
            if current.overdue_at.is_some() {
                return Err(Refusal::AlreadyOverdue);
            }
            if current.due_at > now {
                return Err(Refusal::NotDue);
            }
            state.overdue_at = Some(now);
            let entry =
                HistoryEntry { at: now, change: HistoryChange::Overdue, status: state.status, note: None };
            return Ok(Transition { state, task: None, history: vec![entry] });
        }
    };
    state.updated_at = now;
    let mut history = vec![HistoryEntry { at: now, change, status: state.status, note }];
    if state.status == RequestStatus::InProgress && state.own_done_at.is_some() && state.pending_tasks() == 0
    {
        state.status = RequestStatus::Completed;
        state.closed_at = Some(now);
        history.push(HistoryEntry {
            at: now,
            change: HistoryChange::Completed,
            status: RequestStatus::Completed,
            note: None,
        });
    }
    Ok(Transition { state, task, history })
}

#[cfg(test)]
mod tests;
