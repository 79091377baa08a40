//! [`DeliveryLog`] for [`PostgresStore`]: deliveries and attempts as stored, counts, purging.

use std::time::Duration;

use sqlx::Row as _;

use super::super::rows::{self, ms};
use super::super::{
    AttemptLog, DeliveryCounts, DeliveryLog, DeliveryQuery, DeliveryRecord, LogRetention, Purged,
    StoreError,
};
use crate::retry::UnixMillis;
use crate::send::DeliveryId;

use super::{PostgresStore, backend, count};

const DELIVERY_COLUMNS: &str = "d.id, d.status, d.dead_reason, d.attempts, d.last_status, \
     d.due_at, d.lease_until, d.endpoint_id, d.kind, d.finished_at, d.batch_id, \
     m.id AS message_id, m.event_id, m.event_type, m.created_at";

impl DeliveryLog for PostgresStore {
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

    /// The query names only the filters given, so each combination gets its own plan: a
    /// dead-letter listing reads the partial index on dead rows, a message's deliveries the
    /// index on `message_seq`, however long the history.
    async fn deliveries(
        &self,
        query: &DeliveryQuery,
        now: UnixMillis,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut filters = Vec::new();
        let mut next = 1;
        if query.message.is_some() {
            filters.push(format!(
                "d.message_seq = (SELECT seq FROM {{s}}.hookrelay_messages WHERE id = ${next})"
            ));
            next += 1;
        }
        if query.endpoint.is_some() {
            filters.push(format!("d.endpoint_id = ${next}"));
            next += 1;
        }
        if query.dead_only {
            filters.push("d.status = 'dead'".to_owned());
        }
        if query.since.is_some() {
            filters.push(format!("m.created_at >= ${next}"));
            next += 1;
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let sql = self.q(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {{s}}.hookrelay_deliveries d
             JOIN {{s}}.hookrelay_messages m ON m.seq = d.message_seq
             {filter}
             ORDER BY d.seq LIMIT ${next}"
        ));
        let mut q = sqlx::query(sql);
        if let Some(message) = &query.message {
            q = q.bind(message.as_str());
        }
        if let Some(endpoint) = &query.endpoint {
            q = q.bind(endpoint.as_str());
        }
        if let Some(since) = query.since {
            q = q.bind(ms(since));
        }
        let rows = q
            .bind((query.limit > 0).then(|| count(query.limit)))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| rows::delivery(r, now)).collect()
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let rows = sqlx::query(self.q(
            "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error, a.response_headers,
                    a.response_body, a.manual
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
               count(*) FILTER (WHERE status = 'batched') AS batched
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
