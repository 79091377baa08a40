//! [`SqliteStore`]: the delivery store in one SQLite file (feature `sqlite`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite, Transaction};

use super::{
    AttemptError, AttemptLog, AttemptRecord, Claim, DeadReason, DeliveryCounts, DeliveryKind,
    DeliveryQuery, DeliveryRecord, DeliveryStatus, DeliveryStore, Enqueued, FencingToken, NewBatch,
    NewMessage, NextStep, Publication, Purged, Recorded, Release, Retention, StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, Endpoint, EndpointId, EndpointStatus, MessageId};

/// The schema, applied in order; `PRAGMA user_version` counts the steps applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE hookrelay_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE hookrelay_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE hookrelay_bodies (
    message_seq INTEGER NOT NULL,
    form INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (message_seq, form)
) WITHOUT ROWID;
CREATE TABLE hookrelay_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    message_seq INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    form INTEGER NOT NULL,
    status TEXT NOT NULL,
    dead_reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    due_at INTEGER,
    lease_token INTEGER,
    lease_until INTEGER
);
CREATE INDEX hookrelay_deliveries_due ON hookrelay_deliveries (due_at) WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_message ON hookrelay_deliveries (message_seq);
CREATE INDEX hookrelay_deliveries_endpoint ON hookrelay_deliveries (endpoint_id, seq);
CREATE INDEX hookrelay_deliveries_dead ON hookrelay_deliveries (seq) WHERE status = 'dead';
CREATE TABLE hookrelay_attempts (
    delivery_seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    response_headers TEXT NOT NULL,
    response_body BLOB NOT NULL,
    PRIMARY KEY (delivery_seq, attempt)
) WITHOUT ROWID;
CREATE TABLE hookrelay_publish_keys (
    key TEXT PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE hookrelay_counters (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO hookrelay_counters (name, value) VALUES ('fencing_token', 0);
"#,
    r#"
ALTER TABLE hookrelay_deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
ALTER TABLE hookrelay_deliveries ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN charged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN order_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN throttle_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN finished_at INTEGER;
ALTER TABLE hookrelay_deliveries ADD COLUMN batch_id TEXT;
ALTER TABLE hookrelay_attempts ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
UPDATE hookrelay_deliveries SET charged = attempts;
UPDATE hookrelay_deliveries SET status = 'expired', dead_reason = NULL
    WHERE status = 'dead' AND dead_reason = 'expired';
UPDATE hookrelay_deliveries SET finished_at = COALESCE(
    (SELECT MAX(a.started_at + a.latency_ms) FROM hookrelay_attempts a
     WHERE a.delivery_seq = hookrelay_deliveries.seq), 0)
    WHERE status != 'pending';
CREATE INDEX hookrelay_deliveries_ordered ON hookrelay_deliveries (endpoint_id, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_throttled ON hookrelay_deliveries (endpoint_id, throttle_key)
    WHERE status = 'pending' AND throttle_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_finished ON hookrelay_deliveries (finished_at)
    WHERE status != 'pending';
CREATE INDEX hookrelay_attempts_manual ON hookrelay_attempts (started_at) WHERE manual = 1;
"#,
];

/// Endpoints, messages, deliveries and the attempt log in SQLite tables (`hookrelay_*`).
///
/// **Durability.** The database runs in WAL mode with `synchronous = FULL` by default: every
/// call that returned — an accepted publish, a recorded attempt — is committed to the log and
/// synced, so it survives the process being killed *and* a power cut (as far as the disk
/// honours `fsync`). A process killed mid-call loses only that call's work, which its caller
/// never saw succeed; claims it held run out after their lease and are claimed again.
/// [`Durability::ProcessCrash`] (`synchronous = NORMAL`) keeps the first guarantee and drops
/// the second for many fewer syncs.
///
/// **Throughput.** Each call is one transaction however many deliveries it carries: the
/// dispatcher claims a batch and records every finished attempt in one commit, so the cost
/// of `fsync` is shared.
///
/// **Sharing.** SQLite has one writer at a time: this store is for one process (several
/// tasks). The pool can be shared with [`SqliteIdempotencyStore`](crate::receive::SqliteIdempotencyStore):
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use hookrelay::receive::SqliteIdempotencyStore;
/// use hookrelay::send::SqliteStore;
///
/// let deliveries = SqliteStore::connect("sqlite::memory:").await?;
/// let idempotency = SqliteIdempotencyStore::from_pool(deliveries.pool().clone()).await?;
/// # let _ = idempotency;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Endpoint settings are stored with their secrets (`whsec_` base64): protect the file as
/// you would the secrets.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(crate::sqlite::error_kind(&err).to_owned())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn ms(t: UnixMillis) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> UnixMillis {
    UnixMillis::from_millis(u64::try_from(v).unwrap_or(0))
}

/// How much a commit survives: what [`SqliteStore::connect_with`] sets `synchronous` to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = FULL`: each commit is synced to disk before the call returns; it
    /// survives a killed process and a power cut. The default.
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL` (WAL): a commit survives a killed process, but a power cut or
    /// an OS crash may lose the last commits (never corrupting the file). Far fewer syncs:
    /// use it where a power cut losing the last moments of work is acceptable.
    ProcessCrash,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url`, e.g. `sqlite://webhooks.db?mode=rwc`
    /// or `sqlite::memory:`, and applies the migrations ([`Durability::PowerLoss`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Durability::PowerLoss).await
    }

    /// [`connect`](Self::connect) with the durability you choose.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::PowerLoss => sqlx::sqlite::SqliteSynchronous::Full,
            Durability::ProcessCrash => sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let pool = crate::sqlite::open_with(url, synchronous)
            .await
            .map_err(|kind| StoreError::Backend(kind.to_owned()))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool and applies the migrations it lacks.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let applied = usize::try_from(version).unwrap_or(0);
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            sqlx::raw_sql(migration)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::raw_sql(&format!("PRAGMA user_version = {}", i + 1))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(SqliteStore { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// The pool, to share with the idempotency store or your own tables.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many message bodies are stored (one per message and body form).
    pub async fn body_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hookrelay_bodies")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn endpoint_of(row: &SqliteRow) -> Result<Endpoint, StoreError> {
    let id: String = row.try_get("id").map_err(backend)?;
    let settings: String = row.try_get("settings").map_err(backend)?;
    let status: String = row.try_get("status").map_err(backend)?;
    let id = EndpointId::new(&id).map_err(|_| corrupt("endpoint id"))?;
    let value: serde_json::Value =
        serde_json::from_str(&settings).map_err(|_| corrupt("endpoint settings"))?;
    let status = EndpointStatus::parse(&status).ok_or_else(|| corrupt("endpoint status"))?;
    Endpoint::from_json(id, &value)
        .map(|e| e.with_status(status))
        .ok_or_else(|| corrupt("endpoint settings"))
}

const DELIVERY_COLUMNS: &str = "d.id, d.status, d.dead_reason, d.attempts, d.last_status, \
     d.due_at, d.lease_until, d.endpoint_id, d.kind, d.finished_at, d.batch_id, \
     m.id AS message_id, \
     m.event_id, m.event_type, m.created_at";

fn delivery_of(row: &SqliteRow, now: UnixMillis) -> Result<DeliveryRecord, StoreError> {
    let get_s = |name: &str| row.try_get::<String, _>(name).map_err(backend);
    let reason: Option<String> = row.try_get("dead_reason").map_err(backend)?;
    let status = DeliveryStatus::from_stored(&get_s("status")?, reason.as_deref())
        .ok_or_else(|| corrupt("delivery status"))?;
    let kind = DeliveryKind::parse(&get_s("kind")?).ok_or_else(|| corrupt("delivery kind"))?;
    let finished_at: Option<i64> = row.try_get("finished_at").map_err(backend)?;
    let lease_until: Option<i64> = row.try_get("lease_until").map_err(backend)?;
    let due_at: Option<i64> = row.try_get("due_at").map_err(backend)?;
    let last_status: Option<i64> = row.try_get("last_status").map_err(backend)?;
    let attempts: i64 = row.try_get("attempts").map_err(backend)?;
    let pending = status == DeliveryStatus::Pending;
    Ok(DeliveryRecord {
        id: DeliveryId::new(get_s("id")?).map_err(|_| corrupt("delivery id"))?,
        message: MessageId::new(get_s("message_id")?).map_err(|_| corrupt("message id"))?,
        endpoint: EndpointId::new(get_s("endpoint_id")?).map_err(|_| corrupt("endpoint id"))?,
        event_id: get_s("event_id")?.into(),
        event_type: get_s("event_type")?.into(),
        status,
        attempts: u32::try_from(attempts).unwrap_or(0),
        created_at: from_ms(row.try_get("created_at").map_err(backend)?),
        next_attempt_at: if pending { due_at.map(from_ms) } else { None },
        claimed: pending && lease_until.is_some_and(|t| t > ms(now)),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        kind,
        finished_at: if pending {
            None
        } else {
            finished_at.map(from_ms)
        },
        batch: row
            .try_get::<Option<String>, _>("batch_id")
            .map_err(backend)?
            .map(|id| DeliveryId::new(id).map_err(|_| corrupt("batch id")))
            .transpose()?,
    })
}

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

/// Claims due deliveries inside `tx` (see [`DeliveryStore::claim`]).
async fn claim_in(
    tx: &mut Transaction<'_, Sqlite>,
    now: UnixMillis,
    limit: usize,
    lease: Duration,
    skip: &[EndpointId],
) -> Result<Vec<Claim>, StoreError> {
    let skip_json = serde_json::to_string(&skip.iter().map(EndpointId::as_str).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned());
    let rows = sqlx::query(
        "SELECT d.seq, d.id, d.endpoint_id, d.attempts, d.charged, d.kind, d.manual,
                    m.id AS message_id, m.event_id, m.event_type, m.created_at,
                    b.body
             FROM hookrelay_deliveries d
             JOIN hookrelay_endpoints e ON e.id = d.endpoint_id AND e.status = 'active'
             JOIN hookrelay_messages m ON m.seq = d.message_seq
             JOIN hookrelay_bodies b ON b.message_seq = d.message_seq AND b.form = d.form
             WHERE d.status = 'pending' AND d.due_at <= ?1
               AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2))
               AND (d.order_key IS NULL OR NOT EXISTS (
                    SELECT 1 FROM hookrelay_deliveries o
                    WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
                      AND o.status = 'pending' AND o.seq < d.seq))
             ORDER BY d.due_at, d.seq
             LIMIT ?3",
    )
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
    let mut claims = Vec::with_capacity(rows.len());
    for row in &rows {
        let get_s = |name: &str| row.try_get::<String, _>(name).map_err(backend);
        let body: Vec<u8> = row.try_get("body").map_err(backend)?;
        let attempts: i64 = row.try_get("attempts").map_err(backend)?;
        let charged: i64 = row.try_get("charged").map_err(backend)?;
        let manual: i64 = row.try_get("manual").map_err(backend)?;
        claims.push(Claim {
            delivery: DeliveryId::new(get_s("id")?).map_err(|_| corrupt("delivery id"))?,
            message: MessageId::new(get_s("message_id")?).map_err(|_| corrupt("message id"))?,
            endpoint: EndpointId::new(get_s("endpoint_id")?).map_err(|_| corrupt("endpoint id"))?,
            event_id: get_s("event_id")?.into(),
            event_type: get_s("event_type")?.into(),
            body: Bytes::from(body),
            created_at: from_ms(row.try_get("created_at").map_err(backend)?),
            attempts: u32::try_from(attempts).unwrap_or(0),
            charged: u32::try_from(charged).unwrap_or(0),
            kind: DeliveryKind::parse(&get_s("kind")?).ok_or_else(|| corrupt("delivery kind"))?,
            manual: manual != 0,
            token: FencingToken(token),
        });
    }
    Ok(claims)
}

