//! The idempotency store in PostgreSQL, for receivers running on many hosts, and for
//! handlers that remember a delivery in the same transaction as its effects.

use sqlx::postgres::{PgConnection, PgPool};

use super::idempotency::{Claim, IdempotencyKey, IdempotencyStore, Retention, StoreError, expiry};
use crate::Timestamp;

/// The table, created if missing under an advisory lock; `{s}` is the quoted schema.
const SCHEMA: &str = include_str!("../send/store/migrations/postgres/idempotency.sql");

/// Idempotency records in a PostgreSQL table, `hookrelay_idempotency`.
///
/// A claim is one `INSERT … ON CONFLICT … DO UPDATE … WHERE expired`: of many concurrent
/// claims for one key, on any number of hosts, exactly one is [`Claim::Acquired`].
///
/// **Inside your transaction.** [`claim_in`](Self::claim_in) and
/// [`complete_in`](Self::complete_in) take your connection, so "process the event" and
/// "remember it was processed" commit together: a crash before the commit leaves neither,
/// and the sender's retry processes the event again; after the commit, a retry answers
/// [`Claim::Done`]. A concurrent duplicate blocks on the row until your transaction ends.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use hookrelay::receive::{Claim, IdempotencyKey, PostgresIdempotencyStore, Retention};
/// use hookrelay::Timestamp;
///
/// let store = PostgresIdempotencyStore::from_pool(pool.clone()).await?;
/// let key = IdempotencyKey::new("evt_123456");
/// let now = Timestamp::from_unix(1_700_000_000);
/// let mut tx = pool.begin().await?;
/// if store.claim_in(&mut tx, &key, now, Retention::default()).await? == Claim::Acquired {
///     sqlx::query("INSERT INTO payments (event_id) VALUES ($1)")
///         .bind("evt_123456")
///         .execute(&mut *tx)
///         .await?;
///     store.complete_in(&mut tx, &key, now, Retention::default()).await?;
/// }
/// tx.commit().await?; // the payment and the memory of it, together
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone)]
pub struct PostgresIdempotencyStore {
    pool: PgPool,
    /// `"schema".`
    prefix: String,
}

fn backend(err: sqlx::Error) -> StoreError {
    crate::sqlx_error::from_sqlx(err)
}

impl PostgresIdempotencyStore {
    /// Connects to `url` (`postgres://user:password@host/database`) and creates the table in
    /// the `public` schema if it is missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::from_pool(crate::postgres::open_default(url).await?).await
    }

    /// Uses an existing pool (shared with [`PostgresStore`](crate::send::PostgresStore) or
    /// your own tables) and the `public` schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::from_pool_in(pool, crate::postgres::DEFAULT_SCHEMA).await
    }

    /// Uses an existing pool and the table in `schema` (`[a-z_][a-z0-9_]*`, created if
    /// missing).
    pub async fn from_pool_in(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        let quoted = crate::postgres::create_missing(
            &pool,
            schema,
            "idempotency",
            "hookrelay_idempotency",
            SCHEMA,
        )
        .await?;
        Ok(Self {
            pool,
            prefix: format!("{quoted}."),
        })
    }

    /// The SQL that creates the table in `schema` (and the schema, if missing), for your own
    /// migration tool; `None` if `schema` is not a plain identifier.
    pub fn migration_sql(schema: &str) -> Option<String> {
        crate::postgres::valid_schema(schema).then(|| {
            let quoted = format!("\"{schema}\"");
            format!(
                "CREATE SCHEMA IF NOT EXISTS {quoted};\n{}",
                SCHEMA.replace("{s}", &quoted)
            )
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(sql.replace("{s}.", &self.prefix))
    }

    /// [`claim`](IdempotencyStore::claim) through your connection (inside your transaction).
    pub async fn claim_in(
        &self,
        conn: &mut PgConnection,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<Claim, StoreError> {
        let acquired: Option<i32> = sqlx::query_scalar(self.q(
            "INSERT INTO {s}.hookrelay_idempotency AS i (key, state, expires_at)
             VALUES ($1, 'in_flight', $2)
             ON CONFLICT (key) DO UPDATE SET state = 'in_flight', expires_at = excluded.expires_at
             WHERE i.expires_at <= $3
             RETURNING 1",
        ))
        .bind(key.as_str())
        .bind(expiry(now, retention.in_flight))
        .bind(now.as_unix())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        if acquired.is_some() {
            return Ok(Claim::Acquired);
        }
        // A new statement: it sees a conflicting transaction's row once that committed.
        let state: Option<String> = sqlx::query_scalar(
            self.q("SELECT state FROM {s}.hookrelay_idempotency WHERE key = $1"),
        )
        .bind(key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(match state.as_deref() {
            Some("done") => Claim::Done,
            _ => Claim::InProgress,
        })
    }

    /// [`complete`](IdempotencyStore::complete) through your connection (inside your
    /// transaction).
    pub async fn complete_in(
        &self,
        conn: &mut PgConnection,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<(), StoreError> {
        sqlx::query(self.q(
            "INSERT INTO {s}.hookrelay_idempotency (key, state, expires_at) VALUES ($1, 'done', $2)
             ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = excluded.expires_at",
        ))
        .bind(key.as_str())
        .bind(expiry(now, retention.done))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Deletes up to `batch` expired records (one short statement, skipping rows another
    /// transaction holds); returns how many were removed. Call it until it returns less
    /// than `batch`.
    pub async fn sweep(&self, now: Timestamp, batch: usize) -> Result<u64, StoreError> {
        let done = sqlx::query(self.q("DELETE FROM {s}.hookrelay_idempotency WHERE key IN (
                 SELECT key FROM {s}.hookrelay_idempotency WHERE expires_at <= $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED)"))
        .bind(now.as_unix())
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

impl IdempotencyStore for PostgresIdempotencyStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<Claim, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        self.claim_in(&mut conn, key, now, retention).await
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        self.complete_in(&mut conn, key, now, retention).await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        sqlx::query(
            self.q("DELETE FROM {s}.hookrelay_idempotency WHERE key = $1 AND state = 'in_flight'"),
        )
        .bind(key.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
/// Compile-time check: opening the store is a `Send` future (sqlx's `raw_sql(…).execute`
/// is not, for every lifetime; `Executor::execute` is), so it can be spawned.
#[cfg(test)]
#[allow(dead_code)]
fn _send_checks(pool: PgPool) {
    fn is_send<T: Send + 'static>(_: T) {}
    is_send(async move { PostgresIdempotencyStore::from_pool(pool).await });
}
