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
use hookrelay::send::{AddressPolicy, ReqwestTransport};
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
#[allow(dead_code)]
pub async fn plain_loop(rx: &Receiver, n: usize, concurrency: usize) -> f64 {
    plain_loop_cpu(rx, n, concurrency).await.0
}

/// CPU time this process has used so far, every thread, user and system (from
/// `/proc/self/stat`, in clock ticks of 10 ms; zero where that file does not exist).
#[allow(dead_code)]
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
