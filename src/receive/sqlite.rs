//! The idempotency store in SQLite, for receivers that restart or run several workers on one
//! host.

use sqlx::sqlite::SqlitePool;

use super::idempotency::{Claim, IdempotencyKey, IdempotencyStore, Retention, StoreError, expiry};
use crate::Timestamp;

/// The table, created if missing.
const SCHEMA: &str = include_str!("../send/store/migrations/sqlite/idempotency.sql");

/// Idempotency records in an SQLite table, `hookrelay_idempotency`.
///
/// Claims are a single atomic upsert, so concurrent requests (or processes sharing the file)
/// get exactly one [`Claim::Acquired`]. Expired rows are reused in place and swept with
/// [`sweep`](Self::sweep).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use hookrelay::receive::{Claim, IdempotencyKey, IdempotencyStore, Retention, SqliteIdempotencyStore};
/// use hookrelay::Timestamp;
///
/// let store = SqliteIdempotencyStore::connect("sqlite::memory:").await?;
/// let key = IdempotencyKey::new("evt_123456");
/// let now = Timestamp::from_unix(1_700_000_000);
/// assert_eq!(store.claim(&key, now, Retention::default()).await?, Claim::Acquired);
/// store.complete(&key, now, Retention::default()).await?;
/// assert_eq!(store.claim(&key, now, Retention::default()).await?, Claim::Done);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[derive(Debug, Clone)]
pub struct SqliteIdempotencyStore {
    pool: SqlitePool,
}

fn backend(err: sqlx::Error) -> StoreError {
    crate::sqlx_error::from_sqlx(err)
}

impl SqliteIdempotencyStore {
    /// Opens (creating if needed) the database at `url`, e.g. `sqlite://hooks.db` or
    /// `sqlite::memory:` (WAL, `synchronous = FULL`), and creates the table. To share one
    /// pool with the delivery store, open it once and use [`from_pool`](Self::from_pool).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = crate::sqlite::open(url).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool and creates the table if it is missing.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    /// Deletes expired records; returns how many were removed.
    pub async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM hookrelay_idempotency WHERE expires_at <= ?1")
            .bind(now.as_unix())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

impl IdempotencyStore for SqliteIdempotencyStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<Claim, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO hookrelay_idempotency (key, state, expires_at) VALUES (?1, 'in_flight', ?2)
             ON CONFLICT(key) DO UPDATE SET state = 'in_flight', expires_at = excluded.expires_at
             WHERE hookrelay_idempotency.expires_at <= ?3",
        )
        .bind(key.as_str())
        .bind(expiry(now, retention.in_flight))
        .bind(now.as_unix())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Acquired);
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM hookrelay_idempotency WHERE key = ?1")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(match state.as_deref() {
            Some("done") => Claim::Done,
            _ => Claim::InProgress,
        })
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hookrelay_idempotency (key, state, expires_at) VALUES (?1, 'done', ?2)
             ON CONFLICT(key) DO UPDATE SET state = 'done', expires_at = excluded.expires_at",
        )
        .bind(key.as_str())
        .bind(expiry(now, retention.done))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM hookrelay_idempotency WHERE key = ?1 AND state = 'in_flight'")
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
