//! A snapshot of the engine's state as bytes, so a node starts from it and replays only the ledger's tail
//! instead of loading every subject's current state from the store.
//!
//! The image holds what the ledger made of each subject (their statements and jurisdiction), keyed by a
//! 32-byte name the caller gives (the subject's pseudonym: nothing in an image names a person), with the
//! symbol tables that give the statements their meaning. Ages are left out: they come from their own sealed
//! store at every start. Layout, little-endian:
//!
//! ```text
//! magic "CSEI" | version u32 | covers u64 (the ledger position the state includes)
//!     | ledger hash [32] (the hash of the event at `covers`, binding the image to that ledger)
//! 5 name tables (purposes, categories, channels, recipients, jurisdictions): u32 count, each u32 len + UTF-8
//! scopes: u32 count, each 3 × (u32 count + u32 symbols)
//! subjects: u64 count, each 32-byte key + u32 statements, each 32 bytes
//!     (at i64, seq u64, expires_at i64, scope u32, purpose u16, action u8, flags u8);
//!     in strictly ascending order of key (bytewise)
//! SHA-256 of everything before it
//! ```
//!
//! The entries are sorted by key so that loading walks them side by side with the key store's pseudonyms,
//! read in the same order a page at a time ([`ImageLoad::load`]): no map of every subject is built.
//!
//! A hand-written format rather than a serde codec: the statements are fixed-size records copied as they
//! are held, and reading must reject anything short of a whole, checked image before touching the engine's
//! subjects.

use std::hash::BuildHasher;
use std::sync::PoisonError;

use sha2::{Digest, Sha256};

use super::memory::{CHILD, JURISDICTION, Stmt};
use super::symbols::{Interner, ScopeDef, Shared};
use super::{CapacityError, Engine};
use crate::ledger::Action;

const MAGIC: &[u8; 4] = b"CSEI";
/// Bumped on any change of layout or meaning (the statements' fields, the action codes, the engine's merge
/// rule); an image of another version is not read. A store's migrations also delete every stored image.
/// Version 2: 32-byte keys, entries sorted by key. Version 3: the hash of the ledger event at `covers`.
pub const IMAGE_VERSION: u32 = 3;
const DIGEST: usize = 32;
/// The header's length: magic, version, covers and the ledger's hash at `covers`.
const HEADER: usize = 16 + LEDGER_HASH;
/// The length of the ledger hash an image is bound to (an event's SHA-256).
pub const LEDGER_HASH: usize = 32;
/// The length of an entry's key (a pseudonym's HMAC-SHA256).
pub const IMAGE_KEY: usize = 32;
const STMT: usize = 32;

/// Why an image was not loaded. Before [`Engine::open_image`] returns, the engine is untouched; a
/// [`ImageError::Unordered`] or [`ImageError::Capacity`] from [`ImageLoad::load`] leaves part of the image
/// in the engine (the caller then starts from an empty engine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("not an engine image")]
    Magic,
    #[error("engine image version {0}, this build reads version {IMAGE_VERSION}")]
    Version(u32),
    #[error("engine image checksum mismatch")]
    Checksum,
    #[error("engine image malformed")]
    Malformed,
    #[error("the keys given to load an engine image are not in ascending order")]
    Unordered,
    #[error(transparent)]
    Capacity(#[from] CapacityError),
}

/// What [`Engine::save_image`] made.
#[derive(Debug)]
pub struct SavedImage {
    pub bytes: Vec<u8>,
    /// Subjects held that had no key (so are not in the image).
    pub unkeyed: Vec<String>,
    /// Subjects in the image.
    pub subjects: u64,
}

/// What loading an image did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedImage {
    /// The ledger position the image's state includes: replay the events after it.
    pub covers: u64,
    /// The hash of the ledger's event at `covers` when the image was made: an image is only good for the
    /// ledger that holds this event there.
    pub ledger_hash: [u8; LEDGER_HASH],
    pub subjects: u64,
    /// Entries whose key named no subject (erased since): left out.
    pub skipped: u64,
}

