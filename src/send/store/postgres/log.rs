//! [`DeliveryLog`] for [`PostgresStore`]: deliveries and attempts as stored, counts, purging.

use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use sqlx::Row as _;

use super::super::rows::{self, from_ms, ms};
use super::super::{
    AttemptError, AttemptLog, AttemptSample, DeliveryCounts, DeliveryLog, DeliveryRecord,
    EndpointStats, EndpointStatsBuilder, LogQuery, LogRetention, MessageRecord, Page, Purged,
    SeriesScope, StatusKind, StoreError, TimeRange,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, EndpointId, MessageId};

use super::log_filter::{LogSql, Param};
use super::{PostgresStore, backend, corrupt, count};

const DELIVERY_COLUMNS: &str = "d.id, d.status, d.dead_reason, d.attempts, d.last_status, \
     d.due_at, d.lease_until, d.endpoint_id, d.owner, d.kind, d.finished_at, d.batch_id, \
     m.id AS message_id, m.event_id, m.event_type, m.created_at";

/// A message row: id, event id, event type, publish time, its lowest body form.
type MessageRow = (String, String, String, i64, Option<Vec<u8>>);

impl DeliveryLog for PostgresStore {
    /// One statement, keyset on `seq` (see `log_filter.rs`): `limit + 1` rows read from the
    /// cursor on, then joined to their messages.
    async fn log_page(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let LogSql { sql, params } = LogSql::new(query, DELIVERY_COLUMNS)?;
        let mut q = sqlx::query(self.q(&sql));
        for param in params {
            q = match param {
                Param::Text(v) => q.bind(v),
                Param::Texts(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
            };
        }
        let found = q.fetch_all(&self.inner.pool).await.map_err(backend)?;
        rows::log_page(&found, query.limit, |row| rows::delivery(row, now))
    }

    /// The message with its lowest body form.
    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let row: Option<MessageRow> = sqlx::query_as(self.q(
            "SELECT m.id, m.event_id, m.event_type, m.created_at, b.body
             FROM {s}.hookrelay_messages m
             LEFT JOIN LATERAL (SELECT body FROM {s}.hookrelay_bodies
                                WHERE message_seq = m.seq ORDER BY form LIMIT 1) b ON true
             WHERE m.id = $1",
        ))
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|(id, event_id, event_type, created_at, body)| {
            Ok(MessageRecord {
                id: MessageId::new(id).map_err(|_| corrupt("message id"))?,
                event_id: event_id.into(),
                event_type: event_type.into(),
                created_at: from_ms(created_at),
                body: Bytes::from(body.unwrap_or_default()),
            })
        })
        .transpose()
    }

    /// Two statements: the endpoint's deliveries created in the window counted by status,
    /// then its attempts started in the window, streamed into the builder.
    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        let (from, until) = (window.from.map(ms), window.until.map(ms));
        let mut stats = EndpointStatsBuilder::new(window);
        let by_status: Vec<(String, i64)> = sqlx::query_as(self.q(
            "SELECT status, count(*) FROM {s}.hookrelay_deliveries
             WHERE endpoint_id = $1
               AND ($2::int8 IS NULL OR created_at >= $2)
               AND ($3::int8 IS NULL OR created_at < $3)
             GROUP BY status",
        ))
        .bind(endpoint.as_str())
        .bind(from)
        .bind(until)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        for (status, n) in by_status {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            stats.deliveries(kind, u64::try_from(n).unwrap_or(0));
        }
        let mut attempts =
            sqlx::query_as::<_, (i32, i64, i64, Option<i32>, Option<String>)>(self.q(
                "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error
                 FROM {s}.hookrelay_attempts a
                 JOIN {s}.hookrelay_deliveries d ON d.seq = a.delivery_seq
                 WHERE d.endpoint_id = $1
                   AND ($2::int8 IS NULL OR a.started_at >= $2)
                   AND ($3::int8 IS NULL OR a.started_at < $3)",
            ))
            .bind(endpoint.as_str())
            .bind(from)
            .bind(until)
            .fetch(&self.inner.pool);
        while let Some((attempt, started_at, latency_ms, status, error)) =
            attempts.try_next().await.map_err(backend)?
        {
            stats.attempt(AttemptSample {
                attempt: u32::try_from(attempt).unwrap_or(0),
                started_at: from_ms(started_at),
                latency_ms: u64::try_from(latency_ms).unwrap_or(0),
                status: status.and_then(|s| u16::try_from(s).ok()),
                error: error.as_deref().map(AttemptError::from_stored),
            });
        }
        Ok(stats.build())
    }

    /// Two statements over the span the windows cover: the deliveries' publish times and
    /// statuses, then the attempts streamed; each counted into every window holding it.
    async fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let (condition, value) = super::super::stats::scope_condition(scope, "$1::text");
        let statement = |sql: &str| self.q(&sql.replace("{scope}", &condition));
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut series = super::super::stats::Series::new(windows);
        let span = super::super::stats::span(windows);
        let (from, until) = (span.from.map(ms), span.until.map(ms));
        let deliveries: Vec<(i64, String)> = sqlx::query_as(statement(
            "SELECT d.created_at, d.status FROM {s}.hookrelay_deliveries d
             WHERE {scope}
               AND ($2::int8 IS NULL OR d.created_at >= $2)
               AND ($3::int8 IS NULL OR d.created_at < $3)",
        ))
        .bind(value)
        .bind(from)
        .bind(until)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        for (created_at, status) in deliveries {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            series.delivery(kind, from_ms(created_at));
        }
        let mut attempts =
            sqlx::query_as::<_, (i32, i64, i64, Option<i32>, Option<String>)>(statement(
                "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error
                 FROM {s}.hookrelay_attempts a
                 JOIN {s}.hookrelay_deliveries d ON d.seq = a.delivery_seq
                 WHERE {scope}
                   AND ($2::int8 IS NULL OR a.started_at >= $2)
                   AND ($3::int8 IS NULL OR a.started_at < $3)",
            ))
            .bind(value)
            .bind(from)
            .bind(until)
            .fetch(&self.inner.pool);
        while let Some((attempt, started_at, latency_ms, status, error)) =
            attempts.try_next().await.map_err(backend)?
        {
            let sample = AttemptSample {
                attempt: u32::try_from(attempt).unwrap_or(0),
                started_at: from_ms(started_at),
                latency_ms: u64::try_from(latency_ms).unwrap_or(0),
                status: status.and_then(|s| u16::try_from(s).ok()),
                error: error.as_deref().map(AttemptError::from_stored),
            };
            series.attempt(sample);
        }
        Ok(series.build())
    }

    /// Two statements whatever the number of endpoints (`endpoint_id = ANY($1)`): counts by
    /// endpoint and status, then the attempts streamed into each endpoint's builder.
    async fn endpoints_stats(
        &self,
        endpoints: &[EndpointId],
        window: TimeRange,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let ids: Vec<String> = endpoints.iter().map(|e| e.as_str().to_owned()).collect();
        let (from, until) = (window.from.map(ms), window.until.map(ms));
        let mut builders: Vec<EndpointStatsBuilder> = endpoints
            .iter()
            .map(|_| EndpointStatsBuilder::new(window))
            .collect();
        let slots = |endpoint: &str| {
            endpoints
                .iter()
                .enumerate()
                .filter(move |(_, e)| e.as_str() == endpoint)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let by_status: Vec<(String, String, i64)> = sqlx::query_as(self.q(
            "SELECT endpoint_id, status, count(*) FROM {s}.hookrelay_deliveries
             WHERE endpoint_id = ANY($1)
               AND ($2::int8 IS NULL OR created_at >= $2)
               AND ($3::int8 IS NULL OR created_at < $3)
             GROUP BY endpoint_id, status",
        ))
        .bind(&ids)
        .bind(from)
        .bind(until)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        for (endpoint, status, n) in by_status {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            for i in slots(&endpoint) {
                builders[i].deliveries(kind, u64::try_from(n).unwrap_or(0));
            }
        }
        let mut attempts =
            sqlx::query_as::<_, (String, i32, i64, i64, Option<i32>, Option<String>)>(self.q(
                "SELECT d.endpoint_id, a.attempt, a.started_at, a.latency_ms, a.status, a.error
             FROM {s}.hookrelay_attempts a
             JOIN {s}.hookrelay_deliveries d ON d.seq = a.delivery_seq
             WHERE d.endpoint_id = ANY($1)
               AND ($2::int8 IS NULL OR a.started_at >= $2)
               AND ($3::int8 IS NULL OR a.started_at < $3)",
            ))
            .bind(&ids)
            .bind(from)
            .bind(until)
            .fetch(&self.inner.pool);
        while let Some((endpoint, attempt, started_at, latency_ms, status, error)) =
            attempts.try_next().await.map_err(backend)?
        {
            let sample = AttemptSample {
                attempt: u32::try_from(attempt).unwrap_or(0),
                started_at: from_ms(started_at),
                latency_ms: u64::try_from(latency_ms).unwrap_or(0),
                status: status.and_then(|s| u16::try_from(s).ok()),
                error: error.as_deref().map(AttemptError::from_stored),
            };
            for i in slots(&endpoint) {
                builders[i].attempt(sample);
            }
        }
        Ok(builders
            .into_iter()
            .map(EndpointStatsBuilder::build)
            .collect())
    }

    async fn delivery(
        &self,
        id: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {{s}}.hookrelay_deliveries d
             JOIN {{s}}.hookrelay_messages m ON m.seq = d.message_seq WHERE d.id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|r| rows::delivery(&r, now)).transpose()
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let rows = sqlx::query(self.q(
            "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error, a.request_headers,
                    a.response_headers, a.response_body, a.manual
             FROM {s}.hookrelay_attempts a
             JOIN {s}.hookrelay_deliveries d ON d.seq = a.delivery_seq
             WHERE d.id = $1 ORDER BY a.attempt",
        ))
        .bind(id.as_str())
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|row| rows::attempt(row, id)).collect()
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        let row = sqlx::query(self.q("SELECT
               count(*) FILTER (WHERE status = 'pending'
                                  AND (lease_until IS NULL OR lease_until <= $1)) AS pending,
               count(*) FILTER (WHERE status = 'pending' AND lease_until > $1) AS in_flight,
               count(*) FILTER (WHERE status = 'delivered') AS delivered,
               count(*) FILTER (WHERE status = 'dead') AS dead,
               count(*) FILTER (WHERE status = 'expired') AS expired,
               count(*) FILTER (WHERE status = 'superseded') AS superseded,
               count(*) FILTER (WHERE status = 'batched') AS batched,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled
             FROM {s}.hookrelay_deliveries"))
        .bind(ms(now))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(backend)?;
        let get = |name: &str| -> Result<u64, StoreError> {
            let v: i64 = row.try_get(name).map_err(backend)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(DeliveryCounts {
            pending: get("pending")?,
            in_flight: get("in_flight")?,
            delivered: get("delivered")?,
            dead: get("dead")?,
            expired: get("expired")?,
            superseded: get("superseded")?,
            batched: get("batched")?,
            cancelled: get("cancelled")?,
        })
    }

    /// One short transaction: up to `limit` finished deliveries past their retention (by the
    /// partial index on `finished_at`, skipping rows another transaction holds), their
    /// attempt logs, the messages and bodies left without deliveries, up to `limit` manual
    /// attempt logs past theirs, and expired publish keys.
    async fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let before = |keep: Duration| {
            ms(now).saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
        };
        let (delivered, failed) = (before(retention.delivered), before(retention.failed));
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let doomed: Vec<(i64, i64)> = sqlx::query_as(self.q(
            "SELECT seq, message_seq FROM {s}.hookrelay_deliveries
             WHERE status <> 'pending' AND finished_at <= GREATEST($1, $2)
               AND finished_at <= CASE WHEN status = 'delivered' THEN $1 ELSE $2 END
             ORDER BY finished_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED",
        ))
        .bind(delivered)
        .bind(failed)
        .bind(count(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut purged = Purged::default();
        if !doomed.is_empty() {
            let seqs: Vec<i64> = doomed.iter().map(|(seq, _)| *seq).collect();
            let messages: Vec<i64> = doomed.iter().map(|(_, m)| *m).collect();
            purged.attempts += sqlx::query(
                self.q("DELETE FROM {s}.hookrelay_attempts WHERE delivery_seq = ANY($1)"),
            )
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            purged.deliveries +=
                sqlx::query(self.q("DELETE FROM {s}.hookrelay_deliveries WHERE seq = ANY($1)"))
                    .bind(&seqs)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
            purged.messages += sqlx::query(self.q("WITH orphans AS (
                     SELECT m.seq FROM {s}.hookrelay_messages m
                     WHERE m.seq = ANY($1)
                       AND NOT EXISTS (SELECT 1 FROM {s}.hookrelay_deliveries d
                                       WHERE d.message_seq = m.seq)
                 ),
                 bodies AS (
                     DELETE FROM {s}.hookrelay_bodies b USING orphans o WHERE b.message_seq = o.seq
                 )
                 DELETE FROM {s}.hookrelay_messages m USING orphans o WHERE m.seq = o.seq"))
            .bind(&messages)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        }
        purged.attempts += sqlx::query(self.q(
            "DELETE FROM {s}.hookrelay_attempts WHERE (delivery_seq, attempt) IN (
                 SELECT delivery_seq, attempt FROM {s}.hookrelay_attempts
                 WHERE manual AND started_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        ))
        .bind(before(retention.manual))
        .bind(count(limit))
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        sqlx::query(
            self.q("DELETE FROM {s}.hookrelay_publish_keys WHERE key IN (
                 SELECT key FROM {s}.hookrelay_publish_keys WHERE expires_at <= $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
        )
        .bind(ms(now))
        .bind(count(limit))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(purged)
    }
}
