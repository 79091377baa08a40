//! The SQLite schema runner: each step a `.sql` file under `migrations/sqlite/`, applied once,
//! recorded in `hookrelay_migrations (version, name, applied_at)`.
//!
//! hookrelay keeps its own table rather than `PRAGMA user_version`, which belongs to the
//! application sharing the database. A database migrated by hookrelay 0.1 (which counted its
//! steps in `user_version`) has the `hookrelay_*` tables but no `hookrelay_migrations`: the
//! runner recognises the steps it already has from the schema itself, records them, and
//! applies the rest, leaving `user_version` alone.

use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use super::backend;
use crate::StoreError;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    /// Its number, in order; never reused.
    pub(crate) version: i64,
    /// Its file name, without `.sql`.
    pub(crate) name: &'static str,
    /// The statements.
    pub(crate) sql: &'static str,
}

/// The delivery store's steps, in order. Never edit a published step: add one.
pub(crate) const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Step {
        version: 2,
        name: "0002_delivery_features",
        sql: include_str!("../migrations/sqlite/0002_delivery_features.sql"),
    },
    Step {
        version: 3,
        name: "0003_administration",
        sql: include_str!("../migrations/sqlite/0003_administration.sql"),
    },
    Step {
        version: 4,
        name: "0004_endpoint_fields",
        sql: include_str!("../migrations/sqlite/0004_endpoint_fields.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS hookrelay_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)";

/// Applies the steps `pool`'s database lacks, in one `BEGIN IMMEDIATE` transaction.
pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::raw_sql(CREATE_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let mut applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM hookrelay_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    if applied.is_empty() {
        for version in adopted(&mut tx).await? {
            record(&mut tx, version).await?;
            applied.push(version);
        }
    }
    for step in STEPS {
        if applied.contains(&step.version) {
            continue;
        }
        sqlx::raw_sql(step.sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        record(&mut tx, step.version).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(())
}

async fn record(tx: &mut Transaction<'_, Sqlite>, version: i64) -> Result<(), StoreError> {
    let name = STEPS
        .iter()
        .find(|s| s.version == version)
        .map_or("", |s| s.name);
    sqlx::query("INSERT INTO hookrelay_migrations (version, name) VALUES (?1, ?2)")
        .bind(version)
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The steps a database migrated before `hookrelay_migrations` existed already has, read
/// from its schema: step 1 made the tables, step 2 added `hookrelay_deliveries.kind`.
async fn adopted(tx: &mut Transaction<'_, Sqlite>) -> Result<Vec<i64>, StoreError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (
             'hookrelay_endpoints', 'hookrelay_messages', 'hookrelay_bodies',
             'hookrelay_deliveries', 'hookrelay_attempts', 'hookrelay_publish_keys',
             'hookrelay_counters')",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    if tables == 0 {
        return Ok(Vec::new());
    }
    if tables != 7 {
        // Some tables but not all: not a schema this runner made.
        return Err(StoreError::corrupt(
            "hookrelay schema (some tables missing)",
        ));
    }
    let has_kind: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('hookrelay_deliveries') WHERE name = 'kind'",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(if has_kind > 0 { vec![1, 2] } else { vec![1] })
}
