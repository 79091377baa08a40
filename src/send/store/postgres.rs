//! [`PostgresStore`]: the delivery store in PostgreSQL, shared by many dispatcher processes on
//! many hosts (feature `postgres`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgRow};
use sqlx::{Acquire as _, Executor as _, Row as _};
use tokio::sync::watch;

use super::{
    AttemptError, AttemptLog, AttemptRecord, Claim, DeadReason, DeliveryCounts, DeliveryKind,
    DeliveryQuery, DeliveryRecord, DeliveryStatus, DeliveryStore, Enqueued, FencingToken, NewBatch,
    NextStep, Publication, Purged, Recorded, Release, Retention, StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, Endpoint, EndpointId, EndpointStatus, MessageId};

/// The schema, step by step; `{s}` stands for the quoted schema name. Applied in order, each
/// step once, recorded in `hookrelay_migrations`. Never edit a published step: add one.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE {s}.hookrelay_endpoints (
    id text PRIMARY KEY,
    status text NOT NULL,
    settings text NOT NULL,
    max_in_flight int8 NOT NULL,
    rate_requests int8,
    rate_interval_ms int8,
    rate_burst int8,
    rate_level int8 NOT NULL DEFAULT 0,
    rate_at int8 NOT NULL DEFAULT 0
);
CREATE TABLE {s}.hookrelay_messages (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    event_id text NOT NULL,
    event_type text NOT NULL,
    created_at int8 NOT NULL
);
CREATE TABLE {s}.hookrelay_bodies (
    message_seq int8 NOT NULL,
    form int2 NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (message_seq, form)
);
CREATE TABLE {s}.hookrelay_deliveries (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    message_seq int8 NOT NULL,
    endpoint_id text NOT NULL,
    form int2 NOT NULL,
    status text NOT NULL,
    dead_reason text,
    attempts int4 NOT NULL DEFAULT 0,
    last_status int4,
    due_at int8,
    lease_token int8,
    lease_until int8,
    kind text NOT NULL DEFAULT 'event',
    manual bool NOT NULL DEFAULT false,
    charged int4 NOT NULL DEFAULT 0,
    order_key text,
    throttle_key text,
    finished_at int8,
    batch_id text
);
CREATE INDEX hookrelay_deliveries_due ON {s}.hookrelay_deliveries (due_at)
    WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_endpoint_due ON {s}.hookrelay_deliveries (endpoint_id, due_at)
    WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_leased ON {s}.hookrelay_deliveries (endpoint_id, lease_until)
    WHERE status = 'pending' AND lease_token IS NOT NULL;
CREATE INDEX hookrelay_deliveries_message ON {s}.hookrelay_deliveries (message_seq);
CREATE INDEX hookrelay_deliveries_endpoint ON {s}.hookrelay_deliveries (endpoint_id, seq);
CREATE INDEX hookrelay_deliveries_dead ON {s}.hookrelay_deliveries (seq) WHERE status = 'dead';
CREATE INDEX hookrelay_deliveries_ordered ON {s}.hookrelay_deliveries (endpoint_id, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_throttled ON {s}.hookrelay_deliveries (endpoint_id, throttle_key)
    WHERE status = 'pending' AND throttle_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_finished ON {s}.hookrelay_deliveries (finished_at)
    WHERE status <> 'pending';
CREATE TABLE {s}.hookrelay_attempts (
    delivery_seq int8 NOT NULL,
    attempt int4 NOT NULL,
    started_at int8 NOT NULL,
    latency_ms int8 NOT NULL,
    status int4,
    error text,
    response_headers text NOT NULL,
    response_body bytea NOT NULL,
    manual bool NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_seq, attempt)
);
CREATE INDEX hookrelay_attempts_manual ON {s}.hookrelay_attempts (started_at) WHERE manual;
CREATE TABLE {s}.hookrelay_publish_keys (
    key text PRIMARY KEY,
    message_id text NOT NULL,
    expires_at int8 NOT NULL
);
CREATE SEQUENCE {s}.hookrelay_fencing;
"#];

/// Whether [`PostgresStoreBuilder`] applies the embedded migrations.
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Migrations {
    /// Apply the steps the schema lacks, under a transaction-scoped advisory lock, so many
    /// processes starting at once apply each step exactly once. The default.
    #[default]
    Apply,
    /// Apply nothing: your own migration tool ran [`PostgresStore::migration_sql`].
    AlreadyApplied,
}

/// Configures a [`PostgresStore`]; made by [`PostgresStore::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Debug, Clone)]
pub struct PostgresStoreBuilder {
    schema: String,
    migrations: Migrations,
    max_connections: u32,
    batch_window: Duration,
}

