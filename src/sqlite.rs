//! Opening SQLite the way every hookrelay store wants it (feature `sqlite`): WAL, full
//! synchronous commits, a busy timeout, and sanitised errors.

use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Opens (creating if needed) the database at `url`: WAL journal, `synchronous = FULL`,
/// 5 s busy timeout; one connection for `:memory:` (each connection would be its own
/// database), four otherwise.
pub(crate) async fn open(url: &str) -> Result<SqlitePool, &'static str> {
    open_with(url, SqliteSynchronous::Full).await
}

/// [`open`] with another `synchronous` setting.
pub(crate) async fn open_with(
    url: &str,
    synchronous: SqliteSynchronous,
) -> Result<SqlitePool, &'static str> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut options: SqliteConnectOptions = url
        .parse::<SqliteConnectOptions>()
        .map_err(|_| "invalid sqlite url")?
        .create_if_missing(true)
        .synchronous(synchronous)
        .busy_timeout(Duration::from_secs(5));
    if !memory {
        options = options.journal_mode(SqliteJournalMode::Wal);
    }
    SqlitePoolOptions::new()
        .max_connections(if memory { 1 } else { 4 })
        .connect_with(options)
        .await
        .map_err(|e| error_kind(&e))
}

/// What went wrong, without the file paths and values sqlx errors can carry.
pub(crate) fn error_kind(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::Database(_) => "database error",
        sqlx::Error::Io(_) => "i/o error",
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => "connection pool unavailable",
        sqlx::Error::RowNotFound => "row not found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "unreadable column",
        _ => "sqlite error",
    }
}
