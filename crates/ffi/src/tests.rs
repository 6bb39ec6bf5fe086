//! The C interface called as C calls it: verification and its refusals, decisions, replacement, the error
//! messages, threads deciding during a replacement, and a check that allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;

use consentry_core::catalog::{Catalog, CatalogDocument};
use consentry_core::ledger::NewEvent;
use consentry_core::proof::{JwsKind, SigningKey};
use consentry_core::snapshot::{ConsentSnapshot, SnapshotInput};
use consentry_core::{Action, Event, Scope};

use super::*;

/// Counts the allocations of the current thread, so a test can show a call makes none.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; only a thread-local counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's layout, as GlobalAlloc requires it.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above (the system allocator) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: `ptr` came from the system allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const NOW: i64 = 1_800_000_000;

fn key(byte: u8) -> SigningKey {
    SigningKey::from_secret_with_thumbprint_kid([byte; 32])
}

fn jwks_of(key: &SigningKey) -> String {
    serde_json::to_string(&Jwks { keys: vec![key.public_jwk()] }).expect("json")
}

fn statement(seq: u64, purpose: &str, action: Action, channels: &[&str], recipients: &[&str]) -> Event {
    let list = |items: &[&str]| items.iter().map(|c| (*c).to_owned()).collect();
    Event::place(
        NewEvent {
            evidence: None,
            occurred_at: None,
            jurisdiction: None,
            purpose: purpose.into(),
            action,
            scope: Scope::new(vec![], list(channels), list(recipients)),
            notice: None,
            notice_version: None,
            notice_hash: None,
            collection_point: None,
            actor: "key:k".into(),
            expires_at: None,
        },
        seq,
        "p".into(),
        Timestamp::from_micros(0),
        String::new(),
    )
}

fn snapshot(device_id: &str, ledger_seq: u64, statements: &[Event]) -> ConsentSnapshot {
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    ConsentSnapshot::build(SnapshotInput {
        device_id,
        subject: "user-1",
        categories: &["user.device.telemetry".to_owned()],
        purposes: &["analytics".to_owned()],
        ledger_seq,
        catalog: &catalog,
        catalog_version: 1,
        statements,
        jurisdiction: None,
        child_until: None,
        issued_at: seconds(NOW),
        max_age_secs: 3600,
    })
}

fn granted(k: &SigningKey, device: &str, seq: u64) -> String {
    k.sign_jws(&snapshot(
        device,
        seq,
        &[statement(1, "analytics", Action::Grant, &["on_device"], &["brand"])],
    ))
}

fn text(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call.
    unsafe { CStr::from_ptr(consentry_last_error()) }.to_string_lossy().into_owned()
}

/// Loads through the C interface; the error code and message on failure.
fn load(jwks: &str, jws: &str, device: &str, now: i64) -> Result<*mut Snapshot, (Error, String)> {
    let (jwks, jws, device) = (text(jwks), text(jws), text(device));
    let mut out: *mut Snapshot = std::ptr::dangling_mut();
    // SAFETY: three valid C strings and a writable pointer.
    let code =
        unsafe { consentry_snapshot_load(jwks.as_ptr(), jws.as_ptr(), device.as_ptr(), now, &mut out) };
    match code {
        Error::Ok => Ok(out),
        code => {
            assert!(out.is_null(), "a failed load sets *out to NULL");
            Err((code, last_error()))
        }
    }
}

fn free(snapshot: *mut Snapshot) {
    // SAFETY: a live snapshot from `load`, used no more.
    unsafe { consentry_snapshot_free(snapshot) }
}

fn check(
    snapshot: *const Snapshot,
    purpose: &str,
    channel: Option<&str>,
    recipient: Option<&str>,
) -> Decision {
    let (purpose, category) = (text(purpose), text("user.device.telemetry"));
    let (channel, recipient) = (channel.map(text), recipient.map(text));
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    let mut out =
        Decision { allowed: true, reason: Reason::Erased, not_covered: Dimension::None, event_seq: 9 };
    // SAFETY: a live snapshot, C strings or NULL, and a writable decision.
    let code = unsafe {
        consentry_check_at(
            snapshot,
            purpose.as_ptr(),
            category.as_ptr(),
            ptr(&channel),
            ptr(&recipient),
            NOW,
            &mut out,
        )
    };
    assert_eq!(code, Error::Ok, "{}", last_error());
    out
}

fn decision(allowed: bool, reason: Reason, not_covered: Dimension, event_seq: u64) -> Decision {
    Decision { allowed, reason, not_covered, event_seq }
}