impl PostgresStoreBuilder {
    /// The schema holding the tables (default `public`); created if missing when migrations
    /// are applied. `[a-z_][a-z0-9_]*`, at most 48 bytes: anything else fails at connect.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Whether to apply the embedded migrations (default [`Migrations::Apply`]).
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// The pool size for [`connect`](Self::connect) (default 8, at least 2); the listener for
    /// `NOTIFY` takes one more connection of its own.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(2);
        self
    }

    /// How long a dispatcher may hold finished results to record them in one round
    /// ([`DeliveryStore::batch_window`]; default 2 ms). Longer windows mean fewer, larger
    /// transactions — less contention between many dispatcher processes on one hot endpoint
    /// (`benches/send_postgres.rs`: 4 processes went from ~3.0× to ~3.7× one process with
    /// 2 ms) — and each result recorded that much later; zero records at once.
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }

    /// Connects to `url` (`postgres://user:password@host/database`) and opens the store.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        if !crate::postgres::valid_schema(&self.schema) {
            return Err(invalid_schema());
        }
        let pool = crate::postgres::open(url, self.max_connections)
            .await
            .map_err(|kind| StoreError::Backend(kind.to_owned()))?;
        self.pool(pool).await
    }

    /// Opens the store on your pool (shared with your own tables and with
    /// [`PostgresIdempotencyStore`](crate::receive::PostgresIdempotencyStore)).
    pub async fn pool(self, pool: PgPool) -> Result<PostgresStore, StoreError> {
        if !crate::postgres::valid_schema(&self.schema) {
            return Err(invalid_schema());
        }
        if self.migrations == Migrations::Apply {
            migrate(&pool, &self.schema, MIGRATIONS).await?;
        }
        let prefix = format!("\"{}\".", self.schema);
        let (wake, _) = watch::channel(0u64);
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                channel: format!("hookrelay_{}", self.schema),
                prefix,
                wake: Arc::new(wake),
                listener: OnceLock::new(),
                batch_window: self.batch_window,
            }),
        })
    }
}

fn invalid_schema() -> StoreError {
    StoreError::Backend("invalid schema name".into())
}

/// Applies the missing steps of `steps` to `schema`, under an advisory lock.
pub(crate) async fn migrate(pool: &PgPool, schema: &str, steps: &[&str]) -> Result<(), StoreError> {
    let quoted = format!("\"{schema}\"");
    let lock_name = format!("hookrelay migrations {schema}");
    let create_schema = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
    let create_table = format!(
        "CREATE TABLE IF NOT EXISTS {quoted}.hookrelay_migrations (
             version int4 PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    );
    let select = format!("SELECT version FROM {quoted}.hookrelay_migrations");
    let insert = format!("INSERT INTO {quoted}.hookrelay_migrations (version) VALUES ($1)");
    let steps: Vec<String> = steps.iter().map(|s| s.replace("{s}", &quoted)).collect();
    let mut tx = pool.begin().await.map_err(backend)?;
    let conn: &mut PgConnection = &mut tx;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(&lock_name)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    // Create only what is missing: `CREATE … IF NOT EXISTS` still needs the privilege to
    // create, which an application's database user may not have once migrated.
    let (has_schema, has_table): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                to_regclass($2) IS NOT NULL",
    )
    .bind(schema)
    .bind(format!("{quoted}.hookrelay_migrations"))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if !has_schema {
        conn.execute(sqlx::raw_sql(&create_schema))
            .await
            .map_err(backend)?;
    }
    if !has_table {
        conn.execute(sqlx::raw_sql(&create_table))
            .await
            .map_err(backend)?;
    }
    let applied: Vec<i32> = sqlx::query_scalar(&select)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    for (i, step) in steps.iter().enumerate() {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        if applied.contains(&version) {
            continue;
        }
        conn.execute(sqlx::raw_sql(step)).await.map_err(backend)?;
        sqlx::query(&insert)
            .bind(version)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(())
}

/// The SQL of every migration step for `schema`, for your own migration tool: one script
/// that creates the schema if needed, the `hookrelay_migrations` table, and each step,
/// recording it there. Run it once, then open the store with
/// [`Migrations::AlreadyApplied`]; a later release that adds a step documents it in
/// `CHANGELOG.md`, and [`Migrations::Apply`] applies only what the table lacks.
pub(crate) fn migration_script(schema: &str, steps: &[&str]) -> Option<String> {
    if !crate::postgres::valid_schema(schema) {
        return None;
    }
    let quoted = format!("\"{schema}\"");
    let mut script = format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};\n\
         CREATE TABLE IF NOT EXISTS {quoted}.hookrelay_migrations (\n    \
         version int4 PRIMARY KEY,\n    applied_at timestamptz NOT NULL DEFAULT now()\n);\n"
    );
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&step.replace("{s}", &quoted));
        script.push_str(&format!(
            "INSERT INTO {quoted}.hookrelay_migrations (version) VALUES ({});\n",
            i + 1
        ));
    }
    Some(script)
}

