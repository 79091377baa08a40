//! Sending on PostgreSQL: scale-out across dispatcher processes, per-process efficiency,
//! claim cost against history, and the outbox's cost inside a transaction.
//!
//! ```sh
//! HOOKRELAY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench send_postgres --features postgres,reqwest
//! ```
//!
//! `PG_BENCH=scale,efficiency,latency,history,outbox` (the default: all) picks what runs;
//! `PG_BENCH_HISTORY` sets the large history (default 1 000 000 finished deliveries).
//!
//! - **Scale-out:** 1, 2 and 4 dispatcher *processes* (this binary re-run as children, each
//!   with its own pool of 3 connections), concurrency 16 each, one PostgreSQL, delivering a
//!   published backlog to a receiver in this process that answers after a fixed 20 ms (so
//!   throughput is bound by waiting, not by CPU). The endpoint is paused while the children
//!   start, then resumed with a `NOTIFY`: timed from the resume to the receiver's last
//!   request. Ratios against one process, in the same run.
//! - **Per-process efficiency:** one dispatcher on PostgreSQL (concurrency 16, then 64) to a
//!   receiver that answers at once, paired with the plain reqwest loop (as many tasks POSTing
//!   the same pre-signed bodies with a bare client) in the same run; and PostgreSQL's commit
//!   floor, which bounds a dispatcher round.
//! - **Latency:** publish → first attempt on an idle dispatcher (one event at a time, 300
//!   events), p50 and p99.
//! - **Claim cost vs history:** the median time of `claim(limit 16)` with 10 000 and with
//!   `PG_BENCH_HISTORY` finished (delivered) deliveries in the tables, 5 000 pending.
//! - **Outbox:** a transaction inserting a business row and calling `publish_in`, against
//!   the same transaction with a plain `INSERT` of the same payload instead.

mod support;

use support::{
    Receiver, event, first_attempt_latency, median, plain_loop, receiver, transport, wait_for,
};

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{
    AttemptRecord, ClaimedDelivery, EndpointQuery, EndpointStats, Enqueued, LogQuery, LogRetention,
    MessageRecord, NewBatch, Page, Publication, Purged, Recorded, Release, StoreError, TimeRange,
};
use hookrelay::send::{
    AttemptLog, DeliveryCounts, DeliveryId, DeliveryLog, DeliveryQueue, DeliveryRecord,
    DeliveryStore, Endpoint, EndpointId, EndpointKey, EndpointRegistry, EndpointStatus, MessageId,
    Owner, PostgresStore, Sender,
};

const CHILD_ENV: &str = "HOOKRELAY_PG_BENCH_CHILD";
const CONCURRENCY: usize = 16;

fn endpoint(url: &str, concurrency: u32) -> Endpoint {
    Endpoint::builder(url, Profile::TaskHub)
        .id(EndpointId::new("ep_bench").unwrap())
        .secret(Secret::from_raw("bench-secret").unwrap())
        .without_rate_limit()
        .concurrency(concurrency)
        .build()
        .unwrap()
}

async fn fresh_store(url: &str, tag: &str) -> PostgresStore {
    fresh_store_with(url, tag, Duration::from_millis(2)).await
}

async fn fresh_store_with(url: &str, tag: &str, window: Duration) -> PostgresStore {
    let schema = format!("hr_bench_{tag}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .unwrap();
    PostgresStore::builder()
        .schema(schema)
        .batch_window(window)
        .pool(pool)
        .await
        .unwrap()
}

async fn drop_store(store: PostgresStore) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", store.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
        .execute(store.pool())
        .await
        .unwrap();
}

async fn publish_backlog<S: DeliveryStore>(sender: &Sender<S>, n: usize) {
    let events: Vec<OutgoingEvent> = (0..n).map(event).collect();
    for chunk in events.chunks(500) {
        sender.publish_batch(chunk.to_vec()).await.unwrap();
    }
}

/// A dispatcher process for the scale-out run: delivers until killed.
fn child(schema: String) {
    let url = std::env::var("HOOKRELAY_TEST_DATABASE_URL").unwrap();
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
        let _dispatcher = sender
            .dispatcher(transport())
            .concurrency(CONCURRENCY)
            .poll_interval(Duration::from_secs(1))
            .spawn();
        std::future::pending::<()>().await;
    });
}

