//! The credentials each operation declares in the OpenAPI document are the ones it takes, and SECURITY.md's
//! table of scopes × routes is generated from those declarations.
//!
//! The scope check runs on the embedded backend only: authorisation happens before storage is touched.
//! Every operation is called with a key short of each scope it declares, with a key holding just those, and
//! with a subject token and a device token for the subject in its path.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::utils::{ADMIN_KEY, TestServer, str_of};

/// The subject of every path.
const SUBJECT: &str = "scopes-subject";

/// Every scope a key may hold, but `admin`, which implies them all.
const SCOPES: &[&str] = &[
    "catalog:write",
    "consent:write",
    "consent:read",
    "check",
    "records:write",
    "records:read",
    "dsr",
    "destinations",
    "tokens:mint",
    "devices:write",
    "metrics",
    "identifiers:read",
    "identifiers:write",
    "import:write",
    "export:read",
];

/// One operation of the document: its method, path and the credentials it declares.
struct Operation {
    method: String,
    path: String,
    /// The API-key scopes, all required; `None` when no API key may call it.
    scopes: Option<Vec<String>>,
    subject_token: bool,
    device_token: bool,
}

fn operations() -> Vec<Operation> {
    let doc: Value =
        serde_json::from_str(&consentry_server::openapi::document()).expect("the document is JSON");
    let mut out = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let requirements = operation["security"].as_array().cloned().unwrap_or_default();
            // An empty requirement declares a route open to anyone (`GET /`): no credential to check.
            if requirements.iter().any(|r| r.as_object().is_some_and(serde_json::Map::is_empty)) {
                continue;
            }
            let mut op = Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                scopes: None,
                subject_token: false,
                device_token: false,
            };
            for requirement in &requirements {
                for (scheme, scopes) in requirement.as_object().expect("a security requirement") {
                    match scheme.as_str() {
                        "bearer" => {
                            let scopes = scopes.as_array().expect("scopes");
                            op.scopes =
                                Some(scopes.iter().map(|s| s.as_str().expect("scope").to_owned()).collect());
                        }
                        "subject_token" => op.subject_token = true,
                        "device_token" => op.device_token = true,
                        other => panic!("{method} {path}: unknown security scheme {other}"),
                    }
                }
            }
            assert!(
                op.scopes.is_some() || op.subject_token || op.device_token,
                "{method} {path} declares no credential"
            );
            out.push(op);
        }
    }
    out
}

/// A body good enough to get past parsing, so that what answers is the authorisation.
fn body_for(method: &str, path: &str) -> Option<Value> {
    if method == "GET" || method == "DELETE" {
        return None;
    }
    Some(match path {
        "/v1/keys" => json!({"name": "scoped", "scopes": ["check"]}),
        "/v1/subjects/{subject}/consents" => {
            json!({"changes": [{"purpose": "marketing", "action": "withdraw"}]})
        }
        "/v1/destinations" => {
            json!({"name": "d", "kind": "webhook", "url": "https://example.com/hook", "event_types": []})
        }
        "/v1/requests" => json!({"subject": SUBJECT, "type": "access"}),
        "/v1/requests/{id}/extend" => json!({"months": 1, "reason": "complex"}),
        "/v1/requests/{id}/reject" => json!({"reason": "manifestly unfounded"}),
        "/v1/records" => {
            json!({"subject": SUBJECT, "category": "user.device.telemetry", "purpose": "analytics", "content_type": "text/plain", "data": "aGk="})
        }
        "/v1/subjects/{subject}/devices" => {
            json!({"name": "speaker", "kind": "speaker", "categories": ["user.device.telemetry"], "purposes": ["analytics"]})
        }
        "/v1/subjects/{subject}/identifiers" => json!({"type": "email", "value": "scopes@example.com"}),
        "/v1/subjects/{subject}/jurisdiction" => json!({"jurisdiction": "DE"}),
        "/v1/subjects/{subject}/age" => json!({"age_band": "18+"}),
        "/v1/subjects/{subject}/guardians" => json!({"guardian": "scopes-guardian"}),
        "/v1/subjects/{subject}/links" => json!({"from": "scopes-other"}),
        "/v1/households" | "/v1/households/{id}" => json!({"name": "scopes"}),
        "/v1/households/{id}/members" => json!({"subject": SUBJECT}),
        "/v1/households/{id}/devices" => {
            json!({"name": "speaker", "kind": "speaker", "categories": ["user.device.telemetry"], "purposes": ["analytics"]})
        }
        _ => json!({}),
    })
}

