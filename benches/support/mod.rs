//! What the send benchmarks share: the local receiver, the event they deliver, the
//! transport, and the plain reqwest loop every one of them is paired with.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::scheme::{Message, Scheme, XHub};
use hookrelay::send::{AddressPolicy, DeliveryStore, Endpoint, ReqwestTransport, Sender};
use tokio::sync::Notify;

/// A receiver on 127.0.0.1 that counts requests and answers 200 (after `delay`).
pub struct Receiver {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    pub arrived: Arc<Notify>,
}

pub async fn receiver(delay: Duration) -> Receiver {
    let hits = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(Notify::new());
    let (h, a) = (Arc::clone(&hits), Arc::clone(&arrived));
    let app = Router::new().route(
        "/hook",
        post(move |_: axum::body::Bytes| {
            let (h, a) = (Arc::clone(&h), Arc::clone(&a));
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                h.fetch_add(1, Ordering::SeqCst);
                a.notify_waiters();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, hits, arrived }
}

/// A 1 KiB task-hub event.
pub fn event(i: usize) -> OutgoingEvent {
    OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "taskId": i.to_string(), "note": "x".repeat(900) }),
    )
}

/// The reqwest transport, opened to loopback over plain HTTP.
pub fn transport() -> ReqwestTransport {
    ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .build()
        .unwrap()
}

/// Waits (bounded) until the receiver has seen `target` requests.
pub async fn wait_for(rx: &Receiver, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while rx.hits.load(Ordering::SeqCst) < target {
        assert!(Instant::now() < deadline, "receiver stalled");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `n` task-hub bodies of [`event`]s signed in advance, with their `X-Hub-Signature`.
pub fn signed_bodies(n: usize) -> Arc<Vec<(Vec<u8>, String)>> {
    let secret = Secret::from_raw("bench-secret").unwrap();
    Arc::new(
        (0..n)
            .map(|i| {
                let body = Profile::TaskHub
                    .render_body(&event(i), Default::default())
                    .unwrap();
                let sig = XHub::new().sign(&secret, &Message::new(&body)).unwrap();
                let sig = sig.get("X-Hub-Signature").unwrap().to_owned();
                (body, sig)
            })
            .collect(),
    )
}

/// The baseline: `concurrency` tasks POSTing pre-signed bodies with a bare client.
pub async fn plain_loop(rx: &Receiver, n: usize, concurrency: usize) -> f64 {
    plain_loop_cpu(rx, n, concurrency).await.0
}

/// CPU time this process has used so far, every thread, user and system (from
/// `/proc/self/stat`, in clock ticks of 10 ms; zero where that file does not exist).
pub fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) end with `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// [`plain_loop`], and the CPU time the whole process spent while it ran.
pub async fn plain_loop_cpu(rx: &Receiver, n: usize, concurrency: usize) -> (f64, Duration) {
    // reqwest 0.13 without aws-lc-rs takes rustls' process default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let requests = signed_bodies(n);
    let start_hits = rx.hits.load(Ordering::SeqCst);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, requests, next, url) = (
            client.clone(),
            Arc::clone(&requests),
            Arc::clone(&next),
            rx.url.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((body, sig)) = requests.get(i) else {
                    break;
                };
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
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    wait_for(rx, start_hits + n).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    (rate, cpu_time().saturating_sub(cpu))
}

/// Publish → first attempt on an idle dispatcher: one event published at a time, 300 events;
/// the time from calling `publish` to the receiver seeing the request, p50 and p99.
pub async fn first_attempt_latency<S: DeliveryStore>(store: S, rx: &Receiver, label: &str) {
    let sender = Sender::new(store);
    let endpoint = Endpoint::builder(&rx.url, Profile::TaskHub)
        .secret(Secret::from_raw("bench-secret").unwrap())
        .without_rate_limit()
        .concurrency(16)
        .build()
        .unwrap();
    sender.add_endpoint(endpoint).await.unwrap();
    let handle = sender
        .dispatcher(transport())
        .poll_interval(Duration::from_secs(5))
        .spawn();
    let mut samples = Vec::new();
    for i in 0..300 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let before = rx.hits.load(Ordering::SeqCst);
        let arrived = rx.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let started = Instant::now();
        sender.publish(event(i)).await.unwrap();
        while rx.hits.load(Ordering::SeqCst) == before {
            tokio::time::timeout(Duration::from_secs(5), arrived.as_mut())
                .await
                .unwrap();
            arrived.set(rx.arrived.notified());
            arrived.as_mut().enable();
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    handle.shutdown(Duration::from_secs(5)).await.unwrap();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "latency {label:<7} publish -> first attempt: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 10 ms)",
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
}
