//! `consentry_device`: a C library for device firmware that verifies the consent snapshot Consentry signs
//! for a paired device and answers consent questions offline with the server's own rules.
//!
//! It wraps [`consentry_client::DeviceConsent`], so the decisions come from `consentry_core`'s engine, the
//! code the server decides with. The header, `sdk/c/include/consentry_device.h`, is generated from this
//! file by cbindgen (`crates/ffi/cbindgen.toml`); CI fails when the committed one is stale.
//!
//! Rules of the interface, for C callers:
//! - Every function returns a [`Error`] code (`CONSENTRY_ERROR_OK` is 0); on failure,
//!   `consentry_last_error()` gives a message for the calling thread.
//! - No panic crosses the boundary: each entry point catches one and answers `CONSENTRY_ERROR_PANIC`.
//! - `consentry_check` allocates nothing, and any number of threads may call it on one snapshot at once,
//!   also while another thread replaces that snapshot (the snapshot sits behind a read-write lock).
//! - Strings are NUL-terminated UTF-8; those passed in are only read during the call.

mod names;

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{PoisonError, RwLock};

use consentry_client::DeviceConsent;
use consentry_client::device::DeviceConsentError;
use consentry_core::Timestamp;
use consentry_core::proof::{Jwks, JwsError};

pub use self::names::{consentry_dimension_name, consentry_reason_name};

/// What a call came to. Every value but `CONSENTRY_ERROR_OK` comes with a message from
/// `consentry_last_error()`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    Ok = 0,
    /// A pointer argument that must not be NULL was NULL.
    NullArgument = 1,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 2,
    /// The JWKS is not a JSON Web Key Set.
    BadJwks = 3,
    /// The snapshot is not a well-formed JWS, is not signed by a key of the JWKS, or does not verify.
    BadSignature = 4,
    /// A genuine JWS of another kind (a receipt, a checkpoint), not a device snapshot.
    WrongKind = 5,
    /// Signed, but not a consent snapshot this version reads (a newer format too): nothing is decided from it.
    NotASnapshot = 6,
    /// Past its expiry at the time given.
    Expired = 7,
    /// Issued for another device.
    OtherDevice = 8,
    /// Older (an earlier ledger position) than the snapshot it would replace.
    Older = 9,
    /// The snapshot holds more than the decision engine can represent.
    Capacity = 10,
    /// An internal error was caught at the boundary; the library state is unchanged.
    Panic = 11,
}

/// Why a decision came out as it did; the same reasons `POST /v1/check` answers with.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Granted = 0,
    BasisContract = 1,
    BasisLegitimateInterest = 2,
    BasisLegalObligation = 3,
    BasisVitalInterest = 4,
    BasisPublicTask = 5,
    NoConsent = 6,
    Withdrawn = 7,
    Denied = 8,
    Expired = 9,
    Objected = 10,
    Restricted = 11,
    NotCovered = 12,
    GpcOptOut = 13,
    Erased = 14,
    /// Allowed under an opt-out regime (a jurisdiction's) until the person opts out.
    NotOptedOut = 15,
    /// A known child's consent purpose with no grant a guardian made.
    GuardianRequired = 16,
    /// A purpose of kind sale or sharing for a known child: never allowed.
    ChildProtected = 17,
}

/// What a `not_covered` decision did not cover; `CONSENTRY_DIMENSION_NONE` for every other reason.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    None = 0,
    Category = 1,
    Channel = 2,
    Recipient = 3,
    /// The device did not declare the purpose at pairing (offline decisions only).
    Purpose = 4,
}

/// The answer to one question.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub not_covered: Dimension,
    /// The ledger sequence number of the event the answer rests on (`evt_<n>`), 0 when none.
    pub event_seq: u64,
}

/// A verified snapshot, ready to answer. Opaque to C.
#[derive(Debug)]
pub struct Snapshot {
    consent: RwLock<DeviceConsent>,
}

// C hands one snapshot to many threads: the compiler checks here what the header promises.
const _: () = {
    const fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Snapshot>();
};

