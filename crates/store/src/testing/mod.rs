//! Test support, behind the `testing` feature so that no production build carries it: the conformance
//! suite every backend runs, a fresh PostgreSQL database per test (dropped afterwards), and the rule for
//! unreachable services (skip with a notice, or fail under `CONSENTRY_REQUIRE_SERVICES=1`) that every
//! crate's tests follow.

pub mod conformance;
pub mod downgrade;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server used by tests: `CONSENTRY_TEST_DATABASE_URL`, default the local trust-auth one.
pub fn admin_url() -> String {
    std::env::var("CONSENTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether unreachable services fail tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var("CONSENTRY_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports an unreachable service: panics under `CONSENTRY_REQUIRE_SERVICES=1`, else prints a notice.
pub fn unreachable_service(service: &str, why: &str) {
    if services_required() {
        panic!("{service} is required (CONSENTRY_REQUIRE_SERVICES=1) but unreachable: {why}");
    }
    eprintln!(
        "SKIPPED: {service} unreachable ({why}); set CONSENTRY_REQUIRE_SERVICES=1 to make this a failure"
    );
}

/// A database created for one test and dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates a fresh database, or returns `None` (after [`unreachable_service`]) when PostgreSQL is absent.
    pub async fn create() -> Option<Self> {
        let admin = admin_url();
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                unreachable_service("PostgreSQL", &e.to_string());
                return None;
            }
        };
        let name = fresh_name();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        let _ = conn.close().await;
        Some(Self::named(admin, name))
    }

    /// A new database holding a copy of this one (what a restore from a backup of it gives), dropped like
    /// any other. Nothing may be connected to this one: the copy is made once the last connection of a
    /// stopped server has gone (waiting up to 10 s).
    pub async fn copy(&self) -> Self {
        let mut conn = PgConnection::connect(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL was reachable a moment ago: {e}"));
        let name = fresh_name();
        let create = format!("CREATE DATABASE {name} TEMPLATE {}", self.name);
        let mut tries = 0;
        while let Err(e) = sqlx::query(&create).execute(&mut conn).await {
            // "source database is being accessed by other users": a pool still closing.
            tries += 1;
            assert!(tries < 100, "cannot copy a test database: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = conn.close().await;
        Self::named(self.admin.clone(), name)
    }

    fn named(admin: String, name: String) -> Self {
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Self { url: format!("{base}/{name}"), name, admin }
    }
}

/// A name no other test database has.
fn fresh_name() -> String {
    let suffix: [u8; 8] = crate::random_bytes().unwrap_or_else(|e| panic!("randomness: {e}"));
    format!("consentry_test_{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
