//! Types that exist only to describe values in the OpenAPI document: the forms the service accepts for
//! ids that travel as plain strings. The rules themselves are in `consentry_core::ids`.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// The form of a catalogue key (`consentry_core::Key`).
pub const KEY_PATTERN: &str = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$";
/// The form of a subject id (`consentry_core::SubjectId`).
pub const SUBJECT_PATTERN: &str = r"^[A-Za-z0-9._:@+=~-]+$";

fn string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(128))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// A catalogue key.
pub struct CatalogKey;

impl PartialSchema for CatalogKey {
    fn schema() -> RefOr<Schema> {
        string(
            KEY_PATTERN,
            "A catalogue key: dot-separated segments of lowercase letters, digits, `_` and `-`, each starting \
             with a letter; at most 128 bytes",
        )
    }
}

impl ToSchema for CatalogKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CatalogKey")
    }
}

/// An event type a destination subscribes to: exact (`consent.withdrawn`), a prefix (`consent.*`) or `*`.
pub struct EventType;

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(100))
            .pattern(Some(r"^(\*|[a-z0-9._]+\*?)$"))
            .description(Some("An event type (`consent.withdrawn`), a prefix pattern (`consent.*`) or `*`"))
            .into()
    }
}

impl ToSchema for EventType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

/// A subject id.
pub struct SubjectId;

impl PartialSchema for SubjectId {
    fn schema() -> RefOr<Schema> {
        string(
            SUBJECT_PATTERN,
            "The brand's own id of a person: 1 to 128 ASCII letters, digits and `- _ . : @ + = ~`",
        )
    }
}

impl ToSchema for SubjectId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SubjectId")
    }
}
