//! Who may change a child's consents, and as whom: the actor a consent write is recorded with, and the
//! refusal of a known child's own consent.

use consentry_core::catalog::Basis;
use consentry_core::ledger::{ACTOR_GUARDIAN_PREFIX, is_guardian_actor};
use consentry_core::{NewEvent, SubjectId, Timestamp};

use crate::auth::{ACTOR_SUBJECT, Principal, Scope};
use crate::error::{Error, Result};
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
/// recorded guardian of theirs. A service key needs `scope`.
pub async fn require_reader(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    scope: Scope,
) -> Result<()> {
    match principal {
        Principal::Subject(s) if &s.subject != subject => {
            if guardian_may_act(state, subject) && super::is_guardian(state, subject, &s.subject).await? {
                Ok(())
            } else {
                Err(Error::WrongPrincipal("this token is for another subject"))
            }
        }
        _ => principal.require_subject(subject, scope),
    }
}

/// Refuses events that would record a known child's consent without a guardian: a grant or renewal of a
/// consent purpose whose actor is not a guardian's (403 `guardian_required`). A guardian's actor,
/// `guardian:<pseudonym>`, must name a recorded guardian of the subject (403 otherwise). Withdrawals, denials and objections always
/// pass: a child can always say no.
pub async fn refuse_for_child(state: &Services, subject: &SubjectId, events: &[NewEvent]) -> Result<()> {
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
        return Ok(());
    }
    let view = state.catalog();
    for (i, e) in events.iter().enumerate() {
        // Their place sets the age that makes them a child: a child alone cannot move it.
        if e.jurisdiction.is_some() && e.actor == ACTOR_SUBJECT {
            return Err(Error::GuardianRequired(format!(
                "changes[{i}]: this subject is a known child; a guardian or the brand sets their jurisdiction"
            )));
        }
        let consent = view.catalog.purpose(&e.purpose).is_some_and(|p| p.basis == Basis::Consent);
        if consent && e.action.is_positive() && !is_guardian_actor(&e.actor) {
            return Err(Error::GuardianRequired(format!(
                "changes[{i}]: this subject is a known child; a guardian must give consent to {:?} \
                 (their own token, or a service key with \"actor\": \"guardian:<id>\")",
                e.purpose
            )));
        }
    }
    Ok(())
}
