//! The bit level both IAB formats share: base64url characters read and written six bits at a time,
//! fixed-width integers, Fibonacci codes, and the vendor id sets (bit field or ranges).
//!
//! The `base64` crate is not used here because these strings are not byte-aligned base64: their length is
//! a number of six-bit characters, and a section's meaning depends on the exact bit count.

use std::borrow::Cow;

use super::{Signal, SignalError};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// At most this many ids in all the id sets of one string: far above any real string (the Global Vendor
/// List has about a thousand vendors), and low enough that a crafted range list cannot exhaust memory.
pub(crate) const MAX_IDS: usize = 1 << 20;

/// How a writer pads its bits before turning them into characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Padding {
    /// To a multiple of 24 bits (whole bytes and whole characters), as the TCF libraries write.
    Traditional,
    /// To whole bytes, then to whole characters, as the GPP libraries write their own sections.
    Compressed,
}

/// Reads fields from one segment. Every error names the signal, the segment and the bit offset.
#[derive(Debug)]
pub(crate) struct Reader {
    sextets: Vec<u8>,
    pos: usize,
    signal: Signal,
    segment: &'static str,
    /// Ids read so far into sets, counted against [`MAX_IDS`].
    pub(crate) ids_read: usize,
}

impl Reader {
    /// Reads a segment's characters; `=` padding at the end is tolerated (some encoders add it).
    pub(crate) fn new(signal: Signal, segment: &'static str, text: &str) -> Result<Self, SignalError> {
        let text = text.trim_end_matches('=');
        let mut sextets = Vec::with_capacity(text.len());
        for (i, b) in text.bytes().enumerate() {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'-' | b'+' => 62,
                b'_' | b'/' => 63,
                _ => {
                    return Err(SignalError::at(signal, segment, i * 6, "a character outside base64url"));
                }
            };
            sextets.push(v);
        }
        Ok(Self { sextets, pos: 0, signal, segment, ids_read: 0 })
    }

    pub(crate) fn len(&self) -> usize {
        self.sextets.len() * 6
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.len() - self.pos
    }

    pub(crate) fn error(&self, offset: usize, reason: impl Into<Cow<'static, str>>) -> SignalError {
        SignalError::at(self.signal, self.segment, offset, reason)
    }

    fn bit(&self, i: usize) -> bool {
        (self.sextets[i / 6] >> (5 - i % 6)) & 1 == 1
    }

    /// An unsigned integer of `width` bits (at most 64), most significant bit first.
    pub(crate) fn uint(&mut self, width: usize, field: &'static str) -> Result<u64, SignalError> {
        if self.remaining() < width {
            return Err(self.error(self.pos, format!("the segment ends inside {field}")));
        }
        let mut v = 0u64;
        for i in self.pos..self.pos + width {
            v = (v << 1) | u64::from(self.bit(i));
        }
        self.pos += width;
        Ok(v)
    }

    pub(crate) fn u8(&mut self, width: usize, field: &'static str) -> Result<u8, SignalError> {
        debug_assert!(width <= 8);
        Ok(self.uint(width, field)? as u8)
    }

    pub(crate) fn u16(&mut self, width: usize, field: &'static str) -> Result<u16, SignalError> {
        debug_assert!(width <= 16);
        Ok(self.uint(width, field)? as u16)
    }

    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, SignalError> {
        Ok(self.uint(1, field)? == 1)
    }

    /// A fixed bit field of `width` bits: the ids (1-based) whose bit is set.
    pub(crate) fn bitfield(&mut self, width: usize, field: &'static str) -> Result<Vec<u16>, SignalError> {
        if self.remaining() < width {
            return Err(self.error(self.pos, format!("the segment ends inside {field}")));
        }
        let start = self.pos;
        let set: Vec<u16> = (0..width).filter(|i| self.bit(start + i)).map(|i| (i + 1) as u16).collect();
        self.pos += width;
        self.count_ids(set.len(), start)?;
        Ok(set)
    }

    /// Two letters, six bits each, `A` being 0.
    pub(crate) fn letters(&mut self, field: &'static str) -> Result<String, SignalError> {
        let at = self.pos;
        let mut out = String::with_capacity(2);
        for _ in 0..2 {
            let v = self.u8(6, field)?;
            if v > 25 {
                return Err(self.error(at, format!("{field} is not two letters A-Z")));
            }
            out.push(char::from(b'A' + v));
        }
        Ok(out)
    }

    /// A Fibonacci-coded positive integer (the code ends with two consecutive ones).
    pub(crate) fn fibonacci(&mut self, field: &'static str) -> Result<u64, SignalError> {
        let at = self.pos;
        let (mut a, mut b) = (1u64, 2u64);
        let mut value = 0u64;
        let mut last = false;
        loop {
            if self.remaining() == 0 {
                return Err(self.error(at, format!("the segment ends inside {field}")));
            }
            let bit = self.bit(self.pos);
            self.pos += 1;
            if bit && last {
                return Ok(value);
            }
            if bit {
                value =
                    value.checked_add(a).ok_or_else(|| self.error(at, format!("{field} is too large")))?;
            }
            last = bit;
            let next = a.checked_add(b).ok_or_else(|| self.error(at, format!("{field} is too large")))?;
            (a, b) = (b, next);
        }
    }

    /// Counts ids read into sets against the limit for one string.
    pub(crate) fn count_ids(&mut self, n: usize, at: usize) -> Result<(), SignalError> {
        self.ids_read = self.ids_read.saturating_add(n);
        if self.ids_read > MAX_IDS {
            return Err(self.error(at, "the string names too many ids"));
        }
        Ok(())
    }

    /// A list of 16-bit ids given as `count` (12 bits) entries of `is_range`, start and optional end, as
    /// the TCF's vendor ranges and publisher restrictions write them.
    pub(crate) fn int_ranges(&mut self, field: &'static str) -> Result<Vec<u16>, SignalError> {
        let entries = self.uint(12, field)?;
        let mut ids = Vec::new();
        for _ in 0..entries {
            let at = self.pos;
            let is_range = self.flag(field)?;
            let start = self.u16(16, field)?;
            let end = if is_range { self.u16(16, field)? } else { start };
            if start == 0 {
                return Err(self.error(at, format!("{field} names id 0")));
            }
            if end < start {
                return Err(self.error(at, format!("{field} has a range that ends before it starts")));
            }
            self.count_ids(usize::from(end - start) + 1, at)?;
            ids.extend(start..=end);
        }
        Ok(sorted(ids))
    }

    /// A list of ids given as Fibonacci-coded ranges (GPP): each entry an offset from the last id seen, and
    /// for a group its length.
    pub(crate) fn fibonacci_ranges(&mut self, field: &'static str) -> Result<Vec<u16>, SignalError> {
        let entries = self.uint(12, field)?;
        let mut ids = Vec::new();
        let mut last = 0u64;
        for _ in 0..entries {
            let at = self.pos;
            let is_group = self.flag(field)?;
            let start = last + self.fibonacci(field)?;
            let end = if is_group { start + self.fibonacci(field)? } else { start };
            if end > u64::from(u16::MAX) {
                return Err(self.error(at, format!("{field} names an id above 65535")));
            }
            self.count_ids((end - start) as usize + 1, at)?;
            ids.extend(start as u16..=end as u16);
            last = end;
        }
        Ok(sorted(ids))
    }

    /// The TCF's vendor section: `MaxVendorId` (16 bits), `IsRangeEncoding`, then a bit field of exactly
    /// `MaxVendorId` bits or a list of ranges.
    pub(crate) fn vendor_set(&mut self, field: &'static str) -> Result<Vec<u16>, SignalError> {
        let max = usize::from(self.u16(16, field)?);
        if self.flag(field)? {
            return self.int_ranges(field);
        }
        if self.remaining() < max {
            let at = self.pos;
            return Err(
                self.error(at, format!("the bit field of {field} is shorter than its maximum vendor id"))
            );
        }
        self.bitfield(max, field)
    }
}

