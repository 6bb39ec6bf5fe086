//! Identifiers that can only be built valid: subject ids and catalogue keys.

use std::fmt;

/// Why an identifier was refused. Carries no copy of the refused value, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} bytes long")]
    TooLong(usize),
    #[error("{0}")]
    BadSyntax(&'static str),
}

/// The brand's own opaque identifier of one person.
///
/// 1 to 128 bytes of `A-Z a-z 0-9 - _ . : @ + = ~`, so it is safe in a URL path segment and in logs'
/// structure (it is still personal data and is never logged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectId(String);

impl SubjectId {
    pub const MAX_LEN: usize = 128;

    pub fn new(raw: impl Into<String>) -> Result<Self, InvalidId> {
        let raw = raw.into();
        Self::validate(&raw)?;
        Ok(Self(raw))
    }

    pub fn validate(raw: &str) -> Result<(), InvalidId> {
        if raw.is_empty() {
            return Err(InvalidId::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidId::TooLong(Self::MAX_LEN));
        }
        let ok = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@+=~".contains(&b));
        if !ok {
            return Err(InvalidId::BadSyntax("may only contain letters, digits and - _ . : @ + = ~"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A catalogue key: dot-separated segments of `[a-z][a-z0-9_-]*`, at most 128 bytes.
///
/// The dots are the hierarchy: `user.contact.email` lies under `user.contact`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    pub const MAX_LEN: usize = 128;

    pub fn new(raw: impl Into<String>) -> Result<Self, InvalidId> {
        let raw = raw.into();
        Self::validate(&raw)?;
        Ok(Self(raw))
    }

    pub fn validate(raw: &str) -> Result<(), InvalidId> {
        if raw.is_empty() {
            return Err(InvalidId::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidId::TooLong(Self::MAX_LEN));
        }
        for segment in raw.split('.') {
            let mut bytes = segment.bytes();
            let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
            let rest_ok =
                bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !first_ok || !rest_ok {
                return Err(InvalidId::BadSyntax(
                    "must be dot-separated segments that start with a-z and hold only a-z, 0-9, _ and -",
                ));
            }
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parent of a dotted key (`user.contact` for `user.contact.email`), or `None` at the top.
pub fn parent_key(key: &str) -> Option<&str> {
    key.rfind('.').map(|i| &key[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids() {
        assert!(SubjectId::new("user-42").is_ok());
        assert!(SubjectId::new("a@b.example").is_ok());
        assert_eq!(SubjectId::new(""), Err(InvalidId::Empty));
        assert!(SubjectId::new("has space").is_err());
        assert!(SubjectId::new("slash/inside").is_err());
        assert!(SubjectId::new("x".repeat(129)).is_err());
    }

    #[test]
    fn keys() {
        for ok in ["user", "user.contact.email", "web-signup", "a1_b"] {
            assert!(Key::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "User", "user..email", ".user", "user.", "1abc", "user.Email", "a b"] {
            assert!(Key::new(bad).is_err(), "{bad}");
        }
        assert_eq!(parent_key("user.contact.email"), Some("user.contact"));
        assert_eq!(parent_key("user"), None);
    }
}