/// Records results inside `tx` (see [`DeliveryStore::record`]): three set-based statements
/// however many results there are.
async fn record_in(
    tx: &mut Transaction<'_, Sqlite>,
    results: Vec<AttemptRecord>,
) -> Result<Vec<Recorded>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let next = r.next.status();
            let (status, reason, due) = (
                next.as_str(),
                next.dead_reason().map(DeadReason::as_str),
                r.next.due().map(ms),
            );
            let finished =
                (status != "pending").then(|| ms(r.started_at.saturating_add(r.latency)));
            serde_json::json!({
                "id": r.delivery.as_str(),
                "token": i64::try_from(r.token.0).unwrap_or(i64::MAX),
                "status": status,
                "reason": reason,
                "due": due,
                "attempt": r.attempt,
                "http": r.status,
                "charged": i64::from(r.charged && r.attempt > 0),
                "finished": finished,
            })
        })
        .collect();
    let updated: Vec<(String, i64, String)> = sqlx::query_as(
        "UPDATE hookrelay_deliveries AS d
         SET status = j.status, dead_reason = j.reason, due_at = j.due,
             lease_token = NULL, lease_until = NULL,
             attempts = CASE WHEN j.attempt > 0 THEN MAX(d.attempts, j.attempt) ELSE d.attempts END,
             last_status = CASE WHEN j.attempt > 0 THEN j.http ELSE d.last_status END,
             manual = CASE WHEN j.attempt > 0 THEN 0 ELSE d.manual END,
             charged = d.charged + j.charged, finished_at = j.finished
         FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.token') AS token,
                      json_extract(value, '$.status') AS status, json_extract(value, '$.reason') AS reason,
                      json_extract(value, '$.due') AS due, json_extract(value, '$.attempt') AS attempt,
                      json_extract(value, '$.http') AS http, json_extract(value, '$.charged') AS charged,
                      json_extract(value, '$.finished') AS finished
               FROM json_each(?1)) AS j
         WHERE d.id = j.id AND d.lease_token = j.token AND d.status = 'pending'
         RETURNING hookrelay_deliveries.id, hookrelay_deliveries.seq, hookrelay_deliveries.endpoint_id",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
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
            attempts.push(serde_json::json!({
                "seq": seq,
                "attempt": r.attempt,
                "started": ms(r.started_at),
                "latency": i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX),
                "http": r.status,
                "error": r.error.map(AttemptError::stored),
                "headers": serde_json::to_string(&r.response_headers).unwrap_or_else(|_| "[]".to_owned()),
                "body": hex::encode(&r.response_body),
                "manual": i64::from(r.manual),
            }));
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
    if !attempts.is_empty() {
        sqlx::query(
            "INSERT OR REPLACE INTO hookrelay_attempts
             (delivery_seq, attempt, started_at, latency_ms, status, error, response_headers,
              response_body, manual)
             SELECT json_extract(value, '$.seq'), json_extract(value, '$.attempt'),
                    json_extract(value, '$.started'), json_extract(value, '$.latency'),
                    json_extract(value, '$.http'), json_extract(value, '$.error'),
                    json_extract(value, '$.headers'), unhex(json_extract(value, '$.body')),
                    json_extract(value, '$.manual')
             FROM json_each(?1)",
        )
        .bind(serde_json::Value::Array(attempts).to_string())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(out)
}

