//! The PostgreSQL the tests use: `SWITCHBOARD_TEST_POSTGRES` (a URL to a database the tests may
//! create schemas in). Without it the tests say they were skipped — unless
//! `SWITCHBOARD_REQUIRE_POSTGRES=1` (CI sets it), in which case they fail.

#![allow(
    dead_code,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_postgres::{PoolOptions, PostgresStore};

/// The test database URL, or `None` (after saying why) when the tests should be skipped.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("SWITCHBOARD_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SWITCHBOARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: SWITCHBOARD_REQUIRE_POSTGRES=1 but SWITCHBOARD_TEST_POSTGRES is not set"
            );
            eprintln!(
                "{test}: skipped — set SWITCHBOARD_TEST_POSTGRES=postgres://USER@HOST:PORT/DB to run the PostgreSQL tests"
            );
            None
        }
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh schema name, unique per process and call.
pub fn fresh_schema(tag: &str) -> String {
    format!(
        "sbt_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A migrated store in a fresh schema of the test database.
pub async fn fresh_store(url: &str, tag: &str) -> (PostgresStore, String) {
    let schema = fresh_schema(tag);
    let admin = PostgresStore::connect(url, &PoolOptions::default()).unwrap();
    admin.create_schema(&schema).await.unwrap();
    let store = PostgresStore::connect(
        url,
        &PoolOptions {
            schema: Some(schema.clone()),
            max_size: 4,
            ..PoolOptions::default()
        },
    )
    .unwrap();
    store.migrate().await.unwrap();
    (store, schema)
}

/// Drops a schema the tests made (best effort).
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(admin) = PostgresStore::connect(url, &PoolOptions::default()) {
        let _ = admin.drop_schema(schema).await;
    }
}
