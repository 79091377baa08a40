//! The inbox in SQLite: one process, every accepted delivery committed before the 2xx, and
//! concurrent accepts sharing one commit.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

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

const SCHEMA: &str = include_str!("../../send/store/migrations/sqlite/inbox.sql");
const ACCEPT: &str = include_str!("sql/sqlite/accept.sql");
const ACCEPTED_ID: &str = include_str!("sql/sqlite/accepted_id.sql");
const CLAIM: &str = include_str!("sql/sqlite/claim.sql");
const RECORD: &str = include_str!("sql/sqlite/record.sql");
const ADD_ATTEMPT: &str = include_str!("sql/sqlite/add_attempt.sql");
const NEXT_DUE: &str = include_str!("sql/sqlite/next_due.sql");
const ENTRY: &str = include_str!("sql/sqlite/entry.sql");
const ATTEMPTS: &str = include_str!("sql/sqlite/attempts.sql");
const LIST: &str = include_str!("sql/sqlite/list.sql");
const COUNTS: &str = include_str!("sql/sqlite/counts.sql");
const REPLAY: &str = include_str!("sql/sqlite/replay.sql");
const PURGE_ATTEMPTS: &str = include_str!("sql/sqlite/purge_attempts.sql");
const PURGE: &str = include_str!("sql/sqlite/purge.sql");

/// The most accepts one commit carries.
const GROUP: usize = 256;

/// A write waiting for the group commit.
enum Write {
    Accept(NewEntry),
    Claim {
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    },
    Record {
        id: InboxId,
        token: u64,
        attempt: InboxAttempt,
        result: AttemptResult,
    },
}

/// What a write gave back.
enum Written {
    Accepted(Accepted),
    Claimed(Vec<ClaimedEntry>),
    Recorded(Recorded),
}

struct Waiting {
    write: Write,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

/// The inbox in SQLite tables `hookrelay_inbox` and `hookrelay_inbox_attempts`, on the same
/// database file as `SqliteStore` and `SqliteIdempotencyStore` if you like.
///
/// [`accept`](InboxQueue::accept) returns once the entry is committed (WAL, `synchronous =
/// FULL` unless the pool says otherwise). Every write — accepts, claims and results — goes
/// through one writer task that gathers what arrives while a commit is under way into the
/// next transaction, so under load many deliveries share one fsync and writers never wait
/// on each other's locks. One process at a time: for several receiver processes, use
/// `PostgresInbox`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use hookrelay::receive::inbox::{Inbox, InboxLog, SqliteInbox};
///
/// let inbox = Inbox::new(SqliteInbox::connect("sqlite::memory:").await?);
/// assert_eq!(inbox.counts().await?.pending, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[derive(Debug, Clone)]
pub struct SqliteInbox {
    pool: SqlitePool,
    writer: mpsc::Sender<Waiting>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").finish_non_exhaustive()
    }
}

impl SqliteInbox {
    /// Opens (creating if needed) the database at `url` (`sqlite://inbox.db`,
    /// `sqlite::memory:`) and creates the tables if missing. Must run inside a tokio
    /// runtime: the group-commit writer is a task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::from_pool(crate::sqlite::open(url).await?).await
    }

    /// Uses an existing pool (for example the delivery store's) and creates the tables if
    /// missing.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(from_sqlx)?;
        let (writer, waiting) = mpsc::channel(GROUP * 4);
        tokio::spawn(group_commits(pool.clone(), waiting));
        Ok(Self { pool, writer })
    }
}

impl SqliteInbox {
    /// The pool (for the handler's own tables in the same file, for example).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The writer: takes every write that is waiting (up to [`GROUP`]), applies them in one
/// transaction, and answers each once it committed.
async fn group_commits(pool: SqlitePool, mut waiting: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(GROUP);
    while waiting.recv_many(&mut batch, GROUP).await > 0 {
        match apply(&pool, &mut batch).await {
            Ok(results) => {
                for (waiting, result) in batch.drain(..).zip(results) {
                    let _ = waiting.done.send(Ok(result));
                }
            }
            Err(error) => {
                for waiting in batch.drain(..) {
                    let _ = waiting.done.send(Err(error.clone()));
                }
            }
        }
    }
}

async fn apply(pool: &SqlitePool, batch: &mut [Waiting]) -> Result<Vec<Written>, StoreError> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(from_sqlx)?;
    let mut results: Vec<Option<Written>> = batch.iter().map(|_| None).collect();
    // Every accept of the group in as few statements as possible, then the rest in order.
    let accepts: Vec<(usize, &NewEntry)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, waiting)| match &waiting.write {
            Write::Accept(entry) => Some((i, entry)),
            _ => None,
        })
        .collect();
    for chunk in accepts.chunks(ROWS_PER_INSERT) {
        let entries: Vec<&NewEntry> = chunk.iter().map(|(_, entry)| *entry).collect();
        let accepted = accept_in(&mut tx, &entries).await?;
        for ((i, _), accepted) in chunk.iter().zip(accepted) {
            results[*i] = Some(Written::Accepted(accepted));
        }
    }
    for (i, waiting) in batch.iter().enumerate() {
        let written = match &waiting.write {
            Write::Accept(_) => continue,
            Write::Claim { now, lease, limit } => {
                Written::Claimed(claim_in(&mut tx, *now, *lease, *limit).await?)
            }
            Write::Record {
                id,
                token,
                attempt,
                result,
            } => Written::Recorded(record_in(&mut tx, *id, *token, attempt, result).await?),
        };
        results[i] = Some(written);
    }
    tx.commit().await.map_err(from_sqlx)?;
    results
        .into_iter()
        .map(|written| written.ok_or_else(mismatch))
        .collect()
}