#[test]
fn a_good_snapshot_answers_as_the_rules_do() {
    let k = key(1);
    let held = load(&jwks_of(&k), &granted(&k, "dev_1", 1), "dev_1", NOW).expect("loads");
    assert_eq!(
        check(held, "analytics", Some("on_device"), Some("brand")),
        decision(true, Reason::Granted, Dimension::None, 1)
    );
    // Every recipient: more than the grant, which names the brand only.
    assert_eq!(
        check(held, "analytics", Some("on_device"), None),
        decision(false, Reason::NotCovered, Dimension::Recipient, 1)
    );
    assert_eq!(
        check(held, "analytics", Some("on_device"), Some("analytics_provider")),
        decision(false, Reason::NotCovered, Dimension::Recipient, 1)
    );
    assert_eq!(
        check(held, "analytics", Some("in_app"), Some("brand")),
        decision(false, Reason::NotCovered, Dimension::Channel, 1)
    );
    assert_eq!(
        check(held, "marketing", None, None),
        decision(false, Reason::NotCovered, Dimension::Purpose, 0)
    );
    // SAFETY: a live snapshot.
    assert_eq!(unsafe { consentry_snapshot_expires_at(held) }, NOW + 3600);
    free(held);
}

#[test]
fn a_snapshot_past_its_expiry_is_refused_or_denies() {
    let k = key(1);
    let jws = granted(&k, "dev_1", 1);
    let (code, message) = load(&jwks_of(&k), &jws, "dev_1", NOW + 3600).expect_err("expired");
    assert_eq!(code, Error::Expired);
    assert!(message.contains("expired"), "{message}");
    let held = load(&jwks_of(&k), &jws, "dev_1", NOW).expect("fresh");
    let (purpose, category, channel) = (text("analytics"), text("user.device.telemetry"), text("on_device"));
    let mut out = decision(true, Reason::Granted, Dimension::None, 0);
    // SAFETY: a live snapshot, C strings, NULL recipient, a writable decision.
    let code = unsafe {
        consentry_check_at(
            held,
            purpose.as_ptr(),
            category.as_ptr(),
            channel.as_ptr(),
            std::ptr::null(),
            NOW + 3600,
            &mut out,
        )
    };
    assert_eq!((code, out), (Error::Ok, decision(false, Reason::Expired, Dimension::None, 0)));
    free(held);
}

#[test]
fn forged_foreign_and_malformed_snapshots_are_refused() {
    let (k, attacker) = (key(1), key(2));
    let jwks = jwks_of(&k);
    let genuine = granted(&k, "dev_1", 1);
    let withdrawn =
        k.sign_jws(&snapshot("dev_1", 1, &[statement(1, "analytics", Action::Withdraw, &[], &[])]));
    let forged = {
        let mut parts: Vec<&str> = withdrawn.split('.').collect();
        parts[1] = genuine.split('.').nth(1).expect("payload");
        parts.join(".")
    };
    let impostor = SigningKey::from_secret(k.kid(), [2; 32]);
    let receipt = k.sign_jws_as(JwsKind::Receipt, &serde_json::json!({"consentReceiptID": "rcpt_1"}));
    let not_a_snapshot = k.sign_jws_as(JwsKind::DeviceSnapshot, &serde_json::json!({"events": 3}));
    // A newer server's snapshot, whose fields this library might misread: refused, never decided from.
    let newer = k.sign_jws(&ConsentSnapshot {
        v: consentry_core::snapshot::SNAPSHOT_VERSION_MAX + 1,
        ..snapshot("dev_1", 1, &[statement(1, "analytics", Action::Grant, &["on_device"], &["brand"])])
    });
    for (jws, device, expected) in [
        (forged.as_str(), "dev_1", Error::BadSignature),
        (&impostor.sign_jws(&snapshot("dev_1", 1, &[])), "dev_1", Error::BadSignature),
        (&attacker.sign_jws(&snapshot("dev_1", 1, &[])), "dev_1", Error::BadSignature),
        ("not.a.jws", "dev_1", Error::BadSignature),
        (&receipt, "dev_1", Error::WrongKind),
        (&not_a_snapshot, "dev_1", Error::NotASnapshot),
        (&newer, "dev_1", Error::NotASnapshot),
        (&genuine, "dev_2", Error::OtherDevice),
    ] {
        let (code, message) = load(&jwks, jws, device, NOW).expect_err(device);
        assert_eq!(code, expected, "{message}");
        assert!(!message.is_empty());
    }
    let (code, message) = load("{\"keys\": 3}", &genuine, "dev_1", NOW).expect_err("bad jwks");
    assert_eq!(code, Error::BadJwks);
    assert!(message.contains("JWKS"), "{message}");
}

