//! The access log: who read a subject's data, through which route, for which stated purpose; and how
//! often each subject's consent was checked, per purpose.
//!
//! Reads are queued and written by the access-log worker in batches (group-committed with ledger writes on
//! the embedded store), so logging adds no fsync to a read. Checks are only counted, in memory, per subject
//! and purpose, and the counts are added to the store every few seconds and at shutdown; subject ids never
//! become metric labels.

use consentry_core::SubjectId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod log;

pub use log::{AccessLog, PURPOSE_HEADER};

use crate::auth::{Caller, Principal};
use crate::error::Result;
use crate::state::Services;

/// The caller shown in the access log for what a person did with their own subject token. The token
/// names no service, so the entry says only `subject`; the service that gave the person the token is in the
/// entry of its minting ([`log_mint`]).
pub const CALLER_SUBJECT: &str = "subject";

/// The route of a subject token's minting, as the access log shows it.
pub const MINT_ROUTE: &str = "POST /v1/subjects/{subject}/tokens";

/// Who reads (or acts on) a subject's data, where it came in and why. A service's read goes into the
/// subject's access log under the key's name, a person's with their subject token under `subject`, a
/// guardian's (with their own token, on their child's data) under `guardian:<pseudonym>` as the ledger names
/// them ([`Reader::by_guardian`]); a device reading its own subject's data is no access to report (it was
/// paired to do so).
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The API key's name, or [`CALLER_SUBJECT`]; `None` for a device.
    caller: Option<&'a str>,
    route: &'static str,
    stated: Option<&'a str>,
}

impl<'a> Reader<'a> {
    /// `route` names where the read came in (e.g. `GET /v1/subjects/{subject}/consents`); `stated` is the
    /// purpose the caller gave for reading (`X-Consentry-Purpose`), as sent.
    pub fn new(principal: &'a Principal, route: &'static str, stated: Option<&'a str>) -> Self {
        let caller = match principal {
            Principal::Service(c) => Some(c.key_name.as_str()),
            Principal::Subject(_) => Some(CALLER_SUBJECT),
            Principal::Device(_) | Principal::Household(_) => None,
        };
        Self { caller, route, stated }
    }

    /// An action on the subject's data (not a read): logged when the person did it with their subject
    /// token, under `subject`; a service's actions are in the ledger or the request's history instead, and
    /// a device's are what it was paired to do.
    pub fn action(principal: &'a Principal, route: &'static str, stated: Option<&'a str>) -> Self {
        let caller = matches!(principal, Principal::Subject(_)).then_some(CALLER_SUBJECT);
        Self { caller, route, stated }
    }

    /// What the person did or read on their preference-centre page (signed in with their link), under
    /// `subject`; `route` names the page action (e.g. `preferences: save`), and no purpose is stated.
    pub fn person(route: &'static str) -> Self {
        Self { caller: Some(CALLER_SUBJECT), route, stated: None }
    }

    /// What a guardian read or did on their child's page of the preference centre, under their actor
    /// `guardian:<pseudonym>` (never their subject id).
    pub fn guardian_page(actor: &'a str, route: &'static str) -> Self {
        Self { caller: Some(actor), route, stated: None }
    }

    /// The same read done by a guardian with their own subject token on their child's data, when
    /// `guardian` is their actor (`guardian:<pseudonym>`,
    /// [`guardian_actor`](crate::guardians::writes::guardian_actor)): logged under it instead of `subject`,
    /// which would tell the child they read it themselves.
    pub fn by_guardian(self, guardian: Option<&'a str>) -> Self {
        match guardian {
            Some(actor) if self.caller.is_some() => Self { caller: Some(actor), ..self },
            _ => self,
        }
    }

    /// A read by a service key.
    pub fn service(caller: &'a Caller, route: &'static str, stated: Option<&'a str>) -> Self {
        Self { caller: Some(caller.key_name.as_str()), route, stated }
    }

    /// Logs this read of `subject`'s data, when it is a service's or the person's own.
    pub fn log(&self, log: &AccessLog, subject: &SubjectId) {
        if let Some(caller) = self.caller {
            log.read(subject, caller, self.route, self.stated);
        }
    }
}

/// Logs that `minter` (a service key) minted a subject token for `subject`, with the purpose it stated: a
/// token acts as the person, so the person sees who was given that power and why.
pub fn log_mint(log: &AccessLog, subject: &SubjectId, minter: &Caller, stated: Option<&str>) {
    log.read(subject, &minter.key_name, MINT_ROUTE, stated);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntryOut {
    pub id: i64,
    pub at: String,
    /// The API key's name, `subject` for the person themselves acting with a subject token, or
    /// `guardian:<pseudonym>` for a parent or guardian acting with their own (the ledger's name for them).
    pub caller: String,
    pub route: String,
    /// The purpose the caller stated in `X-Consentry-Purpose`, or `unspecified`.
    pub purpose: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckCount {
    pub purpose: String,
    pub count: u64,
    pub last_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLogOut {
    /// Newest first.
    pub entries: Vec<AccessEntryOut>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next: Option<i64>,
    /// Consent checks are counted, not logged one by one.
    pub checks: Vec<CheckCount>,
}

/// Which page of the access log: `limit` entries (1 to 1000, default 100) older than `before`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AccessPage {
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
}

/// One page of `subject`'s access log, newest first, and their consent checks counted per purpose; the
/// read itself is logged after it.
pub async fn list(
    services: &Services,
    subject: &SubjectId,
    page: AccessPage,
    reader: Reader<'_>,
) -> Result<AccessLogOut> {
    let limit = crate::page_limit(page.limit, 1000)?;
    let records = services.store.access_log(subject, page.before, limit).await?;
    let next = (records.len() == limit as usize).then(|| records.last().map(|r| r.id)).flatten();
    let entries = records
        .into_iter()
        .map(|r| AccessEntryOut {
            id: r.id,
            at: r.at.to_string(),
            caller: r.caller,
            route: r.route,
            purpose: r.purpose,
        })
        .collect();
    let checks = services
        .store
        .check_counts(subject)
        .await?
        .into_iter()
        .map(|(purpose, count, last)| CheckCount { purpose, count, last_at: last.to_string() })
        .collect();
    reader.log(&services.access, subject);
    Ok(AccessLogOut { entries, next, checks })
}
