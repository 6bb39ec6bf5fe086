//! Consent signals of the advertising industry: IAB Europe TCF v2.2/2.3 TC strings and IAB Tech Lab GPP
//! strings, decoded into plain values and encoded back.
//!
//! Written here rather than taken from a crate: the one Rust GPP crate decodes only, and no maintained
//! crate encodes TC strings with the disclosed-vendors and publisher segments. Both formats are small bit
//! layouts fixed by the IAB's specifications; the IAB's own test vectors are the tests (`signals/tests`).
//!
//! Decoding never panics and refuses what it cannot read exactly (a TCF v1 string, a segment that ends
//! inside a field, a bit field shorter than its declared maximum id), naming the segment and bit offset.
//! Encoding refuses values out of range, naming the field. `decode(encode(v)) == v` for every valid `v`.

pub mod apply;
mod bits;
pub mod gpp;
pub mod tcf;
mod us;

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

pub use gpp::{GppSection, GppString};
pub use tcf::{Deciseconds, PublisherRestriction, PublisherTc, TcString};
pub use us::{UsSection, UsValue, UspV1};

/// The longest string either decoder reads: real strings are a few kilobytes (a cookie holds four).
pub const MAX_STRING_LEN: usize = 65_536;

/// Which format an error is about; it picks the problem code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Tcf,
    Gpp,
}

impl Signal {
    /// The stable problem code for a string or value of this format that cannot be read or written.
    pub fn code(self) -> &'static str {
        match self {
            Self::Tcf => "invalid_tc_string",
            Self::Gpp => "invalid_gpp_string",
        }
    }
}

/// Where a signal went wrong: a bit in a segment (decoding) or a field of the values (encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Bit { segment: Cow<'static, str>, offset: usize },
    Field(Cow<'static, str>),
}

/// A string that cannot be decoded or values that cannot be encoded. Holds no part of the string itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    pub signal: Signal,
    pub place: Place,
    pub reason: Cow<'static, str>,
}

impl SignalError {
    pub(crate) fn at(
        signal: Signal,
        segment: impl Into<Cow<'static, str>>,
        offset: usize,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        let segment = match segment.into() {
            Cow::Borrowed(s) => Cow::Owned(s.to_owned()),
            owned => owned,
        };
        Self { signal, place: Place::Bit { segment, offset }, reason: reason.into() }
    }

    pub(crate) fn field(
        signal: Signal,
        field: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self { signal, place: Place::Field(field.into()), reason: reason.into() }
    }

    pub fn code(&self) -> &'static str {
        self.signal.code()
    }

    /// The same error seen from an enclosing string: a TC string inside a GPP string becomes a GPP error
    /// in section `tcfeuv2`.
    pub fn within(self, signal: Signal, prefix: &str) -> Self {
        let place = match self.place {
            Place::Bit { segment, offset } => {
                Place::Bit { segment: format!("{prefix}.{segment}").into(), offset }
            }
            Place::Field(f) => Place::Field(format!("{prefix}.{f}").into()),
        };
        Self { signal, place, reason: self.reason }
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::Bit { segment, offset } => write!(f, "segment {segment}, bit {offset}: {}", self.reason),
            Place::Field(field) => write!(f, "{field}: {}", self.reason),
        }
    }
}

impl std::error::Error for SignalError {}

/// The SHA-256 of a signal string as lower-case hex: what the ledger keeps as evidence of it.
pub fn string_sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests;
