//! What every hookrelay PostgreSQL store shares (feature `postgres`): schema names, pools and
//! sanitised errors.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::StoreError;

/// The schema the stores use unless told otherwise.
pub(crate) const DEFAULT_SCHEMA: &str = "public";

/// Whether `name` may be used as a schema name: `[a-z_][a-z0-9_]*`, at most 48 bytes. The
/// name is spliced into SQL (schemas cannot be bound), so nothing else is accepted.
pub(crate) fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 48
}

/// How long a call waits for a free pooled connection, by default.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `statement_timeout` of pooled connections, by default.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a pool of up to `max` connections to `url` (`postgres://user@host/db`), waiting at
/// most `acquire` for a connection, each connection with `statement_timeout` set to
/// `statement` (zero: none).
pub(crate) async fn open(
    url: &str,
    max: u32,
    acquire: Duration,
    statement: Duration,
) -> Result<PgPool, StoreError> {
    let mut options: PgConnectOptions = url
        .parse()
        .map_err(|_| StoreError::invalid_config("postgres url"))?;
    if !statement.is_zero() {
        options = options.options([("statement_timeout", statement.as_millis())]);
    }
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire)
        .connect_with(options)
        .await
        .map_err(crate::sqlx_error::from_sqlx)
}

/// [`open`] with the receive stores' pool: 8 connections, the default time-outs.
pub(crate) async fn open_default(url: &str) -> Result<PgPool, StoreError> {
    open(url, 8, ACQUIRE_TIMEOUT, STATEMENT_TIMEOUT).await
}

/// Creates `ddl` (its `{s}` standing for the quoted schema) in `schema` unless `table`
/// exists there, and the schema if it is missing, under an advisory lock named after `what`
/// so processes starting together do not race. Only what is missing is created: `IF NOT
/// EXISTS` would still need the privilege to create. Returns the quoted schema, `"name"`.
pub(crate) async fn create_missing(
    pool: &PgPool,
    schema: &str,
    what: &str,
    table: &str,
    ddl: &str,
) -> Result<String, StoreError> {
    use sqlx::Executor as _;
    let backend = crate::sqlx_error::from_sqlx;
    if !valid_schema(schema) {
        return Err(StoreError::invalid_config("schema name"));
    }
    let quoted = format!("\"{schema}\"");
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("hookrelay {what} {schema}"))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let (has_schema, has_table): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                to_regclass($2) IS NOT NULL",
    )
    .bind(schema)
    .bind(format!("{quoted}.{table}"))
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if !has_schema {
        let create = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
        tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create.as_str())))
            .await
            .map_err(backend)?;
    }
    if !has_table {
        let create = ddl.replace("{s}", &quoted);
        tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create.as_str())))
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("public"));
        assert!(valid_schema("hookrelay_t1"));
        assert!(valid_schema("_x9"));
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a\"b",
            "a;drop",
            "a b",
            &"x".repeat(49),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