thread_local! {
    /// The message of the calling thread's last failure, as `errno` is kept: C has no way to return it
    /// with the code, and a per-thread slot keeps threads from reading each other's messages.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn fail(code: Error, message: &str) -> Error {
    // A message with a NUL inside cannot be a C string; keep what comes before it.
    let text = message.split('\0').next().unwrap_or_default();
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(text));
    code
}

/// Runs an entry point's body, turning a panic into `CONSENTRY_ERROR_PANIC`.
fn guard(body: impl FnOnce() -> Result<(), Error>) -> Error {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Error::Ok,
        Ok(Err(code)) => code,
        Err(_) => fail(Error::Panic, "internal error (a panic was caught at the C boundary)"),
    }
}

/// The string behind `ptr`, borrowed for the call; `Ok(None)` for NULL.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged during the call.
unsafe fn optional_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    match bytes.to_str() {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(fail(Error::InvalidUtf8, &format!("{name} is not valid UTF-8"))),
    }
}

/// As [`optional_str`], but NULL is an error.
///
/// # Safety
///
/// As [`optional_str`].
unsafe fn required_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    // SAFETY: the caller's promise is passed on unchanged.
    let text = unsafe { optional_str(ptr, name) }?;
    text.ok_or_else(|| fail(Error::NullArgument, &format!("{name} is NULL")))
}

fn seconds(unix: i64) -> Timestamp {
    Timestamp::from_micros(unix.saturating_mul(1_000_000))
}

fn load(jwks_json: &str, snapshot: &str, device_id: &str, now_unix: i64) -> Result<Box<Snapshot>, Error> {
    let jwks: Jwks = serde_json::from_str(jwks_json)
        .map_err(|e| fail(Error::BadJwks, &format!("the JWKS is not a JSON Web Key Set: {e}")))?;
    let consent = DeviceConsent::verify_for_device_at(snapshot.trim(), &jwks, device_id, seconds(now_unix))
        .map_err(|e| fail(error_code(&e), &e.to_string()))?;
    Ok(Box::new(Snapshot { consent: RwLock::new(consent) }))
}

fn error_code(e: &DeviceConsentError) -> Error {
    match e {
        DeviceConsentError::Signature(JwsError::WrongKind { .. }) => Error::WrongKind,
        DeviceConsentError::Signature(_) => Error::BadSignature,
        DeviceConsentError::Payload(_) => Error::NotASnapshot,
        DeviceConsentError::Snapshot(consentry_core::snapshot::SnapshotError::Capacity) => Error::Capacity,
        DeviceConsentError::Snapshot(_) => Error::NotASnapshot,
        DeviceConsentError::Expired { .. } => Error::Expired,
        DeviceConsentError::OtherDevice => Error::OtherDevice,
        DeviceConsentError::Older { .. } => Error::Older,
    }
}

/// Verifies `snapshot` (the compact JWS from `GET /v1/device/consent`, its SSE stream or the retained MQTT
/// message) against `jwks_json` (the server's `/.well-known/jwks.json`), and that it was issued for
/// `device_id` (the id the device got at pairing) and has not expired at `now_unix` (seconds since the
/// Unix epoch). On success `*out` holds the snapshot, to be freed with `consentry_snapshot_free`; on
/// failure `*out` is set to NULL.
///
/// # Safety
///
/// The strings are NULL or NUL-terminated and valid for the call; `out` is NULL or points to writable
/// storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_snapshot_load(
    jwks_json: *const c_char,
    snapshot: *const c_char,
    device_id: *const c_char,
    now_unix: i64,
    out: *mut *mut Snapshot,
) -> Error {
    guard(|| {
        if out.is_null() {
            return Err(fail(Error::NullArgument, "out is NULL"));
        }
        // SAFETY: `out` is not NULL and the caller promises it points to storage for one pointer.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller promises NULL or a NUL-terminated string valid for the call.
        let jwks_json = unsafe { required_str(jwks_json, "jwks_json") }?;
        // SAFETY: as above.
        let snapshot = unsafe { required_str(snapshot, "snapshot") }?;
        // SAFETY: as above.
        let device_id = unsafe { required_str(device_id, "device_id") }?;
        let loaded = load(jwks_json, snapshot, device_id, now_unix)?;
        // SAFETY: checked above: `out` is not NULL and writable.
        unsafe { out.write(Box::into_raw(loaded)) };
        Ok(())
    })
}

