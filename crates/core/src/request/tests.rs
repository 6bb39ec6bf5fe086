//! Table-driven tests of every request state × change, of the deadline rules, and property tests of the
//! state machine's invariants over random sequences of changes.

use proptest::prelude::*;

use super::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|| panic!("timestamp {text}"))
}

const RECEIVED: &str = "2026-01-15T10:00:00Z";
const NOW: &str = "2026-01-20T12:00:00Z";

/// A request received at [`RECEIVED`], due a month later, with no task.
fn received() -> RequestState {
    receive(at(RECEIVED), &[]).state
}

/// Ways to shape a test request.
trait Shape: Sized {
    fn status(self, status: RequestStatus) -> Self;
    fn own_done(self) -> Self;
    fn task(self, destination: &str, status: TaskStatus) -> Self;
    fn due(self, text: &str) -> Self;
    fn marked_overdue(self) -> Self;
}

impl Shape for RequestState {
    fn status(mut self, status: RequestStatus) -> Self {
        self.status = status;
        if !status.is_open() {
            self.closed_at = Some(at("2026-01-17T09:00:00Z"));
        }
        self
    }

    fn own_done(mut self) -> Self {
        self.own_done_at = Some(at("2026-01-16T09:00:00Z"));
        self
    }

    fn task(mut self, destination: &str, status: TaskStatus) -> Self {
        let done = status == TaskStatus::Completed;
        self.tasks.push(TaskState {
            destination_id: destination.to_owned(),
            status,
            note: done.then(|| "earlier".to_owned()),
            completed_at: done.then(|| at("2026-01-16T09:00:00Z")),
        });
        self
    }

    fn due(mut self, text: &str) -> Self {
        self.due_at = at(text);
        self
    }

    fn marked_overdue(mut self) -> Self {
        self.overdue_at = Some(at("2026-01-19T11:00:00Z"));
        self
    }
}

fn start() -> RequestAction {
    RequestAction::Start
}

fn own() -> RequestAction {
    RequestAction::OwnPartDone { note: Some("erased".into()) }
}

fn complete(destination: &str) -> RequestAction {
    RequestAction::CompleteTask { destination_id: destination.into(), note: Some("done".into()) }
}

fn extend(months: u32) -> RequestAction {
    RequestAction::Extend { months, reason: "complex".into() }
}

fn reject() -> RequestAction {
    RequestAction::Reject { reason: "no id".into() }
}

fn overdue() -> RequestAction {
    RequestAction::MarkOverdue
}

/// A timestamp as `now`, or its date.
fn time(t: Option<Timestamp>) -> String {
    match t {
        None => "-".into(),
        Some(t) if t == at(NOW) => "now".into(),
        Some(t) => t.to_string()[..10].to_owned(),
    }
}

/// The outcome in one line: the history entries (`change:status(note)`), then the fields that changed.
fn render(before: &RequestState, outcome: Result<Transition, Refusal>) -> String {
    let t = match outcome {
        Ok(t) => t,
        Err(refusal) => return format!("refused: {refusal:?}"),
    };
    let history: Vec<String> = t
        .history
        .iter()
        .map(|h| {
            let note = h.note.as_ref().map(|n| format!("({n})")).unwrap_or_default();
            format!("{}:{}{note}", h.change, h.status)
        })
        .collect();
    let (b, a) = (before, &t.state);
    let mut fields = Vec::new();
    if a.status != b.status {
        fields.push(format!("status={}", a.status));
    }
    for (name, old, new) in [
        ("due_at", Some(b.due_at), Some(a.due_at)),
        ("own_done_at", b.own_done_at, a.own_done_at),
        ("closed_at", b.closed_at, a.closed_at),
    ] {
        if old != new {
            fields.push(format!("{name}={}", time(new)));
        }
    }
    if a.reason != b.reason {
        fields.push(format!("reason={}", a.reason.as_deref().unwrap_or("-")));
    }
    for (name, old, new) in
        [("overdue_at", b.overdue_at, a.overdue_at), ("updated_at", Some(b.updated_at), Some(a.updated_at))]
    {
        if old != new {
            fields.push(format!("{name}={}", time(new)));
        }
    }
    for (old, new) in b.tasks.iter().zip(&a.tasks) {
        if old != new {
            let note = new.note.as_deref().unwrap_or("-");
            fields.push(format!("{}={}({note})", new.destination_id, new.status));
        }
    }
    format!("{} | {}", history.join(", "), fields.join(" "))
}

