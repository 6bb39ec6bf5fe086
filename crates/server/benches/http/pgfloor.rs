//! PostgreSQL's single-transaction floor: durable one-row transactions per second of one connection to
//! the test server, each `INSERT` its own (autocommit) transaction, so each waits for its own WAL flush.
//! Sampled next to the SQLite floor before each write round, so the PostgreSQL node's rate is read against
//! its own backend's floor of the moment.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::runtime::Runtime;

use crate::floor::{FLOOR_ROW_BYTES, Floor};

/// One connection and a table of its own in the benchmark's database.
pub struct PgFloor {
    conn: PgConnection,
    payload: Vec<u8>,
    /// `synchronous_commit` and `fsync` as the server reports them: the floor means little without both.
    pub settings: String,
}

impl PgFloor {
    pub fn open(rt: &Runtime, url: &str) -> Result<Self, String> {
        let sql = |e: sqlx::Error| format!("PostgreSQL floor: {e}");
        rt.block_on(async {
            let mut conn = PgConnection::connect(url).await.map_err(sql)?;
            sqlx::query("CREATE TABLE bench_floor_rows (id BIGSERIAL PRIMARY KEY, payload BYTEA NOT NULL)")
                .execute(&mut conn)
                .await
                .map_err(sql)?;
            let show = |name: &'static str| sqlx::query_scalar::<sqlx::Postgres, String>(name);
            let synchronous = show("SHOW synchronous_commit").fetch_one(&mut conn).await.map_err(sql)?;
            let fsync = show("SHOW fsync").fetch_one(&mut conn).await.map_err(sql)?;
            let settings = format!("synchronous_commit={synchronous}, fsync={fsync}");
            Ok(Self { conn, payload: vec![0x5a_u8; FLOOR_ROW_BYTES], settings })
        })
    }

    /// Durable single-row transactions per second for `secs`.
    pub fn sample(&mut self, rt: &Runtime, secs: f64) -> Result<Floor, String> {
        let sql = |e: sqlx::Error| format!("PostgreSQL floor: {e}");
        let duration = Duration::from_secs_f64(secs);
        let mut latencies = Vec::with_capacity(1 << 14);
        let start = Instant::now();
        rt.block_on(async {
            while start.elapsed() < duration {
                let t = Instant::now();
                sqlx::query("INSERT INTO bench_floor_rows (payload) VALUES ($1)")
                    .bind(&self.payload)
                    .execute(&mut self.conn)
                    .await
                    .map_err(sql)?;
                latencies.push(t.elapsed().as_nanos() as u64);
            }
            Ok::<_, String>(())
        })?;
        let secs = start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let at = |p: f64| {
            latencies
                .get(((p / 100.0) * (latencies.len().max(1) - 1) as f64).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Ok(Floor {
            rate: latencies.len() as f64 / secs,
            p50_ms: at(50.0) as f64 / 1e6,
            p99_ms: at(99.0) as f64 / 1e6,
        })
    }
}
