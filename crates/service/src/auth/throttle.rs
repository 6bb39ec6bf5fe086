//! Limiting failed authentication per client address, so that credentials cannot be guessed at the speed
//! of the network.
//!
//! Each address (an IPv6 address by its /64, the block one subscriber usually holds: the [`AddressBlock`]
//! every per-client limit counts by) has a token bucket:
//! it starts with `auth_failures_burst` tokens, each failed authentication takes one, and it regains
//! `auth_failures_per_minute` per minute up to the burst. While it holds less than one token the address
//! is limited: the faces refuse its requests before reading any credential, so guessing stops and a valid
//! credential from that address waits too. Failures that were already under way when the limit began
//! still take their token, so a burst of parallel guesses buys a longer wait.
//!
//! Memory is bounded: at most `auth_failures_max_addresses` addresses are remembered, in the order they
//! were first seen; a full table forgets the oldest. The check on every request is one map look-up (none
//! at all while no address is remembered). Addresses stay in memory only, never in logs or metrics.
//! Each node keeps its own table.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::proxies::AddressBlock;
use crate::config::Config;
use crate::error::Error;

/// Fully refilled buckets at the front of the table dropped per failure recorded, so that the table
/// empties as addresses go quiet without a sweep over all of it.
const FORGET_PER_FAILURE: usize = 4;

/// The longest a limited address is told to wait, however many parallel failures it piled up.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// How often, at most, the log says that addresses are being limited.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<AddressBlock, Bucket>,
    /// The remembered clients, oldest first; the same set as `buckets`' keys.
    order: VecDeque<AddressBlock>,
    /// When the log last said that addresses are being limited, and how many were since.
    warned: Option<Instant>,
    limited_since_warning: u64,
}

/// The failed-authentication limit of one node.
#[derive(Debug)]
pub struct FailureLimit {
    /// `None`: off (`auth_failures_burst = 0`).
    burst: Option<f64>,
    /// Tokens regained per second.
    rate: f64,
    max_clients: usize,
    /// How many clients the table holds, read without the lock.
    remembered: AtomicUsize,
    table: Mutex<Table>,
}

impl FailureLimit {
    pub fn new(config: &Config) -> Self {
        Self {
            burst: (config.auth_failures_burst > 0).then_some(f64::from(config.auth_failures_burst)),
            rate: f64::from(config.auth_failures_per_minute.max(1)) / 60.0,
            max_clients: config.auth_failures_max_addresses.max(1),
            remembered: AtomicUsize::new(0),
            table: Mutex::new(Table::default()),
        }
    }