/// Applies `action` at [`NOW`] to `state`, checks what holds for every transition, and compares the
/// outcome with `expected` (see [`render`]).
#[track_caller]
fn check(state: &RequestState, action: RequestAction, expected: &str) {
    let outcome = next(state, action.clone(), at(NOW));
    if let Ok(t) = &outcome {
        assert!(t.history.iter().all(|h| h.at == at(NOW)), "{t:?}");
        assert_eq!(t.history.last().map(|h| h.status), Some(t.state.status), "{t:?}");
        assert_eq!(t.state.received_at, state.received_at);
        assert_eq!(t.state.tasks.len(), state.tasks.len());
        match (&action, &t.task) {
            (RequestAction::CompleteTask { destination_id, .. }, Some(task)) => {
                assert_eq!(&task.destination_id, destination_id);
                assert!(t.state.tasks.contains(task));
            }
            (_, task) => assert_eq!(task, &None),
        }
    }
    assert_eq!(render(state, outcome), expected, "{action:?} on {state:?}");
}

#[test]
fn received_requests() {
    use TaskStatus::*;
    let r = received();
    let crm = received().task("crm", Pending);
    check(&r, start(), "started:in_progress | status=in_progress updated_at=now");
    check(
        &r,
        own(),
        "own_part_done:in_progress(erased), completed:completed | \
         status=completed own_done_at=now closed_at=now updated_at=now",
    );
    check(
        &crm,
        own(),
        "own_part_done:in_progress(erased) | status=in_progress own_done_at=now updated_at=now",
    );
    check(
        &crm,
        complete("crm"),
        "task_completed:in_progress(crm) | status=in_progress updated_at=now crm=completed(done)",
    );
    check(&crm, complete("nowhere"), "refused: UnknownTask");
    check(&crm, extend(1), "extended:received(complex) | due_at=2026-03-15 reason=complex updated_at=now");
    check(
        &crm,
        reject(),
        "rejected:rejected(no id) | status=rejected closed_at=now reason=no id updated_at=now",
    );
    check(&crm, overdue(), "refused: NotDue");
    check(&crm.clone().due("2026-01-19T10:00:00Z"), overdue(), "overdue:received | overdue_at=now");
    check(&crm.clone().due(NOW), overdue(), "overdue:received | overdue_at=now");
}

#[test]
fn requests_in_progress_before_their_own_part() {
    use TaskStatus::*;
    let r = received().status(RequestStatus::InProgress).task("crm", Pending);
    // Starting again is accepted and recorded again (today's behaviour; the service starts only
    // `received` requests).
    check(&r, start(), "started:in_progress | updated_at=now");
    check(&r, own(), "own_part_done:in_progress(erased) | own_done_at=now updated_at=now");
    check(&r, complete("crm"), "task_completed:in_progress(crm) | updated_at=now crm=completed(done)");
    check(&r, extend(2), "extended:in_progress(complex) | due_at=2026-04-15 reason=complex updated_at=now");
    check(
        &r,
        reject(),
        "rejected:rejected(no id) | status=rejected closed_at=now reason=no id updated_at=now",
    );
    check(&r, overdue(), "refused: NotDue");
}

#[test]
fn requests_in_progress_after_their_own_part() {
    use TaskStatus::*;
    let r =
        received().status(RequestStatus::InProgress).own_done().task("crm", Pending).task("shop", Completed);
    check(&r, start(), "started:in_progress | updated_at=now");
    check(&r, own(), "own_part_done:in_progress(erased) | own_done_at=now updated_at=now");
    check(
        &r,
        complete("crm"),
        "task_completed:in_progress(crm), completed:completed | \
         status=completed closed_at=now updated_at=now crm=completed(done)",
    );
    check(&r, complete("shop"), "refused: TaskAlreadyCompleted");
    check(&r, complete("nowhere"), "refused: UnknownTask");
    check(&r, extend(1), "extended:in_progress(complex) | due_at=2026-03-15 reason=complex updated_at=now");
    check(
        &r,
        reject(),
        "rejected:rejected(no id) | status=rejected closed_at=now reason=no id updated_at=now",
    );

    // The own part done last completes a request whose tasks are all done; so does the last task of a
    // request whose own part is done.
    let tasks_done = received().status(RequestStatus::InProgress).task("crm", Completed);
    check(
        &tasks_done,
        own(),
        "own_part_done:in_progress(erased), completed:completed | \
         status=completed own_done_at=now closed_at=now updated_at=now",
    );
    let own_done = received().status(RequestStatus::InProgress).own_done().task("shop", Pending);
    check(
        &own_done,
        complete("shop"),
        "task_completed:in_progress(shop), completed:completed | \
         status=completed closed_at=now updated_at=now shop=completed(done)",
    );
}

