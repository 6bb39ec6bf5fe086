//! The single-transaction floor: durable one-row transactions per second of SQLite (WAL,
//! `synchronous=FULL`, one writer) in the data folders' filesystem. fsync latency here swings with other
//! disk traffic, so the benchmarks sample it next to each timed round and read their rates against it.

use std::path::Path;
use std::time::{Duration, Instant};

/// Payload of each floor row, about the size of a stored ledger event.
pub const FLOOR_ROW_BYTES: usize = 320;

/// One measurement of the floor.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// Transactions per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The floor's database: one table, one writer.
pub struct FloorDb {
    conn: rusqlite::Connection,
    payload: Vec<u8>,
}

impl FloorDb {
    /// A fresh database file in `dir`, checked to be in WAL mode with `synchronous=FULL`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let sql = |e: rusqlite::Error| format!("floor: {e}");
        std::fs::create_dir_all(dir).map_err(|e| format!("floor folder: {e}"))?;
        let conn = rusqlite::Connection::open(dir.join("floor.sqlite")).map_err(sql)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE rows (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);",
        )
        .map_err(sql)?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") || synchronous != 2 {
            return Err(format!("floor: journal_mode {mode}, synchronous {synchronous}; want WAL, 2 (FULL)"));
        }
        let db = Self { conn, payload: vec![0x5a_u8; FLOOR_ROW_BYTES] };
        db.sample(0.05)?;
        Ok(db)
    }

    /// Durable single-row transactions per second for `secs`: each `INSERT` its own (autocommit)
    /// transaction, so each pays one WAL fsync.
    pub fn sample(&self, secs: f64) -> Result<Floor, String> {
        let sql = |e: rusqlite::Error| format!("floor: {e}");
        let mut insert = self.conn.prepare_cached("INSERT INTO rows (payload) VALUES (?1)").map_err(sql)?;
        let duration = Duration::from_secs_f64(secs);
        let mut latencies = Vec::with_capacity(1 << 14);
        let start = Instant::now();
        while start.elapsed() < duration {
            let t = Instant::now();
            insert.execute([&self.payload]).map_err(sql)?;
            latencies.push(t.elapsed().as_nanos() as u64);
        }
        let secs = start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        Ok(Floor {
            rate: latencies.len() as f64 / secs,
            p50_ms: percentile(&latencies, 50.0) as f64 / 1e6,
            p99_ms: percentile(&latencies, 99.0) as f64 / 1e6,
        })
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}
