//! Opening SQLite the way every hookrelay store wants it (feature `sqlite`): WAL, full
//! synchronous commits, a busy timeout, and sanitised errors.

use std::time::Duration;

use crate::StoreError;
use crate::sqlx_error::from_sqlx;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Opens (creating if needed) the database at `url`: WAL journal, `synchronous = FULL`,
/// 5 s busy timeout; one connection for `:memory:` (each connection would be its own
/// database), kept open for the pool's life, four otherwise.
pub(crate) async fn open(url: &str) -> Result<SqlitePool, StoreError> {
    open_with(url, SqliteSynchronous::Full, BUSY_TIMEOUT, ACQUIRE_TIMEOUT).await
}

/// How long a statement waits for another connection's write lock, by default.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free pooled connection, by default.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`open`] with another `synchronous` setting.
pub(crate) async fn open_with(
    url: &str,
    synchronous: SqliteSynchronous,
    busy_timeout: Duration,
    acquire_timeout: Duration,
) -> Result<SqlitePool, StoreError> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut options: SqliteConnectOptions = url
        .parse::<SqliteConnectOptions>()
        .map_err(|_| StoreError::invalid_config("sqlite url"))?
        .create_if_missing(true)
        .synchronous(synchronous)
        .busy_timeout(busy_timeout);
    if !memory {
        options = options.journal_mode(SqliteJournalMode::Wal);
    }
    let pool = SqlitePoolOptions::new();
    let pool = if memory {
        // The database lives as long as its one connection: never closed for idleness or
        // age.
        pool.max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool.max_connections(4)
    };
    pool.acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(from_sqlx)
}