/// Replaces the snapshot `held` with `newer` (loaded with `consentry_snapshot_load`), unless `newer` is for
/// another device or reflects an older ledger position than `held` (an old snapshot replayed, by a broker
/// say, must not bring back a withdrawn consent). Takes `newer` in every case: it is freed, whether or not
/// it replaced `held`. Threads may go on calling `consentry_check` on `held` meanwhile.
///
/// # Safety
///
/// `held` is NULL or a live snapshot from `consentry_snapshot_load`; `newer` is NULL or a live snapshot
/// from `consentry_snapshot_load`, not `held`, and not used again after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_snapshot_replace(held: *mut Snapshot, newer: *mut Snapshot) -> Error {
    guard(|| {
        if newer.is_null() {
            return Err(fail(Error::NullArgument, "newer is NULL"));
        }
        // SAFETY: not NULL, from `consentry_snapshot_load` (`Box::into_raw`) and handed over by the caller.
        let newer = unsafe { Box::from_raw(newer) };
        if held.is_null() {
            return Err(fail(Error::NullArgument, "held is NULL"));
        }
        // SAFETY: not NULL, a live snapshot the caller keeps alive for the call; shared access only (the
        // lock inside serialises the change with readers).
        let held = unsafe { &*held };
        let newer = newer.consent.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut consent = held.consent.write().unwrap_or_else(PoisonError::into_inner);
        consent.replace_with(newer).map_err(|e| fail(error_code(&e), &e.to_string()))
    })
}

/// Decides whether the device may use `category` for `purpose`, through `channel` (NULL: every channel
/// the purpose uses) by `recipient` (NULL: every recipient it has), now (the system clock). Past the
/// snapshot's expiry every answer is a denial with reason `expired`. On a household's device, the answer
/// for someone it does not recognise: allowed only when every member allows. Allocates nothing.
///
/// # Safety
///
/// `snapshot` is NULL or a live snapshot; the strings are NULL or NUL-terminated and valid for the call;
/// `out` is NULL or points to writable storage for one `consentry_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_check(
    snapshot: *const Snapshot,
    purpose: *const c_char,
    category: *const c_char,
    channel: *const c_char,
    recipient: *const c_char,
    out: *mut Decision,
) -> Error {
    let now = consentry_core::proof::unix_seconds(Timestamp::now());
    // SAFETY: the caller's promises, passed on unchanged.
    unsafe { consentry_check_at(snapshot, purpose, category, channel, recipient, now, out) }
}

/// `consentry_check` at `now_unix` (seconds since the Unix epoch), for devices that keep time themselves.
///
/// # Safety
///
/// As `consentry_check`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_check_at(
    snapshot: *const Snapshot,
    purpose: *const c_char,
    category: *const c_char,
    channel: *const c_char,
    recipient: *const c_char,
    now_unix: i64,
    out: *mut Decision,
) -> Error {
    guard(|| {
        if snapshot.is_null() || out.is_null() {
            return Err(fail(Error::NullArgument, "snapshot or out is NULL"));
        }
        // SAFETY: the caller promises NULL or NUL-terminated strings valid for the call.
        let purpose = unsafe { required_str(purpose, "purpose") }?;
        // SAFETY: as above.
        let category = unsafe { required_str(category, "category") }?;
        // SAFETY: as above.
        let channel = unsafe { optional_str(channel, "channel") }?;
        // SAFETY: as above.
        let recipient = unsafe { optional_str(recipient, "recipient") }?;
        // SAFETY: not NULL, and a live snapshot for the call; shared access only.
        let snapshot = unsafe { &*snapshot };
        let consent = snapshot.consent.read().unwrap_or_else(PoisonError::into_inner);
        let d = consent.decide_for_at(purpose, category, channel, recipient, seconds(now_unix));
        let decision = Decision {
            allowed: d.allowed,
            reason: names::reason(d.reason),
            not_covered: names::dimension(d.not_covered),
            event_seq: d.event_seq.unwrap_or(0),
        };
        // SAFETY: not NULL, and the caller promises storage for one decision.
        unsafe { out.write(decision) };
        Ok(())
    })
}

