//! Configuration: built-in defaults, then a TOML file, then `CONSENTRY_*` variables; validated at start
//! with messages that name the offending key. `config.default.toml` at the repository root documents
//! every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The data controller named on every consent receipt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Controller {
    pub name: String,
    /// Who to contact about personal data (e.g. the Data Protection Officer).
    pub contact: String,
    pub address: String,
    pub email: String,
    pub phone: Option<String>,
    pub url: Option<String>,
    /// Where the consent is governed, e.g. "EU" or "US-CA".
    pub jurisdiction: String,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            name: "Example Brand".into(),
            contact: "Data Protection Officer".into(),
            address: "1 Example Street, 10115 Berlin, Germany".into(),
            email: "privacy@example.com".into(),
            phone: None,
            url: None,
            jurisdiction: "EU".into(),
        }
    }
}

#[derive(Clone, Deserialize)]
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
    /// Seconds between signed checkpoints of the ledger head (taken only when the ledger changed).
    pub checkpoint_interval_secs: u64,
    /// The controller named on receipts.
    pub controller: Controller,
    /// Seconds between runs of the job that records lapsed grants as `expire` events.
    pub expiry_interval_secs: u64,
    /// Seconds between runs of the job that marks data subject requests overdue and updates their gauges.
    pub request_sweep_interval_secs: u64,
    /// The CloudEvents `source` of every event Consentry sends.
    pub event_source: String,
    /// Seconds a webhook has to answer before the attempt counts as failed.
    pub webhook_timeout_secs: u64,
    /// Waits before each retry of a failed delivery (milliseconds); after the last, the event is
    /// dead-lettered for that destination. Each wait gets up to 20 % random jitter.
    pub delivery_backoff_ms: Vec<u64>,
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
    /// Admin key to create on first start instead of a random one. Only from the environment
    /// (`CONSENTRY_BOOTSTRAP_ADMIN_KEY`), never from a file, never printed.
    #[serde(skip)]
    pub bootstrap_admin_key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data", &self.data)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("database_max_connections", &self.database_max_connections)
            .field("log_format", &self.log_format)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("check_batch_max", &self.check_batch_max)
            .field("checkpoint_interval_secs", &self.checkpoint_interval_secs)
            .field("controller", &self.controller)
            .field("expiry_interval_secs", &self.expiry_interval_secs)
            .field("request_sweep_interval_secs", &self.request_sweep_interval_secs)
            .field("event_source", &self.event_source)
            .field("webhook_timeout_secs", &self.webhook_timeout_secs)
            .field("delivery_backoff_ms", &self.delivery_backoff_ms)
            .field("kek_file", &self.kek_file)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("retention_interval_secs", &self.retention_interval_secs)
            .field("kek", &self.kek.as_ref().map(|_| "<set>"))
            .field("device_snapshot_max_age_secs", &self.device_snapshot_max_age_secs)
            .field("mqtt_url", &self.mqtt_url.as_ref().map(|_| "<set>"))
            .field("public_url", &self.public_url)
            .field("bootstrap_admin_key", &self.bootstrap_admin_key.as_ref().map(|_| "<set>"))
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
            checkpoint_interval_secs: 60,
            controller: Controller::default(),
            expiry_interval_secs: 30,
            request_sweep_interval_secs: 60,
            event_source: "urn:consentry".into(),
            webhook_timeout_secs: 10,
            delivery_backoff_ms: vec![5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000, 86_400_000],
            kek_file: None,
            max_record_bytes: 10 * 1024 * 1024,
            retention_interval_secs: 60,
            kek: None,
            device_snapshot_max_age_secs: 86_400,
            mqtt_url: None,
            public_url: None,
            bootstrap_admin_key: None,
        }
    }
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