#[test]
fn overdue_marking() {
    use TaskStatus::*;
    let late = received().status(RequestStatus::InProgress).task("crm", Pending).due("2026-01-19T10:00:00Z");
    check(&late, overdue(), "overdue:in_progress | overdue_at=now");
    check(&late.clone().marked_overdue(), overdue(), "refused: AlreadyOverdue");
    // An extension clears the mark, so the new deadline is watched again.
    check(
        &late.clone().marked_overdue(),
        extend(1),
        "extended:in_progress(complex) | due_at=2026-02-19 reason=complex overdue_at=- updated_at=now",
    );
    check(&late.clone().status(RequestStatus::Completed), overdue(), "refused: Closed(Completed)");
}

#[test]
fn closed_requests_take_no_change() {
    use RequestStatus::*;
    for status in [Completed, Rejected] {
        let r = received().own_done().task("crm", TaskStatus::Pending).status(status);
        let closed = format!("refused: Closed({status:?})");
        for action in
            [start(), own(), complete("crm"), complete("nowhere"), extend(1), extend(3), reject(), overdue()]
        {
            check(&r, action, &closed);
        }
    }
}

#[test]
fn extensions_stay_within_two_further_months() {
    let r = received();
    check(&r, extend(0), "refused: ExtensionMonths(0)");
    check(&r, extend(3), "refused: ExtensionMonths(3)");
    check(&r, extend(2), "extended:received(complex) | due_at=2026-04-15 reason=complex updated_at=now");
    check(
        &r.clone().due("2026-03-15T10:00:00Z"),
        extend(1),
        "extended:received(complex) | due_at=2026-04-15 reason=complex updated_at=now",
    );
    check(&r.clone().due("2026-03-15T10:00:00Z"), extend(2), "refused: ExtensionBeyondLimit");
    check(&r.clone().due("2026-04-15T10:00:00Z"), extend(1), "refused: ExtensionBeyondLimit");
}

#[test]
fn one_calendar_month_clamped_to_the_month_end() {
    let cases = [
        ("2026-01-15T10:00:00.000000Z", 1, "2026-02-15T10:00:00.000000Z"),
        ("2026-01-31T10:00:00.000000Z", 1, "2026-02-28T10:00:00.000000Z"),
        ("2028-01-31T10:00:00.000000Z", 1, "2028-02-29T10:00:00.000000Z"),
        ("2026-03-31T23:59:59.000000Z", 1, "2026-04-30T23:59:59.000000Z"),
        ("2026-12-31T00:00:00.000000Z", 1, "2027-01-31T00:00:00.000000Z"),
        ("2026-11-30T00:00:00.000000Z", 3, "2027-02-28T00:00:00.000000Z"),
        ("2026-05-31T08:30:00.250000Z", 0, "2026-05-31T08:30:00.250000Z"),
        ("2026-01-31T10:00:00.000000Z", 25, "2028-02-29T10:00:00.000000Z"),
    ];
    for (from, months, expected) in cases {
        assert_eq!(add_months(at(from), months).to_string(), expected, "{from} + {months}");
    }
}

#[test]
fn deadlines() {
    let cases = [
        // received, due, months, the deadline after the extension
        ("2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z", 1, Ok("2026-03-15T10:00:00.000000Z")),
        ("2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z", 2, Ok("2026-04-15T10:00:00.000000Z")),
        ("2026-01-15T10:00:00Z", "2026-03-15T10:00:00Z", 1, Ok("2026-04-15T10:00:00.000000Z")),
        ("2026-01-15T10:00:00Z", "2026-03-15T10:00:00Z", 2, Err(Refusal::ExtensionBeyondLimit)),
        // Month ends: each step clamps, and the limit is three months after receipt, clamped once.
        ("2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z", 2, Ok("2026-04-28T10:00:00.000000Z")),
        ("2026-01-31T10:00:00Z", "2026-03-28T10:00:00Z", 1, Ok("2026-04-28T10:00:00.000000Z")),
        ("2026-01-31T10:00:00Z", "2026-04-28T10:00:00Z", 1, Err(Refusal::ExtensionBeyondLimit)),
        ("2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z", 0, Err(Refusal::ExtensionMonths(0))),
        ("2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z", 3, Err(Refusal::ExtensionMonths(3))),
    ];
    for (received, due, months, expected) in cases {
        let got = extended_due_at(at(received), at(due), months).map(|t| t.to_string());
        assert_eq!(got.as_deref().map_err(Clone::clone), expected, "{received} {due} + {months}");
    }
    assert_eq!(initial_due_at(at("2026-01-31T10:00:00Z")).to_string(), "2026-02-28T10:00:00.000000Z");
    assert_eq!(latest_due_at(at("2026-01-31T10:00:00Z")).to_string(), "2026-04-30T10:00:00.000000Z");
    assert_eq!(export_until(at("2026-01-01T00:00:00Z")).to_string(), "2026-01-08T00:00:00.000000Z");
}