/// Endpoints, messages, deliveries and the attempt log in PostgreSQL, shared by any number
/// of dispatcher processes on any number of hosts.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use hookrelay::send::{PostgresStore, Sender};
///
/// let store = PostgresStore::builder()
///     .schema("webhooks")
///     .connect("postgres://app@db.internal/app")
///     .await?;
/// let sender = Sender::new(store);
/// # let _ = sender; Ok(()) }
/// ```
///
/// **Durability.** Every call that returned is committed (with PostgreSQL's default
/// `synchronous_commit = on`, flushed to its WAL): it survives the process being killed and
/// a database crash. A process killed mid-call loses only that call's work; claims it held
/// run out after their lease and are claimed again.
///
/// **Transactional outbox.** [`Sender::publish_in`](crate::send::Sender::publish_in) writes
/// the message and its deliveries in *your* transaction.
///
/// Endpoint settings are stored with their secrets (`whsec_` base64): protect the tables as
/// you would the secrets.
///
/// # Tables and indexes
///
/// Everything lives in one schema (`public` unless [`PostgresStoreBuilder::schema`] says
/// otherwise), in tables named `hookrelay_*`:
///
/// | table | one row per | expected size |
/// |---|---|---|
/// | `hookrelay_endpoints` | endpoint, with its limits and its shared token bucket | tens to thousands |
/// | `hookrelay_messages` | published event | grows with history until purged |
/// | `hookrelay_bodies` | message × body form (usually one) | as messages |
/// | `hookrelay_deliveries` | message × endpoint | as messages × fan-out |
/// | `hookrelay_attempts` | attempt (response start ≤ 16 KiB) | deliveries × attempts (≈ 1.1 on healthy endpoints) |
/// | `hookrelay_publish_keys` | producer idempotency key, until it expires | keys of the last 24 h |
/// | `hookrelay_migrations` | applied migration step | one per step |
///
/// and a sequence, `hookrelay_fencing`, for fencing tokens.
///
/// | index | serves | cost grows with |
/// |---|---|---|
/// | `hookrelay_deliveries_due` (`due_at`, partial: `status = 'pending'`) | claiming, oldest due first | pending deliveries only |
/// | `hookrelay_deliveries_endpoint_due` (`endpoint_id, due_at`, partial: pending) | "has this endpoint due work", [`next_due`](DeliveryStore::next_due) | pending deliveries only |
/// | `hookrelay_deliveries_leased` (`endpoint_id, lease_until`, partial: pending and leased) | counting an endpoint's attempts in flight (concurrency cap) | attempts in flight |
/// | `hookrelay_deliveries_dead` (`seq`, partial: `status = 'dead'`) | listing dead letters | dead letters only |
/// | `hookrelay_deliveries_message`, `_endpoint` | listing by message, by endpoint | log of the rows listed |
/// | `hookrelay_deliveries_ordered` (`endpoint_id, order_key, seq`, partial: pending, ordered) | "is an earlier delivery with this key still pending" ([`Ordering`](crate::send::Ordering)) | pending ordered deliveries |
/// | `hookrelay_deliveries_throttled` (`endpoint_id, throttle_key`, partial: pending, throttled) | superseding at publish ([`Throttle`](crate::send::Throttle)) | pending throttled deliveries |
/// | `hookrelay_deliveries_finished` (`finished_at`, partial: finished) | the retention purge, oldest first | log of history |
/// | `hookrelay_attempts_manual` (`started_at`, partial: manual) | purging manual attempt logs | manual attempts |
///
/// So claiming reads only pending rows: its cost does not grow with the delivered and
/// dead-lettered history (`benches/send_postgres.rs` measures it with 10 000 and 1 000 000
/// finished deliveries). [`counts`](DeliveryStore::counts) scans the deliveries table and is
/// meant for dashboards and tests, not for every request; the dispatcher's queue-depth
/// metric uses [`queue_depth`](DeliveryStore::queue_depth), which reads pending rows only. [`purge`](DeliveryStore::purge)
/// deletes finished history in batches of your size, each its own short transaction,
/// skipping rows another transaction holds.
///
/// # Claims across processes
///
/// A claim is one statement: it locks the candidate endpoints' rows (`FOR NO KEY UPDATE SKIP
/// LOCKED`), works out each one's room — its concurrency cap minus its unexpired leases
/// (counted in the database, so across every dispatcher), and its token bucket's whole
/// tokens — locks up to `limit` due deliveries oldest first with `FOR UPDATE SKIP LOCKED`,
/// keeps at most each endpoint's room of them, leases them under one fresh fencing token
/// (`nextval`), and takes the tokens from the buckets. Concurrent claims never wait for one
/// another: a row another claim holds is skipped, not waited for. Results are recorded with
/// one `UPDATE … FROM UNNEST(…)` that matches each delivery's current token, so a stalled
/// worker's late result is refused ([`Recorded::Stale`](super::Recorded::Stale)).
///
/// **Endpoint limits hold across processes.** An endpoint's
/// [`concurrency`](crate::send::Endpoint::concurrency) cap is the number of unexpired leases
/// it may have in the whole database, and its [`rate_limit`](crate::send::Endpoint::rate_limit)
/// is one token bucket in its `hookrelay_endpoints` row, refilled and spent inside the claim
/// transaction while the row is locked. Every dispatcher still keeps its own per-process
/// gate too (it can only be stricter). Clocks: leases and buckets are computed from each
/// dispatcher's clock, so hosts must keep their clocks in sync (NTP) to well within a lease.
/// [`next_due`](DeliveryStore::next_due) knows both limits: an idle dispatcher sleeps until
/// an empty bucket has a token again, or until the first lease of an endpoint at its cap
/// runs out (a slot freed earlier by another process is noticed at the next
/// [`poll_interval`](crate::send::DispatcherBuilder::poll_interval) or wake-up).
///
/// **Ordering holds across processes.** A delivery with an order key is claimable only when
/// no earlier delivery with its endpoint and key is still pending — claimed or not, by any
/// process — so one at a time goes out, in publish order, whichever dispatcher sends it.
///
/// Each [`Sender`](crate::send::Sender) caches the endpoint list; after another process
/// adds or changes an endpoint, call [`Sender::endpoints_changed`](crate::send::Sender::endpoints_changed)
/// (dispatchers load endpoints they have not seen from the store by themselves).
///
/// # Prompt pick-up
///
/// Every enqueue (including [`Sender::publish_in`](crate::send::Sender::publish_in)) runs
/// `pg_notify('hookrelay_<schema>', '')` in its transaction; PostgreSQL delivers it at commit
/// to every listening connection. Each store listens on one dedicated connection (opened
/// when a dispatcher first waits) and wakes its idle dispatchers. A lost notification (a
/// dropped connection) is covered by the dispatcher's
/// [`poll_interval`](crate::send::DispatcherBuilder::poll_interval); after a reconnection
/// the store wakes its dispatchers once in case something was missed.
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// `"schema".`, prefixed to every table name.
    prefix: String,
    channel: String,
    wake: Arc<watch::Sender<u64>>,
    listener: OnceLock<AbortOnDrop>,
    batch_window: Duration,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema())
            .finish_non_exhaustive()
    }
}

