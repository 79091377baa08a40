//! [`PostgresStore`]: the delivery store in PostgreSQL, shared by many dispatcher processes on
//! many hosts (feature `postgres`).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::PgPool;
use tokio::sync::watch;

use super::StoreError;
use super::codec;
use super::encryption::{Keyring, settings::Reseal};

mod log;
mod log_filter;
mod migrate;
mod notify;
mod queue;
mod registry;

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
    acquire_timeout: Duration,
    statement_timeout: Duration,
    keyring: Option<Keyring>,
}

impl PostgresStoreBuilder {
    /// Keeps endpoint secrets encrypted at rest under `keyring`: every secret field of an
    /// endpoint's stored settings (signing secrets, TaskOn's API key) is sealed when written
    /// and opened when read. Every process sharing the schema needs the same keys.
    ///
    /// It protects the secrets in a `pg_dump`, a backup, a replica's disk or a leaked
    /// `SELECT`; it does not protect against anyone holding the key or the running process's
    /// memory, and URLs, headers, message bodies and the attempt log stay in plain text. See
    /// the [`encryption` module](crate::send::store::encryption) for the details and the key
    /// rotation steps ([`PostgresStore::rotate_encryption`]).
    ///
    /// When the store opens, plain secrets already stored are sealed (one transaction,
    /// `FOR UPDATE` on the endpoint rows). Without a keyring, a schema holding sealed secrets
    /// fails to open, as does one holding secrets sealed under a key `keyring` lacks: an
    /// error that [is an encryption error](crate::StoreError::is_encryption), never plain
    /// text.
    pub fn encryption(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

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

    /// How long a dispatcher may hold finished results to record them in one round while
    /// no claim is wanted ([`DeliveryQueue::batch_window`](super::DeliveryQueue::batch_window);
    /// default 2 ms). While work is due, results ride the next claim, which the dispatcher
    /// sends as soon as its last round is done, so rounds grow with the load whatever the
    /// window; zero records at once when nothing else needs the store.
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }

    /// How long a call waits for a free pooled connection before it fails with an error that
    /// [is a time-out](crate::StoreError::is_timeout) (default 5 s, not sqlx's 30 s; used by
    /// [`connect`](Self::connect)).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The `statement_timeout` set on every pooled connection [`connect`](Self::connect)
    /// opens (default 30 s; zero: none): a statement running longer is cancelled by the
    /// server and fails with an error that [is a time-out](crate::StoreError::is_timeout).
    /// With the acquire time-out, it bounds how long a database that stops answering can
    /// hold `publish` or a dispatcher round. A pool you bring ([`pool`](Self::pool)) keeps
    /// its own settings.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Connects to `url` (`postgres://user:password@host/database`) and opens the store.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        if !crate::postgres::valid_schema(&self.schema) {
            return Err(invalid_schema());
        }
        let pool = crate::postgres::open(
            url,
            self.max_connections,
            self.acquire_timeout,
            self.statement_timeout,
        )
        .await?;
        self.pool(pool).await
    }

    /// Opens the store on your pool (shared with your own tables and with
    /// [`PostgresIdempotencyStore`](crate::receive::PostgresIdempotencyStore)).
    pub async fn pool(self, pool: PgPool) -> Result<PostgresStore, StoreError> {
        if !crate::postgres::valid_schema(&self.schema) {
            return Err(invalid_schema());
        }
        if self.migrations == Migrations::Apply {
            migrate::run(&pool, &self.schema).await?;
        }
        let prefix = format!("\"{}\".", self.schema);
        let (wake, _) = watch::channel(0u64);
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                channel: format!("hookrelay_{}", self.schema),
                prefix,
                wake: Arc::new(wake),
                listener: OnceLock::new(),
                batch_window: self.batch_window,
                keyring: self.keyring,
            }),
        };
        store.check_encryption().await?;
        Ok(store)
    }
}

