//! [`DeliveryQueue`] for [`PostgresStore`]: publishing (also inside your transaction),
//! claiming across processes, recording, batching.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{Acquire as _, Row as _};

use super::super::rows::{self, from_ms, ms};
use super::super::{
    AttemptError, AttemptRecord, ClaimedDelivery, DeadReason, DeliveryQueue, Enqueued,
    FencingToken, NewBatch, NextStep, Publication, Recorded, Release, StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, EndpointId, MessageId, Owner};

use super::{PostgresStore, backend, corrupt, count};

/// The claim, in one statement (see [`PostgresStore`], "Claims across processes").
const CLAIM: &str = include_str!("sql/claim.sql");

/// Records results, in one statement (see [`DeliveryQueue::record`]).
const RECORD: &str = include_str!("sql/record.sql");

impl PostgresStore {
    /// Writes publications inside `conn`'s current transaction (or as one implicit
    /// transaction if none is open): the outbox's write. Three statements however many
    /// publications: the publish keys (if any), then messages, bodies and deliveries
    /// together with the `NOTIFY`.
    pub(crate) async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut out: Vec<Option<Enqueued>> = vec![None; publications.len()];
        let mut keep = vec![true; publications.len()];
        // Publish keys: one upsert claims the fresh ones; the rest name their first message.
        let mut first_of_key: HashMap<&str, usize> = HashMap::new();
        let (mut keys, mut key_ids, mut key_expiry, mut key_index) =
            (vec![], vec![], vec![], vec![]);
        for (i, p) in publications.iter().enumerate() {
            if let Some(key) = &p.key {
                if let Some(&first) = first_of_key.get(key.key.as_str()) {
                    // The same key twice in one batch: the second is the first's duplicate.
                    keep[i] = false;
                    out[i] = Some(Enqueued::Existing(publications[first].message.id.clone()));
                    continue;
                }
                first_of_key.insert(&key.key, i);
                keys.push(key.key.as_str());
                key_ids.push(p.message.id.as_str());
                key_expiry.push(ms(key.expires_at));
                key_index.push(i);
            }
        }
        if !keys.is_empty() {
            let claimed: Vec<String> = sqlx::query_scalar(self.q(
                "INSERT INTO {s}.hookrelay_publish_keys AS k (key, message_id, expires_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[])
                 ON CONFLICT (key) DO UPDATE
                     SET message_id = excluded.message_id, expires_at = excluded.expires_at
                     WHERE k.expires_at <= $4
                 RETURNING key",
            ))
            .bind(&keys)
            .bind(&key_ids)
            .bind(&key_expiry)
            .bind(ms(now))
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
            let claimed: std::collections::HashSet<&str> =
                claimed.iter().map(String::as_str).collect();
            let taken: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !claimed.contains(k))
                .collect();
            if !taken.is_empty() {
                let rows: Vec<(String, String)> = sqlx::query_as(self.q(
                    "SELECT key, message_id FROM {s}.hookrelay_publish_keys WHERE key = ANY($1)",
                ))
                .bind(&taken)
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?;
                let existing: HashMap<&str, &str> =
                    rows.iter().map(|(k, m)| (k.as_str(), m.as_str())).collect();
                for (k, &i) in keys.iter().zip(&key_index) {
                    if claimed.contains(k) {
                        continue;
                    }
                    let first = existing.get(k).ok_or_else(|| corrupt("publish key"))?;
                    keep[i] = false;
                    out[i] = Some(Enqueued::Existing(
                        MessageId::new(*first).map_err(|_| corrupt("message id"))?,
                    ));
                }
            }
        }
        let throttled = publications
            .iter()
            .zip(&keep)
            .any(|(p, keep)| *keep && p.deliveries.iter().any(|d| d.throttle.is_some()));
        let (mut m_id, mut m_event, mut m_type, mut m_created) = (vec![], vec![], vec![], vec![]);
        let (mut b_msg, mut b_form, mut b_body) = (vec![], vec![], vec![]);
        let (mut d_id, mut d_msg, mut d_endpoint, mut d_form) = (vec![], vec![], vec![], vec![]);
        let (mut d_kind, mut d_order, mut d_owner) = (vec![], vec![], vec![]);
        for (i, p) in publications.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let m = &p.message;
            m_id.push(m.id.as_str());
            m_event.push(m.event_id.as_str());
            m_type.push(m.event_type.as_str());
            m_created.push(ms(m.created_at));
            for (form, body) in m.bodies.iter().enumerate() {
                b_msg.push(m.id.as_str());
                b_form.push(i16::try_from(form).unwrap_or(i16::MAX));
                b_body.push(&body[..]);
            }
            if !throttled {
                for d in &p.deliveries {
                    d_id.push(d.id.as_str());
                    d_msg.push(m.id.as_str());
                    d_endpoint.push(d.endpoint.as_str());
                    d_form.push(i16::from(d.body));
                    d_kind.push(d.kind.as_str());
                    d_order.push(d.order_key.as_deref());
                    d_owner.push(d.owner.as_ref().map(Owner::as_str));
                }
            }
            out[i] = Some(Enqueued::Created {
                id: m.id.clone(),
                superseded: 0,
            });
        }
        if m_id.is_empty() {
            return out
                .into_iter()
                .map(|e| e.ok_or_else(|| corrupt("publication")))
                .collect();
        }
        // Messages, bodies and (unless throttling needs them one by one, in order) the
        // deliveries, with the NOTIFY, in one statement.
        let seqs: Vec<(i64, String)> = sqlx::query_as(self.q("WITH m AS (
                 INSERT INTO {s}.hookrelay_messages (id, event_id, event_type, created_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])
                 RETURNING seq, id, event_type, created_at
             ),
             b AS (
                 INSERT INTO {s}.hookrelay_bodies (message_seq, form, body)
                 SELECT m.seq, x.form, x.body
                 FROM UNNEST($5::text[], $6::int2[], $7::bytea[]) AS x(message_id, form, body)
                 JOIN m ON m.id = x.message_id
             ),
             d AS (
                 INSERT INTO {s}.hookrelay_deliveries
                     (id, message_seq, endpoint_id, form, status, due_at, kind, order_key,
                      owner, event_type, created_at)
                 SELECT x.id, m.seq, x.endpoint_id, x.form, 'pending', $11, x.kind, x.order_key,
                        x.owner, m.event_type, m.created_at
                 FROM UNNEST($8::text[], $9::text[], $10::text[], $12::int2[], $14::text[],
                             $15::text[], $17::text[])
                     AS x(id, message_id, endpoint_id, form, kind, order_key, owner)
                 JOIN m ON m.id = x.message_id
             ),
             n AS (SELECT pg_notify($13, '') WHERE $16)
             SELECT m.seq, m.id FROM m WHERE (SELECT count(*) FROM n) >= 0"))
        .bind(&m_id)
        .bind(&m_event)
        .bind(&m_type)
        .bind(&m_created)
        .bind(&b_msg)
        .bind(&b_form)
        .bind(&b_body)
        .bind(&d_id)
        .bind(&d_msg)
        .bind(&d_endpoint)
        .bind(ms(now))
        .bind(&d_form)
        .bind(&self.inner.channel)
        .bind(&d_kind)
        .bind(&d_order)
        .bind(!throttled && !d_id.is_empty())
        .bind(&d_owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        if throttled {
            let seq_of: HashMap<&str, i64> =
                seqs.iter().map(|(seq, id)| (id.as_str(), *seq)).collect();
            for (i, p) in publications.iter().enumerate() {
                if !keep[i] {
                    continue;
                }
                let seq = *seq_of
                    .get(p.message.id.as_str())
                    .ok_or_else(|| corrupt("message seq"))?;
                let superseded = self.insert_throttled(conn, seq, p, now).await?;
                out[i] = Some(Enqueued::Created {
                    id: p.message.id.clone(),
                    superseded,
                });
            }
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(&self.inner.channel)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        out.into_iter()
            .map(|e| e.ok_or_else(|| corrupt("publication")))
            .collect()
    }

    /// Inserts one publication's deliveries one by one, each first superseding the pending
    /// deliveries of its throttle group that no worker holds (see [`NewDelivery::throttle`](super::NewDelivery::throttle)).
    async fn insert_throttled(
        &self,
        conn: &mut PgConnection,
        seq: i64,
        publication: &Publication,
        now: UnixMillis,
    ) -> Result<u32, StoreError> {
        let mut superseded = 0;
        for d in &publication.deliveries {
            let mut due = ms(now);
            let (mut throttle_key, mut throttle_due) = (None, None);
            if let Some(group) = &d.throttle {
                let replaced: Vec<Option<i64>> =
                    sqlx::query_scalar(self.q("UPDATE {s}.hookrelay_deliveries
                     SET status = 'superseded', finished_at = $3,
                         lease_token = NULL, lease_until = NULL
                     WHERE endpoint_id = $1 AND throttle_key = $2 AND status = 'pending'
                       AND (lease_until IS NULL OR lease_until <= $3)
                     RETURNING due_at"))
                    .bind(d.endpoint.as_str())
                    .bind(&group.key)
                    .bind(ms(now))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend)?;
                superseded += u32::try_from(replaced.len()).unwrap_or(u32::MAX);
                let latest: Option<Option<i64>> = sqlx::query_scalar(
                    self.q("SELECT throttle_due_at FROM {s}.hookrelay_deliveries
                     WHERE endpoint_id = $1 AND throttle_key = $2 ORDER BY seq DESC LIMIT 1"),
                )
                .bind(d.endpoint.as_str())
                .bind(&group.key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
                let pending = replaced.into_iter().flatten().min().map(from_ms);
                due = ms(group.due_at(now, pending, latest.flatten().map(from_ms)));
                if group.window.is_some() {
                    throttle_key = Some(group.key.as_str());
                    throttle_due = Some(due);
                }
            }
            sqlx::query(self.q("INSERT INTO {s}.hookrelay_deliveries
                 (id, message_seq, endpoint_id, form, status, due_at, kind, order_key, throttle_key,
                  throttle_due_at, owner, event_type, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12)"))
            .bind(d.id.as_str())
            .bind(seq)
            .bind(d.endpoint.as_str())
            .bind(i16::from(d.body))
            .bind(due)
            .bind(d.kind.as_str())
            .bind(d.order_key.as_deref())
            .bind(throttle_key)
            .bind(throttle_due)
            .bind(d.owner.as_ref().map(Owner::as_str))
            .bind(publication.message.event_type.as_str())
            .bind(ms(publication.message.created_at))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        }
        Ok(superseded)
    }
}

impl PostgresStore {
    async fn claim_in(
        &self,
        conn: &mut PgConnection,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let skip: Vec<&str> = skip.iter().map(EndpointId::as_str).collect();
        let rows = sqlx::query(self.q(CLAIM))
            .bind(ms(now))
            .bind(count(limit))
            .bind(ms(now.saturating_add(lease)))
            .bind(&skip)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let token: i64 = row.try_get("lease_token").map_err(backend)?;
                rows::claim(row, FencingToken(u64::try_from(token).unwrap_or(0)))
            })
            .collect()
    }

    async fn record_in(
        &self,
        conn: &mut PgConnection,
        results: &[AttemptRecord],
    ) -> Result<Vec<Recorded>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let n = results.len();
        let mut id = Vec::with_capacity(n);
        let mut token = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut reason = Vec::with_capacity(n);
        let mut due = Vec::with_capacity(n);
        let mut attempt = Vec::with_capacity(n);
        let mut http = Vec::with_capacity(n);
        let mut started = Vec::with_capacity(n);
        let mut latency = Vec::with_capacity(n);
        let mut error = Vec::with_capacity(n);
        let mut headers = Vec::with_capacity(n);
        let mut sent = Vec::with_capacity(n);
        let mut body = Vec::with_capacity(n);
        let mut disable = Vec::with_capacity(n);
        let mut charged = Vec::with_capacity(n);
        let mut manual = Vec::with_capacity(n);
        let mut finished = Vec::with_capacity(n);
        for r in results {
            let next = r.next.status();
            let (s, why, at) = (
                next.as_str(),
                next.dead_reason().map(DeadReason::as_str),
                r.next.due().map(ms),
            );
            charged.push(i32::from(r.charged && r.attempt > 0));
            manual.push(r.manual);
            finished.push((s != "pending").then(|| ms(r.started_at.saturating_add(r.latency))));
            id.push(r.delivery.as_str());
            token.push(i64::try_from(r.token.0).unwrap_or(i64::MAX));
            status.push(s);
            reason.push(why);
            due.push(at);
            attempt.push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
            http.push(r.status.map(i32::from));
            started.push(ms(r.started_at));
            latency.push(i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX));
            error.push(r.error.map(AttemptError::stored));
            headers.push(
                serde_json::to_string(&r.response_headers).unwrap_or_else(|_| "[]".to_owned()),
            );
            sent.push(
                serde_json::to_string(&r.request_headers).unwrap_or_else(|_| "[]".to_owned()),
            );
            body.push(&r.response_body[..]);
            disable.push(r.next == NextStep::DisableEndpoint);
        }
        let saved: Vec<String> = sqlx::query_scalar(self.q(RECORD))
            .bind(&id)
            .bind(&token)
            .bind(&status)
            .bind(&reason)
            .bind(&due)
            .bind(&attempt)
            .bind(&http)
            .bind(&started)
            .bind(&latency)
            .bind(&error)
            .bind(&headers)
            .bind(&body)
            .bind(&disable)
            .bind(&charged)
            .bind(&manual)
            .bind(&finished)
            .bind(&sent)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        let saved: std::collections::HashSet<&str> = saved.iter().map(String::as_str).collect();
        Ok(results
            .iter()
            .map(|r| {
                if saved.contains(r.delivery.as_str()) {
                    Recorded::Saved
                } else {
                    Recorded::Stale
                }
            })
            .collect())
    }
}

impl DeliveryQueue for PostgresStore {
    async fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let out = self.enqueue_in(&mut tx, publications, now).await?;
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
        // One statement: its own transaction.
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        self.claim_in(&mut conn, now, limit, lease, skip).await
    }

    async fn record(&self, results: Vec<AttemptRecord>) -> Result<Vec<Recorded>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        self.record_in(&mut conn, &results).await
    }

    /// One transaction: the results, then the claim (two statements, one commit).
    async fn record_and_claim(
        &self,
        results: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<(Vec<Recorded>, Vec<ClaimedDelivery>), StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let mut tx = conn.begin().await.map_err(backend)?;
        let recorded = self.record_in(&mut tx, &results).await?;
        let claims = if limit == 0 {
            Vec::new()
        } else {
            self.claim_in(&mut tx, now, limit, lease, skip).await?
        };
        tx.commit().await.map_err(backend)?;
        Ok((recorded, claims))
    }

    /// 2 ms unless [`PostgresStoreBuilder::batch_window`](super::PostgresStoreBuilder::batch_window)
    /// says otherwise: each round is a transaction whose commit waits for the WAL flush.
    fn batch_window(&self) -> Duration {
        self.inner.batch_window
    }

    fn new_work(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.subscribe();
        async move {
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    async fn release(&self, releases: Vec<Release>) -> Result<(), StoreError> {
        if releases.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = releases.iter().map(|r| r.delivery.as_str()).collect();
        let tokens: Vec<i64> = releases
            .iter()
            .map(|r| i64::try_from(r.token.0).unwrap_or(i64::MAX))
            .collect();
        let due: Vec<i64> = releases.iter().map(|r| ms(r.due_at)).collect();
        sqlx::query(self.q("UPDATE {s}.hookrelay_deliveries d
             SET lease_token = NULL, lease_until = NULL, due_at = r.due
             FROM UNNEST($1::text[], $2::int8[], $3::int8[]) AS r(id, token, due)
             WHERE d.id = r.id AND d.lease_token = r.token AND d.status = 'pending'"))
        .bind(&ids)
        .bind(&tokens)
        .bind(&due)
        .execute(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// The earliest due time over active endpoints, later for an endpoint whose shared
    /// bucket is empty (when it has a token again) or whose cap is reached (when its first
    /// lease runs out).
    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(self.q("SELECT MIN(GREATEST(
                 CASE WHEN held.n >= e.max_in_flight THEN held.first_end ELSE due.at END,
                 CASE WHEN e.rate_requests IS NOT NULL AND e.rate_level < e.rate_interval_ms
                      THEN e.rate_at + (e.rate_interval_ms - e.rate_level + e.rate_requests - 1)
                                       / e.rate_requests
                      ELSE 0 END))
             FROM {s}.hookrelay_endpoints e
             CROSS JOIN LATERAL (
                 SELECT MIN(d.due_at) AS at FROM {s}.hookrelay_deliveries d
                 WHERE d.endpoint_id = e.id AND d.status = 'pending'
                   AND (d.order_key IS NULL OR d.lease_token IS NOT NULL OR NOT EXISTS (
                        SELECT 1 FROM {s}.hookrelay_deliveries o
                        WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
                          AND o.status = 'pending' AND o.seq < d.seq))) due
             CROSS JOIN LATERAL (
                 SELECT count(*) AS n, MIN(d.lease_until) AS first_end
                 FROM {s}.hookrelay_deliveries d
                 WHERE d.endpoint_id = e.id AND d.status = 'pending'
                   AND d.lease_token IS NOT NULL) held
             WHERE e.status = 'active' AND due.at IS NOT NULL"))
        .fetch_one(&self.inner.pool)
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
        let queued: Vec<String> = sqlx::query_scalar(self.q("WITH queued AS (
                 UPDATE {s}.hookrelay_deliveries
                 SET status = 'pending', dead_reason = NULL, finished_at = NULL, due_at = $2,
                     manual = true, lease_token = NULL, lease_until = NULL
                 WHERE id = ANY($1)
                   AND status NOT IN ('superseded', 'batched', 'cancelled')
                   AND NOT (status = 'pending' AND COALESCE(lease_until, 0) > $2)
                 RETURNING id
             ),
             n AS (SELECT pg_notify($3, ''))
             SELECT id FROM queued WHERE (SELECT count(*) FROM n) >= 0"))
        .bind(&list)
        .bind(ms(now))
        .bind(&self.inner.channel)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        queued
            .into_iter()
            .map(|id| DeliveryId::new(id).map_err(|_| corrupt("delivery id")))
            .collect()
    }

    /// One transaction: the members are marked batched only if every token is current; the
    /// batch's message, body and delivery are inserted claimed under a fresh token.
    async fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let ids: Vec<&str> = batch.members.iter().map(|(id, _)| id.as_str()).collect();
        let tokens: Vec<i64> = batch
            .members
            .iter()
            .map(|(_, t)| i64::try_from(t.0).unwrap_or(i64::MAX))
            .collect();
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let marked = sqlx::query(self.q("UPDATE {s}.hookrelay_deliveries d
             SET status = 'batched', batch_id = $3, finished_at = $4,
                 lease_token = NULL, lease_until = NULL
             FROM UNNEST($1::text[], $2::int8[]) AS j(id, token)
             WHERE d.id = j.id AND d.lease_token = j.token AND d.status = 'pending'"))
        .bind(&ids)
        .bind(&tokens)
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
        let m = &batch.message;
        let body = m.bodies.first().cloned().unwrap_or_default();
        let until = ms(now.saturating_add(lease));
        let token: i64 = sqlx::query_scalar(self.q("WITH m AS (
                 INSERT INTO {s}.hookrelay_messages (id, event_id, event_type, created_at)
                 VALUES ($1, $2, $3, $4) RETURNING seq
             ),
             b AS (
                 INSERT INTO {s}.hookrelay_bodies (message_seq, form, body)
                 SELECT seq, 0, $5 FROM m
             ),
             d AS (
                 INSERT INTO {s}.hookrelay_deliveries
                     (id, message_seq, endpoint_id, form, status, due_at, kind, lease_token,
                      lease_until, owner, event_type, created_at)
                 SELECT $6, seq, $7, 0, 'pending', $8, 'batch', nextval('{s}.hookrelay_fencing'), $8,
                        (SELECT owner FROM {s}.hookrelay_deliveries WHERE id = $9), $3, $4
                 FROM m
                 RETURNING lease_token
             )
             SELECT lease_token FROM d"))
        .bind(m.id.as_str())
        .bind(m.event_id.as_str())
        .bind(m.event_type.as_str())
        .bind(ms(m.created_at))
        .bind(&body[..])
        .bind(batch.delivery.as_str())
        .bind(batch.endpoint.as_str())
        .bind(until)
        .bind(ids.first().copied())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(batch.into_claim(
            body,
            FencingToken(u64::try_from(token).unwrap_or(0)),
        )))
    }

    /// From the pending rows alone (the partial index on pending `due_at`): its cost does not
    /// grow with history, unlike [`counts`](crate::send::store::DeliveryLog::counts).
    async fn queue_depth(&self, now: UnixMillis) -> Result<(u64, u64), StoreError> {
        let (pending, in_flight): (i64, i64) = sqlx::query_as(self.q(
            "SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until <= $1),
                    count(*) FILTER (WHERE lease_until > $1)
             FROM {s}.hookrelay_deliveries WHERE status = 'pending' AND due_at IS NOT NULL",
        ))
        .bind(ms(now))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok((
            u64::try_from(pending).unwrap_or(0),
            u64::try_from(in_flight).unwrap_or(0),
        ))
    }
}
