//! The connection and abuse limits of the configuration: header-read and idle timeouts, the connection
//! limit, device streams, failed-authentication limiting, and the erasure's notice wait; their checks and
//! the durations the server reads. The keys stay top-level (`max_connections`, not `limits.…`), like every
//! other key, so one variable per key (`CONSENTRY_MAX_CONNECTIONS`) keeps working.

use std::time::Duration;

use super::{Config, ConfigError, within};
use crate::auth::proxies::TrustedProxies;

/// The longest interval between the comment lines that keep an event stream alive (and proxies from
/// closing it); shorter when the idle timeout asks for it.
const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);

impl Config {
    /// Checks the limits' ranges, naming the key at fault.
    pub(super) fn validate_limits(&self) -> Result<(), ConfigError> {
        within("erasure_notice_wait_secs", self.erasure_notice_wait_secs, 0..=300)?;
        within("header_read_timeout_secs", self.header_read_timeout_secs, 1..=300)?;
        within("idle_timeout_secs", self.idle_timeout_secs, 1..=3600)?;
        within("max_connections", self.max_connections, 1..=1_000_000)?;
        within("max_streams_per_device", self.max_streams_per_device, 1..=1000)?;
        within("auth_failures_burst", self.auth_failures_burst, 0..=100_000)?;
        within("auth_failures_per_minute", self.auth_failures_per_minute, 1..=60_000)?;
        within("auth_failures_max_addresses", self.auth_failures_max_addresses, 1..=10_000_000)?;
        TrustedProxies::parse(&self.trusted_proxies).map_err(|e| super::invalid("trusted_proxies", e))?;
        Ok(())
    }

    /// How long an erasure waits for the destinations to take the subject's pending messages (which name
    /// the person) before it destroys the subject's keys; what is still pending then goes out without the
    /// subject id.
    pub fn erasure_notice_wait(&self) -> Duration {
        Duration::from_secs(self.erasure_notice_wait_secs)
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed (checked by [`Config::validate`]; a list
    /// that does not parse trusts none).
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default()
    }

    /// How long a client has to send a complete request head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// How long a connection may wait for its next request, or for a client that stopped reading.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// How often an open event stream sends a keep-alive comment: at most every 15 s, and at least twice
    /// per idle timeout, so a live stream is never taken for an idle connection.
    pub fn stream_keep_alive(&self) -> Duration {
        (self.idle_timeout() / 2).min(STREAM_KEEP_ALIVE)
    }
}
