//! Configuration: built-in defaults, then a TOML file, then `CONSENTRY_*` variables, then command-line
//! flags, layered by `figment` into one typed [`Config`]; validated at start with messages that name the
//! offending key (or variable, or flag). `config.default.toml` at the repository root documents every key.
//!
//! Variables are handed in (not read from the process here), so that tests need no global state, and each
//! value stays text until its key asks for a number: figment's own `Env` provider guesses types from the
//! text, which would turn a phone number such as `+4930123456` into an integer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use figment::value::{Dict, Value};
use serde::{Deserialize, Deserializer, Serialize};

mod limits;
mod mail;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The data controller named on every consent receipt (the Kantara Consent Receipt's `piiControllers`
/// and `policyUrl`). The built-in values are an example: a server whose controller is named otherwise
/// must set its own address, e-mail, phone and policy URL too (see [`Controller::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Controller {
    pub name: String,
    /// Who to contact about personal data (e.g. the Data Protection Officer).
    pub contact: String,
    pub address: Address,
    pub email: String,
    pub phone: String,
    /// The controller's web site (Kantara `piiControllerUrl`).
    pub url: Option<String>,
    /// Whether the controller named acts on behalf of another (Kantara `onBehalf`).
    pub on_behalf: bool,
    /// The privacy policy that governs the consents, and says how to withdraw them (Kantara `policyUrl`).
    pub policy_url: String,
    /// Where the consent is governed, e.g. "EU" or "US-CA".
    pub jurisdiction: String,
}

/// The controller's postal address, shown on receipts as a schema.org `PostalAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    pub street_address: String,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. "DE".
    pub country: String,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            name: EXAMPLE_NAME.into(),
            contact: "Data Protection Officer".into(),
            address: Address::default(),
            email: "privacy@example.com".into(),
            phone: "+49 30 1234567".into(),
            url: None,
            on_behalf: false,
            policy_url: "https://example.com/privacy".into(),
            jurisdiction: "EU".into(),
        }
    }
}

impl Default for Address {
    fn default() -> Self {
        Self {
            street_address: "1 Example Street".into(),
            postal_code: Some("10115".into()),
            locality: Some("Berlin".into()),
            region: None,
            country: "DE".into(),
        }
    }
}

/// The name of the built-in example controller.
const EXAMPLE_NAME: &str = "Example Brand";