impl Config {
    /// Defaults, then `file` if given, then the `CONSENTRY_*` entries of `env`; then validation.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?
            }
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("CONSENTRY_") else { continue };
            config.set_from_env(key, &value)?;
        }
        config.validate()?;
        Ok(config)
    }

    fn set_from_env(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let var = format!("CONSENTRY_{key}");
        let number = |v: &str| v.trim().parse::<u64>().map_err(|_| invalid(&var, "must be a whole number"));
        match key {
            "LISTEN" => {
                self.listen =
                    value.parse().map_err(|_| invalid(&var, "must be an address such as 127.0.0.1:8080"))?;
            }
            "DATA" => self.data = PathBuf::from(value),
            "DATABASE_URL" => self.database_url = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "DATABASE_MAX_CONNECTIONS" => self.database_max_connections = number(value)? as u32,
            "CATCH_UP_INTERVAL_MS" => self.catch_up_interval_ms = number(value)?,
            "LOG_FORMAT" => {
                self.log_format = match value {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(invalid(&var, "must be `text` or `json`")),
                };
            }
            "SHUTDOWN_TIMEOUT_SECS" => self.shutdown_timeout_secs = number(value)?,
            "MAX_BODY_BYTES" => self.max_body_bytes = number(value)? as usize,
            "CHECK_BATCH_MAX" => self.check_batch_max = number(value)? as usize,
            "CHECKPOINT_INTERVAL_SECS" => self.checkpoint_interval_secs = number(value)?,
            "EVENT_SOURCE" => self.event_source = value.to_owned(),
            "EXPIRY_INTERVAL_SECS" => self.expiry_interval_secs = number(value)?,
            "REQUEST_SWEEP_INTERVAL_SECS" => self.request_sweep_interval_secs = number(value)?,
            "WEBHOOK_TIMEOUT_SECS" => self.webhook_timeout_secs = number(value)?,
            "DELIVERY_BACKOFF_MS" => {
                self.delivery_backoff_ms = value
                    .split(',')
                    .map(|v| v.trim().parse::<u64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| invalid(&var, "must be a comma-separated list of milliseconds"))?;
            }
            "DEVICE_SNAPSHOT_MAX_AGE_SECS" => self.device_snapshot_max_age_secs = number(value)?,
            "MQTT_URL" => self.mqtt_url = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "CONTROLLER_NAME" => self.controller.name = value.to_owned(),
            "CONTROLLER_CONTACT" => self.controller.contact = value.to_owned(),
            "CONTROLLER_ADDRESS" => self.controller.address = value.to_owned(),
            "CONTROLLER_EMAIL" => self.controller.email = value.to_owned(),
            "CONTROLLER_PHONE" => self.controller.phone = Some(value.to_owned()),
            "CONTROLLER_URL" => self.controller.url = Some(value.to_owned()),
            "CONTROLLER_JURISDICTION" => self.controller.jurisdiction = value.to_owned(),
            "PUBLIC_URL" => {
                self.public_url = Some(value.trim_end_matches('/').to_owned()).filter(|v| !v.is_empty())
            }
            "BOOTSTRAP_ADMIN_KEY" => self.bootstrap_admin_key = Some(value.to_owned()),
            "KEK" => self.kek = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "KEK_FILE" => self.kek_file = Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty()),
            "MAX_RECORD_BYTES" => self.max_record_bytes = number(value)? as usize,
            "RETENTION_INTERVAL_SECS" => self.retention_interval_secs = number(value)?,
            // Variables read elsewhere (e.g. by tests) are not configuration keys.
            "REQUIRE_SERVICES" | "LOG" => {}
            _ => return Err(invalid(&var, "is not a known setting (see config.default.toml)")),
        }
        Ok(())
    }

    /// Checks ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=300).contains(&self.shutdown_timeout_secs) {
            return Err(invalid("shutdown_timeout_secs", "must be between 1 and 300"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid("max_body_bytes", "must be between 1024 and 67108864"));
        }
        if !(1..=100_000).contains(&self.check_batch_max) {
            return Err(invalid("check_batch_max", "must be between 1 and 100000"));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid("database_url", "must be a postgres:// or postgresql:// URL"));
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            return Err(invalid("database_max_connections", "must be between 1 and 1000"));
        }
        if !(50..=60_000).contains(&self.catch_up_interval_ms) {
            return Err(invalid("catch_up_interval_ms", "must be between 50 and 60000"));
        }
        if !(1..=3600).contains(&self.expiry_interval_secs) {
            return Err(invalid("expiry_interval_secs", "must be between 1 and 3600"));
        }
        if !(1..=3600).contains(&self.request_sweep_interval_secs) {
            return Err(invalid("request_sweep_interval_secs", "must be between 1 and 3600"));
        }
        if self.event_source.trim().is_empty() {
            return Err(invalid("event_source", "must not be empty"));
        }
        if !(1..=300).contains(&self.webhook_timeout_secs) {
            return Err(invalid("webhook_timeout_secs", "must be between 1 and 300"));
        }
        if self.delivery_backoff_ms.is_empty() || self.delivery_backoff_ms.len() > 50 {
            return Err(invalid("delivery_backoff_ms", "must list 1 to 50 waits"));
        }
        if !(60..=31 * 86_400).contains(&self.device_snapshot_max_age_secs) {
            return Err(invalid("device_snapshot_max_age_secs", "must be between 60 and 2678400 (31 days)"));
        }
        if let Some(url) = &self.mqtt_url
            && !(url.starts_with("mqtt://") || url.starts_with("mqtts://"))
        {
            return Err(invalid("mqtt_url", "must be an mqtt:// or mqtts:// URL"));
        }
        if !(1..=3600).contains(&self.checkpoint_interval_secs) {
            return Err(invalid("checkpoint_interval_secs", "must be between 1 and 3600"));
        }
        for (key, value) in [
            ("controller.name", &self.controller.name),
            ("controller.contact", &self.controller.contact),
            ("controller.address", &self.controller.address),
            ("controller.email", &self.controller.email),
            ("controller.jurisdiction", &self.controller.jurisdiction),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "must not be empty: it is printed on every consent receipt"));
            }
        }
        if !(1..=64 * 1024 * 1024).contains(&self.max_record_bytes) {
            return Err(invalid("max_record_bytes", "must be between 1 and 67108864"));
        }
        if !(1..=86_400).contains(&self.retention_interval_secs) {
            return Err(invalid("retention_interval_secs", "must be between 1 and 86400"));
        }
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

    /// Where the vault's key file is (or is made).
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file.clone().unwrap_or_else(|| self.data.join("kek"))
    }

    /// The service's public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Whether people reach the service over TLS (cookies are then marked `Secure`).
    pub fn served_over_tls(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_then_env() {
        let c = Config::load(None, env(&[("CONSENTRY_LISTEN", "0.0.0.0:9000"), ("PATH", "/bin")]))
            .expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data, PathBuf::from("./consentry-data"));
    }

    #[test]
    fn the_committed_default_file_is_valid_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.default.toml");
        let c = Config::load(Some(&path), Vec::new()).expect("valid");
        let d = Config::default();
        assert_eq!((c.listen, c.data, c.max_body_bytes), (d.listen, d.data, d.max_body_bytes));
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::load(None, env(&[("CONSENTRY_LISTEN", "nowhere")])).expect_err("bad");
        assert!(err.to_string().starts_with("CONSENTRY_LISTEN"), "{err}");
        let err = Config::load(None, env(&[("CONSENTRY_MAX_BODY_BYTES", "1")])).expect_err("bad");
        assert!(err.to_string().starts_with("max_body_bytes"), "{err}");
        let err = Config::load(None, env(&[("CONSENTRY_LISTN", "x")])).expect_err("bad");
        assert!(err.to_string().contains("not a known setting"), "{err}");
        let err = Config::load(None, env(&[("CONSENTRY_BOOTSTRAP_ADMIN_KEY", "short")])).expect_err("bad");
        assert!(!err.to_string().contains("short"), "the secret is not echoed: {err}");
        let err = Config::load(None, env(&[("CONSENTRY_KEK", "c2hvcnQta2V5")])).expect_err("bad");
        assert!(
            err.to_string().starts_with("CONSENTRY_KEK") && !err.to_string().contains("c2hvcnQta2V5"),
            "{err}"
        );
        let kek = format!("{}QUE=", "QUFB".repeat(10));
        let c = Config::load(None, env(&[("CONSENTRY_KEK", &kek), ("CONSENTRY_DATA", "/d")]));
        assert!(c.is_ok_and(|c| c.kek.is_some() && c.kek_path() == Path::new("/d/kek")));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisen = 3\n").expect("write");
        let err = Config::load(Some(&path), Vec::new()).expect_err("bad");
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