#[test]
fn null_and_non_utf8_arguments_are_errors() {
    let k = key(1);
    let (jwks, jws, device) = (text(&jwks_of(&k)), text(&granted(&k, "dev_1", 1)), text("dev_1"));
    let mut out: *mut Snapshot = std::ptr::null_mut();
    // SAFETY: NULL where a string is required is what is being tested; the rest is valid.
    let code =
        unsafe { consentry_snapshot_load(jwks.as_ptr(), std::ptr::null(), device.as_ptr(), NOW, &mut out) };
    assert_eq!((code, out.is_null()), (Error::NullArgument, true));
    assert_eq!(last_error(), "snapshot is NULL");
    // SAFETY: a NULL `out` is what is being tested.
    let code = unsafe {
        consentry_snapshot_load(jwks.as_ptr(), jws.as_ptr(), device.as_ptr(), NOW, std::ptr::null_mut())
    };
    assert_eq!(code, Error::NullArgument);
    let latin1 = CString::new(vec![b'd', 0xE9, b'v']).expect("no NUL");
    // SAFETY: valid C strings, one of them not UTF-8.
    let code =
        unsafe { consentry_snapshot_load(jwks.as_ptr(), jws.as_ptr(), latin1.as_ptr(), NOW, &mut out) };
    assert_eq!(code, Error::InvalidUtf8);
    assert_eq!(last_error(), "device_id is not valid UTF-8");

    let held = load(&jwks_of(&k), &granted(&k, "dev_1", 1), "dev_1", NOW).expect("loads");
    let mut decision = decision(true, Reason::Granted, Dimension::None, 0);
    let purpose = text("analytics");
    // SAFETY: a NULL category is what is being tested.
    let code = unsafe {
        consentry_check(
            held,
            purpose.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            &mut decision,
        )
    };
    assert_eq!(code, Error::NullArgument);
    // SAFETY: a NULL snapshot is what is being tested.
    let code = unsafe {
        consentry_check(
            std::ptr::null(),
            purpose.as_ptr(),
            purpose.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            &mut decision,
        )
    };
    assert_eq!(code, Error::NullArgument);
    // SAFETY: NULL is allowed and ignored.
    unsafe { consentry_snapshot_free(std::ptr::null_mut()) };
    // SAFETY: NULL is answered with -1.
    assert_eq!(unsafe { consentry_snapshot_expires_at(std::ptr::null()) }, -1);
    free(held);
}

#[test]
fn an_older_snapshot_does_not_replace_a_newer_one() {
    let k = key(1);
    let jwks = jwks_of(&k);
    let withdrawn = [
        statement(1, "analytics", Action::Grant, &["on_device"], &[]),
        statement(2, "analytics", Action::Withdraw, &[], &[]),
    ];
    let held = load(&jwks, &k.sign_jws(&snapshot("dev_1", 2, &withdrawn)), "dev_1", NOW).expect("newer");
    let replayed = load(&jwks, &granted(&k, "dev_1", 1), "dev_1", NOW).expect("genuine");
    // SAFETY: two live snapshots; `replayed` is handed over.
    assert_eq!(unsafe { consentry_snapshot_replace(held, replayed) }, Error::Older);
    assert!(last_error().contains("older"), "{}", last_error());
    assert_eq!(
        check(held, "analytics", Some("on_device"), None).reason,
        Reason::Withdrawn,
        "still the newer"
    );

    let regranted = [statement(3, "analytics", Action::Grant, &["on_device"], &[])];
    let newer = load(&jwks, &k.sign_jws(&snapshot("dev_1", 3, &regranted)), "dev_1", NOW).expect("newest");
    // SAFETY: two live snapshots; `newer` is handed over.
    assert_eq!(unsafe { consentry_snapshot_replace(held, newer) }, Error::Ok);
    assert_eq!(
        check(held, "analytics", Some("on_device"), None),
        decision(true, Reason::Granted, Dimension::None, 3)
    );
    // SAFETY: NULL `newer` is refused; `held` is live.
    assert_eq!(unsafe { consentry_snapshot_replace(held, std::ptr::null_mut()) }, Error::NullArgument);
    free(held);
}