/// Entries one `INSERT` carries (10 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 100;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Stores `entries` (one statement) and finds the entries of the keys already stored.
async fn accept_in(tx: &mut Tx<'_>, entries: &[&NewEntry]) -> Result<Vec<Accepted>, StoreError> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(ACCEPT);
    insert.push_values(entries, |mut row, entry| {
        row.push_bind(entry.key.as_str())
            .push_bind(entry.profile.name())
            .push_bind(entry.message_id.as_deref())
            .push_bind(entry.event_type.as_deref())
            .push_bind(entry.timestamp.map(|t| t.as_unix()))
            .push_bind(rows::headers_json(&entry.headers))
            .push_bind(entry.body.as_ref())
            .push_bind(entry.order_key.as_deref())
            .push_bind(to_sql(entry.received_at))
            .push_bind(to_sql(entry.received_at));
    });
    insert.push(" ON CONFLICT (key) DO NOTHING RETURNING id, key");
    let stored: Vec<(i64, String)> = insert
        .build_query_as()
        .fetch_all(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    let stored: std::collections::HashMap<String, i64> =
        stored.into_iter().map(|(id, key)| (key, id)).collect();
    let mut accepted = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let key = entry.key.as_str();
        // The first of a key in this statement was stored; a repeat is its duplicate.
        let first = seen.insert(key);
        accepted.push(match stored.get(key) {
            Some(id) if first => Accepted::Stored(InboxId::new(*id)),
            Some(id) => Accepted::Duplicate(InboxId::new(*id)),
            None => {
                let id: i64 = sqlx::query_scalar(ACCEPTED_ID)
                    .bind(key)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(from_sqlx)?;
                Accepted::Duplicate(InboxId::new(id))
            }
        });
    }
    Ok(accepted)
}

async fn claim_in(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    lease: Duration,
    limit: usize,
) -> Result<Vec<ClaimedEntry>, StoreError> {
    let found = sqlx::query(CLAIM)
        .bind(to_sql(now))
        .bind(to_sql(now.saturating_add(lease)))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    let mut claimed = found
        .iter()
        .map(rows::claimed)
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|c| c.entry.id);
    Ok(claimed)
}

async fn record_in(
    tx: &mut Tx<'_>,
    id: InboxId,
    token: u64,
    attempt: &InboxAttempt,
    result: &AttemptResult,
) -> Result<Recorded, StoreError> {
    let ended_at = attempt.at.saturating_add(attempt.duration);
    let (status, next, error, finished) = result_columns(result, ended_at);
    let token = i64::try_from(token).unwrap_or(i64::MAX);
    // The attempt first: it reads `replayed` before the update clears it, and logs
    // nothing when the token is stale.
    let logged = sqlx::query(ADD_ATTEMPT)
        .bind(id.get())
        .bind(to_sql(attempt.at))
        .bind(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX))
        .bind(attempt.error.as_deref())
        .bind(token)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    if logged.rows_affected() == 0 {
        return Ok(Recorded::Stale);
    }
    sqlx::query(RECORD)
        .bind(id.get())
        .bind(token)
        .bind(status.as_str())
        .bind(next)
        .bind(error)
        .bind(finished)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(Recorded::Applied)
}

impl SqliteInbox {
    /// Hands `write` to the writer and waits for its commit.
    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (done, answer) = oneshot::channel();
        let closed = || StoreError::other("the inbox writer stopped");
        self.writer
            .send(Waiting { write, done })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// A writer's answer of another kind than asked: cannot happen.
fn mismatch() -> StoreError {
    StoreError::other("the inbox writer answered another write")
}

impl InboxQueue for SqliteInbox {
    async fn accept(&self, entry: NewEntry) -> Result<Accepted, StoreError> {
        match self.write(Write::Accept(entry)).await? {
            Written::Accepted(accepted) => Ok(accepted),
            _ => Err(mismatch()),
        }
    }

    async fn claim(
        &self,
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedEntry>, StoreError> {
        match self.write(Write::Claim { now, lease, limit }).await? {
            Written::Claimed(claimed) => Ok(claimed),
            _ => Err(mismatch()),
        }
    }

    async fn record(
        &self,
        id: InboxId,
        token: u64,
        attempt: InboxAttempt,
        result: AttemptResult,
    ) -> Result<Recorded, StoreError> {
        let write = Write::Record {
            id,
            token,
            attempt,
            result,
        };
        match self.write(write).await? {
            Written::Recorded(recorded) => Ok(recorded),
            _ => Err(mismatch()),
        }
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(NEXT_DUE)
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(at.map(|at| UnixMillis::from_millis(u64::try_from(at).unwrap_or(0))))
    }
}

impl SqliteInbox {
    /// A query's text (SQLite's need no schema).
    fn sql(&self, text: &'static str) -> &'static str {
        text
    }
}
rows::sql_inbox_log!(SqliteInbox, |query: &InboxQuery| {
    let statuses: Vec<&str> = query.statuses().iter().map(|s| s.as_str()).collect();
    serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".into())
});
