//! Thousands of slow endpoints: delivered events per second when every receiver answers after
//! 50 ms, and the memory each attempt in flight holds.
//!
//! ```sh
//! cargo bench --bench send_slow --features reqwest
//! # SEND_SLOW_ENDPOINTS=1000,10000 (the default) picks the endpoint counts
//! ```
//!
//! `N` endpoints (1 000 and 10 000), each its own URL (`/hook/{i}`) on one local axum server
//! on 127.0.0.1 that answers 200 after 50 ms, each with a concurrency cap of 1 and no rate
//! limit; the dispatcher (memory store) runs at concurrency `N`. Throughput: `K` events
//! fanned out to every endpoint (`K × N` deliveries), timed from starting the dispatcher to
//! the receiver's last answer, paired in each of 3 alternating rounds with the **plain
//! loop**: `N` tasks, task `i` POSTing `K` bodies signed in advance to `/hook/{i}` one after
//! another with a bare `reqwest::Client` (so also `N` in flight). The ideal is `N / 50 ms`;
//! on two cores both sides are bound by CPU well below it, so the run also reports the
//! receiver alone (the same requests over raw keep-alive connections, no client library)
//! as the ceiling of this machine.
//!
//! Memory per in-flight attempt: one event to every endpoint while the receiver holds every
//! request; heap bytes (an instrumented global allocator) from before the dispatcher starts
//! to the moment all `N` requests have arrived, divided by `N` — the same for the plain loop.
//! The receiver runs in a child process, so both figures are the sender's side alone; they
//! include what is allocated once per run (the dispatcher's per-endpoint gates, the client),
//! spread over the `N` attempts.
//!
//! The limit on open files is raised to 65 536 with `prlimit` (two sockets per attempt: client
//! and server side).

mod support;

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::send::{AddressPolicy, Endpoint, MemoryStore, ReqwestTransport, Sender};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::{event, median, signed_bodies};
use tokio::sync::Notify;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 3;
const DELAY: Duration = Duration::from_millis(50);

