//! Images of the decision engine's state ([`consentry_core::Engine::save_image`]): written to the store
//! off the request path, read at start so a node replays only the ledger after the image instead of
//! loading every subject's current state.
//!
//! An image names subjects by their ledger pseudonym, never by id, in pseudonym order: loading walks it
//! alongside the key store's pseudonyms, read a page at a time in the same order, so an erased subject
//! (key destroyed) drops out, and nothing in an image names a person once their key is gone. An image that
//! fails its version or checksum, covers more than the ledger holds, or was made after another event at its
//! position than this ledger holds (a store restored or rewritten since, an image carried to another
//! store) is ignored and the full load runs: a wrong image would answer checks wrongly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use consentry_core::Engine;
use consentry_core::engine::{IMAGE_KEY, LEDGER_HASH};
use consentry_store::{Store, StoreError};

use crate::error::{Error, Result};
use crate::state::Services;
use crate::workers::follower::read_after;

/// Key-store rows read per page when mapping pseudonyms.
const PSEUDONYM_PAGE: u32 = 50_000;
/// Current-state rows read per page by the full load.
const CURRENT_PAGE: u32 = 10_000;

/// How the engine was loaded at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// From an image covering the ledger up to `covers`, then the events after it.
    Image { covers: u64, subjects: u64 },
    /// From every subject's current state (no usable image).
    Full,
}

/// Loads the engine: from the newest stored image and the ledger after it, or, without a usable image,
/// from every subject's current state. `head` is the ledger position read before loading.
pub async fn warm(store: &dyn Store, engine: &Engine, head: u64) -> Result<Warmed, StoreError> {
    match from_image(store, engine, head).await {
        Ok(Some(warmed)) => return Ok(warmed),
        Ok(None) => {}
        Err(ImageLoad::Refused(why)) => {
            tracing::warn!(reason = %why, "the stored engine image is not usable; loading every subject");
            // Whatever the image put in is dropped: the full load starts from nothing.
            engine.forget_where(|_| true);
        }
        Err(ImageLoad::Store(e)) => return Err(e),
    }
    load_full(store, engine).await?;
    Ok(Warmed::Full)
}

enum ImageLoad {
    Refused(String),
    Store(StoreError),
}

impl From<StoreError> for ImageLoad {
    fn from(e: StoreError) -> Self {
        ImageLoad::Store(e)
    }
}

async fn from_image(store: &dyn Store, engine: &Engine, head: u64) -> Result<Option<Warmed>, ImageLoad> {
    let Some((covers, bytes)) = store.latest_engine_image().await? else { return Ok(None) };
    if covers > head || covers == 0 {
        // A store restored to before the image.
        return Err(ImageLoad::Refused(format!("covers {covers} of a ledger of {head} events")));
    }
    let refused = |e: consentry_core::engine::ImageError| ImageLoad::Refused(e.to_string());
    // Checking the image (its checksum, every entry) while the key store's first page and the ledger's
    // event at the image's position are read.
    let (first, at_covers, opened) = futures_util::future::join3(
        store.pseudonym_page("", PSEUDONYM_PAGE),
        store.events_page(covers - 1, 1),
        async { engine.open_image(&bytes) },
    )
    .await;
    let mut load = opened.map_err(refused)?;
    if load.covers() != covers {
        return Err(ImageLoad::Refused(format!(
            "a row of position {covers} holds an image of {}",
            load.covers()
        )));
    }
    // The hash chain ties every earlier event to the one at `covers`: the same event there means the same
    // ledger up to it, so the image holds this ledger's state. Another event there (a store restored from a
    // backup and written to since, an image carried from another store) means it does not.
    let ours = at_covers?.into_iter().next().filter(|e| e.seq == covers).and_then(|e| hex32(&e.hash));
    if ours.as_ref() != Some(load.ledger_hash()) {
        return Err(ImageLoad::Refused(format!(
            "the ledger's event at {covers} is not the one the image was made after"
        )));
    }
    // The image's entries are sorted by pseudonym, as the key store's pages are: each page is merged
    // with the entries in its range while the next page is read, and an entry whose pseudonym no page
    // holds (erased) is left out. No map of every subject is built.
    let mut page = first?;
    while let Some((last, _)) = page.last() {
        let next = async {
            if page.len() < PSEUDONYM_PAGE as usize {
                return Ok(Vec::new());
            }
            store.pseudonym_page(last, PSEUDONYM_PAGE).await
        };
        let merge = async {
            let keyed: Vec<([u8; IMAGE_KEY], &str)> =
                page.iter().filter_map(|(p, s)| Some((hex32(p)?, s.as_str()))).collect();
            load.load(keyed.iter().map(|(k, s)| (k, *s)))
        };
        // The read is started first: the key store is read on another thread while this one merges.
        let (next, merged) = futures_util::future::join(next, merge).await;
        merged.map_err(refused)?;
        page = next?;
    }
    let loaded = load.finish();
    drop(bytes);
    // The tail: what was appended after the image (by any node). Erased subjects' events have no subject.
    // An event the engine cannot take refuses the image: the full load then decides whether the node starts.
    let mut failed = None;
    read_after(store, covers, |page| {
        for (subject, event) in page {
            if let Some(subject) = subject
                && failed.is_none()
                && let Err(e) = engine.apply(subject.as_str(), event)
            {
                failed = Some(format!("ledger event {} after the image: {e}", event.seq));
            }
        }
    })
    .await?;
    if let Some(why) = failed {
        return Err(ImageLoad::Refused(why));
    }
    Ok(Some(Warmed::Image { covers, subjects: loaded.subjects }))
}