#[test]
fn a_check_allocates_nothing() {
    let k = key(1);
    let held = load(&jwks_of(&k), &granted(&k, "dev_1", 1), "dev_1", NOW).expect("loads");
    let (purpose, category, channel, recipient) =
        (text("analytics"), text("user.device.telemetry"), text("on_device"), text("brand"));
    let mut out = decision(false, Reason::Erased, Dimension::None, 0);
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..100 {
        // SAFETY: a live snapshot, C strings, a writable decision.
        let code = unsafe {
            consentry_check(
                held,
                purpose.as_ptr(),
                category.as_ptr(),
                channel.as_ptr(),
                recipient.as_ptr(),
                &mut out,
            )
        };
        assert_eq!(code, Error::Ok);
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(out, decision(true, Reason::Granted, Dimension::None, 1));
    assert_eq!(after - before, 0, "a check allocated");
    // A name of a reason is a static string.
    // SAFETY: a static NUL-terminated string.
    let name = unsafe { CStr::from_ptr(consentry_reason_name(out.reason)) };
    assert_eq!((name.to_str(), ALLOCATIONS.with(Cell::get) - after), (Ok("granted"), 0));
    free(held);
}

#[test]
fn threads_decide_while_the_snapshot_is_replaced() {
    let k = key(1);
    let jwks = jwks_of(&k);
    let held = load(&jwks, &granted(&k, "dev_1", 1), "dev_1", NOW).expect("loads");
    // Raw pointers are not Send; the address is, and the snapshot outlives the scope.
    let address = held as usize;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(move || {
                for _ in 0..500 {
                    let d = check(address as *const Snapshot, "analytics", Some("on_device"), Some("brand"));
                    assert!(matches!(d.reason, Reason::Granted | Reason::Withdrawn), "{d:?}");
                }
            });
        }
        for seq in 2..40 {
            let action = if seq % 2 == 0 { Action::Withdraw } else { Action::Grant };
            let statements = [statement(seq, "analytics", action, &["on_device"], &[])];
            let newer =
                load(&jwks, &k.sign_jws(&snapshot("dev_1", seq, &statements)), "dev_1", NOW).expect("newer");
            // SAFETY: two live snapshots; `newer` is handed over; readers only read `held`.
            assert_eq!(unsafe { consentry_snapshot_replace(held, newer) }, Error::Ok);
        }
    });
    let last = check(held, "analytics", Some("on_device"), Some("brand"));
    assert_eq!(last.reason, Reason::Granted, "the last, seq 39, grants");
    free(held);
}

#[test]
fn a_panic_becomes_an_error_code() {
    let code = guard(|| -> Result<(), Error> { panic!("a bug") });
    assert_eq!(code, Error::Panic);
    assert!(last_error().contains("panic was caught"), "{}", last_error());
    assert_eq!(guard(|| Ok(())), Error::Ok);
}

/// A household's snapshot: `consentry_check_member_at` answers for one member, `consentry_check_at` for
/// someone unrecognised by what every member allows.
#[test]
fn a_household_device_decides_per_member_and_for_anyone() {
    use consentry_core::snapshot::MemberInput;
    let k = key(1);
    let catalog = Catalog::validate(CatalogDocument::default_catalog()).expect("valid");
    let ana = [statement(1, "analytics", Action::Grant, &["on_device"], &["brand"])];
    let ben = [statement(2, "analytics", Action::Withdraw, &[], &[])];
    let input = SnapshotInput {
        device_id: "dev_1",
        subject: "",
        categories: &["user.device.telemetry".to_owned()],
        purposes: &["analytics".to_owned()],
        ledger_seq: 2,
        catalog: &catalog,
        catalog_version: 1,
        statements: &[],
        jurisdiction: None,
        child_until: None,
        issued_at: seconds(NOW),
        max_age_secs: 3600,
    };
    let members = [
        MemberInput { handle: "hm_a", statements: &ana, jurisdiction: None, child_until: None },
        MemberInput { handle: "hm_b", statements: &ben, jurisdiction: None, child_until: None },
    ];
    let jws = k.sign_jws(&ConsentSnapshot::build_household(input, "hh_1", &members));
    let held = load(&jwks_of(&k), &jws, "dev_1", NOW).expect("loads");
    let member = |handle: &str| {
        let (handle, purpose, category) = (text(handle), text("analytics"), text("user.device.telemetry"));
        let (channel, recipient) = (text("on_device"), text("brand"));
        let mut out = decision(true, Reason::Erased, Dimension::None, 9);
        // SAFETY: a live snapshot, C strings, a writable decision.
        let code = unsafe {
            consentry_check_member_at(
                held,
                handle.as_ptr(),
                purpose.as_ptr(),
                category.as_ptr(),
                channel.as_ptr(),
                recipient.as_ptr(),
                NOW,
                &mut out,
            )
        };
        assert_eq!(code, Error::Ok, "{}", last_error());
        out
    };
    assert_eq!(member("hm_a"), decision(true, Reason::Granted, Dimension::None, 1));
    assert_eq!(member("hm_b"), decision(false, Reason::Withdrawn, Dimension::None, 2));
    assert_eq!(member("user-1"), decision(false, Reason::NoConsent, Dimension::None, 0));
    assert_eq!(
        check(held, "analytics", Some("on_device"), Some("brand")),
        decision(false, Reason::Withdrawn, Dimension::None, 2),
        "someone unrecognised: the most restrictive answer"
    );
    free(held);
}