impl Controller {
    /// Every field a receipt needs is set, URLs are http(s), the country is a two-letter code, and a
    /// controller named otherwise than the example has none of the example's address, e-mail, phone or
    /// policy URL left: its receipts would name them.
    fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.address;
        for (key, value) in [
            ("controller.name", &self.name),
            ("controller.contact", &self.contact),
            ("controller.email", &self.email),
            ("controller.phone", &self.phone),
            ("controller.policy_url", &self.policy_url),
            ("controller.jurisdiction", &self.jurisdiction),
            ("controller.address.street_address", &a.street_address),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "must be set: every consent receipt names it"));
            }
        }
        if !(a.country.len() == 2 && a.country.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(invalid("controller.address.country", "must be an ISO 3166-1 alpha-2 code, e.g. DE"));
        }
        let web = |url: &str| {
            (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() > 8
                && url.bytes().all(|b| b.is_ascii_graphic())
        };
        if !web(&self.policy_url) {
            return Err(invalid("controller.policy_url", "must be an http:// or https:// URL"));
        }
        if self.url.as_deref().is_some_and(|u| !web(u)) {
            return Err(invalid("controller.url", "must be an http:// or https:// URL"));
        }
        if self.name == EXAMPLE_NAME {
            return Ok(());
        }
        let example = Controller::default();
        for (key, kept) in [
            ("controller.address", self.address == example.address),
            ("controller.email", self.email == example.email),
            ("controller.phone", self.phone == example.phone),
            ("controller.policy_url", self.policy_url == example.policy_url),
        ] {
            if kept {
                return Err(invalid(
                    key,
                    format!(
                        "is still the example's, but receipts name {:?} as controller: set it",
                        self.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Data folder of the embedded store.
    pub data: PathBuf,
    /// PostgreSQL URL (`postgres://...`); when set, PostgreSQL is used instead of the embedded store.
    /// Kept out of `Debug` output: it may carry a password.
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool of this node.
    pub database_max_connections: u32,
    /// Milliseconds between catch-ups from the ledger on PostgreSQL, in case a change notification was missed.
    pub catch_up_interval_ms: u64,
    pub log_format: LogFormat,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most checks in one `POST /v1/check/batch`.
    pub check_batch_max: usize,
    /// No longer has any effect: the JWS checkpoints of the ledger head it timed gave way to the
    /// transparency log's signed checkpoints. Still accepted, with a warning at start, so an old
    /// configuration keeps starting.
    pub checkpoint_interval_secs: Option<u64>,
    /// Seconds between images of the decision engine's state written to the store (only when the ledger
    /// grew; always at shutdown), from which a node starts without loading every subject.
    pub engine_image_interval_secs: u64,
    /// The controller named on receipts.
    pub controller: Controller,
    /// Seconds between runs of the job that records lapsed grants as `expire` events.
    pub expiry_interval_secs: u64,
    /// Seconds between runs of the job that marks data subject requests overdue and updates their gauges.
    pub request_sweep_interval_secs: u64,
    /// The CloudEvents `source` of every event Consentry sends. Unset: `urn:consentry:<installation id>`,
    /// which [`crate::open`] derives from the store, so that two installations feeding one consumer never
    /// share a `(source, id)` pair. Read it through [`Config::event_source`].
    pub event_source: Option<String>,
    /// The origin of the ledger's transparency log: the first line of its C2SP checkpoints and the name of
    /// its verifier keys, unique per installation. Unset: `consentry.invalid/<installation id>`, which
    /// [`crate::open`] derives from the store.
    pub tlog_origin: Option<String>,
    /// The region (ISO 3166-1 alpha-2, e.g. `DE`) whose numbering plan reads a phone identifier given
    /// without a `+` and country code. Unset: phone identifiers must be international.
    pub phone_default_region: Option<String>,
    /// Seconds a webhook has to answer before the attempt counts as failed.
    pub webhook_timeout_secs: u64,
    /// Waits before each retry of a failed delivery (milliseconds); after the last, the event is
    /// dead-lettered for that destination. Each wait gets up to 20 % random jitter. In a variable: a
    /// comma-separated list.
    #[serde(deserialize_with = "waits")]
    pub delivery_backoff_ms: Vec<u64>,
    /// Seconds the outbox keeps a message a destination may still replay (from its creation on); after
    /// that, and once every destination has passed it, the outbox sweep deletes it. 0: as soon as every
    /// destination has passed it (a replay by id or time is then refused; a dead letter still replays).
    pub outbox_retention_secs: u64,
    /// Networks (CIDRs) destinations may reach although not publicly routable (see [`crate::egress`]);
    /// empty by default, so even `localhost` is refused. In a variable: a comma-separated list.
    #[serde(deserialize_with = "crate::egress::cidr_list")]
    pub allow_private_destinations: Vec<String>,
    /// The key file holding the vault's key-encryption key, made (mode 0600) on first start when missing
    /// and `CONSENTRY_KEK` is not set. Default: `kek` in the data folder (on PostgreSQL too).
    pub kek_file: Option<PathBuf>,
    /// Largest personal data record the vault accepts, in bytes (of the payload, before base64).
    pub max_record_bytes: usize,
    /// Seconds between runs of the sweeper that deletes vault records past their retention.
    pub retention_interval_secs: u64,
    /// The vault's key-encryption key, base64 of 32 bytes. Only from the environment (`CONSENTRY_KEK`),
    /// never from a file, never printed.
    #[serde(skip)]
    pub kek: Option<String>,
    /// How long a device consent snapshot stays valid (its `exp`), in seconds; devices deny past it.
    pub device_snapshot_max_age_secs: u64,
    /// An MQTT broker (`mqtt://` or `mqtts://`) to publish each device's snapshot to, retained, at
    /// `consentry/devices/{device_id}/consent`. Kept out of `Debug` output: it may carry a password.
    pub mqtt_url: Option<String>,
    /// The address people and devices reach this service at (e.g. `https://consent.example.com`), used in
    /// preference-centre links and to mark cookies `Secure`. Default: `http://` and the listen address.
    pub public_url: Option<String>,
    /// Serve `/metrics` to anyone even when listening on a non-loopback address. Off: on such an address
    /// `/metrics` needs an API key with the `metrics` scope; see [`Config::metrics_open`].
    pub metrics_public: bool,
    /// Admin key to create on first start instead of a random one. Only from the environment
    /// (`CONSENTRY_BOOTSTRAP_ADMIN_KEY`), never from a file, never printed.
    #[serde(skip)]
    pub bootstrap_admin_key: Option<String>,
    /// How long an erasure waits for the destinations to take the subject's pending messages, naming the
    /// person, before it destroys the subject's keys; messages still pending afterwards go out without the
    /// subject id. Read it through [`Config::erasure_notice_wait`].
    pub erasure_notice_wait_secs: u64,
    /// Seconds a client has to send a complete request head: from accepting the connection, and on a
    /// kept-alive connection from the first byte of the next request. See [`limits`].
    pub header_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request, and a response may wait for a client
    /// that stopped reading, before the connection is closed.
    pub idle_timeout_secs: u64,
    /// Most connections open at once on this node; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Most consent snapshot streams (`/v1/device/consent/stream`) one device holds open on this node.
    pub max_streams_per_device: usize,
    /// Failed authentications a client address may make at once before it is limited; 0 turns the limit off.
    pub auth_failures_burst: u32,
    /// Failed authentications per minute a limited address regains.
    pub auth_failures_per_minute: u32,
    /// Most client addresses whose failures are remembered at once (the oldest are forgotten first).
    pub auth_failures_max_addresses: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client (see
    /// [`crate::auth::proxies`]); empty by default: the peer is the client. In a variable: comma-separated.
    #[serde(deserialize_with = "crate::egress::cidr_list")]
    pub trusted_proxies: Vec<String>,
    /// The SMTP server that sends verification codes: `smtp://host:port` (STARTTLS when the server offers
    /// it; `?tls=required` insists on it), or `smtps://host:port` (TLS from the start); user and password
    /// in the URL if the server asks for them. Unset: verifications are unavailable (503). Kept out of
    /// `Debug` output: it may carry a password.
    pub smtp_url: Option<String>,
    /// The sender of verification mails, e.g. `Example Brand <privacy@example.com>`; needed with `smtp_url`.
    pub smtp_from: Option<String>,
    /// The SMS gateway that sends verification codes to phone numbers: a signed POST of a JSON body
    /// ([`crate::verification::sms`]), reaching only what destinations may. Unset: phone numbers cannot be
    /// verified (503). Kept out of `Debug` output: its path may carry a token.
    pub sms_webhook_url: Option<String>,
    /// The signing secret of `sms_webhook_url` (`whsec_` + base64), needed with it.
    pub sms_webhook_secret: Option<String>,
    /// Verifications one identifier may start per hour (whether it names anyone or not).
    pub verification_per_identifier_per_hour: u32,
    /// Verifications one identifier may start per day: with five attempts at each code, this bounds how
    /// many codes anyone can guess at for one address in a day, however patiently they wait out the hour.
    pub verification_per_identifier_per_day: u32,
    /// Verifications one client address (an IPv6 address by its /64) may start per hour.
    pub verification_per_address_per_hour: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data", &self.data)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("database_max_connections", &self.database_max_connections)
            .field("catch_up_interval_ms", &self.catch_up_interval_ms)
            .field("log_format", &self.log_format)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("check_batch_max", &self.check_batch_max)
            .field("checkpoint_interval_secs", &self.checkpoint_interval_secs)
            .field("engine_image_interval_secs", &self.engine_image_interval_secs)
            .field("controller", &self.controller)
            .field("expiry_interval_secs", &self.expiry_interval_secs)
            .field("request_sweep_interval_secs", &self.request_sweep_interval_secs)
            .field("event_source", &self.event_source)
            .field("tlog_origin", &self.tlog_origin)
            .field("phone_default_region", &self.phone_default_region)
            .field("webhook_timeout_secs", &self.webhook_timeout_secs)
            .field("outbox_retention_secs", &self.outbox_retention_secs)
            .field("delivery_backoff_ms", &self.delivery_backoff_ms)
            .field("allow_private_destinations", &self.allow_private_destinations)
            .field("kek_file", &self.kek_file)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("retention_interval_secs", &self.retention_interval_secs)
            .field("kek", &self.kek.as_ref().map(|_| "<set>"))
            .field("device_snapshot_max_age_secs", &self.device_snapshot_max_age_secs)
            .field("mqtt_url", &self.mqtt_url.as_ref().map(|_| "<set>"))
            .field("public_url", &self.public_url)
            .field("metrics_public", &self.metrics_public)
            .field("bootstrap_admin_key", &self.bootstrap_admin_key.as_ref().map(|_| "<set>"))
            .field("erasure_notice_wait_secs", &self.erasure_notice_wait_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("max_streams_per_device", &self.max_streams_per_device)
            .field("auth_failures_burst", &self.auth_failures_burst)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("auth_failures_max_addresses", &self.auth_failures_max_addresses)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("smtp_from", &self.smtp_from)
            .field("sms_webhook_url", &self.sms_webhook_url.as_ref().map(|_| "<set>"))
            .field("sms_webhook_secret", &self.sms_webhook_secret.as_ref().map(|_| "<set>"))
            .field("verification_per_identifier_per_hour", &self.verification_per_identifier_per_hour)
            .field("verification_per_identifier_per_day", &self.verification_per_identifier_per_day)
            .field("verification_per_address_per_hour", &self.verification_per_address_per_hour)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./consentry-data"),
            database_url: None,
            database_max_connections: 16,
            catch_up_interval_ms: 1000,
            log_format: LogFormat::Text,
            shutdown_timeout_secs: 10,
            max_body_bytes: 4 * 1024 * 1024,
            check_batch_max: 10_000,
            checkpoint_interval_secs: None,
            engine_image_interval_secs: 300,
            controller: Controller::default(),
            expiry_interval_secs: 30,
            request_sweep_interval_secs: 60,
            event_source: None,
            tlog_origin: None,
            phone_default_region: None,
            webhook_timeout_secs: 10,
            delivery_backoff_ms: vec![5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000, 86_400_000],
            outbox_retention_secs: 7 * 86_400,
            allow_private_destinations: Vec::new(),
            kek_file: None,
            max_record_bytes: 10 * 1024 * 1024,
            retention_interval_secs: 60,
            kek: None,
            device_snapshot_max_age_secs: 86_400,
            mqtt_url: None,
            public_url: None,
            metrics_public: false,
            bootstrap_admin_key: None,
            erasure_notice_wait_secs: 5,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
            max_streams_per_device: 4,
            auth_failures_burst: 10,
            auth_failures_per_minute: 60,
            auth_failures_max_addresses: 65_536,
            trusted_proxies: Vec::new(),
            smtp_url: None,
            smtp_from: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            verification_per_identifier_per_hour: 5,
            verification_per_identifier_per_day: 10,
            verification_per_address_per_hour: 20,
        }
    }
}

/// Values given on the command line: the last layer, over the file and the environment. `None` leaves the
/// key to the layers below.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// `--database`.
    #[serde(rename = "database_url", skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `--log-format`: `text` or `json`, checked like every other value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), message: message.into() }
}

/// `value` of `key` within `range`, or an error naming both.
fn within<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(invalid(key, format!("must be between {} and {}", range.start(), range.end())))
}

/// The prefix of every configuration variable.
const PREFIX: &str = "CONSENTRY_";

/// `CONSENTRY_*` variables that are not configuration keys: read by the logger and the tests; and the
/// prefixes of those the tests and benchmarks read, so a shell set up for them still starts a server.
const NOT_SETTINGS: [&str; 2] = ["REQUIRE_SERVICES", "LOG"];
const NOT_SETTING_PREFIXES: [&str; 2] = ["TEST_", "BENCH_"];

/// Secrets taken only from the environment, never from a file or a flag.
#[derive(Default)]
struct Secrets {
    kek: Option<String>,
    bootstrap_admin_key: Option<String>,
}

impl Config {
    /// Defaults, then `file` if given, then the `CONSENTRY_*` entries of `env`, then `flags`; then
    /// validation. Each layer is checked as it is added, so an error names where the bad value came from:
    /// the file's key, the variable, or the flag.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Flags,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            let table: Dict = toml::from_str(&text)
                .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
            figment = figment.merge(Serialized::defaults(table));
            // Strict: a file says what type each value is, so "8080" where a number belongs is a mistake.
            figment.extract::<Config>().map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: explain(&e, |key| key.to_owned()),
            })?;
        }
        let mut secrets = Secrets::default();
        for (name, value) in env {
            let Some(key) = name.strip_prefix(PREFIX) else { continue };
            match key {
                "KEK" => secrets.kek = Some(value),
                "BOOTSTRAP_ADMIN_KEY" => secrets.bootstrap_admin_key = Some(value),
                _ if NOT_SETTINGS.contains(&key)
                    || NOT_SETTING_PREFIXES.iter().any(|p| key.starts_with(p)) => {}
                _ => figment = figment.merge(Serialized::default(&key_of(key), Value::from(value))),
            }
        }
        // Lossy: a variable is text, read as a number where the key is one ("16" for a u32).
        figment.extract_lossy::<Config>().map_err(|e| ConfigError::Invalid {
            key: explain_key(&e, variable_of),
            message: message_of(&e),
        })?;
        figment = figment.merge(Serialized::defaults(flags));
        let mut config: Config = figment
            .extract_lossy()
            .map_err(|e| ConfigError::Invalid { key: explain_key(&e, flag_of), message: message_of(&e) })?;
        config.kek = secrets.kek;
        config.bootstrap_admin_key = secrets.bootstrap_admin_key;
        config.normalise();
        config.validate()?;
        Ok(config)
    }

    /// An empty value means "not set", whichever layer it came from (e.g. `CONSENTRY_DATABASE_URL=`
    /// over a file's URL); a public URL loses its trailing slash.
    fn normalise(&mut self) {
        fn unset_empty(value: &mut Option<String>) {
            if value.as_deref().is_some_and(str::is_empty) {
                *value = None;
            }
        }
        unset_empty(&mut self.database_url);
        unset_empty(&mut self.mqtt_url);
        unset_empty(&mut self.kek);
        unset_empty(&mut self.controller.url);
        let address = &mut self.controller.address;
        for part in [&mut address.postal_code, &mut address.locality, &mut address.region] {
            unset_empty(part);
        }
        if let Some(url) = &mut self.public_url {
            url.truncate(url.trim_end_matches('/').len());
        }
        unset_empty(&mut self.public_url);
        unset_empty(&mut self.tlog_origin);
        unset_empty(&mut self.phone_default_region);
        unset_empty(&mut self.smtp_url);
        unset_empty(&mut self.smtp_from);
        unset_empty(&mut self.sms_webhook_url);
        unset_empty(&mut self.sms_webhook_secret);
        if self.kek_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            self.kek_file = None;
        }
    }

    /// Checks ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_limits()?;
        self.validate_mail()?;
        within("shutdown_timeout_secs", self.shutdown_timeout_secs, 1..=300)?;
        within("max_body_bytes", self.max_body_bytes, 1024..=64 * 1024 * 1024)?;
        within("check_batch_max", self.check_batch_max, 1..=100_000)?;
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid("database_url", "must be a postgres:// or postgresql:// URL"));
        }
        within("database_max_connections", self.database_max_connections, 1..=1000)?;
        within("catch_up_interval_ms", self.catch_up_interval_ms, 50..=60_000)?;
        within("expiry_interval_secs", self.expiry_interval_secs, 1..=3600)?;
        within("request_sweep_interval_secs", self.request_sweep_interval_secs, 1..=3600)?;
        if let Some(source) = &self.event_source
            && source.trim().is_empty()
        {
            return Err(invalid("event_source", "must not be empty (leave it unset for the default)"));
        }
        if let Some(origin) = &self.tlog_origin
            && !consentry_core::note::valid_name(origin)
        {
            return Err(invalid("tlog_origin", "must be a name without spaces, control characters or '+'"));
        }
        if let Some(region) = &self.phone_default_region
            && phone_region(region).is_none()
        {
            return Err(invalid("phone_default_region", "must be a region code such as DE or US"));
        }
        within("webhook_timeout_secs", self.webhook_timeout_secs, 1..=300)?;
        if self.delivery_backoff_ms.is_empty() || self.delivery_backoff_ms.len() > 50 {
            return Err(invalid("delivery_backoff_ms", "must list 1 to 50 waits"));
        }
        if self.delivery_backoff_ms.iter().any(|wait| !(1..=7 * 86_400_000).contains(wait)) {
            return Err(invalid("delivery_backoff_ms", "each wait must be between 1 and 604800000 (7 days)"));
        }
        within("outbox_retention_secs", self.outbox_retention_secs, 0..=366 * 86_400)?;
        crate::egress::AddressPolicy::parse(&self.allow_private_destinations)
            .map_err(|e| invalid("allow_private_destinations", e))?;
        if !(60..=31 * 86_400).contains(&self.device_snapshot_max_age_secs) {
            return Err(invalid("device_snapshot_max_age_secs", "must be between 60 and 2678400 (31 days)"));
        }
        if let Some(url) = &self.mqtt_url
            && !(url.starts_with("mqtt://") || url.starts_with("mqtts://"))
        {
            return Err(invalid("mqtt_url", "must be an mqtt:// or mqtts:// URL"));
        }
        within("engine_image_interval_secs", self.engine_image_interval_secs, 10..=86_400)?;
        self.controller.validate()?;
        within("max_record_bytes", self.max_record_bytes, 1..=64 * 1024 * 1024)?;
        within("retention_interval_secs", self.retention_interval_secs, 1..=86_400)?;
        if let Some(kek) = &self.kek
            && crate::vault::parse_kek(kek).is_none()
        {
            return Err(invalid("CONSENTRY_KEK", "must be the base64 of exactly 32 bytes"));
        }
        if let Some(url) = &self.public_url
            && !((url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > 8
                && !url.ends_with('/')
                && url.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid("public_url", "must be an http:// or https:// URL without a trailing slash"));
        }
        if self.data.as_os_str().is_empty() {
            return Err(invalid("data", "must name a folder"));
        }
        if let Some(key) = &self.bootstrap_admin_key
            && (key.len() < 32 || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "CONSENTRY_BOOTSTRAP_ADMIN_KEY",
                "must be 32 to 256 printable characters without spaces",
            ));
        }
        Ok(())
    }

    /// The CloudEvents `source` of every event: as configured, or the installation's own
    /// (`urn:consentry:<installation id>`) once [`crate::open`] has derived it. `urn:consentry` only for a
    /// state made without `open`.
    pub fn event_source(&self) -> &str {
        self.event_source.as_deref().unwrap_or("urn:consentry")
    }

    /// Where the vault's key file is (or is made).
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file.clone().unwrap_or_else(|| self.data.join("kek"))
    }

    /// The service's public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Whether `/metrics` is served without a credential: when `metrics_public` is set, or when the server
    /// listens on a loopback address only (nothing but this host can reach it then). Otherwise it needs an
    /// API key with the `metrics` scope: metric names and counts tell an outsider what the service does.
    pub fn metrics_open(&self) -> bool {
        self.metrics_public || self.listen.ip().is_loopback()
    }

    /// Whether people reach the service over TLS (cookies are then marked `Secure`).
    pub fn served_over_tls(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The key path a variable sets: `CONSENTRY_MAX_BODY_BYTES` → `max_body_bytes`, and the controller's
/// fields nested, `CONSENTRY_CONTROLLER_NAME` → `controller.name`,
/// `CONSENTRY_CONTROLLER_ADDRESS_COUNTRY` → `controller.address.country`.
fn key_of(variable: &str) -> String {
    let key = variable.to_ascii_lowercase();
    match key.strip_prefix("controller_") {
        Some(field) => match field.strip_prefix("address_") {
            Some(part) => format!("controller.address.{part}"),
            None => format!("controller.{field}"),
        },
        None => key,
    }
}

/// The variable that sets a key path: the inverse of [`key_of`].
fn variable_of(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The flag that sets a key.
fn flag_of(key: &str) -> String {
    match key {
        "database_url" => "--database".to_owned(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

/// The key path an extraction error is about (for an unknown key, that key), as `name` spells it.
fn explain_key(e: &figment::Error, name: impl Fn(&str) -> String) -> String {
    let mut path = e.path.clone();
    // figment's path ends at an unknown key's table, or (for some) already names the key.
    if let Kind::UnknownField(field, _) = &e.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    name(&path.join("."))
}

/// `key: message` for an extraction error.
fn explain(e: &figment::Error, name: impl Fn(&str) -> String) -> String {
    format!("{}: {}", explain_key(e, name), message_of(e))
}

/// What is wrong with a value, in words: numbers name their range, unknown keys point to the documentation.
fn message_of(e: &figment::Error) -> String {
    let largest = |expected: &str| match expected {
        "u16" => Some(u64::from(u16::MAX)),
        "u32" => Some(u64::from(u32::MAX)),
        "u64" | "usize" => Some(u64::MAX),
        _ => None,
    };
    match &e.kind {
        Kind::UnknownField(..) => "is not a known setting (see config.default.toml)".to_owned(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            match largest(expected) {
                Some(max) => format!("must be a whole number from 0 to {max}, not {}", shown(actual)),
                None => format!("{} is not valid: expected {expected}", shown(actual)),
            }
        }
        Kind::UnknownVariant(value, expected) => {
            format!("must be one of {}, not `{value}`", expected.join(", "))
        }
        other => other.to_string(),
    }
}

/// An offending value as a message shows it.
fn shown(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

/// `delivery_backoff_ms`: a list of milliseconds (a file), or the same comma-separated (a variable).
fn waits<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Waits {
        List(Vec<u64>),
        Text(String),
    }
    match Waits::deserialize(deserializer)? {
        Waits::List(list) => Ok(list),
        Waits::Text(text) => text
            .split(',')
            .map(|v| v.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| serde::de::Error::custom("must be a comma-separated list of milliseconds")),
    }
}

/// The region (`DE`, `us`) a phone number without country code is read in: `None` for a code Google's
/// libphonenumber metadata does not know.
pub fn phone_region(code: &str) -> Option<phonenumber::country::Id> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 2 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests;
