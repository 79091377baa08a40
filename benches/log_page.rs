//! The delivery log's page (`DeliveryLog::log_page`) against a long history: p99 latency of
//! a page of 50 at the start, the middle and the end of the history, unfiltered and filtered
//! by endpoint and by owner, each paired in the same run with a plain lookup by primary key
//! (`SELECT … FROM hookrelay_deliveries WHERE seq = $1` through the same pool).
//!
//! ```sh
//! HOOKRELAY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench log_page --features postgres,sqlite
//! ```
//!
//! - `LOG_BENCH_PG_ROWS` (default 1 000 000) and `LOG_BENCH_SQLITE_ROWS` (default 100 000):
//!   the history's size, one delivery per message (CI can run it small).
//! - `LOG_BENCH_SAMPLES` (default 400): timed calls per cell and per side.
//! - `LOG_BENCH_STORES` (default `postgres,sqlite`): which stores run; PostgreSQL only with
//!   `HOOKRELAY_TEST_DATABASE_URL`.
//! - `LOG_BENCH_REUSE=1` keeps a PostgreSQL schema filled by an earlier run of the same size
//!   (`hr_log_bench_<rows>`) instead of filling it again; the schema is left in place.
//!
//! The history is bulk-inserted in SQL (`generate_series` in PostgreSQL, a recursive CTE in
//! SQLite): 16 endpoints (`ep_0`…`ep_15`, delivery `g` to `ep_{g % 16}`), 4 owners
//! (`own_{endpoint % 4}`), 5 event types, 2 % dead letters, one message each with a small
//! body. The end of the history is reached by a cursor (`Cursor::log(seq)`) that leaves one
//! page and a row of matches before it; the middle by `Cursor::log(rows / 2)`.
//!
//! With a ratio above 3×, the floors are printed too: a bare `SELECT 1` (the round trip) and
//! fetching the same 50 rows with their messages by a `seq` range (the rows' transfer and
//! decoding, without the keyset query).

use std::time::Instant;

use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{Cursor, LogQuery, PageLimit};
use hookrelay::send::{
    DeliveryLog, Endpoint, EndpointId, EndpointRegistry, Owner, PostgresStore, SqliteStore,
};

const ENDPOINTS: u64 = 16;
const OWNERS: u64 = 4;
const PAGE: usize = 50;
const T0: u64 = 1_700_000_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The endpoints, each with its owner.
fn endpoints() -> Vec<Endpoint> {
    (0..ENDPOINTS)
        .map(|i| {
            Endpoint::builder(format!("https://ep{i}.example/hook"), Profile::TaskHub)
                .id(EndpointId::new(format!("ep_{i}")).unwrap())
                .secret(Secret::from_raw("bench-secret").unwrap())
                .owner(Owner::new(format!("own_{}", i % OWNERS)).unwrap())
                .build()
                .unwrap()
        })
        .collect()
}

/// One cell of the table: which rows, from where.
#[derive(Clone, Copy)]
enum Filter {
    None,
    Endpoint,
    Owner,
}

impl Filter {
    const ALL: [Filter; 3] = [Filter::None, Filter::Endpoint, Filter::Owner];

    fn name(self) -> &'static str {
        match self {
            Filter::None => "unfiltered",
            Filter::Endpoint => "endpoint",
            Filter::Owner => "owner",
        }
    }

    /// One row in this many matches.
    fn spacing(self) -> u64 {
        match self {
            Filter::None => 1,
            Filter::Endpoint => ENDPOINTS,
            Filter::Owner => OWNERS,
        }
    }

    fn query(self, after: Option<Cursor>) -> LogQuery {
        let mut q = LogQuery {
            after,
            limit: PageLimit::new(PAGE).unwrap(),
            ..LogQuery::default()
        };
        match self {
            Filter::None => {}
            Filter::Endpoint => q.endpoint = Some(EndpointId::new("ep_3").unwrap()),
            Filter::Owner => q.owner = Some(Owner::new("own_3").unwrap()),
        }
        q
    }
}

#[derive(Clone, Copy)]
enum Depth {
    Start,
    Middle,
    End,
}

impl Depth {
    const ALL: [Depth; 3] = [Depth::Start, Depth::Middle, Depth::End];

