//! `/v1/keys`: API keys (admin only). A key's secret is shown once, at creation.

use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use crate::auth::Scope;

use crate::error::{Error, Result};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label for people, 1 to 64 characters of letters, digits, space, `_`, `.` and `-`.
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The secret, shown only in this response. Send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// Checks a key request; shared with the CLI.
pub fn validate_key_request(name: &str, scopes: &[String]) -> Result<Vec<Scope>> {
    let name_ok = !name.trim().is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
    if !name_ok {
        return Err(Error::validation(
            "name",
            "must be 1 to 64 characters of letters, digits, space, `_`, `.` and `-`",
        ));
    }
    if scopes.is_empty() {
        return Err(Error::validation("scopes", "name at least one scope"));
    }
    let mut parsed = Vec::with_capacity(scopes.len());
    for (i, s) in scopes.iter().enumerate() {
        let scope = Scope::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            Error::validation(
                format!("scopes[{i}]"),
                format!("unknown scope {s:?}; known: {}", known.join(", ")),
            )
        })?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    Ok(parsed)
}