/// On a household's device: `consentry_check_at` for the member the device recognised, by the `member`
/// handle the household gave them (an answer as their own device would give). Someone who is not a
/// member, or any handle on a subject's device, is allowed nothing (reason `no_consent`). For someone it
/// does not recognise, a household's device asks `consentry_check`: allowed only when every member allows.
///
/// # Safety
///
/// As `consentry_check`; `member` is NULL or NUL-terminated and valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_check_member_at(
    snapshot: *const Snapshot,
    member: *const c_char,
    purpose: *const c_char,
    category: *const c_char,
    channel: *const c_char,
    recipient: *const c_char,
    now_unix: i64,
    out: *mut Decision,
) -> Error {
    guard(|| {
        if snapshot.is_null() || out.is_null() {
            return Err(fail(Error::NullArgument, "snapshot or out is NULL"));
        }
        // SAFETY: the caller promises NULL or NUL-terminated strings valid for the call.
        let member = unsafe { required_str(member, "member") }?;
        // SAFETY: as above.
        let purpose = unsafe { required_str(purpose, "purpose") }?;
        // SAFETY: as above.
        let category = unsafe { required_str(category, "category") }?;
        // SAFETY: as above.
        let channel = unsafe { optional_str(channel, "channel") }?;
        // SAFETY: as above.
        let recipient = unsafe { optional_str(recipient, "recipient") }?;
        // SAFETY: not NULL, and a live snapshot for the call; shared access only.
        let snapshot = unsafe { &*snapshot };
        let consent = snapshot.consent.read().unwrap_or_else(PoisonError::into_inner);
        let d = consent.decide_member_at(member, purpose, category, channel, recipient, seconds(now_unix));
        let decision = Decision {
            allowed: d.allowed,
            reason: names::reason(d.reason),
            not_covered: names::dimension(d.not_covered),
            event_seq: d.event_seq.unwrap_or(0),
        };
        // SAFETY: not NULL, and the caller promises storage for one decision.
        unsafe { out.write(decision) };
        Ok(())
    })
}

/// When the snapshot expires, in seconds since the Unix epoch (fetch a new one before then), or -1 when
/// `snapshot` is NULL.
///
/// # Safety
///
/// `snapshot` is NULL or a live snapshot.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_snapshot_expires_at(snapshot: *const Snapshot) -> i64 {
    if snapshot.is_null() {
        return -1;
    }
    // SAFETY: not NULL, and a live snapshot for the call; shared access only.
    let snapshot = unsafe { &*snapshot };
    let consent = snapshot.consent.read().unwrap_or_else(PoisonError::into_inner);
    consent.snapshot().exp
}

/// Frees a snapshot; NULL is ignored.
///
/// # Safety
///
/// `snapshot` is NULL or a live snapshot from `consentry_snapshot_load`, which no thread uses any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consentry_snapshot_free(snapshot: *mut Snapshot) {
    if snapshot.is_null() {
        return;
    }
    // SAFETY: from `Box::into_raw` in `consentry_snapshot_load`, and the caller gives it up.
    let snapshot = unsafe { Box::from_raw(snapshot) };
    // Dropping runs no code of ours that could panic; catch one anyway rather than unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(snapshot)));
}

/// The message of the calling thread's last failure ("" when none failed yet). Valid until the next
/// failing call on the same thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn consentry_last_error() -> *const c_char {
    LAST_ERROR.with(|slot| match &*slot.borrow() {
        Some(message) => message.as_ptr(),
        None => c"".as_ptr(),
    })
}

#[cfg(test)]
mod tests;
