//! [`EndpointRegistry`] for [`SqliteStore`]: endpoints in `hookrelay_endpoints`, with their
//! owner and key in columns of their own (unique per owner).

use std::sync::Arc;

use super::super::rows::{self, ms};
use super::super::{EndpointQuery, EndpointRegistry, Page, StoreError, codec};
use crate::retry::UnixMillis;
use crate::send::store::Cursor;
use crate::send::{Endpoint, EndpointId, EndpointKey, EndpointStatus, Owner};

use super::{SqliteStore, backend};

/// Rows read at a time while a page of endpoints fills (filters SQL cannot answer, such as
/// subscriptions, are applied to each row).
const ENDPOINT_CHUNK: i64 = 256;

impl EndpointRegistry for SqliteStore {
    /// One transaction: the endpoint, and its pending deliveries' owner if it changed.
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let settings = codec::encode_endpoint_sealed(endpoint, self.keyring.as_deref())?;
        let owner = endpoint.owner().map(Owner::as_str);
        let mut tx = self.begin().await?;
        let before: Option<(Option<String>,)> =
            sqlx::query_as("SELECT owner FROM hookrelay_endpoints WHERE id = ?1")
                .bind(endpoint.id().as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        // Not an upsert: with two unique indexes, an explicit UPDATE or INSERT leaves no doubt
        // about which one a conflict came from (the key's, always).
        let write = if before.is_some() {
            "UPDATE hookrelay_endpoints
             SET status = ?2, settings = ?3, owner = ?4, endpoint_key = ?5 WHERE id = ?1"
        } else {
            "INSERT INTO hookrelay_endpoints (id, status, settings, owner, endpoint_key)
             VALUES (?1, ?2, ?3, ?4, ?5)"
        };
        sqlx::query(write)
            .bind(endpoint.id().as_str())
            .bind(endpoint.status().as_str())
            .bind(settings)
            .bind(owner)
            .bind(endpoint.key().map(EndpointKey::as_str))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some((old,)) = before
            && old.as_deref() != owner
        {
            sqlx::query(
                "UPDATE hookrelay_deliveries SET owner = ?2
                 WHERE endpoint_id = ?1 AND status = 'pending'",
            )
            .bind(endpoint.id().as_str())
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        let row = sqlx::query("SELECT id, status, settings FROM hookrelay_endpoints WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::endpoint(&r, self.keyring.as_deref()).map(Arc::new))
            .transpose()
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        let rows = sqlx::query("SELECT id, status, settings FROM hookrelay_endpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| rows::endpoint(r, self.keyring.as_deref()).map(Arc::new))
            .collect()
    }

    /// Owner and status are filtered in SQL, the rest row by row with
    /// [`EndpointQuery::matches`], reading on by id until the page and one more row are found.
    async fn endpoint_page(
        &self,
        query: &EndpointQuery,
    ) -> Result<Page<Arc<Endpoint>>, StoreError> {
        let mut after = query
            .after
            .as_ref()
            .map(Cursor::endpoint_id)
            .transpose()
            .map_err(StoreError::from)?;
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        let statuses = serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".to_owned());
        let limit = query.limit.get();
        let mut items = Vec::with_capacity(limit + 1);
        // One read transaction: every chunk sees the same snapshot.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Bounded: every round reads further along the ids, and stops at a short chunk.
        loop {
            let chunk = sqlx::query(include_str!("sql/endpoint_page.sql"))
                .bind(after.as_ref().map(EndpointId::as_str))
                .bind(query.owner.as_ref().map(Owner::as_str))
                .bind(&statuses)
                .bind(ENDPOINT_CHUNK)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            let full = i64::try_from(chunk.len()).unwrap_or(i64::MAX) == ENDPOINT_CHUNK;
            for row in &chunk {
                let endpoint = rows::endpoint(row, self.keyring.as_deref())?;
                after = Some(endpoint.id().clone());
                if query.matches(&endpoint) {
                    items.push(Arc::new(endpoint));
                    if items.len() > limit {
                        break;
                    }
                }
            }
            if items.len() > limit || !full {
                break;
            }
        }
        tx.rollback().await.map_err(backend)?;
        Ok(Page::from_overfetch(items, query.limit, |e| {
            Cursor::endpoint(e.id())
        }))
    }

    async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<Arc<Endpoint>>, StoreError> {
        // The unique index's own expression: owners are never empty, so '' is "no owner".
        let row = sqlx::query(
            "SELECT id, status, settings FROM hookrelay_endpoints
             WHERE COALESCE(owner, '') = ?1 AND endpoint_key = ?2",
        )
        .bind(owner.map_or("", Owner::as_str))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| rows::endpoint(&r, self.keyring.as_deref()).map(Arc::new))
            .transpose()
    }

    /// One transaction: the endpoint row goes, its pending deliveries end cancelled.
    async fn delete_endpoint(&self, id: &EndpointId, now: UnixMillis) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM hookrelay_endpoints WHERE id = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await.map_err(backend)?;
            return Err(StoreError::not_found("endpoint"));
        }
        let cancelled = sqlx::query(include_str!("sql/cancel_deliveries.sql"))
            .bind(id.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok(cancelled)
    }

    async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE hookrelay_endpoints
             SET status = ?2, settings = json_set(settings, '$.status_note', ?3) WHERE id = ?1",
        )
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(note)
        .execute(&self.pool)
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
        let done = sqlx::query(
            "UPDATE hookrelay_endpoints
             SET settings = json_set(settings, '$.failing_since_ms', ?2) WHERE id = ?1",
        )
        .bind(id.as_str())
        .bind(since.map(ms))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("endpoint"));
        }
        Ok(())
    }
}
