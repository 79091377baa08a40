//! [`DeliveryQueue`] for [`SqliteStore`]: publishing, claiming, recording, batching.

use std::time::Duration;

use sqlx::{Row as _, Sqlite, Transaction};

use super::super::rows::{self, from_ms, ms};
use super::super::{
    AttemptError, AttemptRecord, ClaimedDelivery, DeadReason, DeliveryQueue, Enqueued,
    FencingToken, NewBatch, NewMessage, NextStep, Publication, Recorded, Release, StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, EndpointId, MessageId, Owner};

use super::{SqliteStore, backend, corrupt};

/// Inserts a message and its body forms inside `tx`; returns its row number.
async fn insert_message(
    tx: &mut Transaction<'_, Sqlite>,
    m: &NewMessage,
) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO hookrelay_messages (id, event_id, event_type, created_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING seq",
    )
    .bind(m.id.as_str())
    .bind(m.event_id.as_str())
    .bind(m.event_type.as_str())
    .bind(ms(m.created_at))
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    for (form, body) in m.bodies.iter().enumerate() {
        sqlx::query("INSERT INTO hookrelay_bodies (message_seq, form, body) VALUES (?1, ?2, ?3)")
            .bind(seq)
            .bind(i64::try_from(form).unwrap_or(0))
            .bind(&body[..])
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(seq)
}

async fn next_tokens(tx: &mut Transaction<'_, Sqlite>, n: usize) -> Result<u64, StoreError> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "UPDATE hookrelay_counters SET value = value + ?1 WHERE name = 'fencing_token' RETURNING value",
    )
    .bind(n)
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(u64::try_from(last - n).unwrap_or(0))
}

/// The claim statement (`sql/claim.sql`).
const CLAIM_SQL: &str = include_str!("sql/claim.sql");
/// The record statement (`sql/record.sql`), `{rows}` to fill in.
const RECORD_SQL: &str = include_str!("sql/record.sql");
/// The attempt-log insert (`sql/record_attempts.sql`), `{rows}` to fill in.
const RECORD_ATTEMPTS_SQL: &str = include_str!("sql/record_attempts.sql");

/// Rows bound in one statement at most.
const ROWS_PER_STATEMENT: usize = 500;

/// `sql` with `{rows}` replaced by `rows` groups of `columns` parameters: the rows of a
/// batch are bound as values, which SQLite reads without parsing anything (a JSON list
/// costs a parse per column of each row).
///
/// At most [`ROWS_PER_STATEMENT`] rows a statement, so that the parameters stay far below
/// SQLite's limit (32 766).
fn with_rows(sql: &str, rows: usize, columns: usize) -> sqlx::AssertSqlSafe<String> {
    let group = format!("({})", vec!["?"; columns].join(", "));
    // Only placeholders are added: every value is bound.
    sqlx::AssertSqlSafe(sql.replace("{rows}", &vec![group.as_str(); rows].join(", ")))
}

/// Claims due deliveries inside `tx` (see [`DeliveryQueue::claim`]).
///
/// The hot queries name their partial index (`INDEXED BY`): without statistics SQLite's
/// planner rates `status = 'pending'` on the log's `(status, seq)` index as more selective than
/// the due-time range, and would read every pending row and sort them on every claim. For the
/// same reason the updates that join a JSON list of ids write `+d.status` (no index on it), so
/// that they look each delivery up by id.
async fn claim_in(
    tx: &mut Transaction<'_, Sqlite>,
    now: UnixMillis,
    limit: usize,
    lease: Duration,
    skip: &[EndpointId],
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let skip_json = serde_json::to_string(&skip.iter().map(EndpointId::as_str).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned());
    let rows = sqlx::query(CLAIM_SQL)
        .bind(ms(now))
        .bind(&skip_json)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // One fencing token per claim: every delivery claimed here carries it; a later claim
    // of any of them gets a larger one.
    let token = next_tokens(tx, 1).await? + 1;
    let until = ms(now.saturating_add(lease));
    let mut seqs = Vec::with_capacity(rows.len());
    for row in &rows {
        seqs.push(row.try_get::<i64, _>("seq").map_err(backend)?);
    }
    sqlx::query(
        "UPDATE hookrelay_deliveries SET lease_token = ?2, lease_until = ?3, due_at = ?3
         WHERE seq IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(&seqs).unwrap_or_else(|_| "[]".to_owned()))
    .bind(i64::try_from(token).unwrap_or(i64::MAX))
    .bind(until)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| rows::claim(row, FencingToken(token)))
        .collect()
}