    /// Whether `ip` may try a credential now: [`Error::TooManyFailedAttempts`] with the seconds to wait
    /// while it is limited.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Error> {
        let Some(burst) = self.burst else { return Ok(()) };
        if self.remembered.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = table.buckets.get(&AddressBlock::of(ip)) else { return Ok(()) };
        let tokens = self.refilled(bucket, burst, now);
        if tokens >= 1.0 {
            return Ok(());
        }
        let wait = ((1.0 - tokens) / self.rate).ceil().clamp(1.0, MAX_WAIT.as_secs_f64());
        Err(Error::TooManyFailedAttempts(wait as u64))
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let Some(burst) = self.burst else { return };
        let client = AddressBlock::of(ip);
        let mut guard = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let table = &mut *guard;
        self.forget_quiet(table, burst, now);
        let tokens = match table.buckets.get(&client) {
            Some(bucket) => self.refilled(bucket, burst, now),
            None => {
                while table.order.len() >= self.max_clients {
                    let Some(oldest) = table.order.pop_front() else { break };
                    table.buckets.remove(&oldest);
                }
                table.order.push_back(client);
                burst
            }
        };
        let floor = 1.0 - self.rate * MAX_WAIT.as_secs_f64();
        let left = (tokens - 1.0).max(floor);
        table.buckets.insert(client, Bucket { tokens: left, at: now });
        self.remembered.store(table.buckets.len(), Ordering::Relaxed);
        if tokens >= 1.0 && left < 1.0 {
            table.limited_since_warning += 1;
            if table.warned.is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY) {
                // Never the address: it is personal data.
                tracing::warn!(
                    addresses = table.limited_since_warning,
                    "client addresses limited after repeated failed authentication"
                );
                table.warned = Some(now);
                table.limited_since_warning = 0;
            }
        }
    }

    /// The tokens of `bucket` at `now`.
    fn refilled(&self, bucket: &Bucket, burst: f64, now: Instant) -> f64 {
        let regained = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        (bucket.tokens + regained).min(burst)
    }

    /// Drops a few of the oldest clients whose bucket is full again (they are as good as unknown).
    fn forget_quiet(&self, table: &mut Table, burst: f64, now: Instant) {
        for _ in 0..FORGET_PER_FAILURE {
            let Some(oldest) = table.order.front() else { break };
            let full = table.buckets.get(oldest).is_none_or(|b| self.refilled(b, burst, now) >= burst);
            if !full {
                break;
            }
            table.buckets.remove(oldest);
            table.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn limit(burst: u32, per_minute: u32, max: usize) -> FailureLimit {
        FailureLimit::new(&Config {
            auth_failures_burst: burst,
            auth_failures_per_minute: per_minute,
            auth_failures_max_addresses: max,
            ..Config::default()
        })
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn v6(text: &str) -> IpAddr {
        text.parse::<Ipv6Addr>().map(IpAddr::V6).expect("an IPv6 address")
    }

    fn wait(result: Result<(), Error>) -> Option<u64> {
        match result {
            Ok(()) => None,
            Err(e) => {
                assert_eq!(e.code(), "too_many_failed_attempts");
                e.retry_after()
            }
        }
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = limit(3, 60, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(wait(l.check(v4(1), t0)), None);
            l.failed(v4(1), t0);
        }
        assert_eq!(wait(l.check(v4(1), t0)), Some(1), "limited after the burst");
        assert_eq!(wait(l.check(v4(2), t0)), None, "another address is not");
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(wait(l.check(v4(1), t1)), None, "one attempt regained per second");
        l.failed(v4(1), t1);
        assert_eq!(wait(l.check(v4(1), t1)), Some(1));
        let later = t1 + Duration::from_secs(3);
        for _ in 0..3 {
            assert_eq!(wait(l.check(v4(1), later)), None, "the burst is regained");
            l.failed(v4(1), later);
        }
        assert_eq!(wait(l.check(v4(1), later)), Some(1));
    }

    #[test]
    fn parallel_failures_past_the_limit_lengthen_the_wait() {
        let l = limit(2, 60, 100);
        let t0 = Instant::now();
        for _ in 0..12 {
            l.failed(v4(1), t0);
        }
        assert_eq!(wait(l.check(v4(1), t0)), Some(11));
        for _ in 0..100_000 {
            l.failed(v4(1), t0);
        }
        assert_eq!(wait(l.check(v4(1), t0)), Some(3600), "the wait is bounded");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let l = limit(2, 60, 100);
        let t0 = Instant::now();
        l.failed(v6("2001:db8:1:2::1"), t0);
        l.failed(v6("2001:db8:1:2:ffff::9"), t0);
        assert!(wait(l.check(v6("2001:db8:1:2::77"), t0)).is_some(), "the same /64");
        assert_eq!(wait(l.check(v6("2001:db8:1:3::1"), t0)), None, "another /64");
        l.failed(v4(7), t0);
        l.failed(v6("::ffff:192.0.2.7"), t0);
        assert!(wait(l.check(v4(7), t0)).is_some());
    }

    #[test]
    fn memory_is_bounded_and_quiet_addresses_are_forgotten() {
        let l = limit(1, 60, 3);
        let t0 = Instant::now();
        for last in 1..=10 {
            l.failed(v4(last), t0);
        }
        let table = l.table.lock().expect("lock");
        assert_eq!((table.buckets.len(), table.order.len()), (3, 3), "capped");
        drop(table);
        assert!(wait(l.check(v4(10), t0)).is_some(), "the newest are kept");
        assert_eq!(wait(l.check(v4(1), t0)), None, "the oldest forgotten");
        l.failed(v4(20), t0 + Duration::from_secs(5));
        assert_eq!(l.table.lock().expect("lock").buckets.len(), 1, "refilled buckets are dropped");
        assert_eq!(l.remembered.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_zero_burst_turns_it_off() {
        let l = limit(0, 60, 100);
        let t0 = Instant::now();
        for _ in 0..100 {
            l.failed(v4(1), t0);
        }
        assert_eq!(wait(l.check(v4(1), t0)), None);
        assert!(l.table.lock().expect("lock").buckets.is_empty());
    }
}
