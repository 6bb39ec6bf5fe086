//! The configuration loader's tests: layers, variables, files and the messages naming a bad key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(None, env(pairs), &Flags::default())
}

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

/// `load_env(pairs)` fails with a message that starts with `start` and contains `contains`.
fn refused(pairs: &[(&str, &str)], start: &str, contains: &str) {
    let err = load_env(pairs).expect_err("refused").to_string();
    assert!(err.starts_with(start) && err.contains(contains), "{pairs:?}: {err}");
}

#[test]
fn defaults_then_env() {
    let c = load_env(&[("CONSENTRY_LISTEN", "0.0.0.0:9000"), ("PATH", "/bin")]).expect("valid");
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.data, PathBuf::from("./consentry-data"));
    assert_eq!(load_env(&[]).expect("valid"), Config::default());
}

#[test]
fn the_committed_default_file_is_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.default.toml");
    let c = Config::load(Some(&path), Vec::new(), &Flags::default()).expect("valid");
    assert_eq!(c, Config::default());
}

#[test]
fn the_committed_default_file_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.default.toml");
    let text = std::fs::read_to_string(path).expect("read");
    let documented = |key: &str| {
        text.lines().any(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")))
    };
    let defaults = serde_json::to_value(Config::default()).expect("serialise");
    let controller = serde_json::to_value(Controller::default()).expect("serialise");
    let address = serde_json::to_value(Address::default()).expect("serialise");
    for map in [&defaults, &controller, &address] {
        let tables = ["controller", "address"];
        for key in map.as_object().expect("a table").keys().filter(|k| !tables.contains(&k.as_str())) {
            assert!(documented(key), "config.default.toml does not show `{key}`");
        }
    }
    assert!(text.contains("\n[controller]\n"));
    assert!(text.contains("\n[controller.address]\n"));
}

