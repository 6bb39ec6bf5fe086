//! Who may change a child's consents, and as whom: the actor a consent write is recorded with, and the
//! refusal of a known child's own consent (their refusals are always recorded).

use consentry_core::catalog::Basis;
use consentry_core::ledger::{ACTOR_GUARDIAN_PREFIX, is_guardian_actor};
use consentry_core::{NewEvent, SubjectId, Timestamp};

use crate::auth::{ACTOR_SUBJECT, Principal, Scope};
use crate::error::{Error, FieldProblem, Result};
use crate::state::Services;

/// Whether a guardian may act for `subject` now: only while `subject` is a known child (a recorded
/// guardian of someone whose age is unknown, or who came of age, acts for nobody).
pub fn guardian_may_act(state: &Services, subject: &SubjectId) -> bool {
    state.engine.child_until(subject.as_str()).is_some_and(|until| Timestamp::now() < until)
}

/// The actor recorded for `guardian`'s consent changes on `child`'s behalf, `guardian:<pseudonym of the
/// guardian>`, when they are a recorded guardian of `child`: the ledger, the receipts and the CloudEvents
/// name a guardian as linking names an old record, by pseudonym, never by subject id (an erasure of the
/// guardian destroys the pseudonym's key, so nothing left names them).
pub async fn guardian_actor(
    state: &Services,
    child: &SubjectId,
    guardian: &SubjectId,
) -> Result<Option<String>> {
    let guardians = state.store.guardian_pseudonyms(child).await?;
    Ok(guardians.into_iter().find(|(g, _)| g == guardian).map(|(_, p)| format!("{ACTOR_GUARDIAN_PREFIX}{p}")))
}

/// The actor a consent write on `subject`'s consents by `principal` is recorded with, after checking the
/// caller may write there: a service key with `consent:write` (`key:<id>`, or, when it `requested`
/// `guardian:<id>` naming a recorded guardian of the subject, that guardian's actor), the subject's own
/// token (`subject`), or the token of a recorded guardian of the subject (their actor): see
/// [`guardian_actor`].
pub async fn write_actor(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    requested: Option<&str>,
) -> Result<String> {
    match principal {
        Principal::Service(caller) => {
            caller.require(Scope::ConsentWrite)?;
            let Some(actor) = requested else { return Ok(principal.actor()) };
            let guardian =
                actor.strip_prefix(ACTOR_GUARDIAN_PREFIX).and_then(|id| SubjectId::new(id).ok()).ok_or_else(
                    || Error::validation("actor", "must be guardian:<the guardian's subject id>"),
                )?;
            let Some(actor) = guardian_actor(state, subject, &guardian).await? else {
                return Err(Error::validation("actor", "names no recorded guardian of this subject"));
            };
            if !guardian_may_act(state, subject) {
                return Err(Error::validation(
                    "actor",
                    "this subject has come of age: they decide themselves",
                ));
            }
            Ok(actor)
        }
        Principal::Subject(s) => {
            if requested.is_some() {
                return Err(Error::validation("actor", "only a service key names an actor"));
            }
            if &s.subject == subject {
                return Ok(principal.actor());
            }
            if guardian_may_act(state, subject)
                && let Some(actor) = guardian_actor(state, subject, &s.subject).await?
            {
                return Ok(actor);
            }
            Err(Error::WrongPrincipal("this token is for another subject"))
        }
        Principal::Device(_) | Principal::Household(_) => {
            Err(Error::WrongPrincipal("device tokens may not use this route"))
        }
    }
}

/// For a subject token: whether it may read `subject`'s consents and preferences, as the person or as a
/// recorded guardian of theirs. A service key needs `scope`. A guardian's read gives their actor
/// (`guardian:<pseudonym>`), which the access log names them by ([`Reader::by_guardian`]).
///
/// [`Reader::by_guardian`]: crate::access::Reader::by_guardian
pub async fn require_reader(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    scope: Scope,
) -> Result<Option<String>> {
    match principal {
        Principal::Subject(s) if &s.subject != subject => {
            let actor = match guardian_may_act(state, subject) {
                true => guardian_actor(state, subject, &s.subject).await?,
                false => None,
            };
            actor.map(Some).ok_or(Error::WrongPrincipal("this token is for another subject"))
        }
        _ => principal.require_subject(subject, scope).map(|()| None),
    }
}

