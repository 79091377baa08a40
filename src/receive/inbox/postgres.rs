//! The inbox in PostgreSQL: any number of receiver processes share it.

use std::time::Duration;

use sqlx::postgres::PgPool;

use super::entry::{
    Accepted, AttemptResult, ClaimedEntry, EntryStatus, InboxAttempt, InboxCounts, InboxEntry,
    InboxId, NewEntry, Recorded,
};
use super::query::{InboxPage, InboxQuery};
use super::rows::{self, result_columns, to_sql};
use super::store::{InboxLog, InboxQueue};
use crate::StoreError;
use crate::retry::UnixMillis;
use crate::sqlx_error::from_sqlx;

const SCHEMA: &str = include_str!("../../send/store/migrations/postgres/inbox.sql");
const ACCEPT: &str = include_str!("sql/postgres/accept.sql");
const ACCEPTED_ID: &str = include_str!("sql/postgres/accepted_id.sql");
const CLAIM: &str = include_str!("sql/postgres/claim.sql");
const RECORD: &str = include_str!("sql/postgres/record.sql");
const ADD_ATTEMPT: &str = include_str!("sql/postgres/add_attempt.sql");
const NEXT_DUE: &str = include_str!("sql/postgres/next_due.sql");
const ENTRY: &str = include_str!("sql/postgres/entry.sql");
const ATTEMPTS: &str = include_str!("sql/postgres/attempts.sql");
const LIST: &str = include_str!("sql/postgres/list.sql");
const COUNTS: &str = include_str!("sql/postgres/counts.sql");
const REPLAY: &str = include_str!("sql/postgres/replay.sql");
const PURGE_ATTEMPTS: &str = include_str!("sql/postgres/purge_attempts.sql");
const PURGE: &str = include_str!("sql/postgres/purge.sql");

/// The inbox in PostgreSQL tables `hookrelay_inbox` and `hookrelay_inbox_attempts`.
///
/// Many receiver processes on many hosts accept into one inbox (a duplicate accepted by two
/// processes at once is stored once: the key is unique) and run workers on it: claims take
/// rows with `FOR UPDATE SKIP LOCKED`, so no entry is leased twice, and a crashed process's
/// leases end and are taken up by the others. Every accept has committed when it returns.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use hookrelay::receive::inbox::{Inbox, PostgresInbox};
///
/// let inbox = Inbox::new(PostgresInbox::connect("postgres://postgres@127.0.0.1/app").await?);
/// # let _ = inbox;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone)]
pub struct PostgresInbox {
    pool: PgPool,
    /// `"schema".`
    prefix: String,
}

impl PostgresInbox {
    /// Connects to `url` and creates the tables in the `public` schema if missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::from_pool(crate::postgres::open_default(url).await?).await
    }

    /// Uses an existing pool (shared with the delivery store or your own tables) and the
    /// `public` schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::from_pool_in(pool, crate::postgres::DEFAULT_SCHEMA).await
    }

    /// Uses an existing pool and the tables in `schema` (`[a-z_][a-z0-9_]*`, created if
    /// missing).
    pub async fn from_pool_in(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        let quoted =
            crate::postgres::create_missing(&pool, schema, "inbox", "hookrelay_inbox", SCHEMA)
                .await?;
        Ok(Self {
            pool,
            prefix: format!("{quoted}."),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn sql(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(sql.replace("{s}.", &self.prefix))
    }
}

fn token_sql(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(i64::MAX)
}

impl InboxQueue for PostgresInbox {
    async fn accept(&self, entry: NewEntry) -> Result<Accepted, StoreError> {
        let inserted: Option<i64> = sqlx::query_scalar(self.sql(ACCEPT))
            .bind(entry.key.as_str())
            .bind(entry.profile.name())
            .bind(entry.message_id.as_deref())
            .bind(entry.event_type.as_deref())
            .bind(entry.timestamp.map(|t| t.as_unix()))
            .bind(rows::headers_json(&entry.headers))
            .bind(entry.body.as_ref())
            .bind(entry.order_key.as_deref())
            .bind(to_sql(entry.received_at))
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        if let Some(id) = inserted {
            return Ok(Accepted::Stored(InboxId::new(id)));
        }
        let id: i64 = sqlx::query_scalar(self.sql(ACCEPTED_ID))
            .bind(entry.key.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(Accepted::Duplicate(InboxId::new(id)))
    }

    async fn claim(
        &self,
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedEntry>, StoreError> {
        let found = sqlx::query(self.sql(CLAIM))
            .bind(to_sql(now))
            .bind(to_sql(now.saturating_add(lease)))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let mut claimed = found
            .iter()
            .map(rows::claimed)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|c| c.entry.id);
        Ok(claimed)
    }

    async fn record(
        &self,
        id: InboxId,
        token: u64,
        attempt: InboxAttempt,
        result: AttemptResult,
    ) -> Result<Recorded, StoreError> {
        let ended_at = attempt.at.saturating_add(attempt.duration);
        let (status, next, error, finished) = result_columns(&result, ended_at);
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The attempt first: it reads `replayed` before the update clears it, and logs
        // nothing when the token is stale.
        let logged = sqlx::query(self.sql(ADD_ATTEMPT))
            .bind(id.get())
            .bind(to_sql(attempt.at))
            .bind(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX))
            .bind(attempt.error.as_deref())
            .bind(token_sql(token))
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        if logged.rows_affected() == 0 {
            return Ok(Recorded::Stale);
        }
        sqlx::query(self.sql(RECORD))
            .bind(id.get())
            .bind(token_sql(token))
            .bind(status.as_str())
            .bind(next)
            .bind(error)
            .bind(finished)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(Recorded::Applied)
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(self.sql(NEXT_DUE))
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(at.map(|at| UnixMillis::from_millis(u64::try_from(at).unwrap_or(0))))
    }
}

rows::sql_inbox_log!(PostgresInbox, |query: &InboxQuery| -> Vec<&'static str> {
    query.statuses().iter().map(|s| s.as_str()).collect()
});
