//! The committed `openapi.json` matches the document the code generates.

use std::path::Path;

#[test]
fn committed_openapi_json_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    let generated = consentry_server::openapi::document();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var("CONSENTRY_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    panic!(
        "{} is out of date with the API code; run `CONSENTRY_UPDATE_OPENAPI=1 cargo test -p consentry-server openapi` and commit the result",
        path.display()
    );
}

/// Query parameters are documented as query parameters: a `path` parameter must appear in its path.
#[test]
fn path_parameters_are_in_their_paths() {
    let doc: serde_json::Value =
        serde_json::from_str(&consentry_server::openapi::document()).expect("the document is JSON");
    let mut wrong = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            for p in operation["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("name");
                let placed = p["in"].as_str().expect("in");
                let in_template = path.contains(&format!("{{{name}}}"));
                if (placed == "path") != in_template {
                    wrong.push(format!("{method} {path}: {name} in {placed}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "parameters documented in the wrong place: {wrong:#?}");
}

fn document() -> serde_json::Value {
    serde_json::from_str(&consentry_server::openapi::document()).expect("the document is JSON")
}

/// Every (method, path, operation) of the document.
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

/// Operation ids become generated clients' method names: each one present, camelCase and unique.
#[test]
fn operation_ids_are_unique_names() {
    let doc = document();
    let mut seen = std::collections::BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(
            id.len() > 3
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is no camelCase method name"
        );
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and {method} {path}");
        }
    }
}

/// Every error is declared as the server sends it: `application/problem+json` with the problem schema,
/// and the statuses every route of a kind can answer are there.
#[test]
fn problems_are_declared_as_sent() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if !status.starts_with('4') && !status.starts_with('5') {
                continue;
            }
            let content = response["content"].as_object().expect("a problem has content");
            let media: Vec<&String> = content.keys().collect();
            assert_eq!(media, ["application/problem+json"], "{method} {path} {status}");
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
            assert!(
                !response["description"].as_str().unwrap_or_default().is_empty(),
                "{method} {path} {status}"
            );
        }
        let has = |status: &str| responses.contains_key(status);
        let security = operation["security"].as_array().cloned().unwrap_or_default();
        if !security.is_empty() && security.iter().all(|r| r.as_object().is_some_and(|o| !o.is_empty())) {
            assert!(has("401") && has("429"), "{method} {path}: 401 and 429 for an authenticated route");
        }
        if operation["requestBody"]["content"].get("application/json").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(has(status), "{method} {path}: {status} for a route with a JSON body");
            }
        }
        if path.contains("{subject}") {
            assert!(has("400") && has("410"), "{method} {path}: invalid_subject and subject_erased");
            let described = responses["400"]["description"].as_str().unwrap_or_default();
            assert!(described.contains("invalid_subject"), "{method} {path}: {described}");
        }
    }
    let device = &doc["paths"]["/v1/device/consent"]["get"]["responses"];
    assert!(device.get("403").is_some() && device.get("304").is_some(), "{device}");
    let reject = &doc["paths"]["/v1/requests/{id}/reject"]["post"]["responses"]["400"]["description"];
    assert!(reject.as_str().is_some_and(|d| d.contains("invalid_json")), "{reject}");
}

/// The limits the server enforces are in the schemas, so that clients and fuzzers see them.
#[test]
fn enforced_limits_are_in_the_schemas() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let changes = &schemas["RecordConsents"]["properties"]["changes"];
    assert_eq!(
        (changes["minItems"].as_u64(), changes["maxItems"].as_u64()),
        (Some(1), Some(100)),
        "{changes}"
    );
    assert_eq!(schemas["CreateKey"]["properties"]["name"]["minLength"], 1);
    assert_eq!(schemas["CreateKey"]["properties"]["scopes"]["minItems"], 1);
    assert_eq!(schemas["SubjectId"]["maxLength"], 128);
    let limit = |path: &str, max: u64| {
        let parameters = doc["paths"][path]["get"]["parameters"].as_array().expect("parameters");
        let limit = parameters.iter().find(|p| p["name"] == "limit").expect("a limit");
        assert_eq!(
            (limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()),
            (Some(1), Some(max)),
            "{path}"
        );
    };
    limit("/v1/requests", 500);
    limit("/v1/subjects/{subject}/consents/history", 1000);
    limit("/v1/subjects/{subject}/access-log", 1000);
    limit("/v1/subjects/{subject}/records", 1000);
    limit("/v1/destinations/{id}/deliveries", 1000);
    let subject =
        doc["paths"]["/v1/subjects/{subject}/consents"]["get"]["parameters"][0]["schema"]["$ref"].clone();
    assert_eq!(subject, "#/components/schemas/SubjectId");
}

/// `GET /` points a newcomer to the preference centre, the API document, the keys and the guides, each of
/// which answers, instead of a 404 problem.
#[tokio::test]
async fn the_root_points_the_way() {
    let server = crate::utils::TestServer::start_on(crate::utils::Backend::Embedded).await;
    let reply = server.send(reqwest::Method::GET, "/", "", None).await;
    assert_eq!((reply.status, reply.content_type()), (200, "application/json"), "{}", reply.text);
    let link = reply.headers.get("link").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(link, r#"</openapi.json>; rel="service-desc""#);
    let index = reply.json();
    assert_eq!(index["name"], "Consentry");
    assert!(index["docs"].as_str().is_some_and(|d| d.contains("docs/")), "{index}");
    for (name, path) in
        [("openapi", "/openapi.json"), ("jwks", "/.well-known/jwks.json"), ("healthz", "/healthz")]
    {
        assert_eq!(index["links"][name], path, "{index}");
        assert_eq!(server.send(reqwest::Method::GET, path, "", None).await.status, 200, "{path}");
    }
    assert_eq!(index["links"]["preferences"], "/preferences");
    // The preference centre answers without a link with its own page, not the API's 404.
    let preferences =
        reqwest::get(format!("{}/preferences", server.base)).await.expect("the preference centre");
    let html = preferences.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(preferences.status() != 404 && html.starts_with("text/html"), "{preferences:?}");
    server.stop().await;
}

/// Every link names an operation of the document and only parameters that operation has.
#[test]
fn links_lead_to_real_operations() {
    let doc = document();
    let all = operations(&doc);
    let mut count = 0;
    for (method, path, operation) in &all {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                count += 1;
                let target = link["operationId"].as_str().expect("an operationId");
                let (_, _, to) = all
                    .iter()
                    .find(|(_, _, o)| o["operationId"] == target)
                    .unwrap_or_else(|| panic!("{method} {path} {status} {name}: no operation {target}"));
                for parameter in link["parameters"].as_object().expect("parameters").keys() {
                    let known =
                        to["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == *parameter);
                    assert!(known, "{method} {path} {status} {name}: {target} has no parameter {parameter}");
                }
            }
        }
    }
    assert!(count >= 10, "the links are declared: {count}");
}

/// `document()` renames utoipa's snake-case Link fields as text; no schema may have a property that the
/// renaming would touch.
#[test]
fn no_property_is_named_like_a_link_field() {
    fn walk(value: &serde_json::Value, at: &str) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(properties) = map.get("properties").and_then(|p| p.as_object()) {
                    for name in ["operationId", "operationRef", "requestBody"] {
                        assert!(!properties.contains_key(name), "{at}: a property {name}");
                    }
                }
                for (key, inner) in map {
                    walk(inner, &format!("{at}/{key}"));
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|inner| walk(inner, at)),
            _ => {}
        }
    }
    walk(&document()["components"], "#/components");
}
