//! `/v1/audit/verify`: walks the hash chain and the signed checkpoints, and rebuilds the Merkle tree
//! against the signed tree checkpoints and the stored nodes, with the same code third parties use
//! (`consentry_client::verify`).

use std::sync::Arc;

use axum::extract::State;
use consentry_service::audit::{self, AuditOut};

use crate::auth::{Caller, Scope};
use crate::error::{ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;

/// Verify the ledger's hash chain, its Merkle tree and their signed checkpoints.
#[utoipa::path(get, operation_id = "verifyAudit", path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditOut), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = ["admin"])))]
pub async fn verify(State(state): State<AppState>, caller: Arc<Caller>) -> ApiResult<Json<AuditOut>> {
    caller.require(Scope::Admin)?;
    Ok(Json(audit::verify(&state).await?))
}
