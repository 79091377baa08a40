//! [`PostgresStore`] as the management API's [`RateLimitStore`] and [`ReplayStore`]
//! (features `postgres` and `server`): the tables `hookrelay_rate_limits` and
//! `hookrelay_api_replays` of its schema (migration step 4), so every process sharing the
//! database shares the limits and the replays.

use std::time::Duration;

use super::idempotency::{Begun, ReplayStore, StoredReply};
use super::rate_limit::{Hit, RateLimit, RateLimitStore, StoreFuture};
use crate::send::PostgresStore;
use crate::{StoreError, Timestamp};

const RATE_LIMIT_HIT: &str = include_str!("sql/rate_limit_hit.sql");
const REPLAY_BEGIN: &str = include_str!("sql/replay_begin.sql");

/// Expired replays deleted per finished request, at most.
const SWEEP_BATCH: i64 = 100;

fn backend(err: sqlx::Error) -> StoreError {
    crate::sqlx_error::from_sqlx(err)
}

/// `sql` with `{s}.` replaced by the store's quoted schema.
fn q(store: &PostgresStore, sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.replace("{s}.", &format!("\"{}\".", store.schema())))
}

fn expiry(now: Timestamp, ttl: Duration) -> i64 {
    now.as_unix()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

fn hit_of(hits: i32, window_start: i64, counted: bool) -> Hit {
    Hit {
        counted,
        hits: u32::try_from(hits).unwrap_or(0),
        window_start: Timestamp::from_unix(window_start),
    }
}

impl RateLimitStore for PostgresStore {
    fn hit<'a>(
        &'a self,
        bucket: &'a str,
        limit: RateLimit,
        now: Timestamp,
    ) -> StoreFuture<'a, Hit> {
        Box::pin(async move {
            let max = i32::try_from(limit.max()).unwrap_or(i32::MAX);
            let counted: Option<(i32, i64)> = sqlx::query_as(q(self, RATE_LIMIT_HIT))
                .bind(bucket)
                .bind(now.as_unix())
                .bind(limit.period_secs())
                .bind(max)
                .fetch_optional(self.pool())
                .await
                .map_err(backend)?;
            if let Some((hits, start)) = counted {
                return Ok(hit_of(hits, start, true));
            }
            let full: Option<(i32, i64)> = sqlx::query_as(q(
                self,
                "SELECT hits, window_start FROM {s}.hookrelay_rate_limits WHERE bucket = $1",
            ))
            .bind(bucket)
            .fetch_optional(self.pool())
            .await
            .map_err(backend)?;
            let (hits, start) = full.unwrap_or((max, now.as_unix()));
            Ok(hit_of(hits, start, false))
        })
    }
}

impl ReplayStore for PostgresStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        now: Timestamp,
        in_flight: Duration,
    ) -> StoreFuture<'a, Begun> {
        Box::pin(async move {
            let started: Option<i32> = sqlx::query_scalar(q(self, REPLAY_BEGIN))
                .bind(key)
                .bind(&fingerprint[..])
                .bind(expiry(now, in_flight))
                .bind(now.as_unix())
                .fetch_optional(self.pool())
                .await
                .map_err(backend)?;
            if started.is_some() {
                return Ok(Begun::Started);
            }
            type Row = (Vec<u8>, Option<i32>, Option<String>, Option<Vec<u8>>);
            let row: Option<Row> = sqlx::query_as(q(
                self,
                "SELECT fingerprint, status, content_type, body
                 FROM {s}.hookrelay_api_replays WHERE key = $1",
            ))
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(backend)?;
            Ok(match row {
                // Gone in between (abandoned): the caller's retry starts it.
                None => Begun::InProgress,
                Some((stored, ..)) if stored.as_slice() != fingerprint.as_slice() => {
                    Begun::KeyReused
                }
                Some((_, None, ..)) => Begun::InProgress,
                Some((_, Some(status), content_type, body)) => Begun::Replay(StoredReply {
                    status: u16::try_from(status).map_err(|_| StoreError::corrupt("status"))?,
                    content_type,
                    body: body.unwrap_or_default().into(),
                }),
            })
        })
    }

    fn finish<'a>(
        &'a self,
        key: &'a str,
        reply: &'a StoredReply,
        now: Timestamp,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(q(
                self,
                "UPDATE {s}.hookrelay_api_replays
                 SET status = $2, content_type = $3, body = $4, expires_at = $5
                 WHERE key = $1",
            ))
            .bind(key)
            .bind(i32::from(reply.status))
            .bind(reply.content_type.as_deref())
            .bind(&reply.body[..])
            .bind(expiry(now, keep))
            .execute(self.pool())
            .await
            .map_err(backend)?;
            // Sweep a few expired replays: the table holds about a day of keys.
            sqlx::query(q(
                self,
                "DELETE FROM {s}.hookrelay_api_replays WHERE key IN (
                     SELECT key FROM {s}.hookrelay_api_replays WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)",
            ))
            .bind(now.as_unix())
            .bind(SWEEP_BATCH)
            .execute(self.pool())
            .await
            .map_err(backend)?;
            Ok(())
        })
    }

    fn abandon<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(q(
                self,
                "DELETE FROM {s}.hookrelay_api_replays WHERE key = $1 AND status IS NULL",
            ))
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(backend)?;
            Ok(())
        })
    }
}
