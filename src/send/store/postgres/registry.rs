//! [`EndpointRegistry`] for [`PostgresStore`]: endpoints with their limits and token buckets.

use std::sync::Arc;

use super::super::rows::{self, ms};
use super::super::{EndpointRegistry, StoreError, codec};
use crate::retry::UnixMillis;
use crate::send::{Endpoint, EndpointId, EndpointStatus};

use super::{PostgresStore, backend};

impl EndpointRegistry for PostgresStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let limit = endpoint.rate_limit();
        let interval = limit.map(|l| i64::try_from(l.interval().as_millis()).unwrap_or(i64::MAX));
        sqlx::query(self.q("INSERT INTO {s}.hookrelay_endpoints AS e
                 (id, status, settings, max_in_flight, rate_requests, rate_interval_ms, rate_burst,
                  rate_level, rate_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($7 * $6, 0), 0)
             ON CONFLICT (id) DO UPDATE SET
                 status = excluded.status, settings = excluded.settings,
                 max_in_flight = excluded.max_in_flight,
                 rate_requests = excluded.rate_requests,
                 rate_interval_ms = excluded.rate_interval_ms,
                 rate_burst = excluded.rate_burst,
                 rate_level = CASE
                     WHEN (e.rate_requests, e.rate_interval_ms, e.rate_burst)
                          IS NOT DISTINCT FROM (excluded.rate_requests, excluded.rate_interval_ms,
                                                excluded.rate_burst)
                     THEN e.rate_level ELSE excluded.rate_level END,
                 rate_at = CASE
                     WHEN (e.rate_requests, e.rate_interval_ms, e.rate_burst)
                          IS NOT DISTINCT FROM (excluded.rate_requests, excluded.rate_interval_ms,
                                                excluded.rate_burst)
                     THEN e.rate_at ELSE excluded.rate_at END"))
        .bind(endpoint.id().as_str())
        .bind(endpoint.status().as_str())
        .bind(codec::encode_endpoint_sealed(endpoint, self.keyring())?)
        .bind(i64::from(endpoint.concurrency().get()))
        .bind(limit.map(|l| i64::from(l.requests())))
        .bind(interval)
        .bind(limit.map(|l| i64::from(l.burst())))
        .execute(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        let row = sqlx::query(
            self.q("SELECT id, status, settings FROM {s}.hookrelay_endpoints WHERE id = $1"),
        )
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|r| rows::endpoint(&r, self.keyring()).map(Arc::new))
            .transpose()
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        let rows = sqlx::query(
            self.q("SELECT id, status, settings FROM {s}.hookrelay_endpoints ORDER BY id"),
        )
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| rows::endpoint(r, self.keyring()).map(Arc::new))
            .collect()
    }

    async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(self.q("UPDATE {s}.hookrelay_endpoints
             SET status = $2,
                 settings = jsonb_set(settings::jsonb, '{status_note}',
                                      COALESCE(to_jsonb($3::text), 'null'::jsonb))::text
             WHERE id = $1"))
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(note)
        .execute(&self.inner.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("endpoint"));
        }
        Ok(())
    }

    /// One field changed in place.
    async fn set_failing_since(
        &self,
        id: &EndpointId,
        since: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(self.q("UPDATE {s}.hookrelay_endpoints
             SET settings = jsonb_set(settings::jsonb, '{failing_since_ms}',
                                      COALESCE(to_jsonb($2::int8), 'null'::jsonb))::text
             WHERE id = $1"))
        .bind(id.as_str())
        .bind(since.map(ms))
        .execute(&self.inner.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("endpoint"));
        }
        Ok(())
    }
}