#[test]
fn every_variable_sets_its_key() {
    let c = load_env(&[
        ("CONSENTRY_DATA", "/d"),
        ("CONSENTRY_DATABASE_URL", "postgres://db/c"),
        ("CONSENTRY_DATABASE_MAX_CONNECTIONS", " 4 "),
        ("CONSENTRY_CATCH_UP_INTERVAL_MS", "500"),
        ("CONSENTRY_LOG_FORMAT", "json"),
        ("CONSENTRY_SHUTDOWN_TIMEOUT_SECS", "2"),
        ("CONSENTRY_MAX_BODY_BYTES", "2048"),
        ("CONSENTRY_CHECK_BATCH_MAX", "7"),
        ("CONSENTRY_CHECKPOINT_INTERVAL_SECS", "9"),
        ("CONSENTRY_EVENT_SOURCE", "urn:example:crm"),
        ("CONSENTRY_EXPIRY_INTERVAL_SECS", "11"),
        ("CONSENTRY_REQUEST_SWEEP_INTERVAL_SECS", "12"),
        ("CONSENTRY_WEBHOOK_TIMEOUT_SECS", "13"),
        ("CONSENTRY_OUTBOX_RETENTION_SECS", "0"),
        ("CONSENTRY_DELIVERY_BACKOFF_MS", "3000, 6000,12000"),
        ("CONSENTRY_DEVICE_SNAPSHOT_MAX_AGE_SECS", "600"),
        ("CONSENTRY_MQTT_URL", "mqtt://127.0.0.1:1883"),
        ("CONSENTRY_CONTROLLER_NAME", "1&1"),
        ("CONSENTRY_CONTROLLER_CONTACT", "DPO"),
        ("CONSENTRY_CONTROLLER_ADDRESS_STREET_ADDRESS", "2 Road"),
        ("CONSENTRY_CONTROLLER_ADDRESS_POSTAL_CODE", "01067"),
        ("CONSENTRY_CONTROLLER_ADDRESS_LOCALITY", "Dresden"),
        ("CONSENTRY_CONTROLLER_ADDRESS_REGION", ""),
        ("CONSENTRY_CONTROLLER_ADDRESS_COUNTRY", "DE"),
        ("CONSENTRY_CONTROLLER_EMAIL", "dpo@1und1.test"),
        ("CONSENTRY_CONTROLLER_PHONE", "+4930123456"),
        ("CONSENTRY_CONTROLLER_URL", "https://1und1.test"),
        ("CONSENTRY_CONTROLLER_ON_BEHALF", "true"),
        ("CONSENTRY_CONTROLLER_POLICY_URL", "https://1und1.test/privacy"),
        ("CONSENTRY_CONTROLLER_JURISDICTION", "007"),
        ("CONSENTRY_PUBLIC_URL", "https://consent.example.com/"),
        ("CONSENTRY_KEK_FILE", "/keys/kek"),
        ("CONSENTRY_MAX_RECORD_BYTES", "100"),
        ("CONSENTRY_RETENTION_INTERVAL_SECS", "14"),
        ("CONSENTRY_ERASURE_NOTICE_WAIT_SECS", "0"),
        ("CONSENTRY_HEADER_READ_TIMEOUT_SECS", "3"),
        ("CONSENTRY_IDLE_TIMEOUT_SECS", "4"),
        ("CONSENTRY_MAX_CONNECTIONS", "50"),
        ("CONSENTRY_MAX_STREAMS_PER_DEVICE", "2"),
        ("CONSENTRY_AUTH_FAILURES_BURST", "0"),
        ("CONSENTRY_AUTH_FAILURES_PER_MINUTE", "600"),
        ("CONSENTRY_AUTH_FAILURES_MAX_ADDRESSES", "1000"),
        ("CONSENTRY_REQUIRE_SERVICES", "1"),
        ("CONSENTRY_LOG", "debug"),
        ("CONSENTRY_TEST_DATABASE_URL", "postgres://127.0.0.1/test"),
        ("CONSENTRY_BENCH_SECS", "5"),
    ])
    .expect("valid");
    assert_eq!(c.data, Path::new("/d"));
    assert_eq!(c.database_url.as_deref(), Some("postgres://db/c"));
    assert_eq!((c.database_max_connections, c.catch_up_interval_ms), (4, 500));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!((c.shutdown_timeout_secs, c.max_body_bytes, c.check_batch_max), (2, 2048, 7));
    assert_eq!((c.checkpoint_interval_secs, c.expiry_interval_secs), (Some(9), 11));
    assert_eq!((c.request_sweep_interval_secs, c.webhook_timeout_secs), (12, 13));
    assert_eq!(c.outbox_retention_secs, 0);
    assert_eq!(c.event_source(), "urn:example:crm");
    assert_eq!(c.delivery_backoff_ms, [3000, 6000, 12000]);
    assert_eq!(c.device_snapshot_max_age_secs, 600);
    assert_eq!(c.mqtt_url.as_deref(), Some("mqtt://127.0.0.1:1883"));
    // Text stays text, even where it looks like a number.
    let controller = Controller {
        name: "1&1".into(),
        contact: "DPO".into(),
        address: Address {
            street_address: "2 Road".into(),
            postal_code: Some("01067".into()),
            locality: Some("Dresden".into()),
            region: None,
            country: "DE".into(),
        },
        email: "dpo@1und1.test".into(),
        phone: "+4930123456".into(),
        url: Some("https://1und1.test".into()),
        on_behalf: true,
        policy_url: "https://1und1.test/privacy".into(),
        jurisdiction: "007".into(),
    };
    assert_eq!(c.controller, controller);
    assert_eq!(c.public_url.as_deref(), Some("https://consent.example.com"));
    assert_eq!(c.kek_path(), Path::new("/keys/kek"));
    assert_eq!((c.max_record_bytes, c.retention_interval_secs), (100, 14));
    assert_eq!(c.erasure_notice_wait(), std::time::Duration::ZERO);
    assert_eq!((c.header_read_timeout().as_secs(), c.idle_timeout().as_secs()), (3, 4));
    assert_eq!(c.stream_keep_alive(), std::time::Duration::from_secs(2), "twice per idle timeout");
    assert_eq!((c.max_connections, c.max_streams_per_device), (50, 2));
    assert_eq!(
        (c.auth_failures_burst, c.auth_failures_per_minute, c.auth_failures_max_addresses),
        (0, 600, 1000)
    );
}