/// The receiver's process: answers every `/hook/{i}` after [`DELAY`] or, while held, when
/// released; `/control/{hold,release,count}` steer and read it. Runs in a child process of
/// its own (this binary, re-run with `SEND_SLOW_RECEIVER=1`), so that the sender's and the
/// receiver's sockets each fit under the open-file limit, and so that the heap measured in
/// the parent is the sender's alone.
fn receiver_process() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let entered = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let hold = Arc::new(AtomicBool::new(false));
        let release = Arc::new(Notify::new());
        let (e, a, h, r) = (
            Arc::clone(&entered),
            Arc::clone(&answered),
            Arc::clone(&hold),
            Arc::clone(&release),
        );
        let hook = post(move |Path(_i): Path<u32>, _: axum::body::Bytes| {
            let (e, a, h, r) = (
                Arc::clone(&e),
                Arc::clone(&a),
                Arc::clone(&h),
                Arc::clone(&r),
            );
            async move {
                let released = r.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                e.fetch_add(1, Ordering::SeqCst);
                if h.load(Ordering::SeqCst) {
                    released.await;
                } else {
                    tokio::time::sleep(DELAY).await;
                }
                a.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        });
        let (h1, h2, r2) = (Arc::clone(&hold), Arc::clone(&hold), Arc::clone(&release));
        let (e2, a2) = (Arc::clone(&entered), Arc::clone(&answered));
        let app = Router::new()
            .route("/hook/{i}", hook)
            .route(
                "/control/hold",
                post(move || {
                    h1.store(true, Ordering::SeqCst);
                    async { "held" }
                }),
            )
            .route(
                "/control/release",
                post(move || {
                    h2.store(false, Ordering::SeqCst);
                    r2.notify_waiters();
                    async { "released" }
                }),
            )
            .route(
                "/control/count",
                post(move || {
                    let counts = format!(
                        "{} {}",
                        e2.load(Ordering::SeqCst),
                        a2.load(Ordering::SeqCst)
                    );
                    async move { counts }
                }),
            );
        // A backlog large enough for thousands of connections opened at once.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16_384).unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// The parent's handle on the receiver's process.
struct SlowReceiver {
    /// `http://127.0.0.1:PORT/hook`
    base: String,
    addr: String,
    control: reqwest::Client,
    child: std::process::Child,
}

impl SlowReceiver {
    fn start() -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("SEND_SLOW_RECEIVER", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("listening ").unwrap().to_owned();
        let _ = rustls::crypto::ring::default_provider().install_default();
        SlowReceiver {
            base: format!("http://{addr}/hook"),
            addr,
            control: reqwest::Client::new(),
            child,
        }
    }

    async fn control(&self, what: &str) -> String {
        let url = format!("http://{}/control/{what}", self.addr);
        let response = self.control.post(url).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Requests that arrived, and requests answered.
    async fn counts(&self) -> (usize, usize) {
        let counts = self.control("count").await;
        let (entered, answered) = counts.split_once(' ').unwrap();
        (entered.parse().unwrap(), answered.parse().unwrap())
    }

    async fn answered(&self) -> usize {
        self.counts().await.1
    }

    /// Waits (bounded) until `target` requests arrived (`answered: false`) or were
    /// answered.
    async fn wait_until(&self, target: usize, answered: bool) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (entered, done) = self.counts().await;
            if (if answered { done } else { entered }) >= target {
                return;
            }
            assert!(Instant::now() < deadline, "receiver stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for SlowReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn transport(endpoints: usize) -> ReqwestTransport {
    ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .idle_connections_per_host(endpoints)
        .build()
        .unwrap()
}

/// A sender over a memory store with `n` endpoints, `/hook/0` … `/hook/{n-1}`.
async fn sender_with(rx: &SlowReceiver, n: usize) -> Sender<MemoryStore> {
    let sender = Sender::new(MemoryStore::new());
    for i in 0..n {
        let endpoint = Endpoint::builder(format!("{}/{i}", rx.base), Profile::TaskHub)
            .secret(Secret::from_raw("bench-secret").unwrap())
            .without_rate_limit()
            .concurrency(1)
            .build()
            .unwrap();
        sender.add_endpoint(endpoint).await.unwrap();
    }
    sender
}

/// `k` events to each of `n` endpoints through the dispatcher: deliveries per second.
async fn dispatcher_run(rx: &SlowReceiver, n: usize, k: usize) -> f64 {
    let sender = sender_with(rx, n).await;
    let events: Vec<_> = (0..k).map(event).collect();
    sender.publish_batch(events).await.unwrap();
    let before = rx.answered().await;
    let started = Instant::now();
    let handle = sender.dispatcher(transport(n)).concurrency(n).spawn();
    rx.wait_until(before + n * k, true).await;
    let rate = (n * k) as f64 / started.elapsed().as_secs_f64();
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    rate
}

/// Starts the plain loop: task `i` POSTs the `k` bodies to `/hook/{i}` one after another.
fn plain_tasks(rx: &SlowReceiver, n: usize, k: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let bodies = signed_bodies(k);
    (0..n)
        .map(|i| {
            let (client, bodies) = (client.clone(), Arc::clone(&bodies));
            let url = format!("{}/{i}", rx.base);
            tokio::spawn(async move {
                for (body, sig) in bodies.iter() {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature", sig)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let _ = response.bytes().await;
                }
            })
        })
        .collect()
}

async fn plain_run(rx: &SlowReceiver, n: usize, k: usize) -> f64 {
    let before = rx.answered().await;
    let started = Instant::now();
    for task in plain_tasks(rx, n, k) {
        task.await.unwrap();
    }
    rx.wait_until(before + n * k, true).await;
    (n * k) as f64 / started.elapsed().as_secs_f64()
}

/// Heap bytes held per attempt while `n` attempts wait on the held receiver: the
/// dispatcher's (memory store, one event to each of `n` endpoints), then the plain loop's.
async fn memory_per_attempt(rx: &SlowReceiver, n: usize) -> (i64, i64) {
    let net = |region: &Region<'_, System>| {
        let stats = region.change();
        (stats.bytes_allocated as i64 - stats.bytes_deallocated as i64) / n as i64
    };
    let sender = sender_with(rx, n).await;
    sender.publish(event(0)).await.unwrap();
    rx.control("hold").await;
    let (entered, answered) = rx.counts().await;
    let region = Region::new(GLOBAL);
    let handle = sender.dispatcher(transport(n)).concurrency(n).spawn();
    rx.wait_until(entered + n, false).await;
    // Let the last arrivals settle into their waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dispatcher = net(&region);
    rx.control("release").await;
    rx.wait_until(answered + n, true).await;
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    drop(sender);
    // The dispatcher's connections close once its client is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;

    rx.control("hold").await;
    let (entered, answered) = rx.counts().await;
    let region = Region::new(GLOBAL);
    let tasks = plain_tasks(rx, n, 1);
    rx.wait_until(entered + n, false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let plain = net(&region);
    rx.control("release").await;
    rx.wait_until(answered + n, true).await;
    for task in tasks {
        task.await.unwrap();
    }
    (dispatcher, plain)
}

/// The receiver alone: `n × k` requests over `n` raw keep-alive connections with no client
/// library (each connection sends its next request when the previous answer arrives).
async fn receiver_alone(rx: &SlowReceiver, n: usize, k: usize) -> f64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = rx.addr.clone();
    let (body, sig) = signed_bodies(1)[0].clone();
    let before = rx.answered().await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (addr, body, sig) = (addr.clone(), body.clone(), sig.clone());
            tokio::spawn(async move {
                let mut request = format!(
                    "POST /hook/{i} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-hub-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                request.extend_from_slice(&body);
                let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let mut buf = vec![0u8; 4096];
                for _ in 0..k {
                    stream.write_all(&request).await.unwrap();
                    // The answer is small and fixed: read until its body ("ok") arrived.
                    let mut got = Vec::new();
                    while !got.ends_with(b"\r\n\r\nok") {
                        let read = stream.read(&mut buf).await.unwrap();
                        assert!(read > 0, "receiver closed the connection");
                        got.extend_from_slice(&buf[..read]);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    rx.wait_until(before + n * k, true).await;
    (n * k) as f64 / started.elapsed().as_secs_f64()
}

/// Raises this process's limit on open files to 65 536 with util-linux's `prlimit` (the
/// crate forbids `unsafe`, so no `setrlimit` here; root may raise the hard limit too) and
/// returns the soft limit in force, read from `/proc/self/limits`.
fn raise_open_files() -> u64 {
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg("--nofile=65536:65536")
        .status();
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_owned();
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let files = raise_open_files();
    if std::env::var_os("SEND_SLOW_RECEIVER").is_some() {
        receiver_process();
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counts: Vec<usize> = std::env::var("SEND_SLOW_ENDPOINTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("SEND_SLOW_ENDPOINTS: numbers"))
        .collect();
    let rx = SlowReceiver::start();
    runtime.block_on(async {
        println!(
            "machine: {} cores; open files allowed: {files}; receiver answers after {} ms",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            DELAY.as_millis()
        );
        for n in counts {
            // About 20 000 deliveries per run, at least 3 per endpoint.
            let k = (20_000 / n).max(3);
            let alone = receiver_alone(&rx, n, k).await;
            let (mut plain, mut dispatched) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                plain.push(plain_run(&rx, n, k).await);
                dispatched.push(dispatcher_run(&rx, n, k).await);
            }
            let (p, d) = (median(plain), median(dispatched));
            let ideal = n as f64 / DELAY.as_secs_f64();
            println!(
                "{n:>5} endpoints x {k} events, concurrency {n}: plain reqwest loop {p:>6.0}/s | dispatcher (memory) {d:>6.0}/s ({:.2}x, target 0.8x) | receiver alone {alone:>6.0}/s | ideal {ideal:.0}/s",
                d / p
            );
            let (dispatcher, plain) = memory_per_attempt(&rx, n).await;
            println!(
                "{n:>5} attempts held in flight: dispatcher {dispatcher} B per attempt, plain loop {plain} B per request (sender side; fixed costs included); dispatcher adds {} B",
                dispatcher - plain
            );
        }
    });
}