impl DeliveryStore for SqliteStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hookrelay_endpoints (id, status, settings) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, settings = excluded.settings",
        )
        .bind(endpoint.id().as_str())
        .bind(endpoint.status().as_str())
        .bind(endpoint.to_json().to_string())
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
        row.map(|r| endpoint_of(&r).map(Arc::new)).transpose()
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
            return Err(StoreError::UnknownEndpoint);
        }
        Ok(())
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        let rows = sqlx::query("SELECT id, status, settings FROM hookrelay_endpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| endpoint_of(r).map(Arc::new)).collect()
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
            return Err(StoreError::UnknownEndpoint);
        }
        Ok(())
    }

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
                let mut throttle_key = None;
                if let Some(group) = &d.throttle {
                    let replaced: Vec<Option<i64>> = sqlx::query_scalar(
                        "UPDATE hookrelay_deliveries
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
                    if let Some(window) = group.window {
                        due = replaced
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap_or_else(|| ms(now.saturating_add(window)));
                        throttle_key = Some(group.key.as_str());
                    }
                }
                sqlx::query(
                    "INSERT INTO hookrelay_deliveries
                     (id, message_seq, endpoint_id, form, status, due_at, kind, order_key, throttle_key)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8)",
                )
                .bind(d.id.as_str())
                .bind(seq)
                .bind(d.endpoint.as_str())
                .bind(i64::from(d.body))
                .bind(due)
                .bind(d.kind.as_str())
                .bind(d.order_key.as_deref())
                .bind(throttle_key)
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
    ) -> Result<Vec<Claim>, StoreError> {
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

    /// 2 ms: each commit costs a round trip to SQLite's worker thread and, with
    /// [`Durability::PowerLoss`], an fsync.
    fn batch_window(&self) -> Duration {
        Duration::from_millis(2)
    }

    /// One transaction, one commit, for both.
    async fn record_and_claim(
        &self,
        results: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<(Vec<Recorded>, Vec<Claim>), StoreError> {
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
            "SELECT MIN(due_at) FROM hookrelay_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(next.map(from_ms))
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM hookrelay_deliveries d
             JOIN hookrelay_messages m ON m.seq = d.message_seq WHERE d.id = ?1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| delivery_of(&r, UnixMillis::now())).transpose()
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let limit = if query.limit == 0 {
            -1
        } else {
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        };
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM hookrelay_deliveries d
             JOIN hookrelay_messages m ON m.seq = d.message_seq
             WHERE (?1 IS NULL OR m.id = ?1) AND (?2 IS NULL OR d.endpoint_id = ?2)
               AND (?3 = 0 OR d.status = 'dead') AND (?5 IS NULL OR m.created_at >= ?5)
             ORDER BY d.seq LIMIT ?4"
        ))
        .bind(query.message.as_ref().map(MessageId::as_str))
        .bind(query.endpoint.as_ref().map(EndpointId::as_str))
        .bind(i64::from(query.dead_only))
        .bind(limit)
        .bind(query.since.map(ms))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let now = UnixMillis::now();
        rows.iter().map(|r| delivery_of(r, now)).collect()
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
        rows.iter()
            .map(|row| {
                let headers: String = row.try_get("response_headers").map_err(backend)?;
                let body: Vec<u8> = row.try_get("response_body").map_err(backend)?;
                let attempt: i64 = row.try_get("attempt").map_err(backend)?;
                let latency: i64 = row.try_get("latency_ms").map_err(backend)?;
                let status: Option<i64> = row.try_get("status").map_err(backend)?;
                let error: Option<String> = row.try_get("error").map_err(backend)?;
                let manual: i64 = row.try_get("manual").map_err(backend)?;
                Ok(AttemptLog {
                    delivery: id.clone(),
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    started_at: from_ms(row.try_get("started_at").map_err(backend)?),
                    latency_ms: u64::try_from(latency).unwrap_or(0),
                    status: status.and_then(|s| u16::try_from(s).ok()),
                    error: error.as_deref().map(AttemptError::from_stored),
                    response_headers: serde_json::from_str(&headers)
                        .map_err(|_| corrupt("response headers"))?,
                    response_body: Bytes::from(body),
                    manual: manual != 0,
                })
            })
            .collect()
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
               AND status NOT IN ('superseded', 'batched')
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
    ) -> Result<Option<Claim>, StoreError> {
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
             WHERE d.id = j.id AND d.lease_token = j.token AND d.status = 'pending'",
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
        sqlx::query(
            "INSERT INTO hookrelay_deliveries
             (id, message_seq, endpoint_id, form, status, due_at, kind, lease_token, lease_until)
             VALUES (?1, ?2, ?3, 0, 'pending', ?4, 'batch', ?5, ?4)",
        )
        .bind(batch.delivery.as_str())
        .bind(seq)
        .bind(batch.endpoint.as_str())
        .bind(until)
        .bind(i64::try_from(token).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(Claim {
            delivery: batch.delivery,
            message: batch.message.id,
            endpoint: batch.endpoint,
            event_id: batch.message.event_id,
            event_type: batch.message.event_type,
            body,
            created_at: batch.message.created_at,
            attempts: 0,
            charged: 0,
            kind: DeliveryKind::Batch,
            manual: false,
            token: FencingToken(token),
        }))
    }

    async fn purge(
        &self,
        retention: &Retention,
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