#[test]
fn new_requests() {
    let destinations = ["crm".to_owned(), "shop".to_owned(), "crm".to_owned()];
    let t = receive(at(RECEIVED), &destinations);
    assert_eq!(t.state.status, RequestStatus::Received);
    assert_eq!(t.state.due_at.to_string(), "2026-02-15T10:00:00.000000Z");
    assert_eq!(t.state.updated_at, at(RECEIVED));
    let tasks: Vec<(&str, TaskStatus)> =
        t.state.tasks.iter().map(|t| (t.destination_id.as_str(), t.status)).collect();
    assert_eq!(tasks, [("crm", TaskStatus::Pending), ("shop", TaskStatus::Pending)]);
    assert_eq!(
        t.history,
        [HistoryEntry {
            at: at(RECEIVED),
            change: HistoryChange::Received,
            status: RequestStatus::Received,
            note: None
        }]
    );
    assert_eq!(t.task, None);
}

#[test]
fn names_round_trip() {
    fn check_names<T>(all: &[T], what: &'static str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownName> + Serialize,
    {
        for &v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>(), Ok(v));
            assert_eq!(serde_json::to_string(&v).ok(), Some(format!("\"{text}\"")));
        }
        assert_eq!("Received".parse::<T>(), Err(UnknownName { what, name: "Received".into() }));
    }
    check_names(RequestKind::ALL, "request type");
    check_names(RequestStatus::ALL, "request status");
    check_names(TaskStatus::ALL, "task status");
    check_names(HistoryChange::ALL, "request change");
    let kinds: Vec<&str> = RequestKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, ["access", "portability", "erasure", "rectification", "restriction", "objection"]);
    let statuses: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(statuses, ["received", "in_progress", "completed", "rejected"]);
    let changes: Vec<&str> = HistoryChange::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        changes,
        [
            "received",
            "started",
            "own_part_done",
            "task_completed",
            "extended",
            "rejected",
            "completed",
            "overdue"
        ]
    );
    let open: Vec<bool> = RequestStatus::ALL.iter().map(|s| s.is_open()).collect();
    assert_eq!(open, [true, true, false, false]);
    let exports: Vec<bool> = RequestKind::ALL.iter().map(|k| k.exports()).collect();
    assert_eq!(exports, [true, true, false, false, false, false]);
    assert_eq!(
        serde_json::from_str::<RequestStatus>("\"in_progress\"").ok(),
        Some(RequestStatus::InProgress)
    );
}

#[test]
fn overdue_is_open_and_past_the_deadline() {
    let r = received().due(NOW);
    assert!(r.is_overdue(at(NOW)));
    assert!(!r.is_overdue(at("2026-01-20T11:59:59Z")));
    assert!(!r.status(RequestStatus::Rejected).is_overdue(at(NOW)));
}

fn arb_action() -> impl Strategy<Value = RequestAction> {
    prop_oneof![
        Just(RequestAction::Start),
        Just(RequestAction::OwnPartDone { note: None }),
        prop::sample::select(vec!["crm", "shop", "nowhere"])
            .prop_map(|d| RequestAction::CompleteTask { destination_id: d.into(), note: None }),
        (0u32..4).prop_map(|months| RequestAction::Extend { months, reason: "r".into() }),
        Just(RequestAction::Reject { reason: "r".into() }),
        Just(RequestAction::MarkOverdue),
    ]
}

proptest! {
    /// Whatever happens to a request: closed requests stay as they are, a request is completed exactly
    /// when its own part is done and no task is pending, `closed_at` is set exactly when it is closed,
    /// the deadline never passes the limit, and the history's last status is the request's.
    #[test]
    fn state_machine_invariants(actions in prop::collection::vec((arb_action(), 0i64..40), 0..30)) {
        let destinations = ["crm".to_owned(), "shop".to_owned()];
        let mut state = receive(at(RECEIVED), &destinations).state;
        let mut now = at(RECEIVED);
        for (action, days) in actions {
            now = now.plus_seconds(days * 86_400);
            match next(&state, action, now) {
                Ok(t) => {
                    prop_assert!(state.status.is_open());
                    let done = t.state.own_done_at.is_some() && t.state.pending_tasks() == 0;
                    let rejected = t.state.status == RequestStatus::Rejected;
                    prop_assert_eq!(t.state.status == RequestStatus::Completed, done && !rejected);
                    prop_assert_eq!(t.state.closed_at.is_some(), !t.state.status.is_open());
                    prop_assert!(t.state.due_at <= latest_due_at(t.state.received_at));
                    prop_assert_eq!(t.history.last().map(|h| h.status), Some(t.state.status));
                    state = t.state;
                }
                Err(Refusal::Closed(status)) => prop_assert!(!status.is_open() && status == state.status),
                Err(_) => prop_assert!(state.status.is_open()),
            }
        }
    }
}