fn invalid_schema() -> StoreError {
    StoreError::invalid_config("schema name")
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
/// you would the secrets, or give the store a keyring
/// ([`PostgresStoreBuilder::encryption`]) to keep them sealed.
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
/// | `hookrelay_rate_limits` | management API caller × route class (feature `server`) | active callers |
/// | `hookrelay_api_replays` | management API `Idempotency-Key`, until it expires | keys of the last 24 h |
/// | `hookrelay_migrations` | applied migration step | one per step |
///
/// and a sequence, `hookrelay_fencing`, for fencing tokens.
///
/// | index | serves | cost grows with |
/// |---|---|---|
/// | `hookrelay_deliveries_due` (`due_at`, partial: `status = 'pending'`) | "is anything due", [`next_due`](super::DeliveryQueue::next_due) | pending deliveries only |
/// | `hookrelay_deliveries_endpoint_due_seq` (`endpoint_id, due_at, seq`, partial: pending) | claiming: each endpoint's oldest due, read in order up to its room | pending deliveries only |
/// | `hookrelay_deliveries_leased` (`endpoint_id, lease_until`, partial: pending and leased) | counting an endpoint's attempts in flight (concurrency cap) | attempts in flight |
/// | `hookrelay_deliveries_message`, `_endpoint` (`endpoint_id, seq`) | listing by message, by endpoint | log of the rows listed |
/// | `hookrelay_deliveries_owner` (`owner, seq`, partial: owned), `_status` (`status, seq`), `_type` (`event_type, seq`), `_created` (`created_at, seq`) | the log's pages ([`log_page`](super::DeliveryLog::log_page)), dead letters | log of history |
/// | `hookrelay_deliveries_ordered` (`endpoint_id, order_key, seq`, partial: pending, ordered) | "is an earlier delivery with this key still pending" ([`DeliveryOrder`](crate::send::DeliveryOrder)) | pending ordered deliveries |
/// | `hookrelay_deliveries_throttled` (`endpoint_id, throttle_key`, partial: pending, throttled) | superseding at publish ([`Throttle`](crate::send::Throttle)) | pending throttled deliveries |
/// | `hookrelay_deliveries_finished` (`finished_at`, partial: finished) | the retention purge, oldest first | log of history |
/// | `hookrelay_attempts_manual` (`started_at`, partial: manual) | purging manual attempt logs | manual attempts |
/// | `hookrelay_endpoints_key` (unique: owner, `endpoint_key`), `_owner` (`owner, id`) | [`endpoint_by_key`](super::EndpointRegistry::endpoint_by_key), keys unique per owner; endpoint pages by owner | endpoints |
///
/// So claiming reads only pending rows: its cost does not grow with the delivered and
/// dead-lettered history (`benches/send_postgres.rs` measures it with 10 000 and 1 000 000
/// finished deliveries). [`counts`](super::DeliveryLog::counts) scans the deliveries table and is
/// meant for dashboards and tests, not for every request; the dispatcher's queue-depth
/// metric uses [`queue_depth`](super::DeliveryQueue::queue_depth), which reads pending rows only. [`purge`](super::DeliveryLog::purge)
/// deletes finished history in batches of your size, each its own short transaction,
/// skipping rows another transaction holds.
///
/// # The log's pages
///
/// [`log_page`](super::DeliveryLog::log_page) pages by keyset on `seq` (never `OFFSET`):
/// each delivery row carries its endpoint's owner, its event type and its publish time, so
/// an endpoint, owner, status or exact event type filter reads its `(column, seq)` index
/// from the cursor and stops after a page, at any depth of a history of millions
/// (`benches/log_page.rs`). Filters no such index orders — a publish-time range, a type
/// prefix, several statuses, kinds, response classes — read a window of 1 000 rows along
/// `seq` from the cursor first; when that window holds less than a page, the matches past
/// it are found by their own index and sorted, so such a page costs at most the window plus
/// the filter's own matches (a one-day range over a history of a million, far back: tens of
/// milliseconds for its first page, then under one).
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
/// [`next_due`](super::DeliveryQueue::next_due) knows both limits: an idle dispatcher sleeps until
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
    keyring: Option<Keyring>,
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
    crate::sqlx_error::from_sqlx(err)
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::corrupt(what)
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
            acquire_timeout: crate::postgres::ACQUIRE_TIMEOUT,
            statement_timeout: crate::postgres::STATEMENT_TIMEOUT,
            keyring: None,
        }
    }

    /// Re-seals every stored endpoint secret under the keyring's current key, in one
    /// transaction (`FOR UPDATE` on the endpoint rows); returns how many secret fields it
    /// re-sealed (plain ones included).
    ///
    /// The rotation step of the [`encryption` module](crate::send::store::encryption): open
    /// the store with the new key current and the old one as previous
    /// ([`Keyring::with_previous`]) in every process, call this once, then drop the old key.
    /// Errors: without a keyring, or with a secret sealed under a key the keyring lacks, an
    /// error that [is an encryption error](crate::StoreError::is_encryption); nothing is
    /// changed then.
    pub async fn rotate_encryption(&self) -> Result<u64, StoreError> {
        if self.inner.keyring.is_none() {
            return Err(StoreError::encryption(
                crate::send::EncryptionError::KeyRequired,
            ));
        }
        self.reseal_all(Reseal::NotCurrent).await
    }

    fn keyring(&self) -> Option<&Keyring> {
        self.inner.keyring.as_ref()
    }

    /// At start: refuses sealed secrets it cannot open; with a keyring, seals plain ones.
    async fn check_encryption(&self) -> Result<(), StoreError> {
        // A read-only pass first: most starts have nothing to seal and lock no row.
        let rows: Vec<(String, String)> =
            sqlx::query_as(self.q("SELECT id, settings FROM {s}.hookrelay_endpoints ORDER BY id"))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(backend)?;
        let mut plain = false;
        for (id, settings) in &rows {
            plain |= codec::reseal_stored(id, settings, self.keyring(), Reseal::Plain)?.is_some();
        }
        if plain {
            self.reseal_all(Reseal::Plain).await?;
        }
        Ok(())
    }

    async fn reseal_all(&self, which: Reseal) -> Result<u64, StoreError> {
        let mut tx = self.inner.pool.begin().await.map_err(backend)?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            self.q("SELECT id, settings FROM {s}.hookrelay_endpoints ORDER BY id FOR UPDATE"),
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut total = 0u64;
        for (id, settings) in rows {
            let Some((resealed, n)) = codec::reseal_stored(&id, &settings, self.keyring(), which)?
            else {
                continue;
            };
            sqlx::query(self.q("UPDATE {s}.hookrelay_endpoints SET settings = $2 WHERE id = $1"))
                .bind(&id)
                .bind(resealed)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            total = total.saturating_add(n);
        }
        tx.commit().await.map_err(backend)?;
        Ok(total)
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
        migrate::script(schema)
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
    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(sql.replace("{s}.", &self.inner.prefix))
    }
}
