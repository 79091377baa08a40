//! [`SqliteStore`]: the delivery store in one SQLite file (feature `sqlite`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::Transaction;
use sqlx::sqlite::SqlitePool;

use super::StoreError;
use super::codec;
use super::encryption::{Keyring, settings::Reseal};

mod log;
mod log_page;
mod migrate;
mod queue;
mod registry;

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
/// you would the secrets, or give the store a keyring
/// ([`SqliteStoreBuilder::encryption`]) to keep them sealed.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    keyring: Option<Arc<Keyring>>,
}

fn backend(err: sqlx::Error) -> StoreError {
    crate::sqlx_error::from_sqlx(err)
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::corrupt(what)
}

/// Configures a [`SqliteStore`]; made by [`SqliteStore::builder`].
///
/// **Time-outs.** A call never waits on the database beyond them: `busy_timeout` bounds how
/// long a statement waits for another connection's write lock (SQLite's `busy_timeout`;
/// default 5 s), and `acquire_timeout` how long a call waits for a free connection of the
/// pool (default 5 s). Either failure [is a time-out](crate::StoreError::is_timeout) or
/// [retryable](crate::StoreError::is_retryable): the dispatcher retries it, and `publish`
/// returns it to you.
#[derive(Debug, Clone)]
pub struct SqliteStoreBuilder {
    durability: Durability,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    keyring: Option<Keyring>,
}

impl SqliteStoreBuilder {
    /// Keeps endpoint secrets encrypted at rest under `keyring`: every secret field of an
    /// endpoint's stored settings (signing secrets, TaskOn's API key) is sealed when written
    /// and opened when read.
    ///
    /// It protects the secrets in a copied database file, a backup or a leaked `SELECT`; it
    /// does not protect against anyone holding the key or the running process's memory, and
    /// URLs, headers, message bodies and the attempt log stay in plain text. See the
    /// [`encryption` module](crate::send::store::encryption) for the details and the key
    /// rotation steps ([`SqliteStore::rotate_encryption`]).
    ///
    /// At [`connect`](Self::connect), plain secrets already stored are sealed (one
    /// transaction). Without a keyring, a database holding sealed secrets fails to open, as
    /// does one holding secrets sealed under a key `keyring` lacks: an error that
    /// [is an encryption error](crate::StoreError::is_encryption), never plain text.
    pub fn encryption(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// How much a commit survives (default [`Durability::PowerLoss`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a statement waits for the write lock another connection holds (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long a call waits for a free pooled connection (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Opens (creating if needed) the database at `url` and applies the migrations.
    pub async fn connect(self, url: &str) -> Result<SqliteStore, StoreError> {
        let synchronous = match self.durability {
            Durability::PowerLoss => sqlx::sqlite::SqliteSynchronous::Full,
            Durability::ProcessCrash => sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let pool =
            crate::sqlite::open_with(url, synchronous, self.busy_timeout, self.acquire_timeout)
                .await?;
        SqliteStore::open(pool, self.keyring).await
    }
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
    /// or `sqlite::memory:`, and applies the migrations, with the defaults of
    /// [`builder`](Self::builder).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// [`connect`](Self::connect) with the durability you choose.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        Self::builder().durability(durability).connect(url).await
    }

    /// A builder for the durability and the time-outs.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// use std::time::Duration;
    /// use hookrelay::send::{Durability, SqliteStore};
    ///
    /// let store = SqliteStore::builder()
    ///     .durability(Durability::ProcessCrash)
    ///     .busy_timeout(Duration::from_secs(2))
    ///     .acquire_timeout(Duration::from_secs(3))
    ///     .connect("sqlite::memory:")
    ///     .await?;
    /// # let _ = store;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            durability: Durability::default(),
            busy_timeout: crate::sqlite::BUSY_TIMEOUT,
            acquire_timeout: crate::sqlite::ACQUIRE_TIMEOUT,
            keyring: None,
        }
    }

    /// Uses an existing pool and applies the migrations it lacks (its time-outs are the
    /// pool's own). Without encryption: a database holding sealed secrets fails to open.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        Self::open(pool, None).await
    }

    async fn open(pool: SqlitePool, keyring: Option<Keyring>) -> Result<Self, StoreError> {
        migrate::run(&pool).await?;
        let store = SqliteStore {
            pool,
            keyring: keyring.map(Arc::new),
        };
        store.check_encryption().await?;
        Ok(store)
    }

    /// At start: refuses sealed secrets it cannot open; with a keyring, seals plain ones.
    async fn check_encryption(&self) -> Result<(), StoreError> {
        // A read-only pass first: most starts have nothing to seal and take no write lock.
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, settings FROM hookrelay_endpoints ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let mut plain = false;
        for (id, settings) in &rows {
            plain |= codec::reseal_stored(id, settings, self.keyring.as_deref(), Reseal::Plain)?
                .is_some();
        }
        if plain {
            self.reseal_all(Reseal::Plain).await?;
        }
        Ok(())
    }

    /// Re-seals every stored endpoint secret under the keyring's current key, in one
    /// transaction; returns how many secret fields it re-sealed (plain ones included).
    ///
    /// The rotation step of the [`encryption` module](crate::send::store::encryption):
    /// open the store with the new key current and the old one as previous
    /// ([`Keyring::with_previous`]), call this, then drop the old key. Errors: without a
    /// keyring, or with a secret sealed under a key the keyring lacks, an error that
    /// [is an encryption error](crate::StoreError::is_encryption); nothing is changed then.
    pub async fn rotate_encryption(&self) -> Result<u64, StoreError> {
        if self.keyring.is_none() {
            return Err(StoreError::encryption(
                crate::send::EncryptionError::KeyRequired,
            ));
        }
        self.reseal_all(Reseal::NotCurrent).await
    }

    async fn reseal_all(&self, which: Reseal) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, settings FROM hookrelay_endpoints ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let mut total = 0u64;
        for (id, settings) in rows {
            let Some((resealed, n)) =
                codec::reseal_stored(&id, &settings, self.keyring.as_deref(), which)?
            else {
                continue;
            };
            sqlx::query("UPDATE hookrelay_endpoints SET settings = ?2 WHERE id = ?1")
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

    /// How many message bodies are stored (one per message and body form). A test helper
    /// (feature `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub async fn body_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hookrelay_bodies")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