/// Stops the listener task with the last clone of the store.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(crate::postgres::error_kind(&err).to_owned())
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

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// A builder: schema, migrations, pool size.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            schema: crate::postgres::DEFAULT_SCHEMA.to_owned(),
            migrations: Migrations::Apply,
            max_connections: 8,
            batch_window: Duration::from_millis(2),
        }
    }

    /// Connects to `url` and opens the store in the `public` schema, applying migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// The SQL of every migration step for `schema`, to run from your own migration tool
    /// (then open the store with [`Migrations::AlreadyApplied`]); `None` if `schema` is not
    /// a plain identifier (`[a-z_][a-z0-9_]*`). The script creates the schema if needed and
    /// records each step in `hookrelay_migrations`, so [`Migrations::Apply`] later applies
    /// only what it lacks.
    ///
    /// ```
    /// let sql = hookrelay::send::PostgresStore::migration_sql("webhooks").unwrap();
    /// assert!(sql.contains("CREATE TABLE \"webhooks\".hookrelay_deliveries"));
    /// ```
    pub fn migration_sql(schema: &str) -> Option<String> {
        migration_script(schema, MIGRATIONS)
    }

    /// The pool, to share with the idempotency store or your own tables.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        self.inner.prefix.trim_end_matches('.').trim_matches('"')
    }

    /// The `NOTIFY` channel of this schema: `hookrelay_<schema>`.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// `sql` with `{s}.` replaced by the quoted schema.
    fn q(&self, sql: &str) -> String {
        sql.replace("{s}.", &self.inner.prefix)
    }

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
            let claimed: Vec<String> = sqlx::query_scalar(&self.q(
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
                let rows: Vec<(String, String)> = sqlx::query_as(&self.q(
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
        let (mut d_kind, mut d_order) = (vec![], vec![]);
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
        let seqs: Vec<(i64, String)> = sqlx::query_as(&self.q("WITH m AS (
                 INSERT INTO {s}.hookrelay_messages (id, event_id, event_type, created_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])
                 RETURNING seq, id
             ),
             b AS (
                 INSERT INTO {s}.hookrelay_bodies (message_seq, form, body)
                 SELECT m.seq, x.form, x.body
                 FROM UNNEST($5::text[], $6::int2[], $7::bytea[]) AS x(message_id, form, body)
                 JOIN m ON m.id = x.message_id
             ),
             d AS (
                 INSERT INTO {s}.hookrelay_deliveries
                     (id, message_seq, endpoint_id, form, status, due_at, kind, order_key)
                 SELECT x.id, m.seq, x.endpoint_id, x.form, 'pending', $11, x.kind, x.order_key
                 FROM UNNEST($8::text[], $9::text[], $10::text[], $12::int2[], $14::text[],
                             $15::text[])
                     AS x(id, message_id, endpoint_id, form, kind, order_key)
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
            let mut throttle_key = None;
            if let Some(group) = &d.throttle {
                let replaced: Vec<Option<i64>> =
                    sqlx::query_scalar(&self.q("UPDATE {s}.hookrelay_deliveries
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
                if let Some(window) = group.window {
                    due = replaced
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or_else(|| ms(now.saturating_add(window)));
                    throttle_key = Some(group.key.as_str());
                }
            }
            sqlx::query(&self.q("INSERT INTO {s}.hookrelay_deliveries
                 (id, message_seq, endpoint_id, form, status, due_at, kind, order_key, throttle_key)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)"))
            .bind(d.id.as_str())
            .bind(seq)
            .bind(d.endpoint.as_str())
            .bind(i16::from(d.body))
            .bind(due)
            .bind(d.kind.as_str())
            .bind(d.order_key.as_deref())
            .bind(throttle_key)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        }
        Ok(superseded)
    }

    /// Starts the `LISTEN` task once; returns a receiver that has seen every signal so far.
    fn subscribe(&self) -> watch::Receiver<u64> {
        let receiver = self.inner.wake.subscribe();
        if tokio::runtime::Handle::try_current().is_ok() {
            self.inner.listener.get_or_init(|| {
                AbortOnDrop(tokio::spawn(listen(
                    self.inner.pool.clone(),
                    self.inner.channel.clone(),
                    Arc::clone(&self.inner.wake),
                )))
            });
        }
        receiver
    }
}

/// Listens on `channel` and bumps `wake` on every notification and after every
/// (re)connection (a notification may have been missed while disconnected).
async fn listen(pool: PgPool, channel: String, wake: Arc<watch::Sender<u64>>) {
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(&channel).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bump();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                // The connection dropped; the next call reconnects and listens again.
                Ok(None) => bump(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

fn endpoint_of(row: &PgRow) -> Result<Endpoint, StoreError> {
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
     m.id AS message_id, m.event_id, m.event_type, m.created_at";

fn delivery_of(row: &PgRow, now: UnixMillis) -> Result<DeliveryRecord, StoreError> {
    let get_s = |name: &str| row.try_get::<String, _>(name).map_err(backend);
    let reason: Option<String> = row.try_get("dead_reason").map_err(backend)?;
    let status = DeliveryStatus::from_stored(&get_s("status")?, reason.as_deref())
        .ok_or_else(|| corrupt("delivery status"))?;
    let kind = DeliveryKind::parse(&get_s("kind")?).ok_or_else(|| corrupt("delivery kind"))?;
    let finished_at: Option<i64> = row.try_get("finished_at").map_err(backend)?;
    let lease_until: Option<i64> = row.try_get("lease_until").map_err(backend)?;
    let due_at: Option<i64> = row.try_get("due_at").map_err(backend)?;
    let last_status: Option<i32> = row.try_get("last_status").map_err(backend)?;
    let attempts: i32 = row.try_get("attempts").map_err(backend)?;
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

/// The claim, in one statement (see the module docs, "Claims across processes").
const CLAIM: &str = "
WITH eps AS MATERIALIZED (
    SELECT e.id, e.max_in_flight, e.rate_interval_ms,
           CASE WHEN e.rate_requests IS NULL THEN NULL
                ELSE LEAST(e.rate_burst * e.rate_interval_ms,
                           e.rate_level + GREATEST($1 - e.rate_at, 0) * e.rate_requests)
           END AS level
    FROM {s}.hookrelay_endpoints e
    WHERE e.status = 'active' AND NOT (e.id = ANY($4))
      AND EXISTS (SELECT 1 FROM {s}.hookrelay_deliveries d
                  WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.due_at <= $1)
    FOR NO KEY UPDATE OF e SKIP LOCKED
),
room AS MATERIALIZED (
    SELECT eps.id, eps.level, eps.rate_interval_ms,
           LEAST(eps.max_in_flight
                   - (SELECT count(*) FROM {s}.hookrelay_deliveries d
                      WHERE d.endpoint_id = eps.id AND d.status = 'pending'
                        AND d.lease_token IS NOT NULL AND d.lease_until > $1),
                 COALESCE(eps.level / eps.rate_interval_ms, $2)) AS n
    FROM eps
),
cand AS MATERIALIZED (
    SELECT d.seq, d.endpoint_id, d.due_at FROM {s}.hookrelay_deliveries d
    WHERE d.status = 'pending' AND d.due_at <= $1
      AND d.endpoint_id IN (SELECT id FROM room WHERE n > 0)
      AND (d.order_key IS NULL OR NOT EXISTS (
           SELECT 1 FROM {s}.hookrelay_deliveries o
           WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
             AND o.status = 'pending' AND o.seq < d.seq))
    ORDER BY d.due_at, d.seq
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
),
picked AS (
    SELECT c.seq FROM (
        SELECT cand.seq, cand.endpoint_id,
               row_number() OVER (PARTITION BY cand.endpoint_id ORDER BY cand.due_at, cand.seq) AS rn
        FROM cand
    ) c
    JOIN room ON room.id = c.endpoint_id
    WHERE c.rn <= room.n
),
tok AS MATERIALIZED (SELECT nextval('{s}.hookrelay_fencing') AS t),
upd AS (
    UPDATE {s}.hookrelay_deliveries d
    SET lease_token = (SELECT t FROM tok), lease_until = $3, due_at = $3
    FROM picked WHERE d.seq = picked.seq
    RETURNING d.seq, d.id, d.endpoint_id, d.attempts, d.charged, d.kind, d.manual, d.message_seq,
              d.form, d.lease_token, d.due_at
),
spent AS (
    UPDATE {s}.hookrelay_endpoints e
    SET rate_level = room.level - used.n * room.rate_interval_ms, rate_at = GREATEST($1, e.rate_at)
    FROM room JOIN (SELECT endpoint_id, count(*) AS n FROM upd GROUP BY endpoint_id) used
         ON used.endpoint_id = room.id
    WHERE e.id = room.id AND room.level IS NOT NULL
)
SELECT upd.id, upd.endpoint_id, upd.attempts, upd.charged, upd.kind, upd.manual, upd.lease_token,
       m.id AS message_id, m.event_id,
       m.event_type, m.created_at, b.body
FROM upd
JOIN {s}.hookrelay_messages m ON m.seq = upd.message_seq
JOIN {s}.hookrelay_bodies b ON b.message_seq = upd.message_seq AND b.form = upd.form
ORDER BY upd.seq";

/// Records results, in one statement (see [`DeliveryStore::record`]).
const RECORD: &str = "
WITH r AS (
    SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::int4[],
                         $7::int4[], $8::int8[], $9::int8[], $10::text[], $11::text[],
                         $12::bytea[], $13::bool[], $14::int4[], $15::bool[], $16::int8[])
        AS r(id, token, status, reason, due, attempt, http, started, latency, error, headers,
             body, disable, charged, manual, finished)
),
u AS (
    UPDATE {s}.hookrelay_deliveries d
    SET status = r.status, dead_reason = r.reason, due_at = r.due,
        lease_token = NULL, lease_until = NULL,
        attempts = CASE WHEN r.attempt > 0 THEN GREATEST(d.attempts, r.attempt) ELSE d.attempts END,
        last_status = CASE WHEN r.attempt > 0 THEN r.http ELSE d.last_status END,
        manual = CASE WHEN r.attempt > 0 THEN false ELSE d.manual END,
        charged = d.charged + r.charged, finished_at = r.finished
    FROM r
    WHERE d.id = r.id AND d.lease_token = r.token AND d.status = 'pending'
    RETURNING d.id, d.seq, d.endpoint_id
),
logged AS (
    INSERT INTO {s}.hookrelay_attempts
        (delivery_seq, attempt, started_at, latency_ms, status, error, response_headers,
         response_body, manual)
    SELECT u.seq, r.attempt, r.started, r.latency, r.http, r.error, r.headers, r.body, r.manual
    FROM r JOIN u ON u.id = r.id
    WHERE r.attempt > 0
    ON CONFLICT (delivery_seq, attempt) DO UPDATE SET
        started_at = excluded.started_at, latency_ms = excluded.latency_ms,
        status = excluded.status, error = excluded.error,
        response_headers = excluded.response_headers, response_body = excluded.response_body,
        manual = excluded.manual
),
disabled AS (
    UPDATE {s}.hookrelay_endpoints e SET status = 'disabled'
    WHERE e.id IN (SELECT u.endpoint_id FROM u JOIN r ON r.id = u.id WHERE r.disable)
)
SELECT id FROM u";

impl PostgresStore {
    async fn claim_in(
        &self,
        conn: &mut PgConnection,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<Claim>, StoreError> {
        let skip: Vec<&str> = skip.iter().map(EndpointId::as_str).collect();
        let rows = sqlx::query(&self.q(CLAIM))
            .bind(ms(now))
            .bind(count(limit))
            .bind(ms(now.saturating_add(lease)))
            .bind(&skip)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        let mut claims = Vec::with_capacity(rows.len());
        for row in &rows {
            let get_s = |name: &str| row.try_get::<String, _>(name).map_err(backend);
            let body: Vec<u8> = row.try_get("body").map_err(backend)?;
            let attempts: i32 = row.try_get("attempts").map_err(backend)?;
            let charged: i32 = row.try_get("charged").map_err(backend)?;
            let manual: bool = row.try_get("manual").map_err(backend)?;
            let token: i64 = row.try_get("lease_token").map_err(backend)?;
            claims.push(Claim {
                delivery: DeliveryId::new(get_s("id")?).map_err(|_| corrupt("delivery id"))?,
                message: MessageId::new(get_s("message_id")?).map_err(|_| corrupt("message id"))?,
                endpoint: EndpointId::new(get_s("endpoint_id")?)
                    .map_err(|_| corrupt("endpoint id"))?,
                event_id: get_s("event_id")?.into(),
                event_type: get_s("event_type")?.into(),
                body: Bytes::from(body),
                created_at: from_ms(row.try_get("created_at").map_err(backend)?),
                attempts: u32::try_from(attempts).unwrap_or(0),
                charged: u32::try_from(charged).unwrap_or(0),
                kind: DeliveryKind::parse(&get_s("kind")?)
                    .ok_or_else(|| corrupt("delivery kind"))?,
                manual,
                token: FencingToken(u64::try_from(token).unwrap_or(0)),
            });
        }
        Ok(claims)
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
            body.push(&r.response_body[..]);
            disable.push(r.next == NextStep::DisableEndpoint);
        }
        let saved: Vec<String> = sqlx::query_scalar(&self.q(RECORD))
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

impl DeliveryStore for PostgresStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let limit = endpoint.rate_limit();
        let interval = limit.map(|l| i64::try_from(l.interval().as_millis()).unwrap_or(i64::MAX));
        sqlx::query(&self.q("INSERT INTO {s}.hookrelay_endpoints AS e
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
        .bind(endpoint.to_json().to_string())
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
            &self.q("SELECT id, status, settings FROM {s}.hookrelay_endpoints WHERE id = $1"),
        )
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|r| endpoint_of(&r).map(Arc::new)).transpose()
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        let rows = sqlx::query(
            &self.q("SELECT id, status, settings FROM {s}.hookrelay_endpoints ORDER BY id"),
        )
        .fetch_all(&self.inner.pool)
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
        let done = sqlx::query(&self.q("UPDATE {s}.hookrelay_endpoints
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
            return Err(StoreError::UnknownEndpoint);
        }
        Ok(())
    }

    /// One field changed in place.
    async fn set_failing_since(
        &self,
        id: &EndpointId,
        since: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(&self.q("UPDATE {s}.hookrelay_endpoints
             SET settings = jsonb_set(settings::jsonb, '{failing_since_ms}',
                                      COALESCE(to_jsonb($2::int8), 'null'::jsonb))::text
             WHERE id = $1"))
        .bind(id.as_str())
        .bind(since.map(ms))
        .execute(&self.inner.pool)
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
    ) -> Result<Vec<Claim>, StoreError> {
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
    ) -> Result<(Vec<Recorded>, Vec<Claim>), StoreError> {
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

    /// 2 ms unless [`PostgresStoreBuilder::batch_window`] says otherwise: each round is a
    /// transaction whose commit waits for the WAL flush, and each claim briefly holds the rows
    /// of the endpoints it claims for; fewer, larger rounds serve more deliveries per commit
    /// and contend less across processes.
    fn batch_window(&self) -> Duration {
        self.inner.batch_window
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
        sqlx::query(&self.q("UPDATE {s}.hookrelay_deliveries d
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
        let next: Option<i64> = sqlx::query_scalar(&self.q("SELECT MIN(GREATEST(
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

    fn new_work(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.subscribe();
        async move {
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(&self.q(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM {{s}}.hookrelay_deliveries d
             JOIN {{s}}.hookrelay_messages m ON m.seq = d.message_seq WHERE d.id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        row.map(|r| delivery_of(&r, UnixMillis::now())).transpose()
    }

    /// The query names only the filters given, so each combination gets its own plan: a
    /// dead-letter listing reads the partial index on dead rows, a message's deliveries the
    /// index on `message_seq`, however long the history.
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
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
        let mut q = sqlx::query(&sql);
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
        let now = UnixMillis::now();
        rows.iter().map(|r| delivery_of(r, now)).collect()
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let rows = sqlx::query(&self.q(
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
        rows.iter()
            .map(|row| {
                let headers: String = row.try_get("response_headers").map_err(backend)?;
                let body: Vec<u8> = row.try_get("response_body").map_err(backend)?;
                let attempt: i32 = row.try_get("attempt").map_err(backend)?;
                let latency: i64 = row.try_get("latency_ms").map_err(backend)?;
                let status: Option<i32> = row.try_get("status").map_err(backend)?;
                let error: Option<String> = row.try_get("error").map_err(backend)?;
                let manual: bool = row.try_get("manual").map_err(backend)?;
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
                    manual,
                })
            })
            .collect()
    }

    /// From the pending rows alone (the partial index on pending `due_at`): its cost does not
    /// grow with history, unlike [`counts`](DeliveryStore::counts).
    async fn queue_depth(&self, now: UnixMillis) -> Result<(u64, u64), StoreError> {
        let (pending, in_flight): (i64, i64) = sqlx::query_as(&self.q(
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

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        let row = sqlx::query(&self.q("SELECT
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

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        let queued: Vec<String> = sqlx::query_scalar(&self.q("WITH queued AS (
                 UPDATE {s}.hookrelay_deliveries
                 SET status = 'pending', dead_reason = NULL, finished_at = NULL, due_at = $2,
                     manual = true, lease_token = NULL, lease_until = NULL
                 WHERE id = ANY($1)
                   AND status NOT IN ('superseded', 'batched')
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
    ) -> Result<Option<Claim>, StoreError> {
        let ids: Vec<&str> = batch.members.iter().map(|(id, _)| id.as_str()).collect();
        let tokens: Vec<i64> = batch
            .members
            .iter()
            .map(|(_, t)| i64::try_from(t.0).unwrap_or(i64::MAX))
            .collect();
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let marked = sqlx::query(&self.q("UPDATE {s}.hookrelay_deliveries d
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
        let token: i64 = sqlx::query_scalar(&self.q("WITH m AS (
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
                      lease_until)
                 SELECT $6, seq, $7, 0, 'pending', $8, 'batch', nextval('{s}.hookrelay_fencing'), $8
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
        .fetch_one(&mut *tx)
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
            token: FencingToken(u64::try_from(token).unwrap_or(0)),
        }))
    }

    /// One short transaction: up to `limit` finished deliveries past their retention (by the
    /// partial index on `finished_at`, skipping rows another transaction holds), their
    /// attempt logs, the messages and bodies left without deliveries, up to `limit` manual
    /// attempt logs past theirs, and expired publish keys.
    async fn purge(
        &self,
        retention: &Retention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let before = |keep: Duration| {
            ms(now).saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
        };
        let (delivered, failed) = (before(retention.delivered), before(retention.failed));
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let doomed: Vec<(i64, i64)> = sqlx::query_as(&self.q(
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
                &self.q("DELETE FROM {s}.hookrelay_attempts WHERE delivery_seq = ANY($1)"),
            )
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            purged.deliveries +=
                sqlx::query(&self.q("DELETE FROM {s}.hookrelay_deliveries WHERE seq = ANY($1)"))
                    .bind(&seqs)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
            purged.messages += sqlx::query(&self.q("WITH orphans AS (
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
        purged.attempts += sqlx::query(&self.q(
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
            &self.q("DELETE FROM {s}.hookrelay_publish_keys WHERE key IN (
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
/// Compile-time check: opening the store is a `Send` future (sqlx's `raw_sql(…).execute`
/// is not, for every lifetime; `Executor::execute` is), so it can be spawned.
#[cfg(test)]
#[allow(dead_code)]
fn _send_checks(pool: PgPool) {
    fn is_send<T: Send + 'static>(_: T) {}
    let p = pool.clone();
    is_send(async move { migrate(&p, "x", MIGRATIONS).await });
    let p = pool.clone();
    is_send(async move { PostgresStore::builder().pool(p).await });
    is_send(async move { PostgresStore::builder().connect("x").await });
}
