//! `/v1/catalog`: read and apply the whole catalogue, as JSON or YAML.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use consentry_core::catalog::{Catalog, CatalogDocument};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, FieldProblem, Problem};
use crate::extract::{BodyLimit, Json, body_bytes};
use crate::state::{AppState, CatalogView};

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeInfo {
    pub key: String,
    pub version: u32,
    /// SHA-256 of the notice text: the identity of this version.
    pub sha256: String,
    pub title: String,
    pub language: String,
    pub url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogOut {
    pub version: u64,
    pub applied_at: String,
    /// The catalogue document (`data_categories`, `purposes`, `channels`, `recipients`, `notices`,
    /// `collection_points`).
    #[schema(value_type = Object)]
    pub document: CatalogDocument,
    /// The current version of each notice.
    pub notices: Vec<NoticeInfo>,
}

impl From<&CatalogView> for CatalogOut {
    fn from(view: &CatalogView) -> Self {
        let s = &view.stored;
        CatalogOut {
            version: s.version,
            applied_at: s.applied_at.to_string(),
            document: s.document.clone(),
            notices: s
                .notices
                .iter()
                .map(|n| NoticeInfo {
                    key: n.key.clone(),
                    version: n.version,
                    sha256: n.sha256.clone(),
                    title: n.title.clone(),
                    language: n.language.clone(),
                    url: n.url.clone(),
                })
                .collect(),
        }
    }
}

/// The current catalogue and its version. Any valid key may read it.
#[utoipa::path(get, path = "/v1/catalog", tag = "catalog",
    responses((status = 200, body = CatalogOut), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, _caller: Arc<Caller>) -> ApiResult<Json<CatalogOut>> {
    Ok(Json(CatalogOut::from(state.catalog().as_ref())))
}

/// Parses a catalogue document sent as JSON or YAML.
pub fn parse_document(content_type: &str, body: &[u8]) -> ApiResult<CatalogDocument> {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let unreadable =
        |message: String| ApiError::InvalidCatalog(vec![FieldProblem { path: String::new(), message }]);
    match media.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => unreadable(e.to_string()),
            _ => ApiError::InvalidJson(format!("the body is not valid JSON: {e}")),
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            let text = std::str::from_utf8(body).map_err(|_| unreadable("the body is not UTF-8".into()))?;
            CatalogDocument::from_yaml(text).map_err(|e| unreadable(e.0))
        }
        _ => Err(ApiError::UnsupportedMediaType(
            "send the catalogue as application/json or application/yaml".into(),
        )),
    }
}

/// Validates a document, listing every problem with its path.
pub fn validate_document(doc: CatalogDocument) -> ApiResult<Catalog> {
    Catalog::validate(doc).map_err(|problems| {
        ApiError::InvalidCatalog(
            problems.into_iter().map(|p| FieldProblem { path: p.path, message: p.message }).collect(),
        )
    })
}

/// Apply a whole catalogue as a new version. A rejected document changes nothing.
#[utoipa::path(put, path = "/v1/catalog", tag = "catalog",
    request_body(content = Object, description = "The catalogue document", content_type = "application/json"),
    responses((status = 200, body = CatalogOut), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Arc<Caller>,
    request: Request,
) -> ApiResult<Json<CatalogOut>> {
    caller.require(Scope::CatalogWrite)?;
    let limit = request.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = body_bytes(request, &state, limit).await?;
    let doc = parse_document(&content_type, &body)?;
    let catalog = validate_document(doc)?;

    let _serial = state.catalog_apply.lock().await;
    let stored = state.store.apply_catalog(catalog.document()).await?;
    state.engine.set_catalog(&catalog).map_err(ApiError::internal)?;
    let view = CatalogView { stored, catalog };
    let out = CatalogOut::from(&view);
    state.set_catalog(view);
    state.devices.everyone();
    tracing::info!(version = out.version, by = %caller.key_id, "catalogue applied");
    Ok(Json(out))
}
