//! The OpenAPI 3.1 document, generated from the handlers and types. A copy is committed as
//! `openapi.json`; a test keeps it current.

use std::collections::BTreeMap;

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::api::{index, v1};
use consentry_service::schema::SubjectId;

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

/// The media type every error leaves with (see [`crate::error`]).
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// The one place that shapes error responses in the document. A handler's annotation names the statuses
/// particular to its route (`(status = 404, body = Problem)`, with a description naming the codes where
/// more than one may come); this adds what every route of a kind can answer, and declares every problem
/// as `application/problem+json`, the media type the server sends:
/// - every authenticated route: 401 `unauthorized`, and 429 `too_many_failed_attempts` (with
///   `Retry-After`) for an address that failed authentication too often;
/// - every route with a JSON body: 400 `invalid_json`, 413 `payload_too_large`, 415
///   `unsupported_media_type` (a body sent as anything but JSON) and 422 `validation_failed`;
/// - every route with a `{subject}` in its path: 400 `invalid_subject` and 410 `subject_erased`.
struct Problems;

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                add_problems(path, operation);
            }
        }
    }
}

fn add_problems(path: &str, operation: &mut Operation) {
    // The one form of a subject id, wherever a path names one (else 400 `invalid_subject`).
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == "subject" && matches!(parameter.parameter_in, ParameterIn::Path) {
            parameter.schema = Some(RefOr::Ref(Ref::from_schema_name("SubjectId")));
        }
    }
    // The codes each status may carry on this route, beyond those its annotation describes.
    let mut codes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    // An empty requirement among them declares the route open to anyone.
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|r| *r != SecurityRequirement::default()));
    if authenticated {
        codes.entry("401").or_default().push("unauthorized");
        codes.entry("429").or_default().push("too_many_failed_attempts");
    }
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.keys().any(|media| media == "application/json"));
    if json_body {
        codes.entry("400").or_default().push("invalid_json");
        codes.entry("413").or_default().push("payload_too_large");
        codes.entry("415").or_default().push("unsupported_media_type");
        codes.entry("422").or_default().push("validation_failed");
    }
    if path.contains("{subject}") {
        codes.entry("400").or_default().push("invalid_subject");
        codes.entry("410").or_default().push("subject_erased");
    }
    let responses = &mut operation.responses.responses;
    for (status, codes) in &codes {
        responses.entry((*status).to_owned()).or_insert_with(|| RefOr::T(problem_response(status, codes)));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        let Some(content) = response.content.shift_remove("application/json") else { continue };
        if !is_problem(&content) {
            response.content.insert("application/json".to_owned(), content);
            continue;
        }
        response.content.insert(PROBLEM_MEDIA_TYPE.to_owned(), content);
        let extra = codes.get(status.as_str()).map_or(&[][..], Vec::as_slice);
        if response.description.is_empty() {
            response.description = describe(status, extra);
        } else {
            // The codes the handler's own description does not name yet, as a sentence of their own.
            let unnamed: Vec<&str> =
                extra.iter().copied().filter(|c| !response.description.contains(&format!("`{c}`"))).collect();
            if !unnamed.is_empty() {
                let stop = if response.description.ends_with('.') { "" } else { "." };
                response.description =
                    format!("{}{stop} Also {}.", response.description, code_list(&unnamed));
            }
        }
        if status == "429" && !response.headers.contains_key("Retry-After") {
            response.headers.insert("Retry-After".to_owned(), retry_after());
        }
    }
}

fn is_problem(content: &Content) -> bool {
    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

fn problem_response(status: &str, codes: &[&str]) -> Response {
    let mut response = Response::new(describe(status, codes));
    response.content.insert(
        PROBLEM_MEDIA_TYPE.to_owned(),
        Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
    );
    if status == "429" {
        response.headers.insert("Retry-After".to_owned(), retry_after());
    }
    response
}

fn retry_after() -> utoipa::openapi::header::Header {
    let mut header = utoipa::openapi::header::Header::new(
        utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer).build(),
    );
    header.description = Some("Seconds to wait before trying again".to_owned());
    header
}

/// A problem response's description: the codes this route may answer with that status.
fn describe(status: &str, extra: &[&str]) -> String {
    let usual: &[&str] = match status {
        "400" => &[],
        "401" => &["unauthorized"],
        "403" => &["forbidden"],
        "404" => &["not_found"],
        "405" => &["method_not_allowed"],
        "409" => &["conflict"],
        "410" => &["gone"],
        "413" => &["payload_too_large"],
        "415" => &["unsupported_media_type"],
        "422" => &["validation_failed"],
        _ => &[],
    };
    let mut all: Vec<&str> = usual.to_vec();
    all.extend(extra.iter().filter(|c| !usual.contains(c)));
    if all.is_empty() {
        return "A problem (RFC 9457)".to_owned();
    }
    format!("A problem (RFC 9457) with code {}.", code_list(&all))
}