/// What of a request's events may be recorded for `subject`: a known child's own grant or renewal of a
/// consent purpose (an actor other than `guardian:<pseudonym>`) is refused, and so is a child moving their own
/// jurisdiction (the place sets the age that makes them a child); everything else (withdrawals, denials,
/// objections, restrictions, a guardian's grants) is kept, since a child can always say no. Returns the
/// events to record and one problem per refused change (`changes[i]`, or `jurisdiction`), in order; a
/// change whose jurisdiction alone is refused is kept without it. A guardian's actor must name a recorded
/// guardian of the subject (403 for the whole request otherwise).
pub async fn split_for_child(
    state: &Services,
    subject: &SubjectId,
    events: Vec<NewEvent>,
) -> Result<(Vec<NewEvent>, Refused)> {
    if events.iter().any(|e| is_guardian_actor(&e.actor)) {
        let recorded: Vec<String> = state
            .store
            .guardian_pseudonyms(subject)
            .await?
            .into_iter()
            .map(|(_, p)| format!("{ACTOR_GUARDIAN_PREFIX}{p}"))
            .collect();
        if events.iter().any(|e| is_guardian_actor(&e.actor) && !recorded.contains(&e.actor)) {
            return Err(Error::WrongPrincipal("the actor names no recorded guardian of this subject"));
        }
    }
    if !state.engine.is_child(subject.as_str(), Timestamp::now()) {
        return Ok((events, Refused::default()));
    }
    let view = state.catalog();
    let mut kept = Vec::with_capacity(events.len());
    let mut refused = Refused::default();
    for (i, mut e) in events.into_iter().enumerate() {
        if e.jurisdiction.is_some() && e.actor == ACTOR_SUBJECT {
            e.jurisdiction = None;
            refused.problems.push(FieldProblem {
                path: "jurisdiction".into(),
                message: "this subject is a known child; a guardian or the brand sets their jurisdiction"
                    .into(),
            });
        }
        let consent = view.catalog.purpose(&e.purpose).is_some_and(|p| p.basis == Basis::Consent);
        if consent && e.action.is_positive() && !is_guardian_actor(&e.actor) {
            refused.changes.push(i);
            refused.problems.push(FieldProblem {
                path: format!("changes[{i}]"),
                message: format!(
                    "a guardian must give consent to {:?} (their own token, or a service key with \
                     \"actor\": \"guardian:<id>\")",
                    e.purpose
                ),
            });
            // The place a service key or guardian set rides on the request's first change: it stays
            // recorded, on its own, when that change is refused.
            if let Some(place) = e.jurisdiction.take() {
                kept.push(NewEvent {
                    purpose: String::new(),
                    action: consentry_core::Action::Locate,
                    scope: Default::default(),
                    notice: None,
                    notice_version: None,
                    notice_hash: None,
                    collection_point: None,
                    expires_at: None,
                    evidence: None,
                    jurisdiction: Some(place),
                    ..e
                });
            }
            continue;
        }
        // A change that only set the place, with nothing else left to say, is not recorded.
        if e.action == consentry_core::Action::Locate && e.jurisdiction.is_none() {
            continue;
        }
        kept.push(e);
    }
    Ok((kept, refused))
}

/// What of a known child's request needs a guardian ([`split_for_child`]).
#[derive(Debug, Default)]
pub struct Refused {
    /// One per refused change or field, in order: `changes[i]` or `jurisdiction`.
    pub problems: Vec<FieldProblem>,
    /// The positions of the refused changes (grants) in the request.
    pub changes: Vec<usize>,
}

impl Refused {
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The answer to the request: 403 `guardian_required`, one problem per refused change; `recorded`,
    /// when the rest of the request (its refusals) was recorded, names how much and under which receipt.
    pub fn into_error(self, recorded: Option<(usize, &str)>) -> Error {
        let kept = match recorded {
            None => "nothing was recorded".to_owned(),
            Some((n, receipt)) => {
                format!("the request's other {n} change(s) were recorded, receipt {receipt}")
            }
        };
        Error::GuardianRequired {
            detail: format!(
                "this subject is a known child; {} change(s) need a guardian (see errors); {kept}",
                self.problems.len()
            ),
            errors: self.problems,
        }
    }
}
