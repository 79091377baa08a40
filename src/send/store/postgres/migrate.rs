//! The PostgreSQL schema runner: each step a `.sql` file under `migrations/postgres/`
//! (`{s}` standing for the quoted schema), applied once under a transaction-scoped advisory
//! lock, recorded in `hookrelay_migrations (version, name, applied_at)`.

use sqlx::Executor as _;
use sqlx::postgres::{PgConnection, PgPool};

use super::backend;
use crate::StoreError;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    /// Its number, in order; never reused.
    pub(crate) version: i32,
    /// Its file name, without `.sql`.
    pub(crate) name: &'static str,
    /// The statements; `{s}` stands for the quoted schema.
    pub(crate) sql: &'static str,
}

/// The delivery store's steps, in order. Never edit a published step: add one.
pub(crate) const STEPS: &[Step] = &[
    Step {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Step {
        version: 2,
        name: "0002_administration",
        sql: include_str!("../migrations/postgres/0002_administration.sql"),
    },
    Step {
        version: 3,
        name: "0003_endpoint_fields",
        sql: include_str!("../migrations/postgres/0003_endpoint_fields.sql"),
    },
    Step {
        version: 4,
        name: "0004_management_limits",
        sql: include_str!("../migrations/postgres/0004_management_limits.sql"),
    },
    Step {
        version: 5,
        name: "0005_claim_order",
        sql: include_str!("../migrations/postgres/0005_claim_order.sql"),
    },
];

/// Applies the steps `schema` lacks, under an advisory lock.
pub(crate) async fn run(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let quoted = format!("\"{schema}\"");
    let lock_name = format!("hookrelay migrations {schema}");
    let create_schema = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
    let create_table = format!(
        "CREATE TABLE IF NOT EXISTS {quoted}.hookrelay_migrations (
             version int4 PRIMARY KEY,
             name text NOT NULL DEFAULT '',
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    );
    // Tables made by hookrelay 0.1 have no `name` column.
    let add_name = format!(
        "ALTER TABLE {quoted}.hookrelay_migrations ADD COLUMN name text NOT NULL DEFAULT ''"
    );
    let name_step = format!(
        "UPDATE {quoted}.hookrelay_migrations SET name = $2 WHERE version = $1 AND name = ''"
    );
    let select = format!("SELECT version FROM {quoted}.hookrelay_migrations");
    let insert =
        format!("INSERT INTO {quoted}.hookrelay_migrations (version, name) VALUES ($1, $2)");
    let mut tx = pool.begin().await.map_err(backend)?;
    let conn: &mut PgConnection = &mut tx;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(&lock_name)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    // Create only what is missing: `CREATE … IF NOT EXISTS` still needs the privilege to
    // create, which an application's database user may not have once migrated.
    let (has_schema, has_table, has_name): (bool, bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                to_regclass($2) IS NOT NULL,
                EXISTS (SELECT 1 FROM information_schema.columns
                        WHERE table_schema = $1 AND table_name = 'hookrelay_migrations'
                          AND column_name = 'name')",
    )
    .bind(schema)
    .bind(format!("{quoted}.hookrelay_migrations"))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if !has_schema {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create_schema)))
            .await
            .map_err(backend)?;
    }
    if !has_table {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create_table)))
            .await
            .map_err(backend)?;
    } else if !has_name {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(add_name)))
            .await
            .map_err(backend)?;
        // Name the steps applied before the column existed.
        for step in STEPS {
            sqlx::query(sqlx::AssertSqlSafe(name_step.as_str()))
                .bind(step.version)
                .bind(step.name)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
    }
    let applied: Vec<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    for step in STEPS {
        if applied.contains(&step.version) {
            continue;
        }
        let sql = step.sql.replace("{s}", &quoted);
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await
            .map_err(backend)?;
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(step.version)
            .bind(step.name)
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
/// [`Migrations::AlreadyApplied`](super::Migrations::AlreadyApplied); a later release that
/// adds a step documents it in `CHANGELOG.md`, and
/// [`Migrations::Apply`](super::Migrations::Apply) applies only what the table lacks.
pub(crate) fn script(schema: &str) -> Option<String> {
    if !crate::postgres::valid_schema(schema) {
        return None;
    }
    let quoted = format!("\"{schema}\"");
    let mut script = format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};\n\
         CREATE TABLE IF NOT EXISTS {quoted}.hookrelay_migrations (\n    \
         version int4 PRIMARY KEY,\n    name text NOT NULL DEFAULT '',\n    \
         applied_at timestamptz NOT NULL DEFAULT now()\n);\n"
    );
    for step in STEPS {
        script.push_str(&step.sql.replace("{s}", &quoted));
        script.push_str(&format!(
            "INSERT INTO {quoted}.hookrelay_migrations (version, name) VALUES ({}, '{}');\n",
            step.version, step.name
        ));
    }
    Some(script)
}

/// Compile-time check: opening the store is a `Send` future (sqlx's `raw_sql(…).execute`
/// is not, for every lifetime; `Executor::execute` is), so it can be spawned.
#[cfg(test)]
#[allow(dead_code)]
fn _send_checks(pool: PgPool) {
    fn is_send<T: Send + 'static>(_: T) {}
    let p = pool.clone();
    is_send(async move { run(&p, "x").await });
    let p = pool.clone();
    is_send(async move { super::PostgresStore::builder().pool(p).await });
    is_send(async move { super::PostgresStore::builder().connect("x").await });
}
