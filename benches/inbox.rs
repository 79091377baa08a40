//! The receiver's inbox (issue #21): accepted deliveries per second into an inbox on memory,
//! SQLite (`synchronous = FULL`, a file) and PostgreSQL (with `HOOKRELAY_TEST_DATABASE_URL`),
//! paired in the same run with the inline path (the `WebhookLayer` doing the same
//! verification and de-duplication, with a trivial handler), at 16 and 64 concurrent
//! keep-alive senders over loopback; and the time from a 2xx reaching the sender to the
//! handler's start, p50 and p99, with an idle worker.
//!
//! ```sh
//! HOOKRELAY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench inbox --features axum,sqlite,postgres
//! ```
//!
//! Every request carries a fresh `webhook-id` (Standard Webhooks, 1 KiB body), so each is
//! verified and stored; the workers run meanwhile, so the inbox rows pay for their handlers
//! too. Rounds alternate between the routes so drift cannot bias a ratio; each figure is the
//! median of the rounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookrelay::profile::Profile;
use hookrelay::receive::axum::{InboxLayer, WebhookLayer};
use hookrelay::receive::inbox::{
    Inbox, InboxStore, InboxWorker, MemoryInbox, PostgresInbox, SqliteInbox, WorkerHandle,
};
use hookrelay::receive::{Delivery, Receiver};
use hookrelay::scheme::{Message, Scheme, StandardWebhooks};
use hookrelay::{Secret, Timestamp};
use loopback::{connect, send_all, serve, wire_request};
use tokio::net::TcpStream;

#[path = "support/loopback.rs"]
mod loopback;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PER_ROUND: usize = 3_000;
const ROUNDS: usize = 3;
const LATENCY_SAMPLES: usize = 300;

