//! People's identifiers: an e-mail address, a phone number, an account number, a device serial, an
//! advertising id attached to a subject, so that the person is found again by any of them.
//!
//! A value is normalised ([`normalise`]: an e-mail address trimmed and lower-cased, a phone number in
//! E.164, read with `phone_default_region` when it has no country code), stored encrypted under the
//! subject's own data key (the vault's; erasure destroys it), and found by its **blind index**:
//! HMAC-SHA256 of its type and normalised value under a key derived from the key store's pepper
//! ([`KeyPepper::derive`](crate::auth::KeyPepper::derive)), so the data store alone neither reveals a value
//! nor allows testing a guess. An identifier belongs to one subject at a time: adding one that another
//! subject holds is a 409 that does not say who.
//!
//! Listing shows values to callers with `identifiers:read` and to the person themselves; other callers
//! see them masked. Every listing is in the subject's access log.

use consentry_core::catalog::{BUILT_IN_IDENTIFIER_TYPES, Catalog};
use consentry_core::{SubjectId, Timestamp};
use consentry_store::identifiers::{AddedIdentifier, NewIdentifier, StoredIdentifier, new_identifier_id};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::{Principal, Scope};
use crate::error::{Error, Result};
use crate::state::Services;

/// The identifier types every installation knows; the catalogue may declare more (`identifier_types`).
pub const TYPES: [&str; 5] = BUILT_IN_IDENTIFIER_TYPES;

/// Longest value accepted, before normalisation.
const MAX_VALUE_LEN: usize = 256;

/// An identifier to attach to a subject.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierIn {
    /// `email`, `phone`, `account`, `device_serial`, `advertising_id`, or a type the catalogue declares
    /// (`identifier_types`); any other is 422 `unknown_identifier_type`.
    #[serde(rename = "type")]
    #[schema(example = "email")]
    pub kind: String,
    /// The value as given; it is normalised (an e-mail address trimmed and lower-cased, a phone number
    /// to E.164, a catalogue-defined type by its rule) before it is stored, encrypted.
    #[schema(min_length = 1, max_length = 256, example = "ana@example.com")]
    pub value: String,
}

/// An identifier of a subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifierOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The normalised value, or a masked form of it (`masked: true`) for callers without
    /// `identifiers:read`.
    pub value: String,
    pub masked: bool,
    pub created_at: String,
}

/// A subject's identifiers, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifierList {
    pub identifiers: Vec<IdentifierOut>,
}

/// The subjects an identifier names (none or one).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectMatches {
    pub subjects: Vec<SubjectMatch>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectMatch {
    pub subject: String,
}

pub use crate::config::phone_region;

/// 422 `unknown_identifier_type` naming `field`.
fn unknown_type(catalog: &Catalog, field: &str) -> Error {
    let declared = catalog.document().identifier_types.iter().map(|t| t.key.as_str());
    let known: Vec<&str> = TYPES.into_iter().chain(declared).collect();
    let message = format!("unknown identifier type; use one of {}", known.join(", "));
    Error::UnknownIdentifierType {
        detail: message.clone(),
        errors: vec![crate::error::FieldProblem { path: field.into(), message }],
    }
}

/// Whether `kind` is an identifier type: built in, or declared by `catalog`.
pub fn is_known(catalog: &Catalog, kind: &str) -> bool {
    TYPES.contains(&kind) || catalog.identifier_type(kind).is_some()
}

/// `value` of type `kind` in its one stored form; 422 `validation_failed` naming `field` when it is not
/// one, 422 `unknown_identifier_type` naming `type_field` for a type neither built in nor in `catalog`.
pub fn normalise(
    catalog: &Catalog,
    kind: &str,
    value: &str,
    region: Option<&str>,
    (type_field, field): (&str, &str),
) -> Result<String> {
    if !is_known(catalog, kind) {
        return Err(unknown_type(catalog, type_field));
    }
    if value.trim().is_empty() || value.len() > MAX_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(Error::validation(field, "must be 1 to 256 characters without control characters"));
    }
    if let Some(declared) = catalog.identifier_type(kind) {
        return Ok(declared.normalise.apply(value));
    }
    let value = value.trim();
    match kind {
        "email" => email(value).ok_or_else(|| Error::validation(field, "must be an e-mail address")),
        "phone" => phone(value, region).ok_or_else(|| {
            let hint = if region.is_some() { "" } else { " in international form (+ and country code)" };
            Error::validation(field, format!("must be a valid phone number{hint}"))
        }),
        "advertising_id" => advertising_id(value).ok_or_else(|| {
            Error::validation(field, "must be an advertising id (a UUID such as an IDFA or AAID)")
        }),
        _ => Ok(value.to_owned()),
    }
}

