//! Moving consents in from another platform and out again: one change per line (JSON Lines, or CSV with
//! a documented header), the same format both ways, so an export imports into a fresh store as the same
//! current state (docs/import.md).
//!
//! * [`import`]: streams lines, checks each against the catalogue, writes them in batches through the
//!   store's group commit as events with their original time (`occurred_at`) and the actor
//!   `import:<source>`, each change at most once per `(source, source_id)`.
//! * [`export`]: streams every subject's current statements (or, with history, every event) as lines;
//!   [`jsonl`] writes each JSON line straight into the page.
//! * [`evidence`]: a line's evidence, kept encrypted under the subject's data key beside its event.
//! * [`line`]: the line format and its checks; [`csv`]: the CSV header that maps to it; [`reader`]: lines
//!   read with a bound on their length, never the whole input.

pub mod csv;
pub mod evidence;
pub mod export;
pub mod import;
mod jsonl;
pub mod line;
pub mod reader;