async fn scale_run(url: &str, rx: &Receiver, processes: usize, n: usize) -> f64 {
    let store = fresh_store(url, &format!("scale{processes}")).await;
    let sender = Sender::new(store.clone());
    sender.add_endpoint(endpoint(&rx.url, 1_000)).await.unwrap();
    publish_backlog(&sender, n).await;
    let id = EndpointId::new("ep_bench").unwrap();
    sender
        .set_endpoint_status(&id, EndpointStatus::Paused)
        .await
        .unwrap();
    let mut children: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, store.schema())
                .env("HOOKRELAY_TEST_DATABASE_URL", url)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    // Let the children connect and start listening (they find nothing: paused).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_hits = rx.hits.load(Ordering::SeqCst);
    let started = Instant::now();
    sender
        .set_endpoint_status(&id, EndpointStatus::Active)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(store.channel())
        .execute(store.pool())
        .await
        .unwrap();
    wait_for(rx, start_hits + n).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop_store(store).await;
    rate
}

async fn dispatcher_run(
    url: &str,
    rx: &Receiver,
    n: usize,
    concurrency: usize,
    window: Duration,
) -> f64 {
    let store = fresh_store_with(url, "eff", window).await;
    let sender = Sender::new(store.clone());
    sender
        .add_endpoint(endpoint(&rx.url, concurrency as u32))
        .await
        .unwrap();
    publish_backlog(&sender, n).await;
    let start_hits = rx.hits.load(Ordering::SeqCst);
    let started = Instant::now();
    let handle = sender
        .dispatcher(transport())
        .concurrency(concurrency)
        .spawn();
    wait_for(rx, start_hits + n).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    drop_store(store).await;
    rate
}

/// Delegates to a store and records how long each dispatcher round's store call takes.
#[derive(Clone)]
struct Timed {
    inner: PostgresStore,
    rounds: Arc<std::sync::Mutex<Vec<(f64, usize)>>>,
}

impl EndpointRegistry for Timed {
    async fn put_endpoint(&self, e: &Endpoint) -> Result<(), StoreError> {
        self.inner.put_endpoint(e).await
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        self.inner.endpoint(id).await
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        self.inner.endpoints().await
    }

    async fn endpoint_page(&self, q: &EndpointQuery) -> Result<Page<Arc<Endpoint>>, StoreError> {
        self.inner.endpoint_page(q).await
    }

    async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<Arc<Endpoint>>, StoreError> {
        self.inner.endpoint_by_key(owner, key).await
    }

    async fn delete_endpoint(&self, id: &EndpointId, now: UnixMillis) -> Result<u64, StoreError> {
        self.inner.delete_endpoint(id, now).await
    }

    async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.set_endpoint_status(id, status, note).await
    }
}

impl DeliveryQueue for Timed {
    async fn enqueue(
        &self,
        p: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.inner.enqueue(p, now).await
    }

    async fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let started = Instant::now();
        let out = self.inner.claim(now, limit, lease, skip).await;
        let n = out.as_ref().map_or(0, Vec::len);
        self.rounds
            .lock()
            .unwrap()
            .push((started.elapsed().as_secs_f64() * 1000.0, n));
        out
    }

    async fn record(&self, r: Vec<AttemptRecord>) -> Result<Vec<Recorded>, StoreError> {
        self.inner.record(r).await
    }

    async fn record_and_claim(
        &self,
        r: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<(Vec<Recorded>, Vec<ClaimedDelivery>), StoreError> {
        let started = Instant::now();
        let results = r.len();
        let out = self
            .inner
            .record_and_claim(r, now, limit, lease, skip)
            .await;
        self.rounds
            .lock()
            .unwrap()
            .push((started.elapsed().as_secs_f64() * 1000.0, results));
        out
    }

    fn batch_window(&self) -> Duration {
        self.inner.batch_window()
    }

    fn new_work(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.inner.new_work()
    }

    async fn release(&self, r: Vec<Release>) -> Result<(), StoreError> {
        self.inner.release(r).await
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        self.inner.next_due().await
    }

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        self.inner.retry_now(ids, now).await
    }

    async fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        self.inner.form_batch(batch, now, lease).await
    }
}

