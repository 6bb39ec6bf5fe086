//! The export of an access or portability request (GDPR Art. 15 and 20): a ZIP made on each download,
//! never stored, holding a machine-readable `data.json`, an `index.html` that shows it to a person in
//! their language ([`guide`], its words in [`words`]), and each record payload as a file under `records/`.
//!
//! The archive is written as it is sent, never whole in memory: `data.json` (metadata, and the content of
//! JSON and text records, which it shows) is gathered first, so that a failing store still answers with an
//! error before anything is sent; then a blocking task writes the ZIP (the `zip` crate, stored entries:
//! payloads such as audio are compressed already) into a bounded channel of chunks that the response body
//! drains, while an async task reads the payloads from the vault one at a time. A slow download holds back
//! both, and a closed one stops both.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use consentry_core::request::RequestKind;
use consentry_core::{SubjectId, Timestamp};
use consentry_store::requests::RequestFilter;
use consentry_store::vault::RecordFilter;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::consents::EventOut;
use crate::error::{Error, Result};
use crate::receipts::Rebuilder;
use crate::records::RecordOut;
use crate::requests::view::view;
use crate::state::Services;

mod guide;
mod words;

pub use words::Language;

const PAGE: u32 = 1000;
/// Bytes in one chunk of the response body.
const CHUNK: usize = 64 * 1024;
/// Chunks written ahead of the download: what the archive may hold in memory beyond one payload.
const CHUNKS_AHEAD: usize = 8;

/// An export archive as it is written: the ZIP's bytes in chunks, for a streaming response body. An error
/// ends the stream early (the download then fails rather than looking complete); the cause is logged.
#[derive(Debug)]
pub struct Archive {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl futures_util::Stream for Archive {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

/// A record payload to put in the archive: its file name and the record it comes from.
struct Payload {
    file: String,
    record_id: String,
    /// The content when `data.json` already read it (JSON and text), so it is not read twice.
    read: Option<Vec<u8>>,
}

/// Everything Consentry holds about `subject`, as `data.json` shows it, and the payload files to add.
async fn collect(state: &Services, subject: &SubjectId, now: Timestamp) -> Result<(Value, Vec<Payload>)> {
    let current: Vec<EventOut> =
        state.store.current(subject).await?.into_iter().map(|e| EventOut::new(subject, e)).collect();
    let mut history = Vec::new();
    // The events that name evidence (an imported change's original receipt, form, browser details).
    let mut with_evidence = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.history(subject, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == PAGE as usize;
        with_evidence.extend(page.iter().filter(|e| e.evidence.is_some()).map(|e| e.seq));
        history.extend(page.into_iter().map(|e| EventOut::new(subject, e)));
        if !full {
            break;
        }
    }
    let mut receipts = Vec::new();
    let mut rebuilder = Rebuilder::new(state);
    for stored in state.store.subject_receipts(subject).await? {
        let r = rebuilder.rebuild(stored).await?;
        receipts.push(json!({"id": r.id, "created_at": r.created_at, "jws": r.jws}));
    }
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
    let (records, payloads) = records(state, subject).await?;
    let devices: Vec<Value> = state
        .store
        .subject_devices(subject)
        .await?
        .into_iter()
        .map(|d| device(&d.id, &d.name, &d.kind, &d.categories, &d.purposes, d.created_at))
        .collect();
    let person = person(state, subject, with_evidence).await?;
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
        "identifiers": person.identifiers,
        "age": person.age,
        "guardians": person.guardians,
        "children": person.children,
        "households": person.households,
        "evidence": person.evidence,
    });
    Ok((data, payloads))
}

/// What Consentry knows of the person beyond their choices and records, as `data.json` shows it.
struct Person {
    identifiers: Vec<Value>,
    age: Value,
    guardians: Vec<Value>,
    children: Vec<Value>,
    households: Vec<Value>,
    evidence: Vec<Value>,
}