#[test]
fn limits_have_strict_defaults_and_are_checked_at_load() {
    let c = Config::default();
    assert_eq!(c.erasure_notice_wait(), std::time::Duration::from_secs(5));
    assert_eq!((c.header_read_timeout_secs, c.idle_timeout_secs), (10, 60));
    assert_eq!(c.stream_keep_alive(), std::time::Duration::from_secs(15));
    assert_eq!((c.max_connections, c.max_streams_per_device), (4096, 4));
    assert_eq!((c.auth_failures_burst, c.auth_failures_per_minute), (10, 60));
    refused(
        &[("CONSENTRY_HEADER_READ_TIMEOUT_SECS", "0")],
        "header_read_timeout_secs: ",
        "between 1 and 300",
    );
    refused(&[("CONSENTRY_IDLE_TIMEOUT_SECS", "0")], "idle_timeout_secs: ", "between 1 and 3600");
    refused(&[("CONSENTRY_MAX_CONNECTIONS", "0")], "max_connections: ", "between 1 and 1000000");
    refused(&[("CONSENTRY_MAX_STREAMS_PER_DEVICE", "0")], "max_streams_per_device: ", "between 1 and 1000");
    refused(&[("CONSENTRY_AUTH_FAILURES_PER_MINUTE", "0")], "auth_failures_per_minute: ", "between 1 and");
    refused(&[("CONSENTRY_AUTH_FAILURES_MAX_ADDRESSES", "0")], "auth_failures_max_addresses: ", "between 1");
    refused(
        &[("CONSENTRY_ERASURE_NOTICE_WAIT_SECS", "301")],
        "erasure_notice_wait_secs: ",
        "between 0 and 300",
    );
    refused(&[("CONSENTRY_AUTH_FAILURES_BURST", "-1")], "CONSENTRY_AUTH_FAILURES_BURST: ", "whole number");
}

#[test]
fn metrics_are_open_on_loopback_or_when_made_public() {
    let check = |listen: &str, public: &str, open: bool| {
        let c =
            load_env(&[("CONSENTRY_LISTEN", listen), ("CONSENTRY_METRICS_PUBLIC", public)]).expect("valid");
        assert_eq!(c.metrics_open(), open, "listen {listen}, metrics_public {public}");
    };
    check("127.0.0.1:8080", "false", true);
    check("[::1]:8080", "false", true);
    check("0.0.0.0:8080", "false", false);
    check("[::]:8080", "false", false);
    check("10.1.2.3:8080", "false", false);
    check("0.0.0.0:8080", "true", true);
    check("10.1.2.3:8080", "true", true);
    assert!(!Config::default().metrics_public);
}

#[test]
fn empty_variables_unset_their_key() {
    let (_dir, path) = file("database_url = \"postgres://db/c\"\nmqtt_url = \"mqtt://m\"\n");
    let vars = env(&[
        ("CONSENTRY_DATABASE_URL", ""),
        ("CONSENTRY_MQTT_URL", ""),
        ("CONSENTRY_PUBLIC_URL", ""),
        ("CONSENTRY_KEK", ""),
        ("CONSENTRY_KEK_FILE", ""),
    ]);
    let c = Config::load(Some(&path), vars, &Flags::default()).expect("valid");
    assert_eq!((c.database_url, c.mqtt_url, c.public_url, c.kek, c.kek_file), (None, None, None, None, None));
}