impl DeliveryLog for Timed {
    async fn delivery(
        &self,
        id: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.inner.delivery(id, now).await
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        self.inner.attempts(id).await
    }

    async fn log_page(
        &self,
        q: &LogQuery,
        now: UnixMillis,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        self.inner.log_page(q, now).await
    }

    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.message(id).await
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        self.inner.endpoint_stats(endpoint, window).await
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        self.inner.counts(now).await
    }

    async fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        self.inner.purge(retention, now, limit).await
    }
}

/// One dispatcher run over a [`Timed`] store: the median store call per round (ms) and the
/// mean number of results it carried.
async fn round_profile(url: &str, rx: &Receiver, n: usize, concurrency: usize) -> (f64, f64) {
    let inner = fresh_store(url, "round").await;
    let store = Timed {
        inner: inner.clone(),
        rounds: Arc::default(),
    };
    let sender = Sender::new(store.clone());
    sender
        .add_endpoint(endpoint(&rx.url, concurrency as u32))
        .await
        .unwrap();
    publish_backlog(&sender, n).await;
    let start_hits = rx.hits.load(Ordering::SeqCst);
    let handle = sender
        .dispatcher(transport())
        .concurrency(concurrency)
        .spawn();
    wait_for(rx, start_hits + n).await;
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    let rounds = store.rounds.lock().unwrap().clone();
    drop_store(inner).await;
    let per_round = rounds.iter().map(|r| r.1 as f64).sum::<f64>() / rounds.len() as f64;
    (median(rounds.iter().map(|r| r.0).collect()), per_round)
}

/// The same round with nothing else running: claim `batch`, then record them all delivered
/// and claim the next `batch` in one `record_and_claim`; median milliseconds per round.
async fn isolated_round(url: &str, batch: usize) -> (f64, f64) {
    let store = fresh_store(url, "iso").await;
    let sender = Sender::new(store.clone());
    sender
        .add_endpoint(endpoint("http://127.0.0.1:9/hook", 10_000))
        .await
        .unwrap();
    publish_backlog(&sender, batch * 101).await;
    let lease = Duration::from_secs(600);
    let mut claims = store
        .claim(UnixMillis::now(), batch, lease, &[])
        .await
        .unwrap();
    let (mut rounds, mut claims_only) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let results = claims
            .iter()
            .map(|c| AttemptRecord {
                delivery: c.delivery.clone(),
                token: c.token,
                attempt: c.attempts + 1,
                started_at: UnixMillis::now(),
                latency: Duration::from_millis(1),
                status: Some(200),
                error: None,
                request_headers: Vec::new(),
                response_headers: vec![("content-type".into(), "text/plain".into())],
                response_body: bytes::Bytes::from_static(b"ok"),
                charged: true,
                manual: false,
                next: hookrelay::send::store::NextStep::Delivered,
            })
            .collect();
        let started = Instant::now();
        let (_, next) = store
            .record_and_claim(results, UnixMillis::now(), batch, lease, &[])
            .await
            .unwrap();
        rounds.push(started.elapsed().as_secs_f64() * 1000.0);
        claims = next;
        let started = Instant::now();
        let extra = store.claim(UnixMillis::now(), 0, lease, &[]).await.unwrap();
        claims_only.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(extra);
    }
    drop_store(store).await;
    (median(rounds), median(claims_only))
}