fn email(value: &str) -> Option<String> {
    let lower = value.to_lowercase();
    let (local, domain) = lower.rsplit_once('@')?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.chars().any(char::is_whitespace)
        && domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(label_ok);
    ok.then_some(lower)
}

fn phone(value: &str, region: Option<&str>) -> Option<String> {
    // Only what people write in a phone number reaches the parser.
    if value.len() > 40 || !value.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c)) {
        return None;
    }
    let region = match region {
        Some(code) => Some(phone_region(code)?),
        None if value.starts_with('+') || value.starts_with("00") => None,
        None => return None,
    };
    let text = value.to_owned();
    // A parser bug must not take the request down: a panic reads as "not a phone number".
    let number = std::panic::catch_unwind(move || phonenumber::parse(region, text).ok()).ok()??;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

fn advertising_id(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let groups: Vec<&str> = lower.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups.iter().zip(shape).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(lower)
}

/// The blind index of a normalised identifier.
pub fn blind_index(state: &Services, kind: &str, normalised: &str) -> [u8; 32] {
    let key = state.keys.pepper().derive("identifier-index");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!());
    mac.update(kind.as_bytes());
    mac.update(b"\0");
    mac.update(normalised.as_bytes());
    mac.finalize().into_bytes().into()
}

/// What a caller without `identifiers:read` sees of a value: enough to tell identifiers apart, not to
/// contact anyone.
pub fn mask(kind: &str, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match kind {
        "email" => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        },
        "phone" if chars.len() > 4 => format!("+***{}", chars[chars.len() - 2..].iter().collect::<String>()),
        _ if chars.len() > 8 => format!("***{}", chars[chars.len() - 4..].iter().collect::<String>()),
        _ => "***".to_owned(),
    }
}

fn out(stored: StoredIdentifier, show: bool) -> IdentifierOut {
    let value = if show { stored.value } else { mask(&stored.kind, &stored.value) };
    IdentifierOut {
        id: stored.id,
        kind: stored.kind,
        value,
        masked: !show,
        created_at: stored.created_at.to_string(),
    }
}

/// Attaches an identifier to `subject`. Returns it and whether it was new (the subject already holding it
/// changes nothing); 409 when another subject holds it, without saying which.
pub async fn add(state: &Services, subject: &SubjectId, body: IdentifierIn) -> Result<(IdentifierOut, bool)> {
    // An erased person gets no new key, and their identifiers are not stored again.
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let region = state.config.phone_default_region.as_deref();
    let value = normalise(&state.catalog().catalog, &body.kind, &body.value, region, ("type", "value"))?;
    let identifier = NewIdentifier {
        id: new_identifier_id()?,
        subject: subject.clone(),
        blind_index: blind_index(state, &body.kind, &value),
        kind: body.kind,
        value,
        created_at: Timestamp::now(),
    };
    let (id, kind, value, at) =
        (identifier.id.clone(), identifier.kind.clone(), identifier.value.clone(), identifier.created_at);
    let stored = |id: String, created_at: Timestamp| StoredIdentifier { id, kind, value, created_at };
    match state.store.add_identifier(&state.kek, identifier).await? {
        AddedIdentifier::Added => Ok((out(stored(id, at), true), true)),
        AddedIdentifier::Existing { id, created_at } => Ok((out(stored(id, created_at), true), false)),
        AddedIdentifier::Taken => {
            Err(Error::Conflict("this identifier belongs to another subject; remove it there first".into()))
        }
    }
}

/// The subject's identifiers, values shown to the person and to callers with `identifiers:read`.
pub async fn list(
    state: &Services,
    principal: &Principal,
    subject: &SubjectId,
    reader: Reader<'_>,
) -> Result<IdentifierList> {
    let show = match principal {
        Principal::Service(caller) => caller.require(Scope::IdentifiersRead).is_ok(),
        Principal::Subject(_) => true,
        Principal::Device(_) | Principal::Household(_) => false,
    };
    let stored = state.store.identifiers(&state.kek, subject).await?;
    reader.log(&state.access, subject);
    Ok(IdentifierList { identifiers: stored.into_iter().map(|s| out(s, show)).collect() })
}

/// Removes the subject's identifier `id` and its index entry; 404 when the subject has none such.
pub async fn delete(state: &Services, subject: &SubjectId, id: &str) -> Result<()> {
    if state.store.delete_identifier(subject, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("identifier"))
    }
}

