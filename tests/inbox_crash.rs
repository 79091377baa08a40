//! CHECKLIST I.77 and the PostgreSQL inbox shared by processes (issue #21):
//!
//! - A receiver process (an inbox on SQLite, a worker whose handler records an idempotent
//!   effect and counts its runs) is killed with SIGKILL at random moments while 5 000 signed
//!   Standard Webhooks deliveries stream in from hookrelay's own sender, which retries; it is
//!   restarted each time. At the end every delivery the sender saw answered 2xx was handled at
//!   least once, each effect happened exactly once, nothing is pending or processing, and the
//!   number of deliveries handled twice is printed.
//! - Two receiver processes on one PostgreSQL inbox get every delivery at the same moment
//!   (the sender fans each event out to both): each is stored once and handled once.
//!
//! The receiver processes are this test binary run again with `inbox_child` and an
//! environment variable, as tests/send_crash.rs does.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::receive::axum::InboxLayer;
use hookrelay::receive::inbox::{Inbox, InboxStore, InboxWorker, PostgresInbox, SqliteInbox};
use hookrelay::receive::{Delivery, Receiver};
use hookrelay::retry::{RetryPolicy, UnixMillis};
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, Endpoint, MemoryStore, ReqwestTransport, Sender,
};

#[path = "pg_support/mod.rs"]
mod pg_support;

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CHILD_ENV: &str = "HOOKRELAY_INBOX_CHILD";

fn secret() -> Secret {
    Secret::from_base64(SW_SECRET).unwrap()
}

/// The receiver process: an inbox on the database in `HOOKRELAY_INBOX_CHILD`, served on
/// `HOOKRELAY_INBOX_PORT`, with a worker whose effect is idempotent and whose runs are
/// counted, until killed.
#[test]
fn inbox_child() {
    let Ok(database) = std::env::var(CHILD_ENV) else {
        return; // Only runs when a parent test starts it.
    };
    let port: u16 = std::env::var("HOOKRELAY_INBOX_PORT")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        if database.starts_with("sqlite:") {
            let store = SqliteInbox::connect(&database).await.unwrap();
            let pool = store.pool().clone();
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY);
                 CREATE TABLE IF NOT EXISTS runs (key TEXT NOT NULL);",
            )
            .execute(&pool)
            .await
            .unwrap();
            serve(port, Inbox::new(store), move |key| {
                let pool = pool.clone();
                async move {
                    sqlx::query("INSERT INTO runs (key) VALUES (?1)")
                        .bind(&key)
                        .execute(&pool)
                        .await?;
                    sqlx::query("INSERT INTO effects (key) VALUES (?1) ON CONFLICT DO NOTHING")
                        .bind(&key)
                        .execute(&pool)
                        .await?;
                    Ok(())
                }
            })
            .await;
        } else {
            let schema = std::env::var("HOOKRELAY_INBOX_SCHEMA").unwrap();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(6)
                .connect(&database)
                .await
                .unwrap();
            let store = PostgresInbox::from_pool_in(pool.clone(), &schema)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS \"{schema}\".runs (key text NOT NULL)"
            )))
            .execute(&pool)
            .await
            .unwrap();
            let insert = format!("INSERT INTO \"{schema}\".runs (key) VALUES ($1)");
            serve(port, Inbox::new(store), move |key| {
                let (pool, insert) = (pool.clone(), insert.clone());
                async move {
                    sqlx::query(sqlx::AssertSqlSafe(insert))
                        .bind(&key)
                        .execute(&pool)
                        .await?;
                    Ok(())
                }
            })
            .await;
        }
    });
}