/// Fills the store with `finished` delivered deliveries (one message each) in SQL, plus
/// `pending` pending ones through `enqueue`.
async fn with_history(url: &str, finished: usize, pending: usize) -> PostgresStore {
    let store = fresh_store(url, &format!("hist{finished}")).await;
    store
        .put_endpoint(&endpoint("http://127.0.0.1:9/hook", 1_000_000))
        .await
        .unwrap();
    let s = store.schema().to_owned();
    let body = Profile::TaskHub
        .render_body(&event(0), Default::default())
        .unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let step = 100_000;
    for from in (0..finished).step_by(step) {
        let to = (from + step).min(finished) as i64;
        let sql = format!(
            "INSERT INTO \"{s}\".hookrelay_messages (seq, id, event_id, event_type, created_at)
             SELECT g, 'msg_h' || g, 'evt_h' || g, 'task.created', 1700000000000 + g
             FROM generate_series($1::int8, $2::int8) g;
             "
        );
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(from as i64 + 1)
            .bind(to)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{s}\".hookrelay_bodies (message_seq, form, body)
             SELECT g, 0, $3 FROM generate_series($1::int8, $2::int8) g"
        )))
        .bind(from as i64 + 1)
        .bind(to)
        .bind(&body)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{s}\".hookrelay_deliveries
                 (seq, id, message_seq, endpoint_id, form, status, attempts, last_status)
             SELECT g, 'dlv_h' || g, g, 'ep_bench', 0, 'delivered', 1, 200
             FROM generate_series($1::int8, $2::int8) g"
        )))
        .bind(from as i64 + 1)
        .bind(to)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{s}\".hookrelay_attempts
                 (delivery_seq, attempt, started_at, latency_ms, status, error, response_headers, response_body)
             SELECT g, 1, 1700000000000 + g, 3, 200, NULL, '[]', 'ok'
             FROM generate_series($1::int8, $2::int8) g"
        )))
        .bind(from as i64 + 1)
        .bind(to)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    for table in ["messages", "deliveries"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('\"{s}\".hookrelay_{table}', 'seq'), {})",
            finished + 1
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let sender = Sender::new(store.clone());
    publish_backlog(&sender, pending).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE \"{s}\".hookrelay_deliveries; ANALYZE \"{s}\".hookrelay_messages; ANALYZE \"{s}\".hookrelay_bodies; ANALYZE \"{s}\".hookrelay_endpoints")))
        .execute(store.pool())
        .await
        .unwrap();
    store
}

/// Median milliseconds of one `claim(limit 16)`, over `rounds` claims.
async fn claim_latency(store: &PostgresStore, rounds: usize) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let claims = store
            .claim(UnixMillis::now(), 16, Duration::from_secs(3600), &[])
            .await
            .unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(claims.len(), 16, "enough pending work for every round");
    }
    median(samples)
}

/// What bounds one dispatcher: each round (record the finished attempts, claim the free
/// slots) is a transaction, and a commit waits for PostgreSQL's WAL flush.
async fn commit_floor(url: &str) -> f64 {
    let store = fresh_store(url, "floor").await;
    let s = store.schema().to_owned();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{s}\".floor (id int8 PRIMARY KEY, n int8); INSERT INTO \"{s}\".floor VALUES (1, 0)"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let n = 1_000;
    let started = Instant::now();
    for _ in 0..n {
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{s}\".floor SET n = n + 1 WHERE id = 1"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop_store(store).await;
    rate
}

async fn outbox(url: &str) {
    let store = fresh_store(url, "outbox").await;
    let sender = Sender::new(store.clone());
    sender
        .add_endpoint(endpoint("http://127.0.0.1:9/hook", 16))
        .await
        .unwrap();
    let s = store.schema().to_owned();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{s}\".orders (id bigserial PRIMARY KEY, state text NOT NULL);
         CREATE TABLE \"{s}\".plain_outbox (id bigserial PRIMARY KEY, event_type text NOT NULL,
                                             payload bytea NOT NULL)"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let pool = store.pool().clone();
    let n = 1_000;
    let (mut plain, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let started = Instant::now();
        for i in 0..n {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO \"{s}\".orders (state) VALUES ('paid')"
            )))
            .execute(&mut *tx)
            .await
            .unwrap();
            let body = Profile::TaskHub
                .render_body(&event(i), Default::default())
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO \"{s}\".plain_outbox (event_type, payload) VALUES ($1, $2)"
            )))
            .bind("task.created")
            .bind(body)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        plain.push(started.elapsed().as_secs_f64() * 1e6 / n as f64);
        let started = Instant::now();
        for i in 0..n {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO \"{s}\".orders (state) VALUES ('paid')"
            )))
            .execute(&mut *tx)
            .await
            .unwrap();
            sender.publish_in(&mut tx, event(i)).await.unwrap();
            tx.commit().await.unwrap();
        }
        ours.push(started.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    let (p, o) = (median(plain), median(ours));
    println!(
        "outbox: transaction with publish_in {o:.0} µs vs with a plain INSERT of the payload \
         {p:.0} µs ({:.2}x, target <= 2x)",
        o / p
    );
    drop_store(store).await;
}

