//! [`DeliveryLog`] for [`SqliteStore`]: deliveries and attempts as stored, counts, purging.

use std::time::Duration;

use sqlx::Row as _;

use super::super::rows::{self, ms};
use super::super::{
    AttemptLog, DeliveryCounts, DeliveryLog, DeliveryQuery, DeliveryRecord, LogRetention, Purged,
    StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, EndpointId, MessageId};

use super::{SqliteStore, backend};

const DELIVERY_COLUMNS: &str = "d.id, d.status, d.dead_reason, d.attempts, d.last_status, \
     d.due_at, d.lease_until, d.endpoint_id, d.kind, d.finished_at, d.batch_id, \
     m.id AS message_id, \
     m.event_id, m.event_type, m.created_at";

impl DeliveryLog for SqliteStore {
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

    async fn deliveries(
        &self,
        query: &DeliveryQuery,
        now: UnixMillis,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let limit = if query.limit == 0 {
            -1
        } else {
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM hookrelay_deliveries d
             JOIN hookrelay_messages m ON m.seq = d.message_seq
             WHERE (?1 IS NULL OR m.id = ?1) AND (?2 IS NULL OR d.endpoint_id = ?2)
               AND (?3 = 0 OR d.status = 'dead') AND (?5 IS NULL OR m.created_at >= ?5)
             ORDER BY d.seq LIMIT ?4"
        )))
        .bind(query.message.as_ref().map(MessageId::as_str))
        .bind(query.endpoint.as_ref().map(EndpointId::as_str))
        .bind(i64::from(query.dead_only))
        .bind(limit)
        .bind(query.since.map(ms))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| rows::delivery(r, now)).collect()
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.attempt, a.started_at, a.latency_ms, a.status, a.error, a.response_headers,
                    a.response_body, a.manual
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
               COALESCE(SUM(status = 'batched'), 0) AS batched
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
