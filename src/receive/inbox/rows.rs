//! Reading inbox rows, the same for SQLite and PostgreSQL (both store the same columns with
//! the same types: integers as 64-bit, text, and the body as bytes).

use std::time::Duration;

use bytes::Bytes;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::entry::{
    AttemptResult, ClaimedEntry, EntryStatus, InboxAttempt, InboxEntry, InboxId, NewEntry,
};
use crate::receive::IdempotencyKey;
use crate::retry::UnixMillis;
use crate::{StoreError, Timestamp};

fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T, StoreError>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    row.try_get(column).map_err(crate::sqlx_error::from_sqlx)
}

fn millis(value: i64) -> UnixMillis {
    UnixMillis::from_millis(u64::try_from(value).unwrap_or(0))
}

/// Milliseconds as the stores keep them.
pub(super) fn to_sql(at: UnixMillis) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// One entry and its lease token.
pub(super) fn claimed<R>(row: &R) -> Result<ClaimedEntry, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let token: i64 = get(row, "token")?;
    Ok(ClaimedEntry {
        entry: entry(row)?,
        token: u64::try_from(token).unwrap_or(0),
    })
}

/// One entry.
pub(super) fn entry<R>(row: &R) -> Result<InboxEntry, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let corrupt = |what| StoreError::corrupt(what);
    let profile: String = get(row, "profile")?;
    let status: String = get(row, "status")?;
    let headers: String = get(row, "headers")?;
    let headers: Vec<(String, String)> =
        serde_json::from_str(&headers).map_err(|_| corrupt("inbox headers"))?;
    let signed_at: Option<i64> = get(row, "signed_at")?;
    let body: Vec<u8> = get(row, "body")?;
    let key: String = get(row, "key")?;
    let attempts: i64 = get(row, "attempts")?;
    let lease_until: Option<i64> = get(row, "lease_until")?;
    let finished_at: Option<i64> = get(row, "finished_at")?;
    Ok(InboxEntry {
        id: InboxId::new(get(row, "id")?),
        accepted: NewEntry {
            key: IdempotencyKey::new(key),
            profile: profile.parse().map_err(|_| corrupt("inbox profile"))?,
            message_id: get(row, "message_id")?,
            event_type: get(row, "event_type")?,
            timestamp: signed_at.map(Timestamp::from_unix),
            headers,
            body: Bytes::from(body),
            order_key: get(row, "order_key")?,
            received_at: millis(get(row, "received_at")?),
        },
        status: status
            .parse::<EntryStatus>()
            .map_err(|_| corrupt("inbox status"))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: millis(get(row, "next_attempt_at")?),
        lease_until: lease_until.map(millis),
        last_error: get(row, "last_error")?,
        finished_at: finished_at.map(millis),
    })
}

/// One attempt (`at, duration_ms, error, manual`).
pub(super) fn attempt<R>(row: &R) -> Result<InboxAttempt, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'a> &'a str: ColumnIndex<R>,
{
    let duration: i64 = get(row, "duration_ms")?;
    Ok(InboxAttempt::new(
        millis(get(row, "at")?),
        Duration::from_millis(u64::try_from(duration).unwrap_or(0)),
        get(row, "error")?,
    )
    .manual(get(row, "manual")?))
}

/// The headers as the stores keep them: a JSON array of `[name, value]` pairs.
pub(super) fn headers_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

/// The status, next time, error and finish time a result writes.
pub(super) fn result_columns(
    result: &AttemptResult,
    ended_at: UnixMillis,
) -> (EntryStatus, Option<i64>, Option<&str>, Option<i64>) {
    match result {
        AttemptResult::Done => (EntryStatus::Done, None, None, Some(to_sql(ended_at))),
        AttemptResult::RetryAt { at, error } => {
            (EntryStatus::Pending, Some(to_sql(*at)), Some(error), None)
        }
        AttemptResult::Dead { error } => {
            (EntryStatus::Dead, None, Some(error), Some(to_sql(ended_at)))
        }
    }
}

/// The [`InboxLog`](super::InboxLog) of an SQL store, written once for SQLite and PostgreSQL:
/// `$store` has a `pool` and a `sql(&self, &'static str)` giving a query's text, the
/// `ENTRY`, `ATTEMPTS`, `LIST`, `COUNTS`, `REPLAY`, `PURGE_ATTEMPTS` and `PURGE` constants are
/// in scope, and `$statuses` turns a query's statuses into the `LIST` query's first parameter.
macro_rules! sql_inbox_log {
    ($store:ty, $statuses:expr) => {
        impl InboxLog for $store {
            async fn entry(
                &self,
                id: InboxId,
            ) -> Result<Option<(InboxEntry, Vec<InboxAttempt>)>, StoreError> {
                let Some(row) = sqlx::query(self.sql(ENTRY))
                    .bind(id.get())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?
                else {
                    return Ok(None);
                };
                let attempts = sqlx::query(self.sql(ATTEMPTS))
                    .bind(id.get())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                let attempts = attempts
                    .iter()
                    .map(rows::attempt)
                    .collect::<Result<_, _>>()?;
                Ok(Some((rows::entry(&row)?, attempts)))
            }

            async fn list(&self, query: &InboxQuery) -> Result<InboxPage, StoreError> {
                let (since, until) = query.received_range();
                let size = query.page_size();
                let found = sqlx::query(self.sql(LIST))
                    .bind($statuses(query))
                    .bind(query.event_type_filter())
                    .bind(since.map(to_sql))
                    .bind(until.map(to_sql))
                    .bind(query.cursor().map_or(i64::MAX, InboxId::get))
                    .bind(i64::try_from(size + 1).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                let entries = found
                    .iter()
                    .map(rows::entry)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(InboxPage::from_probe(entries, size))
            }

            async fn counts(&self) -> Result<InboxCounts, StoreError> {
                let found: Vec<(String, i64)> = sqlx::query_as(self.sql(COUNTS))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                let mut counts = InboxCounts::default();
                for (status, n) in found {
                    if let Ok(status) = status.parse() {
                        counts.add(status, u64::try_from(n).unwrap_or(0));
                    }
                }
                Ok(counts)
            }

            async fn replay(&self, id: InboxId, now: UnixMillis) -> Result<bool, StoreError> {
                let done = sqlx::query(self.sql(REPLAY))
                    .bind(Some(id.get()))
                    .bind(to_sql(now))
                    .bind(None::<&str>)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected() == 1)
            }

            async fn replay_matching(
                &self,
                query: &InboxQuery,
                now: UnixMillis,
            ) -> Result<u64, StoreError> {
                if !query.statuses().is_empty() && !query.statuses().contains(&EntryStatus::Dead) {
                    return Ok(0);
                }
                let (since, until) = query.received_range();
                let done = sqlx::query(self.sql(REPLAY))
                    .bind(None::<i64>)
                    .bind(to_sql(now))
                    .bind(query.event_type_filter())
                    .bind(since.map(to_sql))
                    .bind(until.map(to_sql))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                Ok(done.rows_affected())
            }

            async fn purge(&self, before: UnixMillis) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
                sqlx::query(self.sql(PURGE_ATTEMPTS))
                    .bind(to_sql(before))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                let done = sqlx::query(self.sql(PURGE))
                    .bind(to_sql(before))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                tx.commit().await.map_err(from_sqlx)?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(super) use sql_inbox_log;
