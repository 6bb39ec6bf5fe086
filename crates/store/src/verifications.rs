//! Verifications of people without a token: someone claims an identifier (an e-mail address), a 6-digit
//! code is sent to it, and whoever brings the code back gets a token for the person the identifier names.
//!
//! A row is kept for every start, whether the identifier names anyone or not (so nothing at rest or in an
//! answer tells the two apart), and holds no identifier and no code: the identifier's **blind index**, a
//! keyed hash of the client address, and a keyed hash of the code (the keys live in the key store). A row is
//! live until it expires, is used once, or runs out of attempts; rows are dropped in passing once they are
//! older than the rate limits' window. Starts are counted per identifier and per client address over that
//! window, in the shared store, so the limits hold across nodes.

use async_trait::async_trait;
use consentry_core::Timestamp;

use crate::common::random_bytes;
use crate::error::Result;

/// A verification to store. `Debug` shows none of the hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct NewVerification {
    /// Unique; see [`new_verification_id`].
    pub id: String,
    /// The blind index of the identifier claimed (the identifiers' own, see [`crate::identifiers`]).
    pub identifier_index: [u8; 32],
    /// A keyed hash of the client's address (its /64 for IPv6).
    pub client_index: [u8; 32],
    /// A keyed hash of the code sent; random bytes that no code hashes to when nothing was sent.
    pub code_hash: [u8; 32],
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewVerification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVerification").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The limits a start is checked against: at most `per_identifier` starts for one identifier and
/// `per_client` from one client address since `since`, and at most `per_identifier_per_day` starts for
/// one identifier since `day_since` (which is not after `since`; rows older than it are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimits {
    pub per_identifier: u32,
    pub per_client: u32,
    pub since: Timestamp,
    pub per_identifier_per_day: u32,
    pub day_since: Timestamp,
}

impl StartLimits {
    /// What a start refused by these limits answers: the limit `count` of starts since `window_start`
    /// was reached, the oldest of them made at `oldest`, so the limit eases when that one is as old as
    /// the window (`created_at - window_start`).
    pub fn eases(oldest: Option<i64>, window_start: Timestamp, created_at: Timestamp) -> Timestamp {
        let oldest = oldest.unwrap_or(window_start.micros());
        Timestamp::from_micros(
            oldest.saturating_add(created_at.micros().saturating_sub(window_start.micros())),
        )
    }
}

/// What [`VerificationStore::start_verification`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Stored,
    /// Nothing stored: the identifier had as many starts as it may in the hour or in the day; the limit
    /// eases at `until`.
    IdentifierLimited {
        until: Timestamp,
    },
    /// Nothing stored: the client address had as many starts as it may; the limit eases at `until`.
    ClientLimited {
        until: Timestamp,
    },
}

impl Started {
    /// When a refusal eases (`None` for a stored start).
    pub fn until(&self) -> Option<Timestamp> {
        match self {
            Started::Stored => None,
            Started::IdentifierLimited { until } | Started::ClientLimited { until } => Some(*until),
        }
    }

    /// The refusal of a start that reached every limit in `reached` (each with when it eases): the one
    /// that eases last, since the start stays refused until all of them ease; `Stored` when none was reached.
    pub fn refusal(reached: impl IntoIterator<Item = Started>) -> Started {
        reached.into_iter().max_by_key(Started::until).unwrap_or(Started::Stored)
    }
}

/// A live verification, after one more attempt was counted against it.
#[derive(Clone, PartialEq, Eq)]
pub struct Attempt {
    pub identifier_index: [u8; 32],
    pub code_hash: [u8; 32],
    /// Attempts made, this one included.
    pub attempts: u32,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("attempts", &self.attempts).finish_non_exhaustive()
    }
}

/// What [`VerificationStore::attempt_verification`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// No such verification (never made, or dropped after the window).
    Missing,
    /// Expired, used, or out of attempts: it confirms nothing any more.
    Ended,
    Live(Attempt),
}

/// A fresh verification id: `ver_` and 128 random bits in hex.
pub fn new_verification_id() -> Result<String> {
    Ok(format!("ver_{}", random_bytes::<16>()?.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Storage of verifications, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait VerificationStore: Send + Sync {
    /// Stores `verification` unless the identifier or the client address already made as many starts as
    /// `limits` allow (checked and stored atomically, across nodes). Rows created before `limits.since`
    /// are dropped in passing.
    async fn start_verification(&self, verification: NewVerification, limits: StartLimits)
    -> Result<Started>;

    /// Counts one attempt against verification `id` if it is live at `now` (not expired, not used, fewer
    /// than `max_attempts` made) and returns it; of concurrent attempts, no more than `max_attempts` in all
    /// see it live.
    async fn attempt_verification(&self, id: &str, now: Timestamp, max_attempts: u32) -> Result<Attempted>;

    /// Marks verification `id` used at `now`; true if this call did (a verification is used once).
    async fn finish_verification(&self, id: &str, now: Timestamp) -> Result<bool>;
}
