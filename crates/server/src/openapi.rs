//! The OpenAPI 3.1 document, generated from the handlers and types. A copy is committed as
//! `openapi.json`; a test keeps it current.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::v1;
use crate::error::{FieldProblem, Problem};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // Each operation lists who may call it: `bearer` is a service API key, with the scopes it needs
        // (all of them; `admin` implies every scope); the other two are the person's and a paired
        // device's own tokens. SECURITY.md's table is generated from these declarations.
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
            )
        };
        components.add_security_scheme(
            "bearer",
            bearer("A service API key (`csk_…`); the operation's scopes are all required, `admin` implies every scope"),
        );
        components.add_security_scheme(
            "subject_token",
            bearer("A subject token minted with `tokens:mint`: the person's own data only"),
        );
        components.add_security_scheme(
            "device_token",
            bearer(
                "A paired device's token: its own subject, within the categories and purposes it declared",
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Consentry", description = "Consent and personal-data control: catalogue, consent ledger, decisions."),
    paths(
        v1::keys::create, v1::keys::list, v1::keys::revoke,
        v1::catalog::get, v1::catalog::put,
        v1::consents::record, v1::consents::current, v1::consents::history,
        v1::check::one, v1::check::batch,
        v1::receipts::get, v1::audit::verify, v1::access::list,
        v1::tokens::mint, v1::tokens::revoke,
        v1::destinations::create, v1::destinations::list, v1::destinations::get, v1::destinations::update,
        v1::destinations::delete, v1::destinations::deliveries, v1::destinations::replay,
        v1::requests::create, v1::requests::list, v1::requests::get, v1::requests::extend,
        v1::requests::reject, v1::requests::complete_task, v1::requests::export,
        v1::records::create, v1::records::list, v1::records::get, v1::records::delete_one,
        v1::records::delete_many,
        v1::devices::pair, v1::devices::list, v1::devices::unpair, v1::devices::consent, v1::devices::stream,
    ),
    components(schemas(Problem, FieldProblem)),
    modifiers(&Security),
    tags(
        (name = "keys", description = "API keys and their scopes"),
        (name = "catalog", description = "The catalogue, applied as a whole"),
        (name = "consents", description = "The consent ledger"),
        (name = "subjects", description = "Credentials for one person"),
        (name = "check", description = "Decisions"),
        (name = "receipts", description = "Signed consent receipts"),
        (name = "audit", description = "Tamper evidence"),
        (name = "destinations", description = "Downstream systems and their deliveries"),
        (name = "requests", description = "Data subject requests: deadlines, downstream tasks, export, erasure"),
        (name = "records", description = "The personal data vault: consent-gated, encrypted records"),
        (name = "devices", description = "Paired devices and their signed consent snapshots"),
    )
)]
struct ApiDoc;

/// The OpenAPI document as pretty JSON, with a trailing newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut text = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
