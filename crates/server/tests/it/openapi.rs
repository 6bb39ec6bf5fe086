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