fn code_list(codes: &[&str]) -> String {
    let quoted: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// OpenAPI links: where the id a creation answers with is used next. Generated clients and Schemathesis's
/// stateful tests follow them (create a destination, then read, change, replay and delete it).
struct Links;

/// (operation, its success status, link name, target operation, the target's parameters and where each
/// comes from).
type LinkSpec =
    (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

const LINKS: &[LinkSpec] = &[
    ("createKey", "201", "RevokeKey", "revokeKey", &[("id", "$response.body#/id")]),
    ("createDestination", "201", "GetDestination", "getDestination", &[("id", "$response.body#/id")]),
    ("createDestination", "201", "UpdateDestination", "updateDestination", &[("id", "$response.body#/id")]),
    ("createDestination", "201", "ListDeliveries", "listDeliveries", &[("id", "$response.body#/id")]),
    ("createDestination", "201", "ReplayDeliveries", "replayDeliveries", &[("id", "$response.body#/id")]),
    ("createDestination", "201", "DeleteDestination", "deleteDestination", &[("id", "$response.body#/id")]),
    ("createRecord", "201", "GetRecord", "getRecord", &[("id", "$response.body#/id")]),
    ("createRecord", "201", "DeleteRecord", "deleteRecord", &[("id", "$response.body#/id")]),
    ("createRequest", "201", "GetRequest", "getRequest", &[("id", "$response.body#/id")]),
    ("createRequest", "201", "ExtendRequest", "extendRequest", &[("id", "$response.body#/id")]),
    ("createRequest", "201", "RejectRequest", "rejectRequest", &[("id", "$response.body#/id")]),
    (
        "createRequest",
        "201",
        "DownloadRequestExport",
        "downloadRequestExport",
        &[("id", "$response.body#/id")],
    ),
    ("recordConsents", "201", "GetReceipt", "getReceipt", &[("id", "$response.body#/receipt/id")]),
    (
        "pairDevice",
        "201",
        "UnpairDevice",
        "unpairDevice",
        &[("subject", "$request.path.subject"), ("id", "$response.body#/id")],
    ),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let Some(id) = operation.operation_id.clone() else { continue };
                for (from, status, name, to, parameters) in LINKS.iter().filter(|l| l.0 == id) {
                    debug_assert_eq!(*from, id);
                    let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
                        continue;
                    };
                    let mut link = LinkBuilder::new().operation_id(*to);
                    for (parameter, value) in *parameters {
                        link = link.parameter(*parameter, *value);
                    }
                    response.links.insert((*name).to_owned(), RefOr::T(link.build()));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Consentry", description = "Consent and personal-data control: catalogue, consent ledger, decisions."),
    paths(
        index::index,
        v1::keys::create, v1::keys::list, v1::keys::revoke,
        v1::catalog::get, v1::catalog::put,
        v1::consents::record, v1::consents::current, v1::consents::history, v1::consents::evidence,
        v1::jurisdiction::set, v1::jurisdiction::get,
        v1::check::one, v1::check::batch,
        v1::signals::decode, v1::signals::encode, v1::signals::record, v1::signals::current,
        v1::receipts::get, v1::audit::verify, v1::tlog::checkpoint, v1::tlog::vkey, v1::tlog::consistency,
        v1::access::list,
        v1::tokens::mint, v1::tokens::revoke,
        v1::destinations::create, v1::destinations::list, v1::destinations::get, v1::destinations::update,
        v1::destinations::delete, v1::destinations::deliveries, v1::destinations::replay,
        v1::requests::create, v1::requests::list, v1::requests::get, v1::requests::extend,
        v1::requests::reject, v1::requests::complete_task, v1::requests::export,
        v1::records::create, v1::records::list, v1::records::get, v1::records::delete_one,
        v1::records::delete_many,
        v1::devices::pair, v1::devices::list, v1::devices::unpair, v1::devices::consent, v1::devices::stream,
        v1::households::create, v1::households::list, v1::households::get, v1::households::update,
        v1::households::delete, v1::households::add_member,
        v1::households::remove_member, v1::households::pair, v1::households::unpair,
        v1::identifiers::add, v1::identifiers::list, v1::identifiers::delete, v1::identifiers::lookup,
        v1::links::link,
        v1::verifications::start, v1::verifications::confirm,
        v1::guardians::set_age, v1::guardians::get_age, v1::guardians::add, v1::guardians::list,
        v1::guardians::remove,
        v1::transfer::import, v1::transfer::export,
    ),
    components(schemas(Problem, FieldProblem, SubjectId)),
    modifiers(&Security, &Problems, &Links),
    tags(
        (name = "service", description = "Where to go from here"),
        (name = "keys", description = "API keys and their scopes"),
        (name = "catalog", description = "The catalogue, applied as a whole"),
        (name = "consents", description = "The consent ledger"),
        (name = "subjects", description = "Credentials for one person"),
        (name = "check", description = "Decisions"),
        (name = "signals", description = "IAB TCF and GPP strings in and out"),
        (name = "receipts", description = "Signed consent receipts"),
        (name = "audit", description = "Tamper evidence"),
        (name = "destinations", description = "Downstream systems and their deliveries"),
        (name = "requests", description = "Data subject requests: deadlines, downstream tasks, export, erasure"),
        (name = "records", description = "The personal data vault: consent-gated, encrypted records"),
        (name = "devices", description = "Paired devices and their signed consent snapshots"),
        (name = "households", description = "Households: members who share devices"),
        (name = "identifiers", description = "People's identifiers: encrypted, found by a blind index"),
        (name = "guardians", description = "Children's ages and their guardians"),
        (name = "verifications", description = "People without a token prove they control an e-mail address"),
        (name = "transfer", description = "Consents moving in from another platform and out"),
    )
)]
struct ApiDoc;

/// The OpenAPI document as pretty JSON, with a trailing newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let text = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    // utoipa 5 writes a Link Object's fields in snake case; OpenAPI names them in camel case. No other
    // member of the document has these names (a test keeps it so), and the order of members stays.
    let mut text = text
        .replace("\"operation_id\": ", "\"operationId\": ")
        .replace("\"operation_ref\": ", "\"operationRef\": ")
        .replace("\"request_body\": ", "\"requestBody\": ");
    text.push('\n');
    text
}