fn main() {
    if let Ok(schema) = std::env::var(CHILD_ENV) {
        child(schema);
        return;
    }
    let Ok(url) = std::env::var("HOOKRELAY_TEST_DATABASE_URL") else {
        eprintln!("send_postgres: set HOOKRELAY_TEST_DATABASE_URL to run this benchmark");
        return;
    };
    let only = std::env::var("PG_BENCH")
        .unwrap_or_else(|_| "scale,efficiency,latency,history,outbox".into());
    let history: usize = std::env::var("PG_BENCH_HISTORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "machine: {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        if only.contains("scale") {
            let slow = receiver(Duration::from_millis(20)).await;
            let n = 4_000;
            let mut rates = Vec::new();
            for processes in [1, 2, 4] {
                let mut runs = Vec::new();
                for _ in 0..2 {
                    runs.push(scale_run(&url, &slow, processes, n).await);
                }
                rates.push(median(runs));
            }
            println!(
                "scale-out (receiver answers after 20 ms, concurrency {CONCURRENCY} per process, \
                 {n} deliveries): 1 process {:.0}/s | 2 processes {:.0}/s ({:.2}x, target 1.8x) | \
                 4 processes {:.0}/s ({:.2}x, target 3.5x) | ideal per process {:.0}/s",
                rates[0],
                rates[1],
                rates[1] / rates[0],
                rates[2],
                rates[2] / rates[0],
                CONCURRENCY as f64 / 0.020
            );
        }
        if only.contains("latency") {
            let fast = receiver(Duration::ZERO).await;
            let store = fresh_store(&url, "latency").await;
            first_attempt_latency(store.clone(), &fast, "postgres").await;
            drop_store(store).await;
        }
        if only.contains("efficiency") {
            let fast = receiver(Duration::ZERO).await;
            let n = 6_000;
            let floor = commit_floor(&url).await;
            println!(
                "postgres commit floor: {floor:.0} one-row write transactions/s \
                 (a dispatcher round is one transaction)"
            );
            for batch in [CONCURRENCY, 64] {
                let (round, _) = isolated_round(&url, batch).await;
                println!(
                    "  a round alone (record {batch} results + claim {batch}, one transaction, \
                     nothing else running): {round:.2} ms (median of 100)"
                );
            }
            for concurrency in [CONCURRENCY, 64] {
                let (mut plain, mut ours, mut eager) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..3 {
                    plain.push(plain_loop(&fast, n, concurrency).await);
                    ours.push(
                        dispatcher_run(&url, &fast, n, concurrency, Duration::from_millis(2)).await,
                    );
                    eager.push(dispatcher_run(&url, &fast, n, concurrency, Duration::ZERO).await);
                }
                let (p, o, e) = (median(plain), median(ours), median(eager));
                println!(
                    "efficiency (receiver answers at once, concurrency {concurrency}): plain \
                     reqwest loop {p:.0}/s | dispatcher on PostgreSQL {o:.0}/s ({:.2}x, target \
                     0.4x) | with batch_window 0: {e:.0}/s ({:.2}x)",
                    o / p,
                    e / p
                );
                let (round_ms, per_round) = round_profile(&url, &fast, n, concurrency).await;
                println!(
                    "  what bounds it: a round's store call (record + claim, one transaction) \
                     takes {round_ms:.2} ms (median) and records {per_round:.1} results on \
                     average; rounds run back to back, one at a time"
                );
            }
        }
        if only.contains("history") {
            let small = with_history(&url, 10_000, 5_000).await;
            let large = with_history(&url, history, 5_000).await;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                a.push(claim_latency(&small, 100).await);
                b.push(claim_latency(&large, 100).await);
            }
            let (a, b) = (median(a), median(b));
            println!(
                "claim(16) latency: 10 000 finished deliveries {a:.3} ms | {history} finished \
                 {b:.3} ms ({:.2}x, target <= 1.5x)",
                b / a
            );
            drop_store(small).await;
            drop_store(large).await;
        }
        if only.contains("outbox") {
            outbox(&url).await;
        }
    });
}
