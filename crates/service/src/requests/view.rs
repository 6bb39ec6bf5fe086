//! What the API and the preference centre show of a request: the request, its tasks and history, and
//! where its export is while it is available.

use consentry_core::request::{RequestStatus, TaskStatus, export_until};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::requests::{RequestRecord, StoredRequest};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskOut {
    pub destination_id: String,
    /// `pending` or `completed`.
    pub status: String,
    pub note: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Pending while the request is past its deadline.
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryOut {
    pub at: String,
    /// `received`, `started`, `own_part_done`, `task_completed`, `extended`, `rejected`, `completed`,
    /// `overdue`.
    pub change: String,
    /// The request's status after the change.
    pub status: String,
    pub actor: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportOut {
    /// Where to download the ZIP.
    pub url: String,
    pub available_until: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `received`, `in_progress`, `completed` or `rejected`.
    pub status: String,
    /// `null` once the subject was erased.
    pub subject: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    pub received_at: String,
    pub due_at: String,
    /// Open and past `due_at`.
    pub overdue: bool,
    /// When Consentry's own part was done.
    pub own_part_done_at: Option<String>,
    pub closed_at: Option<String>,
    /// The reason of the latest extension or of the rejection.
    pub reason: Option<String>,
    /// Access and portability, once ready.
    pub export: Option<ExportOut>,
    /// Downstream tasks not yet confirmed (overdue with the request).
    pub pending_tasks: u32,
    /// Only in a single request's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryOut>>,
}

pub(super) fn record_out(r: RequestRecord, now: Timestamp) -> RequestOut {
    let export = match r.own_done_at {
        Some(ready) if r.kind.exports() && r.status != RequestStatus::Rejected && r.subject.is_some() => {
            Some(ExportOut {
                url: format!("/v1/requests/{}/export", r.id),
                available_until: export_until(ready).to_string(),
            })
        }
        _ => None,
    };
    RequestOut {
        overdue: r.status.is_open() && r.due_at <= now,
        id: r.id,
        kind: r.kind.as_str().to_owned(),
        status: r.status.as_str().to_owned(),
        subject: r.subject.map(SubjectId::into_string),
        details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        received_at: r.received_at.to_string(),
        due_at: r.due_at.to_string(),
        own_part_done_at: r.own_done_at.map(|t| t.to_string()),
        closed_at: r.closed_at.map(|t| t.to_string()),
        reason: r.reason,
        export,
        pending_tasks: r.pending_tasks,
        tasks: None,
        history: None,
    }
}

/// The API view of a request with its tasks and history.
pub fn view(stored: StoredRequest, now: Timestamp) -> RequestOut {
    let mut out = record_out(stored.record, now);
    let overdue = out.overdue;
    out.tasks = Some(
        stored
            .tasks
            .into_iter()
            .map(|t| TaskOut {
                overdue: overdue && t.status == TaskStatus::Pending,
                destination_id: t.destination_id,
                status: t.status.as_str().to_owned(),
                note: t.note,
                created_at: t.created_at.to_string(),
                completed_at: t.completed_at.map(|t| t.to_string()),
            })
            .collect(),
    );
    out.history = Some(
        stored
            .history
            .into_iter()
            .map(|h| HistoryOut {
                at: h.at.to_string(),
                change: h.change.as_str().to_owned(),
                status: h.status.as_str().to_owned(),
                actor: h.actor,
                note: h.note,
            })
            .collect(),
    );
    out
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestOut>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}