#[test]
fn errors_name_the_key() {
    refused(&[("CONSENTRY_LISTEN", "nowhere")], "CONSENTRY_LISTEN: ", "socket address");
    refused(&[("CONSENTRY_MAX_BODY_BYTES", "1")], "max_body_bytes: ", "between 1024 and 67108864");
    refused(&[("CONSENTRY_LISTN", "x")], "CONSENTRY_LISTN: ", "not a known setting");
    refused(&[("CONSENTRY_CONTROLLER_NAM", "x")], "CONSENTRY_CONTROLLER_NAM: ", "not a known setting");
    refused(&[("CONSENTRY_LOG_FORMAT", "xml")], "CONSENTRY_LOG_FORMAT: ", "text, json");
    refused(&[("CONSENTRY_DELIVERY_BACKOFF_MS", "5s")], "CONSENTRY_DELIVERY_BACKOFF_MS: ", "comma-separated");
    refused(
        &[("CONSENTRY_SHUTDOWN_TIMEOUT_SECS", "ten")],
        "CONSENTRY_SHUTDOWN_TIMEOUT_SECS: ",
        "whole number",
    );
    refused(&[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", "short")], "CONSENTRY_BOOTSTRAP_ADMIN_KEY: ", "32 to 256");
    let err = load_env(&[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", "short")]).expect_err("bad");
    assert!(!err.to_string().contains("short"), "the secret is not echoed: {err}");
    let err = load_env(&[("CONSENTRY_KEK", "c2hvcnQta2V5")]).expect_err("bad");
    assert!(
        err.to_string().starts_with("CONSENTRY_KEK") && !err.to_string().contains("c2hvcnQta2V5"),
        "{err}"
    );
    let kek = format!("{}QUE=", "QUFB".repeat(10));
    let c = load_env(&[("CONSENTRY_KEK", &kek), ("CONSENTRY_DATA", "/d")]);
    assert!(c.is_ok_and(|c| c.kek.is_some() && c.kek_path() == Path::new("/d/kek")));
}

#[test]
fn numbers_out_of_their_type_are_refused_not_truncated() {
    // 2^32 + 16 would have become 16 through `as u32`.
    refused(
        &[("CONSENTRY_DATABASE_MAX_CONNECTIONS", "4294967312")],
        "CONSENTRY_DATABASE_MAX_CONNECTIONS: ",
        "0 to 4294967295",
    );
    refused(
        &[("CONSENTRY_CATCH_UP_INTERVAL_MS", "18446744073709551616")],
        "CONSENTRY_CATCH_UP_INTERVAL_MS: ",
        "0 to 18446744073709551615",
    );
    refused(&[("CONSENTRY_MAX_RECORD_BYTES", "-1")], "CONSENTRY_MAX_RECORD_BYTES: ", "whole number");
    refused(&[("CONSENTRY_EXPIRY_INTERVAL_SECS", "1.5")], "CONSENTRY_EXPIRY_INTERVAL_SECS: ", "whole number");
    refused(
        &[("CONSENTRY_DELIVERY_BACKOFF_MS", "1,18446744073709551616")],
        "CONSENTRY_DELIVERY_BACKOFF_MS: ",
        "milliseconds",
    );
    refused(&[("CONSENTRY_DELIVERY_BACKOFF_MS", "1,0")], "delivery_backoff_ms: ", "between 1 and");
    refused(
        &[("CONSENTRY_DATABASE_MAX_CONNECTIONS", "0")],
        "database_max_connections: ",
        "between 1 and 1000",
    );
    refused(
        &[("CONSENTRY_OUTBOX_RETENTION_SECS", "31622401")],
        "outbox_retention_secs: ",
        "between 0 and 31622400",
    );
    refused(
        &[("CONSENTRY_RETENTION_INTERVAL_SECS", "86401")],
        "retention_interval_secs: ",
        "between 1 and 86400",
    );
    let (_dir, path) = file("database_max_connections = 4294967312\n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(
        err.contains("c.toml: database_max_connections: must be a whole number from 0 to 4294967295"),
        "{err}"
    );
}

#[test]
fn each_layer_overrides_the_one_below() {
    let (_dir, path) = file(
        "listen = \"127.0.0.1:1\"\ndata = \"/file\"\ncheck_batch_max = 5\nlog_format = \"json\"\n\
         [controller]\nname = \"File Brand\"\nemail = \"file@example.com\"\nphone = \"+1 555 0100\"\n\
         policy_url = \"https://file.test/privacy\"\n[controller.address]\nstreet_address = \"1 File Road\"\n",
    );
    let vars = env(&[
        ("CONSENTRY_LISTEN", "127.0.0.1:2"),
        ("CONSENTRY_DATA", "/env"),
        ("CONSENTRY_CONTROLLER_NAME", "Env Brand"),
    ]);
    let flags = Flags { listen: Some(SocketAddr::from(([127, 0, 0, 1], 3))), ..Flags::default() };
    let c = Config::load(Some(&path), vars, &flags).expect("valid");
    assert_eq!(c.listen.port(), 3, "a flag beats the variable");
    assert_eq!(c.data, Path::new("/env"), "a variable beats the file");
    assert_eq!((c.check_batch_max, c.log_format), (5, LogFormat::Json), "the file beats the defaults");
    assert_eq!(c.controller.name, "Env Brand", "a variable sets one field of a table");
    assert_eq!(c.controller.email, "file@example.com", "the table's other fields stay the file's");
    assert_eq!(
        c.controller.contact, "Data Protection Officer",
        "and what the file leaves out, the defaults'"
    );
    let flags = Flags {
        data: Some("/flag".into()),
        database: Some("postgres://flag/c".into()),
        log_format: Some("text".into()),
        ..Flags::default()
    };
    let c = Config::load(Some(&path), env(&[("CONSENTRY_DATA", "/env")]), &flags).expect("valid");
    assert_eq!((c.data.as_path(), c.log_format), (Path::new("/flag"), LogFormat::Text));
    assert_eq!(c.database_url.as_deref(), Some("postgres://flag/c"));
    let flags = Flags { log_format: Some("xml".into()), ..Flags::default() };
    let err = Config::load(None, Vec::new(), &flags).expect_err("bad").to_string();
    assert!(err.starts_with("--log-format: "), "{err}");
}

#[test]
fn bad_files_are_refused_with_the_key() {
    let (_dir, path) = file("listen = \"127.0.0.1:1\"\nlisen = 3\n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(err.contains("c.toml: lisen: is not a known setting"), "{err}");
    let (_dir, path) = file("max_body_bytes = \"4096\"\n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(err.contains("max_body_bytes: must be a whole number"), "a file's types are its own: {err}");
    let (_dir, path) = file("kek = \"QUFB\"\n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(err.contains("kek: is not a known setting"), "secrets never come from a file: {err}");
    let (_dir, path) = file("listen = \n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(err.starts_with("config file ") && err.contains("line 1"), "{err}");
}

#[test]
fn the_controller_of_every_receipt_is_checked_at_start() {
    let refused = |vars: &[(&str, &str)], key: &str, message: &str| {
        let err = load_env(vars).expect_err("refused").to_string();
        assert!(err.starts_with(&format!("{key}: ")) && err.contains(message), "{key}: {err}");
    };
    for (variable, key) in [
        ("CONSENTRY_CONTROLLER_POLICY_URL", "controller.policy_url"),
        ("CONSENTRY_CONTROLLER_PHONE", "controller.phone"),
        ("CONSENTRY_CONTROLLER_EMAIL", "controller.email"),
        ("CONSENTRY_CONTROLLER_ADDRESS_STREET_ADDRESS", "controller.address.street_address"),
    ] {
        refused(&[(variable, " ")], key, "must be set: every consent receipt names it");
    }
    refused(&[("CONSENTRY_CONTROLLER_POLICY_URL", "example.com")], "controller.policy_url", "http");
    refused(&[("CONSENTRY_CONTROLLER_URL", "ftp://x.test")], "controller.url", "http");
    refused(&[("CONSENTRY_CONTROLLER_ADDRESS_COUNTRY", "Germany")], "controller.address.country", "3166");
    // A controller of one's own must not keep the example's details: its receipts would name them.
    let own = [
        ("CONSENTRY_CONTROLLER_NAME", "Acme"),
        ("CONSENTRY_CONTROLLER_EMAIL", "dpo@acme.test"),
        ("CONSENTRY_CONTROLLER_PHONE", "+1 555 0100"),
        ("CONSENTRY_CONTROLLER_POLICY_URL", "https://acme.test/privacy"),
        ("CONSENTRY_CONTROLLER_ADDRESS_STREET_ADDRESS", "1 Acme Road"),
    ];
    let c = load_env(&own).expect("a controller of one's own");
    assert_eq!((c.controller.url, c.controller.on_behalf), (None, false));
    for left_out in 1..own.len() {
        let vars: Vec<_> = own.iter().enumerate().filter(|(i, _)| *i != left_out).map(|(_, v)| *v).collect();
        let key = match own[left_out].0 {
            "CONSENTRY_CONTROLLER_ADDRESS_STREET_ADDRESS" => "controller.address".to_owned(),
            variable => format!("controller.{}", variable["CONSENTRY_CONTROLLER_".len()..].to_lowercase()),
        };
        refused(&vars, &key, "is still the example's, but receipts name \"Acme\" as controller");
    }
    // An address given as one line (the form before receipts named its parts) says what it wants.
    let (_dir, path) = file("[controller]\naddress = \"1 Road, Berlin\"\n");
    let err = Config::load(Some(&path), Vec::new(), &Flags::default()).expect_err("bad").to_string();
    assert!(err.contains("controller.address: "), "{err}");
}

#[test]
fn mail_settings_come_from_variables_and_are_checked() {
    let c = load_env(&[
        ("CONSENTRY_SMTP_URL", "smtp://user:secret@127.0.0.1:2525"),
        ("CONSENTRY_SMTP_FROM", "Example Brand <privacy@example.com>"),
        ("CONSENTRY_VERIFICATION_PER_IDENTIFIER_PER_HOUR", "3"),
        ("CONSENTRY_VERIFICATION_PER_ADDRESS_PER_HOUR", "9"),
        ("CONSENTRY_VERIFICATION_PER_IDENTIFIER_PER_DAY", "7"),
    ])
    .expect("valid");
    assert_eq!(c.verification_per_identifier_per_day, 7);
    assert_eq!(c.smtp_url.as_deref(), Some("smtp://user:secret@127.0.0.1:2525"));
    assert_eq!((c.verification_per_identifier_per_hour, c.verification_per_address_per_hour), (3, 9));
    assert!(!format!("{c:?}").contains("user:secret"), "the URL's password is not shown");
    for (pairs, key) in [
        (&[("CONSENTRY_SMTP_URL", "smtp://127.0.0.1:2525")][..], "smtp_from"),
        (
            &[("CONSENTRY_SMTP_URL", "http://mail.example.com"), ("CONSENTRY_SMTP_FROM", "a@b.example")],
            "smtp_url",
        ),
        (&[("CONSENTRY_SMTP_FROM", "not an address")], "smtp_from"),
        (&[("CONSENTRY_VERIFICATION_PER_ADDRESS_PER_HOUR", "0")], "verification_per_address_per_hour"),
        (&[("CONSENTRY_VERIFICATION_PER_IDENTIFIER_PER_DAY", "4")], "verification_per_identifier_per_day"),
    ] {
        let err = load_env(pairs).expect_err(key).to_string();
        assert!(err.starts_with(key), "{err}");
    }
}

#[test]
fn sms_and_proxy_settings_come_from_variables_and_are_checked() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let c = load_env(&[
        ("CONSENTRY_SMS_WEBHOOK_URL", "https://sms.example.com/send?token=t0ken"),
        ("CONSENTRY_SMS_WEBHOOK_SECRET", secret),
        ("CONSENTRY_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
    ])
    .expect("valid");
    assert_eq!(c.sms_webhook_url.as_deref(), Some("https://sms.example.com/send?token=t0ken"));
    assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "::1"]);
    assert!(c.trusted_proxies().trusts("10.1.2.3".parse().expect("ip")));
    let shown = format!("{c:?}");
    assert!(!shown.contains("t0ken") && !shown.contains("MfKQ9r8G"), "neither URL nor secret is shown");
    for (pairs, key) in [
        (&[("CONSENTRY_SMS_WEBHOOK_URL", "https://sms.example.com/send")][..], "sms_webhook_secret"),
        (
            &[
                ("CONSENTRY_SMS_WEBHOOK_URL", "ftp://sms.example.com"),
                ("CONSENTRY_SMS_WEBHOOK_SECRET", secret),
            ],
            "sms_webhook_url",
        ),
        (
            &[
                ("CONSENTRY_SMS_WEBHOOK_URL", "http://sms.example.com/send"),
                ("CONSENTRY_SMS_WEBHOOK_SECRET", secret),
            ],
            "sms_webhook_url",
        ),
        (&[("CONSENTRY_SMS_WEBHOOK_SECRET", "not-a-secret")], "sms_webhook_secret"),
        (&[("CONSENTRY_TRUSTED_PROXIES", "10.0.0.0/40")], "trusted_proxies"),
    ] {
        let err = load_env(pairs).expect_err(key).to_string();
        assert!(err.starts_with(key), "{err}");
    }
}