/// Loads every subject's current state into the engine (what a start without a usable image does).
pub async fn load_full(store: &dyn Store, engine: &Engine) -> Result<(), StoreError> {
    let mut after = 0;
    loop {
        let page = store.current_page(after, CURRENT_PAGE).await?;
        let Some((_, last)) = page.last() else { return Ok(()) };
        after = last.seq;
        for (subject, event) in &page {
            if let Err(e) = engine.apply(subject.as_str(), event) {
                return Err(StoreError::Backend(format!("the engine cannot hold the stored state: {e}")));
            }
        }
    }
}

/// Writes an image of the engine covering the ledger's head, unless the newest image this node wrote or
/// loaded covers it already. Returns the position written.
///
/// The engine alone proves nothing about a position (a handler applies its events after the commit, and
/// other nodes' events arrive through the follower), so every event up to the head is applied here first,
/// from the ledger; applying is idempotent. The pseudonyms are read after the head: a subject without one
/// then has no event up to the head, and the tail replay after the image brings it in.
pub async fn save(state: &Services) -> Result<Option<u64>> {
    let ledger = state.store.ledger_head().await?;
    let head = ledger.events;
    if head <= state.image_covers.load(Ordering::Acquire) {
        return Ok(None);
    }
    let Some(ledger_hash) = hex32(&ledger.head) else {
        tracing::warn!("no engine image written: the ledger's head hash is not 64 hex digits");
        return Ok(None);
    };
    let from = state.image_cursor.load(Ordering::Acquire);
    let read = read_after(state.store.as_ref(), from, |page| {
        for (subject, event) in page {
            if let Some(subject) = subject
                && state.aliases.resolve(subject.as_str()).is_none()
            {
                state.apply_committed(subject, std::slice::from_ref(event));
            }
        }
    })
    .await?;
    state.image_cursor.fetch_max(read, Ordering::AcqRel);
    // Linked records keep no state of their own (the link moved it), whatever order events came in.
    state.engine.forget_where(|subject| state.aliases.resolve(subject).is_some());
    let mut pseudonyms: HashMap<String, [u8; IMAGE_KEY]> = HashMap::new();
    let mut after = String::new();
    loop {
        let page = state.store.pseudonym_page(&after, PSEUDONYM_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let full = page.len() == PSEUDONYM_PAGE as usize;
        for (p, s) in page {
            let Some(key) = hex32(&p) else {
                // Never made by this code; an image could not name this subject.
                tracing::warn!(
                    "no engine image written: the key store holds a pseudonym that is not 64 hex digits"
                );
                return Ok(None);
            };
            pseudonyms.insert(s.into_string(), key);
        }
        if !full {
            break;
        }
    }
    if state.engine_incomplete.load(Ordering::Acquire) {
        // An image of an engine that missed an event would carry the gap past the next start.
        tracing::warn!(
            "no engine image written: an event could not be applied to the engine since the start"
        );
        return Ok(None);
    }
    let encoding = state.clone();
    let saved = tokio::task::spawn_blocking(move || {
        encoding.engine.save_image(head, ledger_hash, |subject| pseudonyms.get(subject).copied())
    })
    .await
    .map_err(|e| Error::internal(format!("encoding the engine image: {e}")))?;
    state.store.save_engine_image(head, &saved.bytes).await?;
    state.image_covers.fetch_max(head, Ordering::AcqRel);
    tracing::info!(
        covers = head,
        subjects = saved.subjects,
        newer = saved.unkeyed.len(),
        bytes = saved.bytes.len(),
        "engine image written"
    );
    Ok(Some(head))
}

/// A pseudonym as the key store holds it, or an event's hash as the ledger does (64 lowercase hexadecimal
/// digits, ordered as their bytes are), in its 32 bytes; `None` for anything else.
fn hex32(hex: &str) -> Option<[u8; IMAGE_KEY]> {
    const _: () = assert!(IMAGE_KEY == LEDGER_HASH);
    if hex.len() != 2 * IMAGE_KEY || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; IMAGE_KEY];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}