/// The subject an identifier (`type:value`, e.g. `email:ana@example.com`) names, as a list of none or one.
pub async fn lookup(state: &Services, identifier: &str) -> Result<SubjectMatches> {
    let (kind, value) = identifier
        .split_once(':')
        .ok_or_else(|| Error::validation("identifier", "must be type:value, e.g. email:ana@example.com"))?;
    let region = state.config.phone_default_region.as_deref();
    let value = normalise(&state.catalog().catalog, kind, value, region, ("identifier", "identifier"))?;
    let found = state.store.subject_by_identifier(&blind_index(state, kind, &value)).await?;
    Ok(SubjectMatches {
        subjects: found.into_iter().map(|s| SubjectMatch { subject: s.as_str().to_owned() }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let doc = serde_json::from_value(serde_json::json!({
            "identifier_types": [
                {"key": "loyalty_card"},
                {"key": "crm_id", "normalise": "lowercase"},
                {"key": "ticket", "normalise": "none"}
            ]
        }))
        .expect("a document");
        Catalog::validate(doc).expect("valid")
    }

    fn normalise(kind: &str, value: &str, region: Option<&str>, field: &str) -> Result<String> {
        super::normalise(&catalog(), kind, value, region, ("type", field))
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            normalise("email", "  Ana.Lima@Example.COM ", None, "value").ok(),
            Some("ana.lima@example.com".into())
        );
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "ana@exa_mple.com",
            "ana@-x.com",
        ] {
            let err = normalise("email", bad, None, "value").expect_err(bad);
            assert_eq!(err.code(), "validation_failed", "{bad}");
        }
    }

    #[test]
    fn phones_become_e164_with_the_default_region() {
        assert_eq!(phone("+49 30 1234567", None).as_deref(), Some("+49301234567"));
        assert_eq!(phone("030 1234567", Some("DE")).as_deref(), Some("+49301234567"));
        assert_eq!(phone("(202) 555-0173", Some("us")).as_deref(), Some("+12025550173"));
        assert_eq!(phone("030 1234567", None), None, "national form needs a region");
        assert_eq!(phone("+49 12", None), None, "too short to be valid");
        assert_eq!(phone("call me", Some("DE")), None);
        assert_eq!(phone_region("XX"), None);
        assert!(phone_region("de").is_some());
    }

    #[test]
    fn other_types_and_unknown_ones() {
        let ad = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
        assert_eq!(normalise("advertising_id", ad, None, "value").ok(), Some(ad.to_ascii_lowercase()));
        assert!(normalise("advertising_id", "not-a-uuid", None, "value").is_err());
        assert_eq!(normalise("account", " A-123 ", None, "value").ok(), Some("A-123".into()));
        assert!(normalise("account", "bad\u{7}", None, "value").is_err());
        let err = normalise("fax", "1", None, "value").expect_err("unknown");
        assert_eq!(err.code(), "unknown_identifier_type");
        assert!(matches!(err, Error::UnknownIdentifierType { ref errors, .. } if errors[0].path == "type"));
        assert!(err.to_string().contains("loyalty_card"), "names the catalogue's types: {err}");
    }

    #[test]
    fn catalogue_types_follow_their_rule() {
        assert_eq!(normalise("loyalty_card", "  LC-0042 ", None, "value").ok(), Some("LC-0042".into()));
        assert_eq!(normalise("crm_id", " AbC-1 ", None, "value").ok(), Some("abc-1".into()));
        assert_eq!(normalise("ticket", " T 1 ", None, "value").ok(), Some(" T 1 ".into()));
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(257)] {
            let err = normalise("ticket", bad, None, "value").expect_err("bad value");
            assert_eq!(err.code(), "validation_failed", "{bad:?}");
        }
        let plain = Catalog::validate(consentry_core::catalog::CatalogDocument::default()).expect("valid");
        let err = super::normalise(&plain, "loyalty_card", "1", None, ("identifier", "identifier"))
            .expect_err("not declared there");
        assert!(
            matches!(err, Error::UnknownIdentifierType { ref errors, .. } if errors[0].path == "identifier")
        );
    }

    #[test]
    fn masks_hide_all_but_a_hint() {
        assert_eq!(mask("email", "ana@example.com"), "a***@example.com");
        assert_eq!(mask("phone", "+49301234567"), "+***67");
        assert_eq!(mask("account", "A-123"), "***");
        assert_eq!(mask("device_serial", "SN-0000-1234"), "***1234");
    }
}
