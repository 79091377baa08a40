//! The inbox conformance suite on PostgreSQL (skipped, visibly, without
//! `HOOKRELAY_TEST_DATABASE_URL`), each case in a fresh schema.

use hookrelay::receive::inbox::PostgresInbox;

#[path = "support/inbox_conformance.rs"]
mod conformance;
#[path = "pg_support/mod.rs"]
mod pg_support;

async fn store(case: &str) -> Option<(PostgresInbox, String, String)> {
    let url = pg_support::database_url(case)?;
    let schema = pg_support::fresh_schema(&url, "inbox").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let store = PostgresInbox::from_pool_in(pool, &schema).await.unwrap();
    Some((store, url, schema))
}

macro_rules! on_postgres {
    ($($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            let Some((store, url, schema)) = store(stringify!($case)).await else { return };
            conformance::$case(&store).await;
            pg_support::drop_schema(&url, &schema).await;
        }
    )*};
}

on_postgres!(
    accepts_once_per_key,
    leases_and_fences,
    retries_dead_letters_and_replays,
    orders_by_key,
    lists_pages_and_purges
);

#[tokio::test]
async fn a_schema_name_that_is_not_an_identifier_is_refused() {
    let Some(url) = pg_support::database_url("inbox_schema_name") else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let err = PostgresInbox::from_pool_in(pool, "x\"; drop")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
}
