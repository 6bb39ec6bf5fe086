//! The export of an access or portability request (GDPR Art. 15 and 20): a ZIP made in memory on each
//! download, never stored, holding a machine-readable `data.json`, each record payload as a file, and an
//! `index.html` that says in plain words what is inside.

use consentry_core::{SubjectId, Timestamp};
use consentry_store::requests::{RequestFilter, RequestRecord};
use consentry_store::vault::RecordFilter;
use serde_json::{Value, json};

use crate::consents::EventOut;
use crate::error::{Error, Result};
use crate::records::RecordOut;
use crate::requests::{RequestType, export_until, view};
use crate::state::Services;
use crate::zip::ZipWriter;

const PAGE: u32 = 1000;

/// Everything Consentry holds about `subject`, as `data.json` shows it, and the payload files.
async fn collect(
    state: &Services,
    subject: &SubjectId,
    now: Timestamp,
) -> Result<(Value, Vec<(String, Vec<u8>)>)> {
    let current: Vec<EventOut> =
        state.store.current(subject).await?.into_iter().map(|e| EventOut::new(subject, e)).collect();
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.history(subject, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == PAGE as usize;
        history.extend(page.into_iter().map(|e| EventOut::new(subject, e)));
        if !full {
            break;
        }
    }
    let receipts: Vec<Value> = state
        .store
        .subject_receipts(subject)
        .await?
        .into_iter()
        .map(|r| json!({"id": r.id, "created_at": r.created_at.to_string(), "jws": r.jws}))
        .collect();
    let mut access_log = Vec::new();
    let mut before = None;
    loop {
        let page = state.store.access_log(subject, before, PAGE).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let full = page.len() == PAGE as usize;
        access_log.extend(page.into_iter().map(
            |a| json!({"at": a.at.to_string(), "caller": a.caller, "route": a.route, "purpose": a.purpose}),
        ));
        if !full {
            break;
        }
    }
    let checks: Vec<Value> = state
        .store
        .check_counts(subject)
        .await?
        .into_iter()
        .map(|(purpose, count, last)| json!({"purpose": purpose, "count": count, "last": last.to_string()}))
        .collect();
    let mut requests = Vec::new();
    let filter = RequestFilter { subject: Some(subject.clone()), limit: 1000, ..RequestFilter::default() };
    for r in state.store.requests(&filter).await? {
        if let Some(stored) = state.store.request(&r.id).await? {
            requests.push(view(stored, now));
        }
    }
    let (records, files) = records(state, subject).await?;
    let devices: Vec<Value> = state
        .store
        .subject_devices(subject)
        .await?
        .into_iter()
        .map(|d| {
            json!({"id": d.id, "name": d.name, "kind": d.kind, "categories": d.categories,
                   "purposes": d.purposes, "paired_at": d.created_at.to_string()})
        })
        .collect();
    let data = json!({
        "format": "consentry-export/1",
        "subject": subject.as_str(),
        "generated_at": now.to_string(),
        "controller": {"name": state.config.controller.name, "email": state.config.controller.email},
        "consents": {"current": current, "history": history},
        "receipts": receipts,
        "access_log": access_log,
        "check_counts": checks,
        "requests": requests,
        "records": records,
        "devices": devices,
    });
    Ok((data, files))
}

/// The file name extension for a payload's media type.
fn extension(content_type: &str) -> &'static str {
    let base = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match base.as_str() {
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" => "flac",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => "bin",
    }
}

/// The subject's vault records: their metadata and decrypted content for `data.json` (JSON as JSON, text
/// as text, anything else only as its file), and each payload as a file under `records/`.
async fn records(state: &Services, subject: &SubjectId) -> Result<(Vec<Value>, Vec<(String, Vec<u8>)>)> {
    let mut metas = Vec::new();
    let mut before = None;
    loop {
        let filter = RecordFilter { before: before.clone(), limit: PAGE, ..RecordFilter::default() };
        let page = state.store.records(subject, &filter).await?;
        let full = page.len() == PAGE as usize;
        before = page.last().map(|m| m.id.clone());
        metas.extend(page);
        if !full {
            break;
        }
    }
    let mut out = Vec::with_capacity(metas.len());
    let mut files = Vec::with_capacity(metas.len());
    // Oldest first, as everything else in the export.
    for meta in metas.into_iter().rev() {
        // Deleted (e.g. by retention) since it was listed: leave it out.
        let Some(record) = state.store.record(&state.kek, &meta.id).await? else { continue };
        let file = format!("records/{}.{}", meta.id, extension(&meta.content_type));
        let base = meta.content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let content = if base == "application/json" || base.ends_with("+json") {
            serde_json::from_slice::<Value>(&record.data).unwrap_or(Value::Null)
        } else if base.starts_with("text/") {
            std::str::from_utf8(&record.data).map_or(Value::Null, |text| Value::String(text.to_owned()))
        } else {
            Value::Null
        };
        let mut entry = serde_json::to_value(RecordOut::new(subject, meta)).map_err(Error::internal)?;
        entry["file"] = json!(file);
        entry["content"] = content;
        out.push(entry);
        files.push((file, record.data));
    }
    Ok((out, files))
}