fn sorted(mut ids: Vec<u16>) -> Vec<u16> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Writes fields of one segment. Values are checked by the caller (which knows the field names); the
/// writer only packs bits.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    bits: Vec<bool>,
}

impl Writer {
    pub(crate) fn uint(&mut self, value: u64, width: usize) {
        for i in (0..width).rev() {
            self.bits.push((value >> i) & 1 == 1);
        }
    }

    pub(crate) fn flag(&mut self, value: bool) {
        self.bits.push(value);
    }

    /// A fixed bit field of `width` bits with the given 1-based ids set (ids checked by the caller).
    pub(crate) fn bitfield(&mut self, ids: &[u16], width: usize) {
        let start = self.bits.len();
        self.bits.resize(start + width, false);
        for &id in ids {
            self.bits[start + usize::from(id) - 1] = true;
        }
    }

    pub(crate) fn letters(&mut self, two: &str) {
        for b in two.bytes() {
            self.uint(u64::from(b.to_ascii_uppercase() - b'A'), 6);
        }
    }

    pub(crate) fn fibonacci(&mut self, value: u64) {
        // The Fibonacci numbers up to `value`, then the greedy (Zeckendorf) representation, lowest first.
        let mut fibs = vec![1u64, 2];
        while let Some(next) = fibs[fibs.len() - 1].checked_add(fibs[fibs.len() - 2]) {
            if next > value {
                break;
            }
            fibs.push(next);
        }
        while fibs.last().is_some_and(|&f| f > value) {
            fibs.pop();
        }
        let mut code = vec![false; fibs.len()];
        let mut rest = value;
        for (i, f) in fibs.iter().enumerate().rev() {
            if *f <= rest {
                code[i] = true;
                rest -= f;
            }
        }
        self.bits.extend(code);
        self.bits.push(true);
    }