impl Engine {
    /// Encodes the state the ledger gave every subject, as of `covers` (every event up to it must already be
    /// applied; later ones may be), `ledger_hash` being the hash of the ledger's event at `covers`, which the
    /// loader compares with its own ledger. `key` names each subject in the image (its pseudonym); a subject
    /// it gives no key is left out and listed in [`SavedImage::unkeyed`], for the caller to judge, and so are
    /// subjects given the same key.
    pub fn save_image(
        &self,
        covers: u64,
        ledger_hash: [u8; LEDGER_HASH],
        mut key: impl FnMut(&str) -> Option<[u8; IMAGE_KEY]>,
    ) -> SavedImage {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&IMAGE_VERSION.to_le_bytes());
        out.extend_from_slice(&covers.to_le_bytes());
        out.extend_from_slice(&ledger_hash);
        {
            let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
            for table in [
                &shared.purposes,
                &shared.categories,
                &shared.channels,
                &shared.recipients,
                &shared.jurisdictions,
            ] {
                put_u32(&mut out, table.names.len());
                for name in &table.names {
                    put_u32(&mut out, name.len());
                    out.extend_from_slice(name.as_bytes());
                }
            }
            put_u32(&mut out, shared.scopes.len());
            for scope in &shared.scopes {
                for list in [&scope.categories, &scope.channels, &scope.recipients] {
                    put_u32(&mut out, list.len());
                    for id in list.iter() {
                        out.extend_from_slice(&id.to_le_bytes());
                    }
                }
            }
        }
        // Each subject's statements encoded as met (one shard locked at a time), then written out in the
        // order of their keys.
        let mut encoded = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut unkeyed = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for slot in &shard.slots {
                // Ages are loaded from their own store; a subject known only by age is not the ledger's.
                let stmts = slot.stmts.as_slice().iter().filter(|s| s.purpose != CHILD);
                if stmts.clone().next().is_none() {
                    continue;
                }
                let Ok(subject) = std::str::from_utf8(slot.key.as_bytes()) else { continue };
                let Some(name) = key(subject) else {
                    unkeyed.push(subject.to_owned());
                    continue;
                };
                let start = encoded.len();
                // Every statement goes in: one left out could be a withdrawal or an objection, and the
                // image would then allow what the ledger refuses.
                for s in stmts {
                    encoded.extend_from_slice(&s.at.to_le_bytes());
                    encoded.extend_from_slice(&s.seq.to_le_bytes());
                    encoded.extend_from_slice(&s.expires_at.to_le_bytes());
                    encoded.extend_from_slice(&s.scope.to_le_bytes());
                    encoded.extend_from_slice(&s.purpose.to_le_bytes());
                    encoded.push(action_code(s.action));
                    encoded.push(s.flags);
                }
                entries.push(Entry {
                    key: name,
                    start,
                    end: encoded.len(),
                    subject: Some(subject.to_owned()),
                });
            }
        }
        entries.sort_unstable_by_key(|e| e.key);
        // Two subjects under one key (never from HMAC-SHA256 pseudonyms): neither can be told apart.
        let mut shared_key = vec![false; entries.len()];
        for i in 1..entries.len() {
            if entries[i].key == entries[i - 1].key {
                shared_key[i] = true;
                shared_key[i - 1] = true;
            }
        }
        let kept = entries.len() - shared_key.iter().filter(|&&s| s).count();
        out.reserve(8 + kept * (IMAGE_KEY + 4) + encoded.len() + DIGEST);
        out.extend_from_slice(&(kept as u64).to_le_bytes());
        for (entry, shared) in entries.iter_mut().zip(shared_key) {
            if shared {
                unkeyed.extend(entry.subject.take());
                continue;
            }
            out.extend_from_slice(&entry.key);
            // A subject has far fewer than 2^32 statements.
            put_u32(&mut out, (entry.end - entry.start) / STMT);
            out.extend_from_slice(&encoded[entry.start..entry.end]);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        SavedImage { bytes: out, unkeyed, subjects: kept as u64 }
    }

    /// Checks an image whole (magic, version, checksum, structure, the order of its keys) and interns its
    /// names in this engine, ready to merge its entries with [`ImageLoad::load`]. An image that fails
    /// leaves the engine as it was.
    pub fn open_image<'a>(&'a self, bytes: &'a [u8]) -> Result<ImageLoad<'a>, ImageError> {
        let body = check(bytes)?;
        let mut r = Reader { bytes: body, at: HEADER };
        let covers = u64::from_le_bytes(body[8..16].try_into().map_err(|_| ImageError::Malformed)?);
        let ledger_hash: [u8; LEDGER_HASH] =
            body[16..HEADER].try_into().map_err(|_| ImageError::Malformed)?;
        let mut tables: Vec<Vec<String>> = Vec::with_capacity(5);
        for _ in 0..5 {
            let n = r.u32()?;
            let mut names = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                let len = r.u32()? as usize;
                let name = std::str::from_utf8(r.take(len)?).map_err(|_| ImageError::Malformed)?;
                names.push(name.to_owned());
            }
            tables.push(names);
        }
        let mut scopes = Vec::new();
        for _ in 0..r.u32()? {
            let mut lists: [Vec<u32>; 3] = Default::default();
            for (list, table) in lists.iter_mut().zip([1, 2, 3]) {
                for _ in 0..r.u32()? {
                    let id = r.u32()?;
                    if id as usize >= tables[table].len() {
                        return Err(ImageError::Malformed);
                    }
                    list.push(id);
                }
            }
            scopes.push(lists);
        }
        let count = r.u64()?;
        let entries = r.at;
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let key = r.take(IMAGE_KEY)?;
            if previous.is_some_and(|p| p >= key) {
                return Err(ImageError::Malformed);
            }
            previous = Some(key);
            let n = r.u32()? as usize;
            for _ in 0..n {
                let s = stmt(r.take(STMT)?)?;
                let valid = match s.purpose {
                    JURISDICTION => (s.scope as usize) < tables[4].len(),
                    CHILD => false,
                    p => usize::from(p) < tables[0].len() && (s.scope as usize) < scopes.len(),
                };
                if !valid || s.flags & 0x80 != 0 {
                    return Err(ImageError::Malformed);
                }
            }
        }
        if r.at != body.len() {
            return Err(ImageError::Malformed);
        }
        // Symbols differ between engines: each name of the image is interned here, its statements renamed.
        let (purposes, jurisdictions, scope_ids) = {
            let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
            remap(&mut shared, &tables, &scopes)?
        };
        // Room for every entry at once (with a margin for the shards' uneven shares): a shard that grew
        // while loading would copy its subjects and hash their ids again each time it doubled.
        let share = usize::try_from(count).unwrap_or(usize::MAX) / self.shards.len();
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.reserve(share + share / 8 + 16, |key| self.hasher.hash_one(key));
        }
        Ok(ImageLoad {
            engine: self,
            entries: Reader { bytes: body, at: entries },
            left: count,
            last: None,
            purposes,
            jurisdictions,
            scope_ids,
            loaded: LoadedImage { covers, ledger_hash, subjects: 0, skipped: 0 },
        })
    }

    /// Loads a whole image, `subjects` giving every subject that has a key, in ascending order of key
    /// ([`Engine::open_image`], one [`ImageLoad::load`], [`ImageLoad::finish`]).
    pub fn load_image<'k>(
        &self,
        bytes: &[u8],
        subjects: impl IntoIterator<Item = (&'k [u8; IMAGE_KEY], &'k str)>,
    ) -> Result<LoadedImage, ImageError> {
        let mut load = self.open_image(bytes)?;
        load.load(subjects)?;
        Ok(load.finish())
    }
}

