//! How long finding a subject by an identifier takes with 1,000,000 identifiers stored: the median of
//! `GET /v1/subjects?identifier=email:…` over HTTP on loopback (from the request's start to the last byte),
//! and of the store's look-up alone (`subject_by_identifier`, the blind index's primary key and the key
//! store's subject), for identifiers that exist and for ones that do not.
//!
//! The embedded store is made fresh, then seeded directly with 1,000,000 subjects, each with one identifier
//! row (a random blind index, a sealed-sized random ciphertext): the shape and size of what adding them
//! through the API leaves, without its 2,000,000 commits. Then the server opens it, 200 identifiers are
//! added through the API (their blind indexes are the server's own), and those and 200 unknown ones are
//! looked up.
//!
//! Run: `cargo bench -p consentry-server --bench identifiers` (`CONSENTRY_BENCH_IDENTIFIERS` and
//! `CONSENTRY_BENCH_ROUNDS` change the sizes). The run exits 0 whatever it measures.

use std::time::{Duration, Instant};

use consentry_server::Config;
use consentry_service::identifiers::blind_index;
use consentry_store::{StoreConfig, random_bytes};
use tokio::net::TcpListener;

const ADMIN_KEY: &str = "bench-admin-key-0123456789-abcdefghijklmn";

/// Identifiers added through the API and looked up.
const REAL: usize = 200;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p90(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `n` subjects with one identifier each straight into the data folder's two files.
fn seed(dir: &std::path::Path, n: u64) {
    let mut conn = rusqlite::Connection::open(dir.join("consentry.db")).expect("open the data file");
    conn.execute("ATTACH DATABASE ?1 AS ks", [dir.join("keys.db").to_string_lossy()]).expect("attach");
    let tx = conn.transaction().expect("transaction");
    {
        let mut key = tx
            .prepare(
                "INSERT INTO ks.subject_keys (subject, pseudonym, pseudonym_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .expect("prepare");
        let mut row = tx
            .prepare(
                "INSERT INTO identifiers (blind_index, id, pseudonym, kind, nonce, ciphertext, created_at)
                 VALUES (?1, ?2, ?3, 'email', ?4, ?5, ?6)",
            )
            .expect("prepare");
        let now = consentry_core::Timestamp::now().micros();
        for i in 0..n {
            let random: [u8; 32] = random_bytes().expect("random");
            let pseudonym = hex(&random[..16]);
            key.execute(rusqlite::params![format!("seeded-{i:07}"), pseudonym, &random[..], now])
                .expect("key");
            let index: [u8; 32] = random_bytes().expect("random");
            let nonce: [u8; 12] = random_bytes().expect("random");
            let sealed: [u8; 40] = random_bytes().expect("random");
            row.execute(rusqlite::params![
                &index[..],
                format!("idn_{i:016x}"),
                pseudonym,
                &nonce[..],
                &sealed[..],
                now
            ])
            .expect("identifier");
        }
    }
    tx.commit().expect("commit");
}

fn main() {
    let seeded = env("CONSENTRY_BENCH_IDENTIFIERS", 1_000_000);
    let rounds = env("CONSENTRY_BENCH_ROUNDS", 5).max(1) as usize;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");

    // The schema, then the seed.
    rt.block_on(async {
        let store = consentry_store::open(StoreConfig::embedded(dir.path())).await.expect("store");
        store.close().await;
    });
    let started = Instant::now();
    seed(dir.path(), seeded);
    println!("seeded {seeded} subjects with one identifier each in {:.1} s", started.elapsed().as_secs_f64());

    let config = Config {
        data: dir.path().to_path_buf(),
        bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let opened = rt.block_on(consentry_server::open(config)).expect("open");
    let state = opened.state;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let token = tokio_util::sync::CancellationToken::new();
    let server = rt.spawn(consentry_server::serve(state.clone(), listener, token.clone()));

    rt.block_on(async {
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client");
        for i in 0..REAL {
            let reply = client
                .post(format!("{base}/v1/subjects/bench-{i:04}/identifiers"))
                .bearer_auth(ADMIN_KEY)
                .json(&serde_json::json!({"type": "email", "value": format!("person-{i}@example.com")}))
                .send()
                .await
                .expect("add");
            assert_eq!(reply.status(), 201, "add an identifier");
        }
        let count: i64 = {
            let path = dir.path().join("consentry.db");
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("open");
            conn.query_row("SELECT count(*) FROM identifiers", [], |r| r.get(0)).expect("count")
        };
        println!("{count} identifiers stored");

        for (label, known) in [("known", true), ("unknown", false)] {
            let mut http = Vec::new();
            let mut store = Vec::new();
            for round in 0..rounds + 1 {
                for i in 0..REAL {
                    let email = if known {
                        format!("person-{i}@example.com")
                    } else {
                        format!("nobody-{i}@example.com")
                    };
                    let started = Instant::now();
                    let reply = client
                        .get(format!("{base}/v1/subjects"))
                        .query(&[("identifier", format!("email:{email}"))])
                        .bearer_auth(ADMIN_KEY)
                        .send()
                        .await
                        .expect("look up");
                    assert_eq!(reply.status(), 200);
                    let body: serde_json::Value = reply.json().await.expect("body");
                    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                    let found = body["subjects"].as_array().map_or(0, Vec::len);
                    assert_eq!(found, usize::from(known), "{body}");
                    // The first round warms the caches.
                    if round > 0 {
                        http.push(elapsed);
                    }
                }
            }
            // The store's look-up alone, with the index the service computes.
            for round in 0..rounds + 1 {
                for i in 0..REAL {
                    let index: [u8; 32] = if known {
                        blind_index(&state, "email", &format!("person-{i}@example.com"))
                    } else {
                        random_bytes().expect("random")
                    };
                    let started = Instant::now();
                    let found = state.store.subject_by_identifier(&index).await.expect("look up");
                    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                    assert_eq!(found.is_some(), known);
                    if round > 0 {
                        store.push(elapsed);
                    }
                }
            }
            println!(
                "{label} identifiers: GET /v1/subjects?identifier= median {:.3} ms, p90 {:.3} ms; \
                 store look-up median {:.3} ms, p90 {:.3} ms ({} look-ups each)",
                median(http.clone()),
                p90(http),
                median(store.clone()),
                p90(store),
                rounds * REAL
            );
        }
    });
    token.cancel();
    let _ = rt.block_on(server);
}
