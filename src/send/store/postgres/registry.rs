//! [`EndpointRegistry`] for [`PostgresStore`]: endpoints with their limits and token buckets.

use std::sync::Arc;

use super::super::rows::{self, ms};
use super::super::{Cursor, EndpointQuery, EndpointRegistry, Page, StoreError, codec};
use crate::retry::UnixMillis;
use crate::send::{Endpoint, EndpointId, EndpointKey, EndpointStatus, Owner};

use super::{PostgresStore, backend, count};

/// Inserts or replaces an endpoint, moving a changed owner to its pending deliveries.
const PUT_ENDPOINT: &str = include_str!("sql/put_endpoint.sql");

/// Deletes an endpoint and cancels its pending deliveries.
const DELETE_ENDPOINT: &str = include_str!("sql/delete_endpoint.sql");

/// Endpoint rows read per round while filling a page whose filters only the decoded
/// settings can answer (profile, event type).
const SCAN_CHUNK: i64 = 256;

impl EndpointRegistry for PostgresStore {
    /// By id from the cursor on: status and owner are filtered in SQL, profile and event
    /// type on the decoded endpoints, reading further chunks until the page (and one more
    /// row, for `next`) is full or the table ends.
    async fn endpoint_page(
        &self,
        query: &EndpointQuery,
    ) -> Result<Page<Arc<Endpoint>>, StoreError> {
        let mut after = match &query.after {
            None => None,
            Some(cursor) => Some(cursor.endpoint_id().map_err(StoreError::from)?),
        };
        let limit = query.limit.get();
        let in_sql = query.profile.is_none() && query.event_type.is_none();
        let chunk = if in_sql { count(limit + 1) } else { SCAN_CHUNK };
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        let mut found: Vec<Arc<Endpoint>> = Vec::with_capacity(limit + 1);
        while found.len() <= limit {
            let rows = sqlx::query(self.q(
                "SELECT id, status, settings FROM {s}.hookrelay_endpoints
                 WHERE ($1::text IS NULL OR id > $1)
                   AND (cardinality($2::text[]) = 0 OR status = ANY($2))
                   AND ($3::text IS NULL OR owner = $3)
                 ORDER BY id LIMIT $4",
            ))
            .bind(after.as_ref().map(EndpointId::as_str))
            .bind(&statuses)
            .bind(query.owner.as_ref().map(Owner::as_str))
            .bind(chunk)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(backend)?;
            let last_chunk = count(rows.len()) < chunk;
            for row in &rows {
                let endpoint = rows::endpoint(row, self.keyring())?;
                after = Some(endpoint.id().clone());
                if found.len() <= limit && query.matches(&endpoint) {
                    found.push(Arc::new(endpoint));
                }
            }
            if last_chunk {
                break;
            }
        }
        Ok(Page::from_overfetch(found, query.limit, |e| {
            Cursor::endpoint(e.id())
        }))
    }

    /// By the unique index on (owner, key).
    async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<Arc<Endpoint>>, StoreError> {
        let row = sqlx::query(
            self.q("SELECT id, status, settings FROM {s}.hookrelay_endpoints
             WHERE COALESCE(owner, '') = COALESCE($1, '') AND endpoint_key = $2"),
        )
        .bind(owner.map(Owner::as_str))
        .bind(key.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|r| rows::endpoint(&r, self.keyring()).map(Arc::new))
            .transpose()
    }

    /// One statement: the endpoint row goes and its pending deliveries end cancelled.
    async fn delete_endpoint(&self, id: &EndpointId, now: UnixMillis) -> Result<u64, StoreError> {
        let (endpoints, cancelled): (i64, i64) = sqlx::query_as(self.q(DELETE_ENDPOINT))
            .bind(id.as_str())
            .bind(ms(now))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(backend)?;
        if endpoints == 0 {
            return Err(StoreError::not_found("endpoint"));
        }
        Ok(u64::try_from(cancelled).unwrap_or(0))
    }

    /// One statement: the endpoint, and a changed owner on its pending deliveries. A key
    /// another endpoint of the same owner holds fails the unique index: a conflict.
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let limit = endpoint.rate_limit();
        let interval = limit.map(|l| i64::try_from(l.interval().as_millis()).unwrap_or(i64::MAX));
        sqlx::query(self.q(PUT_ENDPOINT))
            .bind(endpoint.id().as_str())
            .bind(endpoint.status().as_str())
            .bind(codec::encode_endpoint_sealed(endpoint, self.keyring())?)
            .bind(i64::from(endpoint.concurrency().get()))
            .bind(limit.map(|l| i64::from(l.requests())))
            .bind(interval)
            .bind(limit.map(|l| i64::from(l.burst())))
            .bind(endpoint.owner().map(Owner::as_str))
            .bind(endpoint.key().map(EndpointKey::as_str))
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
