//! [`EndpointRegistry`] for [`SqliteStore`]: endpoints in `hookrelay_endpoints`.

use std::sync::Arc;

use super::super::rows::{self, ms};
use super::super::{EndpointRegistry, StoreError, codec};
use crate::retry::UnixMillis;
use crate::send::{Endpoint, EndpointId, EndpointStatus};

use super::{SqliteStore, backend};

impl EndpointRegistry for SqliteStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hookrelay_endpoints (id, status, settings) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, settings = excluded.settings",
        )
        .bind(endpoint.id().as_str())
        .bind(endpoint.status().as_str())
        .bind(codec::encode_endpoint_sealed(
            endpoint,
            self.keyring.as_deref(),
        )?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
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
