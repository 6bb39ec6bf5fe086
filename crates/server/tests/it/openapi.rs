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