/// One subject met while saving: its key and where its encoded statements lie.
struct Entry {
    key: [u8; IMAGE_KEY],
    start: usize,
    end: usize,
    subject: Option<String>,
}

/// A checked image being merged into the engine, its entries walked in order of key alongside the keys of
/// the subjects that have one (the key store's pseudonyms, read in the same order).
pub struct ImageLoad<'a> {
    engine: &'a Engine,
    /// At the next entry not yet loaded or passed over.
    entries: Reader<'a>,
    left: u64,
    /// The greatest key given so far.
    last: Option<[u8; IMAGE_KEY]>,
    purposes: Vec<u16>,
    jurisdictions: Vec<u32>,
    scope_ids: Vec<u32>,
    loaded: LoadedImage,
}

impl ImageLoad<'_> {
    /// The ledger position the image's state includes: replay the events after it.
    pub fn covers(&self) -> u64 {
        self.loaded.covers
    }

    /// The hash of the ledger's event at [`ImageLoad::covers`] when the image was made: the image holds
    /// that ledger's state, and no other's.
    pub fn ledger_hash(&self) -> &[u8; LEDGER_HASH] {
        &self.loaded.ledger_hash
    }

    /// Merges the entries of `subjects` (each subject's key and id, strictly ascending by key, and above
    /// every key of an earlier call) into the engine; merging is commutative, so state already held stays.
    /// Entries whose key lies below a given one and was not given are left out (their subject has no key:
    /// erased); a subject with no entry is passed over. Keys out of order are
    /// [`ImageError::Unordered`]: the walk would pass over entries it should load.
    pub fn load<'k>(
        &mut self,
        subjects: impl IntoIterator<Item = (&'k [u8; IMAGE_KEY], &'k str)>,
    ) -> Result<(), ImageError> {
        for (key, subject) in subjects {
            if self.last.as_ref().is_some_and(|last| last >= key) {
                return Err(ImageError::Unordered);
            }
            self.last = Some(*key);
            while self.left > 0 {
                let next = self.entries.peek(IMAGE_KEY)?;
                if next > key.as_slice() {
                    break;
                }
                self.left -= 1;
                self.entries.take(IMAGE_KEY)?;
                let n = self.entries.u32()? as usize;
                let stmts = self.entries.take(n * STMT)?;
                if next == key.as_slice() {
                    self.merge(subject, stmts)?;
                    self.loaded.subjects += 1;
                    break;
                }
                self.loaded.skipped += 1;
            }
        }
        Ok(())
    }

    /// What was loaded; the entries not reached are left out (no key named them).
    pub fn finish(mut self) -> LoadedImage {
        self.loaded.skipped += self.left;
        self.engine.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.loaded
    }

    /// Merges one entry's statements (checked by [`Engine::open_image`]) into `subject`'s, renamed to this
    /// engine's symbols.
    fn merge(&self, subject: &str, stmts: &[u8]) -> Result<(), ImageError> {
        let engine = self.engine;
        let (hash, shard) = engine.shard_of(subject);
        let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
        for raw in stmts.chunks_exact(STMT) {
            let mut s = stmt(raw)?;
            if s.purpose == JURISDICTION {
                s.scope = self.jurisdictions[s.scope as usize];
            } else {
                s.purpose = self.purposes[usize::from(s.purpose)];
                s.scope = self.scope_ids[s.scope as usize];
            }
            engine.apply_in(&mut shard, hash, subject, s)?;
        }
        Ok(())
    }
}

