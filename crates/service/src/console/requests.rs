//! The console's requests queue and a request's page: the open and closed data subject requests with their
//! deadlines, filtered and a page at a time; one request with its tasks and history; and what a
//! `console:write` session does to it (extend or reject with a reason, mark a downstream task complete,
//! download the export), each recorded in the request's history with the key's name as actor. Reading a
//! request that names a person, and downloading their export, go into that person's access log under the
//! key's name with the purpose `console`.

use consentry_core::Timestamp;

use super::ConsoleCaller;
use crate::access::Reader;
use crate::error::{Error, Result};
use crate::export::{Archive, Language};
use crate::requests::{
    self, CompleteTask, ExtendRequest, RejectRequest, RequestList, RequestOut, RequestQuery, view,
};
use crate::state::Services;

/// Requests per page of the queue.
pub const PER_PAGE: u32 = 25;

/// What the console names as the purpose of its reads in a person's access log.
pub const PURPOSE: &str = "console";

/// One page of the queue: `status`, `kind` and `overdue` filter it, `after` is the last id of the page
/// before.
pub async fn queue(
    services: &Services,
    status: Option<String>,
    kind: Option<String>,
    overdue: bool,
    after: Option<String>,
) -> Result<RequestList> {
    let query = RequestQuery { status, kind, overdue, subject: None, after, limit: Some(PER_PAGE) };
    requests::filtered(services, None, query).await
}

/// The request `id` with its tasks and history (a read of its person's data, logged).
pub async fn request(services: &Services, caller: &ConsoleCaller, id: &str) -> Result<RequestOut> {
    let stored = services.store.request(id).await?.ok_or(Error::NotFound("request"))?;
    if let Some(subject) = &stored.record.subject {
        Reader::service(&caller.caller, "console: request", Some(PURPOSE)).log(&services.access, subject);
    }
    Ok(view(stored, Timestamp::now()))
}

/// Extends the deadline of `id` by `months` (1 or 2 in all), with the reason. Needs `console:write`.
pub async fn extend(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    months: u32,
    reason: String,
) -> Result<RequestOut> {
    caller.require_write()?;
    requests::extend(services, id, ExtendRequest { months, reason }, &caller.actor()).await
}

/// Rejects `id`, with the reason. Needs `console:write`.
pub async fn reject(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    reason: String,
) -> Result<RequestOut> {
    caller.require_write()?;
    requests::reject(services, id, RejectRequest { reason }, &caller.actor()).await
}

/// Marks the task of `destination` done, with an optional note (a destination that cannot confirm by
/// itself). Needs `console:write`.
pub async fn complete_task(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    destination: String,
    note: Option<String>,
) -> Result<RequestOut> {
    caller.require_write()?;
    requests::complete_task(services, id, destination, CompleteTask { note }, &caller.actor()).await
}

/// The export of `id` (access or portability), its guide in `lang`; the download is in the person's access
/// log. Needs `console:write`: it hands out the person's data.
pub async fn export(
    services: &Services,
    caller: &ConsoleCaller,
    id: &str,
    lang: Language,
) -> Result<Archive> {
    caller.require_write()?;
    let stored = services.store.request(id).await?.ok_or(Error::NotFound("request"))?;
    let archive = requests::export_archive(services, &stored, Timestamp::now(), lang).await?;
    if let Some(subject) = &stored.record.subject {
        Reader::service(&caller.caller, "console: request export", Some(PURPOSE))
            .log(&services.access, subject);
    }
    Ok(archive)
}
