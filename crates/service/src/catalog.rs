//! The catalogue: read it, and apply a whole new version (sent as JSON or YAML) to the store, the decision
//! engine and the node's view together.

use consentry_core::catalog::{Catalog, CatalogDocument};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, FieldProblem, Result};
use crate::state::{CatalogView, Services};

mod depth;

pub use depth::MAX_DEPTH;

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

/// The current catalogue and its version.
pub fn get(services: &Services) -> CatalogOut {
    CatalogOut::from(services.catalog().as_ref())
}

/// Applies a whole catalogue, sent as `content_type` (JSON or YAML), as a new version: the store, the engine
/// and the node's view change together, and devices are told. A rejected document changes nothing. `by`
/// names who applied it (logged).
pub async fn apply(services: &Services, content_type: &str, body: &[u8], by: &str) -> Result<CatalogOut> {
    apply_over(services, None, content_type, body, by).await
}

/// [`apply`], only while the current catalogue is version `base` when one is given (409 otherwise): what
/// the console's diff page shows is what it applies over.
pub async fn apply_over(
    services: &Services,
    base: Option<u64>,
    content_type: &str,
    body: &[u8],
    by: &str,
) -> Result<CatalogOut> {
    let catalog = read_off_runtime(content_type, body).await?;
    let _serial = services.catalog_apply.lock().await;
    // The store's version, not this node's view: another node may have applied one a moment ago.
    if let Some(base) = base
        && services.store.catalog_version().await? != Some(base)
    {
        return Err(Error::Conflict(format!(
            "the catalogue changed since version {base}: compare the document again"
        )));
    }
    let stored = services.store.apply_catalog(catalog.document()).await?;
    services.engine.set_catalog(&catalog).map_err(Error::internal)?;
    let view = CatalogView { stored, catalog };
    let out = CatalogOut::from(&view);
    services.set_catalog(view);
    services.devices.everyone();
    tracing::info!(version = out.version, by = %by, "catalogue applied");
    Ok(out)
}

/// [`read`] on a blocking thread: parsing a large document is CPU work, kept off the runtime's worker
/// threads so that other requests (and `/healthz`) are answered meanwhile.
pub async fn read_off_runtime(content_type: &str, body: &[u8]) -> Result<Catalog> {
    let (content_type, body) = (content_type.to_owned(), body.to_vec());
    tokio::task::spawn_blocking(move || read(&content_type, &body)).await.map_err(Error::internal)?
}

/// Parses and validates a catalogue document sent as `content_type` (JSON or YAML), listing every problem
/// with its path. The CLI applies a file offline through here.
pub fn read(content_type: &str, body: &[u8]) -> Result<Catalog> {
    validate_document(parse_document(content_type, body)?)
}

/// Parses a catalogue document sent as JSON or YAML, refusing one that nests deeper than [`MAX_DEPTH`]
/// before a parser sees it (a deep YAML document takes libyaml quadratic time).
fn parse_document(content_type: &str, body: &[u8]) -> Result<CatalogDocument> {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let unreadable =
        |message: String| Error::InvalidCatalog(vec![FieldProblem { path: String::new(), message }]);
    let too_deep = || unreadable(format!("the document nests deeper than {MAX_DEPTH} levels"));
    match media.as_str() {
        "application/json" if depth::json_too_deep(body, MAX_DEPTH) => Err(too_deep()),
        // serde reads a struct from an array of its fields too; a catalogue is an object.
        "application/json" if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'[') => {
            Err(unreadable("the catalogue must be a JSON object".into()))
        }
        "application/json" => serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => unreadable(e.to_string()),
            _ => Error::InvalidJson(format!("the body is not valid JSON: {e}")),
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            let text = std::str::from_utf8(body).map_err(|_| unreadable("the body is not UTF-8".into()))?;
            if depth::yaml_too_deep(text, MAX_DEPTH) {
                return Err(too_deep());
            }
            CatalogDocument::from_yaml(text).map_err(|e| unreadable(e.0))
        }
        _ => Err(Error::UnsupportedMediaType(
            "send the catalogue as application/json or application/yaml".into(),
        )),
    }
}

/// Validates a document, listing every problem with its path.
fn validate_document(doc: CatalogDocument) -> Result<Catalog> {
    Catalog::validate(doc).map_err(|problems| {
        Error::InvalidCatalog(
            problems.into_iter().map(|p| FieldProblem { path: p.path, message: p.message }).collect(),
        )
    })
}