impl Engine {
    /// Every subject's statements in words (symbols resolved to names), sorted: two engines that hold the
    /// same state give equal listings whatever their symbol numbering. For tests and diagnostics; it
    /// visits every subject.
    pub fn listing(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = std::collections::BTreeMap::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for slot in &shard.slots {
                let subject = String::from_utf8_lossy(slot.key.as_bytes()).into_owned();
                let mut stmts: Vec<String> = slot
                    .stmts
                    .as_slice()
                    .iter()
                    .map(|s| {
                        let what = match s.purpose {
                            JURISDICTION => format!("jurisdiction {}", shared.jurisdictions.name(s.scope)),
                            CHILD => "age".to_owned(),
                            p => {
                                let scope = shared.scopes.get(s.scope as usize).cloned().unwrap_or_default();
                                let names = |i: &Interner, l: &[u32]| {
                                    let mut v: Vec<&str> = l.iter().map(|&id| i.name(id)).collect();
                                    v.sort_unstable();
                                    v.join(",")
                                };
                                format!(
                                    "{} {} [{}|{}|{}]",
                                    shared.purposes.name(u32::from(p)),
                                    s.action.as_str(),
                                    names(&shared.categories, &scope.categories),
                                    names(&shared.channels, &scope.channels),
                                    names(&shared.recipients, &scope.recipients)
                                )
                            }
                        };
                        format!("{what} at={} seq={} until={} flags={}", s.at, s.seq, s.expires_at, s.flags)
                    })
                    .collect();
                stmts.sort();
                out.insert(subject, stmts);
            }
        }
        out
    }
}

/// The ledger position an image covers, once its magic, version and checksum hold.
pub fn image_covers(bytes: &[u8]) -> Result<u64, ImageError> {
    let body = check(bytes)?;
    Ok(u64::from_le_bytes(body[8..16].try_into().map_err(|_| ImageError::Malformed)?))
}