/// Records results inside `tx` (see [`DeliveryQueue::record`]): three set-based statements
/// however many results there are.
async fn record_in(
    tx: &mut Transaction<'_, Sqlite>,
    results: Vec<AttemptRecord>,
) -> Result<Vec<Recorded>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let mut updated: Vec<(String, i64, String)> = Vec::with_capacity(results.len());
    for chunk in results.chunks(ROWS_PER_STATEMENT) {
        let sql = with_rows(RECORD_SQL, chunk.len(), 9);
        let mut update = sqlx::query_as(sql);
        for r in chunk {
            let next = r.next.status();
            let status = next.as_str();
            let finished =
                (status != "pending").then(|| ms(r.started_at.saturating_add(r.latency)));
            update = update
                .bind(r.delivery.as_str())
                .bind(i64::try_from(r.token.0).unwrap_or(i64::MAX))
                .bind(status)
                .bind(next.dead_reason().map(DeadReason::as_str))
                .bind(r.next.due().map(ms))
                .bind(i64::from(r.attempt))
                .bind(r.status.map(i64::from))
                .bind(i64::from(r.charged && r.attempt > 0))
                .bind(finished);
        }
        updated.extend(update.fetch_all(&mut **tx).await.map_err(backend)?);
    }
    let saved: std::collections::HashMap<&str, (i64, &str)> = updated
        .iter()
        .map(|(id, seq, endpoint)| (id.as_str(), (*seq, endpoint.as_str())))
        .collect();
    let mut out = Vec::with_capacity(results.len());
    let mut attempts = Vec::new();
    let mut disable = Vec::new();
    for r in &results {
        let Some(&(seq, endpoint)) = saved.get(r.delivery.as_str()) else {
            out.push(Recorded::Stale);
            continue;
        };
        out.push(Recorded::Saved);
        if r.next == NextStep::DisableEndpoint {
            disable.push(endpoint);
        }
        if r.attempt > 0 {
            attempts.push((seq, r));
        }
    }
    if !disable.is_empty() {
        sqlx::query(
            "UPDATE hookrelay_endpoints SET status = 'disabled'
             WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&disable).unwrap_or_else(|_| "[]".to_owned()))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
        let sql = with_rows(RECORD_ATTEMPTS_SQL, chunk.len(), 10);
        let mut insert = sqlx::query(sql);
        for &(seq, r) in chunk {
            insert = insert
                .bind(seq)
                .bind(i64::from(r.attempt))
                .bind(ms(r.started_at))
                .bind(i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX))
                .bind(r.status.map(i64::from))
                .bind(r.error.map(AttemptError::stored))
                .bind(serde_json::to_string(&r.request_headers).unwrap_or_else(|_| "[]".to_owned()))
                .bind(
                    serde_json::to_string(&r.response_headers).unwrap_or_else(|_| "[]".to_owned()),
                )
                .bind(&r.response_body[..])
                .bind(i64::from(r.manual));
        }
        insert.execute(&mut **tx).await.map_err(backend)?;
    }
    Ok(out)
}