/// `op`'s path with its parameters filled in: the subject is always the same; an `{id}` is the one `ids`
/// holds for the operation (`"METHOD path"`), else one that names nothing.
fn concrete(op: &Operation, ids: &HashMap<String, String>) -> String {
    let id = ids.get(&format!("{} {}", op.method, op.path)).map_or("x0000000000000000", String::as_str);
    op.path
        .replace("{subject}", SUBJECT)
        .replace("{destination_id}", "dst_0000000000000000")
        .replace("{id}", id)
}

/// Calls `op` with `credential`: the status, and the problem when refused. Only a refusal's body is read (a
/// stream answers 200 and never ends).
async fn call(
    s: &TestServer,
    op: &Operation,
    credential: &str,
    ids: &HashMap<String, String>,
) -> (u16, Value) {
    let method = Method::from_bytes(op.method.as_bytes()).expect("a method");
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{}", s.base, concrete(op, ids)))
        .bearer_auth(credential);
    if let Some(body) = body_for(&op.method, &op.path) {
        request = request.json(&body);
    }
    let what = format!("{} {}", op.method, op.path);
    let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    assert!(status < 500, "{what} answered {status}");
    if status < 400 {
        return (status, Value::Null);
    }
    let problem = response.json().await.unwrap_or_else(|e| panic!("{what}: a problem: {e}"));
    (status, problem)
}

/// Keys made on demand, one per set of scopes.
#[derive(Default)]
struct Keys(HashMap<Vec<String>, String>);

impl Keys {
    async fn get(&mut self, s: &TestServer, scopes: &[&str]) -> String {
        let wanted: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        if let Some(key) = self.0.get(&wanted) {
            return key.clone();
        }
        let (_, key) = s.create_key(&format!("scoped-{}", self.0.len()), scopes).await;
        self.0.insert(wanted, key.clone());
        key
    }
}

#[tokio::test]
async fn every_declared_scope_is_required_and_enough() {
    let s = TestServer::with_config(|_| {}).await;
    let mut keys = Keys::default();
    let mut wrong = Vec::new();
    for op in operations() {
        let Some(declared) = &op.scopes else { continue };
        let what = format!("{} {}", op.method, op.path);
        // Without any one of the declared scopes: refused as forbidden.
        for missing in declared {
            let held: Vec<&str> = SCOPES.iter().copied().filter(|s| s != missing).collect();
            let key = keys.get(&s, &held).await;
            let (status, problem) = call(&s, &op, &key, &HashMap::new()).await;
            let named = problem["detail"].as_str().is_some_and(|d| d.ends_with(&format!("scope {missing}")));
            if status != 403 || problem["code"] != "forbidden" || !named {
                wrong.push(format!("{what} without {missing}: {status} {problem}"));
            }
        }
        // With only the declared scopes (an unrelated one when any key will do): not refused.
        let held: Vec<&str> =
            if declared.is_empty() { vec!["metrics"] } else { declared.iter().map(String::as_str).collect() };
        let key = keys.get(&s, &held).await;
        let (status, problem) = call(&s, &op, &key, &HashMap::new()).await;
        if status == 401 || (status == 403 && problem["code"] == "forbidden") {
            wrong.push(format!("{what} with {held:?}: {status} {problem}"));
        }
    }
    assert!(wrong.is_empty(), "operations whose declared scopes are not what they take: {wrong:#?}");
}

