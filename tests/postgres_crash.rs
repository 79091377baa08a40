//! Many dispatcher processes on one PostgreSQL (CHECKLIST E46–E48, and the shared endpoint
//! rate limit), each a child process of this test binary with its own pool, delivering to a
//! recording receiver on 127.0.0.1:
//!
//! - **Crash:** 4 dispatchers deliver 10 000 events while one of them is killed with
//!   SIGKILL mid-run (twice) and restarted. Every event reaches the receiver at least once,
//!   no delivery is ever in flight in two workers at once (the receiver counts overlapping
//!   requests per delivery id), nothing is left pending or claimed, and the duplicate count
//!   (attempts answered 2xx whose result the killed worker never stored) is printed.
//! - **Rate limit:** 4 dispatchers, one endpoint limited to 60 requests per minute — scaled
//!   here to 60 per 6 s (the same bucket, ten times faster, so the test takes seconds),
//!   burst 5. Over any 6 s window the receiver sees at most 60 + burst (+2: the bucket bounds
//!   claim times, the receiver sees arrival times, and the spread between them may admit a
//!   request or two at 10/s under a loaded CI), where four independent per-process buckets
//!   would allow four times that (a run with the shared bucket disabled saw 257).
//! - **Idempotency:** 2 receiver processes, each with its own `PostgresIdempotencyStore`
//!   pool, get 50 concurrent copies of one delivery (25 each, a copy answered 409 is sent
//!   again, as a sender retries): the handler runs once.
//!
//! Needs `HOOKRELAY_TEST_DATABASE_URL`; each test works in its own schema.

mod pg_support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{RateLimit, UnixMillis};
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, Endpoint, EndpointId, PostgresStore, ReqwestTransport, Sender,
};

const EVENTS: usize = 10_000;
const CHILD_ENV: &str = "HOOKRELAY_PG_CHILD";
const WINDOW: Duration = Duration::from_secs(6);
const RATE: u32 = 60;
const BURST: u32 = 5;

/// A dispatcher process: `HOOKRELAY_PG_CHILD=<schema>`, the database URL, and either
/// `HOOKRELAY_PG_RUN_MS` (run that long, then stop) or nothing (run until no work is left).
#[test]
fn pg_dispatcher_child() {
    let Ok(schema) = std::env::var(CHILD_ENV) else {
        return; // Only runs when a parent test starts it.
    };
    let url = std::env::var("HOOKRELAY_TEST_DATABASE_URL").unwrap();
    let run_for = std::env::var("HOOKRELAY_PG_RUN_MS")
        .ok()
        .map(|ms| Duration::from_millis(ms.parse().unwrap()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = PostgresStore::builder()
            .schema(schema)
            .max_connections(3)
            .connect(&url)
            .await
            .unwrap();
        let sender = Sender::new(store);
        let transport = ReqwestTransport::builder()
            .policy(
                AddressPolicy::default()
                    .allow_http()
                    .allow_private_networks(),
            )
            .build()
            .unwrap();
        let dispatcher = sender
            .dispatcher(transport)
            .concurrency(16)
            .lease(Duration::from_secs(2))
            .poll_interval(Duration::from_millis(250))
            .spawn();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(150);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match run_for {
                Some(run_for) if started.elapsed() >= run_for => break,
                Some(_) => {}
                None => {
                    let counts = sender.store().counts(UnixMillis::now()).await.unwrap();
                    if counts.pending + counts.in_flight == 0 {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "child did not finish");
        }
        dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
    });
}

fn spawn_child(schema: &str, run_ms: Option<u64>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "pg_dispatcher_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, schema)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(ms) = run_ms {
        command.env("HOOKRELAY_PG_RUN_MS", ms.to_string());
    }
    command.spawn().unwrap()
}

async fn wait_all(children: Vec<Child>) {
    tokio::task::spawn_blocking(move || {
        for mut child in children {
            let status = child.wait().unwrap();
            assert!(status.success(), "a dispatcher process failed: {status}");
        }
    })
    .await
    .unwrap();
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Event id → requests.
    events: HashMap<String, usize>,
    /// Event id → the delivery ids it arrived under (a redelivery keeps its id: E47).
    delivery_ids: HashMap<String, std::collections::HashSet<String>>,
    /// Delivery id → requests being answered right now.
    active: HashMap<String, usize>,
    /// Requests that arrived while another for the same delivery was being answered.
    overlaps: usize,
    /// Arrival times.
    arrivals: Vec<Instant>,
}

/// Decrements the delivery's active count however the request ends (even if its client
/// was killed and the handler dropped).
struct Active(Arc<Mutex<Seen>>, String);