/// The person's identifiers (their values: it is their own data), their stated age, the guardians recorded
/// for them (when, not who: a guardian is someone else, and the child's own pages never name them either),
/// the children they are a guardian of, their households with the devices they share there (not the other
/// members), and the evidence stored with the events `with_evidence`.
async fn person(state: &Services, subject: &SubjectId, with_evidence: Vec<u64>) -> Result<Person> {
    let identifiers = state
        .store
        .identifiers(&state.kek, subject)
        .await?
        .into_iter()
        .map(|i| json!({"id": i.id, "type": i.kind, "value": i.value, "added_at": i.created_at.to_string()}))
        .collect();
    let age = match state.store.age(&state.kek, subject).await? {
        Some(stored) => serde_json::from_slice(&stored.plaintext).map_err(Error::internal)?,
        None => Value::Null,
    };
    let guardians = state
        .store
        .guardians(subject)
        .await?
        .into_iter()
        .map(|l| json!({"since": l.created_at.to_string()}))
        .collect();
    let children = state
        .store
        .children(subject)
        .await?
        .into_iter()
        .map(|l| json!({"subject": l.child.as_str(), "since": l.created_at.to_string()}))
        .collect();
    let mut households = Vec::new();
    for id in state.store.subject_households(subject).await? {
        // Deleted since it was listed: leave it out.
        let Some(h) = state.store.household(&state.kek, &id).await? else { continue };
        let Some(joined) = h.members.iter().find(|m| &m.subject == subject).map(|m| m.added_at) else {
            continue;
        };
        let devices: Vec<Value> = state
            .store
            .household_devices(&id)
            .await?
            .into_iter()
            .map(|d| device(&d.id, &d.name, &d.kind, &d.categories, &d.purposes, d.created_at))
            .collect();
        households.push(json!({"id": h.id, "name": h.name, "joined_at": joined.to_string(),
                               "devices": devices}));
    }
    let mut evidence = Vec::new();
    for seq in with_evidence {
        // None stored: erased with an earlier key, or the event named evidence it never carried here.
        if let Some(bytes) = state.store.evidence(&state.kek, subject, seq).await? {
            let out = crate::evidence::EvidenceOut::new(seq, &bytes)?;
            evidence.push(serde_json::to_value(out).map_err(Error::internal)?);
        }
    }
    Ok(Person { identifiers, age, guardians, children, households, evidence })
}

/// The file name extension for a payload's media type.
/// A device as the copy of one's data shows it: the person's own or one shared in their household.
fn device(
    id: &str,
    name: &str,
    kind: &str,
    categories: &[String],
    purposes: &[String],
    paired_at: Timestamp,
) -> Value {
    json!({"id": id, "name": name, "kind": kind, "categories": categories, "purposes": purposes,
           "paired_at": paired_at.to_string()})
}

fn extension(content_type: &str) -> &'static str {
    match base_type(content_type).as_str() {
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

/// A media type without its parameters, in lower case.
fn base_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Whether `data.json` shows a payload of this media type as its content (JSON as JSON, text as text).
fn shown_inline(base: &str) -> bool {
    base == "application/json" || base.ends_with("+json") || base.starts_with("text/")
}

/// The subject's vault records, oldest first: their metadata for `data.json`, with the decrypted content of
/// those it shows (anything else only as its file), and each payload to add as a file under `records/`.
/// Only the shown ones are read here (and kept for their file); the others are read one at a time as the
/// archive is written.
async fn records(state: &Services, subject: &SubjectId) -> Result<(Vec<Value>, Vec<Payload>)> {
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
    let mut payloads = Vec::with_capacity(metas.len());
    for meta in metas.into_iter().rev() {
        let file = format!("records/{}.{}", meta.id, extension(&meta.content_type));
        let base = base_type(&meta.content_type);
        let (content, read) = if shown_inline(&base) {
            // Deleted (e.g. by retention) since it was listed: leave it out.
            let Some(record) = state.store.record(&state.kek, &meta.id).await? else { continue };
            let content = if base.starts_with("text/") {
                std::str::from_utf8(&record.data).map_or(Value::Null, |text| Value::String(text.to_owned()))
            } else {
                serde_json::from_slice::<Value>(&record.data).unwrap_or(Value::Null)
            };
            (content, Some(record.data))
        } else {
            (Value::Null, None)
        };
        payloads.push(Payload { file: file.clone(), record_id: meta.id.clone(), read });
        let mut entry = serde_json::to_value(RecordOut::new(subject, meta)).map_err(Error::internal)?;
        entry["file"] = json!(file);
        entry["content"] = content;
        out.push(entry);
    }
    Ok((out, payloads))
}

/// Starts writing the archive for a request of `kind` by `subject`, available `until`, its guide in
/// `lang`; returns it as a stream. What it shows is read before this returns, so a store failure is an error here, not a broken
/// download.
pub(crate) async fn build(
    state: &Services,
    subject: &SubjectId,
    kind: RequestKind,
    until: Timestamp,
    now: Timestamp,
    lang: Language,
) -> Result<Archive> {
    let (data, payloads) = collect(state, subject, now).await?;
    let html = guide::page(&data, &state.catalog().catalog, lang, kind, until);
    let (chunks_tx, chunks) = mpsc::channel(CHUNKS_AHEAD);
    // One payload read ahead of the one being written.
    let (files_tx, files) = mpsc::channel(1);
    tokio::spawn(read_payloads(state.clone(), payloads, files_tx));
    tokio::task::spawn_blocking(move || write_archive(chunks_tx, data, &html, files));
    Ok(Archive { chunks })
}

/// A payload read from the vault, or the end of the archive because one could not be read.
type PayloadFile = std::result::Result<(String, Vec<u8>), ()>;

/// Reads each payload from the vault in turn and hands it to the archive writer.
async fn read_payloads(state: Services, payloads: Vec<Payload>, files: mpsc::Sender<PayloadFile>) {
    for payload in payloads {
        if let Some(data) = payload.read {
            if files.send(Ok((payload.file, data))).await.is_err() {
                return;
            }
            continue;
        }
        let file = match state.store.record(&state.kek, &payload.record_id).await {
            Ok(Some(record)) => Ok((payload.file, record.data)),
            // Deleted (e.g. by retention) since `data.json` was written: its file is left out.
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a vault record for an export; the download is cut short");
                Err(())
            }
        };
        let failed = file.is_err();
        // The writer stopped (the download was closed): nothing more to read.
        if files.send(file).await.is_err() || failed {
            return;
        }
    }
}

