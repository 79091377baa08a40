//! [`DeliveryLog`] for [`SqliteStore`]: deliveries and attempts as stored, log pages,
//! messages, endpoint statistics, counts, purging.

use std::time::Duration;

use bytes::Bytes;
use sqlx::Row as _;

use super::super::rows::{self, from_ms, ms};
use super::super::{
    AttemptError, AttemptLog, AttemptSample, DeliveryCounts, DeliveryLog, DeliveryRecord,
    EndpointStats, EndpointStatsBuilder, LogQuery, LogRetention, MessageRecord, Page, Purged,
    SeriesScope, StatusKind, StoreError, TimeRange,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, EndpointId, MessageId};

use super::log_page::{Arg, DELIVERY_COLUMNS, log_select};
use super::{SqliteStore, backend, corrupt};

impl DeliveryLog for SqliteStore {
    /// One `SELECT` (see `log_page.rs`): keyset on `seq`, one row more than the page.
    async fn log_page(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let select = log_select(query)?;
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(select.sql));
        for arg in select.args {
            statement = match arg {
                Arg::Text(text) => statement.bind(text),
                Arg::Int(n) => statement.bind(n),
            };
        }
        let found = statement.fetch_all(&self.pool).await.map_err(backend)?;
        rows::log_page(&found, query.limit, |row| rows::delivery(row, now))
    }

    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let row = sqlx::query(include_str!("sql/message.sql"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text = |name: &str| row.try_get::<String, _>(name).map_err(backend);
        let body: Option<Vec<u8>> = row.try_get("body").map_err(backend)?;
        Ok(Some(MessageRecord {
            id: MessageId::new(text("id")?).map_err(|_| corrupt("message id"))?,
            event_id: text("event_id")?.into(),
            event_type: text("event_type")?.into(),
            created_at: from_ms(row.try_get("created_at").map_err(backend)?),
            body: body.map(Bytes::from).unwrap_or_default(),
        }))
    }

    /// Two queries, one read transaction: the window's deliveries by status, and the
    /// attempts of the endpoint's deliveries that started in it.
    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        let (from, until) = (window.from.map(ms), window.until.map(ms));
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let by_status: Vec<(String, i64)> =
            sqlx::query_as(include_str!("sql/stats_deliveries.sql"))
                .bind(endpoint.as_str())
                .bind(from)
                .bind(until)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let attempts = sqlx::query(include_str!("sql/stats_attempts.sql"))
            .bind(endpoint.as_str())
            .bind(from)
            .bind(until)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.rollback().await.map_err(backend)?;
        let mut stats = EndpointStatsBuilder::new(window);
        for (status, n) in by_status {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            stats.deliveries(kind, u64::try_from(n).unwrap_or(0));
        }
        for row in &attempts {
            stats.attempt(attempt_sample(row)?);
        }
        Ok(stats.build())
    }

    /// Two queries, one read transaction, over the span the windows cover: the deliveries'
    /// publish times and statuses, and the attempts; each counted into every window holding it.
    async fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let (condition, value) = super::super::stats::scope_condition(scope, "?1");
        let statement = |sql: &str| sqlx::AssertSqlSafe(sql.replace("{scope}", &condition));
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut series = super::super::stats::Series::new(windows);
        let span = super::super::stats::span(windows);
        let (from, until) = (span.from.map(ms), span.until.map(ms));
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let deliveries: Vec<(i64, String)> =
            sqlx::query_as(statement(include_str!("sql/series_deliveries.sql")))
                .bind(value)
                .bind(from)
                .bind(until)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let attempts = sqlx::query(statement(include_str!("sql/series_attempts.sql")))
            .bind(value)
            .bind(from)
            .bind(until)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.rollback().await.map_err(backend)?;
        for (created_at, status) in deliveries {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            series.delivery(kind, from_ms(created_at));
        }
        for row in &attempts {
            series.attempt(attempt_sample(row)?);
        }
        Ok(series.build())
    }

    /// Two queries, one read transaction, whatever the number of endpoints: the ids go in as
    /// one JSON array (`json_each`).
    async fn endpoints_stats(
        &self,
        endpoints: &[EndpointId],
        window: TimeRange,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let ids: Vec<&str> = endpoints.iter().map(EndpointId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| corrupt_json(&e))?;
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let by_status: Vec<(String, String, i64)> =
            sqlx::query_as(include_str!("sql/stats_deliveries_many.sql"))
                .bind(&ids)
                .bind(from)
                .bind(until)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let attempts = sqlx::query(include_str!("sql/stats_attempts_many.sql"))
            .bind(&ids)
            .bind(from)
            .bind(until)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.rollback().await.map_err(backend)?;
        for (endpoint, status, n) in by_status {
            let kind = StatusKind::parse(&status).ok_or_else(|| corrupt("delivery status"))?;
            for i in slots(&endpoint) {
                builders[i].deliveries(kind, u64::try_from(n).unwrap_or(0));
            }
        }
        for row in &attempts {
            let endpoint: String = row.try_get("endpoint_id").map_err(backend)?;
            let sample = attempt_sample(row)?;
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
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM hookrelay_deliveries d
             JOIN hookrelay_messages m ON m.seq = d.message_seq WHERE d.id = ?1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| rows::delivery(&r, now)).transpose()
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error, a.request_headers,
                    a.response_headers, a.response_body, a.manual
             FROM hookrelay_attempts a JOIN hookrelay_deliveries d ON d.seq = a.delivery_seq
             WHERE d.id = ?1 ORDER BY a.attempt",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|row| rows::attempt(row, id)).collect()
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        let row = sqlx::query(
            "SELECT
               COALESCE(SUM(status = 'pending' AND (lease_until IS NULL OR lease_until <= ?1)), 0) AS pending,
               COALESCE(SUM(status = 'pending' AND lease_until > ?1), 0) AS in_flight,
               COALESCE(SUM(status = 'delivered'), 0) AS delivered,
               COALESCE(SUM(status = 'dead'), 0) AS dead,
               COALESCE(SUM(status = 'expired'), 0) AS expired,
               COALESCE(SUM(status = 'superseded'), 0) AS superseded,
               COALESCE(SUM(status = 'batched'), 0) AS batched,
               COALESCE(SUM(status = 'cancelled'), 0) AS cancelled
             FROM hookrelay_deliveries",
        )
        .bind(ms(now))
        .fetch_one(&self.pool)
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

    async fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = |keep: Duration| {
            ms(now).saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
        };
        let mut tx = self.begin().await?;
        let doomed: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, message_seq FROM hookrelay_deliveries
             WHERE status != 'pending' AND finished_at <= MAX(?1, ?2)
               AND finished_at <= CASE WHEN status = 'delivered' THEN ?1 ELSE ?2 END
             LIMIT ?3",
        )
        .bind(before(retention.delivered))
        .bind(before(retention.failed))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut purged = Purged::default();
        if !doomed.is_empty() {
            let seqs: Vec<i64> = doomed.iter().map(|(seq, _)| *seq).collect();
            let messages: Vec<i64> = doomed.iter().map(|(_, m)| *m).collect();
            let seqs = serde_json::to_string(&seqs).unwrap_or_else(|_| "[]".to_owned());
            let messages = serde_json::to_string(&messages).unwrap_or_else(|_| "[]".to_owned());
            purged.attempts += sqlx::query(
                "DELETE FROM hookrelay_attempts WHERE delivery_seq IN (SELECT value FROM json_each(?1))",
            )
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            purged.deliveries += sqlx::query(
                "DELETE FROM hookrelay_deliveries WHERE seq IN (SELECT value FROM json_each(?1))",
            )
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            sqlx::query(
                "DELETE FROM hookrelay_bodies WHERE message_seq IN (
                     SELECT value FROM json_each(?1) WHERE NOT EXISTS (
                         SELECT 1 FROM hookrelay_deliveries d WHERE d.message_seq = value))",
            )
            .bind(&messages)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            purged.messages += sqlx::query(
                "DELETE FROM hookrelay_messages WHERE seq IN (
                     SELECT value FROM json_each(?1) WHERE NOT EXISTS (
                         SELECT 1 FROM hookrelay_deliveries d WHERE d.message_seq = value))",
            )
            .bind(&messages)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        }
        purged.attempts += sqlx::query(
            "DELETE FROM hookrelay_attempts WHERE (delivery_seq, attempt) IN (
                 SELECT delivery_seq, attempt FROM hookrelay_attempts
                 WHERE manual = 1 AND started_at <= ?1 LIMIT ?2)",
        )
        .bind(before(retention.manual))
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        sqlx::query("DELETE FROM hookrelay_publish_keys WHERE expires_at <= ?1")
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(purged)
    }
}

/// One row of `sql/stats_attempts.sql`.
fn attempt_sample(row: &sqlx::sqlite::SqliteRow) -> Result<AttemptSample, StoreError> {
    let attempt: i64 = row.try_get("attempt").map_err(backend)?;
    let latency_ms: i64 = row.try_get("latency_ms").map_err(backend)?;
    let status: Option<i64> = row.try_get("status").map_err(backend)?;
    let error: Option<String> = row.try_get("error").map_err(backend)?;
    Ok(AttemptSample {
        attempt: u32::try_from(attempt).unwrap_or(0),
        started_at: from_ms(row.try_get("started_at").map_err(backend)?),
        latency_ms: u64::try_from(latency_ms).unwrap_or(0),
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: error.as_deref().map(AttemptError::from_stored),
    })
}

fn corrupt_json(_: &serde_json::Error) -> StoreError {
    corrupt("endpoint ids")
}