/// A subject token and a device token for the subject of [`concrete`] paths reach the operations that
/// declare them (`subject_token`, `device_token`), and no other.
#[tokio::test]
async fn subject_and_device_tokens_reach_what_is_declared() {
    let s = TestServer::with_config(|_| {}).await;
    let subject = format!("/v1/subjects/{SUBJECT}");
    let minted = s.post(&format!("{subject}/tokens"), ADMIN_KEY, &json!({}), 201).await;
    let subject_token = str_of(&minted["token"]).to_owned();
    let pairing = body_for("POST", "/v1/subjects/{subject}/devices").expect("a pairing");
    let paired = s.post(&format!("{subject}/devices"), ADMIN_KEY, &pairing, 201).await;
    let device_token = str_of(&paired["token"]).to_owned();
    // The subject's own resources, so that a 404 means refused: another's is answered as not found.
    let grant = json!({"notice": "analytics", "changes": [{"purpose": "analytics", "action": "grant"}]});
    s.post(&format!("{subject}/consents"), ADMIN_KEY, &grant, 201).await;
    let record = body_for("POST", "/v1/records").expect("a record");
    let mut ids = HashMap::new();
    for method in ["GET", "DELETE"] {
        let stored = s.post("/v1/records", ADMIN_KEY, &record, 201).await;
        ids.insert(format!("{method} /v1/records/{{id}}"), str_of(&stored["id"]).to_owned());
    }
    let filed =
        s.post("/v1/requests", ADMIN_KEY, &body_for("POST", "/v1/requests").expect("a request"), 201).await;
    for path in ["/v1/requests/{id}", "/v1/requests/{id}/export"] {
        ids.insert(format!("GET {path}"), str_of(&filed["id"]).to_owned());
    }
    let other = s.post(&format!("{subject}/devices"), ADMIN_KEY, &pairing, 201).await;
    ids.insert("DELETE /v1/subjects/{subject}/devices/{id}".to_owned(), str_of(&other["id"]).to_owned());
    let identifier = json!({"type": "account", "value": "scopes-account"});
    let added = s.post(&format!("{subject}/identifiers"), ADMIN_KEY, &identifier, 201).await;
    ids.insert("DELETE /v1/subjects/{subject}/identifiers/{id}".to_owned(), str_of(&added["id"]).to_owned());
    s.put(&format!("{subject}/age"), ADMIN_KEY, &json!({"age_band": "18+"}), 200).await;
    // An imported change with its evidence, so that the evidence route has one of the subject's to read.
    let line = json!({"source_id": "scopes-1", "subject": SUBJECT, "purpose": "analytics", "action": "withdraw",
                      "occurred_at": "2023-01-01T00:00:00Z", "evidence": {"form": "scopes"}});
    s.raw(
        Method::POST,
        "/v1/import?source=scopes",
        ADMIN_KEY,
        "application/x-ndjson",
        format!("{line}\n"),
        200,
    )
    .await;
    let history = s.get(&format!("{subject}/consents/history"), ADMIN_KEY, 200).await;
    let with = history["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["evidence_stored"] == true))
        .expect("the imported event with its evidence");
    ids.insert(
        "GET /v1/subjects/{subject}/consents/history/{id}/evidence".to_owned(),
        str_of(&with["id"]).to_owned(),
    );

    let mut wrong = Vec::new();
    // Revoking the subject's tokens ends the subject token used here: that call comes last.
    let mut ops = operations();
    ops.sort_by_key(|op| op.method == "DELETE" && op.path == "/v1/subjects/{subject}/tokens");
    for op in ops {
        for (kind, token, declared) in [
            ("device token", &device_token, op.device_token),
            ("subject token", &subject_token, op.subject_token),
        ] {
            let (status, problem) = call(&s, &op, token, &ids).await;
            let refused = status == 401 || status == 404 || (status == 403 && problem["code"] == "forbidden");
            if refused == declared {
                wrong.push(format!("{} {} with a {kind}: {status} {problem}", op.method, op.path));
            }
        }
    }
    assert!(wrong.is_empty(), "operations whose declared tokens are not what they take: {wrong:#?}");
}

const BEGIN: &str =
    "<!-- scopes-table:begin (generated by `cargo test -p consentry-server --test it -- scopes::`) -->\n";
const END: &str = "<!-- scopes-table:end -->";

/// The table of routes and the credentials they take, as SECURITY.md shows it.
fn table() -> String {
    let mut rows = BTreeSet::new();
    for op in operations() {
        let scopes = match &op.scopes {
            None => "—".to_owned(),
            Some(s) if s.is_empty() => "any key".to_owned(),
            Some(s) => s.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" + "),
        };
        let yes = |b: bool| if b { "yes" } else { "no" };
        let row = format!(
            "| `{}` | {} | {scopes} | {} | {} |\n",
            op.path,
            op.method,
            yes(op.subject_token),
            yes(op.device_token)
        );
        rows.insert((op.path, op.method, row));
    }
    let mut out = String::from(
        "| Route | Method | API key scopes (all required) | Subject token | Device token |\n|---|---|---|---|---|\n",
    );
    out.extend(rows.into_iter().map(|(_, _, row)| row));
    out
}

#[test]
fn security_md_table_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../SECURITY.md");
    let text = std::fs::read_to_string(&path).expect("SECURITY.md");
    let start = text.find(BEGIN).expect("SECURITY.md has the table's begin marker") + BEGIN.len();
    let end = start + text[start..].find(END).expect("SECURITY.md has the table's end marker");
    let expected = table();
    if text[start..end] == expected {
        return;
    }
    if std::env::var("CONSENTRY_UPDATE_SECURITY").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{}{expected}{}", &text[..start], &text[end..]))
            .expect("write SECURITY.md");
        return;
    }
    panic!(
        "SECURITY.md's table of scopes × routes is out of date with the OpenAPI declarations; it should read:\n\n{expected}\n\
         run `CONSENTRY_UPDATE_SECURITY=1 cargo test -p consentry-server --test it -- scopes::` and commit the result"
    );
}
