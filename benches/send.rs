//! Delivered events per second, and publish-to-first-attempt latency, to a receiver on
//! 127.0.0.1 that answers 200 at once.
//!
//! ```sh
//! cargo bench --bench send --features reqwest,sqlite
//! ```
//!
//! Throughput, at concurrency 1, 16 and 64: the dispatcher over `MemoryStore` and over
//! `SqliteStore` delivering a published backlog (published untimed, in batches of 500; timed
//! from starting the dispatcher to the receiver's last request, so claims, signing, sending
//! and recording every result are inside), each paired in the same round with the **plain loop**:
//! the same number of tasks POSTing the same bodies, signed in advance, with a bare
//! `reqwest::Client`. Rounds alternate and the median of each is reported with its ratio.
//!
//! Latency: an idle dispatcher, one event published at a time; the time from calling
//! `publish` to the receiver seeing the request, p50 and p99 over 300 events.

mod support;

use support::{
    Receiver, cpu_time, event, first_attempt_latency, median, plain_loop_cpu, receiver, transport,
    wait_for,
};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::send::{DeliveryStore, Durability, Endpoint, MemoryStore, Sender, SqliteStore};

const ROUNDS: usize = 3;

fn endpoint(url: &str, concurrency: usize) -> Endpoint {
    Endpoint::builder(url, Profile::TaskHub)
        .secret(Secret::from_raw("bench-secret").unwrap())
        .without_rate_limit()
        .concurrency(concurrency as u32)
        .build()
        .unwrap()
}

/// Publishes `n` events (untimed), then times the dispatcher delivering them all: the rate,
/// and the CPU time the whole process spent meanwhile.
async fn dispatcher_run<S: DeliveryStore>(
    store: S,
    rx: &Receiver,
    n: usize,
    concurrency: usize,
) -> (f64, Duration) {
    let sender = Sender::new(store);
    sender
        .add_endpoint(endpoint(&rx.url, concurrency))
        .await
        .unwrap();
    let events: Vec<OutgoingEvent> = (0..n).map(event).collect();
    for chunk in events.chunks(500) {
        sender.publish_batch(chunk.to_vec()).await.unwrap();
    }
    let start_hits = rx.hits.load(Ordering::SeqCst);
    let cpu = cpu_time();
    let started = Instant::now();
    let handle = sender
        .dispatcher(transport())
        .concurrency(concurrency)
        .spawn();
    wait_for(rx, start_hits + n).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let cpu = cpu_time().saturating_sub(cpu);
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    (rate, cpu)
}

fn temp_db(tag: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-bench-{tag}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}?mode=rwc", path.display())
}

/// What bounds SQLite at concurrency 1: a delivery needs at least one commit (its result
/// and the next claim share it), so commits per second cap deliveries per second there.
async fn commit_floor() {
    for (durability, label) in [
        (Durability::PowerLoss, "FULL"),
        (Durability::ProcessCrash, "NORMAL"),
    ] {
        let store = SqliteStore::connect_with(&temp_db(&format!("floor-{label}")), durability)
            .await
            .unwrap();
        let pool = store.pool();
        sqlx::query("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, n INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT OR REPLACE INTO floor (id, n) VALUES (1, 0)")
            .execute(pool)
            .await
            .unwrap();
        let n = 2_000;
        let started = Instant::now();
        for _ in 0..n {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("UPDATE floor SET n = n + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        println!(
            "sqlite commit floor ({label}): {:.0} one-row write transactions/s",
            n as f64 / started.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rx = receiver(Duration::ZERO).await;
        println!(
            "machine: {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // `SEND_BENCH=memory,sqlite,latency,floor` (the default: all) picks what runs.
        let only =
            std::env::var("SEND_BENCH").unwrap_or_else(|_| "memory,sqlite,latency,floor".into());
        if only.contains("floor") {
            commit_floor().await;
        }
        for &concurrency in &[1usize, 16, 64] {
            let n = if concurrency == 1 { 2_000 } else { 6_000 };
            let (mut plain, mut memory, mut full, mut normal) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // CPU microseconds per delivery, the whole process (client, receiver, store).
            let mut cpu: [Vec<f64>; 4] = Default::default();
            let per_delivery = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
            for round in 0..ROUNDS {
                let (rate, used) = plain_loop_cpu(&rx, n, concurrency).await;
                plain.push(rate);
                cpu[0].push(per_delivery(used));
                if only.contains("memory") {
                    let (rate, used) =
                        dispatcher_run(MemoryStore::new(), &rx, n, concurrency).await;
                    memory.push(rate);
                    cpu[1].push(per_delivery(used));
                }
                if only.contains("sqlite") {
                    for (list, slot, durability, tag) in [
                        (&mut full, 2, Durability::PowerLoss, "full"),
                        (&mut normal, 3, Durability::ProcessCrash, "normal"),
                    ] {
                        let db = temp_db(&format!("c{concurrency}r{round}{tag}"));
                        let store = SqliteStore::connect_with(&db, durability).await.unwrap();
                        let (rate, used) = dispatcher_run(store, &rx, n, concurrency).await;
                        list.push(rate);
                        cpu[slot].push(per_delivery(used));
                    }
                }
            }
            let p = median(plain);
            let show = |label: &str, v: Vec<f64>, target: f64| {
                if v.is_empty() {
                    return String::new();
                }
                let m = median(v);
                format!(" | {label} {m:>6.0}/s ({:.2}x, target {target}x)", m / p)
            };
            println!(
                "concurrency {concurrency:>2}: plain reqwest loop {p:>6.0}/s{}{}{}",
                show("memory", memory, 0.85),
                show("sqlite FULL", full, 0.5),
                show("sqlite NORMAL", normal, 0.5),
            );
            // What bounds the ratios: on a machine whose cores are all busy, throughput is
            // cores / CPU per delivery, so the loop's CPU over ours is the ratio's ceiling.
            let cpu: Vec<String> = ["plain loop", "memory", "sqlite FULL", "sqlite NORMAL"]
                .iter()
                .zip(cpu)
                .filter(|(_, v)| !v.is_empty())
                .map(|(label, v)| format!("{label} {:.1} us", median(v)))
                .collect();
            println!(
                "concurrency {concurrency:>2}: CPU per delivery, whole process (10 ms ticks): {}",
                cpu.join(" | ")
            );
        }
        if only.contains("latency") {
            first_attempt_latency(MemoryStore::new(), &rx, "memory").await;
            let store = SqliteStore::connect(&temp_db("latency")).await.unwrap();
            first_attempt_latency(store, &rx, "sqlite").await;
        }
    });
}
