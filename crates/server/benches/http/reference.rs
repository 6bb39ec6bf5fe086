//! The reference the check rate is measured against, in the same run and under the same load: a bare axum
//! handler that parses the same JSON into a small struct and answers a small JSON, with no store, engine or
//! credentials behind it.

use axum::Router;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::node::{Running, start_app};

#[derive(Deserialize)]
struct BareCheck {
    subject: String,
    purpose: String,
    category: Option<String>,
    channel: Option<String>,
    recipient: Option<String>,
}

#[derive(Serialize)]
struct BareAnswer {
    allowed: bool,
    reason: &'static str,
    event_id: Option<String>,
}

async fn bare_check(axum::Json(c): axum::Json<BareCheck>) -> axum::Json<BareAnswer> {
    let allowed = !c.subject.is_empty()
        && c.purpose == "analytics"
        && c.category.is_some()
        && c.channel.is_some()
        && c.recipient.is_some();
    axum::Json(BareAnswer { allowed, reason: "granted", event_id: Some(format!("evt_{}", c.subject.len())) })
}

/// The bare handler at `POST /v1/check`, served on `rt`.
pub fn start_bare(rt: &Runtime) -> Result<Running, String> {
    start_app(rt, Router::new().route("/v1/check", post(bare_check)))
}