impl DeliveryQueue for SqliteStore {
    async fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(publications.len());
        for publication in publications {
            if let Some(key) = &publication.key {
                let existing: Option<String> = sqlx::query_scalar(
                    "SELECT message_id FROM hookrelay_publish_keys WHERE key = ?1 AND expires_at > ?2",
                )
                .bind(&key.key)
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
                if let Some(first) = existing {
                    out.push(Enqueued::Existing(
                        MessageId::new(first).map_err(|_| corrupt("message id"))?,
                    ));
                    continue;
                }
                sqlx::query(
                    "INSERT INTO hookrelay_publish_keys (key, message_id, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at",
                )
                .bind(&key.key)
                .bind(publication.message.id.as_str())
                .bind(ms(key.expires_at))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            let m = &publication.message;
            let seq = insert_message(&mut tx, m).await?;
            let mut superseded = 0;
            for d in &publication.deliveries {
                let mut due = ms(now);
                let (mut throttle_key, mut throttle_due) = (None, None);
                if let Some(group) = &d.throttle {
                    let replaced: Vec<Option<i64>> = sqlx::query_scalar(
                        "UPDATE hookrelay_deliveries INDEXED BY hookrelay_deliveries_throttled
                         SET status = 'superseded', finished_at = ?3,
                             lease_token = NULL, lease_until = NULL
                         WHERE endpoint_id = ?1 AND throttle_key = ?2 AND status = 'pending'
                           AND (lease_until IS NULL OR lease_until <= ?3)
                         RETURNING due_at",
                    )
                    .bind(d.endpoint.as_str())
                    .bind(&group.key)
                    .bind(ms(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend)?;
                    superseded += u32::try_from(replaced.len()).unwrap_or(u32::MAX);
                    let latest: Option<Option<i64>> = sqlx::query_scalar(
                        "SELECT throttle_due_at FROM hookrelay_deliveries
                         WHERE endpoint_id = ?1 AND throttle_key = ?2 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(d.endpoint.as_str())
                    .bind(&group.key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                    let pending = replaced.into_iter().flatten().min().map(from_ms);
                    due = ms(group.due_at(now, pending, latest.flatten().map(from_ms)));
                    if group.window.is_some() {
                        throttle_key = Some(group.key.as_str());
                        throttle_due = Some(due);
                    }
                }
                sqlx::query(
                    "INSERT INTO hookrelay_deliveries
                     (id, message_seq, endpoint_id, form, status, due_at, kind, order_key,
                      throttle_key, owner, event_type, created_at, throttle_due_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .bind(d.id.as_str())
                .bind(seq)
                .bind(d.endpoint.as_str())
                .bind(i64::from(d.body))
                .bind(due)
                .bind(d.kind.as_str())
                .bind(d.order_key.as_deref())
                .bind(throttle_key)
                .bind(d.owner.as_ref().map(Owner::as_str))
                .bind(m.event_type.as_str())
                .bind(ms(m.created_at))
                .bind(throttle_due)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            out.push(Enqueued::Created {
                id: m.id.clone(),
                superseded,
            });
        }
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }

    async fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let claims = claim_in(&mut tx, now, limit, lease, skip).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claims)
    }

    async fn record(&self, results: Vec<AttemptRecord>) -> Result<Vec<Recorded>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let out = record_in(&mut tx, results).await?;
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }

    /// One transaction, one commit, for both.
    async fn record_and_claim(
        &self,
        results: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<(Vec<Recorded>, Vec<ClaimedDelivery>), StoreError> {
        let mut tx = self.begin().await?;
        let recorded = record_in(&mut tx, results).await?;
        let claims = if limit == 0 {
            Vec::new()
        } else {
            claim_in(&mut tx, now, limit, lease, skip).await?
        };
        tx.commit().await.map_err(backend)?;
        Ok((recorded, claims))
    }

    /// 2 ms: each commit costs a round trip to SQLite's worker thread and, with
    /// [`Durability::PowerLoss`](super::Durability::PowerLoss), an fsync.
    fn batch_window(&self) -> Duration {
        Duration::from_millis(2)
    }

    async fn release(&self, releases: Vec<Release>) -> Result<(), StoreError> {
        if releases.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for r in releases {
            sqlx::query(
                "UPDATE hookrelay_deliveries SET lease_token = NULL, lease_until = NULL, due_at = ?3
                 WHERE id = ?1 AND lease_token = ?2 AND status = 'pending'",
            )
            .bind(r.delivery.as_str())
            .bind(i64::try_from(r.token.0).unwrap_or(i64::MAX))
            .bind(ms(r.due_at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due_at) FROM hookrelay_deliveries INDEXED BY hookrelay_deliveries_due
             WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(next.map(from_ms))
    }

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        let mut tx = self.begin().await?;
        let queued: Vec<String> = sqlx::query_scalar(
            "UPDATE hookrelay_deliveries
             SET status = 'pending', dead_reason = NULL, finished_at = NULL, due_at = ?2,
                 manual = 1, lease_token = NULL, lease_until = NULL
             WHERE id IN (SELECT value FROM json_each(?1))
               AND status NOT IN ('superseded', 'batched', 'cancelled')
               AND NOT (status = 'pending' AND COALESCE(lease_until > ?2, 0))
             RETURNING id",
        )
        .bind(serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned()))
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        queued
            .into_iter()
            .map(|id| DeliveryId::new(id).map_err(|_| corrupt("delivery id")))
            .collect()
    }

    async fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let members: Vec<serde_json::Value> = batch
            .members
            .iter()
            .map(|(id, token)| {
                serde_json::json!({
                    "id": id.as_str(),
                    "token": i64::try_from(token.0).unwrap_or(i64::MAX),
                })
            })
            .collect();
        let members = serde_json::Value::Array(members).to_string();
        let mut tx = self.begin().await?;
        let marked = sqlx::query(
            "UPDATE hookrelay_deliveries AS d
             SET status = 'batched', batch_id = ?2, finished_at = ?3,
                 lease_token = NULL, lease_until = NULL
             FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.token') AS token
                   FROM json_each(?1)) AS j
             WHERE d.id = j.id AND d.lease_token = j.token AND +d.status = 'pending'",
        )
        .bind(&members)
        .bind(batch.delivery.as_str())
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if usize::try_from(marked).unwrap_or(0) != batch.members.len() {
            // A member's claim is stale: leave everything as it was.
            tx.rollback().await.map_err(backend)?;
            return Ok(None);
        }
        let body = batch.message.bodies.first().cloned().unwrap_or_default();
        let seq = insert_message(&mut tx, &batch.message).await?;
        let token = next_tokens(&mut tx, 1).await? + 1;
        let until = ms(now.saturating_add(lease));
        // The batch keeps its members' owner (their endpoint's).
        sqlx::query(
            "INSERT INTO hookrelay_deliveries
             (id, message_seq, endpoint_id, form, status, due_at, kind, lease_token, lease_until,
              owner, event_type, created_at)
             VALUES (?1, ?2, ?3, 0, 'pending', ?4, 'batch', ?5, ?4,
                     (SELECT owner FROM hookrelay_deliveries WHERE id = ?8), ?6, ?7)",
        )
        .bind(batch.delivery.as_str())
        .bind(seq)
        .bind(batch.endpoint.as_str())
        .bind(until)
        .bind(i64::try_from(token).unwrap_or(i64::MAX))
        .bind(batch.message.event_type.as_str())
        .bind(ms(batch.message.created_at))
        .bind(batch.members.first().map(|(id, _)| id.as_str()))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(batch.into_claim(body, FencingToken(token))))
    }
}

#[cfg(test)]
mod tests {
    use super::{CLAIM_SQL, RECORD_SQL, with_rows};

    /// The plan of `sql`, as `EXPLAIN QUERY PLAN` prints it, on a migrated database.
    async fn plan(sql: &str) -> String {
        let store = super::super::SqliteStore::connect("sqlite::memory:")
            .await
            .unwrap();
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind(0i64)
                .bind("[]")
                .bind(16i64)
                .fetch_all(store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    /// The hot path never reads the pending rows through the log's `(status, seq)` index:
    /// without statistics SQLite would (it cost 30x in `benches/send.rs`).
    #[tokio::test]
    async fn claim_and_record_use_their_own_indexes() {
        let claim = plan(CLAIM_SQL).await;
        assert!(
            claim.contains("USING INDEX hookrelay_deliveries_due"),
            "{claim}"
        );
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let record = plan(&with_rows(RECORD_SQL, 3, 9).0).await;
        assert!(
            record.contains("sqlite_autoindex_hookrelay_deliveries_1 (id=?)"),
            "{record}"
        );
        assert!(!record.contains("hookrelay_deliveries_status"), "{record}");
    }
}