fn count(data: &Value, pointer: &str) -> usize {
    data.pointer(pointer).and_then(Value::as_array).map_or(0, Vec::len)
}

/// The plain-words guide to the archive.
fn index_html(
    data: &Value,
    kind: RequestType,
    request: &RequestRecord,
    files: &[(String, Vec<u8>)],
) -> String {
    let subject = escape(data["subject"].as_str().unwrap_or(""));
    let generated = escape(data["generated_at"].as_str().unwrap_or(""));
    let until = escape(&request.own_done_at.map(|t| export_until(t).to_string()).unwrap_or_default());
    let why = match kind {
        RequestType::Portability => "you asked to take your data with you (your right to data portability)",
        _ => "you asked to see the data we hold about you (your right of access)",
    };
    let list_files = if files.is_empty() {
        "<li>No stored records: we keep no files about you.</li>".to_owned()
    } else {
        files.iter().map(|(name, _)| format!("<li><code>{}</code></li>", escape(name))).collect()
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your data</title></head>
<body>
<h1>Your data</h1>
<p>This archive holds everything this service keeps about you under the id <code>{subject}</code>,
because {why}. It was made on {generated} and this download stays available until {until}.</p>
<h2>What is inside</h2>
<ul>
<li><code>data.json</code>: all of it in one machine-readable file (JSON), which you can give to another service.</li>
<li><strong>Your current choices</strong> ({current} statements): for each purpose, what you last agreed to, refused,
withdrew, objected to or restricted.</li>
<li><strong>Your full history</strong> ({history} events): every change you or we made, in order, with the time and the
notice you were shown. Each event is chained to the one before it, so that any later change would show.</li>
<li><strong>Your receipts</strong> ({receipts}): signed proofs of each change you made. Anyone can check them with the
public keys the service publishes at <code>/.well-known/jwks.json</code>.</li>
<li><strong>Who used your data</strong> ({access} entries): each time a system read your data through us, with the
purpose it stated, and how often your consent was checked.</li>
<li><strong>Your requests</strong> ({requests}): what you asked of us, when, and how each request stands.</li>
<li><strong>Your devices</strong> ({devices}): the devices paired with your account and what each may use.</li>
<li><strong>Your stored data</strong> ({records} records): what devices and services stored about you (voice
recordings, readings, profile data), with when it was collected, why it is kept and when it will be deleted.
Each one is also a file of its own under <code>records/</code>, listed below.</li>
</ul>
<h2>Files</h2>
<ul>{list_files}</ul>
<p>If something here is wrong, you may ask us to correct it; you may also ask us to erase it.</p>
</body>
</html>
"#,
        current = count(data, "/consents/current"),
        history = count(data, "/consents/history"),
        receipts = count(data, "/receipts"),
        access = count(data, "/access_log"),
        requests = count(data, "/requests"),
        records = count(data, "/records"),
        devices = count(data, "/devices"),
    )
}

/// The archive for `request` of `subject`.
pub async fn build(
    state: &Services,
    subject: &SubjectId,
    kind: RequestType,
    request: &RequestRecord,
    now: Timestamp,
) -> Result<Vec<u8>> {
    let (data, files) = collect(state, subject, now).await?;
    let mut zip = ZipWriter::new();
    let json = serde_json::to_vec_pretty(&data).map_err(Error::internal)?;
    zip.add("data.json", &json).map_err(Error::internal)?;
    zip.add("index.html", index_html(&data, kind, request, &files).as_bytes()).map_err(Error::internal)?;
    for (name, bytes) in &files {
        zip.add(name, bytes).map_err(Error::internal)?;
    }
    zip.finish().map_err(Error::internal)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