/// Writes the archive into `chunks` (on a blocking thread: the ZIP writer is synchronous).
fn write_archive(
    chunks: mpsc::Sender<io::Result<Vec<u8>>>,
    data: Value,
    html: &str,
    files: mpsc::Receiver<PayloadFile>,
) {
    let out = Chunks { tx: chunks.clone(), buf: Vec::with_capacity(CHUNK) };
    match zip_into(out, data, html, files) {
        Ok(()) => {}
        Err(zip::result::ZipError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            tracing::debug!("an export download was closed before its end");
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write an export archive; the download is cut short");
            let _ = chunks.blocking_send(Err(io::Error::other("the export could not be completed")));
        }
    }
}

fn zip_into(
    out: Chunks,
    data: Value,
    html: &str,
    mut files: mpsc::Receiver<PayloadFile>,
) -> zip::result::ZipResult<()> {
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let mut zip = ZipWriter::new_stream(out);
    zip.start_file("data.json", options)?;
    serde_json::to_writer_pretty(&mut zip, &data).map_err(io::Error::from)?;
    drop(data);
    zip.start_file("index.html", options)?;
    zip.write_all(html.as_bytes())?;
    while let Some(file) = files.blocking_recv() {
        let (name, bytes) = file.map_err(|()| io::Error::other("a vault record could not be read"))?;
        zip.start_file(name, options)?;
        zip.write_all(&bytes)?;
    }
    zip.finish()?.into_inner().flush()?;
    Ok(())
}