async fn serve<S, F, Fut>(port: u16, inbox: Inbox<S>, effect: F)
where
    S: InboxStore,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'static,
{
    let receiver = Receiver::builder(Profile::StandardWebhooks)
        .secret(secret())
        .build()
        .unwrap();
    let _worker = InboxWorker::builder(inbox.clone())
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .handler(move |delivery: Delivery| effect(delivery.inbound.idempotency_key().to_string()))
        .build()
        .unwrap()
        .spawn();
    let app = Router::new()
        .route("/hook", post(|| async {}))
        .route_layer(InboxLayer::new(receiver, inbox));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

fn spawn_child(database: &str, port: u16, schema: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["inbox_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, database)
        .env("HOOKRELAY_INBOX_PORT", port.to_string())
        .env("HOOKRELAY_INBOX_SCHEMA", schema)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// xorshift: random kill moments, reproducible from the printed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A sender that retries quickly, to every port in `ports`, publishing `events` events.
async fn start_sender(
    ports: &[u16],
    events: usize,
) -> (Sender<MemoryStore>, hookrelay::send::DispatcherHandle) {
    let sender = Sender::new(MemoryStore::new());
    let policy = RetryPolicy::builder()
        .delays([Duration::from_millis(100)])
        .max_attempts(1_000)
        .without_max_age()
        .build()
        .unwrap();
    for port in ports {
        let endpoint = Endpoint::builder(
            format!("http://127.0.0.1:{port}/hook"),
            Profile::StandardWebhooks,
        )
        .secret(secret())
        .without_rate_limit()
        .retry_policy(policy.clone())
        .concurrency(16)
        .build()
        .unwrap();
        sender.add_endpoint(endpoint).await.unwrap();
    }
    let transport = ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .build()
        .unwrap();
    let dispatcher = sender.dispatcher(transport).concurrency(32).spawn();
    for i in 0..events {
        let event = OutgoingEvent::new("task.created", serde_json::json!({ "n": i }));
        sender.publish(event).await.unwrap();
    }
    (sender, dispatcher)
}

/// Waits (bounded) until the sender has every delivery answered 2xx.
async fn all_delivered(sender: &Sender<MemoryStore>, expected: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let counts = sender.store().counts(UnixMillis::now()).await.unwrap();
        if counts.delivered == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sender did not finish: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until nothing in `inbox` is pending or processing.
async fn drained(
    inbox: &impl InboxStore,
    limit: Duration,
) -> hookrelay::receive::inbox::InboxCounts {
    let deadline = Instant::now() + limit;
    loop {
        let counts = inbox.counts().await.unwrap();
        if counts.pending + counts.processing == 0 {
            return counts;
        }
        assert!(Instant::now() < deadline, "inbox not drained: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_deliveries_stream_in_loses_nothing_and_effects_happen_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    const EVENTS: usize = 5_000;
    const KILLS: usize = 4;
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-inbox-crash-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let port = free_port();
    let mut seed = UnixMillis::now().as_millis() | 1;
    println!("inbox crash test seed {seed}");

    let mut child = spawn_child(&url, port, "");
    let (sender, dispatcher) = start_sender(&[port], EVENTS).await;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(200 + next(&mut seed) % 800)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = spawn_child(&url, port, "");
    }
    all_delivered(&sender, EVENTS as u64, Duration::from_secs(120)).await;
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();

    let inbox = SqliteInbox::connect(&url).await.unwrap();
    let counts = drained(&inbox, Duration::from_secs(60)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(counts.done, EVENTS as u64, "{counts:?}");
    assert_eq!(counts.dead, 0, "{counts:?}");
    let pool = inbox.pool();
    let effects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(pool)
        .await
        .unwrap();
    let handled: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT key) FROM runs")
        .fetch_one(pool)
        .await
        .unwrap();
    let twice: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT key FROM runs GROUP BY key HAVING COUNT(*) > 1)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        handled, EVENTS as i64,
        "every delivery answered 2xx was handled"
    );
    assert_eq!(effects, EVENTS as i64, "each effect exactly once");
    println!("inbox crash test: {KILLS} kills, {EVENTS} deliveries handled, {twice} handled twice");
    drop(inbox);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_inbox_handle_concurrent_duplicates_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let Some(url) = pg_support::database_url("two_processes_on_one_postgres_inbox") else {
        return;
    };
    const EVENTS: usize = 1_000;
    let schema = pg_support::fresh_schema(&url, "inbox2").await;
    // Create the tables once before both processes start.
    let inbox = PostgresInbox::from_pool_in(sqlx::PgPool::connect(&url).await.unwrap(), &schema)
        .await
        .unwrap();
    // ... and the handlers' table: two processes creating it at once would race in the
    // catalog (`CREATE TABLE IF NOT EXISTS` is not atomic against itself).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS \"{schema}\".runs (key text NOT NULL)"
    )))
    .execute(inbox.pool())
    .await
    .unwrap();
    let ports = [free_port(), free_port()];
    let mut children: Vec<Child> = ports
        .iter()
        .map(|port| spawn_child(&url, *port, &schema))
        .collect();
    let (sender, dispatcher) = start_sender(&ports, EVENTS).await;
    all_delivered(&sender, 2 * EVENTS as u64, Duration::from_secs(120)).await;
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
    let counts = drained(&inbox, Duration::from_secs(60)).await;
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(
        counts.done, EVENTS as u64,
        "each delivery stored once: {counts:?}"
    );
    let runs: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT key, COUNT(*) FROM \"{schema}\".runs GROUP BY key"
    )))
    .fetch_all(inbox.pool())
    .await
    .unwrap();
    assert_eq!(runs.len(), EVENTS);
    assert!(runs.iter().all(|(_, n)| *n == 1), "handled once each");
    pg_support::drop_schema(&url, &schema).await;
}
