//! What the delivery features cost or buy, measured to a receiver on 127.0.0.1 that answers
//! 200 at once.
//!
//! ```sh
//! cargo bench --bench send_features --features reqwest,metrics,tracing
//! ```
//!
//! - **Telemetry**: the dispatcher (memory store, concurrency 16) delivering a published
//!   backlog of 1 KiB task-hub events with metrics and tracing *active* — a recorder that
//!   keeps every series in atomics and a subscriber that enables every span and records its
//!   fields, doing nothing else — against the same run with *no* recorder and *no*
//!   subscriber installed (the facades' disabled paths). Both are compiled in; rounds
//!   alternate on one current-thread runtime (the receiver runs on its own threads), and the
//!   median of each is reported with the slowdown. Target: at most 3 % slower.
//! - **Batching**: the same backlog to an endpoint that batches (50 events or 5 ms) against
//!   single deliveries, events per second each, and the factor.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::send::{AddressPolicy, Batching, Endpoint, MemoryStore, ReqwestTransport, Sender};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tracing::field::{Field, Visit};
use tracing::{Subscriber, span};

const EVENTS: usize = 6_000;
const ROUNDS: usize = 5;
const CONCURRENCY: usize = 16;

/// A receiver on its own runtime: counts events (a batch counts as its members).
fn receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new().route(
                "/hook",
                post(move |body: axum::body::Bytes| {
                    let counted = Arc::clone(&counted);
                    async move {
                        let n = if body.first() == Some(&b'[') {
                            // Members of a batch: top-level envelopes start with `{"id"`.
                            body.windows(6).filter(|w| w == br#"{"id":"#).count()
                        } else {
                            1
                        };
                        counted.fetch_add(n, Ordering::SeqCst);
                        "ok"
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/hook", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), hits)
}

fn event(i: usize) -> OutgoingEvent {
    OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "taskId": i.to_string(), "note": "x".repeat(900) }),
    )
}

/// Publishes the backlog untimed, then times the dispatcher delivering it.
async fn deliver(url: &str, hits: &AtomicUsize, batching: Option<Batching>) -> f64 {
    let sender = Sender::new(MemoryStore::new());
    let mut endpoint = Endpoint::builder(url, Profile::TaskHub)
        .secret(Secret::from_raw("bench-secret").unwrap())
        .without_rate_limit()
        .concurrency(CONCURRENCY as u32);
    if let Some(batching) = batching {
        endpoint = endpoint.batch(batching);
    }
    sender
        .add_endpoint(endpoint.build().unwrap())
        .await
        .unwrap();
    let events: Vec<OutgoingEvent> = (0..EVENTS).map(event).collect();
    for chunk in events.chunks(500) {
        sender.publish_batch(chunk.to_vec()).await.unwrap();
    }
    let transport = ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .build()
        .unwrap();
    let start = hits.load(Ordering::SeqCst);
    let started = Instant::now();
    let handle = sender
        .dispatcher(transport)
        .concurrency(CONCURRENCY)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while hits.load(Ordering::SeqCst) < start + EVENTS {
        assert!(Instant::now() < deadline, "receiver stalled");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// A recorder that keeps every series in atomics, like an exporter minus the export.
#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}
impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}
impl HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.0.fetch_add(value.to_bits() & 1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct KeepAll(Mutex<HashMap<Key, Arc<Cell>>>);

impl KeepAll {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        Arc::clone(self.0.lock().unwrap().entry(key.clone()).or_default())
    }
}

impl Recorder for KeepAll {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

/// Enables every span and does nothing with it: the cost of the instrumentation itself.
#[derive(Default)]
struct Noop(AtomicU64);

impl Subscriber for Noop {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Enables every span and formats its fields into a scratch count, nothing else.
#[derive(Default)]
struct EnableAll(AtomicU64);

struct Discard(usize);

impl Visit for Discard {
    fn record_debug(&mut self, _: &Field, value: &dyn fmt::Debug) {
        self.0 += format!("{value:?}").len();
    }
}

impl Subscriber for EnableAll {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let mut d = Discard(0);
        attrs.record(&mut d);
        span::Id::from_u64(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &span::Id, values: &span::Record<'_>) {
        values.record(&mut Discard(0));
    }
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Discard(0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// This thread's time on a CPU so far, in nanoseconds (Linux `schedstat`), if readable.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One timed delivery of the backlog: events per second, and the dispatcher thread's CPU
/// nanoseconds per event (everything the sender does runs on this thread; the receiver
/// runs on its own), which a loaded machine disturbs far less than wall time.
fn one_round(url: &str, hits: &AtomicUsize, batching: Option<Batching>) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = thread_cpu_ns().unwrap_or(0);
    let rate = runtime.block_on(deliver(url, hits, batching));
    let cpu = thread_cpu_ns().unwrap_or(0).saturating_sub(before);
    (rate, cpu as f64 / EVENTS as f64)
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (url, hits) = receiver();
    let recorder = KeepAll::default();
    println!(
        "machine: {} cores; {EVENTS} events of 1 KiB per round, concurrency {CONCURRENCY}, {ROUNDS} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if filter.as_deref().is_none_or(|f| "telemetry".contains(f)) {
        let _ = one_round(&url, &hits, None); // warm-up
        let noop = metrics::NoopRecorder;
        let mut rates: [Vec<(f64, f64)>; 3] = Default::default();
        for round in 0..ROUNDS * 2 {
            // Rotate which variant goes first, so that order effects cancel out.
            for k in 0..3 {
                let variant = (round + k) % 3;
                let rate = match variant {
                    0 => one_round(&url, &hits, None),
                    1 => metrics::with_local_recorder(&noop, || {
                        tracing::subscriber::with_default(Noop::default(), || {
                            one_round(&url, &hits, None)
                        })
                    }),
                    _ => metrics::with_local_recorder(&recorder, || {
                        tracing::subscriber::with_default(EnableAll::default(), || {
                            one_round(&url, &hits, None)
                        })
                    }),
                };
                rates[variant].push(rate);
            }
        }
        let [off, on, busy] = rates.map(|r| {
            (
                median(r.iter().map(|x| x.0).collect()),
                median(r.iter().map(|x| x.1).collect()),
            )
        });
        println!(
            "telemetry, wall: disabled {:.0}/s | no-op recorder + subscriber {:.0}/s ({:+.1} %; target: at most 3 % slower) | keeping every series, formatting every field {:.0}/s ({:+.1} %)",
            off.0,
            on.0,
            (on.0 / off.0 - 1.0) * 100.0,
            busy.0,
            (busy.0 / off.0 - 1.0) * 100.0
        );
        println!(
            "telemetry, dispatcher CPU per event: disabled {:.1} us | no-op {:.1} us ({:+.1} %) | keeping every series {:.1} us ({:+.1} %)",
            off.1 / 1e3,
            on.1 / 1e3,
            (on.1 / off.1 - 1.0) * 100.0,
            busy.1 / 1e3,
            (busy.1 / off.1 - 1.0) * 100.0
        );
    }
    if filter.as_deref().is_none_or(|f| "batching".contains(f)) {
        let batching = Batching::new(50, Duration::from_millis(5));
        let (mut single, mut batched) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            single.push(one_round(&url, &hits, None).0);
            batched.push(one_round(&url, &hits, Some(batching)).0);
        }
        let (single, batched) = (median(single), median(batched));
        println!(
            "batching: single deliveries {single:.0} events/s | batches of 50 {batched:.0} events/s | {:.1}x",
            batched / single
        );
    }
}