    fn name(self) -> &'static str {
        match self {
            Depth::Start => "start",
            Depth::Middle => "middle",
            Depth::End => "end",
        }
    }

    /// The cursor (newest first): none at the start, half-way, or just after the oldest
    /// page of matches plus one row (so the page is full and `next` is set).
    fn cursor(self, rows: u64, filter: Filter) -> Option<Cursor> {
        match self {
            Depth::Start => None,
            Depth::Middle => Some(Cursor::log(rows / 2)),
            Depth::End => Some(Cursor::log(filter.spacing() * (PAGE as u64 + 1) + 1)),
        }
    }
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = (v.len() * 99).div_ceil(100).max(1);
    v[rank - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `page` and `baseline` alternately, `samples` times each (after a warm-up); their
/// p99 and median in microseconds.
async fn paired<P, B>(samples: usize, mut page: P, mut baseline: B) -> [(f64, f64); 2]
where
    P: AsyncFnMut(),
    B: AsyncFnMut(),
{
    for _ in 0..samples.div_ceil(10) {
        page().await;
        baseline().await;
    }
    let (mut a, mut b) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..samples {
        // Alternate which goes first, so neither always follows the other.
        for side in [i % 2, 1 - i % 2] {
            let start = Instant::now();
            if side == 0 {
                page().await;
            } else {
                baseline().await;
            }
            let us = start.elapsed().as_secs_f64() * 1e6;
            if side == 0 { a.push(us) } else { b.push(us) }
        }
    }
    [(p99(a.clone()), median(a)), (p99(b.clone()), median(b))]
}

fn header(store: &str, rows: u64, samples: usize) {
    println!(
        "\n{store}: log_page, a page of {PAGE}, newest first, {rows} deliveries; \
         p99 (median) of {samples} calls each, paired with a lookup by primary key"
    );
    println!(
        "  {:<11} {:<7} {:>20} {:>20} {:>8}",
        "filter", "depth", "log_page µs", "by seq µs", "p99 ratio"
    );
}

fn line(filter: Filter, depth: Depth, [page, base]: [(f64, f64); 2]) -> f64 {
    let ratio = page.0 / base.0;
    println!(
        "  {:<11} {:<7} {:>10.0} ({:>6.0}) {:>10.0} ({:>6.0}) {:>8.2}×",
        filter.name(),
        depth.name(),
        page.0,
        page.1,
        base.0,
        base.1,
        ratio
    );
    ratio
}

async fn postgres(url: &str, rows: u64, samples: usize) {
    let schema = format!("hr_log_bench_{rows}");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    let reuse = std::env::var("LOG_BENCH_REUSE").is_ok_and(|v| v == "1");
    let s = format!("\"{schema}\"");
    let filled: Option<i64> = if reuse {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {s}.hookrelay_deliveries"
        )))
        .fetch_one(&pool)
        .await
        .ok()
    } else {
        None
    };
    if filled != Some(i64::try_from(rows).unwrap()) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
    let store = PostgresStore::builder()
        .schema(&schema)
        .pool(pool.clone())
        .await
        .unwrap();
    if filled != Some(i64::try_from(rows).unwrap()) {
        let start = Instant::now();
        for e in endpoints() {
            store.put_endpoint(&e).await.unwrap();
        }
        let step = 100_000u64;
        for from in (1..=rows).step_by(step as usize) {
            let to = (from + step - 1).min(rows);
            let (from, to) = (from as i64, to as i64);
            let mut tx = pool.begin().await.unwrap();
            for sql in [
                "INSERT INTO {s}.hookrelay_messages (seq, id, event_id, event_type, created_at)
                 SELECT g, 'msg_' || g, 'evt_' || g,
                        (ARRAY['invoice.paid','invoice.created','task.created','task.done',
                               'user.deleted'])[1 + g % 5],
                        $3 + g * 1000
                 FROM generate_series($1::int8, $2::int8) g",
                "INSERT INTO {s}.hookrelay_bodies (message_seq, form, body)
                 SELECT g, 0, convert_to('{\"id\":\"evt_' || g || '\",\"data\":{}}', 'UTF8')
                 FROM generate_series($1::int8, $2::int8) g",
                "INSERT INTO {s}.hookrelay_deliveries
                     (seq, id, message_seq, endpoint_id, owner, event_type, created_at, form,
                      status, dead_reason, attempts, last_status, finished_at)
                 SELECT g, 'dlv_' || g, g, 'ep_' || (g % 16), 'own_' || (g % 16 % 4),
                        m.event_type, m.created_at, 0,
                        CASE WHEN g % 50 = 0 THEN 'dead' ELSE 'delivered' END,
                        CASE WHEN g % 50 = 0 THEN 'exhausted' END,
                        CASE WHEN g % 50 = 0 THEN 8 ELSE 1 END,
                        CASE WHEN g % 50 = 0 THEN 503 ELSE 200 END,
                        m.created_at + 40
                 FROM generate_series($1::int8, $2::int8) g
                 JOIN {s}.hookrelay_messages m ON m.seq = g",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql.replace("{s}", &s)))
                    .bind(from)
                    .bind(to)
                    .bind(T0 as i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        // One statement each: VACUUM cannot run inside the implicit transaction of several.
        for sql in [
            format!(
                "SELECT setval(pg_get_serial_sequence('{s}.hookrelay_messages', 'seq'), {rows})"
            ),
            format!(
                "SELECT setval(pg_get_serial_sequence('{s}.hookrelay_deliveries', 'seq'), {rows})"
            ),
            format!("VACUUM ANALYZE {s}.hookrelay_messages"),
            format!("VACUUM ANALYZE {s}.hookrelay_bodies"),
            format!("VACUUM ANALYZE {s}.hookrelay_deliveries"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        println!(
            "PostgreSQL: filled {rows} deliveries in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    let by_seq = format!(
        "SELECT seq, id, status, endpoint_id, owner FROM {s}.hookrelay_deliveries WHERE seq = $1"
    );
    header("PostgreSQL", rows, samples);
    let mut worst: f64 = 0.0;
    for filter in Filter::ALL {
        for depth in Depth::ALL {
            let query = filter.query(depth.cursor(rows, filter));
            let now = UnixMillis::from_millis(T0 + rows * 1000 + 1);
            let first = store.log_page(&query, now).await.unwrap();
            assert_eq!(
                first.items.len(),
                PAGE,
                "{} {}",
                filter.name(),
                depth.name()
            );
            let mut key = 0i64;
            let times = paired(
                samples,
                async || {
                    std::hint::black_box(store.log_page(&query, now).await.unwrap());
                },
                async || {
                    key = key % (rows as i64) + 7919;
                    let row = sqlx::query(sqlx::AssertSqlSafe(by_seq.as_str()))
                        .bind(key.min(rows as i64))
                        .fetch_one(store.pool())
                        .await
                        .unwrap();
                    std::hint::black_box(row);
                },
            )
            .await;
            worst = worst.max(line(filter, depth, times));
        }
    }
    if worst > 3.0 {
        let columns = "d.id, d.status, d.dead_reason, d.attempts, d.last_status, d.due_at, \
                       d.lease_until, d.endpoint_id, d.owner, d.kind, d.finished_at, d.batch_id, \
                       m.id AS message_id, m.event_id, m.event_type, m.created_at";
        let range = format!(
            "SELECT {columns} FROM {s}.hookrelay_deliveries d
             JOIN {s}.hookrelay_messages m ON m.seq = d.message_seq
             WHERE d.seq > $1 AND d.seq <= $1 + {PAGE} ORDER BY d.seq DESC"
        );
        let mid = (rows / 2) as i64;
        let times = paired(
            samples,
            async || {
                let rows = sqlx::query(sqlx::AssertSqlSafe(range.as_str()))
                    .bind(mid)
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
                std::hint::black_box(rows);
            },
            async || {
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                std::hint::black_box(one);
            },
        )
        .await;
        println!(
            "  floors: {PAGE} rows with messages by a seq range {:.0} µs p99 ({:.0} median); \
             SELECT 1 {:.0} µs p99 ({:.0} median)",
            times[0].0, times[0].1, times[1].0, times[1].1
        );
    }
    if !reuse {
        drop(store);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    }
}

async fn sqlite(rows: u64, samples: usize) {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hr_log_bench_{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let start = Instant::now();
    for e in endpoints() {
        store.put_endpoint(&e).await.unwrap();
    }
    let mut tx = store.pool().begin().await.unwrap();
    for (i, sql) in [
        "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?1)
         INSERT INTO hookrelay_messages (seq, id, event_id, event_type, created_at)
         SELECT x, 'msg_' || x, 'evt_' || x,
                CASE x % 5 WHEN 0 THEN 'user.deleted' WHEN 1 THEN 'invoice.paid'
                           WHEN 2 THEN 'invoice.created' WHEN 3 THEN 'task.created'
                           ELSE 'task.done' END,
                ?2 + x * 1000
         FROM g",
        "INSERT INTO hookrelay_bodies (message_seq, form, body)
         SELECT seq, 0, CAST('{\"id\":\"' || event_id || '\",\"data\":{}}' AS BLOB)
         FROM hookrelay_messages",
        "INSERT INTO hookrelay_deliveries
             (seq, id, message_seq, endpoint_id, owner, event_type, created_at, form, status,
              dead_reason, attempts, last_status, finished_at)
         SELECT seq, 'dlv_' || seq, seq, 'ep_' || (seq % 16), 'own_' || (seq % 16 % 4),
                event_type, created_at, 0,
                CASE WHEN seq % 50 = 0 THEN 'dead' ELSE 'delivered' END,
                CASE WHEN seq % 50 = 0 THEN 'exhausted' END,
                CASE WHEN seq % 50 = 0 THEN 8 ELSE 1 END,
                CASE WHEN seq % 50 = 0 THEN 503 ELSE 200 END,
                created_at + 40
         FROM hookrelay_messages",
    ]
    .into_iter()
    .enumerate()
    {
        let query = sqlx::query(sql);
        // Only the first statement (the messages) takes the size and the start time.
        let query = if i == 0 {
            query.bind(rows as i64).bind(T0 as i64)
        } else {
            query
        };
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::raw_sql("ANALYZE")
        .execute(store.pool())
        .await
        .unwrap();
    println!(
        "\nSQLite: filled {rows} deliveries in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let now = UnixMillis::from_millis(T0 + rows * 1000 + 1);
    if let Err(e) = store.log_page(&LogQuery::default(), now).await {
        println!("SQLite: log_page is not available in this build ({e}); skipped");
        drop(store);
        let _ = std::fs::remove_file(&path);
        return;
    }
    header("SQLite", rows, samples);
    let mut worst: f64 = 0.0;
    let by_seq =
        "SELECT seq, id, status, endpoint_id, owner FROM hookrelay_deliveries WHERE seq = ?1";
    for filter in Filter::ALL {
        for depth in Depth::ALL {
            let query = filter.query(depth.cursor(rows, filter));
            let first = store.log_page(&query, now).await.unwrap();
            assert_eq!(
                first.items.len(),
                PAGE,
                "{} {}",
                filter.name(),
                depth.name()
            );
            let mut key = 0i64;
            let times = paired(
                samples,
                async || {
                    std::hint::black_box(store.log_page(&query, now).await.unwrap());
                },
                async || {
                    key = key % (rows as i64) + 7919;
                    let row = sqlx::query(by_seq)
                        .bind(key.min(rows as i64))
                        .fetch_one(store.pool())
                        .await
                        .unwrap();
                    std::hint::black_box(row);
                },
            )
            .await;
            worst = worst.max(line(filter, depth, times));
        }
    }
    if worst > 3.0 {
        // The floor: the same page by hand — one endpoint's 51 newest rows before the middle,
        // with their messages, by its (endpoint_id, seq) index — paired with the lookup.
        let by_hand = "SELECT d.seq, d.id, d.status, d.dead_reason, d.attempts, d.last_status, \
                       d.due_at, d.lease_until, d.endpoint_id, d.owner, d.kind, d.finished_at, \
                       d.batch_id, d.event_type, d.created_at, m.id AS message_id, m.event_id \
                       FROM hookrelay_deliveries d JOIN hookrelay_messages m ON m.seq = d.message_seq \
                       WHERE d.endpoint_id = 'ep_3' AND d.seq < ?1 ORDER BY d.seq DESC LIMIT 51";
        let mid = (rows / 2) as i64;
        let mut key = 0i64;
        let times = paired(
            samples,
            async || {
                let page = sqlx::query(by_hand)
                    .bind(mid)
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
                std::hint::black_box(page);
            },
            async || {
                key = key % (rows as i64) + 7919;
                let row = sqlx::query(by_seq)
                    .bind(key.min(rows as i64))
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                std::hint::black_box(row);
            },
        )
        .await;
        println!(
            "  floor: the endpoint page written by hand (one indexed SELECT, no decoding) {:.0} µs p99 \
             ({:.0} median); by seq {:.0} µs p99 ({:.0} median): {:.2}×",
            times[0].0,
            times[0].1,
            times[1].0,
            times[1].1,
            times[0].0 / times[1].0
        );
    }
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn main() {
    let stores = std::env::var("LOG_BENCH_STORES").unwrap_or_else(|_| "postgres,sqlite".into());
    let samples = env_usize("LOG_BENCH_SAMPLES", 400);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if stores.contains("postgres") {
            match std::env::var("HOOKRELAY_TEST_DATABASE_URL") {
                Ok(url) => {
                    let rows = env_usize("LOG_BENCH_PG_ROWS", 1_000_000) as u64;
                    postgres(&url, rows, samples).await;
                }
                Err(_) => println!("PostgreSQL: HOOKRELAY_TEST_DATABASE_URL unset; skipped"),
            }
        }
        if stores.contains("sqlite") {
            let rows = env_usize("LOG_BENCH_SQLITE_ROWS", 100_000) as u64;
            sqlite(rows, samples).await;
        }
    });
}