impl Drop for Active {
    fn drop(&mut self) {
        let mut seen = self.0.lock().unwrap();
        if let Some(n) = seen.active.get_mut(&self.1) {
            *n -= 1;
        }
    }
}

async fn recording_receiver() -> (String, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let state = Arc::clone(&seen);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&state);
            async move {
                assert!(headers.contains_key("x-hub-signature"));
                let delivery = headers["x-delivery-id"].to_str().unwrap().to_owned();
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let id = event["id"].as_str().unwrap().to_owned();
                {
                    let mut s = seen.lock().unwrap();
                    s.arrivals.push(Instant::now());
                    s.delivery_ids
                        .entry(id.clone())
                        .or_default()
                        .insert(delivery.clone());
                    let active = s.active.entry(delivery.clone()).or_default();
                    *active += 1;
                    if *active > 1 {
                        s.overlaps += 1;
                    }
                }
                let _active = Active(Arc::clone(&seen), delivery);
                // Hold the request a moment, so overlapping attempts would be seen.
                tokio::time::sleep(Duration::from_millis(2)).await;
                *seen.lock().unwrap().events.entry(id).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn publish(url: &str, schema: &str, endpoint: Endpoint, events: usize) -> PostgresStore {
    let store = PostgresStore::builder()
        .schema(schema)
        .connect(url)
        .await
        .unwrap();
    let sender = Sender::new(store.clone());
    sender.add_endpoint(endpoint).await.unwrap();
    let ids: Vec<usize> = (0..events).collect();
    for chunk in ids.chunks(500) {
        let batch = chunk
            .iter()
            .map(|i| {
                OutgoingEvent::new("task.created", serde_json::json!({ "n": i }))
                    .with_id(format!("evt_{i:05}").into())
            })
            .collect();
        sender.publish_batch(batch).await.unwrap();
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_dispatchers_one_killed_lose_nothing_and_never_overlap() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let Some(url) = pg_support::database_url("four_dispatchers_one_killed") else {
        return;
    };
    let schema = pg_support::fresh_schema(&url, "crash").await;
    let (hook, seen) = recording_receiver().await;
    let endpoint = Endpoint::builder(hook, Profile::TaskHub)
        .id(EndpointId::new("ep_crash").unwrap())
        .secret(Secret::from_raw("crash-secret").unwrap())
        .without_rate_limit()
        .concurrency(64)
        .build()
        .unwrap();
    let store = publish(&url, &schema, endpoint, EVENTS).await;

    let mut children: Vec<Child> = (0..4).map(|_| spawn_child(&schema, None)).collect();
    let received = || seen.lock().unwrap().events.len();
    // Kill worker 0 with SIGKILL at about a quarter and at about half of the run, restarting
    // it each time (bounded waits: the run takes seconds).
    let mut kills = 0;
    for target in [EVENTS / 4, EVENTS / 2] {
        for _ in 0..1_200 {
            if received() >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        children[0].kill().unwrap(); // SIGKILL
        children[0].wait().unwrap();
        kills += 1;
        children[0] = spawn_child(&schema, None);
    }
    wait_all(children).await;

    let counts = store.counts(UnixMillis::now()).await.unwrap();
    assert_eq!(counts.pending, 0, "{counts:?}");
    assert_eq!(counts.in_flight, 0, "{counts:?}");
    assert_eq!(counts.delivered, EVENTS as u64, "{counts:?}");
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let missing: Vec<_> = (0..EVENTS)
        .map(|i| format!("evt_{i:05}"))
        .filter(|id| !seen.events.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert_eq!(seen.overlaps, 0, "a delivery was in flight in two workers");
    assert!(
        seen.delivery_ids.values().all(|ids| ids.len() == 1),
        "a redelivery changed its delivery id"
    );
    let total: usize = seen.events.values().sum();
    println!(
        "postgres crash test: 4 dispatchers, {kills} SIGKILLs, {EVENTS} events delivered, \
         {} duplicate deliveries, 0 overlapping attempts",
        total - EVENTS
    );
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_dispatchers_share_one_endpoint_rate_limit() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let Some(url) = pg_support::database_url("four_dispatchers_share_one_rate_limit") else {
        return;
    };
    let schema = pg_support::fresh_schema(&url, "rate").await;
    let (hook, seen) = recording_receiver().await;
    let endpoint = Endpoint::builder(hook, Profile::TaskHub)
        .id(EndpointId::new("ep_paced").unwrap())
        .secret(Secret::from_raw("rate-secret").unwrap())
        .rate_limit(RateLimit::new(RATE, WINDOW, BURST).unwrap())
        .concurrency(64)
        .build()
        .unwrap();
    // More than four windows' worth: the backlog never runs dry while we measure.
    let store = publish(&url, &schema, endpoint, 400).await;
    let run = WINDOW * 2 + Duration::from_secs(1);
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child(&schema, Some(run.as_millis() as u64)))
        .collect();
    wait_all(children).await;

    let arrivals = seen.lock().unwrap().arrivals.clone();
    assert!(!arrivals.is_empty());
    // The most requests in any window of WINDOW (sliding over every arrival).
    let mut most = 0;
    for (i, start) in arrivals.iter().enumerate() {
        let n = arrivals[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < WINDOW)
            .count();
        most = most.max(n);
    }
    println!(
        "postgres rate test: {} requests in {run:?} from 4 dispatchers; at most {most} in any \
         {WINDOW:?} (limit {RATE} per {WINDOW:?}, burst {BURST})",
        arrivals.len()
    );
    assert!(
        most <= (RATE + BURST + 2) as usize,
        "{most} requests in one window: the limit did not hold across processes"
    );
    drop(store);
    pg_support::drop_schema(&url, &schema).await;
}

const RECEIVER_ENV: &str = "HOOKRELAY_PG_RECEIVER_CHILD";

/// A receiver process: `HOOKRELAY_PG_RECEIVER_CHILD=<schema>`; prints `PORT <n>`, then
/// serves until killed. Its handler records each run in `<schema>.handled` and takes 50 ms.
#[test]
fn pg_receiver_child() {
    use hookrelay::receive::{PostgresIdempotencyStore, Receiver};
    let Ok(schema) = std::env::var(RECEIVER_ENV) else {
        return; // Only runs when a parent test starts it.
    };
    let url = std::env::var("HOOKRELAY_TEST_DATABASE_URL").unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&url)
            .await
            .unwrap();
        let store = PostgresIdempotencyStore::from_pool_in(pool.clone(), &schema)
            .await
            .unwrap();
        let receiver = Arc::new(
            Receiver::builder(Profile::TaskHub)
                .secret(Secret::from_raw("idem-secret").unwrap())
                .store(store)
                .build()
                .unwrap(),
        );
        let table = format!("\"{schema}\".handled");
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (receiver, pool, table) = (Arc::clone(&receiver), pool.clone(), table.clone());
                async move {
                    let reply = receiver
                        .handle(&headers, body, |_| async move {
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "INSERT INTO {table} (pid) VALUES ($1)"
                            )))
                            .bind(i64::from(std::process::id()))
                            .execute(&pool)
                            .await?;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<(), sqlx::Error>(())
                        })
                        .await;
                    (reply.status, reply.body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        axum::serve(listener, app).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_copies_across_two_receiver_processes_run_the_handler_once() {
    use hookrelay::scheme::{Message, Scheme as _, XHub};
    use std::io::BufRead as _;
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(RECEIVER_ENV).is_ok() {
        return;
    }
    let Some(url) = pg_support::database_url("fifty_copies_across_two_receiver_processes") else {
        return;
    };
    let schema = pg_support::fresh_schema(&url, "idemproc").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".handled (n serial, pid int8)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "pg_receiver_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RECEIVER_ENV, &schema)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let port = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map(Result::unwrap)
                // libtest writes "test pg_receiver_child ... " before it on the same line.
                .find_map(|line| {
                    let at = line.find("PORT ")?;
                    Some(line[at + 5..].trim().parse::<u16>().unwrap())
                })
                .unwrap()
        })
        .await
        .unwrap();
        ports.push(port);
        children.push(child);
    }
    let secret = Secret::from_raw("idem-secret").unwrap();
    let body = br#"{"id":"evt_1","type":"task.completed","data":{}}"#.to_vec();
    let signature = XHub::new()
        .sign(&secret, &Message::new(&body))
        .unwrap()
        .get("X-Hub-Signature")
        .unwrap()
        .to_owned();
    // reqwest 0.13 without aws-lc-rs takes rustls' process default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut copies = Vec::new();
    for i in 0..50 {
        let url = format!("http://127.0.0.1:{}/hook", ports[i % 2]);
        let (client, body, signature) = (client.clone(), body.clone(), signature.clone());
        copies.push(tokio::spawn(async move {
            for _ in 0..200 {
                let status = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature", &signature)
                    .header("x-delivery-id", "dlv_across_processes")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status.is_success() {
                    return;
                }
                assert_eq!(status, 409, "in progress in the other process");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never acknowledged");
        }));
    }
    for copy in copies {
        copy.await.unwrap();
    }
    let runs: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{schema}\".handled"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(runs, 1, "the handler ran once across both processes");
    pool.close().await;
    pg_support::drop_schema(&url, &schema).await;
}