/// The image without its checksum, once magic, version and checksum hold.
fn check(bytes: &[u8]) -> Result<&[u8], ImageError> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(ImageError::Magic);
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != IMAGE_VERSION {
        return Err(ImageError::Version(version));
    }
    if bytes.len() < HEADER + DIGEST {
        return Err(ImageError::Malformed);
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
    if Sha256::digest(body).as_slice() != digest {
        return Err(ImageError::Checksum);
    }
    Ok(body)
}

/// Per symbol of an image, this engine's symbol: of each purpose, jurisdiction and scope.
type Renamed = (Vec<u16>, Vec<u32>, Vec<u32>);

/// Interns the image's names here; returns the new symbol of each purpose, jurisdiction and scope.
fn remap(
    shared: &mut Shared,
    tables: &[Vec<String>],
    scopes: &[[Vec<u32>; 3]],
) -> Result<Renamed, CapacityError> {
    let intern_all =
        |i: &mut Interner, names: &[String]| -> Vec<u32> { names.iter().map(|n| i.intern(n)).collect() };
    let purposes = intern_all(&mut shared.purposes, &tables[0])
        .into_iter()
        .map(|id| u16::try_from(id).ok().filter(|&id| id != JURISDICTION && id != CHILD).ok_or(CapacityError))
        .collect::<Result<Vec<u16>, _>>()?;
    let categories = intern_all(&mut shared.categories, &tables[1]);
    let channels = intern_all(&mut shared.channels, &tables[2]);
    let recipients = intern_all(&mut shared.recipients, &tables[3]);
    let jurisdictions = intern_all(&mut shared.jurisdictions, &tables[4]);
    let mut scope_ids = Vec::with_capacity(scopes.len());
    for [cats, chans, recs] in scopes {
        let renamed = |list: &[u32], map: &[u32]| -> Box<[u32]> {
            let mut v: Vec<u32> = list.iter().map(|&id| map[id as usize]).collect();
            v.sort_unstable();
            v.dedup();
            v.into()
        };
        let def = ScopeDef {
            categories: renamed(cats, &categories),
            channels: renamed(chans, &channels),
            recipients: renamed(recs, &recipients),
        };
        let id = match shared.scope_ids.get(&def) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(shared.scopes.len()).map_err(|_| CapacityError)?;
                shared.scopes.push(def.clone());
                shared.scope_ids.insert(def, id);
                id
            }
        };
        scope_ids.push(id);
    }
    Ok((purposes, jurisdictions, scope_ids))
}

/// A statement as encoded (not yet checked against the image's tables).
fn stmt(raw: &[u8]) -> Result<Stmt, ImageError> {
    let mut r = Reader { bytes: raw, at: 0 };
    Ok(Stmt {
        at: r.u64()? as i64,
        seq: r.u64()?,
        expires_at: r.u64()? as i64,
        scope: r.u32()?,
        purpose: r.u16()?,
        action: action_of(r.u8()?)?,
        flags: r.u8()?,
    })
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Each action's code in an image, written out here rather than taken from a list's order: reordering the
/// actions or adding one cannot change what a stored image means (a new action needs a code of its own,
/// which the exhaustive match asks for).
fn action_code(action: Action) -> u8 {
    match action {
        Action::Grant => 0,
        Action::Deny => 1,
        Action::Withdraw => 2,
        Action::Object => 3,
        Action::Restrict => 4,
        Action::Renew => 5,
        Action::Expire => 6,
        Action::Locate => 7,
    }
}

fn action_of(code: u8) -> Result<Action, ImageError> {
    Ok(match code {
        0 => Action::Grant,
        1 => Action::Deny,
        2 => Action::Withdraw,
        3 => Action::Object,
        4 => Action::Restrict,
        5 => Action::Renew,
        6 => Action::Expire,
        7 => Action::Locate,
        _ => return Err(ImageError::Malformed),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self, n: usize) -> Result<&'a [u8], ImageError> {
        self.bytes.get(self.at..).and_then(|rest| rest.get(..n)).ok_or(ImageError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ImageError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(ImageError::Malformed)?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ImageError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ImageError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| ImageError::Malformed)?))
    }

    fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| ImageError::Malformed)?))
    }

    fn u64(&mut self) -> Result<u64, ImageError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| ImageError::Malformed)?))
    }
}

#[cfg(test)]
mod tests;