fn body() -> Vec<u8> {
    let mut body = br#"{"type":"task.created","timestamp":"2025-01-01T00:00:00Z","data":{"taskId":"123","note":""#.to_vec();
    body.resize(1024 - 3, b'x');
    body.extend_from_slice(br#""}}"#);
    body
}

fn receiver() -> Receiver {
    Receiver::builder(Profile::StandardWebhooks)
        .secret(Secret::from_base64(SECRET).unwrap())
        .build()
        .unwrap()
}

/// Fresh signed requests, with their ids.
struct Deliveries {
    body: Vec<u8>,
    secret: Secret,
    counter: usize,
}

impl Deliveries {
    fn batch(&mut self, count: usize) -> Vec<(String, Vec<u8>)> {
        let now = Timestamp::now();
        (0..count)
            .map(|_| {
                self.counter += 1;
                let id = format!("msg_{}", self.counter);
                let message = Message::new(&self.body).with_id(&id).with_timestamp(now);
                let signed = StandardWebhooks::new()
                    .sign(&self.secret, &message)
                    .unwrap();
                let headers: Vec<(String, String)> = signed
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (id, wire_request("/hook", &headers, &self.body))
            })
            .collect()
    }
}

/// When each delivery's handler started, by webhook id.
type Starts = Arc<Mutex<HashMap<String, Instant>>>;

fn inline_route() -> Router {
    Router::new()
        .route("/hook", post(|_: Delivery| async {}))
        .route_layer(WebhookLayer::new(receiver()))
}

/// An inbox route and its worker, whose handler notes when it started.
fn inbox_route<S: InboxStore>(store: S, starts: Starts) -> (Router, WorkerHandle) {
    let inbox = Inbox::new(store);
    let worker = InboxWorker::builder(inbox.clone())
        .concurrency(16)
        .handler(move |delivery: Delivery| {
            let at = Instant::now();
            if let Some(id) = delivery.inbound.id() {
                starts.lock().unwrap().insert(id.to_owned(), at);
            }
            async { Ok::<(), String>(()) }
        })
        .build()
        .unwrap()
        .spawn();
    let router = Router::new()
        .route("/hook", post(|| async {}))
        .route_layer(InboxLayer::new(receiver(), inbox));
    (router, worker)
}

struct Route {
    name: &'static str,
    port: u16,
    starts: Option<Starts>,
    _worker: Option<WorkerHandle>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-inbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut routes = vec![Route {
        name: "inline",
        port: serve(&server, inline_route()),
        starts: None,
        _worker: None,
    }];
    let mut add = |name, made: (Router, WorkerHandle), starts: Starts| {
        let (router, worker) = made;
        routes.push(Route {
            name,
            port: serve(&server, router),
            starts: Some(starts),
            _worker: Some(worker),
        });
    };
    let starts = Starts::default();
    let memory = server.block_on(async { inbox_route(MemoryInbox::new(), starts.clone()) });
    add("inbox memory", memory, starts);
    let starts = Starts::default();
    let url = format!("sqlite://{}", dir.join("inbox.db").display());
    let sqlite = server
        .block_on(async { inbox_route(SqliteInbox::connect(&url).await.unwrap(), starts.clone()) });
    add("inbox SQLite", sqlite, starts);
    if let Ok(url) = std::env::var("HOOKRELAY_TEST_DATABASE_URL") {
        let starts = Starts::default();
        let postgres = server.block_on(async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(&url)
                .await
                .unwrap();
            sqlx::raw_sql("DROP SCHEMA IF EXISTS hr_inbox_bench CASCADE")
                .execute(&pool)
                .await
                .unwrap();
            inbox_route(
                PostgresInbox::from_pool_in(pool, "hr_inbox_bench")
                    .await
                    .unwrap(),
                starts.clone(),
            )
        });
        add("inbox PostgreSQL", postgres, starts);
    } else {
        println!("(PostgreSQL skipped: set HOOKRELAY_TEST_DATABASE_URL)");
    }

    let mut deliveries = Deliveries {
        body: body(),
        secret: Secret::from_base64(SECRET).unwrap(),
        counter: 0,
    };
    println!(
        "accepted deliveries per second over loopback (median of {ROUNDS} rounds of {PER_ROUND})"
    );
    println!("| route | 16 senders | ratio | 64 senders | ratio |");
    println!("|---|---|---|---|---|");
    let mut table: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    for concurrency in [16, 64] {
        let mut pools: Vec<Vec<TcpStream>> = routes
            .iter()
            .map(|r| client.block_on(connect(r.port, concurrency)))
            .collect();
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
        for _ in 0..ROUNDS {
            for (i, pool) in pools.iter_mut().enumerate() {
                let requests = deliveries
                    .batch(PER_ROUND)
                    .into_iter()
                    .map(|(_, r)| r)
                    .collect();
                let took = client.block_on(send_all(pool, requests));
                rates[i].push(PER_ROUND as f64 / took.as_secs_f64());
                // Let the workers catch up so every round starts from an idle backlog.
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        for (i, mut r) in rates.into_iter().enumerate() {
            r.sort_by(f64::total_cmp);
            table[i].push(r[r.len() / 2]);
        }
    }
    for (i, route) in routes.iter().enumerate() {
        let (a, b) = (table[i][0], table[i][1]);
        println!(
            "| {} | {a:.0}/s | {:.2}× | {b:.0}/s | {:.2}× |",
            route.name,
            a / table[0][0],
            b / table[0][1]
        );
    }

    // The floor of the SQLite rows: one-row write transactions per second on the same disk
    // (WAL, synchronous = FULL), the rate an inbox without group commits could not beat.
    let floor = server.block_on(async {
        let url = format!("sqlite://{}", dir.join("floor.db").display());
        let options = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        let body = vec![b'x'; 1024];
        let start = Instant::now();
        let mut commits = 0u32;
        while start.elapsed() < Duration::from_secs(2) {
            sqlx::query("INSERT INTO t (body) VALUES (?1)")
                .bind(&body)
                .execute(&pool)
                .await
                .unwrap();
            commits += 1;
        }
        f64::from(commits) / start.elapsed().as_secs_f64()
    });
    println!();
    println!(
        "SQLite commit floor on this disk (one 1 KiB row per transaction, FULL): {floor:.0}/s"
    );
    if let Some(i) = routes.iter().position(|r| r.name == "inbox SQLite") {
        println!(
            "inbox SQLite accepts per floor commit: {:.1} (16 senders), {:.1} (64 senders)",
            table[i][0] / floor,
            table[i][1] / floor
        );
    }

    println!();
    println!(
        "time from the 2xx reaching the sender to the handler's start, idle worker ({LATENCY_SAMPLES} deliveries, one at a time)"
    );
    println!("| inbox | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for route in routes.iter().filter(|r| r.starts.is_some()) {
        let starts = route.starts.as_ref().unwrap();
        // Drain the backlog of the throughput rounds: the worker must be idle.
        let sent = PER_ROUND * ROUNDS * 2;
        let deadline = Instant::now() + Duration::from_secs(300);
        while starts.lock().unwrap().len() < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut pool = client.block_on(connect(route.port, 1));
        let mut gaps = Vec::new();
        for _ in 0..LATENCY_SAMPLES {
            let (id, request) = deliveries.batch(1).pop().unwrap();
            client.block_on(send_all(&mut pool, vec![request]));
            let answered = Instant::now();
            let mut started = None;
            for _ in 0..2_000 {
                if let Some(at) = starts.lock().unwrap().get(&id) {
                    started = Some(*at);
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            let started = started.expect("the handler never started");
            // A handler that started before the reply reached the sender counts as zero.
            gaps.push(started.saturating_duration_since(answered).as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(5));
        }
        gaps.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            route.name,
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.99),
            gaps.last().copied().unwrap_or(f64::NAN)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