    /// Sorted, distinct ids as 12-bit-counted ranges of 16-bit ids (TCF).
    pub(crate) fn int_ranges(&mut self, ids: &[u16]) {
        let runs = runs(ids);
        self.uint(runs.len() as u64, 12);
        for (start, end) in runs {
            self.flag(start != end);
            self.uint(u64::from(start), 16);
            if start != end {
                self.uint(u64::from(end), 16);
            }
        }
    }

    /// Sorted, distinct ids as Fibonacci-coded ranges (GPP).
    pub(crate) fn fibonacci_ranges(&mut self, ids: &[u16]) {
        let runs = runs(ids);
        self.uint(runs.len() as u64, 12);
        let mut last = 0u64;
        for (start, end) in runs {
            self.flag(start != end);
            self.fibonacci(u64::from(start) - last);
            if start != end {
                self.fibonacci(u64::from(end - start));
            }
            last = u64::from(end);
        }
    }

    /// A TCF vendor section in whichever of the two encodings is shorter (ranges on a tie, as iabgpp-es
    /// writes it).
    pub(crate) fn vendor_set(&mut self, ids: &[u16]) {
        let max = ids.last().copied().unwrap_or(0);
        self.uint(u64::from(max), 16);
        let ranges = runs(ids);
        let range_bits = 12 + ranges.iter().map(|(s, e)| if s == e { 17 } else { 33 }).sum::<usize>();
        if range_bits <= usize::from(max) && ranges.len() < 4096 {
            self.flag(true);
            self.int_ranges(ids);
        } else {
            self.flag(false);
            self.bitfield(ids, usize::from(max));
        }
    }

    /// The characters, after padding.
    pub(crate) fn finish(mut self, padding: Padding) -> String {
        let unit = match padding {
            Padding::Traditional => 24,
            Padding::Compressed => 8,
        };
        while !self.bits.len().is_multiple_of(unit) {
            self.bits.push(false);
        }
        while !self.bits.len().is_multiple_of(6) {
            self.bits.push(false);
        }
        self.bits
            .chunks(6)
            .map(|c| char::from(ALPHABET[c.iter().fold(0usize, |v, &b| (v << 1) | usize::from(b))]))
            .collect()
    }
}

/// Sorted distinct ids as inclusive runs of consecutive ids.
pub(crate) fn runs(ids: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(id) => *end = id,
            _ => out.push((id, id)),
        }
    }
    out
}

/// Checks that a set of ids is sorted, distinct and within `1..=max`; names the field otherwise.
pub(crate) fn check_ids<T: Copy + Into<u64> + PartialOrd>(
    signal: Signal,
    field: &str,
    ids: &[T],
    max: u64,
) -> Result<(), SignalError> {
    for (i, &id) in ids.iter().enumerate() {
        let v: u64 = id.into();
        if v == 0 || v > max {
            return Err(SignalError::field(
                signal,
                field.to_owned(),
                format!("ids must lie between 1 and {max}"),
            ));
        }
        if i > 0 && ids[i - 1] >= id {
            return Err(SignalError::field(signal, field.to_owned(), "ids must be sorted and distinct"));
        }
    }
    Ok(())
}