/// A writer that sends what it is given as chunks of [`CHUNK`] bytes into a bounded channel, waiting while
/// the channel is full. A closed channel (the download was dropped) is a broken pipe.
struct Chunks {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the download was closed"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() { Ok(()) } else { self.send() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_and_end_flushed() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut out = Chunks { tx, buf: Vec::new() };
        out.write_all(&vec![7; CHUNK + 10]).expect("write");
        out.flush().expect("flush");
        drop(out);
        let sizes: Vec<usize> =
            std::iter::from_fn(|| rx.try_recv().ok()).map(|c| c.expect("a chunk").len()).collect();
        assert_eq!(sizes, [CHUNK, 10]);
    }

    #[test]
    fn a_closed_download_is_a_broken_pipe() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut out = Chunks { tx, buf: Vec::new() };
        let err = out.write_all(&vec![0; CHUNK]).expect_err("closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn the_guide_shows_the_data_in_the_readers_language() {
        use consentry_core::catalog::{Catalog, CatalogDocument};
        let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
        let data = json!({
            "subject": "<b>&\"x\"", "generated_at": "2026-03-05T09:07:00.000000Z",
            "consents": {
                "current": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"],
                             "recorded_at": "2026-03-05T09:07:00.000000Z", "actor": "subject"}],
                "history": [{"purpose": "analytics", "action": "withdraw", "channels": [],
                             "recorded_at": "2026-03-04T08:00:00.000000Z", "actor": "subject"},
                            {"purpose": "marketing.direct", "action": "grant", "channels": ["email"],
                             "recorded_at": "2026-03-05T09:07:00.000000Z", "actor": "signal:gpc"},
                            {"purpose": "analytics", "action": "grant", "channels": [],
                             "recorded_at": "2026-03-01T08:00:00.000000Z", "actor": "link:p-3f9a"},
                            {"purpose": "analytics", "action": "grant", "channels": [],
                             "recorded_at": "2026-02-01T08:00:00.000000Z", "actor": "guardian:p-77c1"}],
            },
            "devices": [{"name": "Kitchen speaker", "kind": "speaker", "categories": ["user.biometric.voice"],
                         "purposes": ["voice_history"], "paired_at": "2026-03-01T10:00:00.000000Z"}],
            "records": [{"category": "user.biometric.voice", "purpose": "voice_history", "content_type": "audio/ogg",
                         "collected_at": "2026-03-02T11:30:00.000000Z", "delete_after": null,
                         "file": "records/rec_1<b>.ogg"}],
            "receipts": [{}, {}],
        });
        let until = Timestamp::parse("2026-03-12T09:07:00.000000Z").expect("time");
        let en = guide::page(&data, &catalog, Language::En, RequestKind::Access, until);
        assert!(
            en.starts_with(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\""
            ),
            "{en}"
        );
        assert!(en.contains("<style>") && en.contains("--focus:"), "the stylesheet inline");
        assert!(en.contains("<code>&lt;b&gt;&amp;&quot;x&quot;</code>"), "escaped: {en}");
        assert!(en.contains("right of access") && en.contains("12 Mar 2026, 09:07 UTC"), "{en}");
        for shown in [
            "<th scope=\"row\" data-label=\"Purpose\">News and offers</th><td data-label=\"Your choice\">Agreed</td><td data-label=\"Since\">5 Mar 2026, 09:07 UTC</td><td data-label=\"Channels\">E-mail</td>",
            "<td data-label=\"Change\">Withdrew</td><td data-label=\"Purpose\">Usage analytics</td><td data-label=\"Channels\">All</td>",
            "Your browser's Global Privacy Control signal",
            "A linked record of yours (carried over when your records were linked)",
            "A parent or guardian",
            "Kitchen speaker (speaker)",
            "Voice recordings · Keeping your voice recordings",
            "<a href=\"records/rec_1&lt;b&gt;.ogg\">Open<span class=\"vh\"> Voice recordings, 2 Mar 2026, 11:30 UTC</span></a>",
            "Kept until deleted",
            "2 receipts",
        ] {
            assert!(en.contains(shown), "{shown} in {en}");
        }
        let history_at = |page: &str, what: &str| page.find(what).unwrap_or_else(|| panic!("{what}"));
        assert!(
            history_at(&en, ">Agreed</td><td data-label=\"Purpose\">") < history_at(&en, ">Withdrew<"),
            "newest first"
        );

        let de = guide::page(&data, &catalog, Language::De, RequestKind::Portability, until);
        assert!(de.contains("<html lang=\"de\">") && de.contains("Datenübertragbarkeit"), "{de}");
        for shown in [
            "Neuigkeiten und Angebote",
            "Zugestimmt",
            "5. März 2026, 09:07 UTC",
            "Sprachaufnahmen",
            "Öffnen",
            "Ein verknüpfter Datensatz von Ihnen (übernommen, als Ihre Datensätze verknüpft wurden)",
            "Ein Elternteil oder Vormund",
        ] {
            assert!(de.contains(shown), "{shown} in {de}");
        }
        for english in ["News and offers", "Agreed", "Your choices", "Voice recordings"] {
            assert!(!de.contains(english), "{english} in the German guide");
        }
    }

    #[test]
    fn the_language_is_the_best_one_asked_for() {
        assert_eq!(Language::best(Some("de-DE,de;q=0.9,en;q=0.8")), Language::De);
        assert_eq!(Language::best(Some("fr, de;q=0.5, en;q=0.4")), Language::De);
        assert_eq!(Language::best(Some("de;q=0, en;q=0.1")), Language::En);
        assert_eq!(Language::best(Some("fr")), Language::En);
        assert_eq!(Language::best(None), Language::En);
    }
}
