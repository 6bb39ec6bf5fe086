//! `/v1/catalog`: read and apply the whole catalogue, as JSON or YAML.

use consentry_core::catalog::{Catalog, CatalogDocument};

use serde::Serialize;

use utoipa::ToSchema;

use crate::error::{Error, FieldProblem, Result};

use crate::state::CatalogView;

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

/// Parses a catalogue document sent as JSON or YAML.
pub fn parse_document(content_type: &str, body: &[u8]) -> Result<CatalogDocument> {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let unreadable =
        |message: String| Error::InvalidCatalog(vec![FieldProblem { path: String::new(), message }]);
    match media.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => unreadable(e.to_string()),
            _ => Error::InvalidJson(format!("the body is not valid JSON: {e}")),
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            let text = std::str::from_utf8(body).map_err(|_| unreadable("the body is not UTF-8".into()))?;
            CatalogDocument::from_yaml(text).map_err(|e| unreadable(e.0))
        }
        _ => Err(Error::UnsupportedMediaType(
            "send the catalogue as application/json or application/yaml".into(),
        )),
    }
}

/// Validates a document, listing every problem with its path.
pub fn validate_document(doc: CatalogDocument) -> Result<Catalog> {
    Catalog::validate(doc).map_err(|problems| {
        Error::InvalidCatalog(
            problems.into_iter().map(|p| FieldProblem { path: p.path, message: p.message }).collect(),
        )
    })
}
