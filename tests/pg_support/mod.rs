//! Shared by the PostgreSQL tests: the server from `HOOKRELAY_TEST_DATABASE_URL` (skipped
//! with a visible message when unset) and a fresh schema per test, so tests run in parallel.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The test server's URL, or `None` after printing why the test is skipped.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("HOOKRELAY_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to stderr, not `eprintln!`: the test harness captures the macros, and
            // a skip must be visible in a normal `cargo test` run.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: set HOOKRELAY_TEST_DATABASE_URL (e.g. \
                 postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests"
            );
            None
        }
    }
}

/// A schema name no other test (or earlier run) uses: dropped first if it exists.
pub async fn fresh_schema(url: &str, label: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "hr_{label}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    drop_schema(url, &schema).await;
    schema
}

/// Drops `schema` and everything in it.
pub async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
